//! Process counters, rendered in the Prometheus text format at `/metrics`.
//! Plain atomics owned by `App` (and by `Models` for model calls): no global registry.
//! Labelled families (handoffs by trigger, failed sends by error code, model calls,
//! tokens, cost and latency by model) keep one value per label set.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
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
    llm_reply_slips_total: "Formatting slips in model replies the tolerant parse forgave (code fences, surrounding text, a confidence clamped, unknown sources dropped, …).",
    llm_reply_repairs_total: "Model replies sent back once for repair (not the reply structure, or a confidence that is no probability).",
    llm_reply_refused_total: "Model replies refused for good (degenerate, or still unusable after the repair): handed to a person.",
    media_read_total: "Inbound media downloaded and turned into text (transcript, description, document text).",
    media_failed_total: "Inbound media that could not be used (too large, wrong type, expired, a service down, unsupported).",
    media_retried_total: "Media job attempts that failed in a way that may pass and will be retried.",
    audit_write_failed_total: "Audit log entries that could not be written after the action they record was done (logged at error with the action).",
    outbound_webhooks_delivered_total: "Outbound webhook events a receiver took (2xx).",
    outbound_webhooks_retried_total: "Outbound webhook attempts that failed and will be retried.",
    outbound_webhooks_dead_total: "Outbound webhook events that ran out of attempts (dead letters; later events of their conversation wait).",
    outbound_webhooks_dropped_total: "Outbound webhook events not kept because their endpoint had webhooks.max_pending undelivered.",
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A latency histogram in the Prometheus layout (cumulative buckets, sum, count).
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; 11],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe_ms(&self, ms: u64) {
        let secs = ms as f64 / 1000.0;
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros.fetch_add(ms * 1000, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The series of one histogram with one label (`stage="llm"`, `model="…"`).
    fn render_into(&self, out: &mut String, name: &str, label: &str, value: &str) {
        let value = escape(value);
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{label}=\"{value}\",le=\"{le}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{label}=\"{value}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum{{{label}=\"{value}\"}} {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{{label}=\"{value}\"}} {count}");
    }
}

/// Per-stage latency of the engine's replies.
#[derive(Debug, Default)]
pub struct ReplyStages {
    pub total: Histogram,
    pub retrieval: Histogram,
    pub summary: Histogram,
    pub llm: Histogram,
    pub tools: Histogram,
    pub guard: Histogram,
    pub send: Histogram,
}

impl ReplyStages {
    pub fn render(&self) -> String {
        let name = "frontdesk_reply_stage_seconds";
        let mut out = format!(
            "# HELP {name} Time per reply stage (retrieval with the query embedding, summary refresh, model calls with tool calls, tools alone, guard, send enqueue, total).\n# TYPE {name} histogram\n"
        );
        for (stage, h) in [
            ("total", &self.total),
            ("retrieval", &self.retrieval),
            ("summary", &self.summary),
            ("llm", &self.llm),
            ("tools", &self.tools),
            ("guard", &self.guard),
            ("send", &self.send),
        ] {
            h.render_into(&mut out, name, "stage", stage);
        }
        out
    }
}

/// A label value as Prometheus wants it: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A counter family with labels: one value per label set.
#[derive(Debug, Default)]
pub struct LabeledCounter {
    values: Mutex<BTreeMap<String, f64>>,
}

impl LabeledCounter {
    /// Adds `n` to the series with these labels.
    pub fn add(&self, labels: &[(&str, &str)], n: f64) {
        let key = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect::<Vec<_>>()
            .join(",");
        *self
            .values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default() += n;
    }

    fn render_into(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, v) in self.values.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// Labelled counters the workers and the engine keep.
#[derive(Debug, Default)]
pub struct Labeled {
    /// Handoffs by trigger (asked_for_human, ungrounded, low_confidence, …).
    pub handoffs: LabeledCounter,
    /// Sends that failed for good, by Graph error code (`none`: unreachable).
    pub send_failures: LabeledCounter,
    /// Account-health changes from Meta's webhooks, by kind (number_quality, account, …).
    pub health_changes: LabeledCounter,
}

impl Labeled {
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.handoffs.render_into(
            &mut out,
            "frontdesk_handoffs_by_trigger_total",
            "Conversations handed to a person, by what triggered it.",
        );
        self.health_changes.render_into(
            &mut out,
            "frontdesk_health_changes_total",
            "Account-health changes Meta reported (quality, limit tier, restrictions, templates), by kind.",
        );
        self.send_failures.render_into(
            &mut out,
            "frontdesk_sends_failed_by_code_total",
            "Outbound messages that failed for good, by Graph API error code.",
        );
        out
    }
}

/// Model calls by model: outcomes, tokens, cost and latency (kept by `llm::Models`, so
/// replies, summaries, label calls and judges all count).
#[derive(Debug, Default)]
pub struct ModelUsage {
    pub calls: LabeledCounter,
    pub tokens: LabeledCounter,
    pub cost_usd: LabeledCounter,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl ModelUsage {
    /// Records one call to `model` (`provider:model`).
    pub fn record(&self, model: &str, ok: bool, ms: u64, tokens_in: u64, tokens_out: u64, usd: f64) {
        self.calls
            .add(&[("model", model), ("outcome", if ok { "ok" } else { "failed" })], 1.0);
        if ok {
            self.tokens
                .add(&[("model", model), ("direction", "in")], tokens_in as f64);
            self.tokens
                .add(&[("model", model), ("direction", "out")], tokens_out as f64);
            self.cost_usd.add(&[("model", model)], usd);
        }
        self.latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(model.to_string())
            .or_default()
            .observe_ms(ms);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        self.calls.render_into(
            &mut out,
            "frontdesk_llm_calls_total",
            "Model calls by model and outcome (after the provider's own retries).",
        );
        self.tokens.render_into(
            &mut out,
            "frontdesk_llm_tokens_total",
            "Model tokens by model and direction.",
        );
        self.cost_usd.render_into(
            &mut out,
            "frontdesk_llm_cost_usd_total",
            "Model spend in USD by model (price table).",
        );
        let name = "frontdesk_llm_call_seconds";
        let _ = writeln!(out, "# HELP {name} Model call time by model.\n# TYPE {name} histogram");
        for (model, h) in self.latency.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            h.render_into(&mut out, name, "model", model);
        }
        out
    }
}

#[cfg(test)]
mod histogram_tests {
    use super::*;

    #[test]
    fn cumulative_buckets_sum_and_count() {
        let h = ReplyStages::default();
        h.total.observe_ms(30);
        h.total.observe_ms(700);
        let text = h.render();
        assert!(
            text.contains("frontdesk_reply_stage_seconds_bucket{stage=\"total\",le=\"0.025\"} 0"),
            "{text}"
        );
        assert!(text.contains("frontdesk_reply_stage_seconds_bucket{stage=\"total\",le=\"0.05\"} 1"));
        assert!(text.contains("frontdesk_reply_stage_seconds_bucket{stage=\"total\",le=\"1\"} 2"));
        assert!(text.contains("frontdesk_reply_stage_seconds_bucket{stage=\"total\",le=\"+Inf\"} 2"));
        assert!(text.contains("frontdesk_reply_stage_seconds_sum{stage=\"total\"} 0.73"));
        assert!(text.contains("frontdesk_reply_stage_seconds_count{stage=\"llm\"} 0"));
    }

    #[test]
    fn labelled_families_keep_a_series_per_label_set() {
        let l = Labeled::default();
        l.handoffs.add(&[("trigger", "ungrounded")], 1.0);
        l.handoffs.add(&[("trigger", "ungrounded")], 1.0);
        l.send_failures.add(&[("code", "131026")], 1.0);
        let text = l.render();
        assert!(
            text.contains("frontdesk_handoffs_by_trigger_total{trigger=\"ungrounded\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("frontdesk_sends_failed_by_code_total{code=\"131026\"} 1"),
            "{text}"
        );
        let u = ModelUsage::default();
        u.record("openai:gpt-4o-mini", true, 120, 1000, 50, 0.0002);
        u.record("odd\"name", false, 5, 0, 0, 0.0);
        let text = u.render();
        assert!(
            text.contains("frontdesk_llm_calls_total{model=\"openai:gpt-4o-mini\",outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("frontdesk_llm_tokens_total{model=\"openai:gpt-4o-mini\",direction=\"in\"} 1000"),
            "{text}"
        );
        assert!(
            text.contains("frontdesk_llm_call_seconds_count{model=\"openai:gpt-4o-mini\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("model=\"odd\\\"name\",outcome=\"failed\""),
            "escaped: {text}"
        );
    }
}
