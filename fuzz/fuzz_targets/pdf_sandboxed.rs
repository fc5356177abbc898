//! A customer's PDF goes through the real sandbox: a `frontdesk extract` child per file,
//! with the server's limits. The child may crash, hang or run out of memory on hostile
//! input — that is a `Failure` for the file — but the parent (the server) never panics
//! and never returns more text than asked for.
//!
//! Needs `FRONTDESK_BIN`: a built frontdesk binary to run as the child (`./scripts/fuzz`
//! builds one). One process per input, so this target is slow by design.
#![no_main]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use frontdesk::config::ExtractConfig;
use frontdesk::extract::{Extractor, Failure};
use libfuzzer_sys::fuzz_target;

const MAX_CHARS: usize = 4000;

struct Sandbox {
    runtime: tokio::runtime::Runtime,
    extractor: Extractor,
}

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        let Some(binary) = std::env::var_os("FRONTDESK_BIN") else {
            eprintln!("pdf_sandboxed: set FRONTDESK_BIN to a built frontdesk binary (./scripts/fuzz does)");
            std::process::exit(2);
        };
        let config = ExtractConfig {
            binary: binary.into(),
            timeout_ms: 2000,
            memory_mb: 256,
            cpu_seconds: 2,
            max_parallel: 1,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Sandbox {
            runtime,
            extractor: Extractor::new(&config),
        }
    })
}

/// Outcomes so far: read, refused by the reader, crashed, timed out, broken.
static OUTCOMES: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

fn count(i: usize) {
    OUTCOMES[i].fetch_add(1, Ordering::Relaxed);
    let total: u64 = OUTCOMES.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    if total.is_power_of_two() || total % 500 == 0 {
        let [ok, refused, crashed, timed_out, broken] = OUTCOMES.each_ref().map(|c| c.load(Ordering::Relaxed));
        eprintln!(
            "pdf_sandboxed outcomes after {total}: text {ok}, refused {refused}, crashed {crashed}, timed out {timed_out}, broken {broken}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let bytes = if data.starts_with(b"%PDF") {
        data.to_vec()
    } else {
        [b"%PDF-1.4\n".as_slice(), data].concat()
    };
    let sandbox = sandbox();
    let result = sandbox
        .runtime
        .block_on(sandbox.extractor.document_text(bytes, "application/pdf", MAX_CHARS));
    match result {
        Ok(Ok(text)) => {
            assert!(
                text.chars().count() <= MAX_CHARS + 1,
                "{} chars of at most {MAX_CHARS}",
                text.chars().count()
            );
            count(0);
        }
        Ok(Err(why)) => {
            assert!(!why.is_empty());
            count(1);
        }
        Err(Failure::Crashed(_)) => count(2),
        Err(Failure::TimedOut { .. }) => count(3),
        Err(Failure::Broken(why)) => {
            eprintln!("pdf_sandboxed: broken sandbox: {why}");
            count(4);
        }
    }
});
