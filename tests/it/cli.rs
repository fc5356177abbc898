//! The CLI's handling of bad setups: broken config (with file and line), unwritable data
//! dir, corrupt store files. Each must fail with a message that names the problem, and
//! exit non-zero. Also what an operator meets on the first day: digit tokens in the
//! environment, `init --force`, help texts, `kb search` output, logs off a terminal.

use std::process::Command;

use crate::support::{bin, write_config_file};

fn run(args: &[&str], config: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .env("FRONTDESK_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn init_then_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let out = Command::new(bin())
        .args(["init", "--data-dir"])
        .arg(dir.path().join("d"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(dir.path().join("d").is_dir());
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("verify_token = \"") && text.lines().any(|l| l.starts_with('#')));
    // init refuses to overwrite.
    let again = Command::new(bin())
        .args(["init", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!again.status.success());
    // The app secret is still empty: check-config names it.
    let (code, _, err) = run(&["check-config"], &config);
    assert_eq!(code, 1);
    assert!(err.contains("whatsapp.app_secret"), "{err}");
    // Given by environment, it passes, and the printed config hides the secrets.
    let out = Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&config)
        .env("FRONTDESK__WHATSAPP__APP_SECRET", "very-secret-value")
        .env("FRONTDESK__WHATSAPP__ACCESS_TOKEN", "EAAG-token-value")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("app_secret = \"***\""), "{stdout}");
    assert!(!stdout.contains("very-secret-value") && !stdout.contains("EAAG-token-value"));
    let verify = text
        .lines()
        .find(|l| l.starts_with("verify_token"))
        .unwrap()
        .split('"')
        .nth(1)
        .unwrap()
        .to_string();
    assert!(!stdout.contains(&verify));
}

#[test]
fn bad_configs_fail_with_precise_messages() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        ("listen_port = 80\n", "unknown field"),
        ("api_version = 23\n", "api_version"),
        ("[[[ this is not toml", "TOML"),
        ("[queue]\ndedupe_ttl_hours = 24\n", "queue.dedupe_ttl_hours"),
        ("[log]\nformat = \"xml\"\n", "log.format"),
    ];
    for (i, (extra, want)) in cases.iter().enumerate() {
        let sub = dir.path().join(format!("c{i}"));
        std::fs::create_dir_all(&sub).unwrap();
        let config = write_config_file(&sub, extra);
        let (code, _, err) = run(&["check-config"], &config);
        assert_ne!(code, 0, "{extra}");
        assert!(err.contains(want), "{extra}: {err}");
        let (code, _, err) = run(&["serve"], &config);
        assert_ne!(code, 0, "serve with {extra}");
        assert!(err.contains(want), "serve {extra}: {err}");
    }
    // A bad listen address (the rest of the file is fine).
    let sub = dir.path().join("listen");
    std::fs::create_dir_all(&sub).unwrap();
    let config = write_config_file(&sub, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("127.0.0.1:0", "localhost");
    std::fs::write(&config, text).unwrap();
    let (code, _, err) = run(&["check-config"], &config);
    assert_eq!(code, 1);
    assert!(err.contains("server.listen"), "{err}");
    // A missing config file.
    let (code, _, err) = run(&["check-config"], &dir.path().join("nope.toml"));
    assert_eq!(code, 1);
    assert!(
        err.contains("does not exist") && err.contains("frontdesk init"),
        "{err}"
    );
}

#[test]
fn unwritable_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A path below a regular file cannot be created, whoever runs the test (root included).
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\ndata_dir = \"{}\"\n[whatsapp]\napp_secret = \"a\"\nverify_token = \"b\"\n",
            dir.path().join("file/data").display()
        ),
    )
    .unwrap();
    let (code, _, err) = run(&["check-config"], &config);
    assert_eq!(code, 1);
    assert!(
        err.contains("storage.data_dir") && err.contains("cannot create"),
        "{err}"
    );
    let (code, _, err) = run(&["serve"], &config);
    assert_ne!(code, 0);
    assert!(err.contains("storage.data_dir"), "{err}");
}

#[test]
fn corrupt_store_files_are_refused_clearly() {
    for (file, want) in [
        ("frontdesk.db", "not a valid SQLite database"),
        ("queue.redb", "cannot open the queue journal"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config_file(dir.path(), "");
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data").join(file), vec![0x5au8; 16384]).unwrap();
        let (code, _, err) = run(&["serve"], &config);
        assert_ne!(code, 0, "{file}");
        assert!(err.contains(want), "{file}: {err}");
        assert!(err.contains("backup"), "{file}: the message says what to do: {err}");
    }
}

/// Runs `frontdesk serve` with `env`, returns the child and its base URL.
fn serve_with_env(config: &std::path::Path, env: &[(&str, &str)]) -> (std::process::Child, String) {
    let mut child = Command::new(bin())
        .args(["serve", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = crate::support::listening_base(&mut child);
    (child, base)
}

fn sigterm(child: std::process::Child) -> std::process::Output {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Config mistakes an operator makes on the first day are explained: a directory given
/// as the file, an unknown key (file and line, no internal prefix), and a token of
/// digits in the environment (taken as text, leading zero and all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_mistakes_are_explained_and_digit_tokens_are_text() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&["check-config"], dir.path());
    assert_eq!(code, 1);
    assert!(
        err.contains(&dir.path().display().to_string()) && err.contains("is a directory"),
        "{err}"
    );

    let config = write_config_file(dir.path(), "[send]\nno_such_key = 1\n");
    let (code, _, err) = run(&["check-config"], &config);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("{}:9:", config.display())) && err.contains("unknown field `no_such_key`"),
        "the file and line of the unknown key: {err}"
    );
    assert!(!err.contains("default."), "no internal prefix: {err}");

    let config = write_config_file(dir.path(), "[knowledge]\nembedder = \"none\"\n");
    let (child, base) = serve_with_env(&config, &[("FRONTDESK__WHATSAPP__VERIFY_TOKEN", "0123456")]);
    let r = reqwest::Client::new()
        .get(format!("{base}/webhook"))
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", "0123456"),
            ("hub.challenge", "7"),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let out = tokio::task::block_in_place(|| sigterm(child));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out.stderr));
}

/// Log lines carry no colour codes when stderr is not a terminal (a file, the journal).
#[test]
fn logs_have_no_colour_codes_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "[knowledge]\nembedder = \"none\"\n");
    let (child, _) = serve_with_env(&config, &[("FRONTDESK_LOG", "info")]);
    let out = sigterm(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("INFO"), "there are log lines: {err}");
    assert!(!err.contains('\u{1b}'), "no escape codes: {err:?}");
}

/// `init --force` keeps the config it replaces (with its verify token) and says where.
#[test]
fn init_force_keeps_the_old_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let init = |force: bool| {
        let mut c = Command::new(bin());
        c.args(["init", "--data-dir"])
            .arg(dir.path().join("d"))
            .arg("--config")
            .arg(&config);
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    assert!(init(false).status.success());
    let old = std::fs::read_to_string(&config).unwrap();
    let out = init(true);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("config.toml.bak-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read_to_string(&kept[0]).unwrap(), old);
    assert_ne!(std::fs::read_to_string(&config).unwrap(), old, "a new verify token");
    assert!(stdout.contains(&kept[0].display().to_string()), "{stdout}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&kept[0]).unwrap().permissions().mode() & 0o777, 0o600);
}

/// The help texts say what the commands do today: every live setting key (from the one
/// list), PDF and URLs for `kb add`, no "(later)" in `serve`.
#[test]
fn help_texts_are_complete() {
    let help = |args: &[&str]| {
        let o = Command::new(bin()).args(args).arg("--help").output().unwrap();
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let serve = help(&["serve"]);
    assert!(
        !serve.contains("(later)") && serve.contains("--discard-journal"),
        "{serve}"
    );
    let set = help(&["settings", "set"]);
    for spec in frontdesk::domain::settings::SPECS {
        assert!(set.contains(spec.key), "{} missing from\n{set}", spec.key);
    }
    let add = help(&["kb", "add"]);
    assert!(add.contains(".pdf") && add.contains("URL"), "{add}");
}

/// `kb search` prints scores with their digits and says what they are; vector search
/// without an embedder is refused, not answered with zeros.
#[test]
fn kb_search_scores_are_readable_and_vector_mode_needs_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "[knowledge]\nembedder = \"none\"\n");
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for (name, text) in [
        (
            "returns.md",
            "# Returns\n\nYou can return a bike within 30 days for a refund to your card.",
        ),
        (
            "hours.md",
            "# Opening hours\n\nWe are open Monday to Saturday, 9 to 6. Refund desk closes at 5.",
        ),
        ("repairs.md", "# Repairs\n\nFlat tyres are fixed while you wait."),
    ] {
        std::fs::write(docs.join(name), text).unwrap();
    }
    let (code, _, err) = run(&["kb", "add", docs.to_str().unwrap()], &config);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(&["kb", "search", "refund to my card"], &config);
    assert_eq!(code, 0);
    assert!(out.starts_with("# score: BM25"), "says what the score is: {out}");
    let scores: Vec<f64> = out
        .lines()
        .filter_map(|l| l.split_once(". score ").map(|(_, rest)| rest))
        .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert!(!scores.is_empty(), "{out}");
    assert!(scores.iter().all(|s| *s > 0.0), "every score has its digits: {out}");
    let (code, out, err) = run(&["kb", "search", "refund", "--mode", "vector"], &config);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("vector search is off") && err.contains("--mode bm25"),
        "{err}"
    );
}
