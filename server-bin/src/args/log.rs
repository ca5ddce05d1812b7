//! Logging.

use clap::{Args as ClapArgs, ValueEnum};

/// Logging.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// Log format.
    #[arg(long = "log-format", env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    pub format: LogFormat,

    /// Log filter, in `tracing` env-filter syntax.
    #[arg(long = "log-level", env = "LOG_LEVEL", default_value = "info")]
    pub level: String,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}
