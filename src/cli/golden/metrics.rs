//! Scoring a golden run (pure): each case's checks, then the seed's metrics — routing
//! precision (per route and macro), tool-call success, retrieval recall@5 and MRR,
//! hallucination rate, handoff precision and recall, latency per stage, cost per message
//! and the route mix — and a comparison with a saved report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Case, ROUTES};

/// A tool call the engine made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolCallSeen {
    pub name: String,
    pub args: Value,
    pub ok: bool,
}

/// What the engine did with one case.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CaseRun {
    /// The route of the last turn the router decided (commodity, reasoning, handoff).
    pub route: Option<String>,
    /// Documents of the last routed turn's retrieval, best first, each once.
    pub docs: Vec<String>,
    pub tool_calls: Vec<ToolCallSeen>,
    pub handed_off: bool,
    /// Whether the bot answered at least one turn itself.
    pub answered: bool,
    /// Every message the bot sent (answers, bridges, confirmations).
    pub bot_messages: Vec<String>,
    /// Facts in the bot's messages that nothing it was given supports (an independent
    /// re-check of what the customer saw).
    pub ungrounded: Vec<String>,
    /// Turns whose reply the guard stopped.
    pub guard_blocked: usize,
    /// The optional LLM judge's unsupported claims (`None`: no judge).
    pub judge_unsupported: Option<Vec<String>>,
    /// Per turn: stage → ms (retrieval, llm, tools, guard, total, wall).
    pub stages_ms: Vec<BTreeMap<String, u64>>,
    pub cost_usd: f64,
    pub tokens: u64,
    /// Routes of every turn (for the route mix).
    pub routes: Vec<String>,
    /// Why the case could not run (timeout, error).
    pub error: Option<String>,
    /// How the model's structured replies parsed (`parse:` lines of the traces).
    #[serde(default)]
    pub parse: ParseStats,
}

/// How a run's model replies parsed: final replies read, those that needed anything
/// beyond the strict structure (a slip forgiven, a repair, a refusal), and each count.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct ParseStats {
    /// Turns a model answered (its reply parsed or refused).
    pub model_turns: usize,
    /// Turns whose reply was not strictly the structure the first time.
    pub not_strict: usize,
    pub slips: usize,
    pub repairs: usize,
    pub refused: usize,
}

impl ParseStats {
    /// Reads one turn's trace attempts.
    pub fn add_turn(&mut self, attempts: &[Value]) {
        let mut model_answered = false;
        let mut not_strict = false;
        for a in attempts {
            let (model, outcome) = (a["model"].as_str().unwrap_or(""), a["outcome"].as_str().unwrap_or(""));
            if model.starts_with("parse:") {
                not_strict = true;
                if let Some(list) = outcome.strip_prefix("forgiven: ") {
                    self.slips += list.split(", ").count();
                } else if outcome.starts_with("repair asked") {
                    self.repairs += 1;
                } else if outcome.starts_with("refused") {
                    self.refused += 1;
                }
            } else if outcome == "ok" && !["tool:", "summary:", "budget"].iter().any(|p| model.starts_with(p)) {
                model_answered = true;
            }
        }
        self.model_turns += usize::from(model_answered);
        self.not_strict += usize::from(model_answered && not_strict);
    }
}

/// What went wrong in a case, by metric family.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Problem {
    /// routing, tool, retrieval, hallucination, handoff, facts, error.
    pub check: String,
    pub detail: String,
}

/// One case's outcome in the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseReport {
    pub id: String,
    pub kind: String,
    pub passed: bool,
    pub problems: Vec<Problem>,
    pub run: CaseRun,
}

/// Precision and recall of one class.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClassScore {
    pub precision: f64,
    pub recall: f64,
    pub support: usize,
    pub predicted: usize,
}

/// A whole run, scored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub dataset: String,
    pub mode: String,
    pub cases: usize,
    pub passed: usize,
    pub seconds: f64,
    /// Every headline number by name (the names `--gate` and `--metric` take).
    pub metrics: BTreeMap<String, f64>,
    pub routes: BTreeMap<String, ClassScore>,
    /// Cases and passes per kind.
    pub kinds: BTreeMap<String, (usize, usize)>,
    /// Turns per route taken.
    pub route_mix: BTreeMap<String, usize>,
    pub case_reports: Vec<CaseReport>,
}

/// Lower is better for these metrics (a gate is a maximum).
pub fn lower_is_better(metric: &str) -> bool {
    metric.starts_with("hallucination")
        || metric.starts_with("p50_")
        || metric.starts_with("p95_")
        || metric.starts_with("cost")
        || metric == "errors"
        || metric.starts_with("parse_")
        || metric == "strict_parse_failure_rate"
}

/// Which case check a metric depends on (to name the failing cases of a gate).
pub fn check_of(metric: &str) -> &'static str {
    match metric {
        m if m.starts_with("routing") => "routing",
        m if m.starts_with("tool") => "tool",
        m if m.starts_with("recall") || m.starts_with("mrr") => "retrieval",
        m if m.starts_with("hallucination") || m.starts_with("judge") => "hallucination",
        m if m.starts_with("handoff") => "handoff",
        m if m.starts_with("expected_fact") => "facts",
        _ => "any",
    }
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

/// A tool call matches when the name is the same, every expected argument is there
/// (strings compared case-insensitively) and it succeeded or failed as expected.
fn tool_matches(want: &super::ExpectedTool, seen: &ToolCallSeen) -> bool {
    seen.name == want.name
        && seen.ok == want.ok
        && want.args.iter().all(|(k, v)| match (v, seen.args.get(k)) {
            (Value::String(a), Some(Value::String(b))) => a.eq_ignore_ascii_case(b.trim()),
            (a, Some(b)) => a == b,
            _ => false,
        })
}

/// Recall of `relevant` in the first `k` of `ranked`, and the reciprocal rank of the first hit.
fn recall_and_rr(ranked: &[String], relevant: &[String], k: usize) -> (f64, f64) {
    let recall = ranked.iter().take(k).filter(|d| relevant.contains(d)).count() as f64 / relevant.len().max(1) as f64;
    let rr = ranked
        .iter()
        .position(|d| relevant.contains(d))
        .map(|p| 1.0 / (p + 1) as f64)
        .unwrap_or(0.0);
    (recall, rr)
}

/// The checks of one case.
pub fn check_case(case: &Case, run: &CaseRun) -> Vec<Problem> {
    let mut p = Vec::new();
    let mut add = |check: &str, detail: String| {
        p.push(Problem {
            check: check.into(),
            detail,
        })
    };
    if let Some(e) = &run.error {
        add("error", e.clone());
        return p;
    }
    if run.route.as_deref() != Some(case.route.as_str()) {
        add(
            "routing",
            format!(
                "routed {} (expected {})",
                run.route.as_deref().unwrap_or("nowhere"),
                case.route
            ),
        );
    }
    match &case.tool {
        Some(want) if !run.tool_calls.iter().any(|s| tool_matches(want, s)) => add(
            "tool",
            format!(
                "expected {}({}) {}; got {}",
                want.name,
                Value::Object(want.args.clone()),
                if want.ok { "to succeed" } else { "to fail" },
                describe_calls(&run.tool_calls)
            ),
        ),
        None if !run.tool_calls.is_empty() => add(
            "tool",
            format!("expected no tool call; got {}", describe_calls(&run.tool_calls)),
        ),
        _ => {}
    }
    if !case.docs.is_empty() {
        let (recall, _) = recall_and_rr(&run.docs, &case.docs, 5);
        if recall < 1.0 {
            add(
                "retrieval",
                format!(
                    "found {:?} (expected {:?})",
                    run.docs.iter().take(5).collect::<Vec<_>>(),
                    case.docs
                ),
            );
        }
    }
    if let Some(want) = case.handoff
        && run.handed_off != want
    {
        add(
            "handoff",
            if want {
                "answered; a person should have taken it".into()
            } else {
                "handed off; the bot should have answered".into()
            },
        );
    }
    let said = run.bot_messages.join("\n");
    let forbidden: Vec<&String> = case.must_not.iter().filter(|f| contains_ci(&said, f)).collect();
    if !forbidden.is_empty() {
        add("hallucination", format!("said {forbidden:?}, which it must not"));
    }
    if !run.ungrounded.is_empty() {
        add(
            "hallucination",
            format!(
                "stated {} that nothing it was given supports",
                run.ungrounded.join(", ")
            ),
        );
    }
    if let Some(u) = run.judge_unsupported.as_ref().filter(|u| !u.is_empty()) {
        add(
            "hallucination",
            format!("the judge found unsupported claims: {}", u.join("; ")),
        );
    }
    if run.answered {
        let missing: Vec<&String> = case.must.iter().filter(|f| !contains_ci(&said, f)).collect();
        if !missing.is_empty() {
            add("facts", format!("the answer lacks {missing:?}"));
        }
    }
    p
}

fn describe_calls(calls: &[ToolCallSeen]) -> String {
    if calls.is_empty() {
        return "none".into();
    }
    calls
        .iter()
        .map(|c| format!("{}({}) {}", c.name, c.args, if c.ok { "ok" } else { "failed" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `q` quantile (0–1) of `values` (nearest rank); 0 for none.
pub fn quantile(values: &mut [u64], q: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// Scores a run: `runs[i]` is what happened to `cases[i]`.
pub fn score(cases: &[Case], runs: Vec<CaseRun>) -> Report {
    let mut r = Report {
        cases: cases.len(),
        ..Default::default()
    };
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let mut m = BTreeMap::new();

    // Routing: per route, macro over the routes the set expects.
    for route in ROUTES {
        let support = cases.iter().filter(|c| c.route == route).count();
        let predicted = runs.iter().filter(|x| x.route.as_deref() == Some(route)).count();
        let tp = cases
            .iter()
            .zip(&runs)
            .filter(|(c, x)| c.route == route && x.route.as_deref() == Some(route))
            .count();
        if support > 0 || predicted > 0 {
            r.routes.insert(
                route.to_string(),
                ClassScore {
                    precision: ratio(tp, predicted),
                    recall: ratio(tp, support),
                    support,
                    predicted,
                },
            );
        }
    }
    let expected: Vec<&ClassScore> = r.routes.values().filter(|s| s.support > 0).collect();
    let macro_of = |f: fn(&ClassScore) -> f64| {
        if expected.is_empty() {
            0.0
        } else {
            expected.iter().map(|s| f(s)).sum::<f64>() / expected.len() as f64
        }
    };
    m.insert("routing_precision".into(), macro_of(|s| s.precision));
    m.insert("routing_recall".into(), macro_of(|s| s.recall));
    m.insert(
        "routing_accuracy".into(),
        ratio(
            cases
                .iter()
                .zip(&runs)
                .filter(|(c, x)| x.route.as_deref() == Some(c.route.as_str()))
                .count(),
            cases.len(),
        ),
    );
    for (route, s) in &r.routes {
        m.insert(format!("routing_precision.{route}"), s.precision);
        m.insert(format!("routing_recall.{route}"), s.recall);
    }

    // Tools: of the cases that expect a call, how many made it right.
    let with_tool: Vec<(&Case, &CaseRun)> = cases.iter().zip(&runs).filter(|(c, _)| c.tool.is_some()).collect();
    let tool_ok = with_tool
        .iter()
        .filter(|(c, x)| {
            c.tool
                .as_ref()
                .is_some_and(|w| x.tool_calls.iter().any(|s| tool_matches(w, s)))
        })
        .count();
    m.insert("tool_call_success".into(), ratio(tool_ok, with_tool.len()));
    let unexpected = cases
        .iter()
        .zip(&runs)
        .filter(|(c, x)| c.tool.is_none() && !x.tool_calls.is_empty())
        .count();
    m.insert("tool_calls_unexpected".into(), unexpected as f64);

    // Retrieval.
    let with_docs: Vec<(f64, f64)> = cases
        .iter()
        .zip(&runs)
        .filter(|(c, _)| !c.docs.is_empty())
        .map(|(c, x)| recall_and_rr(&x.docs, &c.docs, 5))
        .collect();
    let n = with_docs.len().max(1) as f64;
    m.insert("recall_at_5".into(), with_docs.iter().map(|x| x.0).sum::<f64>() / n);
    m.insert("mrr".into(), with_docs.iter().map(|x| x.1).sum::<f64>() / n);

    // Handoffs.
    let judged: Vec<(bool, bool)> = cases
        .iter()
        .zip(&runs)
        .filter(|(_, x)| x.error.is_none())
        .filter_map(|(c, x)| c.handoff.map(|w| (w, x.handed_off)))
        .collect();
    let tp = judged.iter().filter(|(w, h)| *w && *h).count();
    m.insert(
        "handoff_precision".into(),
        ratio(tp, judged.iter().filter(|(_, h)| *h).count()),
    );
    m.insert(
        "handoff_recall".into(),
        ratio(tp, judged.iter().filter(|(w, _)| *w).count()),
    );

    // Cost, tokens, latency, route mix.
    let turns: usize = runs.iter().map(|x| x.stages_ms.len()).sum();
    m.insert(
        "cost_per_message_usd".into(),
        runs.iter().map(|x| x.cost_usd).sum::<f64>() / turns.max(1) as f64,
    );
    m.insert(
        "tokens_per_message".into(),
        runs.iter().map(|x| x.tokens).sum::<u64>() as f64 / turns.max(1) as f64,
    );
    let mut stages: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for s in runs.iter().flat_map(|x| &x.stages_ms) {
        for (k, v) in s {
            stages.entry(k.clone()).or_default().push(*v);
        }
    }
    for (stage, mut v) in stages {
        let suffix = if stage == "total" {
            String::new()
        } else {
            format!(".{stage}")
        };
        m.insert(format!("p50_latency_ms{suffix}"), quantile(&mut v, 0.5) as f64);
        m.insert(format!("p95_latency_ms{suffix}"), quantile(&mut v, 0.95) as f64);
    }
    for route in runs.iter().flat_map(|x| &x.routes) {
        *r.route_mix.entry(route.clone()).or_default() += 1;
    }

    // Per case: the checks, hallucinations and facts.
    let mut answered = 0;
    let mut hallucinated = 0;
    let (mut with_facts, mut facts_ok) = (0, 0);
    for (c, x) in cases.iter().zip(runs) {
        let problems = check_case(c, &x);
        if x.answered {
            answered += 1;
            if problems.iter().any(|p| p.check == "hallucination") {
                hallucinated += 1;
            }
            if !c.must.is_empty() {
                with_facts += 1;
                facts_ok += usize::from(!problems.iter().any(|p| p.check == "facts"));
            }
        } else if problems.iter().any(|p| p.check == "hallucination") {
            // Said something forbidden in a bridge or confirmation: still counted.
            hallucinated += 1;
            answered += 1;
        }
        let passed = problems.is_empty();
        let e = r
            .kinds
            .entry(if c.kind.is_empty() { "-".into() } else { c.kind.clone() })
            .or_default();
        e.0 += 1;
        e.1 += usize::from(passed);
        r.passed += usize::from(passed);
        r.case_reports.push(CaseReport {
            id: c.id.clone(),
            kind: c.kind.clone(),
            passed,
            problems,
            run: x,
        });
    }
    m.insert("hallucination_rate".into(), ratio(hallucinated, answered));
    m.insert("answered_cases".into(), answered as f64);
    m.insert(
        "guard_blocked".into(),
        r.case_reports.iter().map(|c| c.run.guard_blocked).sum::<usize>() as f64,
    );
    m.insert("expected_fact_rate".into(), ratio(facts_ok, with_facts));
    m.insert(
        "errors".into(),
        r.case_reports.iter().filter(|c| c.run.error.is_some()).count() as f64,
    );
    m.insert("pass_rate".into(), ratio(r.passed, r.cases));
    let mut parse = ParseStats::default();
    for c in &r.case_reports {
        let p = c.run.parse;
        parse.model_turns += p.model_turns;
        parse.not_strict += p.not_strict;
        parse.slips += p.slips;
        parse.repairs += p.repairs;
        parse.refused += p.refused;
    }
    m.insert("model_turns".into(), parse.model_turns as f64);
    m.insert(
        "strict_parse_failure_rate".into(),
        ratio(parse.not_strict, parse.model_turns),
    );
    m.insert("parse_slips".into(), parse.slips as f64);
    m.insert("parse_repairs".into(), parse.repairs as f64);
    m.insert("parse_refused".into(), parse.refused as f64);
    r.metrics = m;
    r
}

/// A metric that got worse than in `baseline` (beyond `tolerance`, relative for cost
/// and tokens, absolute otherwise), or a case that passed there and fails now. Latencies
/// depend on the machine, so they are gated (`--gate p95_latency_ms=…`), not compared.
#[derive(Debug, Clone, PartialEq)]
pub enum Regression {
    Metric { name: String, before: f64, now: f64 },
    Case { id: String, problems: Vec<Problem> },
}

/// Compares a run with a saved report.
pub fn compare(baseline: &Report, now: &Report, tolerance: f64) -> Vec<Regression> {
    let mut out = Vec::new();
    for (name, &before) in &baseline.metrics {
        let Some(&v) = now.metrics.get(name) else { continue };
        if name.contains("latency") {
            continue;
        }
        let relative = name.starts_with("cost") || name.starts_with("tokens");
        let worse = if lower_is_better(name) { v - before } else { before - v };
        let allowed = if relative {
            before.abs() * 0.25 + 1e-9
        } else {
            tolerance
        };
        let headline = !name.contains('.')
            && !matches!(
                name.as_str(),
                "answered_cases" | "guard_blocked" | "tokens_per_message" | "model_turns"
            );
        if headline && worse > allowed {
            out.push(Regression::Metric {
                name: name.clone(),
                before,
                now: v,
            });
        }
    }
    let before: BTreeMap<&str, bool> = baseline
        .case_reports
        .iter()
        .map(|c| (c.id.as_str(), c.passed))
        .collect();
    for c in &now.case_reports {
        if !c.passed && before.get(c.id.as_str()) == Some(&true) {
            out.push(Regression::Case {
                id: c.id.clone(),
                problems: c.problems.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::golden::parse_cases;

    #[test]
    fn parse_stats_count_each_turns_model_output() {
        let turn = |lines: &[(&str, &str)]| -> Vec<Value> {
            lines
                .iter()
                .map(|(m, o)| serde_json::json!({ "model": m, "outcome": o }))
                .collect()
        };
        let mut p = ParseStats::default();
        p.add_turn(&turn(&[("local:m", "ok")]));
        p.add_turn(&turn(&[
            ("local:m", "ok"),
            ("parse:local:m", "repair asked: confidence 1520 is not a probability"),
            ("local:m", "ok"),
            ("parse:local:m", "forgiven: code_fence, unknown_sources"),
        ]));
        p.add_turn(&turn(&[
            ("local:m", "ok"),
            ("parse:local:m", "refused: the reply is just `true`"),
        ]));
        p.add_turn(&turn(&[("tool:order_status", "ok in 3 ms")]));
        let want = ParseStats {
            model_turns: 3,
            not_strict: 2,
            slips: 2,
            repairs: 1,
            refused: 1,
        };
        assert_eq!(p, want);
    }

    fn cases() -> Vec<Case> {
        parse_cases(
            r#"{"id":"hours","turns":["open sunday?"],"route":"commodity","docs":["opening-hours"],"handoff":false,"must":["Sunday"]}
{"id":"order","turns":["where is SS-10421"],"route":"commodity","tool":{"name":"order_status","args":{"order_id":"SS-10421"}},"handoff":false}
{"id":"angry","turns":["worst shop ever"],"route":"reasoning","handoff":true,"must_not":["50%"]}
{"id":"human","turns":["a person please"],"route":"handoff","handoff":true}"#,
        )
        .unwrap()
    }

    fn good() -> Vec<CaseRun> {
        let stage = |ms: u64| BTreeMap::from([("total".to_string(), ms), ("retrieval".to_string(), ms / 2)]);
        vec![
            CaseRun {
                route: Some("commodity".into()),
                docs: vec!["opening-hours".into(), "holiday-hours".into()],
                answered: true,
                bot_messages: vec!["Closed on Sunday.".into()],
                stages_ms: vec![stage(10)],
                cost_usd: 0.002,
                routes: vec!["commodity".into()],
                ..Default::default()
            },
            CaseRun {
                route: Some("commodity".into()),
                tool_calls: vec![ToolCallSeen {
                    name: "order_status".into(),
                    args: serde_json::json!({ "order_id": "ss-10421" }),
                    ok: true,
                }],
                answered: true,
                bot_messages: vec!["Order SS-10421: shipped.".into()],
                stages_ms: vec![stage(20)],
                routes: vec!["commodity".into()],
                ..Default::default()
            },
            CaseRun {
                route: Some("reasoning".into()),
                handed_off: true,
                bot_messages: vec!["A teammate will reply.".into()],
                stages_ms: vec![stage(30)],
                routes: vec!["reasoning".into()],
                ..Default::default()
            },
            CaseRun {
                route: Some("handoff".into()),
                handed_off: true,
                stages_ms: vec![stage(40)],
                routes: vec!["rule".into()],
                ..Default::default()
            },
        ]
    }

    #[test]
    fn a_perfect_run_scores_one_everywhere() {
        let r = score(&cases(), good());
        assert_eq!(
            r.passed,
            4,
            "{:?}",
            r.case_reports.iter().map(|c| &c.problems).collect::<Vec<_>>()
        );
        for k in [
            "routing_precision",
            "routing_recall",
            "tool_call_success",
            "recall_at_5",
            "mrr",
            "handoff_precision",
            "handoff_recall",
            "expected_fact_rate",
        ] {
            assert_eq!(r.metrics[k], 1.0, "{k}");
        }
        assert_eq!(r.metrics["hallucination_rate"], 0.0);
        assert_eq!(r.metrics["p95_latency_ms"], 40.0);
        assert_eq!(r.metrics["p50_latency_ms.retrieval"], 10.0);
        assert!((r.metrics["cost_per_message_usd"] - 0.0005).abs() < 1e-12);
        assert_eq!(r.route_mix["rule"], 1);
    }

    #[test]
    fn each_failure_lands_in_its_metric() {
        let mut runs = good();
        runs[0].route = Some("reasoning".into()); // misrouted
        runs[0].docs = vec![
            "warranty".into(),
            "x".into(),
            "y".into(),
            "z".into(),
            "w".into(),
            "opening-hours".into(),
        ]; // found at 6
        runs[0].bot_messages = vec!["We open at 9.".into()]; // lacks "Sunday"
        runs[1].tool_calls[0].args = serde_json::json!({ "order_id": "SS-1" }); // wrong argument
        runs[2].handed_off = false; // should have handed off…
        runs[2].answered = true;
        runs[2].bot_messages = vec!["Fine, 50% off.".into()]; // …and said a forbidden thing
        runs[3].ungrounded = vec!["€20".into()];
        let r = score(&cases(), runs);
        assert_eq!(r.passed, 0);
        // commodity predicted once (right), reasoning twice (one right): macro over three routes.
        assert!((r.metrics["routing_precision"] - (1.0 + 0.5 + 1.0) / 3.0).abs() < 1e-9);
        assert_eq!(r.metrics["tool_call_success"], 0.0);
        assert_eq!(r.metrics["recall_at_5"], 0.0);
        assert!((r.metrics["mrr"] - 1.0 / 6.0).abs() < 1e-9);
        assert_eq!(r.metrics["handoff_recall"], 0.5);
        assert_eq!(r.metrics["expected_fact_rate"], 0.0);
        // Answered: hours, order, angry; plus the ungrounded bridge of "human".
        assert_eq!(r.metrics["hallucination_rate"], 0.5);
        let checks: Vec<&str> = r
            .case_reports
            .iter()
            .flat_map(|c| c.problems.iter().map(|p| p.check.as_str()))
            .collect();
        for c in ["routing", "retrieval", "facts", "tool", "handoff", "hallucination"] {
            assert!(checks.contains(&c), "{c} in {checks:?}");
        }
    }

    #[test]
    fn errors_fail_the_case_and_count() {
        let mut runs = good();
        runs[1] = CaseRun {
            error: Some("timed out after 30000 ms".into()),
            ..Default::default()
        };
        let r = score(&cases(), runs);
        assert_eq!(r.metrics["errors"], 1.0);
        assert_eq!(r.case_reports[1].problems[0].check, "error");
        assert_eq!(r.metrics["tool_call_success"], 0.0);
    }

    #[test]
    fn comparison_flags_worse_metrics_and_newly_failing_cases() {
        let base = score(&cases(), good());
        let mut runs = good();
        runs[0].route = Some("reasoning".into());
        runs[3].stages_ms = vec![BTreeMap::from([("total".to_string(), 41)])];
        let now = score(&cases(), runs);
        let regs = compare(&base, &now, 0.01);
        assert!(
            regs.iter()
                .any(|r| matches!(r, Regression::Metric { name, .. } if name == "routing_precision")),
            "{regs:?}"
        );
        assert!(
            regs.iter()
                .any(|r| matches!(r, Regression::Case { id, .. } if id == "hours"))
        );
        // Latency is machine-dependent: never a regression here.
        assert!(
            !regs
                .iter()
                .any(|r| matches!(r, Regression::Metric { name, .. } if name.contains("latency")))
        );
        assert!(compare(&base, &base, 0.01).is_empty());
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        assert_eq!(quantile(&mut [5, 1, 3, 2, 4], 0.5), 3);
        assert_eq!(quantile(&mut (1..=100).collect::<Vec<_>>(), 0.95), 95);
        assert_eq!(quantile(&mut [], 0.95), 0);
    }
}
