//! The shop's routes: each checks its input, asks one service, and shapes the answer.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Gateway;
use super::error::ApiError;
use crate::services::analytics::{Analytics, GetReport, Report};
use crate::services::notification::{ListMails, Mail, Notifications};
use crate::services::order::{FailureCode, GetOrder, Order, OrderStatus, Orders, PlaceOrder};
use crate::services::product::{Line, ListProducts, Product, Products};
use crate::services::user::{GetUser, Register, User, Users};

/// Time-out of a call that reads or writes one thing.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Time-out of placing an order: the whole saga, behind the orders placed before it.
const ORDER_TIMEOUT: Duration = Duration::from_secs(15);
/// Mails listed when `limit` is not given.
const DEFAULT_MAILS: u32 = 50;

/// `POST /users` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUser {
    email: String,
    name: String,
}

/// `POST /orders` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewOrder {
    user_id: u64,
    items: Vec<NewItem>,
    card: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewItem {
    product_id: String,
    /// Signed, so that a negative quantity gets a clear answer rather than a type error.
    quantity: i64,
}

/// `GET /notifications` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MailQuery {
    to: Option<String>,
    limit: Option<u32>,
}

pub(super) async fn register_user(
    State(gw): State<Gateway>,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let Json(new) = body?;
    let register = Register {
        email: new.email,
        name: new.name,
    };
    let user = gw
        .calls
        .ask::<Users, _>(&gw.system, register, CALL_TIMEOUT)
        .await??;
    Ok((StatusCode::CREATED, Json(user)))
}

pub(super) async fn get_user(
    State(gw): State<Gateway>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<User>, ApiError> {
    let id = parse_id(id?, "user")?;
    Ok(Json(
        gw.calls
            .ask_idempotent::<Users, _>(&gw.system, GetUser { id }, CALL_TIMEOUT)
            .await??,
    ))
}

pub(super) async fn list_products(
    State(gw): State<Gateway>,
) -> Result<Json<Vec<Product>>, ApiError> {
    Ok(Json(
        gw.calls
            .ask_idempotent::<Products, _>(&gw.system, ListProducts, CALL_TIMEOUT)
            .await??,
    ))
}

pub(super) async fn place_order(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    body: Result<Json<NewOrder>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(new) = body?;
    let idempotency_key = match headers.get("idempotency-key") {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::bad_request("the Idempotency-Key header must be ASCII"))?
                .to_owned(),
        ),
        None => None,
    };
    let mut lines = Vec::with_capacity(new.items.len());
    for item in new.items {
        let quantity = u32::try_from(item.quantity)
            .ok()
            .filter(|q| *q >= 1)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "the quantity of {:?} must be a whole number from 1 to {}",
                    item.product_id,
                    u32::MAX
                ))
            })?;
        lines.push(Line {
            product_id: item.product_id,
            quantity,
        });
    }
    let place = PlaceOrder {
        idempotency_key,
        user_id: new.user_id,
        lines,
        card: new.card,
    };
    let placed = gw
        .calls
        .ask::<Orders, _>(&gw.system, place, ORDER_TIMEOUT)
        .await??;
    let mut response = order_response(placed.order);
    let headers = response.headers_mut();
    if placed.replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// 201 for a confirmed order; a failed one as an error with the order in the body.
fn order_response(order: Order) -> Response {
    let id = order.id;
    let mut response = match (order.status, order.failure) {
        (OrderStatus::Confirmed, _) => (StatusCode::CREATED, Json(order)).into_response(),
        (OrderStatus::Pending, _) => (StatusCode::ACCEPTED, Json(order)).into_response(),
        (OrderStatus::Failed, Some(FailureCode::OutOfStock)) => {
            ApiError::failed_order(StatusCode::CONFLICT, "out_of_stock", order).into_response()
        }
        (OrderStatus::Failed, Some(FailureCode::PaymentDeclined)) => {
            ApiError::failed_order(StatusCode::UNPROCESSABLE_ENTITY, "payment_declined", order)
                .into_response()
        }
        (OrderStatus::Failed, _) => ApiError::failed_order(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            order,
        )
        .into_response(),
    };
    if let Ok(location) = HeaderValue::from_str(&format!("/orders/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

pub(super) async fn get_order(
    State(gw): State<Gateway>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Order>, ApiError> {
    let id = parse_id(id?, "order")?;
    Ok(Json(
        gw.calls
            .ask_idempotent::<Orders, _>(&gw.system, GetOrder { id }, CALL_TIMEOUT)
            .await??,
    ))
}

pub(super) async fn analytics(State(gw): State<Gateway>) -> Result<Json<Report>, ApiError> {
    Ok(Json(
        gw.calls
            .ask_idempotent::<Analytics, _>(&gw.system, GetReport, CALL_TIMEOUT)
            .await??,
    ))
}

pub(super) async fn notifications(
    State(gw): State<Gateway>,
    query: Result<Query<MailQuery>, QueryRejection>,
) -> Result<Json<Vec<Mail>>, ApiError> {
    let Query(query) = query?;
    let list = ListMails {
        to: query.to,
        limit: query.limit.unwrap_or(DEFAULT_MAILS),
    };
    Ok(Json(
        gw.calls
            .ask_idempotent::<Notifications, _>(&gw.system, list, CALL_TIMEOUT)
            .await??,
    ))
}

fn parse_id(Path(raw): Path<String>, what: &'static str) -> Result<u64, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::bad_request(format!("{raw:?} is not a {what} id (a positive number)"))
    })
}
