//! A damaged journal gets what a damaged database gets: `serve` and `doctor` refuse a
//! truncated, an empty, and a missing-after-first-run `queue.redb` with a message that
//! names the file, what is at risk and the way out, exit 1, print no stack trace, and
//! leave the file exactly as it was. `serve --discard-journal` moves it aside (kept),
//! starts, and says what it dropped.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use frontdesk::whatsapp::signature::sign;

use crate::support::{BinServer, SECRET, bin, text_webhook, write_config_file};

/// Runs `frontdesk ARGS --config CONFIG`, killing it if it is still running after 30 s
/// (a server that started when it should have refused); returns (exit code, stdout, stderr).
fn run_bounded(args: &[&str], config: &Path) -> (Option<i32>, String, String) {
    let mut child = Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .env("FRONTDESK_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{args:?} kept running instead of refusing:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A data dir whose server has run once and journaled a few deliveries.
fn data_dir_after_a_first_run(dir: &Path) -> std::path::PathBuf {
    let config = write_config_file(dir, "[knowledge]\nembedder = \"none\"\n");
    let mut server = BinServer::start(&config);
    let base = server.base.clone();
    tokio::runtime::Runtime::new().unwrap().block_on(async move {
        let client = reqwest::Client::new();
        for i in 0..3 {
            let body = text_webhook("P1", "31600000001", &format!("wamid.jd-{i}"), "hello").into_bytes();
            let r = client
                .post(format!("{base}/webhook"))
                .header("content-type", "application/json")
                .header("x-hub-signature-256", sign(SECRET.as_bytes(), &body))
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    });
    assert!(server.sigterm().success());
    config
}

#[test]
fn a_truncated_empty_or_missing_journal_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let config = data_dir_after_a_first_run(dir.path());
    let journal = dir.path().join("data").join("queue.redb");
    let original = std::fs::read(&journal).unwrap();
    assert!(original.len() > 4096, "{}", original.len());

    let truncated = original[..original.len() / 2].to_vec();
    for (case, content) in [
        ("truncated", Some(truncated.clone())),
        ("empty", Some(Vec::new())),
        ("missing", None),
    ] {
        match &content {
            Some(bytes) => std::fs::write(&journal, bytes).unwrap(),
            None => std::fs::remove_file(&journal).unwrap(),
        }
        let (code, out, err) = run_bounded(&["serve"], &config);
        assert_eq!(code, Some(1), "{case}: serve must refuse\n{out}{err}");
        for want in [
            journal.display().to_string().as_str(),
            "dedupe keys",
            "frontdesk restore",
            "--discard-journal",
        ] {
            assert!(err.contains(want), "{case}: {want:?} in\n{err}");
        }
        for never in ["panicked", "stack backtrace", "internal error", "RUST_BACKTRACE"] {
            assert!(!err.contains(never), "{case}: no panic report ({never:?}):\n{err}");
        }
        let (code, out, err) = run_bounded(&["doctor"], &config);
        assert_eq!(code, Some(1), "{case}: doctor fails\n{out}{err}");
        assert!(
            out.contains("FAIL  journal") && out.contains("--discard-journal"),
            "{case}: doctor says what to do\n{out}{err}"
        );
        assert!(!err.contains("panicked"), "{case}: {err}");
        // Neither of them touched the file.
        match &content {
            Some(bytes) => assert_eq!(&std::fs::read(&journal).unwrap(), bytes, "{case}: file unchanged"),
            None => assert!(!journal.exists(), "{case}: not re-created"),
        }
    }

    // The explicit way out: the damaged file is moved aside, not deleted, and the server
    // says what it dropped.
    std::fs::write(&journal, &truncated).unwrap();
    let mut child = Command::new(bin())
        .args(["serve", "--discard-journal", "--config"])
        .arg(&config)
        .env("FRONTDESK_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let started = first.starts_with("frontdesk listening on ");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(started && out.status.success(), "{first}{err}");
    assert!(
        err.contains("Started with an empty journal") && err.contains("dedupe keys") && err.contains("kept as"),
        "{err}"
    );
    let kept: Vec<_> = std::fs::read_dir(dir.path().join("data"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("queue.redb.damaged-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        std::fs::read(&kept[0]).unwrap(),
        truncated,
        "the damaged file is kept as it was"
    );
    assert!(err.contains(&kept[0].display().to_string()), "{err}");
    // The new journal is healthy: a plain start works again.
    let (code, out, err) = run_bounded(&["doctor"], &config);
    assert!(out.contains("ok    journal"), "{code:?}\n{out}{err}");
}
