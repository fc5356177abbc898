//! Built-in HTTPS from certificate files (`server.tls_cert_file`, `server.tls_key_file`):
//! a listener that accepts TCP connections (each taking one of the server's connection
//! slots first), completes each TLS handshake in its own task (with a timeout, so a slow
//! client never holds up the others) and hands finished streams to the HTTP server loop. Plain HTTP behind a reverse proxy remains the default. With ACME the
//! listener serves from `Certificates`, which the renewal task replaces while it runs.

pub mod acme;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::error::{Error, Result};

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads a certificate chain and its private key (PEM) into a server configuration.
pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<rustls::ServerConfig> {
    let bad = |what: &Path, e: String| {
        Error::Invalid(format!(
            "{}: {e}; give a PEM file (the full chain for the certificate, the unencrypted key for the key)",
            what.display()
        ))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| bad(cert_file, e.to_string()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(cert_file, "no certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| bad(key_file, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::Invalid(format!(
                "{} and {} do not form a usable certificate and key: {e}",
                cert_file.display(),
                key_file.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// ALPN protocol of TLS-ALPN-01 challenges (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// What the HTTPS listener serves, replaceable while it runs: the current certificate, and
/// during an ACME order the TLS-ALPN-01 challenge certificates (by host name) and HTTP-01
/// answers (by token).
#[derive(Debug, Default)]
pub struct Certificates {
    current: RwLock<Option<Arc<CertifiedKey>>>,
    alpn_challenges: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    http_answers: Mutex<HashMap<String, String>>,
}

impl Certificates {
    /// Serves `key` to every new connection from now on.
    pub fn set_current(&self, key: CertifiedKey) {
        *self.current.write().expect("certificate lock") = Some(Arc::new(key));
    }

    /// Answers TLS-ALPN-01 handshakes for `host` with `key` (or stops, with `None`).
    pub fn set_alpn_challenge(&self, host: &str, key: Option<CertifiedKey>) {
        let mut map = self.alpn_challenges.lock().expect("challenge lock");
        match key {
            Some(k) => map.insert(host.to_ascii_lowercase(), Arc::new(k)),
            None => map.remove(&host.to_ascii_lowercase()),
        };
    }

    /// Answers `GET /.well-known/acme-challenge/{token}` with `answer` (or stops, with `None`).
    pub fn set_http_answer(&self, token: &str, answer: Option<String>) {
        let mut map = self.http_answers.lock().expect("challenge lock");
        match answer {
            Some(a) => map.insert(token.to_string(), a),
            None => map.remove(token),
        };
    }

    /// The HTTP-01 answer for `token`.
    pub fn http_answer(&self, token: &str) -> Option<String> {
        self.http_answers.lock().expect("challenge lock").get(token).cloned()
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if acme {
            let host = hello.server_name()?.to_ascii_lowercase();
            return self.alpn_challenges.lock().expect("challenge lock").get(&host).cloned();
        }
        self.current.read().expect("certificate lock").clone()
    }
}

/// A server configuration that takes its certificate from `certs` at each handshake.
pub fn resolving_server_config(certs: Arc<Certificates>) -> Result<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    Ok(config)
}

/// A certificate chain and its private key, both from one PEM text.
pub fn certified_key(chain_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Invalid(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Invalid("certificate PEM: no certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| Error::Invalid(format!("private key PEM: {e}")))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| Error::Invalid(format!("private key: {e}")))?;
    let key = CertifiedKey::new(certs, signing);
    key.keys_match()
        .map_err(|e| Error::Invalid(format!("the certificate and the key do not match: {e}")))?;
    Ok(key)
}

/// A finished TLS stream, its peer, and the connection slot it holds.
pub type Ready = (TlsStream<TcpStream>, SocketAddr, OwnedSemaphorePermit);

/// A listener yielding finished TLS streams.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<Ready>,
    _accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `listener`, each connection after taking one of `slots` (held through
    /// the handshake and then by the served connection).
    pub fn new(
        listener: TcpListener,
        config: rustls::ServerConfig,
        slots: Arc<Semaphore>,
    ) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (tx, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (tcp, peer) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer, slot)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            local,
            ready,
            _accepting: accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self._accepting.abort();
    }
}

impl TlsListener {
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl TlsListener {
    /// The next finished handshake, once a connection slot is free.
    pub async fn next(&mut self) -> Ready {
        match self.ready.recv().await {
            Some(x) => x,
            // The accept task only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }
}
