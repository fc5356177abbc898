//! The inbox in a real browser: Debian chromium driven by playwright-core (npm; both
//! installed by `./scripts/test`) through `tests/browser/inbox.mjs`, against this real
//! server. Screenshots land in `target/browser-screenshots/`. Set
//! FRONTDESK_SKIP_BROWSER=1 to skip on a machine without chromium (CI never does).

use std::path::Path;

use crate::engine::shop;
use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_in_chromium() {
    if std::env::var("FRONTDESK_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("FRONTDESK_SKIP_BROWSER=1: browser test skipped");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "chromium is missing: run ./scripts/test (it installs it) or set FRONTDESK_SKIP_BROWSER=1"
    );
    assert!(
        root.join("tests/browser/node_modules/playwright-core").exists(),
        "playwright-core is missing: run ./scripts/test (npm ci in tests/browser)"
    );
    let s = shop(|c| {
        c.whatsapp.templates = vec![frontdesk::config::TemplateConfig {
            name: "order_update".into(),
            language: "en_US".into(),
            params: 1,
            description: "Your order {{1}} has news".into(),
        }];
    })
    .await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    // A conversation whose 24-hour window has closed, for the template step.
    crate::engine::say(&s, "31699900009", "wamid.browser-old", "can I talk to a human").await;
    s.wait_until("the bridge", |s| s.graph.sent().len() == 1).await;
    let closed = s.query_i64(
        "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = '31699900009'",
    );
    s.app()
        .store
        .call_blocking(move |c| Ok(c.execute("UPDATE conversations SET last_inbound_at = 0 WHERE id = ?1", [closed])?))
        .unwrap();
    let shots = root.join("target/browser-screenshots");
    let base = s.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg("tests/browser/inbox.mjs")
            .current_dir(root)
            .env("FD_BASE", base)
            .env("FD_EMAIL", ADMIN)
            .env("FD_PASSWORD", ADMIN_PW)
            .env("FD_SECRET", crate::support::SECRET)
            .env("FD_SHOTS", shots)
            .env("FD_CLOSED_CONVERSATION", closed.to_string())
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    println!("{stdout}");
    assert!(out.status.success(), "the browser flow failed:\n{stdout}\n{stderr}");
    assert_eq!(
        s.graph
            .sent()
            .iter()
            .filter(|m| m.body["text"]["body"].as_str() == Some("Hi, this is Sam from the shop. How can I help?"))
            .count(),
        1
    );
    let ups = s.graph.uploads();
    assert_eq!(
        (ups.len(), ups[0].mime_type.as_str(), ups[0].file_name.as_str()),
        (1, "image/png", "new-wheel.png"),
        "{ups:?}"
    );
    let photo = s
        .graph
        .sent()
        .into_iter()
        .find(|m| m.body["type"] == "image")
        .expect("the photo was sent");
    assert_eq!(
        photo.body["image"],
        serde_json::json!({ "id": ups[0].id, "caption": "Your new wheel is ready" })
    );
    let template = s
        .graph
        .sent()
        .into_iter()
        .find(|m| m.body["type"] == "template")
        .expect("the template was sent");
    assert_eq!(template.body["template"]["name"], "order_update");
    assert!(template.body.to_string().contains("SS-10421"), "{}", template.body);
    s.stop().await;
}
