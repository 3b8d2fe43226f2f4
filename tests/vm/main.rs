//! Every VM suite, one cargo test per named check: `cargo test --test vm` boots each suite of
//! `tests/vm/*/lab.toml` once (one VM at a time: two TCG guests on two cores starve each other)
//! and reports what its guest checked as `SUITE::CHECK ... ok|FAILED`, so a failure is named —
//! `agent::wpa3 connected` — with the detail, the probe line and the log directory.
//!
//! Per suite there are also `SUITE::(boot)` (the lab booted and the guest reported PASS) and
//! `SUITE::(all checks ran)` (at least lab.toml's `min_checks` named checks came back: a probe
//! that stops early cannot pass by saying less). `cargo test --test vm -- agent` boots only the
//! suites whose name matches the filter's part before `::`; `--list` boots nothing.
//! Needs root and QEMU (tests/deps.sh); fails, never skips, without them.

use libtest_mimic::{Arguments, Failed, Trial};
use wifi_isolate_tests::tally::Check;
use wifi_isolate_tests::vm::{self, Suite};

fn wanted(args: &Arguments, suite: &Suite) -> bool {
    let matches = |f: &str| {
        let head = f.split("::").next().unwrap_or(f);
        if args.exact {
            head == suite.name
        } else {
            suite.name.contains(head) || head.contains(&suite.name)
        }
    };
    args.filter.as_deref().is_none_or(matches) && !args.skip.iter().any(|s| s == &suite.name)
}

fn trial(suite: &Suite, name: &str, result: Result<(), String>) -> Trial {
    let name = format!("{}::{name}", suite.name);
    Trial::test(name, move || result.map_err(Failed::from))
}

fn main() {
    let args = Arguments::from_args();
    let suites = match vm::suites() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("reading the VM suites: {e}");
            std::process::exit(1);
        }
    };
    let mut trials = Vec::new();
    for suite in &suites {
        if args.list || !wanted(&args, suite) {
            trials.push(trial(suite, "(boot)", Ok(())).with_ignored_flag(args.list));
            continue;
        }
        eprintln!(
            "vm: booting suite '{}' ({}; {} s at most)",
            suite.name, suite.lab.about, suite.lab.timeout_s
        );
        let out = suite.run();
        let log = std::fs::read_to_string(out.logs.join("test.log")).unwrap_or_default();
        println!(
            "---- {} test.log ----\n{log}---- end of {} ----",
            suite.name, suite.name
        );
        let failed = out.checks.iter().filter(|c| !c.ok).count();
        eprintln!(
            "vm: suite '{}': {} checks, {failed} failed, {} s; logs in {}",
            suite.name,
            out.checks.len(),
            out.seconds,
            out.logs.display()
        );
        let mut checks: Vec<Check> = out.checks;
        if let Some(engine) = &suite.lab.hostile_report {
            checks.extend(vm::hostile_report(
                &suite.share().join("hostile-report.json"),
                engine,
            ));
        }
        let n = checks.len();
        trials.push(trial(suite, "(boot)", out.failure.map_or(Ok(()), Err)));
        trials.push(trial(
            suite,
            "(all checks ran)",
            if n >= suite.lab.min_checks {
                Ok(())
            } else {
                Err(format!(
                    "only {n} named checks came back, lab.toml expects at least {}: a probe \
                     stopped early (see {})",
                    suite.lab.min_checks,
                    out.logs.display()
                ))
            },
        ));
        let where_ = format!(
            "log: {}/test.log; guest: tests/vm/{}/guest.sh",
            out.logs.display(),
            suite.name
        );
        for c in checks {
            let result = if c.ok {
                Ok(())
            } else {
                Err(format!("{}\n{where_}", c.detail))
            };
            trials.push(trial(suite, &c.name, result));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
