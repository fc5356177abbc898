//! The URL template of an HTTP tool: its `{placeholders}`, and the fields only the
//! engine fills (the asking customer), never the model.

/// Arguments the engine fills, never the model: whose data a tool sees.
pub const ENGINE_FIELDS: &[&str] = &["customer_wa_id"];

/// The `{name}` placeholders of a URL template.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else { break };
        out.push(rest[start + 1..start + end].to_string());
        rest = &rest[start + end + 1..];
    }
    out
}
