//! frontdesk: a WhatsApp AI front desk for small teams, in one binary.
//!
//! Code map (dependencies point down this list, never up):
//! - [`cli`]: clap commands; the only place using `anyhow`.
//! - [`app`]: `App` (shared handles) and `start`, which serves on a listener.
//! - [`http`]: axum routes — webhook, health, metrics, local control API.
//! - [`workers`]: background loops that claim queue jobs (ingest, reply, send, maintenance).
//! - [`outbound`]: the one way to send: validate, 24-hour window, ledger row, send job.
//! - [`knowledge`]: ingest, chunking, embeddings (candle), hybrid search, retrieval eval.
//! - [`store`]: SQLite (rusqlite) — migrations and one file per aggregate.
//! - [`queue`]: redb journal — dedupe, jobs, leases, retries, dead letters, group commit.
//! - [`whatsapp`]: Cloud API edge — signatures, payload parsing, dedupe keys.
//! - [`config`]: layered typed config with redacted secrets.
//! - [`domain`]: pure types and rules (messages, delivery states, backoff); no I/O.
//! - [`metrics`], [`error`]: counters and the one error enum.
//! - [`private_fs`]: owner-only directories (0700) and files (0600) for the data.
//! - [`storage_health`]: whether each store takes writes, why not (disk full, I/O error).

pub mod accounts;
pub mod acme;
pub mod app;
pub mod backup;
pub mod cli;
pub mod config;
pub mod demo_data;
pub mod domain;
pub mod durable_fs;
pub mod engine;
pub mod error;
pub mod extract;
pub mod golden;
pub mod hashing;
pub mod http;
pub mod knowledge;
pub mod llm;
pub mod media;
pub mod metrics;
pub mod outbound;
pub mod private_fs;
pub mod queue;
pub mod settings;
#[cfg(test)]
mod sim;
pub mod storage_health;
pub mod store;
pub mod telemetry;
pub mod whatsapp;
pub mod workers;

pub use error::{Error, Result};
