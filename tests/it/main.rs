//! Integration tests: the real server on 127.0.0.1 port 0 with a temp data dir, spoken
//! to over HTTP; the real binary where a process boundary matters (kill -9, signals, CLI).
//! One test binary on purpose: linking is the slow part on small machines.

mod support;

mod acme;
mod answer_support;
mod architecture;
mod auth_bounds;
mod backup;
mod bridge_template;
mod browser;
mod canned_replies;
mod cli;
mod contact_panel;
mod crash;
mod dedupe;
mod demo_documents;
mod dependency_faults;
mod disk_full;
mod disk_io;
mod doctor;
mod engine;
mod engine_llm;
mod fake_llm;
mod fake_openai;
mod fake_receiver;
mod fake_transcriber;
mod fixtures;
mod golden;
mod handshake;
mod health;
mod hostile_files;
mod inbox;
mod inbox_auth;
mod inbox_search;
mod journal_damage;
mod kb_sources;
mod knowledge;
mod lifecycle;
mod media;
mod outbound;
mod queue_jobs;
mod routing;
mod secrets;
mod senders;
mod signature;
mod slow_models;
mod soft_launch;
mod teamwork;
mod telemetry;
mod tls;
mod webhooks_out;
