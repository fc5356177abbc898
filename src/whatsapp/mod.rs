//! The WhatsApp Cloud API edge: webhook signatures, payload parsing into domain
//! events, and the dedupe keys of a delivery.

pub mod dedupe_keys;
pub mod parse;
pub mod signature;
