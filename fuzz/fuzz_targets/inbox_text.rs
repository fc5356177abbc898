//! Customer text is rendered in the inbox with maud (`span.text { (item.text) }` in the
//! conversation page, attribute values like the search box's `value=(search)`). Whatever
//! the text, the output is inert: no `<`, `>` or `"` from the input survives unescaped,
//! and decoding the entities gives the customer's text back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maud::html;

/// The rendered text with maud's entities decoded; `None` when an `&` starts anything
/// but one of them.
fn decode(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (c, len) = [
            ("&amp;", '&'),
            ("&lt;", '<'),
            ("&gt;", '>'),
            ("&quot;", '"'),
            ("&#39;", '\''),
        ]
        .into_iter()
        .find(|(e, _)| tail.starts_with(e))
        .map(|(e, c)| (c, e.len()))?;
        out.push(c);
        rest = &tail[len..];
    }
    out.push_str(rest);
    Some(out)
}

/// The rendered text with every entity removed: what a browser would parse as markup.
fn without_entities(s: &str) -> String {
    ["&lt;", "&gt;", "&quot;", "&amp;", "&#39;"]
        .iter()
        .fold(s.to_string(), |acc, e| acc.replace(e, ""))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;

    // As element content, the way the conversation page renders a message.
    let page = html! { li class="customer" { span.text { (text) } } }.into_string();
    let inner = page
        .strip_prefix(r#"<li class="customer"><span class="text">"#)
        .and_then(|r| r.strip_suffix("</span></li>"))
        .unwrap_or_else(|| panic!("the markup around the text changed: {page:?}"));
    let bare = without_entities(inner);
    assert!(
        !bare.contains(['<', '>', '"']),
        "markup from the input survived: {inner:?}"
    );
    assert_eq!(decode(inner).as_deref(), Some(text), "the text does not read back");

    // As an attribute value, the way the inbox's search box shows the query.
    let input = html! { input type="search" name="q" value=(text); }.into_string();
    let value = input
        .strip_prefix(r#"<input type="search" name="q" value=""#)
        .and_then(|r| r.strip_suffix(r#"">"#))
        .unwrap_or_else(|| panic!("the markup around the value changed: {input:?}"));
    let bare = without_entities(value);
    assert!(
        !bare.contains(['<', '>', '"']),
        "markup or a quote from the input survived: {value:?}"
    );
    assert_eq!(decode(value).as_deref(), Some(text), "the value does not read back");
});
