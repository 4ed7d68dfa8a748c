//! [`ApiError`]: every error the gateway answers, as `{"error": "...", "code": "..."}`.
//!
//! Service errors map to a status that fits; internal failures say only that the shop could
//! not complete the request (the service logged the detail).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::call::CallError;
use crate::services::analytics::AnalyticsError;
use crate::services::notification::NotificationError;
use crate::services::order::{Order, OrderError};
use crate::services::product::ProductError;
use crate::services::user::UserError;

/// An error answer: status, a stable machine-readable code, a message for a person, and
/// (for a failed order) the order.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    order: Option<Box<Order>>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    order: Option<&'a Order>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            order: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    /// 404 with code `unknown_{what}`.
    pub(crate) fn not_found(what: &'static str, message: impl Into<String>) -> Self {
        let code = match what {
            "user" => "unknown_user",
            "product" => "unknown_product",
            "order" => "unknown_order",
            _ => "not_found",
        };
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed here",
        )
    }

    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the shop could not complete the request",
        )
    }

    /// An order that ended `FAILED`, answered with `status` and carried in the body.
    pub(crate) fn failed_order(status: StatusCode, code: &'static str, order: Order) -> Self {
        ApiError {
            status,
            code,
            message: order
                .reason
                .clone()
                .unwrap_or_else(|| "the order failed".into()),
            order: Some(Box::new(order)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: &self.message,
            code: self.code,
            order: self.order.as_deref(),
        };
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was never read, so the server drops the connection after
            // this answer; saying so keeps a keep-alive client from sending its next request
            // on it (which then fails with an incomplete message).
            let close = [(header::CONNECTION, HeaderValue::from_static("close"))];
            return (self.status, close, Json(body)).into_response();
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is too large",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
            _ => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                rejection.body_text(),
            ),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            e.to_string(),
        )
    }
}

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::InvalidEmail(_) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_email", e.to_string())
            }
            UserError::InvalidName => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_name", e.to_string())
            }
            UserError::EmailTaken(_) => {
                Self::new(StatusCode::CONFLICT, "email_taken", e.to_string())
            }
            UserError::NotFound(_) => Self::not_found("user", e.to_string()),
            UserError::Internal => Self::internal(),
        }
    }
}

impl From<ProductError> for ApiError {
    fn from(e: ProductError) -> Self {
        match e {
            ProductError::UnknownProduct(_) => Self::not_found("product", e.to_string()),
            ProductError::Internal => Self::internal(),
            _ => Self::bad_request(e.to_string()),
        }
    }
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::InvalidInput(_) => Self::bad_request(e.to_string()),
            OrderError::UnknownUser(_) => Self::not_found("user", e.to_string()),
            OrderError::UnknownProduct(_) => Self::not_found("product", e.to_string()),
            OrderError::NotFound(_) => Self::not_found("order", e.to_string()),
            OrderError::KeyReused => Self::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                e.to_string(),
            ),
            OrderError::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                e.to_string(),
            ),
            OrderError::Internal => Self::internal(),
        }
    }
}

impl From<AnalyticsError> for ApiError {
    fn from(_: AnalyticsError) -> Self {
        Self::internal()
    }
}

impl From<NotificationError> for ApiError {
    fn from(_: NotificationError) -> Self {
        Self::internal()
    }
}
