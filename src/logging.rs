//! Logging: tracing to journald when it is there, else to stderr; and the `MESSAGE_ID`s admins grep.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// `MESSAGE_ID`s (journald catalog style, 128-bit hex) of the events an admin looks for.
pub mod msgid {
    /// An MCP tool call: one record per call, the host proxy's (peer, tool, the agent's outcome,
    /// duration; never arguments).
    pub const TOOL_CALL: &str = "8c5e4ab0f2a94f1b9a0d2f5d6c31b7e1";
    /// NetworkManager told to leave the device alone.
    pub const UNMANAGE: &str = "2f0b8e6d5a7c4e3f9b1d0c8a7e6f5d41";
    /// The phy moved into the box.
    pub const MOVE_IN: &str = "5b7d9c1e3a2f4b6d8e0a1c3e5f7b9d02";
    /// The phy moved back to the host.
    pub const MOVE_OUT: &str = "a3c5e7f9b1d34f6a8c0e2b4d6f8a0c13";
    /// NetworkManager's previous management restored.
    pub const RESTORE: &str = "d1f3b5a7c9e24b6d8f0a2c4e6b8d0f24";
}

/// Libraries whose debug logs print whole requests (tool arguments with passwords, bearer tokens):
/// they never log below `info`, whatever filter the user asks for.
const CAPPED: &[&str] = &["rmcp", "hyper", "hyper_util", "h2"];

/// The user's filter with the capped targets (`rmcp`, `hyper`, `hyper_util`, `h2`) forced to
/// `info`: the user's own directives for them are dropped, and the more specific `target=info`
/// beats any global level.
pub fn capped(filter: &str) -> String {
    let mut f = filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter(|d| {
            !CAPPED
                .iter()
                .any(|t| d.starts_with(t) || d.starts_with('['))
        })
        .collect::<Vec<_>>()
        .join(",");
    for t in CAPPED {
        if !f.is_empty() {
            f.push(',');
        }
        f.push_str(t);
        f.push_str("=info");
    }
    f
}

/// Install the global subscriber. Journald when `JOURNAL_STREAM` says our stderr is the journal
/// (or `journal` is forced), else stderr without colours. `WIFI_ISOLATE_LOG` / `RUST_LOG` filter.
pub fn init(force_stderr: bool) {
    init_with_default(force_stderr, "info")
}

/// [`init`] with another default level (interactive commands log only warnings by default).
pub fn init_with_default(force_stderr: bool, default: &str) {
    let filter = || {
        let wanted = std::env::var("WIFI_ISOLATE_LOG")
            .or_else(|_| std::env::var("RUST_LOG"))
            .unwrap_or_else(|_| default.into());
        EnvFilter::try_new(capped(&wanted)).unwrap_or_else(|_| EnvFilter::new(capped(default)))
    };
    let journald = if !force_stderr && std::env::var_os("JOURNAL_STREAM").is_some() {
        // No field prefix: MESSAGE_ID, IFACE, TOOL, PEER… become journal fields by their own
        // names (the crate's default prefix `F_` would hide MESSAGE_ID from `journalctl MESSAGE_ID=`).
        tracing_journald::layer()
            .ok()
            .map(|l| l.with_field_prefix(None))
    } else {
        None
    };
    let registry = tracing_subscriber::registry();
    match journald {
        Some(j) => {
            let _ = registry.with(j.with_filter(filter())).try_init();
        }
        None => {
            let fmt = tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_target(false)
                .with_filter(filter());
            let _ = registry.with(fmt).try_init();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatty_libraries_are_capped_even_when_asked_for_trace() {
        let f = capped("trace,rmcp=trace,hyper::proto=trace");
        assert_eq!(f, "trace,rmcp=info,hyper=info,hyper_util=info,h2=info");
        assert!(EnvFilter::try_new(&f).is_ok());
        assert_eq!(capped(""), "rmcp=info,hyper=info,hyper_util=info,h2=info");
    }
}
