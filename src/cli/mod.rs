//! The command line (clap): parses arguments and calls into the library. Errors are
//! printed once, plainly, with a non-zero exit.

mod admin;
mod backup;
mod demo;
mod doctor;
mod doctor_graph;
mod eval_golden;
mod eval_routing;
pub mod golden;
mod init;
mod kb;
mod messages;
mod queue;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// frontdesk: a WhatsApp AI front desk for small teams, in one binary.
#[derive(Debug, Parser)]
#[command(name = "frontdesk", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where to find the configuration file.
#[derive(Debug, clap::Args, Clone)]
pub struct ConfigArg {
    /// Path to config.toml. Settings can also come from FRONTDESK__SECTION__KEY
    /// environment variables, which win over the file.
    #[arg(long, short = 'c', env = "FRONTDESK_CONFIG", default_value = "config.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Internal: the sandboxed file reader the server starts for each untrusted file
    /// (request and bytes on stdin, answer on stdout). Not for direct use.
    #[command(hide = true)]
    Extract {
        /// Address-space limit, in MiB.
        #[arg(long, default_value_t = 512)]
        memory_mb: u64,
        /// CPU-time limit, in seconds.
        #[arg(long, default_value_t = 15)]
        cpu_seconds: u64,
    },
    /// Run the service: the webhook, the workers and the inbox, until SIGTERM/SIGINT.
    /// A damaged, empty or missing queue journal is refused (restore a backup, or see
    /// --discard-journal).
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// If the queue journal (queue.redb) is damaged, empty or missing, move it aside
        /// (kept as queue.redb.damaged-<ms>) and start with an empty one. Dropped with it:
        /// webhooks acknowledged but not yet stored, waiting replies, sends and media jobs,
        /// dead letters and the dedupe keys. A healthy journal is kept as it is.
        #[arg(long)]
        discard_journal: bool,
    },
    /// Write a commented config.toml with a generated verify token and create the data dir.
    Init {
        /// Directory for the two store files (created if missing).
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Where to write the config file.
        #[arg(long, short = 'c', default_value = "config.toml")]
        config: PathBuf,
        /// Overwrite an existing config file (the old one is kept beside it as
        /// FILE.bak-<unix seconds>).
        #[arg(long)]
        force: bool,
    },
    /// Print the merged configuration (secrets redacted); exit non-zero on any problem.
    CheckConfig {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Inspect stored messages (works while the server runs).
    Messages {
        #[command(subcommand)]
        command: MessagesCommand,
    },
    /// Inspect the job queue: counts, dead letters, retrying a dead job.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// The knowledge base: add documents, list, remove, try a search.
    Kb {
        #[command(subcommand)]
        command: KbCommand,
    },
    /// Evaluations: `eval --dataset evals/golden.jsonl` runs the golden set through the
    /// engine (routing, tools, retrieval, hallucination, handoff, latency, cost; gates and
    /// a baseline); `eval retrieval` and `eval routing` measure one part on a public set.
    #[command(args_conflicts_with_subcommands = true)]
    Eval {
        #[command(subcommand)]
        command: Option<EvalCommand>,
        #[command(flatten)]
        golden: Box<eval_golden::GoldenArgs>,
    },
    /// Live settings (the rollback switches): list, set, unset. A change applies to the
    /// next message, with no restart.
    Settings {
        #[command(subcommand)]
        command: SettingsCommand,
    },
    /// Conversations: hand one back to the bot.
    Conversation {
        #[command(subcommand)]
        command: ConversationCommand,
    },
    /// Contacts: erase everything stored about one (privacy requests).
    Contact {
        #[command(subcommand)]
        command: ContactCommand,
    },
    /// Inbox users: add agents and admins, list them.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Check an installation end to end and print what to fix: config, stores, the Graph
    /// API token, the public webhook URL (handshake and signature round trip), the
    /// embedding model and every configured model.
    Doctor {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Write a consistent backup of both stores (works while the server runs: it takes
    /// it) into a new directory, with a manifest of versions, counts and checksums.
    Backup {
        #[command(flatten)]
        config: ConfigArg,
        /// The new directory to write (must not exist, or be empty).
        #[arg(long)]
        out: PathBuf,
        /// Print the manifest as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup into a data dir after checking its manifest, checksums and both
    /// stores' integrity. Refuses a data dir that already has stores unless --force, and
    /// always refuses while a server runs on it.
    Restore {
        /// The backup directory (written by `frontdesk backup`).
        #[arg(long)]
        from: PathBuf,
        /// The data dir to restore into (storage.data_dir).
        #[arg(long, required_unless_present = "verify")]
        data_dir: Option<PathBuf>,
        /// Only check the backup; change nothing.
        #[arg(long)]
        verify: bool,
        /// Replace existing stores (kept beside as NAME.before-restore-<ms>).
        #[arg(long)]
        force: bool,
    },
    /// Start a self-contained demo: generated secrets, a local data dir, no API keys.
    Demo {
        /// Directory for the demo's config and data.
        #[arg(long, default_value = "demo-data")]
        data_dir: PathBuf,
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// Print stored messages, oldest first.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// One JSON object per line: id, conversation, direction, from, type, text, status, created_at.
        #[arg(long)]
        json: bool,
        /// At most this many messages (default: all).
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Every setting with its value and where it comes from (config or live).
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// One JSON object per line: key, value, source, help.
        #[arg(long)]
        json: bool,
    },
    /// Set a live value, e.g. `settings set kill_switch on`; every key is listed below.
    #[command(after_help = crate::domain::settings::keys_help())]
    Set {
        key: String,
        value: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Drop a live value; the config file's applies again.
    Unset {
        key: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConversationCommand {
    /// Give a person-owned conversation back to the bot; the note is shown to the model.
    Handback {
        /// The conversation id (as `messages list` shows it).
        id: i64,
        /// What the bot should know, e.g. "refund approved, arrives Friday".
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Delete a contact's messages, conversations, delivery records, handoffs and traces,
    /// keeping only an audit entry (with a hash of the number, never the number).
    Erase {
        /// The WhatsApp id (digits, with country code).
        wa_id: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. Prints a generated one-time password (they choose their own at first
    /// login) unless --password-stdin gives one.
    Add {
        email: String,
        /// agent (answers conversations) or admin (also settings, knowledge base, users).
        #[arg(long, default_value = "agent")]
        role: String,
        /// Read the password from standard input (one line) instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List users.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Add files, directories (recursively) or http(s):// URLs: .md, .txt, .html (readable
    /// text), .csv (a document per row), .jsonl ({"id","title","text","url"}), .pdf (its
    /// text layer; scanned PDFs need OCR first). A URL must resolve to a public address
    /// (unless knowledge.allow_private_urls) and becomes the document id. Unchanged
    /// documents are skipped; changed ones replace their old chunks. Bad files are reported
    /// with file and line and skipped.
    Add {
        /// Files, directories (recursive) or http(s):// URLs (pages and PDFs).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// CSV columns to use, e.g. `title=Question,text=Answer,id=Id` (defaults: id, title, text).
        #[arg(long)]
        columns: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List documents with their chunk counts.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Remove a document (its chunks, index entries and vectors).
    Rm {
        /// The document id, as `kb list` shows it.
        doc_id: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Search: one hit per line, best first, with its score (what the score means depends
    /// on the mode and is printed first) and, when vectors are on, the cosine similarity
    /// of query and passage (`--json`: doc_id, chunk_id, title, source, section, score,
    /// similarity, text).
    Search {
        query: String,
        /// How many hits.
        #[arg(short, long, default_value_t = 5)]
        k: usize,
        /// bm25, vector or hybrid.
        #[arg(long, default_value = "hybrid")]
        mode: crate::knowledge::Mode,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Retrieval quality of BM25, vector and hybrid search: recall@1/5/10, MRR@10, nDCG@10.
    Retrieval {
        /// JSONL of {"id","title","text"}.
        #[arg(long)]
        corpus: PathBuf,
        /// JSONL of {"id","text","context","relevant":[doc ids]}.
        #[arg(long)]
        queries: PathBuf,
        /// A config for the embedder and chunking settings (default: built-in defaults).
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        /// Keep the index in this directory and reuse it on the next run (unchanged
        /// documents are not re-embedded): fast sweeps of search settings. Chunking
        /// changes need a fresh directory.
        #[arg(long)]
        index_dir: Option<PathBuf>,
        /// Modes to run (repeat); default all three.
        #[arg(long = "mode")]
        modes: Vec<crate::knowledge::Mode>,
        /// Fail (exit 1) when MODE.METRIC is below VALUE, e.g. hybrid.recall_at_5=0.9.
        #[arg(long = "gate", value_parser = parse_gate)]
        gates: Vec<(String, f64)>,
        /// One JSON object per mode.
        #[arg(long)]
        json: bool,
    },
    /// Routing classifier quality (nearest centroid or kNN over embeddings): k-fold
    /// cross-validation over labelled messages (`--data`), or fitted on `--train` and scored
    /// on `--test` (held out); accuracy, macro precision, out-of-scope and routing-bucket
    /// precision, at a similarity floor and over a sweep of floors.
    Routing {
        /// JSONL of {"text","label"} (other fields are ignored), for k-fold cross-validation.
        #[arg(long, required_unless_present = "train", conflicts_with_all = ["train", "test"])]
        data: Option<PathBuf>,
        /// Held-out mode: the classifier's examples (JSONL like --data)…
        #[arg(long, requires = "test")]
        train: Option<PathBuf>,
        /// …and the messages it is scored on (never used for fitting or the floor).
        #[arg(long, requires = "train")]
        test: Option<PathBuf>,
        /// The classifier (router.classifier): nearest centroid, or k nearest examples with
        /// distance-weighted votes.
        #[arg(long, value_enum, default_value = "centroid")]
        classifier: eval_routing::Method,
        /// A config for the embedder (default: built-in defaults, the local model).
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 5)]
        folds: usize,
        /// The label meaning "none of ours" (never a centroid; predicted below the floor).
        #[arg(long)]
        oos_label: Option<String>,
        /// Below this similarity no label applies (router.min_similarity).
        #[arg(long, default_value_t = 0.4)]
        min_similarity: f32,
        /// Held-out mode: choose the floor on the training file instead (the lowest floor
        /// with the most out-of-scope recall at out-of-scope precision ≥ 0.8 over its
        /// cross-validated / leave-one-out predictions); needs --oos-label.
        #[arg(long, requires = "train", conflicts_with = "min_similarity")]
        calibrate: bool,
        /// A file of labels (one per line) routed to one bucket, e.g. reasoning: its
        /// routing precision and recall are reported.
        #[arg(long)]
        bucket: Option<PathBuf>,
        /// Fail (exit 1) when METRIC is below VALUE at the floor, e.g. accuracy=0.8.
        #[arg(long = "gate", value_parser = parse_gate)]
        gates: Vec<(String, f64)>,
        #[arg(long)]
        json: bool,
    },
}

/// Checks `--gate NAME=LIMIT` against measured values (`value` looks a name up; an
/// unknown name is an error; `lower_is_better` names the metrics whose limit is a
/// maximum): prints each outcome; returns the names of the failed gates.
pub(crate) fn check_gates(
    gates: &[(String, f64)],
    value: impl Fn(&str) -> anyhow::Result<f64>,
    lower_is_better: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<String>> {
    let mut failed = Vec::new();
    for (name, limit) in gates {
        let v = value(name)?;
        let (ok, op, bad_op) = if lower_is_better(name) {
            (v <= *limit, "<=", ">")
        } else {
            (v >= *limit, ">=", "<")
        };
        if ok {
            eprintln!("gate ok: {name} = {v:.4} {op} {limit}");
        } else {
            eprintln!("GATE FAILED: {name} = {v:.4} {bad_op} {limit}");
            failed.push(name.clone());
        }
    }
    Ok(failed)
}

pub(crate) fn parse_gate(s: &str) -> Result<(String, f64), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("{s:?} is not NAME=VALUE"))?;
    Ok((k.to_string(), v.parse().map_err(|e| format!("{v:?}: {e}"))?))
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Jobs waiting per queue, jobs held by workers, dead letters, dedupe keys.
    Stats {
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List jobs that used up their attempts, with their last error.
    Dead {
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put a dead job back in its queue with fresh attempts.
    Retry {
        /// The job id, as `queue dead` shows it.
        id: u64,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// Parses the command line and runs it. Errors and panics are printed with every
/// configured secret blanked out.
pub fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let redactor = if matches.subcommand_name() == Some("extract") {
        // The sandbox child: no config, nothing secret, started once per file.
        crate::config::Redactor::default()
    } else {
        crate::panics::install_hook(crate::config::Redactor::default());
        let path = config_path(&matches);
        // A config with mistakes still has its environment's secrets (its own errors
        // never quote a secret value: see config::load).
        let redactor = crate::config::Config::load(path.as_deref())
            .or_else(|_| crate::config::Config::load(None))
            .map(|c| c.redactor())
            .unwrap_or_default();
        crate::panics::install_hook(redactor.clone());
        redactor
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", redactor.redact(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// The `--config` given to the (sub)command, if it takes one.
fn config_path(m: &clap::ArgMatches) -> Option<PathBuf> {
    if let Ok(Some(p)) = m.try_get_one::<PathBuf>("config") {
        return Some(p.clone());
    }
    m.subcommand().and_then(|(_, sub)| config_path(sub))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Extract { memory_mb, cpu_seconds } => Ok(crate::extract::run_child(memory_mb, cpu_seconds)),
        Command::Serve {
            config,
            discard_journal,
        } => serve::serve(&config.config, discard_journal),
        Command::Init {
            data_dir,
            config,
            force,
        } => init::init(&config, &data_dir, force),
        Command::CheckConfig { config } => init::check_config(&config.config),
        Command::Messages {
            command: MessagesCommand::List { config, json, limit },
        } => messages::list(&config.config, json, limit),
        Command::Queue { command } => queue::run(command),
        Command::Doctor { config } => doctor::doctor(&config.config),
        Command::Backup { config, out, json } => backup::backup(&config.config, &out, json),
        Command::Restore {
            from,
            data_dir,
            verify,
            force,
        } => backup::restore(
            &from,
            data_dir.as_deref().unwrap_or(std::path::Path::new(".")),
            verify,
            force,
        ),
        Command::Demo { data_dir, listen } => demo::demo(&data_dir, &listen),
        Command::Kb { command } => kb::run(command),
        Command::Settings {
            command: SettingsCommand::List { config, json },
        } => admin::settings_list(&config.config, json),
        Command::Settings {
            command: SettingsCommand::Set { key, value, config },
        } => admin::settings_set(&config.config, &key, &value),
        Command::Settings {
            command: SettingsCommand::Unset { key, config },
        } => admin::settings_unset(&config.config, &key),
        Command::Conversation {
            command: ConversationCommand::Handback { id, note, config },
        } => admin::handback(&config.config, id, &note),
        Command::Contact {
            command: ContactCommand::Erase { wa_id, config, json },
        } => admin::contact_erase(&config.config, &wa_id, json),
        Command::User {
            command:
                UserCommand::Add {
                    email,
                    role,
                    password_stdin,
                    config,
                },
        } => admin::user_add(&config.config, &email, &role, password_stdin),
        Command::User {
            command: UserCommand::List { config, json },
        } => admin::user_list(&config.config, json),
        Command::Eval {
            command:
                Some(EvalCommand::Retrieval {
                    corpus,
                    queries,
                    config,
                    index_dir,
                    modes,
                    gates,
                    json,
                }),
            ..
        } => {
            use crate::knowledge::Mode;
            let modes = if modes.is_empty() {
                vec![Mode::Bm25, Mode::Vector, Mode::Hybrid]
            } else {
                modes
            };
            kb::eval_retrieval(
                &corpus,
                &queries,
                config.as_ref(),
                index_dir.as_deref(),
                json,
                &modes,
                &gates,
            )
        }
        Command::Eval {
            command:
                Some(EvalCommand::Routing {
                    data,
                    train,
                    test,
                    classifier,
                    config,
                    folds,
                    oos_label,
                    min_similarity,
                    calibrate,
                    bucket,
                    gates,
                    json,
                }),
            ..
        } => eval_routing::run(eval_routing::Args {
            split: match (&data, &train, &test) {
                (_, Some(train), Some(test)) => eval_routing::Split::HeldOut { train, test },
                (Some(data), _, _) => eval_routing::Split::Folds { data, folds },
                _ => anyhow::bail!("eval routing needs --data FILE, or --train FILE and --test FILE"),
            },
            classifier,
            config: config.as_ref(),
            oos_label: oos_label.as_deref(),
            min_similarity,
            calibrate,
            bucket: bucket.as_deref(),
            gates: &gates,
            json,
        }),
        Command::Eval { command: None, golden } => eval_golden::run(*golden),
    }
}

/// Loads the config for a command, turning errors into plain messages.
pub(crate) fn load_config(path: &std::path::Path) -> anyhow::Result<crate::config::Config> {
    Ok(crate::config::Config::load(Some(path))?)
}

/// Starts logging to stderr in the configured format (no trace export: commands other
/// than `serve` and `demo` are short-lived).
pub(crate) fn init_logging(config: &crate::config::Config) {
    let _ = crate::telemetry::init(&config.log, config.redactor(), None);
}
