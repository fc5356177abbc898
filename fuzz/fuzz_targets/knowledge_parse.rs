//! Knowledge-base uploads and fetched URLs are parsed from bytes someone else wrote.
//! Every text format (Markdown, text, HTML, CSV, JSONL) reads any bytes without a panic,
//! and every document it yields has text. PDF is not fuzzed here: the PDF library can
//! overflow its stack on hostile input, which is why it only ever runs in the sandbox
//! child (see the `pdf_sandboxed` target).
#![no_main]

use frontdesk::knowledge::parse::{CsvColumns, Format, parse_bytes};
use libfuzzer_sys::fuzz_target;

const FORMATS: [Format; 5] = [Format::Markdown, Format::Text, Format::Html, Format::Csv, Format::Jsonl];
const COLUMN_SPECS: [&str; 4] = [
    "",
    "title=Question,text=Answer,id=Id",
    "text=body",
    "id=text,text=text,title=text",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(selector) % FORMATS.len()];
    let columns =
        CsvColumns::parse(COLUMN_SPECS[usize::from(selector >> 4) % COLUMN_SPECS.len()]).expect("fixed specs parse");
    let (docs, problems) = parse_bytes(format, "fuzz.input", "fuzz", bytes, &columns);
    for doc in &docs {
        assert!(
            !doc.text.trim().is_empty(),
            "{format:?} yielded a document without text: {doc:?}"
        );
    }
    for p in &problems {
        assert_eq!(p.source, "fuzz.input");
        assert!(!p.message.is_empty());
    }
});
