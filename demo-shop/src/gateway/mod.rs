//! The HTTP gateway: the shop's REST API over the services, plus operations endpoints.
//!
//! | method and path | answer |
//! | --- | --- |
//! | `POST /users` | 201 the user; 400 invalid e-mail or name; 409 e-mail taken |
//! | `GET /users/{id}` | 200 the user; 404 |
//! | `GET /products` | 200 the catalog with prices and stock |
//! | `POST /orders` | 201 confirmed; 409 out of stock; 422 payment declined; 503 a service did not answer (the last three with the `FAILED` order); 400 bad input; 404 unknown user or product; 409 idempotency key reused |
//! | `GET /orders/{id}` | 200 the order; 404 |
//! | `GET /analytics` | 200 event counts |
//! | `GET /notifications?to=&limit=` | 200 the mails, newest first |
//! | `GET /health` | 200 (503 when a local service is down): this node, its services and peers |
//! | `GET /cluster` | 200 members, and each service's node |
//! | `GET /metrics` | 200 Prometheus text |
//!
//! Every error is `{"error": "...", "code": "..."}`; bodies over the configured limit get 413.

mod error;
mod ops;
mod shop;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::runtime::Process;
use error::ApiError;

/// The gateway's state: the process it fronts.
type Gateway = Arc<Process>;

/// The routes, with `max_body_bytes` as the request body limit.
pub(crate) fn router(process: Gateway, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/users", post(shop::register_user))
        .route("/users/{id}", get(shop::get_user))
        .route("/products", get(shop::list_products))
        .route("/orders", post(shop::place_order))
        .route("/orders/{id}", get(shop::get_order))
        .route("/analytics", get(shop::analytics))
        .route("/notifications", get(shop::notifications))
        .route("/health", get(ops::health))
        .route("/cluster", get(ops::cluster))
        .route("/metrics", get(ops::metrics))
        .route_layer(middleware::from_fn(count_request))
        .fallback(async || ApiError::not_found("route", "no such route"))
        .method_not_allowed_fallback(async || ApiError::method_not_allowed())
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(process)
}

/// Serves `router` on `listener` until `stop` fires (or its sender is dropped).
pub(crate) async fn serve(listener: TcpListener, router: Router, stop: oneshot::Receiver<()>) {
    let shutdown = async {
        let _ = stop.await;
    };
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

/// Counts and times each request by method, route and status.
async fn count_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    // Every request starts a trace: the services it reaches, on any node, log its trace id.
    let trace = actor_core::trace::TraceContext::new_root();
    let span = tracing::info_span!("http", %method, %route, trace_id = %trace.trace_id_hex());
    let mut response = tracing::Instrument::instrument(
        actor_core::trace::in_context(trace, next.run(request)),
        span,
    )
    .await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&trace.trace_id_hex()) {
        response.headers_mut().insert("x-trace-id", value);
    }
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route)];
    metrics::histogram!("http_request_seconds", &labels).record(started.elapsed().as_secs_f64());
    let [method, route] = labels;
    let labels = [method, route, ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    response
}
