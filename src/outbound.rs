//! Sending a message: validate it, refuse free-form sends outside the 24-hour window,
//! write the ledger row, queue the send job. Everything that sends (bot, agents, system)
//! comes through here; the send worker does the rest.

use crate::config::TemplateConfig;
use crate::domain::outbound::OutboundBody;
use crate::error::{Error, Result};
use crate::queue::{Ingress, Queue};
use crate::store::Store;
use crate::store::ledger::{self, NewOutbound};

/// The queue holding send jobs (payload: the ledger id).
pub const SEND_QUEUE: &str = "send";

/// Why a free-form message is refused outside the 24-hour window.
pub const WINDOW_CLOSED: &str = "the 24-hour window is closed: the customer's last message was more than 24 hours ago, \
     so WhatsApp only allows an approved template; pick one of the configured templates";

/// The one way to send: the ledger (store), the send queue and the configured templates.
#[derive(Clone)]
pub struct Outbound {
    store: Store,
    queue: Queue,
    templates: Vec<TemplateConfig>,
}

impl Outbound {
    pub fn new(store: Store, queue: Queue, templates: Vec<TemplateConfig>) -> Outbound {
        Outbound {
            store,
            queue,
            templates,
        }
    }

    /// Records `req` in the ledger and queues it for sending. Idempotent on
    /// `req.idempotency_key`: the same request twice is one row and one send.
    pub async fn enqueue(&self, req: NewOutbound) -> Result<i64> {
        req.body
            .validate()
            .map_err(|e| Error::Invalid(format!("cannot send this message: {e}")))?;
        check_template(&self.templates, &req.body)?;
        let now = crate::domain::now_ms();
        // A refused send still commits the conversation's "needs a template" flag.
        let decided = self
            .store
            .write(move |conn| ledger::insert_within_window(conn, &req, now))
            .await?;
        let (id, created_at) = decided.ok_or_else(|| Error::Invalid(WINDOW_CLOSED.into()))?;
        queue_send(&self.queue, id, created_at).await?;
        Ok(id)
    }

    /// At start: makes sure every unsent ledger row has a send job (a crash between
    /// writing a row and queueing its job leaves a row without one).
    pub async fn requeue_pending(&self) -> Result<usize> {
        let ids = self.store.read(ledger::pending_ids).await?;
        let mut queued = 0;
        for (id, created_at) in ids {
            if matches!(queue_send(&self.queue, id, created_at).await?, Ingress::Enqueued(_)) {
                queued += 1;
            }
        }
        Ok(queued)
    }
}

/// When templates are configured, a template send must name one of them (with the right
/// number of parameters): Meta would refuse anything else (132000/132001).
fn check_template(templates: &[TemplateConfig], body: &crate::domain::outbound::OutboundBody) -> Result<()> {
    let crate::domain::outbound::OutboundBody::Template { name, language, params } = body else {
        return Ok(());
    };
    if templates.is_empty() {
        return Ok(());
    }
    match templates.iter().find(|t| &t.name == name && &t.language == language) {
        None => Err(Error::Invalid(format!(
            "template {name:?} ({language}) is not configured; configured: {}",
            templates
                .iter()
                .map(|t| format!("{} ({})", t.name, t.language))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        Some(t) if t.params != params.len() => Err(Error::Invalid(format!(
            "template {name:?} takes {} parameter(s), {} given",
            t.params,
            params.len()
        ))),
        Some(_) => Ok(()),
    }
}

/// The approved template a handoff's bridge text gives way to once the 24-hour window has
/// closed (`engine.bridge_template`, one of `whatsapp.templates`, without parameters);
/// `None` when none is configured.
pub fn bridge_template(config: &crate::config::Config) -> Option<OutboundBody> {
    let name = config.engine.bridge_template.trim();
    let t = config
        .whatsapp
        .templates
        .iter()
        .find(|t| !name.is_empty() && t.name == name)?;
    Some(OutboundBody::Template {
        name: t.name.clone(),
        language: t.language.clone(),
        params: Vec::new(),
    })
}

/// Queues the send job for ledger row `id` (a no-op if it was queued before). The key
/// carries the row's creation time too: SQLite may give an erased row's id to a new row,
/// and the new row must not be mistaken for the old one's already-queued job.
/// (Also used by the engine, which writes the ledger row inside its own transaction.)
pub async fn queue_send(queue: &Queue, id: i64, created_at: i64) -> Result<Ingress> {
    queue
        .enqueue_unique(
            format!("send:{id}:{created_at}"),
            queue.job(SEND_QUEUE, id.to_string().into_bytes()),
        )
        .await
}
