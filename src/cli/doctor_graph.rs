//! `frontdesk doctor`'s sending checks: whenever an access token is set, the Graph API is
//! reached and the token tested (`/me`), its permissions read (`/me/permissions`: it
//! must hold `whatsapp_business_messaging`), and each configured number read with it.
//! Every failure gets the fix for its cause: the network, the token, a permission, or
//! the number id.

use std::time::Duration;

use super::doctor::Report;
use crate::config::Config;
use crate::whatsapp::graph::{GraphClient, GraphError};

/// The permission without which nothing can be sent.
const MESSAGING: &str = "whatsapp_business_messaging";

/// Why a Graph call failed, as far as the fix goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cause {
    /// No answer: DNS, a refused or dropped connection, TLS, a timeout.
    Network,
    /// The token is expired, revoked or not a token (HTTP 401, code 190 or 0).
    Token,
    /// The token is valid but may not do this (HTTP 403, code 10, 3 or 200-299).
    Permission,
    /// The object is not there for this token (code 100 subcode 33, HTTP 404).
    NumberId,
    Other,
}

pub(super) fn cause(e: &GraphError) -> Cause {
    match e {
        GraphError::Transport { .. } => Cause::Network,
        GraphError::Api {
            code: Some(190 | 0), ..
        }
        | GraphError::Api { http_status: 401, .. } => Cause::Token,
        GraphError::Api {
            code: Some(3 | 10 | 200..=299),
            ..
        }
        | GraphError::Api { http_status: 403, .. } => Cause::Permission,
        GraphError::Api {
            code: Some(100),
            subcode: Some(33),
            ..
        }
        | GraphError::Api { http_status: 404, .. } => Cause::NumberId,
        _ => Cause::Other,
    }
}

/// What to do about a failure of this cause.
pub(super) fn fix(cause: Cause, config: &Config) -> String {
    let base = &config.whatsapp.graph_base_url;
    match cause {
        Cause::Network => format!(
            "this machine cannot reach the Graph API at {base} (nothing was said about the token): check DNS and \
             the firewall (outbound HTTPS to graph.facebook.com), set HTTPS_PROXY if traffic must go through a \
             proxy, and check whatsapp.graph_base_url"
        ),
        Cause::Token => "the token is expired or revoked: create a new system-user token with \
             whatsapp_business_messaging (Business Settings > Users > System users > Generate new token) and set \
             whatsapp.access_token (or FRONTDESK__WHATSAPP__ACCESS_TOKEN)"
            .into(),
        Cause::Permission => format!(
            "the token may not send: generate it with the {MESSAGING} permission, and assign the WhatsApp \
             account to its system user (Business Settings > Users > System users > Assign assets)"
        ),
        Cause::NumberId => "check whatsapp.phone_number_ids (WhatsApp Manager > Phone numbers shows each number's \
             id, not the phone number itself) and that its WhatsApp account is assigned to the token's system user"
            .into(),
        Cause::Other => {
            "see the error above; Meta lists its codes under WhatsApp Cloud API > Support > Error codes".into()
        }
    }
}

/// The sending checks. A missing token is only a warning (an instance may only receive);
/// any token set is tested, with or without phone number ids.
pub(super) async fn graph(r: &mut Report, config: &Config) {
    let w = &config.whatsapp;
    if w.access_token.is_empty() {
        r.warn(
            "graph token",
            "whatsapp.access_token is not set: messages are received but no reply can be sent",
        );
        return;
    }
    let client = GraphClient::new(
        &w.graph_base_url,
        &w.api_version,
        w.access_token.clone(),
        Duration::from_millis(w.request_timeout_ms),
    );
    let fail = |r: &mut Report, what: &str, e: &GraphError| {
        let c = cause(e);
        let detail = match c {
            Cause::Network => format!("{} is unreachable: {e}", w.graph_base_url),
            _ => e.to_string(),
        };
        r.fail(what, detail, &fix(c, config));
    };
    match client.whoami().await {
        Ok(me) => {
            let who = me
                .get("name")
                .or_else(|| me.get("id"))
                .and_then(|v| v.as_str())
                .unwrap_or("a system user");
            r.ok(
                "graph token",
                format!("{} accepts it (it belongs to {who})", w.graph_base_url),
            );
        }
        Err(e) => {
            fail(r, "graph token", &e);
            return;
        }
    }
    match client.permissions().await {
        Ok(granted) => {
            let has = |p: &str| granted.iter().any(|(n, s)| n == p && s == "granted");
            if has(MESSAGING) {
                r.ok("graph permissions", format!("the token holds {MESSAGING}"));
            } else {
                let list: Vec<&str> = granted
                    .iter()
                    .filter(|(_, s)| s == "granted")
                    .map(|(n, _)| n.as_str())
                    .collect();
                r.fail(
                    "graph permissions",
                    format!(
                        "the token lacks {MESSAGING} (granted: {})",
                        if list.is_empty() {
                            "none".into()
                        } else {
                            list.join(", ")
                        }
                    ),
                    &fix(Cause::Permission, config),
                );
            }
        }
        Err(e) if cause(&e) == Cause::Other => r.warn(
            "graph permissions",
            format!("could not list the token's permissions ({e}); a send will tell"),
        ),
        Err(e) => fail(r, "graph permissions", &e),
    }
    if w.phone_number_ids.is_empty() {
        r.ok(
            "graph numbers",
            "whatsapp.phone_number_ids is empty: every number of the app is served",
        );
    }
    for number in &w.phone_number_ids {
        match client.check_token(number).await {
            Ok(()) => r.ok(&format!("graph number {number}"), "readable with this token"),
            Err(e) => fail(r, &format!("graph number {number}"), &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(http_status: u16, code: Option<i64>, subcode: Option<i64>) -> GraphError {
        GraphError::Api {
            retry_after_ms: None,
            http_status,
            code,
            subcode,
            title: String::new(),
        }
    }

    #[test]
    fn each_error_has_its_cause() {
        let transport = GraphError::Transport {
            detail: "dns error".into(),
            maybe_delivered: false,
        };
        let cases = [
            (transport, Cause::Network),
            (api(401, Some(190), None), Cause::Token),
            (api(400, Some(190), Some(463)), Cause::Token),
            (api(401, None, None), Cause::Token),
            (api(403, Some(10), None), Cause::Permission),
            (api(400, Some(200), None), Cause::Permission),
            (api(400, Some(100), Some(33)), Cause::NumberId),
            (api(500, Some(1), None), Cause::Other),
        ];
        for (e, want) in cases {
            assert_eq!(cause(&e), want, "{e:?}");
        }
        let c = Config::default();
        assert!(
            fix(Cause::Network, &c).contains("HTTPS_PROXY") && !fix(Cause::Network, &c).contains("new system-user")
        );
        assert!(fix(Cause::Token, &c).contains("new system-user token"));
        assert!(fix(Cause::Permission, &c).contains(MESSAGING));
    }
}
