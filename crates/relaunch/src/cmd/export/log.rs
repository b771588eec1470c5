//! The exporter's log format, as the reference lifecycle prints it: on stdout, info and
//! debug lines bare, `Warning: ` and `ERROR: ` prefixes, no colour, no timestamps.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        match *event.metadata().level() {
            Level::WARN => w.write_str("Warning: ")?,
            Level::ERROR => w.write_str("ERROR: ")?,
            _ => {}
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// `-log-level` (debug, info, warn, error); the engine's own info lines stay quiet below
/// debug. RUST_LOG overrides.
pub fn init(level: &str) {
    let level = match level {
        "debug" | "trace" | "info" | "warn" | "error" => level,
        _ => "info",
    };
    let directives = match level {
        "debug" | "trace" => level.to_string(),
        _ => format!("warn,relaunch={level},relaunch_lifecycle={level}"),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(directives));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(false)
        .event_format(Plain)
        .try_init();
}
