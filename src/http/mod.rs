//! The HTTP surface (axum only lives here): the WhatsApp webhook, health and metrics,
//! the local control API the CLI uses while the server runs, and the browser app; and
//! the server loop with its connection limits (`serve`).

pub mod acme_challenge;
mod control;
pub mod demo;
mod demo_document;
pub mod fake_graph;
mod health;
pub mod scripted_model;
pub mod serve;
pub mod ui;
mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

use crate::app::App;

/// Every route of the server.
pub fn router(app: Arc<App>, demo: Option<demo::DemoInfo>) -> Router {
    let limit = app.config.server.body_limit_bytes;
    let router = Router::new()
        .route(
            "/webhook",
            get(webhook::handshake)
                .post(webhook::receive)
                .layer(DefaultBodyLimit::max(limit)),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .nest("/api/control", control::routes(app.clone()))
        .merge(ui::routes(app.clone()));
    let router = match demo {
        Some(demo) => router.merge(demo::routes(demo)),
        None => router,
    };
    router.with_state(app)
}
