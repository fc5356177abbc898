//! The CLI's handling of bad setups: broken config, unwritable data dir, corrupt store
//! files. Each must fail with a message that names the problem, and exit non-zero.

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
