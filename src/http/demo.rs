//! Demo-only routes: the WhatsApp simulator page at `/demo` and its small API. A
//! customer's message is turned into a webhook signed with the app secret and posted
//! to this server's own `/webhook`, so it travels exactly the production path.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::whatsapp::signature::sign;

/// Files under assets/web, compiled into the binary.
#[derive(rust_embed::RustEmbed)]
#[folder = "assets/web/"]
struct Web;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/demo", get(page))
        .route("/demo/static/{file}", get(asset))
        .route("/demo/api/info", get(info))
        .route("/demo/api/send", post(send))
        .route("/demo/api/chat", get(chat))
        .route("/demo/api/orders/{order_id}", get(order))
}

fn demo_number(app: &App) -> Option<String> {
    app.demo.as_ref().map(|d| d.phone_number_id.clone())
}

async fn page() -> Response {
    asset(Path("simulator.html".into())).await
}

async fn asset(Path(file): Path<String>) -> Response {
    let Some(f) = Web::get(&file) else { return (StatusCode::NOT_FOUND, "not found").into_response() };
    let mime = match file.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => "application/octet-stream",
    };
    ([(header::CONTENT_TYPE, mime)], f.data.into_owned()).into_response()
}

async fn info(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let warnings = app.knowledge.status().await.map(|s| s.warnings).unwrap_or_default();
    Json(json!({ "business_name": app.config.bot.business_name, "phone_number_id": demo_number(&app), "warnings": warnings }))
}

#[derive(Deserialize)]
struct SendRequest {
    wa_id: String,
    name: String,
    text: String,
}

async fn send(State(app): State<Arc<App>>, Json(req): Json<SendRequest>) -> Response {
    let Some(number) = demo_number(&app) else { return StatusCode::NOT_FOUND.into_response() };
    if req.text.trim().is_empty() || req.text.len() > 4096 || !req.wa_id.chars().all(|c| c.is_ascii_digit()) || req.wa_id.is_empty() {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "wa_id must be digits and text 1-4096 bytes" }))).into_response();
    }
    let now = crate::domain::now_ms();
    let wamid = format!("wamid.SIM{}{:04}", now, rand::random::<u16>() % 10_000);
    let body = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "DEMO-WABA", "changes": [{ "field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550000000", "phone_number_id": number },
        "contacts": [{ "profile": { "name": req.name }, "wa_id": req.wa_id }],
        "messages": [{ "from": req.wa_id, "id": wamid, "timestamp": (now / 1000).to_string(), "type": "text", "text": { "body": req.text } }]
    }}]}]})
    .to_string();
    let sig = sign(app.config.whatsapp.app_secret.expose().as_bytes(), body.as_bytes());
    let url = format!("http://{}/webhook", app.demo.as_ref().map(|d| d.addr.to_string()).unwrap_or_default());
    let result = reqwest::Client::new().post(url).header("content-type", "application/json").header("x-hub-signature-256", sig).body(body).send().await;
    match result {
        Ok(r) => (StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY), Json(json!({ "wamid": wamid }))).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({ "error": e.to_string() }))).into_response(),
    }
}

async fn chat(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let (Some(number), Some(wa_id)) = (demo_number(&app), q.get("wa_id").cloned()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let rows = app.store.read(move |c| crate::store::list_contact_messages(c, &wa_id, &number, 500)).await;
    match rows {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => super::control::error_response(e),
    }
}

#[derive(Deserialize)]
struct OrderQuery {
    #[serde(default)]
    wa_id: String,
}

/// `GET /demo/api/orders/{order_id}?wa_id=…`: the demo's order-status API, called by the
/// `order_status` tool. An order is only shown to the customer who placed it.
async fn order(State(app): State<Arc<App>>, Path(order_id): Path<String>, Query(q): Query<OrderQuery>) -> Response {
    if demo_number(&app).is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    order_response(&order_id, &q.wa_id)
}

/// The order-status API's answer: the order, or 404 with why.
fn order_response(order_id: &str, wa_id: &str) -> Response {
    match crate::demo_data::order_for(order_id, wa_id) {
        Some(o) => Json(o).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({ "error": format!("no order {order_id} for this customer") }))).into_response(),
    }
}

/// Serves the sample orders' API on its own (`GET /orders/{order_id}?wa_id=…`) until the
/// task is dropped: the golden eval's `order_status` tool.
pub async fn serve_sample_orders(listener: tokio::net::TcpListener) {
    let router: Router = Router::new().route(
        "/orders/{order_id}",
        get(|Path(order_id): Path<String>, Query(q): Query<OrderQuery>| async move { order_response(&order_id, &q.wa_id) }),
    );
    let _ = axum::serve(listener, router).await;
}
