//! `frontdesk eval --dataset FILE`: the golden set through the real engine — a readable
//! report of the seed's metrics, gates that fail the run naming the failing cases, and a
//! comparison with a saved report that flags regressions.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cli::golden::metrics::{self, Regression, Report};
use crate::cli::golden::runner::{self, ModelMode};

/// `eval --dataset …` arguments.
#[derive(Debug, clap::Args)]
pub struct GoldenArgs {
    /// The golden set (JSONL; see evals/README.md), e.g. evals/golden.jsonl.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// A config for providers, tiers, router, tools and retrieval (default: built-in
    /// defaults with the demo business). Its data directory is not touched: the eval runs
    /// in a temporary one.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Knowledge-base files or directories (repeat; default: the demo business's documents).
    #[arg(long)]
    pub kb: Vec<PathBuf>,
    /// Who answers: the config's models, the offline responder, or the scripted model.
    #[arg(long, value_enum, default_value = "config")]
    pub model: ModelMode,
    /// Print only these metrics, `name value` per line (repeat), e.g. routing_precision.
    #[arg(long = "metric")]
    pub metrics: Vec<String>,
    /// Fail (exit 1) when METRIC misses VALUE: a minimum, or a maximum for
    /// hallucination_rate, latencies, cost and errors; e.g. routing_precision=0.9.
    #[arg(long = "gate", value_parser = super::parse_gate)]
    pub gates: Vec<(String, f64)>,
    /// A saved report (`--json`): metrics that got worse and cases that passed there and
    /// fail now are regressions (exit 1).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// How much worse a rate may get before it counts as a regression (cost: 25%;
    /// latencies are machine-dependent and not compared).
    #[arg(long, default_value_t = 0.01)]
    pub tolerance: f64,
    /// Write the whole report (every case) as JSON here (`-`: standard output).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Cases run at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// A case taking longer fails with a timeout.
    #[arg(long, default_value_t = 60_000)]
    pub timeout_ms: u64,
    /// Also ask this model (`PROVIDER:MODEL` from the config) to judge each answer against
    /// its sources: judge-found unsupported claims count as hallucinations.
    #[arg(long)]
    pub judge: Option<String>,
    /// How many failing cases to list (all are in --json).
    #[arg(long, default_value_t = 25)]
    pub show_failures: usize,
}

/// The seed's published figures for a real provider, shown beside ours.
const SEED: &str = "seed's published figures (real provider): routing precision 0.93, tool-call success 0.94, hallucination rate 1.7%, p95 latency 1.2 s";

pub fn run(a: GoldenArgs) -> anyhow::Result<ExitCode> {
    let Some(dataset) = &a.dataset else {
        anyhow::bail!(
            "eval needs --dataset FILE (the golden set, e.g. evals/golden.jsonl) or a subcommand: retrieval, routing"
        );
    };
    let cases = crate::cli::golden::read_cases(dataset)?;
    let mut config = match &a.config {
        Some(p) => super::load_config(p)?,
        None => {
            let mut c = crate::config::Config::default();
            c.bot.business_name = "Spoke & Sprocket".into();
            c
        }
    };
    config.log.level = "error".into();
    super::init_logging(&config);
    let opts = runner::Options {
        kb: a.kb.clone(),
        mode: a.model,
        concurrency: a.concurrency,
        timeout: Duration::from_millis(a.timeout_ms),
        judge: a.judge.clone(),
    };
    let started = Instant::now();
    let bar = super::kb::bar(cases.len() as u64, "running the golden set");
    let (runs, mode) = super::kb::runtime()?.block_on(runner::run(config, &cases, &opts, &|| bar.inc(1)))?;
    bar.finish_and_clear();
    let mut report = metrics::score(&cases, runs);
    report.dataset = dataset.display().to_string();
    report.mode = mode;
    report.seconds = started.elapsed().as_secs_f64();

    if let Some(out) = &a.json {
        let text = serde_json::to_string_pretty(&report)?;
        if out.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(out, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
        }
    }
    if !a.metrics.is_empty() {
        for m in &a.metrics {
            println!("{m} {}", value(&report, m)?);
        }
    } else if a.json.as_ref().is_none_or(|o| o.as_os_str() != "-") {
        print_report(&report, &runner::describe_kb(&a.kb), a.show_failures);
    }

    let failed = super::check_gates(&a.gates, |name| value(&report, name), metrics::lower_is_better)?;
    for gate in &failed {
        let check = metrics::check_of(gate);
        let relevant = |p: &&metrics::Problem| check == "any" || p.check == check || p.check == "error";
        let ids: Vec<String> = report
            .case_reports
            .iter()
            .filter_map(|c| {
                let why: Vec<&str> = c.problems.iter().filter(relevant).map(|p| p.detail.as_str()).collect();
                (!why.is_empty()).then(|| format!("{} ({})", c.id, why.join("; ")))
            })
            .collect();
        eprintln!("  {gate} fails with {} case(s):", ids.len());
        for id in ids.iter().take(15) {
            eprintln!("    {id}");
        }
    }
    let mut regressed = false;
    if let Some(path) = &a.baseline {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the baseline {}: {e}", path.display()))?;
        let base: Report = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a saved report (write one with --json): {e}", path.display()))?;
        let regressions = metrics::compare(&base, &report, a.tolerance);
        regressed = !regressions.is_empty();
        if regressions.is_empty() {
            eprintln!("no regressions against {}", path.display());
        }
        for r in regressions {
            match r {
                Regression::Metric { name, before, now } => eprintln!("REGRESSION: {name} {before:.4} → {now:.4}"),
                Regression::Case { id, problems } => {
                    eprintln!(
                        "REGRESSION: case {id} passed before, now: {}",
                        problems
                            .iter()
                            .map(|p| format!("[{}] {}", p.check, p.detail))
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                }
            }
        }
    }
    Ok(if failed.is_empty() && !regressed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A metric by name, or an error listing the names.
fn value(report: &Report, name: &str) -> anyhow::Result<f64> {
    report.metrics.get(name).copied().ok_or_else(|| {
        anyhow::anyhow!(
            "unknown metric {name:?}; known: {}",
            report.metrics.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })
}

fn print_report(r: &Report, kb: &str, show_failures: usize) {
    let m = |k: &str| r.metrics.get(k).copied().unwrap_or(0.0);
    println!(
        "golden set {}: {} cases, {}; knowledge: {kb}; {:.1} s",
        r.dataset, r.cases, r.mode, r.seconds
    );
    println!(
        "passed       {} of {} ({:.1}%), errors {}",
        r.passed,
        r.cases,
        100.0 * m("pass_rate"),
        m("errors")
    );
    let per_route = r
        .routes
        .iter()
        .map(|(k, s)| {
            format!(
                "{k} P {:.2} R {:.2} ({} expected, {} routed)",
                s.precision, s.recall, s.support, s.predicted
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    println!(
        "routing      precision {:.3}, recall {:.3}, accuracy {:.3} — {per_route}",
        m("routing_precision"),
        m("routing_recall"),
        m("routing_accuracy")
    );
    println!(
        "tools        success {:.3}, unexpected calls {}",
        m("tool_call_success"),
        m("tool_calls_unexpected")
    );
    println!("retrieval    recall@5 {:.3}, MRR {:.3}", m("recall_at_5"), m("mrr"));
    println!(
        "grounding    hallucination rate {:.3} ({} answered cases), guard blocked {} replies, expected facts present {:.3}",
        m("hallucination_rate"),
        m("answered_cases"),
        m("guard_blocked"),
        m("expected_fact_rate")
    );
    println!(
        "handoff      precision {:.3}, recall {:.3}",
        m("handoff_precision"),
        m("handoff_recall")
    );
    println!(
        "model output {} model turns: strict-parse failure rate {:.3}, slips forgiven {}, repairs asked {}, refused {}",
        m("model_turns"),
        m("strict_parse_failure_rate"),
        m("parse_slips"),
        m("parse_repairs"),
        m("parse_refused")
    );
    let stages: Vec<String> = [
        "",
        ".retrieval",
        ".summary",
        ".llm",
        ".tools",
        ".guard",
        ".send",
        ".wall",
    ]
    .iter()
    .filter(|s| r.metrics.contains_key(&format!("p50_latency_ms{s}")))
    .map(|s| {
        format!(
            "{} {}/{}",
            if s.is_empty() { "total" } else { &s[1..] },
            m(&format!("p50_latency_ms{s}")),
            m(&format!("p95_latency_ms{s}"))
        )
    })
    .collect();
    println!("latency      p50/p95 ms per message: {}", stages.join(", "));
    println!(
        "cost         ${:.6} per message, {:.0} tokens per message",
        m("cost_per_message_usd"),
        m("tokens_per_message")
    );
    println!(
        "route mix    {}",
        r.route_mix
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "by kind      {}",
        r.kinds
            .iter()
            .map(|(k, (n, p))| format!("{k} {p}/{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("{SEED}");
    let failing: Vec<_> = r.case_reports.iter().filter(|c| !c.passed).collect();
    if !failing.is_empty() {
        println!(
            "failing cases ({}; first {show_failures}; --json has all):",
            failing.len()
        );
        for c in failing.iter().take(show_failures) {
            println!(
                "  {} — {}",
                c.id,
                c.problems
                    .iter()
                    .map(|p| format!("[{}] {}", p.check, p.detail))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }
}
