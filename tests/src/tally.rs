//! The one tally. Every probe, guest script and helper of the VM suites reports each named check
//! as one line on stdout:
//!
//! ```text
//! ok   NAME[ — short detail]
//! FAIL NAME — detail (at FILE:LINE)
//! ```
//!
//! plus `note …` and `time …` lines for observations. A NAME may hold ": " (`13a stop during
//! 'box' (podman): unit inactive`) but never " — ", which starts the detail. The shell
//! helpers (`tests/vm/lab/guest/fullsys-lib.sh`) and the Python SDK client print the same lines;
//! [`parse`] reads them back on the host, where `tests/vm/main.rs` turns each into one cargo test,
//! so a failure is reported by its name.

use std::fmt::Display;

/// Counts checks and prints one line each.
#[derive(Default)]
pub struct Tally {
    /// Checks that held.
    pub passed: u32,
    /// Checks that did not.
    pub failed: u32,
    /// Every [`Tally::time`], as `what=Nms`, for a probe's closing summary line.
    pub numbers: Vec<String>,
}

impl Tally {
    /// Record one check; returns `ok`. A passing check prints a short one-line detail only; a
    /// failing one the whole detail and where in the probe it was checked.
    #[track_caller]
    pub fn check(&mut self, name: &str, ok: bool, detail: impl Display) -> bool {
        let mut d = detail.to_string();
        if ok {
            self.passed += 1;
            if d.contains('\n') {
                d.clear();
            }
            if d.chars().count() > 240 {
                d = format!("{}…", d.chars().take(240).collect::<String>());
            }
            if d.is_empty() {
                println!("ok   {name}");
            } else {
                println!("ok   {name} — {d}");
            }
        } else {
            self.failed += 1;
            let at = std::panic::Location::caller();
            println!("FAIL {name} — {d} (at {}:{})", at.file(), at.line());
        }
        ok
    }

    /// An observation that is not a check.
    pub fn note(&self, text: impl Display) {
        println!("note {text}");
    }

    /// A measured time, for the logs (never asserted: these machines are noisy).
    pub fn time(&mut self, what: &str, ms: u128) {
        println!("time {what}: {ms} ms");
        self.numbers.push(format!("{what}={ms}ms"));
    }

    /// Print the summary line; the exit code a probe returns (1 if any check failed).
    pub fn finish(&self) -> std::process::ExitCode {
        println!("{} passed, {} failed", self.passed, self.failed);
        if self.failed == 0 {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        }
    }
}

/// One check read back from a suite's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Its name (made unique within the log: a repeated name gets " #2", " #3", ...).
    pub name: String,
    /// Whether it held.
    pub ok: bool,
    /// The rest of the line.
    pub detail: String,
}

/// Every `ok`/`FAIL` line of `log`, in order.
pub fn parse(log: &str) -> Vec<Check> {
    let mut seen = std::collections::HashMap::<String, u32>::new();
    let mut out = Vec::new();
    for line in log.lines() {
        let (ok, rest) = if let Some(r) = line.strip_prefix("ok   ") {
            (true, r)
        } else if let Some(r) = line.strip_prefix("FAIL ") {
            (false, r)
        } else {
            continue;
        };
        let (name, detail) = rest.split_once(" — ").unwrap_or((rest, ""));
        let name = name.trim();
        let n = seen.entry(name.to_string()).or_insert(0);
        *n += 1;
        let name = if *n == 1 {
            name.to_string()
        } else {
            format!("{name} #{n}")
        };
        out.push(Check {
            name,
            ok,
            detail: detail.to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_details_and_repeats() {
        let log = "boot\nok   wpa3 connected — 1.2 s\nFAIL dhcp lease — none (at x.rs:3)\n\
                   note x\nok   wpa3 connected\nok   13a stop: unit inactive\nFAILED to parse\n";
        let c = parse(log);
        let names: Vec<_> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "wpa3 connected",
                "dhcp lease",
                "wpa3 connected #2",
                "13a stop: unit inactive"
            ]
        );
        assert_eq!(
            c.iter().map(|c| c.ok).collect::<Vec<_>>(),
            [true, false, true, true]
        );
        assert_eq!(c[1].detail, "none (at x.rs:3)");
    }
}
