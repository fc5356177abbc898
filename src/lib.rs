//! frontdesk: a WhatsApp AI front desk for small teams, in one binary.
//!
//! Code map, top layer first (ARCHITECTURE.md's "Layers" is the rule, and a test holds
//! the code to it):
//! - [`cli`]: clap commands and the golden-set eval runner; with `main.rs` the only
//!   `anyhow` users.
//! - [`server`]: start-up: opens the `App`, recovers leftovers, serves HTTP (plain, TLS or
//!   ACME) and runs the workers until shutdown.
//! - [`http`]: axum routes — webhook, health, metrics, control API, the inbox, the demo
//!   simulator, and the fake Graph API and scripted model used by the demo and tests.
//! - [`workers`]: background loops that claim queue jobs (ingest, reply, send, media,
//!   outbound webhooks, maintenance).
//! - [`demo_data`]: the demo shop's documents, orders and order tool.
//! - [`app`]: `App`, the handles every part shares.
//! - [`engine`]: the reply engine (route, retrieve, answer or hand off, trace).
//! - [`media`]: inbound media to text (download, check, transcribe, describe).
//! - [`outbound`]: the one way to send: validate, 24-hour window, ledger row, send job.
//! - [`settings`]: live settings (config defaults + stored overrides).
//! - [`accounts`]: inbox sessions, CSRF tokens, logins.
//! - [`backup`]: snapshots, verification, restore, scheduled backups.
//! - [`tls`]: HTTPS listener, certificates, ACME renewal.
//! - [`preflight`]: the checks before a start that ask the machine and other modules.
//! - [`journal_guard`]: a damaged or missing journal is refused, never re-created empty.
//! - [`panics`]: the CLI's short, redacted panic report; dependency panics caught quietly.
//! - [`extract`]: the sandboxed child process that reads untrusted files.
//! - [`knowledge`]: parsing, chunking, embeddings, hybrid search, retrieval eval.
//! - [`llm`]: model providers, retries, circuit breakers, fallback chains, prices.
//! - [`store`]: SQLite (rusqlite) — migrations and one file per aggregate.
//! - [`queue`]: redb journal — dedupe, jobs, leases, retries, dead letters, group commit.
//! - [`telemetry`]: logging and optional trace export.
//! - [`whatsapp`]: Cloud API edge — signatures, payload parsing, dedupe keys, Graph client.
//! - [`config`]: layered typed config with redacted secrets; a leaf.
//! - [`hashing`], [`private_fs`]: password hashing threads; owner-only files and dirs.
//! - [`domain`]: pure types and rules (messages, delivery states, backoff); no I/O.
//! - [`error`], [`durable_fs`], [`metrics`]: the one error enum, durable renames,
//!   counters.
//! - [`storage_health`]: whether each store takes writes, and why not (disk full, I/O
//!   error).

pub mod accounts;
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
pub mod hashing;
pub mod http;
pub mod journal_guard;
pub mod knowledge;
pub mod llm;
pub mod media;
pub mod metrics;
pub mod outbound;
pub mod panics;
pub mod preflight;
pub mod private_fs;
pub mod queue;
pub mod server;
pub mod settings;
#[cfg(test)]
mod sim;
pub mod storage_health;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod whatsapp;
pub mod workers;

pub use error::{Error, Result};
