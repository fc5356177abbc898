//! Customers' text documents are read in chunks by `CollapsedText`. Whatever the bytes
//! and however they are cut into chunks: no panic, at most `max_chars` characters kept
//! (plus the `…` of a cut), never two spaces in a row — and the same text as collapsing
//! the whole file at once (a reference written here the obvious way).
#![no_main]

use frontdesk::extract::text::CollapsedText;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// The whole text collapsed at once, cut the way `CollapsedText` documents it.
fn reference(text: &str, max_chars: usize) -> String {
    let collapsed = text
        .split(char::is_whitespace)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if collapsed.chars().count() <= max_chars {
        return collapsed;
    }
    let kept: String = collapsed.chars().take(max_chars).collect();
    format!("{}…", kept.strip_suffix(' ').unwrap_or(&kept))
}

/// Feeds `chunks`; `stop_when_full` reads like the sandbox child (no more once full).
fn collapse(chunks: &[&[u8]], max_chars: usize, stop_when_full: bool) -> std::result::Result<String, String> {
    let mut t = CollapsedText::new(max_chars);
    for chunk in chunks {
        if stop_when_full && t.is_full() {
            break;
        }
        t.push_bytes(chunk)?;
    }
    t.finish()
}

fn check(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let max_chars = usize::from(u.arbitrary::<u16>()? % 2048);
    let mut chunks: Vec<&[u8]> = Vec::new();
    while !u.is_empty() && chunks.len() < 64 {
        let len = usize::from(u.arbitrary::<u8>()?);
        chunks.push(u.bytes(len.min(u.len()))?);
    }
    let whole: Vec<u8> = chunks.concat();

    let all = collapse(&chunks, max_chars, false);
    let child_like = collapse(&chunks, max_chars, true);
    for out in [&all, &child_like].into_iter().flatten() {
        assert!(
            out.chars().count() <= max_chars + 1,
            "kept {} chars of at most {max_chars}",
            out.chars().count()
        );
        assert!(!out.contains("  "), "two spaces in a row: {out:?}");
        assert!(!out.starts_with(' ') && !out.ends_with(' '), "edge space: {out:?}");
    }
    match std::str::from_utf8(&whole) {
        Ok(text) => {
            let expected = reference(text, max_chars);
            assert_eq!(all.as_deref(), Ok(expected.as_str()), "chunks {chunks:?}");
            assert_eq!(child_like.as_deref(), Ok(expected.as_str()), "chunks {chunks:?}");
        }
        // An invalid byte (not just a file cut inside a character) is always an error
        // when every chunk is read.
        Err(e) if e.error_len().is_some() => assert!(all.is_err(), "invalid UTF-8 accepted: {all:?}"),
        Err(_) => {}
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(data);
});
