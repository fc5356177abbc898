//! Reading documents: Markdown, plain text, HTML (readable text only), CSV (a document
//! per row), JSONL (`{"id","title","text","url"}`), PDF (its text layer). Problems name the file and line;
//! a bad file or line is skipped, never half-read.

use std::path::Path;

/// A document as read from a source, before chunking.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SourceDoc {
    /// Stable id: the path below the ingest root without extension, or the id column/field.
    pub id: String,
    pub title: String,
    pub text: String,
    /// Where it came from (file path, or the document's own URL).
    pub source: String,
}

/// Something wrong with one file or line.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    pub source: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.source, l, self.message),
            None => write!(f, "{}: {}", self.source, self.message),
        }
    }
}

/// Which CSV columns hold what.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CsvColumns {
    pub id: Option<String>,
    pub title: Option<String>,
    pub text: Option<String>,
}

impl CsvColumns {
    /// Parses `title=Question,text=Answer,id=Id`.
    pub fn parse(spec: &str) -> Result<CsvColumns, String> {
        let mut c = CsvColumns::default();
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not KEY=COLUMN"))?;
            let v = Some(v.trim().to_string());
            match k.trim() {
                "id" => c.id = v,
                "title" => c.title = v,
                "text" => c.text = v,
                other => return Err(format!("unknown column role {other:?}: use id, title, text")),
            }
        }
        Ok(c)
    }
}

/// A document format this knowledge base reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Format {
    Markdown,
    Text,
    Html,
    Csv,
    Jsonl,
    Pdf,
}

impl Format {
    /// The format of a file, by extension.
    pub fn from_path(path: &Path) -> Option<Format> {
        Some(match ext(path).as_str() {
            "md" | "markdown" => Format::Markdown,
            "txt" | "text" => Format::Text,
            "html" | "htm" => Format::Html,
            "csv" => Format::Csv,
            "jsonl" | "ndjson" => Format::Jsonl,
            "pdf" => Format::Pdf,
            _ => return None,
        })
    }

    /// The format of a downloaded body: the Content-Type first, then the URL's extension;
    /// plain text when neither says.
    pub fn from_content_type(content_type: Option<&str>, url_path: &str) -> Option<Format> {
        let ct = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match ct.as_str() {
            "text/html" | "application/xhtml+xml" => Some(Format::Html),
            "text/markdown" | "text/x-markdown" => Some(Format::Markdown),
            "text/csv" => Some(Format::Csv),
            "application/pdf" => Some(Format::Pdf),
            "application/jsonl" | "application/x-ndjson" => Some(Format::Jsonl),
            _ => match Format::from_path(Path::new(url_path)) {
                Some(f) => Some(f),
                None if ct.is_empty() || ct.starts_with("text/") => Some(Format::Text),
                None => None,
            },
        }
    }
}

/// The file kinds understood, by extension.
pub fn supported(path: &Path) -> bool {
    Format::from_path(path).is_some()
}

fn ext(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Reads `bytes` (the file at `path`, whose id base is `id_base`) into documents.
/// Returns the documents read and the problems met; a problem with the whole file
/// yields no documents.
pub fn parse_file(path: &Path, id_base: &str, bytes: &[u8], columns: &CsvColumns) -> (Vec<SourceDoc>, Vec<Problem>) {
    let source = path.display().to_string();
    match Format::from_path(path) {
        Some(format) => parse_bytes(format, &source, id_base, bytes, columns),
        None => (
            Vec::new(),
            vec![Problem {
                source,
                line: None,
                message: format!(
                    "unsupported file type .{}; use .md, .txt, .html, .csv, .jsonl or .pdf",
                    ext(path)
                ),
            }],
        ),
    }
}

/// Reads `bytes` in `format`; `source` names the file or URL in documents and problems.
pub fn parse_bytes(
    format: Format,
    source: &str,
    id_base: &str,
    bytes: &[u8],
    columns: &CsvColumns,
) -> (Vec<SourceDoc>, Vec<Problem>) {
    let source = source.to_string();
    let whole = |message: String| {
        (
            Vec::new(),
            vec![Problem {
                source: source.clone(),
                line: None,
                message,
            }],
        )
    };
    if format == Format::Pdf {
        return match pdf_text(bytes) {
            Ok(text) if !text.trim().is_empty() => {
                let title = text
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .filter(|l| l.len() <= 120)
                    .unwrap_or(id_base)
                    .to_string();
                (
                    vec![SourceDoc {
                        id: id_base.into(),
                        title,
                        text,
                        source,
                    }],
                    Vec::new(),
                )
            }
            Ok(_) => whole("no text in this PDF (a scanned PDF needs OCR first)".into()),
            Err(e) => whole(e),
        };
    }
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return whole("binary file (contains NUL bytes); only text formats and PDF are read".into());
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.trim_start_matches('\u{feff}'),
        Err(e) => {
            return whole(format!(
                "not UTF-8 (invalid byte at offset {}); convert it to UTF-8",
                e.valid_up_to()
            ));
        }
    };
    if text.trim().is_empty() {
        return whole("empty file".into());
    }
    match format {
        Format::Markdown => (vec![markdown_doc(id_base, text, &source)], Vec::new()),
        Format::Text => {
            let title = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .filter(|l| l.len() <= 120)
                .unwrap_or(id_base)
                .to_string();
            (
                vec![SourceDoc {
                    id: id_base.into(),
                    title,
                    text: text.into(),
                    source,
                }],
                Vec::new(),
            )
        }
        Format::Html => {
            let (title, body) = html_to_text(text);
            if body.trim().is_empty() {
                return whole("no readable text in this HTML".into());
            }
            (
                vec![SourceDoc {
                    id: id_base.into(),
                    title: title.unwrap_or_else(|| id_base.into()),
                    text: body,
                    source,
                }],
                Vec::new(),
            )
        }
        Format::Csv => parse_csv(id_base, text, &source, columns),
        Format::Jsonl => parse_jsonl(text, &source),
        Format::Pdf => unreachable!("handled above"),
    }
}

/// The text of a PDF, pages separated by blank lines. The extractor panics on some
/// malformed files; that becomes an error for this file, not a crash.
pub(crate) fn pdf_text(bytes: &[u8]) -> Result<String, String> {
    if !bytes.starts_with(b"%PDF") {
        return Err("not a PDF (no %PDF header)".into());
    }
    let owned = bytes.to_vec();
    match std::panic::catch_unwind(move || pdf_extract::extract_text_from_mem(&owned)) {
        Ok(Ok(text)) => Ok(normalize_pdf_text(&text)),
        Ok(Err(e)) => Err(format!("cannot read this PDF: {e}")),
        Err(_) => Err("cannot read this PDF (malformed or unsupported encoding)".into()),
    }
}

/// Collapses the extractor's runs of blank lines and trailing spaces.
fn normalize_pdf_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line.trim_start_matches('\u{c}'));
    }
    out
}

fn markdown_doc(id: &str, text: &str, source: &str) -> SourceDoc {
    let title = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("# ").map(|t| t.trim().to_string()))
        .unwrap_or_else(|| id.to_string());
    SourceDoc {
        id: id.into(),
        title,
        text: text.into(),
        source: source.into(),
    }
}

fn parse_jsonl(text: &str, source: &str) -> (Vec<SourceDoc>, Vec<Problem>) {
    let mut docs = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let problem = |m: String| Problem {
            source: source.into(),
            line: Some(i + 1),
            message: m,
        };
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                problems.push(problem(format!("not valid JSON: {e}")));
                continue;
            }
        };
        let field = |k: &str| {
            v.get(k).and_then(|x| {
                x.as_str()
                    .map(str::to_string)
                    .or_else(|| x.as_i64().map(|n| n.to_string()))
            })
        };
        let (Some(id), Some(body)) = (field("id"), field("text")) else {
            problems.push(problem("needs string fields \"id\" and \"text\"".into()));
            continue;
        };
        if body.trim().is_empty() {
            problems.push(problem(format!("document {id:?} has empty text")));
            continue;
        }
        docs.push(SourceDoc {
            title: field("title").unwrap_or_else(|| id.clone()),
            source: field("url").unwrap_or_else(|| source.to_string()),
            id,
            text: body,
        });
    }
    (docs, problems)
}

fn parse_csv(id_base: &str, text: &str, source: &str, cols: &CsvColumns) -> (Vec<SourceDoc>, Vec<Problem>) {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_string()).collect(),
        Err(e) => {
            return (
                Vec::new(),
                vec![Problem {
                    source: source.into(),
                    line: Some(1),
                    message: format!("cannot read the header row: {e}"),
                }],
            );
        }
    };
    let find = |given: &Option<String>, defaults: &[&str]| -> Option<usize> {
        match given {
            Some(name) => headers.iter().position(|h| h.eq_ignore_ascii_case(name)),
            None => defaults
                .iter()
                .find_map(|d| headers.iter().position(|h| h.eq_ignore_ascii_case(d))),
        }
    };
    let text_col = find(&cols.text, &["text", "answer", "body", "content", "description"]);
    let Some(text_col) = text_col else {
        return (
            Vec::new(),
            vec![Problem {
                source: source.into(),
                line: Some(1),
                message: format!(
                    "no text column (headers: {}); name one with --columns text=COLUMN",
                    headers.join(", ")
                ),
            }],
        );
    };
    let title_col = find(&cols.title, &["title", "question", "name", "subject"]).filter(|c| *c != text_col);
    let id_col = find(&cols.id, &["id", "sku", "key"]);
    let mut docs = Vec::new();
    let mut problems = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                problems.push(Problem {
                    source: source.into(),
                    line: Some(line),
                    message: format!("broken CSV row: {e}"),
                });
                continue;
            }
        };
        let body = rec.get(text_col).unwrap_or("").trim().to_string();
        if body.is_empty() {
            problems.push(Problem {
                source: source.into(),
                line: Some(line),
                message: "empty text; row skipped".into(),
            });
            continue;
        }
        let id = id_col
            .and_then(|c| rec.get(c))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("{id_base}:{line}"));
        let title = title_col
            .and_then(|c| rec.get(c))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| id.clone());
        let text = if title_col.is_some() {
            format!("{title}\n\n{body}")
        } else {
            body
        };
        docs.push(SourceDoc {
            id,
            title,
            text,
            source: source.into(),
        });
    }
    (docs, problems)
}

/// Readable text from HTML: drops scripts, styles, navigation, headers and footers; keeps
/// headings (as Markdown) and paragraph breaks; decodes the common entities.
pub fn html_to_text(html: &str) -> (Option<String>, String) {
    let lower = html.to_ascii_lowercase();
    let title = between(&lower, html, "<title", "</title>")
        .map(|t| decode_entities(strip_tags(&t)).trim().to_string())
        .filter(|t| !t.is_empty());
    let mut s = html.to_string();
    for tag in [
        "script", "style", "nav", "header", "footer", "noscript", "svg", "form", "aside", "template", "head",
    ] {
        s = remove_blocks(&s, tag);
    }
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else { break };
        let tag = rest[start + 1..start + end].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        match name.as_str() {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" if !tag.starts_with('/') => {
                let level = name[1..].parse::<usize>().unwrap_or(1);
                out.push_str("\n\n");
                out.push_str(&"#".repeat(level));
                out.push(' ');
            }
            "p" | "div" | "section" | "article" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table" | "ul" | "ol" => {
                out.push_str("\n\n")
            }
            "br" | "tr" => out.push('\n'),
            "li" if !tag.starts_with('/') => out.push_str("\n- "),
            "td" | "th" => out.push(' '),
            _ => {}
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let text = decode_entities(out);
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        let l = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if l.is_empty() && lines.last().is_some_and(|p| p.is_empty()) {
            continue;
        }
        lines.push(l);
    }
    (title, lines.join("\n").trim().to_string())
}

fn between(lower: &str, orig: &str, open: &str, close: &str) -> Option<String> {
    let s = lower.find(open)?;
    let gt = lower[s..].find('>')? + s + 1;
    let e = lower[gt..].find(close)? + gt;
    Some(orig[gt..e].to_string())
}

fn remove_blocks(s: &str, tag: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(pos) = lower[i..].find(&open) {
        let start = i + pos;
        let after = lower.as_bytes().get(start + open.len()).copied();
        if !matches!(after, Some(b'>' | b' ' | b'\n' | b'\t' | b'/' | b'\r')) {
            out.push_str(&s[i..start + open.len()]);
            i = start + open.len();
            continue;
        }
        out.push_str(&s[i..start]);
        i = match lower[start..].find(&close) {
            Some(e) => start + e + close.len(),
            None => s.len(),
        };
    }
    out.push_str(&s[i..]);
    out
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn decode_entities(s: String) -> String {
    if !s.contains('&') {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let ent = &tail[1..e];
            let c = match ent {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                "euro" => Some('€'),
                _ if ent.starts_with("#x") => u32::from_str_radix(&ent[2..], 16).ok().and_then(char::from_u32),
                _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &tail[e + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, bytes: &[u8]) -> (Vec<SourceDoc>, Vec<Problem>) {
        parse_file(Path::new(name), "doc", bytes, &CsvColumns::default())
    }

    #[test]
    fn markdown_and_text() {
        let (d, p) = parse("a.md", b"# Opening hours\n\nWe open at 9.");
        assert!(p.is_empty());
        assert_eq!(d[0].title, "Opening hours");
        let (d, _) = parse("a.txt", b"Price list\n\nTubes: 8 EUR");
        assert_eq!(d[0].title, "Price list");
    }

    #[test]
    fn html_keeps_readable_text_only() {
        let html = br#"<html><head><title>Returns &amp; refunds</title><script>alert(1)</script></head>
            <body><nav><a href="/">Home</a> | Shop</nav><h1>Returns</h1><p>Bring it back within <b>30&nbsp;days</b>.</p>
            <ul><li>Unused</li><li>With receipt</li></ul><footer>(c) shop</footer><style>p{}</style></body></html>"#;
        let (d, p) = parse("r.html", html);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(d[0].title, "Returns & refunds");
        let t = &d[0].text;
        assert!(
            t.contains("# Returns") && t.contains("Bring it back within 30 days.") && t.contains("- With receipt"),
            "{t}"
        );
        assert!(
            !t.contains("alert") && !t.contains("Home") && !t.contains("(c) shop") && !t.contains("p{}"),
            "{t}"
        );
    }

    #[test]
    fn csv_rows_and_columns() {
        let csv =
            b"Id,Question,Answer\nq1,Do you rent bikes?,Yes from 10 EUR a day\nq2,\"Open, Sunday?\",12-16\nq3,Empty,\n";
        let (d, p) = parse("faq.csv", csv);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].id, "q1");
        assert_eq!(d[1].title, "Open, Sunday?");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, Some(4));
        let cols = CsvColumns::parse("text=Question,id=Answer").unwrap();
        let (d, _) = parse_file(Path::new("f.csv"), "f", csv, &cols);
        assert_eq!(d[0].text, "Do you rent bikes?");
        let (d, p) = parse("bad.csv", b"a,b\n1,2\n3\n");
        assert!(d.is_empty());
        assert!(p[0].message.contains("no text column"), "{p:?}");
        let (d, p) = parse("broken.csv", b"id,text\n1,ok\n2,ok,extra\n");
        assert_eq!(d.len(), 1);
        assert_eq!(
            (p[0].line, p[0].message.contains("broken CSV row")),
            (Some(3), true),
            "{p:?}"
        );
        assert!(CsvColumns::parse("body=x").is_err());
    }

    #[test]
    fn pdf_text_layer() {
        // Hand-built two-page PDF (tests/fixtures/kb/make_pdf.py).
        let (d, p) = parse("returns.pdf", include_bytes!("../../tests/fixtures/kb/returns.pdf"));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(d[0].title, "Returns policy");
        let t = &d[0].text;
        assert!(
            t.contains("within 30 days") && t.contains("Bring the receipt (paper or e-mail)."),
            "{t}"
        );
        assert!(
            t.contains("Refunds go back to the original card within 5 working days."),
            "{t}"
        );
        let (d, p) = parse("fake.pdf", b"hello, I am not a PDF");
        assert!(d.is_empty() && p[0].message.contains("not a PDF"), "{p:?}");
        let (d, p) = parse(
            "broken.pdf",
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n",
        );
        assert!(d.is_empty() && p[0].message.contains("cannot read this PDF"), "{p:?}");
    }

    #[test]
    fn formats_from_content_type() {
        use Format::*;
        assert_eq!(
            Format::from_content_type(Some("text/html; charset=utf-8"), "/a"),
            Some(Html)
        );
        assert_eq!(Format::from_content_type(Some("application/pdf"), "/x"), Some(Pdf));
        assert_eq!(
            Format::from_content_type(Some("application/octet-stream"), "/faq.md"),
            Some(Markdown)
        );
        assert_eq!(Format::from_content_type(Some("text/plain"), "/notes"), Some(Text));
        assert_eq!(Format::from_content_type(None, "/notes"), Some(Text));
        assert_eq!(Format::from_content_type(Some("image/png"), "/logo"), None);
    }

    #[test]
    fn jsonl_lines() {
        let j = b"{\"id\":\"d1\",\"title\":\"T\",\"text\":\"hello\",\"url\":\"https://x.example/1\"}\n{oops\n{\"id\":\"d3\"}\n\n{\"id\":4,\"text\":\"n\"}\n";
        let (d, p) = parse("c.jsonl", j);
        assert_eq!(d.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), vec!["d1", "4"]);
        assert_eq!(d[0].source, "https://x.example/1");
        assert_eq!(p.iter().map(|p| p.line.unwrap()).collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn bad_files_are_named() {
        assert!(parse("x.md", b"\x00\x01binary").1[0].message.contains("binary"));
        assert!(parse("x.md", b"caf\xe9").1[0].message.contains("not UTF-8"));
        assert!(parse("x.md", b"  \n ").1[0].message.contains("empty"));
        assert!(parse("x.pdfx", b"text").1[0].message.contains("unsupported"));
    }
}
