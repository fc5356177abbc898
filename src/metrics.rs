//! Process counters, rendered in the Prometheus text format at `/metrics`.
//! Plain atomics owned by `App`: no global registry.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident: $help:literal),* $(,)?) => {
        /// Every counter frontdesk keeps.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $(#[doc = $help] pub $name: AtomicU64,)*
        }

        impl Metrics {
            /// The counters in Prometheus text format, each prefixed `frontdesk_`.
            pub fn render(&self) -> String {
                let mut out = String::new();
                $(
                    let _ = writeln!(out, "# HELP frontdesk_{} {}", stringify!($name), $help);
                    let _ = writeln!(out, "# TYPE frontdesk_{} counter", stringify!($name));
                    let _ = writeln!(out, "frontdesk_{} {}", stringify!($name), self.$name.load(Ordering::Relaxed));
                )*
                out
            }
        }
    };
}

counters! {
    webhooks_received_total: "Webhook POSTs received.",
    webhooks_accepted_total: "Webhook POSTs stored durably and acknowledged with 200.",
    webhooks_duplicate_total: "Webhook POSTs whose every dedupe key was seen before.",
    webhooks_rejected_signature_total: "Webhook POSTs refused for a missing or wrong signature.",
    webhooks_rejected_body_total: "Webhook POSTs refused for an oversized or unreadable body.",
    webhooks_unavailable_total: "Webhook POSTs answered 503 because the journal could not be written.",
    ingest_messages_total: "Inbound messages stored.",
    ingest_statuses_total: "Delivery statuses that moved a message forward.",
    ingest_raw_events_total: "Webhook parts kept raw because they were not understood or not handled.",
    jobs_done_total: "Queue jobs completed.",
    jobs_failed_total: "Queue jobs that failed an attempt.",
    sends_accepted_total: "Outbound messages accepted by the Graph API.",
    sends_retried_total: "Outbound send attempts that failed and will be retried.",
    sends_failed_total: "Outbound messages that failed for good (reason in the ledger).",
    bot_answers_total: "Customer messages the bot answered.",
    handoffs_total: "Conversations handed to a person.",
    notify_failed_total: "Handoff notifications (Slack) that failed.",
    tool_calls_total: "HTTP tool calls made for models or the offline responder.",
    tool_calls_failed_total: "HTTP tool calls that failed (unknown tool, bad arguments, HTTP error, timeout, too large).",
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
