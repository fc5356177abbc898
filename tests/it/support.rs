//! Test helpers: an in-process server on port 0, signed webhook posts, waiting for
//! workers, and a handle on the real binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use frontdesk::config::{Config, Secret};
use frontdesk::http::fake_graph::FakeGraph;
use frontdesk::server::Running;
use frontdesk::store::{MessageRow, Store, list_messages};
use frontdesk::whatsapp::signature::sign;
use tempfile::TempDir;

pub const SECRET: &str = "test-app-secret";
pub const VERIFY: &str = "test-verify-token";
pub const TOKEN: &str = "test-access-token";

/// A config for tests: temp data dir, port 0, known secrets, quick retries.
pub fn test_config(dir: &Path) -> Config {
    let mut c = Config::default();
    c.server.listen = "127.0.0.1:0".into();
    c.storage.data_dir = dir.to_path_buf();
    c.whatsapp.app_secret = Secret::new(SECRET);
    c.whatsapp.verify_token = Secret::new(VERIFY);
    c.queue.backoff_base_ms = 20;
    c.queue.backoff_max_ms = 200;
    c.whatsapp.access_token = Secret::new(TOKEN);
    c.whatsapp.request_timeout_ms = 2_000;
    // Tests send several messages to one customer quickly; the pair limit has its own test.
    c.send.pair_interval_ms = 0;
    c.send.token_probe_interval_ms = 100;
    // Answer at once; the burst test turns debounce back on.
    c.engine.debounce_ms = 0;
    // The server runs inside the test process: its sandboxed file reader is the real binary.
    c.extract.binary = bin();
    // Keyword retrieval only: loading the local model and embedding every message costs
    // seconds per test. Tests of vector retrieval turn it on (`with_local_embedder`).
    c.knowledge.embedder = frontdesk::config::EmbedderKind::None;
    c
}

/// Turns the local embedding model back on, for tests of vector retrieval.
pub fn with_local_embedder(c: &mut Config) {
    c.knowledge.embedder = frontdesk::config::EmbedderKind::Local;
}

/// A server running inside the test process, talking to a fake Graph API.
pub struct TestServer {
    pub dir: TempDir,
    pub base: String,
    pub running: Option<Running>,
    pub client: reqwest::Client,
    pub graph: FakeGraph,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        // FD_TEST_LOG=debug shows the server's logs (with --no-capture).
        if let Ok(level) = std::env::var("FD_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(level)
                .with_test_writer()
                .try_init();
        }
        let dir = tempfile::tempdir().unwrap();
        let graph = FakeGraph::start(TOKEN).await.unwrap();
        let mut config = test_config(dir.path());
        config.whatsapp.graph_base_url = graph.base_url();
        tweak(&mut config);
        // Port 0 unless a test needs a known port (the ACME test's CA dials it).
        let listener = tokio::net::TcpListener::bind(&config.server.listen).await.unwrap();
        let running = frontdesk::server::start(config, listener, Default::default())
            .await
            .unwrap();
        let base = format!("http://{}", running.addr);
        graph.set_webhook(&format!("{base}/webhook"), SECRET);
        TestServer {
            base,
            running: Some(running),
            dir,
            client: reqwest::Client::new(),
            graph,
        }
    }

    pub fn app(&self) -> &frontdesk::app::App {
        &self.running.as_ref().unwrap().app
    }

    /// POSTs `body` signed with the test secret; returns the status code.
    pub async fn post_webhook(&self, body: &[u8]) -> u16 {
        self.post_raw(body, Some(&sign(SECRET.as_bytes(), body))).await
    }

    /// POSTs `body` with the given signature header (or none).
    pub async fn post_raw(&self, body: &[u8], signature: Option<&str>) -> u16 {
        let mut req = self
            .client
            .post(format!("{}/webhook", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(sig) = signature {
            req = req.header("x-hub-signature-256", sig);
        }
        req.send().await.unwrap().status().as_u16()
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self.client.get(format!("{}{}", self.base, path)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Every stored message.
    pub fn messages(&self) -> Vec<MessageRow> {
        let store = &self.app().store;
        store.call_blocking(|c| list_messages(c, 0, 1_000_000)).unwrap()
    }

    /// Stored inbound (customer) messages.
    pub fn inbound(&self) -> Vec<MessageRow> {
        self.messages().into_iter().filter(|m| m.direction == "in").collect()
    }

    /// A single-value SQL query against the live database.
    pub fn query_i64(&self, sql: &str) -> i64 {
        self.app()
            .store
            .call_blocking(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
            .unwrap()
    }

    /// Stores `n` customer messages ("history line 000." …), one a second from `start_ms`,
    /// straight into conversation `id`: a long thread without a webhook per line.
    pub fn insert_history(&self, id: i64, start_ms: i64, n: i64) {
        self.app()
            .store
            .call_blocking(move |c| {
                for i in 0..n {
                    c.execute(
                        "INSERT INTO messages (wamid, conversation_id, direction, sender, kind, text, body_json, status, wa_timestamp, created_at)
                         VALUES (?1, ?2, 'in', 'customer', 'text', ?3, '{}', 'received', ?4, ?4)",
                        rusqlite::params![format!("wamid.history-{i}"), id, format!("history line {i:03}."), start_ms + i * 1000],
                    )?;
                }
                Ok(())
            })
            .unwrap();
    }

    /// Waits until `cond` holds (polling), failing after 15 s with `what`.
    pub async fn wait_until(&self, what: &str, mut cond: impl FnMut(&TestServer) -> bool) {
        let start = Instant::now();
        while !cond(self) {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the server has nothing left to do: no job waiting (due or scheduled)
    /// or held in any queue, seen on two looks with no journal commit between them. A
    /// job hands its follow-ups to the queue before it finishes, so "nothing waiting and
    /// nothing held" cannot be seen between a job and the work it causes. This is how a
    /// test proves that something did *not* happen (no second send, no reply): it waits
    /// for the queue to go idle instead of sleeping.
    pub async fn idle(&self) {
        let start = Instant::now();
        let commits = || {
            self.app()
                .queue
                .commit_stats()
                .commits
                .load(std::sync::atomic::Ordering::SeqCst)
        };
        let mut seen_idle_at: Option<u64> = None;
        loop {
            let before = commits();
            let s = self.app().queue.stats().unwrap();
            let quiet = s.leased == 0 && s.queues.iter().all(|q| q.ready == 0);
            match (quiet, seen_idle_at) {
                (true, Some(at)) if at == before => return,
                (true, _) => seen_idle_at = Some(before),
                (false, _) => seen_idle_at = None,
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the server did not go idle: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the webhook queue is empty and no job is held.
    pub async fn drain(&self) {
        let start = Instant::now();
        loop {
            let s = self.app().queue.stats().unwrap();
            if s.leased == 0 && s.queues.iter().all(|q| q.queue != "webhook" || q.ready == 0) {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "queue did not drain: {s:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn metric(&self, name: &str) -> u64 {
        let text = self.app().metrics.render();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(&format!("frontdesk_{name} "))
                    .map(|v| v.parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no metric {name}"))
    }

    /// A config file for CLI commands run beside this server (same data directory).
    pub fn cli_config(&self) -> PathBuf {
        let config = write_config_file(self.dir.path(), "");
        let data = self.dir.path().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace(&format!("{data}/data"), &data);
        std::fs::write(&config, text).unwrap();
        config
    }

    pub async fn stop(mut self) {
        self.running.take().unwrap().stop().await.unwrap();
    }
}

/// A one-message text webhook for `phone_number_id`, from `from`, with id `wamid`, sent now.
pub fn text_webhook(phone_number_id: &str, from: &str, wamid: &str, body: &str) -> String {
    text_webhook_at(phone_number_id, from, wamid, body, frontdesk::domain::now_ms() / 1000)
}

/// As `text_webhook`, stamped `unix_seconds`.
pub fn text_webhook_at(phone_number_id: &str, from: &str, wamid: &str, body: &str, unix_seconds: i64) -> String {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550001111", "phone_number_id": phone_number_id },
            "contacts": [{ "profile": { "name": "Customer" }, "wa_id": from }],
            "messages": [{ "from": from, "id": wamid, "timestamp": unix_seconds.to_string(), "type": "text", "text": { "body": body } }]
        }}]}]
    })
    .to_string()
}

/// Peak resident memory of a process (VmHWM from /proc/PID/status), in KiB; `None`
/// where /proc is not there.
pub fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Path to the built binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_frontdesk"))
}

/// `frontdesk ARGS --config CONFIG`: whether it succeeded, its stdout and stderr.
pub fn cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `frontdesk queue ARGS --config CONFIG`, as `cli`.
pub fn queue_cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    cli(config, &[&["queue"], args].concat())
}

/// Writes a config file for the real binary into `dir`, returning its path.
pub fn write_config_file(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n[whatsapp]\napp_secret = \"{SECRET}\"\nverify_token = \"{VERIFY}\"\n{extra}",
        dir.join("data").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The real binary serving `config`, with its address read from its first stdout line.
pub struct BinServer {
    pub child: std::process::Child,
    pub base: String,
}

/// The base URL (`http://ADDR`) a started `frontdesk serve`/`demo` child prints as the
/// first line of its stdout ("frontdesk listening on ADDR"); the child's stdout must be
/// piped, and is taken.
pub fn listening_base(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("frontdesk listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    format!("http://{addr}")
}

impl BinServer {
    pub fn start(config: &Path) -> BinServer {
        let mut child = std::process::Command::new(bin())
            .args(["serve", "--config"])
            .arg(config)
            .env("FRONTDESK_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let base = listening_base(&mut child);
        BinServer { child, base }
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn sigterm(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for BinServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens the database of a data dir read-write (WAL lets this run beside a server).
pub fn open_store(data_dir: &Path) -> Store {
    Store::open(&data_dir.join("frontdesk.db")).unwrap()
}
