//! Shared by the benches: a server on loopback with the fake Graph API, and signed
//! inbound webhooks.

#![allow(dead_code)]

use frontdesk::config::{Config, Secret};
use frontdesk::http::fake_graph::FakeGraph;

pub const SECRET: &str = "bench-secret";
pub const TOKEN: &str = "bench-token";

pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn inbound(wa_id: &str, wamid: &str) -> String {
    let now = frontdesk::domain::now_ms() / 1000;
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P1"}},"contacts":[{{"profile":{{"name":"C"}},"wa_id":"{wa_id}"}}],"messages":[{{"from":"{wa_id}","id":"{wamid}","timestamp":"{now}","type":"text","text":{{"body":"Do you have the gravel bike in size M?"}}}}]}}}}]}}]}}"#
    )
}

pub struct Env {
    pub running: frontdesk::app::Running,
    pub graph: FakeGraph,
    pub base: String,
    pub _dir: tempfile::TempDir,
}

/// A bench server's config: data in `dir`, the fake Graph API at `graph`, quiet logs.
pub fn config(dir: &std::path::Path, graph: &FakeGraph) -> Config {
    let mut c = Config::default();
    c.storage.data_dir = dir.to_path_buf();
    c.whatsapp.app_secret = Secret::new(SECRET);
    c.whatsapp.verify_token = Secret::new("v");
    c.whatsapp.access_token = Secret::new(TOKEN);
    c.whatsapp.graph_base_url = graph.base_url();
    c.log.level = "warn".into();
    c
}

pub async fn start(tweak: impl FnOnce(&mut Config)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let graph = FakeGraph::start(TOKEN).await.unwrap();
    graph.set_statuses(None);
    let mut c = config(dir.path(), &graph);
    // Answer at once and skip the embedding model unless a bench asks for them.
    c.engine.debounce_ms = 0;
    c.knowledge.embedder = "none".into();
    tweak(&mut c);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = frontdesk::app::start(c, listener, Default::default()).await.unwrap();
    let base = format!("http://{}", running.addr);
    Env { running, graph, base, _dir: dir }
}

