//! The golden-set eval runner (`frontdesk eval --dataset`), run as the real binary: a
//! passing run exits 0 with the metrics in its report; a deliberately broken router or
//! retriever fails its gate and names the failing cases; a saved report as baseline flags
//! the regression; a bad dataset line is refused with its line number.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::support::bin;

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(p)
}

const GATES: [&str; 4] = [
    "routing_precision=0.9",
    "tool_call_success=0.9",
    "recall_at_5=0.75",
    "hallucination_rate=0.02",
];

fn eval(args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(["eval", "--dataset"]).arg(fixture("mini.jsonl")).args(args);
    for g in GATES {
        cmd.args(["--gate", g]);
    }
    cmd.output().expect("run frontdesk eval")
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_good_run_passes_its_gates_and_a_broken_router_fails_them_with_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let o = eval(&[
        "--model",
        "scripted",
        "--judge",
        "scripted:judge",
        "--json",
        report.to_str().unwrap(),
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for line in [
        "gate ok: routing_precision",
        "gate ok: tool_call_success",
        "gate ok: recall_at_5",
        "gate ok: hallucination_rate",
        "routing      precision",
        "latency      p50/p95",
    ] {
        assert!(out.contains(line), "{line} in {out}");
    }
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["cases"], 9);
    assert_eq!(r["passed"], 9, "{out}");
    let m = &r["metrics"];
    assert_eq!(m["tool_call_success"], 1.0);
    assert_eq!(m["hallucination_rate"], 0.0);
    // The scripted model's invented price was stopped by the guard, and the judge ran.
    assert!(m["guard_blocked"].as_f64().unwrap() >= 1.0, "{m}");
    assert!(
        m["cost_per_message_usd"].as_f64().unwrap() > 0.0,
        "fictional prices give a cost: {m}"
    );
    assert!(m["p95_latency_ms.retrieval"].as_f64().is_some());
    let guard_case = r["case_reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "guard-016")
        .unwrap();
    assert_eq!(
        guard_case["run"]["judge_unsupported"],
        serde_json::json!([]),
        "{guard_case}"
    );

    // A router that sends everything to a person: the routing gate fails, naming cases,
    // and the comparison with the good run's report flags the regression.
    let cfg = dir.path().join("broken-router.toml");
    std::fs::write(
        &cfg,
        "[bot]\nbusiness_name = \"Spoke & Sprocket\"\n[whatsapp]\napp_secret = \"s\"\nverify_token = \"v\"\n[[router.rules]]\nname = \"everything\"\nregex = \".\"\nroute = \"handoff\"\n",
    )
    .unwrap();
    let o = eval(&[
        "--model",
        "scripted",
        "--config",
        cfg.to_str().unwrap(),
        "--baseline",
        report.to_str().unwrap(),
    ]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("GATE FAILED: routing_precision"), "{out}");
    assert!(
        out.contains("faq-001 (routed handoff (expected commodity))"),
        "the failing cases are named: {out}"
    );
    assert!(out.contains("REGRESSION: routing_precision"), "{out}");
    assert!(out.contains("REGRESSION: case faq-001 passed before"), "{out}");
}

#[test]
fn a_retriever_over_the_wrong_documents_fails_the_recall_gate() {
    let o = eval(&["--model", "offline", "--kb", fixture("wrong-kb").to_str().unwrap()]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("GATE FAILED: recall_at_5"), "{out}");
    assert!(out.contains("recall_at_5 fails with"), "{out}");
    assert!(out.contains("faq-001 (found"), "{out}");
}

#[test]
fn a_bad_dataset_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\":\"a\",\"turns\":[\"hi\"],\"route\":\"commodity\"}\n{\"id\":\"b\",\"turns\":[\"hi\"],\"route\":\"fast\"}\n").unwrap();
    let o = Command::new(bin())
        .args(["eval", "--dataset"])
        .arg(&bad)
        .output()
        .unwrap();
    let out = text(&o);
    assert!(!o.status.success());
    assert!(out.contains("line 2") && out.contains("\"fast\""), "{out}");
    let o = Command::new(bin()).args(["eval"]).output().unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("--dataset"), "{}", text(&o));
}
