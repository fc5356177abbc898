//! Gather: everything the engine's policy reads about a conversation, collected in one
//! read transaction (one store round trip) before anything is decided — the live
//! settings, the owner, the opt-out, the message's recorded handoff, the recent turns,
//! the last hand-back, the rolling summary and, when a tier has a model, today's spend
//! and the turns not yet summarised.

use crate::domain::settings::Effective;
use crate::error::Result;
use crate::llm::ModelRef;
use crate::store::conversations::{Burst, InboundForReply};
use crate::store::reply::{ConversationFacts, FactsQuery};

use super::Deps;
use super::context::HISTORY_TURNS;

/// A topic stays "one issue" for this long: more than three customer turns within it
/// route to the reasoning tier.
pub const ISSUE_WINDOW_MS: i64 = 30 * 60 * 1000;

/// A hand-back note is shown to the model for this long.
pub const HANDBACK_NOTE_MS: i64 = 24 * 3_600_000;

/// Turns before the reply that a follow-up's search and the clarifying check look at.
pub const EARLIER_TURNS: usize = 4;

/// What the engine knows about one message when it decides.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub wamid: String,
    pub conversation_id: i64,
    pub customer_name: Option<String>,
    /// The customer's WhatsApp id (tools get it from the engine, never from the model).
    pub wa_id: String,
    /// The message's own text (the handoff packet quotes it).
    pub inbound_text: String,
    /// The customer messages this reply covers, oldest first.
    pub texts: Vec<String>,
    /// The burst is only media the bot could not use: (media type, voice note?).
    pub unusable_media: Option<(String, bool)>,
    /// What the store holds about the conversation.
    pub conversation: ConversationFacts,
}

impl Facts {
    /// The customer's words this reply answers.
    pub fn question(&self) -> String {
        self.texts.join("\n").trim().to_string()
    }

    /// The last few turns before the reply (from the customer?, text), oldest first.
    pub fn earlier_turns(&self) -> &[(bool, String)] {
        let h = &self.conversation.history;
        &h[h.len().saturating_sub(EARLIER_TURNS)..]
    }

    /// Whether the conversation had customer messages before this reply's own (a
    /// follow-up is searched together with the previous message).
    pub fn is_follow_up(&self) -> bool {
        self.conversation.recent_inbound > self.texts.len()
    }

    /// No bot message yet: the answer opens with the disclosure.
    pub fn first_contact(&self) -> bool {
        self.conversation.bot_messages_sent == 0
    }

    /// The note of a hand-back within the last day, for the model.
    pub fn handback_note(&self, now: i64) -> Option<&str> {
        self.conversation
            .last_handback
            .as_ref()
            .filter(|h| !h.note.is_empty() && now - h.at < HANDBACK_NOTE_MS)
            .map(|h| h.note.as_str())
    }
}

/// The facts and the settings they were read with.
pub struct Gathered {
    pub facts: Facts,
    pub settings: Effective,
}

/// A tier's model chain, from the settings.
pub fn chain_of(settings: &Effective, tier: crate::domain::router::Tier) -> Vec<ModelRef> {
    settings
        .get(&format!("tier.{}", tier.as_str()))
        .split(',')
        .filter_map(ModelRef::parse)
        .collect()
}

/// Whether `chain` has a model that is not the offline responder.
pub fn has_remote(chain: &[ModelRef], remote: &[String]) -> bool {
    chain.iter().any(|m| remote.contains(&m.provider))
}

/// Reads the facts of message `wamid` (the reply covers `burst`, or just this message)
/// in one read transaction.
pub async fn gather(
    deps: &Deps<'_>,
    wamid: &str,
    inbound: &InboundForReply,
    burst: Option<&Burst>,
) -> Result<Gathered> {
    let defaults = crate::settings::defaults(deps.config);
    let remote = deps.models.remote_providers();
    let now = crate::domain::now_ms();
    let (conversation_id, w, burst_first) = (inbound.conversation_id, wamid.to_string(), burst.map(|b| b.first_id));
    let (settings, conversation) = deps
        .store
        .read(move |c| {
            let tx = c.unchecked_transaction()?;
            let settings = Effective::new(&defaults, &crate::store::settings::overrides(&tx)?);
            // Spend and memory matter only when a tier has a model.
            let tiers = [
                crate::domain::router::Tier::Commodity,
                crate::domain::router::Tier::Reasoning,
            ];
            let models = tiers.iter().any(|t| has_remote(&chain_of(&settings, *t), &remote));
            let q = FactsQuery {
                conversation_id,
                wamid: &w,
                burst_first,
                history_turns: HISTORY_TURNS,
                recent_since: now - ISSUE_WINDOW_MS,
                spent_since: models.then_some(now / 86_400_000 * 86_400_000),
                memory: models,
            };
            let conversation = crate::store::reply::conversation_facts(&tx, &q)?;
            Ok((settings, conversation))
        })
        .await?;
    let texts = match burst {
        Some(b) if !b.texts.is_empty() => b.texts.clone(),
        _ => vec![inbound.text.clone()],
    };
    let unusable_media = burst
        .and_then(|b| crate::domain::media::unusable_burst(&b.parts))
        .map(|(t, voice)| (t.to_string(), voice));
    let facts = Facts {
        wamid: wamid.to_string(),
        conversation_id,
        customer_name: inbound.name.clone(),
        wa_id: inbound.wa_id.clone(),
        inbound_text: inbound.text.clone(),
        texts,
        unusable_media,
        conversation,
    };
    Ok(Gathered { facts, settings })
}
