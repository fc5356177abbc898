//! Built-in HTTPS: a certificate made with openssl, the server on port 0 speaking TLS, a
//! client that trusts the certificate gets answers (webhook included); one that does
//! not, or that speaks plain HTTP, gets none; a broken key is a config problem.

use std::process::Command;

use crate::support::{SECRET, text_webhook};

/// A test CA and a certificate for localhost/127.0.0.1 signed by it (openssl CLI):
/// returns (the CA to trust, the server's chain, the server's key).
pub(crate) fn make_cert(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let p = |n: &str| dir.join(n);
    let run = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl is installed")
            .success();
        assert!(ok, "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=frontdesk test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        p("ext.cnf"),
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_from_certificate_files() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_cert(dir.path());
    let (c2, k2) = (cert.clone(), key.clone());
    let s = crate::support::TestServer::start_with(move |c| {
        c.server.tls_cert_file = c2;
        c.server.tls_key_file = k2;
    })
    .await;
    let https = s.base.replace("http://", "https://");
    let trusted = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let r = trusted.get(format!("{https}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = text_webhook("P1", "31655500001", "wamid.tls-1", "hello over https");
    let sig = frontdesk::whatsapp::signature::sign(SECRET.as_bytes(), body.as_bytes());
    let r = trusted
        .post(format!("{https}/webhook"))
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.wait_until("the message stored", |s| {
        s.inbound().iter().any(|m| m.id == "wamid.tls-1")
    })
    .await;
    // A client that does not trust the certificate, and plain HTTP, get nothing.
    assert!(
        reqwest::Client::new()
            .get(format!("{https}/healthz"))
            .send()
            .await
            .is_err()
    );
    assert!(
        reqwest::Client::new()
            .get(format!("{}/healthz", s.base))
            .send()
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
    );
    // The server still answers trusted clients after those failed handshakes.
    assert_eq!(
        trusted.get(format!("{https}/readyz")).send().await.unwrap().status(),
        200
    );
    s.stop().await;

    // A key that does not match, or a missing file: config problems naming the fix.
    let other = tempfile::tempdir().unwrap();
    let (_, _, other_key) = make_cert(other.path());
    let mut c = crate::support::test_config(dir.path());
    c.server.tls_cert_file = cert.clone();
    c.server.tls_key_file = other_key;
    let problems = frontdesk::preflight::problems(&c)
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        problems.contains("server.tls_cert_file") && problems.contains("do not form a usable certificate and key"),
        "{problems}"
    );
    c.server.tls_key_file = std::path::PathBuf::new();
    let problems = frontdesk::preflight::problems(&c)
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(problems.contains("set both"), "{problems}");
}
