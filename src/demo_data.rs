//! The demo business's built-in data (Spoke & Sprocket, a bike shop): its knowledge-base
//! documents and sample orders. The demo serves them; the golden eval answers from them.

use crate::knowledge::Knowledge;

/// The demo business's documents, built into the binary.
#[derive(rust_embed::RustEmbed)]
#[folder = "assets/demo/kb/"]
struct DemoKb;

/// Loads the bike shop's documents into the knowledge base (a no-op when unchanged), so
/// the offline responder has something to answer from.
pub async fn load_knowledge(knowledge: &Knowledge) -> crate::Result<()> {
    use crate::knowledge::parse::{CsvColumns, Format, parse_bytes};
    let mut docs = Vec::new();
    for name in DemoKb::iter() {
        let Some(file) = DemoKb::get(&name) else { continue };
        let id = name.trim_end_matches(".md").to_string();
        let (d, problems) = parse_bytes(
            Format::Markdown,
            &format!("demo:{name}"),
            &id,
            &file.data,
            &CsvColumns::default(),
        );
        if !problems.is_empty() {
            return Err(crate::Error::Internal(format!("demo document {name}: {problems:?}")));
        }
        docs.extend(d);
    }
    eprintln!(
        "loading the demo knowledge base ({} documents; the first start embeds them, ~30 s)…",
        docs.len()
    );
    knowledge.prepare(&|_, _| {}).await?;
    let mut report = crate::knowledge::ingest::IngestReport::default();
    knowledge.add_documents(docs, &mut report).await?;
    Ok(())
}

/// The demo shop's sample orders (assets/demo/orders.json).
const ORDERS: &str = include_str!("../assets/demo/orders.json");

/// Every sample order (with the customer's number and name).
pub fn orders() -> Vec<serde_json::Value> {
    serde_json::from_str(ORDERS).unwrap_or_default()
}

/// The order `order_id` as the order-status tool shows it to customer `wa_id`: only
/// their own, without their personal details.
pub fn order_for(order_id: &str, wa_id: &str) -> Option<serde_json::Value> {
    let mut o = orders().into_iter().find(|o| {
        o["order_id"]
            .as_str()
            .is_some_and(|id| id.eq_ignore_ascii_case(order_id))
            && o["customer_wa_id"].as_str() == Some(wa_id)
    })?;
    if let Some(m) = o.as_object_mut() {
        m.remove("customer_wa_id");
        m.remove("customer_name");
    }
    Some(o)
}

/// The `order_status` tool over the sample orders, served at `url` (a template with
/// `{order_id}` and `{customer_wa_id}`).
pub fn order_tool(url: String) -> crate::config::ToolConfig {
    crate::config::ToolConfig {
        name: crate::engine::ORDER_TOOL.into(),
        description: "Look up one of the customer's orders by its number (like SS-10421): status, carrier, tracking, expected date, items.".into(),
        parameters: serde_json::json!({ "type": "object", "properties": { "order_id": { "type": "string", "description": "The order number, like SS-10421" } }, "required": ["order_id"] }),
        url,
        id_prefixes: vec!["SS".into()],
        ..Default::default()
    }
}
