//! ACME against a real local CA (Let's Encrypt's `pebble` test server, a Debian package
//! `./scripts/test` installs): a certificate is issued through a TLS-ALPN-01 challenge the
//! running server answers on its own HTTPS port, saved, served; a restart reuses it without
//! a new order; a certificate due for renewal is replaced through HTTP-01 on the plain
//! listener, which redirects everything else. Config mistakes are named.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::TestServer;

/// A pebble process, killed when dropped.
struct Pebble {
    child: Child,
    directory: String,
    management: String,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts pebble, validating challenges on `tls_port` (TLS-ALPN-01) and `http_port`
/// (HTTP-01) of localhost, with its own HTTPS listener using `cert`/`key`.
fn start_pebble(dir: &Path, cert: &Path, key: &Path, tls_port: u16, http_port: u16) -> Pebble {
    let (listen, manage) = (free_port(), free_port());
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{listen}"),
        "managementListenAddress": format!("127.0.0.1:{manage}"),
        "certificate": cert, "privateKey": key,
        "httpPort": http_port, "tlsPort": tls_port,
        "ocspResponderURL": "", "externalAccountBindingRequired": false
    }});
    std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
    let log = std::fs::File::create(dir.join("pebble.log")).unwrap();
    let child = Command::new("pebble")
        .arg("-config")
        .arg(dir.join("pebble.json"))
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .env("PEBBLE_AUTHZREUSE", "0")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("pebble starts");
    Pebble {
        child,
        directory: format!("https://localhost:{listen}/dir"),
        management: format!("https://localhost:{manage}"),
    }
}

fn pebble_available() -> bool {
    if Command::new("pebble")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
    {
        return true;
    }
    // ./scripts/test installs pebble and sets this; there a missing pebble is a failure.
    assert!(
        std::env::var("FRONTDESK_REQUIRE_PEBBLE").is_err(),
        "pebble was installed by ./scripts/test but cannot be run"
    );
    eprintln!("SKIPPED: ACME issuance test: `pebble` is not installed (apt-get install pebble)");
    false
}

/// The leaf certificate the server presents to a client that trusts `root_pem`, asking
/// for localhost (`None` when the handshake fails).
async fn served_leaf(addr: SocketAddr, root_pem: &[u8]) -> Option<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(root_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .ok()?;
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
}

async fn wait_for_leaf(addr: SocketAddr, root_pem: &[u8], not: Option<&[u8]>, what: &str, log: &Path) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(leaf) = served_leaf(addr, root_pem).await
            && not != Some(leaf.as_slice())
        {
            return leaf;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no certificate within 90 s; pebble log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn acme_config(c: &mut frontdesk::config::Config, data: &Path, port: u16, pebble: &Pebble, ca: &Path) {
    c.storage.data_dir = data.to_path_buf();
    c.server.listen = format!("127.0.0.1:{port}");
    c.server.public_url = format!("https://localhost:{port}");
    c.server.acme.domains = vec!["localhost".into()];
    c.server.acme.email = "ops@example.com".into();
    c.server.acme.directory_url = pebble.directory.clone();
    c.server.acme.ca_root_file = ca.to_path_buf();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_issued_reused_and_renewed_by_a_real_acme_ca() {
    if !pebble_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::tls::make_cert(dir.path());
    let (https_port, http_port) = (free_port(), free_port());
    let pebble = start_pebble(dir.path(), &cert, &key, https_port, http_port);
    let log = dir.path().join("pebble.log");
    let to_pebble = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while to_pebble.get(&pebble.directory).send().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "pebble did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 1. First start: no certificate; one is ordered through TLS-ALPN-01 on the HTTPS port.
    let s = TestServer::start_with(|c| acme_config(c, data.path(), https_port, &pebble, &ca)).await;
    let addr = s.running.as_ref().unwrap().addr;
    let root = to_pebble
        .get(format!("{}/roots/0", pebble.management))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let first = wait_for_leaf(addr, &root, None, "first issuance", &log).await;
    let saved = data.path().join("acme/certificate.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
            0o600,
            "the key is private"
        );
        assert_eq!(
            std::fs::metadata(saved.parent().unwrap()).unwrap().permissions().mode() & 0o777,
            0o700,
            "so is its directory"
        );
    }
    let not_after = frontdesk::domain::cert_validity::not_after(&first).expect("expiry readable");
    assert!(
        not_after > frontdesk::domain::now_ms() / 1000 + 30 * 86_400,
        "a fresh certificate"
    );
    // Real HTTPS requests work with the issued certificate.
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&root).unwrap())
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let r = https
        .get(format!("https://localhost:{https_port}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;

    // 2. Restart: the saved certificate is served at once and no new order is placed.
    let saved_before = std::fs::read(&saved).unwrap();
    let s = TestServer::start_with(|c| acme_config(c, data.path(), https_port, &pebble, &ca)).await;
    assert_eq!(
        served_leaf(addr, &root).await.as_deref(),
        Some(first.as_slice()),
        "the saved certificate, served from the first handshake"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(std::fs::read(&saved).unwrap(), saved_before, "not due: no renewal");
    s.stop().await;

    // 3. Renewal (every certificate counts as due), this time through HTTP-01 on the plain
    // listener; the old certificate is served until the new one arrives.
    let s = TestServer::start_with(|c| {
        acme_config(c, data.path(), https_port, &pebble, &ca);
        c.server.acme.challenge = frontdesk::config::AcmeChallenge::Http01;
        c.server.acme.http_listen = format!("127.0.0.1:{http_port}");
        c.server.acme.renew_before_days = 100_000;
    })
    .await;
    let renewed = wait_for_leaf(addr, &root, Some(&first), "renewal", &log).await;
    assert_ne!(renewed, first);
    assert_ne!(std::fs::read(&saved).unwrap(), saved_before);
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = plain
        .get(format!("http://127.0.0.1:{http_port}/inbox?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"],
        format!("https://localhost:{https_port}/inbox?x=1").as_str()
    );
    let r = plain
        .get(format!("http://127.0.0.1:{http_port}/.well-known/acme-challenge/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    s.stop().await;
    drop(pebble);
}

#[test]
fn acme_config_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let problems = |c: &frontdesk::config::Config| {
        frontdesk::preflight::problems(c)
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut c = crate::support::test_config(dir.path());
    c.server.acme.domains = vec!["https://chat.example.com".into(), "10.0.0.1".into()];
    c.server.acme.challenge = frontdesk::config::AcmeChallenge::Http01;
    c.server.acme.directory_url = "http://ca.invalid/dir".into();
    c.server.acme.ca_root_file = PathBuf::from("/nonexistent/root.pem");
    c.server.tls_cert_file = PathBuf::from("cert.pem");
    c.server.tls_key_file = PathBuf::from("key.pem");
    let p = problems(&c);
    for wanted in [
        "either from files (tls_cert_file) or from ACME",
        "\"https://chat.example.com\" is not a host name",
        "\"10.0.0.1\" is not a host name",
        "must be an https:// URL",
        "http-01 needs a plain-HTTP listener",
        "server.acme.ca_root_file",
    ] {
        assert!(p.contains(wanted), "{wanted:?} missing from:\n{p}");
    }
    let mut c = crate::support::test_config(dir.path());
    c.server.acme.domains = vec!["chat.example.com".into()];
    c.server.acme.challenge = frontdesk::config::AcmeChallenge::TlsAlpn01;
    assert!(!problems(&c).contains("server.acme"), "{}", problems(&c));
    // A challenge type that does not exist is refused when the file is read, naming the key
    // and the two that do.
    let e = frontdesk::config::Config::from_toml_str("[server.acme]\nchallenge = \"dns-01\"\n")
        .unwrap_err()
        .to_string();
    for wanted in ["server.acme.challenge", "dns-01", "tls-alpn-01", "http-01"] {
        assert!(e.contains(wanted), "{wanted:?} missing from: {e}");
    }
}
