//! Certificates from an ACME CA (RFC 8555: Let's Encrypt, or any compatible CA) for the
//! built-in HTTPS listener: loaded from `data_dir/acme/` at start, ordered when missing,
//! renewed in the background when fewer than `renew_before_days` remain. Challenges are
//! answered by the running server: TLS-ALPN-01 on the HTTPS listener itself, or HTTP-01 on
//! a small plain-HTTP listener. A failed order is retried with growing pauses, and the
//! certificate in use keeps being served meanwhile.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, HttpClient,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_util::sync::CancellationToken;

use crate::config::AcmeConfig;
use crate::domain::cert_validity;
use crate::error::{Error, Result};
use crate::tls::Certificates;

/// The certificate and its key, in one file (replaced in one rename).
const CERTIFICATE_FILE: &str = "certificate.pem";
/// The CA account (its key and URL).
const ACCOUNT_FILE: &str = "account.json";
/// First pause after a failed order; doubled up to the check interval.
const FIRST_RETRY: Duration = Duration::from_secs(5);

/// Where the ACME files live.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("acme")
}

/// Serves the saved certificate, if there is one; returns when it expires (Unix seconds).
pub fn load_saved(dir: &Path, certs: &Certificates) -> Result<Option<i64>> {
    let pem = match std::fs::read(dir.join(CERTIFICATE_FILE)) {
        Ok(pem) => pem,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::unavailable(
                &format!("reading {}", dir.join(CERTIFICATE_FILE).display()),
                e,
            ));
        }
    };
    let key = crate::tls::certified_key(&pem, &pem).map_err(|e| {
        Error::Invalid(format!(
            "{}: {e}; delete it and a new certificate is ordered",
            dir.join(CERTIFICATE_FILE).display()
        ))
    })?;
    let not_after = key.end_entity_cert().ok().and_then(|c| cert_validity::not_after(c));
    certs.set_current(key);
    Ok(Some(not_after.unwrap_or(0)))
}

/// Keeps a valid certificate in `certs` until `stop`: orders one when there is none or the
/// one served (expiring at `not_after`, as `load_saved` found it) is due for renewal, then
/// checks every `check_every_minutes`.
pub async fn keep_current(
    config: AcmeConfig,
    dir: PathBuf,
    certs: Arc<Certificates>,
    mut not_after: Option<i64>,
    stop: CancellationToken,
) {
    let check_every = Duration::from_secs(config.check_every_minutes * 60);
    let mut retry = FIRST_RETRY;
    loop {
        let due = not_after
            .is_none_or(|n| cert_validity::renewal_due(n, crate::domain::now_ms() / 1000, config.renew_before_days));
        let pause = if !due {
            retry = FIRST_RETRY;
            check_every
        } else {
            match order(&config, &dir, &certs).await {
                Ok(issued) => {
                    tracing::info!(domains = ?config.domains, not_after = issued, "certificate issued by the ACME CA");
                    not_after = Some(issued);
                    retry = FIRST_RETRY;
                    check_every
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in_s = retry.as_secs(), domains = ?config.domains,
                        "ordering a certificate failed; check that the domains resolve to this server and that port {} reaches it",
                        if config.challenge == crate::config::AcmeChallenge::Http01 { 80 } else { 443 });
                    let pause = retry;
                    retry = (retry * 2).min(check_every);
                    pause
                }
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Orders a certificate for the configured domains, answers the challenges, saves the
/// result and starts serving it; returns when it expires (Unix seconds).
pub async fn order(config: &AcmeConfig, dir: &Path, certs: &Certificates) -> Result<i64> {
    crate::private_fs::create_dir_all(dir)
        .map_err(|e| Error::unavailable(&format!("creating {}", dir.display()), e))?;
    let http = client(config)?;
    let account_path = dir.join(ACCOUNT_FILE);
    let saved: Option<AccountCredentials> = std::fs::read(&account_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let saved_ok = saved.is_some();
    let account = match saved {
        Some(creds) => Account::builder_with_http(http.clone_box())
            .from_credentials(creds)
            .await
            .map_err(acme_error)?,
        None => new_account(config, &account_path, http.clone_box()).await?,
    };
    let (chain, key) = match run_order(config, &account, certs).await {
        Ok(x) => x,
        // The CA may have forgotten the saved account (a test CA restarted, or it was
        // deactivated): register again once.
        Err(e) if saved_ok => {
            tracing::warn!(error = %e, "the order failed with the saved ACME account; registering a new one");
            let account = new_account(config, &account_path, http.clone_box()).await?;
            run_order(config, &account, certs).await?
        }
        Err(e) => return Err(e),
    };
    let key_set = crate::tls::certified_key(chain.as_bytes(), key.as_bytes())?;
    let not_after = key_set
        .end_entity_cert()
        .ok()
        .and_then(|c| cert_validity::not_after(c))
        .ok_or_else(|| Error::Invalid("the CA's certificate has no readable expiry".into()))?;
    let file = dir.join(CERTIFICATE_FILE);
    crate::private_fs::replace(&file, format!("{key}{chain}").as_bytes())
        .map_err(|e| crate::Error::writing(&file, e))?;
    certs.set_current(key_set);
    Ok(not_after)
}

async fn new_account(config: &AcmeConfig, path: &Path, http: Box<dyn HttpClient>) -> Result<Account> {
    let contact = format!("mailto:{}", config.email);
    let contacts = [contact.as_str()];
    let new = NewAccount {
        contact: if config.email.is_empty() { &[] } else { &contacts },
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, creds) = Account::builder_with_http(http)
        .create(&new, config.directory_url.clone(), None)
        .await
        .map_err(acme_error)?;
    crate::private_fs::replace(path, &serde_json::to_vec(&creds)?).map_err(|e| crate::Error::writing(path, e))?;
    Ok(account)
}

/// One order: challenges answered, finalised; returns (chain PEM, private key PEM).
async fn run_order(config: &AcmeConfig, account: &Account, certs: &Certificates) -> Result<(String, String)> {
    let identifiers: Vec<Identifier> = config.domains.iter().map(|d| Identifier::Dns(d.clone())).collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(acme_error)?;
    let mut answered: Vec<(String, String)> = Vec::new();
    let result = async {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(acme_error)?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(Error::Unavailable(format!(
                        "the CA reports the authorization as {other:?}"
                    )));
                }
            }
            let kind = if config.challenge == crate::config::AcmeChallenge::Http01 {
                ChallengeType::Http01
            } else {
                ChallengeType::TlsAlpn01
            };
            let mut challenge = authz.challenge(kind.clone()).ok_or_else(|| {
                Error::Unavailable(format!(
                    "the CA offers no {} challenge; try the other challenge type",
                    config.challenge
                ))
            })?;
            let host = challenge.identifier().to_string();
            let key_auth = challenge.key_authorization();
            if kind == ChallengeType::Http01 {
                certs.set_http_answer(&challenge.token, Some(key_auth.as_str().to_string()));
                answered.push((String::new(), challenge.token.clone()));
            } else {
                certs.set_alpn_challenge(&host, Some(alpn_challenge_key(&host, key_auth.digest().as_ref())?));
                answered.push((host, String::new()));
            }
            challenge.set_ready().await.map_err(acme_error)?;
        }
        let retry = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .backoff(1.5)
            .timeout(Duration::from_secs(120));
        let status = order.poll_ready(&retry).await.map_err(acme_error)?;
        if status != OrderStatus::Ready {
            return Err(Error::Unavailable(format!(
                "the CA did not accept the challenge answers (order {status:?})"
            )));
        }
        let key = order.finalize().await.map_err(acme_error)?;
        let chain = order.poll_certificate(&retry).await.map_err(acme_error)?;
        Ok((chain, key))
    }
    .await;
    for (host, token) in answered {
        if host.is_empty() {
            certs.set_http_answer(&token, None);
        } else {
            certs.set_alpn_challenge(&host, None);
        }
    }
    result
}

/// The self-signed certificate a TLS-ALPN-01 challenge is answered with: the host name and
/// the critical acmeIdentifier extension holding SHA-256 of the key authorization.
fn alpn_challenge_key(host: &str, digest: &[u8]) -> Result<rustls::sign::CertifiedKey> {
    let mut params =
        rcgen::CertificateParams::new(vec![host.to_string()]).map_err(|e| Error::Invalid(format!("{host:?}: {e}")))?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key_pair = rcgen::KeyPair::generate().map_err(|e| Error::internal("challenge key", e))?;
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| Error::internal("challenge certificate", e))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| Error::internal("challenge key", e))?;
    Ok(rustls::sign::CertifiedKey::new(vec![cert.der().clone()], signing))
}

/// The HTTP client the ACME library talks through: our reqwest (rustls with ring), with
/// the extra root from `ca_root_file` trusted when set.
#[derive(Clone)]
struct ReqwestForAcme(reqwest::Client);

impl ReqwestForAcme {
    fn clone_box(&self) -> Box<dyn HttpClient> {
        Box::new(self.clone())
    }
}

fn client(config: &AcmeConfig) -> Result<ReqwestForAcme> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("frontdesk/", env!("CARGO_PKG_VERSION")));
    if !config.ca_root_file.as_os_str().is_empty() {
        let pem = std::fs::read(&config.ca_root_file)
            .map_err(|e| Error::unavailable(&format!("reading {}", config.ca_root_file.display()), e))?;
        for der in CertificateDer::pem_slice_iter(&pem) {
            let der = der.map_err(|e| Error::Invalid(format!("{}: {e}", config.ca_root_file.display())))?;
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_der(&der)
                    .map_err(|e| Error::Invalid(format!("{}: {e}", config.ca_root_file.display())))?,
            );
        }
    }
    Ok(ReqwestForAcme(
        builder.build().map_err(|e| Error::internal("ACME HTTP client", e))?,
    ))
}

impl HttpClient for ReqwestForAcme {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<BytesResponse, instant_acme::Error>> + Send>> {
        let client = self.0.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            let req = reqwest::Request::try_from(http::Request::from_parts(parts, body))
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let resp = client
                .execute(req)
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            Ok(BytesResponse::from(http::Response::<reqwest::Body>::from(resp)))
        })
    }
}

fn acme_error(e: instant_acme::Error) -> Error {
    Error::Unavailable(format!("ACME: {e}"))
}
