//! Heading- and paragraph-aware chunking: sections follow Markdown headings, chunks
//! gather whole paragraphs up to a token budget, and the next chunk repeats the last
//! paragraph (when short) for context. Every chunk keeps its section path for citations.

/// One piece of a document, ready to index.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Position within the document.
    pub ord: usize,
    /// Heading path, e.g. `Returns > Bikes`.
    pub section: String,
    pub text: String,
    /// Approximate token count (words × 1.3).
    pub tokens: usize,
}

/// Approximate token count of `text` (WordPiece splits ~1.3 tokens per English word).
pub fn approx_tokens(text: &str) -> usize {
    (text.split_whitespace().count() * 13).div_ceil(10)
}

/// Splits Markdown-ish `text` into chunks of about `target` tokens (never over `max`
/// unless one paragraph alone is), with up to `overlap` tokens of the previous
/// paragraph repeated at the start of the next chunk of the same section.
pub fn chunk(text: &str, target: usize, max: usize, overlap: usize) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current = String::new();
    let flush_para = |current: &mut String, paragraphs: &mut Vec<String>| {
        let p = current.trim();
        if !p.is_empty() {
            paragraphs.push(p.to_string());
        }
        current.clear();
    };
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let level = trimmed.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) && trimmed[level..].starts_with(' ') {
            flush_para(&mut current, &mut paragraphs);
            if !paragraphs.is_empty() {
                sections.push((section_name(&path), std::mem::take(&mut paragraphs)));
            }
            let title = trimmed[level..].trim().to_string();
            path.retain(|(l, _)| *l < level);
            path.push((level, title));
            continue;
        }
        if trimmed.is_empty() {
            flush_para(&mut current, &mut paragraphs);
        } else {
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(line.trim_end());
        }
    }
    flush_para(&mut current, &mut paragraphs);
    if !paragraphs.is_empty() {
        sections.push((section_name(&path), paragraphs));
    }
    for (section, paras) in sections {
        let mut buf: Vec<String> = Vec::new();
        let mut buf_tokens = 0;
        for para in paras.into_iter().flat_map(|p| split_long(&p, max)) {
            let t = approx_tokens(&para);
            if !buf.is_empty() && buf_tokens + t > target.max(1) && buf_tokens + t > max.min(target * 2) / 2 {
                let carried = buf.last().filter(|p| approx_tokens(p) <= overlap).cloned();
                push_chunk(&mut out, &section, &buf);
                buf.clear();
                buf_tokens = 0;
                if let Some(c) = carried {
                    buf_tokens = approx_tokens(&c);
                    buf.push(c);
                }
            }
            buf_tokens += t;
            buf.push(para);
        }
        if !buf.is_empty() {
            push_chunk(&mut out, &section, &buf);
        }
    }
    out
}

fn section_name(path: &[(usize, String)]) -> String {
    path.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(" > ")
}

fn push_chunk(out: &mut Vec<Chunk>, section: &str, paras: &[String]) {
    let text = paras.join("\n\n");
    out.push(Chunk {
        ord: out.len(),
        section: section.to_string(),
        tokens: approx_tokens(&text),
        text,
    });
}

/// Splits a paragraph longer than `max` tokens at sentence ends (or words).
fn split_long(p: &str, max: usize) -> Vec<String> {
    if approx_tokens(p) <= max {
        return vec![p.to_string()];
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    for word in p.split_whitespace() {
        cur.push_str(word);
        cur.push(' ');
        let ends_sentence = word.ends_with(['.', '!', '?']);
        if approx_tokens(&cur) >= max || (ends_sentence && approx_tokens(&cur) >= max * 3 / 4) {
            out.push(cur.trim().to_string());
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_follow_headings() {
        let doc =
            "# Returns\n\nIntro text.\n\n## Bikes\n\nBikes within 14 days.\n\n## Parts\n\nParts within 30 days.\n";
        let c = chunk(doc, 300, 400, 50);
        let got: Vec<(&str, &str)> = c.iter().map(|c| (c.section.as_str(), c.text.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("Returns", "Intro text."),
                ("Returns > Bikes", "Bikes within 14 days."),
                ("Returns > Parts", "Parts within 30 days.")
            ]
        );
    }

    #[test]
    fn long_sections_split_at_paragraphs_with_overlap() {
        let para = |i: usize| format!("Paragraph {i} {}", "word ".repeat(60));
        let doc = (0..10).map(para).collect::<Vec<_>>().join("\n\n");
        let c = chunk(&doc, 200, 400, 100);
        assert!(c.len() >= 3, "{}", c.len());
        for ch in &c {
            assert!(ch.tokens <= 400, "{}", ch.tokens);
        }
        // The last paragraph of one chunk opens the next.
        let last_of_first = c[0].text.split("\n\n").last().unwrap();
        assert!(c[1].text.starts_with(last_of_first));
        // Every paragraph is somewhere.
        for i in 0..10 {
            assert!(c.iter().any(|ch| ch.text.contains(&format!("Paragraph {i} "))));
        }
    }

    #[test]
    fn a_huge_paragraph_is_split() {
        let doc = "Sentence one is here. ".repeat(400);
        let c = chunk(&doc, 200, 300, 50);
        assert!(c.len() > 3);
        assert!(
            c.iter().all(|ch| ch.tokens <= 320),
            "{:?}",
            c.iter().map(|c| c.tokens).collect::<Vec<_>>()
        );
    }

    #[test]
    fn empty_gives_nothing() {
        assert!(chunk("   \n\n  ", 200, 400, 50).is_empty());
    }
}
