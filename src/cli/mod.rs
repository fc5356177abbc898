//! The command line (clap): parses arguments and calls into the library. Errors are
//! printed once, plainly, with a non-zero exit.

mod demo;
mod init;
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
    /// Run the service: the webhook, the workers and (later) the inbox, until SIGTERM/SIGINT.
    Serve {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Write a commented config.toml with a generated verify token and create the data dir.
    Init {
        /// Directory for the two store files (created if missing).
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Where to write the config file.
        #[arg(long, short = 'c', default_value = "config.toml")]
        config: PathBuf,
        /// Overwrite an existing config file.
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

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config } => serve::serve(&config.config),
        Command::Init { data_dir, config, force } => init::init(&config, &data_dir, force),
        Command::CheckConfig { config } => init::check_config(&config.config),
        Command::Messages { command: MessagesCommand::List { config, json, limit } } => {
            messages::list(&config.config, json, limit)
        }
        Command::Queue { command } => queue::run(command),
        Command::Demo { data_dir, listen } => demo::demo(&data_dir, &listen),
    }
}

/// Loads the config for a command, turning errors into plain messages.
pub(crate) fn load_config(path: &std::path::Path) -> anyhow::Result<crate::config::Config> {
    Ok(crate::config::Config::load(Some(path))?)
}

/// Starts logging to stderr in the configured format.
pub(crate) fn init_logging(config: &crate::config::LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FRONTDESK_LOG").unwrap_or_else(|_| EnvFilter::new(&config.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if config.format == "json" { builder.json().try_init() } else { builder.try_init() };
}
