//! More ways into and out of the knowledge base: a remote OpenAI-compatible embedder
//! (against a fake server), `kb add` of http(s) URLs with size and time limits, the
//! 1-bit quantized first pass with exact rescoring, and the HTTP search/status API.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use frontdesk::config::{KnowledgeConfig, Secret};
use frontdesk::knowledge::{Knowledge, Mode, embedder_from_config};
use frontdesk::store::Store;

use crate::fake_openai::{FakeOpenAi, KEY};
use crate::knowledge::{HashEmbedder, count, demo_kb, kb_cli};
use crate::support::{TestServer, write_config_file};

fn remote_config(fake: &FakeOpenAi, dim: usize) -> KnowledgeConfig {
    let mut c = KnowledgeConfig {
        embedder: frontdesk::config::EmbedderKind::Openai,
        ..Default::default()
    };
    c.remote.base_url = fake.base_url();
    c.remote.api_key = Secret::new(KEY);
    c.remote.model = "fake-embed".into();
    c.remote.dimensions = dim;
    c.remote.batch_size = 8;
    c.remote.timeout_ms = 2_000;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_embedder_ingests_and_searches_through_an_openai_compatible_endpoint() {
    let fake = FakeOpenAi::start(64).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("kb.db")).unwrap();
    let config = remote_config(&fake, 64);
    let kb = Knowledge::new(store.clone(), embedder_from_config(&config).unwrap(), config.clone());
    assert_eq!(kb.embedder.model_id(), format!("openai:fake-embed@{}", fake.base_url()));
    kb.prepare(&|_, _| {}).await.unwrap();
    let report = kb
        .add_paths(&[demo_kb()], &Default::default(), &|_, _, _| {})
        .await
        .unwrap();
    assert_eq!(report.added, 30);
    let chunks = count(&store, "SELECT COUNT(*) FROM kb_chunks");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM kb_vec"), chunks);
    assert!(
        fake.batches().iter().all(|&b| b <= 8),
        "batched by remote.batch_size: {:?}",
        fake.batches()
    );
    assert_eq!(
        fake.batches().iter().sum::<usize>() as i64,
        chunks,
        "each chunk embedded once"
    );
    // Rows come back in reverse order and unnormalised: stored sorted by index, unit length.
    let first = store
        .call_blocking(|c| frontdesk::store::knowledge::vectors_by_id(c, &[1]))
        .unwrap();
    let norm: f32 = first[0].1.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    let text: String = store.call_blocking(|c| Ok(c.query_row("SELECT d.title || char(10) || c.section || char(10) || c.text FROM kb_chunks c JOIN kb_documents d ON d.id = c.doc_id WHERE c.id = 1", [], |r| r.get(0))?)).unwrap();
    let want = crate::fake_openai::fake_vector(&text, 64);
    let want_norm: f32 = want.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        first[0]
            .1
            .iter()
            .zip(&want)
            .all(|(a, b)| (a - b / want_norm).abs() < 1e-5),
        "vector 1 is the embedding of chunk 1"
    );

    let hits = kb.search("rental deposit", 3, Mode::Vector).await.unwrap();
    assert_eq!(hits.len(), 3);
    // 500 and 429 are retried with backoff.
    let before = fake.requests();
    fake.fail_next(&[500, 429]);
    assert_eq!(kb.search("rental deposit", 3, Mode::Vector).await.unwrap(), hits);
    assert_eq!(fake.requests() - before, 3);
    // Three failures in a row give up with the server's status.
    fake.fail_next(&[503, 503, 503]);
    let err = kb
        .search("rental deposit", 3, Mode::Vector)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("503"), "{err}");
    // A wrong key is not retried and says what the server said.
    let mut wrong = config.clone();
    wrong.remote.api_key = Secret::new("sk-wrong");
    let before = fake.requests();
    let embed_once = |c: KnowledgeConfig| {
        tokio::task::spawn_blocking(move || {
            embedder_from_config(&c)
                .unwrap()
                .embed(&["hi"])
                .unwrap_err()
                .to_string()
        })
    };
    let err = embed_once(wrong).await.unwrap();
    assert!(err.contains("401") && err.contains("Incorrect API key"), "{err}");
    assert_eq!(fake.requests() - before, 1);
    assert!(!err.contains("sk-wrong"), "the key is never in messages");
    // A model that changed its width is refused with the fix.
    fake.set_dim(32);
    let err = kb
        .search("rental deposit", 3, Mode::Vector)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("dimensions = 64; set it to 32"), "{err}");
    // Nothing listening.
    let mut gone = config.clone();
    gone.remote.base_url = "http://127.0.0.1:9/v1".into();
    let err = embed_once(gone).await.unwrap();
    assert!(err.contains("unreachable"), "{err}");
}

/// A small site: pages of each kind, and the ways a fetch goes wrong.
async fn serve_site() -> String {
    let pdf: &'static [u8] = include_bytes!("../fixtures/kb/returns.pdf");
    let app = Router::new()
        .route(
            "/faq.html",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    "<html><head><title>Workshop FAQ</title><script>track()</script></head><body><nav>Home</nav>\
                     <h1>Workshop</h1><p>A puncture repair takes about 20 minutes and costs 12 euro.</p></body></html>",
                )
            }),
        )
        .route(
            "/policy",
            get(move || async move { ([(header::CONTENT_TYPE, "application/pdf")], pdf) }),
        )
        .route("/big.txt", get(|| async { "x".repeat(300_000) }))
        .route(
            "/stream.txt",
            get(|| async {
                let chunks = (0..40).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'y'; 10_000])));
                // Streamed, so no Content-Length: the limit must hold while reading.
                axum::body::Body::from_stream(futures_util::stream::iter(chunks.collect::<Vec<_>>()))
            }),
        )
        .route(
            "/slow.txt",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "too late"
            }),
        )
        .route(
            "/logo.png",
            get(|| async { ([(header::CONTENT_TYPE, "image/png")], vec![0x89u8, b'P', b'N', b'G']) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_are_fetched_with_size_and_time_limits() {
    let site = serve_site().await;
    let dir = tempfile::tempdir().unwrap();
    // The fake site is on 127.0.0.1: the documented opt-in for private addresses.
    let config = write_config_file(
        dir.path(),
        "[knowledge]\nembedder = \"none\"\nmax_document_bytes = 200000\nfetch_timeout_ms = 1000\nallow_private_urls = true\n",
    );
    let urls: Vec<String> = [
        "/faq.html#top",
        "/policy",
        "/big.txt",
        "/stream.txt",
        "/slow.txt",
        "/logo.png",
        "/missing",
    ]
    .iter()
    .map(|p| format!("{site}{p}"))
    .collect();
    let args: Vec<&str> = std::iter::once("add").chain(urls.iter().map(String::as_str)).collect();
    let started = std::time::Instant::now();
    let (ok, out, err) = tokio::task::block_in_place(|| kb_cli(&config, &args));
    assert!(ok, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the slow URL was cut off by the time limit"
    );
    assert!(out.starts_with("2 added, 0 updated, 0 unchanged"), "{out}");
    assert!(out.contains("5 problem(s)"), "{out}");
    for (url, why) in [
        (
            "/big.txt",
            "larger than knowledge.max_document_bytes (200000 bytes): 300000 bytes announced",
        ),
        ("/stream.txt", "more sent than allowed"),
        ("/slow.txt", "within 1000 ms"),
        ("/logo.png", "unsupported content type \"image/png\""),
        ("/missing", "404"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("{site}{url}")) && l.contains(why)),
            "{url}: {why}\n{err}"
        );
    }
    let config = dir.path().join("config.toml");
    let (_, list, _) = tokio::task::block_in_place(|| kb_cli(&config, &["list", "--json"]));
    let docs: Vec<serde_json::Value> = list.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ids: Vec<&str> = docs.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![format!("{site}/faq.html"), format!("{site}/policy")]);
    assert_eq!(docs[0]["title"], "Workshop FAQ");
    let (_, out, _) =
        tokio::task::block_in_place(|| kb_cli(&config, &["search", "refund to my card", "-k", "1", "--json"]));
    let hit: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(hit["doc_id"], format!("{site}/policy"));
    assert_eq!(hit["source"], format!("{site}/policy"));
    assert!(hit["text"].as_str().unwrap().contains("within 5 working days"));
}

/// By default `kb add URL` fetches only public addresses: this machine, named or not, is
/// refused with a message saying why and how to allow it, and nothing is added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_on_this_machine_are_refused_by_default() {
    let site = serve_site().await;
    let port = site.rsplit(':').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "[knowledge]\nembedder = \"none\"\n");
    let urls = [
        format!("{site}/faq.html"),
        format!("http://localhost:{port}/policy"),
        format!("http://[::ffff:127.0.0.1]:{port}/policy"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
    ];
    let args: Vec<&str> = std::iter::once("add").chain(urls.iter().map(String::as_str)).collect();
    let (ok, out, err) = tokio::task::block_in_place(|| kb_cli(&config, &args));
    assert!(ok, "{err}");
    assert!(out.starts_with("0 added") && out.contains("4 problem(s)"), "{out}");
    for (url, why) in [
        (&urls[0], "refused: 127.0.0.1 is a loopback address (this machine)"),
        (&urls[1], "refused: localhost resolves to "),
        (&urls[2], "refused: ::ffff:127.0.0.1 is a loopback address"),
        (
            &urls[3],
            "refused: 169.254.169.254 is a link-local address (where cloud metadata services live)",
        ),
    ] {
        assert!(
            err.lines().any(|l| l.contains(url.as_str())
                && l.contains(why)
                && l.contains("knowledge.allow_private_urls = true")),
            "{url}: {why}\n{err}"
        );
    }
    let (_, list, _) = tokio::task::block_in_place(|| kb_cli(&config, &["list", "--json"]));
    assert!(list.trim().is_empty(), "nothing was added: {list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantized_first_pass_rescoring_matches_exact_search() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("kb.db")).unwrap();
    let exact_cfg = KnowledgeConfig {
        quantized: "off".into(),
        ..Default::default()
    };
    let exact = Knowledge::new(store.clone(), Arc::new(HashEmbedder(64)), exact_cfg.clone());
    exact.prepare(&|_, _| {}).await.unwrap();
    exact
        .add_paths(&[demo_kb()], &Default::default(), &|_, _, _| {})
        .await
        .unwrap();
    let chunks = count(&store, "SELECT COUNT(*) FROM kb_chunks");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM kb_vectors"), chunks);
    // With every chunk a candidate, the rescored order is exactly the exact order.
    let all = KnowledgeConfig {
        quantized: "on".into(),
        rescore_factor: 500,
        ..Default::default()
    };
    let quant = Knowledge::new(store.clone(), Arc::new(HashEmbedder(64)), all);
    for q in [
        "rental deposit",
        "do you fix electric bikes",
        "opening hours on sunday",
        "where is my order",
    ] {
        let a = exact.search(q, 5, Mode::Vector).await.unwrap();
        let b = quant.search(q, 5, Mode::Vector).await.unwrap();
        assert_eq!(
            a.iter().map(|h| h.chunk_id).collect::<Vec<_>>(),
            b.iter().map(|h| h.chunk_id).collect::<Vec<_>>(),
            "{q}"
        );
        assert!(
            a.iter().zip(&b).all(|(x, y)| (x.score - y.score).abs() < 1e-5),
            "{q}: rescored with exact vectors"
        );
    }
    // A narrow first pass still returns k rescored hits, best first.
    let narrow = Knowledge::new(
        store.clone(),
        Arc::new(HashEmbedder(64)),
        KnowledgeConfig {
            quantized: "on".into(),
            rescore_factor: 2,
            ..Default::default()
        },
    );
    let hits = narrow.search("rental deposit", 5, Mode::Vector).await.unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    // The in-memory index follows changes made through the store (any process).
    let before = narrow.search("coffee corner espresso", 1, Mode::Vector).await.unwrap();
    let extra = tempfile::tempdir().unwrap();
    std::fs::write(
        extra.path().join("coffee.md"),
        "# Coffee corner\n\nCoffee corner espresso while you wait.",
    )
    .unwrap();
    exact
        .add_paths(&[extra.path().to_path_buf()], &Default::default(), &|_, _, _| {})
        .await
        .unwrap();
    let after = narrow.search("coffee corner espresso", 1, Mode::Vector).await.unwrap();
    assert_ne!(before[0].doc_id, "coffee");
    assert_eq!(
        after[0].doc_id, "coffee",
        "the new chunk is found: the index was rebuilt"
    );
    // An index from before the plain vector copies gets them derived on prepare.
    store
        .call_blocking(|c| Ok(c.execute_batch("DELETE FROM kb_vectors")?))
        .unwrap();
    assert_eq!(exact.prepare(&|_, _| {}).await.unwrap(), 0);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM kb_vectors"), chunks + 1);
    // MMR keeps k results and only reorders what relevance found.
    let diverse = Knowledge::new(
        store.clone(),
        Arc::new(HashEmbedder(64)),
        KnowledgeConfig {
            mmr_lambda: 0.5,
            ..exact_cfg
        },
    );
    let d = diverse.search("rental deposit", 5, Mode::Hybrid).await.unwrap();
    assert_eq!(d.len(), 5);
    assert_eq!(
        d[0].chunk_id,
        exact.search("rental deposit", 1, Mode::Hybrid).await.unwrap()[0].chunk_id,
        "the best hit stays first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_status_over_http_need_the_control_token() {
    let server = TestServer::start_with(crate::support::with_local_embedder).await;
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(
        docs.path().join("hours.md"),
        "# Opening hours\n\nWe are open Monday to Saturday from 9 to 18. Closed on Sundays.",
    )
    .unwrap();
    std::fs::write(
        docs.path().join("rental.md"),
        "# Bike rental\n\nCity bikes rent for 15 euro a day with a 50 euro deposit.",
    )
    .unwrap();
    server
        .app()
        .knowledge
        .add_paths(&[docs.path().to_path_buf()], &Default::default(), &|_, _, _| {})
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let token = server.app().control_token.expose().to_string();
    let get = |path: &str, auth: bool| {
        let mut r = http.get(format!("{}/api/control{path}", server.base));
        if auth {
            r = r.bearer_auth(&token);
        }
        r.send()
    };
    let r = get("/kb/search?q=are%20you%20open%20on%20sunday&k=1", true)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["hits"][0]["doc_id"], "hours");
    assert_eq!(get("/kb/search?q=sunday", false).await.unwrap().status(), 401);
    let r = get("/kb/search?q=sunday&mode=fuzzy", true).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not one of bm25, vector, hybrid"));
    assert_eq!(get("/kb/search?q=&k=3", true).await.unwrap().status(), 400);
    let status: serde_json::Value = get("/kb/status", true).await.unwrap().json().await.unwrap();
    assert_eq!(
        (status["documents"].as_u64(), status["dim"].as_u64()),
        (Some(2), Some(384))
    );
    assert_eq!(status["warnings"].as_array().unwrap().len(), 0, "{status}");
    assert_eq!(get("/kb/status", false).await.unwrap().status(), 401);
    server.stop().await;

    let server = TestServer::start_with(|c| c.knowledge.embedder = frontdesk::config::EmbedderKind::None).await;
    let r = http
        .get(format!("{}/api/control/kb/status", server.base))
        .bearer_auth(server.app().control_token.expose())
        .send()
        .await
        .unwrap();
    let status: serde_json::Value = r.json().await.unwrap();
    let warnings = status["warnings"].to_string();
    assert!(
        warnings.contains("keyword-only") && warnings.contains("empty"),
        "{warnings}"
    );
    server.stop().await;
}
