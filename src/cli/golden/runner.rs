//! Plays golden cases through the real engine: a throwaway data directory, the knowledge
//! base loaded, and for each turn a signed-off webhook payload parsed and stored by the
//! ingest code, then `engine::respond` — router, retrieval, tools, guard, handoff — as the
//! reply worker calls it. What the engine did is read back from its trace, the send
//! ledger and the handoff table. Cases run in parallel (a limit) with a timeout each.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::Case;
use super::metrics::{CaseRun, ToolCallSeen};
use crate::app::App;
use crate::config::{Config, ProviderConfig, Secret};
use crate::http::scripted_model::ScriptedModel;
use crate::llm::{ChatRequest, Item, ModelRef};

/// Which models answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelMode {
    /// The config's providers and tiers (a real provider when keys are configured).
    Config,
    /// No model: the offline responder.
    Offline,
    /// The scripted stand-in model on loopback (deterministic; real HTTP client).
    Scripted,
}

/// How to run.
pub struct Options {
    /// Knowledge-base files or directories; none = the demo business's documents.
    pub kb: Vec<PathBuf>,
    pub mode: ModelMode,
    pub concurrency: usize,
    pub timeout: Duration,
    /// A model (`provider:model` of the config) that judges each answer against its sources.
    pub judge: Option<String>,
}

/// What a run needs besides the cases: the app over a temporary data dir, and the
/// loopback servers standing in for the order API and the model.
struct Bench {
    app: App,
    scripted: Option<ScriptedModel>,
    _orders: tokio::task::JoinHandle<()>,
    judge: Option<ModelRef>,
    timeout: Duration,
}

/// Removes the temporary data directory when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs every case; `progress` is called once per finished case. Returns each case's run
/// (in the cases' order) and a description of the models used.
pub async fn run(
    mut config: Config,
    cases: &[Case],
    opts: &Options,
    progress: &(dyn Fn() + Sync),
) -> anyhow::Result<(Vec<CaseRun>, String)> {
    let scripted_cases: Vec<&str> = cases
        .iter()
        .filter(|c| c.script.is_some())
        .map(|c| c.turns[c.turns.len() - 1].trim())
        .collect();
    anyhow::ensure!(
        scripted_cases.iter().collect::<std::collections::HashSet<_>>().len() == scripted_cases.len(),
        "two scripted cases end with the same message; the scripted model tells them apart by it"
    );
    let dir = std::env::temp_dir().join(format!(
        "frontdesk-eval-{}-{}",
        std::process::id(),
        crate::config::random_token().chars().take(8).collect::<String>()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let _cleanup = TempDir(dir.clone());
    config.storage.data_dir = dir;
    config.whatsapp.phone_number_ids.clear();
    // Nothing reaches Meta: the eval reads the send ledger, and no send worker runs.
    for secret in [
        &mut config.whatsapp.access_token,
        &mut config.whatsapp.app_secret,
        &mut config.whatsapp.verify_token,
    ] {
        if secret.is_empty() {
            *secret = Secret::new(crate::config::random_token());
        }
    }
    // The order-status API over the sample orders, when the config brings no such tool.
    let orders_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let orders_addr = orders_listener.local_addr()?;
    let orders = tokio::spawn(crate::http::demo::serve_sample_orders(orders_listener));
    if !config.llm.tools.iter().any(|t| t.name == crate::engine::ORDER_TOOL) {
        config.llm.tools.push(crate::demo_data::order_tool(format!(
            "http://{orders_addr}/orders/{{order_id}}?wa_id={{customer_wa_id}}"
        )));
    }
    let mut scripted = None;
    let mode = match opts.mode {
        ModelMode::Offline => {
            config.llm.providers.clear();
            config.llm.tiers = Default::default();
            "offline responder".to_string()
        }
        ModelMode::Scripted => {
            let s = ScriptedModel::start().await.context("starting the scripted model")?;
            config.llm.providers.insert(
                "scripted".into(),
                ProviderConfig {
                    kind: "openai".into(),
                    base_url: s.base_url(),
                    api_key: Secret::default(),
                    timeout_ms: 10_000,
                    ..Default::default()
                },
            );
            config.llm.tiers.commodity = vec!["scripted:scripted-commodity".into()];
            config.llm.tiers.reasoning = vec!["scripted:scripted-reasoning".into()];
            // Fictional prices, so cost per message and the route mix mean something.
            let price = |i, o| crate::llm::price::Price {
                input_per_mtok: i,
                output_per_mtok: o,
            };
            config.llm.prices.insert("scripted-commodity".into(), price(0.25, 1.25));
            config.llm.prices.insert("scripted-reasoning".into(), price(3.0, 15.0));
            scripted = Some(s);
            "scripted model (commodity and reasoning tiers on loopback)".to_string()
        }
        ModelMode::Config => {
            let tiers = |t: &[String]| {
                if t.is_empty() {
                    "offline".to_string()
                } else {
                    t.join(" → ")
                }
            };
            format!(
                "config: commodity {}, reasoning {}",
                tiers(&config.llm.tiers.commodity),
                tiers(&config.llm.tiers.reasoning)
            )
        }
    };
    let judge = match &opts.judge {
        Some(j) => {
            let m = ModelRef::parse(j)
                .with_context(|| format!("--judge {j:?}: write PROVIDER:MODEL, e.g. anthropic:claude-sonnet-4-5"))?;
            anyhow::ensure!(
                config.llm.providers.contains_key(&m.provider),
                "--judge {j:?}: provider {:?} is not configured",
                m.provider
            );
            Some(m)
        }
        None => None,
    };
    let app = App::open(config)?;
    if opts.kb.is_empty() {
        crate::demo_data::load_knowledge(&app.knowledge).await?;
    } else {
        load_paths(&app, &opts.kb).await?;
    }
    let bench = Arc::new(Bench {
        app,
        scripted,
        _orders: orders,
        judge,
        timeout: opts.timeout,
    });
    let mut runs: Vec<(usize, CaseRun)> = futures_util::stream::iter(cases.iter().enumerate())
        .map(|(i, case)| {
            let bench = bench.clone();
            async move {
                let run = match tokio::time::timeout(bench.timeout, play(&bench, i, case)).await {
                    Ok(Ok(run)) => run,
                    Ok(Err(e)) => CaseRun {
                        error: Some(format!("{e:#}")),
                        ..Default::default()
                    },
                    Err(_) => CaseRun {
                        error: Some(format!("timed out after {} ms", bench.timeout.as_millis())),
                        ..Default::default()
                    },
                };
                progress();
                (i, run)
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    runs.sort_by_key(|r| r.0);
    Ok((runs.into_iter().map(|r| r.1).collect(), mode))
}

async fn load_paths(app: &App, paths: &[PathBuf]) -> anyhow::Result<()> {
    app.knowledge.prepare(&|_, _| {}).await?;
    let report = app
        .knowledge
        .add_paths(paths, &Default::default(), &|_, _, _| {})
        .await?;
    if !report.problems.is_empty() {
        anyhow::bail!("the knowledge base has problems: {:?}", report.problems);
    }
    Ok(())
}

/// A webhook payload with one text message, as Meta sends it.
fn webhook(phone_number_id: &str, wa_id: &str, wamid: &str, text: &str) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "eval", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550000000", "phone_number_id": phone_number_id },
            "contacts": [{ "profile": { "name": "Alex" }, "wa_id": wa_id }],
            "messages": [{ "from": wa_id, "id": wamid, "timestamp": (crate::domain::now_ms() / 1000).to_string(), "type": "text", "text": { "body": text } }]
        } }] }]
    })
    .to_string()
}

/// Plays one case, turn by turn.
async fn play(bench: &Bench, index: usize, case: &Case) -> anyhow::Result<CaseRun> {
    let app = &bench.app;
    let phone = format!("{}", 900_000_000_000u64 + index as u64);
    let wa_id = case.wa_id.clone().unwrap_or_else(|| format!("3169{index:07}"));
    let mut run = CaseRun::default();
    let mut conversation = None;
    let mut passages: Vec<i64> = Vec::new();
    // The independent grounding check, turn by turn: every fact the customer was told
    // must be supported (`guard::check`, context included) by what that turn's reply was
    // made from — the passages retrieved for it, the conversation so far, the customer's
    // orders (what the order tool returns) and the fixed texts — not merely appear
    // somewhere in the knowledge base.
    let orders: Vec<String> = crate::demo_data::orders()
        .iter()
        .filter(|o| o["customer_wa_id"].as_str() == Some(wa_id.as_str()))
        .map(Value::to_string)
        .collect();
    let settings = crate::settings::current(&app.store, &app.config).await?;
    let fixed = [
        settings.get("bridge_text").to_string(),
        settings.get("static_reply").to_string(),
        settings.get("unknown_text").to_string(),
        app.config.bot.business_name.clone(),
    ];
    let mut told = 0usize;
    for (t, turn) in case.turns.iter().enumerate() {
        if t + 1 == case.turns.len()
            && let (Some(model), Some(script)) = (&bench.scripted, &case.script)
        {
            model.script(turn, script.clone());
        }
        let wamid = format!("wamid.eval.{index}.{t}");
        let events = crate::whatsapp::parse::parse_webhook(webhook(&phone, &wa_id, &wamid, turn).as_bytes());
        app.store
            .write(move |c| crate::store::apply_events(c, 0, &events, &[], &Default::default(), None).map(|_| ()))
            .await?;
        let w = wamid.clone();
        let found = app
            .store
            .read(move |c| {
                Ok(crate::store::conversations::inbound_for_reply(c, &w)?
                    .zip(crate::store::conversations::burst(c, &w)?))
            })
            .await?;
        let (inbound, burst) = found.context("the ingested message was not found")?;
        conversation = Some(inbound.conversation_id);
        let started = Instant::now();
        crate::engine::respond(&app.engine(), &wamid, &inbound, Some(&burst)).await?;
        let wall = started.elapsed().as_millis() as u64;
        accept_sends(app, inbound.conversation_id).await?;
        let w = wamid.clone();
        let trace = app
            .store
            .read(move |c| crate::store::handoffs::trace_for(c, &w))
            .await?
            .context("the engine left no trace")?;
        read_trace(&mut run, &trace, wall, &mut passages);
        let given: Vec<i64> = trace
            .retrieved
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h.get("withheld").is_none())
            .filter_map(|h| h["chunk_id"].as_i64())
            .collect();
        let conv = inbound.conversation_id;
        let (history, chunks) = app
            .store
            .read(move |c| {
                Ok((
                    crate::store::conversations::history(c, conv, i64::MAX, 1_000)?,
                    crate::store::knowledge::chunks_by_id(c, &given)?,
                ))
            })
            .await?;
        let bot: Vec<&String> = history
            .iter()
            .filter(|(from_customer, _)| !from_customer)
            .map(|h| &h.1)
            .collect();
        let mut grounding: Vec<&str> = chunks
            .iter()
            .flat_map(|c| [c.text.as_str(), c.title.as_str(), c.section.as_str()])
            .collect();
        grounding.extend(case.turns[..=t].iter().map(String::as_str));
        grounding.extend(bot[..told.min(bot.len())].iter().map(|b| b.as_str()));
        grounding.extend(orders.iter().map(String::as_str));
        grounding.extend(fixed.iter().map(String::as_str));
        for m in bot.iter().skip(told) {
            if let Err(crate::domain::guard::Ungrounded(facts)) = crate::domain::guard::check(m, &grounding) {
                run.ungrounded.extend(facts);
            }
        }
        told = bot.len();
    }
    let conv = conversation.context("no turns")?;
    let (history, handoffs) = app
        .store
        .read(move |c| {
            Ok((
                crate::store::conversations::history(c, conv, i64::MAX, 1_000)?,
                crate::store::handoffs::handoffs_for(c, conv)?,
            ))
        })
        .await?;
    run.bot_messages = history
        .iter()
        .filter(|(from_customer, _)| !from_customer)
        .map(|(_, t)| t.clone())
        .collect();
    run.handed_off = !handoffs.is_empty();
    if let Some(judge) = &bench.judge
        && run.answered
    {
        run.judge_unsupported =
            Some(judge_answer(app, judge, conv, &passages, &orders, case, &run.bot_messages).await?);
    }
    Ok(run)
}

/// Plays Meta accepting the conversation's queued bot messages (no send worker runs):
/// they enter the conversation, so the next turn's context holds them as in production.
async fn accept_sends(app: &App, conversation_id: i64) -> anyhow::Result<()> {
    use crate::store::ledger;
    app.store
        .write(move |c| {
            for (id, _) in ledger::pending_ids(c)? {
                if ledger::get(c, id)?.conversation_id == conversation_id {
                    let now = crate::domain::now_ms();
                    ledger::mark_sending(c, id, now)?;
                    ledger::mark_accepted(c, id, &format!("wamid.eval.out.{id}"), now)?;
                }
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// Reads one turn's trace into the case's run.
fn read_trace(run: &mut CaseRun, trace: &crate::store::handoffs::Trace, wall_ms: u64, passages: &mut Vec<i64>) {
    let route = match trace.route.as_str() {
        "rule" => Some("handoff"),
        "none" => None,
        r => Some(r),
    };
    if trace.route != "none" {
        run.routes.push(trace.route.clone());
    }
    if let Some(r) = route {
        run.route = Some(r.to_string());
        run.docs.clear();
        passages.clear();
        for h in trace.retrieved.as_array().into_iter().flatten() {
            let doc = h["doc_id"].as_str().unwrap_or_default().to_string();
            if h.get("withheld").is_none() {
                passages.extend(h["chunk_id"].as_i64());
            }
            if !run.docs.contains(&doc) {
                run.docs.push(doc);
            }
        }
    }
    for a in trace.attempts.as_array().into_iter().flatten() {
        if let Some(name) = a["model"].as_str().and_then(|m| m.strip_prefix("tool:")) {
            run.tool_calls.push(ToolCallSeen {
                name: name.to_string(),
                args: a.get("args").cloned().unwrap_or(Value::Null),
                ok: a["outcome"].as_str().is_some_and(|o| o.starts_with("ok")),
            });
        }
    }
    run.parse
        .add_turn(trace.attempts.as_array().map(Vec::as_slice).unwrap_or_default());
    run.answered |= trace.outcome == "answered";
    run.guard_blocked += usize::from(trace.guard.starts_with("blocked"));
    run.cost_usd += trace.cost_usd;
    run.tokens += (trace.tokens_in + trace.tokens_out).max(0) as u64;
    let mut stages: BTreeMap<String, u64> = trace
        .stages_ms
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
        .collect();
    stages.insert("wall".into(), wall_ms);
    run.stages_ms.push(stages);
}

/// The judge's schema: is every claim of the reply supported by the sources?
fn judge_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["supported", "unsupported"],
        "properties": {
            "supported": { "type": "boolean", "description": "true when every factual claim in the reply is supported by the sources" },
            "unsupported": { "type": "array", "items": { "type": "string" }, "description": "each claim the sources do not support, quoted" }
        }
    })
}

/// Asks the judge model whether the bot's messages say anything their sources do not.
async fn judge_answer(
    app: &App,
    judge: &ModelRef,
    conv: i64,
    passages: &[i64],
    orders: &[String],
    case: &Case,
    said: &[String],
) -> anyhow::Result<Vec<String>> {
    let ids = passages.to_vec();
    let chunks = app
        .store
        .read(move |c| crate::store::knowledge::chunks_by_id(c, &ids))
        .await?;
    let mut sources: Vec<String> = chunks
        .into_iter()
        .map(|c| format!("[{}] {}", c.doc_id, c.text))
        .collect();
    sources.extend(orders.iter().map(|o| format!("[order] {o}")));
    sources.extend(case.turns.iter().map(|t| format!("[customer] {t}")));
    let system = "You check a customer-support assistant's messages for hallucinations. A claim is supported when the sources state it; \
                  greetings, offers to help and saying a teammate will follow up need no support. Answer with the structure only."
        .to_string();
    let prompt = format!("Sources:\n{}\nReply:\n{}", sources.join("\n"), said.join("\n"));
    let req = ChatRequest {
        model: String::new(),
        system,
        items: vec![Item::User(prompt)],
        tools: Vec::new(),
        reply_schema: judge_schema(),
        max_tokens: 300,
    };
    let (result, _) = app
        .models
        .chat(std::slice::from_ref(judge), &req, crate::domain::now_ms)
        .await;
    let (resp, _) = result.map_err(|e| anyhow::anyhow!("the judge failed on conversation {conv}: {e}"))?;
    let crate::llm::Output::Reply(raw) = resp.output else {
        anyhow::bail!("the judge called a tool")
    };
    let v: Value = serde_json::from_str(&raw).with_context(|| format!("the judge's answer is not JSON: {raw}"))?;
    if v["supported"].as_bool() == Some(true) {
        return Ok(Vec::new());
    }
    let claims: Vec<String> = v["unsupported"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(String::from))
        .collect();
    Ok(if claims.is_empty() {
        vec!["(unspecified)".into()]
    } else {
        claims
    })
}

/// The default golden set's knowledge base: none given means the built-in demo documents.
pub fn describe_kb(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        "the demo business's built-in documents".into()
    } else {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
