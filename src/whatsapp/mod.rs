//! The WhatsApp Cloud API edge: webhook signatures, payload parsing into domain
//! events, the dedupe keys of a delivery, and the Graph API client.

pub mod dedupe_keys;
pub mod error_codes;
pub mod graph;
pub mod parse;
pub mod parse_health;
pub mod signature;
