//! The servers' logs on stderr: `RUST_LOG`-style filtering (`info` when
//! unset), as human text or, with `LOG_FORMAT=json`, one JSON object a line
//! (`timestamp`, `level`, `target`, the message and fields, and the spans
//! the event happened in, with their fields: `file_id`, `chunk_id`,
//! `node_id`, `job_id` where a request or task carries them).

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: one line an event, colored on a terminal.
    #[default]
    Text,
    /// For log collectors: one JSON object a line.
    Json,
}

/// The log flags both servers take.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogSettings {
    /// Log lines as text or as JSON objects (one a line), on stderr; what
    /// is logged follows RUST_LOG (default `info`).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl LogSettings {
    /// Installs the global subscriber. Call once, first thing in `main`.
    pub fn init(&self) {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter);
        match self.log_format {
            LogFormat::Text => builder
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init(),
            LogFormat::Json => builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(true)
                .init(),
        }
    }
}
