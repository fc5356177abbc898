//! Inbound media end to end, with the fake Graph API serving the files and real HTTP fakes
//! for the transcription and vision services: a voice note made with espeak-ng and sox is
//! uploaded to the transcription service as a well-formed multipart request, its
//! transcript becomes the turn the model answers (the reply waits for it); an image's
//! description and a PDF's text do the same; oversized, wrong-type, truncated,
//! expired-URL, service-down and video media get the documented outcome (a request to
//! type, or a person per `media.on_failure`); stickers are recorded and not answered.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use frontdesk::config::Secret;
use serde_json::{Value, json};
use sha2::Digest;

use crate::engine_llm::{fakes, shop_with_models};
use crate::fake_llm::{Step, reply};
use crate::fake_transcriber::{self, Answer, FakeTranscriber};
use crate::support::TestServer;

/// A one-message media webhook from `from`; `media` is the type's object.
pub fn media_webhook(from: &str, wamid: &str, kind: &str, media: Value) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550001111", "phone_number_id": "P1" },
            "contacts": [{ "profile": { "name": "Customer" }, "wa_id": from }],
            "messages": [{ "from": from, "id": wamid, "timestamp": (frontdesk::domain::now_ms() / 1000).to_string(), "type": kind, kind: media }]
        }}]}]
    })
    .to_string()
}

/// Meta's webhook checksum: base64 of the SHA-256.
fn b64_sha(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

/// A spoken sentence as Ogg Vorbis, made by espeak-ng and sox (installed by
/// ./scripts/test); `None` (with a visible note) where they are missing.
pub fn spoken_ogg(dir: &Path, sentence: &str) -> Option<Vec<u8>> {
    let have = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
    if !have("espeak-ng") || !have("sox") {
        assert!(
            std::env::var("FRONTDESK_REQUIRE_AUDIO_TOOLS").is_err(),
            "espeak-ng and sox were installed by ./scripts/test but cannot run"
        );
        eprintln!(
            "SKIPPED: real-audio media test: espeak-ng and sox are not installed (apt-get install espeak-ng sox)"
        );
        return None;
    }
    let wav = dir.join("voice.wav");
    let ogg = dir.join("voice.ogg");
    assert!(
        Command::new("espeak-ng")
            .arg("-w")
            .arg(&wav)
            .arg(sentence)
            .status()
            .unwrap()
            .success()
    );
    assert!(
        Command::new("sox")
            .arg(&wav)
            .args(["-r", "16000", "-c", "1"])
            .arg(&ogg)
            .status()
            .unwrap()
            .success()
    );
    Some(std::fs::read(ogg).unwrap())
}

async fn post(s: &TestServer, body: String) {
    assert_eq!(s.post_webhook(body.as_bytes()).await, 200);
}

async fn media_row(s: &TestServer, wamid: &str) -> frontdesk::store::media::MediaRow {
    let w = wamid.to_string();
    s.app()
        .store
        .read(move |c| frontdesk::store::media::get(c, &w))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no media row for {wamid}"))
        .0
}

fn message_text(s: &TestServer, wamid: &str) -> String {
    s.messages()
        .into_iter()
        .find(|m| m.id == wamid)
        .map(|m| m.text)
        .unwrap_or_default()
}

fn sent_to(s: &TestServer, wa_id: &str) -> Vec<String> {
    s.graph
        .sent()
        .iter()
        .filter(|m| m.body["to"] == wa_id)
        .map(|m| m.body["text"]["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_note_is_transcribed_and_answered() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(ogg) = spoken_ogg(tmp.path(), "Where is my order one two three four?") else {
        return;
    };
    let (a, o) = fakes().await;
    let t = FakeTranscriber::start().await;
    t.script(vec![Answer::Text {
        text: "Where is my order 1234?".into(),
        language: "english".into(),
    }]);
    a.script(vec![reply("Your order 1234 is on its way.", 0.95)]);
    let tb = t.base_url();
    let s = shop_with_models(&a, &o, move |c| {
        c.media.transcription_url = tb;
        c.media.transcription_api_key = Secret::new(fake_transcriber::KEY);
    })
    .await;
    s.graph.add_media("voice-1", "audio/ogg", ogg.clone());
    post(
        &s,
        media_webhook(
            "31600000101",
            "wamid.voice-1",
            "audio",
            json!({ "id": "voice-1", "mime_type": "audio/ogg; codecs=opus", "sha256": b64_sha(&ogg), "voice": true }),
        ),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sent_to(&s, "31600000101").is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !sent_to(&s, "31600000101").iter().any(|t| t.contains("on its way")) {
        let w = "wamid.voice-1".to_string();
        let trace = s
            .app()
            .store
            .read(move |c| frontdesk::store::handoffs::trace_for(c, &w))
            .await
            .unwrap();
        panic!(
            "no answer from the model: sent {:?}\ntrace: {trace:?}\nmedia: {:?}\ntranscriber uploads: {}\nmodel requests: {:?}\nqueue: {:?}",
            sent_to(&s, "31600000101"),
            media_row(&s, "wamid.voice-1").await,
            t.uploads().len(),
            a.requests(),
            s.app().queue.stats().ok()
        );
    }

    // The upload is what an OpenAI-compatible service expects.
    let ups = t.uploads();
    assert_eq!(ups.len(), 1);
    let up = &ups[0];
    assert!(
        up.content_type.starts_with("multipart/form-data; boundary="),
        "{}",
        up.content_type
    );
    assert!(up.authorized, "bearer key sent");
    assert_eq!(
        (up.model.as_str(), up.response_format.as_str()),
        ("whisper-1", "verbose_json")
    );
    assert_eq!(
        (up.file_name.as_str(), up.file_type.as_str()),
        ("voice.ogg", "audio/ogg")
    );
    assert_eq!(up.file, ogg, "the real audio, byte for byte");
    assert!(up.file.starts_with(b"OggS"));

    // Stored content-addressed; the transcript is the turn's text and what the model read.
    let row = media_row(&s, "wamid.voice-1").await;
    assert_eq!(row.status, "done");
    assert_eq!(row.derived_text.as_deref(), Some("Where is my order 1234?"));
    assert_eq!(row.language.as_deref(), Some("english"));
    let sha = hex::encode(sha2::Sha256::digest(&ogg));
    assert_eq!(row.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(
        std::fs::read(s.dir.path().join("media").join(&sha[..2]).join(&sha)).unwrap(),
        ogg
    );
    assert_eq!(message_text(&s, "wamid.voice-1"), "Where is my order 1234?");
    assert!(
        a.requests()[0].to_string().contains("Where is my order 1234?"),
        "the reply waited for the transcript"
    );
    assert_eq!(s.metric("media_read_total"), 1);

    // The inbox shows the transcript and plays the original from the media store.
    use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add, get, login};
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let conv = s.query_i64("SELECT conversation_id FROM messages WHERE wamid = 'wamid.voice-1'");
    let msg = s.query_i64("SELECT id FROM messages WHERE wamid = 'wamid.voice-1'");
    let page = get(&s, &format!("/app/c/{conv}"), Some(&cookie)).await.1;
    let src = format!("/app/c/{conv}/media/{msg}");
    assert!(
        page.contains(&format!("<audio controls preload=\"none\" src=\"{src}\"")),
        "{page}"
    );
    assert!(
        page.contains("Where is my order 1234?") && page.contains("Transcript (english)"),
        "{page}"
    );
    s.graph.expire_media_url("voice-1", 10);
    let r = crate::inbox_auth::http()
        .get(format!("{}{src}", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "audio/ogg");
    assert_eq!(
        r.bytes().await.unwrap().to_vec(),
        ogg,
        "served from the store, not Meta (whose URL has expired)"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_described_and_documents_read_before_the_answer() {
    let (a, o) = fakes().await;
    o.script(vec![Step::Json(json!({
        "description": "A city bike with a bent front wheel.", "text_in_image": "ORDER #5521",
        "damage": "the front rim is bent", "product": "city bike"
    }))]);
    a.script(vec![
        reply("Sorry about the bent rim on order 5521, we'll fix it.", 0.9),
        reply("Yes: returns are accepted within 30 days.", 0.9),
    ]);
    let s = shop_with_models(&a, &o, |c| c.media.vision_models = vec!["openai:gpt-4o-mini".into()]).await;
    let png = [&b"\x89PNG\r\n\x1a\n"[..], &[7u8; 300]].concat();
    s.graph.add_media("img-1", "image/png", png.clone());
    post(&s, media_webhook("31600000102", "wamid.img-1", "image", json!({ "id": "img-1", "mime_type": "image/png", "sha256": b64_sha(&png), "caption": "it arrived like this" }))).await;
    s.wait_until("the answer", |s| {
        sent_to(s, "31600000102").iter().any(|t| t.contains("bent rim"))
    })
    .await;
    // The vision model got the image itself.
    let vision = o.requests()[0].clone();
    let image_part = vision["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .find(|p| p["type"] == "image_url")
        .expect("an image part");
    use base64::Engine;
    assert_eq!(
        image_part["image_url"]["url"],
        format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&png)
        )
    );
    let text = message_text(&s, "wamid.img-1");
    assert_eq!(
        text,
        "it arrived like this\n[image: A city bike with a bent front wheel. Text in it: \"ORDER #5521\". Damage: the front rim is bent. Product: city bike]"
    );
    assert!(
        a.requests()[0].to_string().contains("ORDER #5521"),
        "the answer used the description"
    );

    // A PDF's text layer.
    let pdf = include_bytes!("../fixtures/kb/returns.pdf").to_vec();
    s.graph.add_media("doc-1", "application/pdf", pdf.clone());
    post(
        &s,
        media_webhook(
            "31600000103",
            "wamid.doc-1",
            "document",
            json!({ "id": "doc-1", "mime_type": "application/pdf", "filename": "returns.pdf" }),
        ),
    )
    .await;
    s.wait_until("the answer", |s| !sent_to(s, "31600000103").is_empty())
        .await;
    let row = media_row(&s, "wamid.doc-1").await;
    assert_eq!(
        (row.status.as_str(), row.derived_kind.as_deref()),
        ("done", Some("document_text"))
    );
    let text = message_text(&s, "wamid.doc-1");
    assert!(
        text.starts_with("[document: returns.pdf]\n[document text: ") && text.contains("within 30 days"),
        "{text}"
    );
    assert!(a.requests()[1].to_string().contains("within 30 days"));

    // Erasing a contact deletes their stored files at once; others' stay.
    let file = |sha: &str| s.dir.path().join("media").join(&sha[..2]).join(sha);
    let (img, doc) = (
        media_row(&s, "wamid.img-1").await.sha256.unwrap(),
        row.sha256.clone().unwrap(),
    );
    assert!(file(&img).exists() && file(&doc).exists());
    let config = s.cli_config();
    let (ok, out, err) = tokio::task::block_in_place(|| {
        crate::engine::admin_cli(&config, &["contact", "erase", "31600000102", "--json"])
    });
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(out.trim()).unwrap()["media"], 1, "{out}");
    assert!(!file(&img).exists(), "the erased customer's photo is gone");
    assert!(file(&doc).exists());
    assert_eq!(s.query_i64("SELECT COUNT(*) FROM media WHERE wamid = 'wamid.img-1'"), 0);
    // Media retention forgets files past their age (the maintenance worker deletes them).
    let names = s
        .app()
        .store
        .write(|c| frontdesk::store::media::expire_files(c, frontdesk::domain::now_ms() + 1, 10))
        .await
        .unwrap();
    assert_eq!(names, vec![doc.clone()]);
    assert!(
        !s.app()
            .store
            .read(move |c| frontdesk::store::media::file_in_use(c, &doc))
            .await
            .unwrap()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_media_gets_a_request_to_type_or_a_person_never_silence() {
    let t = FakeTranscriber::start().await;
    t.otherwise(Answer::Status(503));
    let tb = t.base_url();
    let s = crate::engine::shop(move |c| {
        c.media.transcription_url = tb;
        c.media.max_image_bytes = 1_000;
        c.media.max_attempts = 2;
    })
    .await;
    let jpeg = [&b"\xFF\xD8\xFF\xE0"[..], &[1u8; 200]].concat();
    let ogg = [&b"OggS"[..], &[2u8; 500]].concat();
    s.graph
        .add_media("big", "image/jpeg", [&jpeg[..], &[0u8; 2_000]].concat());
    s.graph
        .add_media("html", "image/jpeg", b"<html><body>login</body></html>".to_vec());
    s.graph.add_media("cut", "audio/ogg", ogg.clone());
    s.graph.truncate_media("cut", 100);
    s.graph.add_media("gone", "image/jpeg", jpeg.clone());
    s.graph.expire_media_url("gone", 2);
    s.graph.add_media("deaf", "audio/ogg", ogg.clone());
    s.graph
        .add_media("film", "video/mp4", b"\x00\x00\x00\x18ftypmp42....".to_vec());
    let cases = [
        (
            "31600000201",
            "big",
            "image",
            "larger than the 1000-byte limit",
            "open your image",
        ),
        (
            "31600000202",
            "html",
            "image",
            "not the image/jpeg it was declared as",
            "open your image",
        ),
        (
            "31600000203",
            "cut",
            "audio",
            "cut short (100 of 504 bytes)",
            "listen to your voice note",
        ),
        ("31600000204", "gone", "image", "expired twice", "open your image"),
        (
            "31600000205",
            "deaf",
            "audio",
            "transcription service answered HTTP 503",
            "listen to your voice note",
        ),
        ("31600000206", "film", "video", "videos are not watched", "watch videos"),
    ];
    for (from, id, kind, _, _) in &cases {
        let mut media = json!({ "id": id, "mime_type": if *kind == "audio" { "audio/ogg; codecs=opus" } else if *kind == "video" { "video/mp4" } else { "image/jpeg" } });
        if *kind == "audio" {
            media["voice"] = json!(true);
        }
        post(&s, media_webhook(from, &format!("wamid.{id}"), kind, media)).await;
    }
    // A sticker is recorded and kept, not answered.
    s.graph
        .add_media("stk", "image/webp", b"RIFF\x10\x00\x00\x00WEBPVP8 sticker".to_vec());
    post(
        &s,
        media_webhook(
            "31600000207",
            "wamid.sticker",
            "sticker",
            json!({ "id": "stk", "mime_type": "image/webp", "animated": false }),
        ),
    )
    .await;
    for (from, id, _, why, notice) in &cases {
        s.wait_until(&format!("the notice for {id}"), |s| !sent_to(s, from).is_empty())
            .await;
        let got = sent_to(&s, from);
        assert_eq!(got.len(), 1, "{id}: {got:?}");
        assert!(
            got[0].contains(notice) && got[0].contains("Could you type your message instead?"),
            "{id}: {got:?}"
        );
        let row = media_row(&s, &format!("wamid.{id}")).await;
        assert_eq!(row.status, "failed", "{id}");
        assert!(
            row.error.as_deref().unwrap_or_default().contains(why),
            "{id}: {:?}",
            row.error
        );
    }
    assert_eq!(
        t.uploads().len(),
        2,
        "the transcription service was tried max_attempts times"
    );
    assert_eq!(s.metric("media_failed_total"), 6);
    s.idle().await;
    assert!(sent_to(&s, "31600000207").is_empty(), "stickers are not answered");
    assert_eq!(message_text(&s, "wamid.sticker"), "[sticker]", "but recorded");
    s.wait_until("the sticker kept", |s| {
        s.query_i64(
            "SELECT COUNT(*) FROM media WHERE wamid = 'wamid.sticker' AND status = 'done' AND sha256 IS NOT NULL",
        ) == 1
    })
    .await;
    s.stop().await;

    // media.on_failure = "handoff": a person takes over instead.
    let s = crate::engine::shop(|c| c.media.on_failure = frontdesk::config::MediaFailure::Handoff).await;
    s.graph.add_media("html", "image/jpeg", b"<html>".to_vec());
    post(
        &s,
        media_webhook(
            "31600000208",
            "wamid.html2",
            "image",
            json!({ "id": "html", "mime_type": "image/jpeg" }),
        ),
    )
    .await;
    s.wait_until("the handoff", |s| {
        s.query_i64("SELECT COUNT(*) FROM handoffs WHERE trigger = 'media_failed'") == 1
    })
    .await;
    assert_eq!(crate::engine::owner(&s, "31600000208"), "human");
    s.wait_until("the bridge message", |s| !sent_to(s, "31600000208").is_empty())
        .await;
    assert!(
        !sent_to(&s, "31600000208").iter().any(|t| t.contains("Could you type")),
        "no request to type when a person takes over"
    );
    s.stop().await;
}

/// The media id from the webhook becomes a Graph URL path segment sent with the access
/// token: one that is not a media id is refused before any request (a permanent failure
/// with its reason, the customer asked to type). And the token goes to the download URL
/// Graph names only when it is https or on the Graph base itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_media_id_or_download_url_never_gets_the_token() {
    let s = crate::engine::shop(|_| {}).await;
    post(
        &s,
        media_webhook(
            "31600000301",
            "wamid.traversal",
            "image",
            json!({ "id": "../../me?fields=", "mime_type": "image/jpeg" }),
        ),
    )
    .await;
    s.wait_until("the notice", |s| !sent_to(s, "31600000301").is_empty())
        .await;
    assert!(sent_to(&s, "31600000301")[0].contains("Could you type your message instead?"));
    let row = media_row(&s, "wamid.traversal").await;
    assert_eq!(row.status, "failed");
    assert!(
        row.error
            .as_deref()
            .unwrap_or_default()
            .contains("\"../../me?fields=\" is not a Graph media id"),
        "{:?}",
        row.error
    );
    crate::engine::settle(&s).await;
    let requests = s.graph.requests();
    assert!(
        !requests.is_empty()
            && requests
                .iter()
                .all(|r| r.starts_with("POST /") && r.ends_with("/P1/messages")),
        "only the notice and read marks: {requests:?}"
    );
    s.stop().await;

    // Graph (here: the same fake, named by another host) hands out a plain-http URL on a
    // host that is not the Graph base: the metadata is asked for, the bytes are not.
    let s = crate::engine::shop(|c| {
        c.whatsapp.graph_base_url = c.whatsapp.graph_base_url.replace("127.0.0.1", "localhost")
    })
    .await;
    let jpeg = [&b"\xFF\xD8\xFF\xE0"[..], &[1u8; 200]].concat();
    s.graph.add_media("1234567890", "image/jpeg", jpeg);
    post(
        &s,
        media_webhook(
            "31600000302",
            "wamid.offsite",
            "image",
            json!({ "id": "1234567890", "mime_type": "image/jpeg" }),
        ),
    )
    .await;
    s.wait_until("the notice", |s| !sent_to(s, "31600000302").is_empty())
        .await;
    let row = media_row(&s, "wamid.offsite").await;
    assert_eq!(row.status, "failed");
    assert!(
        row.error
            .as_deref()
            .unwrap_or_default()
            .contains("is not https, so the access token is not sent to it"),
        "{:?}",
        row.error
    );
    let requests = s.graph.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /") && r.ends_with("/1234567890")),
        "{requests:?}"
    );
    assert!(
        !requests.iter().any(|r| r.contains("/_media/")),
        "the bytes were never fetched with the token: {requests:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_attach_photos_and_documents() {
    use crate::inbox_auth::{ADMIN, ADMIN_PW, cli_add, csrf_of, get, http, login};
    let s = crate::engine::shop(|c| c.bot.enabled = false).await;
    tokio::task::block_in_place(|| cli_add(&s, ADMIN, "admin", Some(ADMIN_PW)));
    crate::engine::say(&s, "31600000301", "wamid.att-1", "can you send me the invoice?").await;
    s.wait_until("stored", |s| s.query_i64("SELECT COUNT(*) FROM messages") == 1)
        .await;
    let id = s.query_i64("SELECT id FROM conversations");
    let cookie = login(&s, ADMIN, ADMIN_PW).await.1.unwrap();
    let attach =
        |file: Vec<u8>, name: &'static str, mime: &'static str, caption: &'static str, key: String, csrf: String| {
            let form = reqwest::multipart::Form::new()
                .text("key", key)
                .text("caption", caption)
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(file)
                        .file_name(name)
                        .mime_str(mime)
                        .unwrap(),
                );
            http()
                .post(format!("{}/app/c/{id}/attach?csrf={csrf}", s.base))
                .header("cookie", cookie.clone())
                .multipart(form)
                .send()
        };
    let page = get(&s, &format!("/app/c/{id}"), Some(&cookie)).await.1;
    assert!(page.contains("Send a photo or document"), "{page}");
    let key = page.split("name=\"key\" value=\"").nth(2).unwrap()[..64].to_string();
    let png = [&b"\x89PNG\r\n\x1a\n"[..], &[9u8; 100]].concat();
    let r = attach(
        png.clone(),
        "wheel.png",
        "image/png",
        "the new wheel",
        key.clone(),
        csrf_of(&page),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    // The same form submitted twice sends once.
    assert_eq!(
        attach(
            png.clone(),
            "wheel.png",
            "image/png",
            "the new wheel",
            key,
            csrf_of(&page)
        )
        .await
        .unwrap()
        .status(),
        303
    );
    let page = get(&s, &format!("/app/c/{id}"), Some(&cookie)).await.1;
    let key = page.split("name=\"key\" value=\"").nth(2).unwrap()[..64].to_string();
    let pdf = include_bytes!("../fixtures/kb/returns.pdf").to_vec();
    assert_eq!(
        attach(
            pdf.clone(),
            "invoice-77.pdf",
            "application/pdf",
            "",
            key.clone(),
            csrf_of(&page)
        )
        .await
        .unwrap()
        .status(),
        303
    );
    // Without the CSRF token: refused, nothing uploaded.
    assert_eq!(
        attach(pdf.clone(), "x.pdf", "application/pdf", "", key, "forged".into())
            .await
            .unwrap()
            .status(),
        403
    );

    s.wait_until("both sent", |s| s.graph.sent().len() == 2).await;
    let ups = s.graph.uploads();
    assert_eq!(
        ups.len(),
        2,
        "uploaded by the send worker, once per message (the double submit is one message): {ups:?}"
    );
    assert!(
        ups.iter()
            .all(|u| u.messaging_product == "whatsapp" && u.phone_number_id == "P1")
    );
    assert_eq!(
        (ups[0].mime_type.as_str(), ups[0].file_name.as_str(), ups[0].size),
        ("image/png", "wheel.png", png.len())
    );
    assert_eq!(
        (ups[1].mime_type.as_str(), ups[1].file_name.as_str()),
        ("application/pdf", "invoice-77.pdf")
    );
    let sent = s.graph.sent();
    assert_eq!(sent[0].body["type"], "image");
    assert_eq!(
        sent[0].body["image"],
        json!({ "id": ups[0].id, "caption": "the new wheel" })
    );
    assert_eq!(sent[1].body["type"], "document");
    assert_eq!(
        sent[1].body["document"],
        json!({ "id": ups[1].id, "filename": "invoice-77.pdf" })
    );
    assert_eq!(
        crate::engine::owner(&s, "31600000301"),
        "human",
        "an agent sending takes the conversation"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_transcription_service() {
    let t = FakeTranscriber::start().await;
    t.script(vec![Answer::Text {
        text: String::new(),
        language: "english".into(),
    }]);
    let dir = tempfile::tempdir().unwrap();
    let run = |url: String, dir: std::path::PathBuf| {
        let config = crate::support::write_config_file(
            &dir,
            &format!(
                "[media]\ntranscription_url = \"{url}\"\ntranscription_api_key = \"{}\"\n",
                fake_transcriber::KEY
            ),
        );
        let out = Command::new(crate::support::bin())
            .args(["doctor", "--config"])
            .arg(&config)
            .env("FRONTDESK_LOG", "error")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let (url, d) = (t.base_url(), dir.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || run(url, d)).await.unwrap();
    assert!(
        out.contains(&format!("ok    transcription: {} (whisper-1) answered", t.base_url())),
        "{out}"
    );
    let up = &t.uploads()[0];
    assert!(
        up.authorized && up.file.starts_with(b"RIFF") && up.file_type == "audio/wav",
        "a real WAV upload: {up:?}"
    );
    let dead = format!(
        "http://127.0.0.1:{}/v1",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || run(dead, d)).await.unwrap();
    assert!(
        out.contains("FAIL  transcription:") && out.contains("start the transcription service"),
        "{out}"
    );
}
