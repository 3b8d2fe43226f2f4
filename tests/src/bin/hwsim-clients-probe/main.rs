//! hwsim VM probe: the MCP clients of 2026 against a live `wifi-isolate run STATION` (its socket
//! `/run/wifi-isolate/STATION.sock`, the daemon's proxy in front of the real agent on a real
//! radio), each through the socket and through `wifi-isolate connect STATION` (the stdio bridge):
//!
//! - a raw 2026-07-28 exchange, byte for byte as the specification writes it: `server/discover`,
//!   a header that contradicts the body (400, -32020), an unsupported version (400, -32022 with
//!   `data.supported`), GET (405), and a `tools/call` of wifi_scan with `Mcp-Method`/`Mcp-Name`
//!   that must see the lab's access point. Over stdio there are no headers: the bridge derives
//!   them from the body, so there the call succeeding is the proof, and the version refusal
//!   arrives as the JSON-RPC error;
//! - MCP Inspector's CLI (npm `@modelcontextprotocol/inspector`) in its default era (legacy:
//!   `initialize`), on the Node staged by `prepare = "inspector"` (`INSPECTOR_NODE`,
//!   `INSPECTOR_CLI`); it speaks TCP only, so "via socket" reaches the socket through a byte
//!   relay on loopback (as tests/host/conformance.rs does for the conformance suite). One run
//!   per path (~20 s each under TCG): tools/list through the socket, wifi_scan on the radio
//!   through the bridge.
//!
//! Then the Tasks extension (`tasks: …`, [`tasks`]) and the tools' stable error codes on the
//! radio (`error codes: …`: busy, no_dhcp, not_found, not_connected, invalid_argument) — late,
//! as they stop the AP's DHCP server; the cancelled task needs exactly that.
//!
//! The Python SDK's checks are tests/vm/proxy/mcp_sdk_client.py. Usage (as root, in the VM, the
//! daemon running): `hwsim-clients-probe STATION`. Prints one tally line per check and
//! `N passed, N failed`; exit 1 if any failed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use wifi_isolate_tests::guest::logfile;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use wifi_isolate_tests::tally::Tally;

mod tasks;

const MODERN: &str = "2026-07-28";
const UNSUPPORTED: &str = "2099-01-01";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} missing from the lab env"))
}

/// A request's `_meta` in the 2026-07-28 era.
fn meta(version: &str) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": {"name": "hwsim-clients-probe", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

fn discover(id: u64, version: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "server/discover",
           "params": {"_meta": meta(version)}})
}

fn scan_call(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "wifi_scan", "arguments": {}, "_meta": meta(MODERN)}})
}

/// One HTTP exchange on the Unix socket: (status, the JSON-RPC message answering `id`, or the
/// whole body as a string when none parses).
async fn http(
    sock: &Path,
    method: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut req = http::Request::builder()
        .method(method)
        .uri("/mcp")
        .header("host", "localhost")
        .header("accept", "application/json, text/event-stream");
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let req = req
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| e.to_string())?;
    let s = tokio::net::UnixStream::connect(sock)
        .await
        .map_err(|e| format!("connect {}: {e}", sock.display()))?;
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = tx.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let text = tokio::time::timeout(Duration::from_secs(90), resp.into_body().collect())
        .await
        .map_err(|_| "the answer did not end within 90 s".to_string())?
        .map_err(|e| e.to_string())?
        .to_bytes();
    let text = String::from_utf8_lossy(&text).into_owned();
    let id = body.and_then(|b| b.get("id")).cloned();
    Ok((status, answer(&text, id.as_ref())))
}

/// The JSON-RPC answer in a plain JSON or SSE body (the message with `id`, else the last one).
fn answer(text: &str, id: Option<&Value>) -> Value {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return v;
    }
    let msgs: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect();
    msgs.iter()
        .find(|m| id.is_some() && m.get("id") == id && m.get("method").is_none())
        .or(msgs.last())
        .cloned()
        .unwrap_or(Value::String(text.to_string()))
}

fn supports_modern(v: &Value) -> bool {
    v.as_array()
        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(MODERN)))
}

fn sees_ap(result: &Value, ssid: &str) -> bool {
    result["structuredContent"]["networks"]
        .as_array()
        .is_some_and(|a| a.iter().any(|n| n["ssid"] == ssid))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 600 {
        format!("{}…", s.chars().take(600).collect::<String>())
    } else {
        s
    }
}

async fn raw_socket(t: &mut Tally, sock: &Path, ssid: &str) {
    let p = "clients: raw 2026-07-28 via socket";
    let d = discover(1, MODERN);
    let std_headers = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "server/discover"),
    ];
    let r = http(sock, "POST", &std_headers, Some(&d)).await;
    t.check(
        &format!("{p}: server/discover names {MODERN}"),
        matches!(&r, Ok((200, v)) if supports_modern(&v["result"]["supportedVersions"])),
        format!("{r:?}"),
    );
    // The method header contradicts the body.
    let r = http(
        sock,
        "POST",
        &[
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/list"),
        ],
        Some(&d),
    )
    .await;
    t.check(
        &format!("{p}: Mcp-Method contradicting the body → 400 with -32020"),
        matches!(&r, Ok((400, v)) if v["error"]["code"] == -32020),
        format!("{r:?}"),
    );
    // The version header contradicts the body's _meta.
    let r = http(
        sock,
        "POST",
        &[
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-method", "server/discover"),
        ],
        Some(&d),
    )
    .await;
    t.check(
        &format!("{p}: MCP-Protocol-Version contradicting _meta → 400 with -32020"),
        matches!(&r, Ok((400, v)) if v["error"]["code"] == -32020),
        format!("{r:?}"),
    );
    let bad = discover(2, UNSUPPORTED);
    let r = http(
        sock,
        "POST",
        &[
            ("mcp-protocol-version", UNSUPPORTED),
            ("mcp-method", "server/discover"),
        ],
        Some(&bad),
    )
    .await;
    t.check(
        &format!("{p}: an unsupported version → 400 with -32022 naming the supported ones"),
        matches!(&r, Ok((400, v)) if v["error"]["code"] == -32022
            && supports_modern(&v["error"]["data"]["supported"])),
        format!("{r:?}"),
    );
    let r = http(sock, "GET", &[("mcp-protocol-version", MODERN)], None).await;
    t.check(
        &format!("{p}: GET → 405"),
        matches!(&r, Ok((405, _))),
        format!("{r:?}"),
    );
    let call = scan_call(3);
    let r = http(
        sock,
        "POST",
        &[
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
            ("mcp-name", "wifi_wrong"),
        ],
        Some(&call),
    )
    .await;
    t.check(
        &format!("{p}: Mcp-Name contradicting the body → 400 with -32020"),
        matches!(&r, Ok((400, v)) if v["error"]["code"] == -32020),
        format!("{r:?}"),
    );
    let r = http(
        sock,
        "POST",
        &[
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
            ("mcp-name", "wifi_scan"),
        ],
        Some(&call),
    )
    .await;
    t.check(
        &format!("{p}: tools/call wifi_scan (Mcp-Method, Mcp-Name) sees the lab's AP, resultType complete"),
        matches!(&r, Ok((200, v)) if sees_ap(&v["result"], ssid)
            && v["result"]["resultType"] == "complete"),
        r.as_ref().map(|(s, v)| format!("{s} {}", short(v))).unwrap_or_else(|e| e.clone()),
    );
}

/// `wifi-isolate connect STATION` as a stdio peer: one JSON-RPC line out, the answer with the
/// same id back (notifications on the way are skipped).
struct Bridge {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Bridge {
    fn spawn(sta: &str) -> std::io::Result<Bridge> {
        let mut child = tokio::process::Command::new("wifi-isolate")
            .args(["connect", sta])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(logfile("clients-connect.err"))
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        Ok(Bridge {
            child,
            stdin,
            lines,
        })
    }

    async fn ask(&mut self, msg: &Value) -> Result<Value, String> {
        let line = format!("{msg}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = tokio::time::timeout(left, self.lines.next_line())
                .await
                .map_err(|_| "no answer within 90 s".to_string())?
                .map_err(|e| e.to_string())?
                .ok_or("the bridge closed its stdout")?;
            let v: Value = serde_json::from_str(&next).map_err(|e| format!("{e}: {next}"))?;
            if v.get("id") == msg.get("id") && v.get("method").is_none() {
                return Ok(v);
            }
        }
    }
}

async fn raw_connect(t: &mut Tally, sta: &str, ssid: &str) {
    let p = "clients: raw 2026-07-28 via connect";
    let mut io = match Bridge::spawn(sta) {
        Ok(io) => io,
        Err(e) => {
            t.check(&format!("{p}: server/discover names {MODERN}"), false, e);
            return;
        }
    };
    let r = io.ask(&discover(1, MODERN)).await;
    t.check(
        &format!("{p}: server/discover names {MODERN}"),
        matches!(&r, Ok(v) if supports_modern(&v["result"]["supportedVersions"])),
        format!("{r:?}"),
    );
    let r = io.ask(&discover(2, UNSUPPORTED)).await;
    t.check(
        &format!("{p}: an unsupported version → -32022 naming the supported ones"),
        matches!(&r, Ok(v) if v["error"]["code"] == -32022
            && supports_modern(&v["error"]["data"]["supported"])),
        format!("{r:?}"),
    );
    // Stdio has no headers: the bridge derives MCP-Protocol-Version, Mcp-Method and Mcp-Name
    // from the body. Had it not, the agent would refuse the call with -32020.
    let r = io.ask(&scan_call(3)).await;
    t.check(
        &format!("{p}: tools/call wifi_scan (headers derived by the bridge) sees the lab's AP, resultType complete"),
        matches!(&r, Ok(v) if sees_ap(&v["result"], ssid) && v["result"]["resultType"] == "complete"),
        r.as_ref().map(short).unwrap_or_else(|e| e.clone()),
    );
    drop(io.stdin);
    let _ = tokio::time::timeout(Duration::from_secs(5), io.child.wait()).await;
}

/// What the clients sent through the [`relay`] (the start of each connection's request bytes).
type Tap = Arc<Mutex<Vec<u8>>>;

/// Loopback TCP → the Unix socket, byte for byte (Inspector speaks TCP only); the first 64 KiB
/// of what clients send are kept in the tap, so a check can say which era they spoke.
async fn relay(sock: PathBuf, tap: Tap) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let (sock, tap) = (sock.clone(), tap.clone());
            tokio::spawn(async move {
                let Ok(unix) = tokio::net::UnixStream::connect(&sock).await else {
                    return;
                };
                let (mut tr, mut tw) = tcp.into_split();
                let (mut ur, mut uw) = unix.into_split();
                let up = async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match tr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        {
                            let mut t = tap.lock().unwrap();
                            let room = (64 * 1024usize).saturating_sub(t.len()).min(n);
                            t.extend_from_slice(&buf[..room]);
                        }
                        if uw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = uw.shutdown().await;
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut ur, &mut tw).await;
                    let _ = tw.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    port
}

/// Run Inspector's CLI: (exit status, stdout as JSON, stderr).
async fn inspector(args: &[String]) -> Result<(bool, Value, String), String> {
    let node = std::env::var("INSPECTOR_NODE")
        .map_err(|_| "INSPECTOR_NODE unset: lab.toml needs prepare = \"inspector\"".to_string())?;
    // The launcher, as `npx @modelcontextprotocol/inspector --cli …` runs it.
    let cli = std::env::var("INSPECTOR_CLI").map_err(|_| "INSPECTOR_CLI unset".to_string())?;
    let mut cmd = tokio::process::Command::new(&node);
    if let Ok(libs) = std::env::var("INSPECTOR_LIBS") {
        // The initramfs has no libstdc++: the preparation put the Node's libraries there.
        cmd.env("LD_LIBRARY_PATH", libs);
    }
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        cmd.arg(&cli)
            .arg("--cli")
            .args(args)
            .env("HOME", "/tmp/inspector-home")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| "Inspector did not finish within 180 s".to_string())?
    .map_err(|e| format!("{node}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_str(stdout.trim()).unwrap_or(Value::String(stdout));
    Ok((out.status.success(), v, stderr))
}

/// What one Inspector run on a path asks: each run costs ~20 s under TCG (Node loading the
/// CLI), so each path gets one: the tool list through the socket, a tool call on the radio
/// through `wifi-isolate connect`.
#[derive(Clone, Copy)]
enum Ask {
    ToolsList,
    Scan,
}

async fn inspector_path(t: &mut Tally, path: &str, target: &[String], ssid: &str, ask: Ask) {
    let p = format!("clients: inspector-cli (its default era) via {path}");
    let method: &[&str] = match ask {
        Ask::ToolsList => &["--method", "tools/list"],
        Ask::Scan => &["--method", "tools/call", "--tool-name", "wifi_scan"],
    };
    let mut args: Vec<String> = ["--format", "json"]
        .iter()
        .chain(method)
        .map(|s| s.to_string())
        .collect();
    args.extend(target.iter().cloned());
    let t0 = Instant::now();
    let r = inspector(&args).await;
    let ms = t0.elapsed().as_millis();
    match ask {
        Ask::ToolsList => {
            let names: Vec<String> = match &r {
                Ok((_, v, _)) => v["result"]["tools"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x["name"].as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            let ok = matches!(&r, Ok((true, _, _)))
                && ["wifi_scan", "wifi_connect", "wifi_status"]
                    .iter()
                    .all(|n| names.iter().any(|x| x == n));
            t.check(
                &format!("{p}: tools/list"),
                ok,
                if ok {
                    format!("{} tools in {ms} ms", names.len())
                } else {
                    format!("{ms} ms; {r:?}")
                },
            );
        }
        Ask::Scan => {
            t.check(
                &format!("{p}: wifi_scan sees the lab's AP on the radio"),
                matches!(&r, Ok((true, v, _)) if sees_ap(&v["result"], ssid)),
                format!("{ms} ms; {r:?}"),
            );
        }
    }
}

/// A 2026-07-28 tools/call on the socket: the result (or the JSON-RPC error) as JSON.
async fn tool(sock: &Path, name: &str, args: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": name, "arguments": args, "_meta": meta(MODERN)}});
    let headers = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", name),
    ];
    match http(sock, "POST", &headers, Some(&body)).await {
        Ok((_, v)) if v.get("result").is_some() => v["result"].clone(),
        Ok((s, v)) => json!({"http": s, "answer": v}),
        Err(e) => json!({"error": e}),
    }
}

fn code(result: &Value) -> &str {
    result["_meta"]["wifi-isolate/error-code"]
        .as_str()
        .unwrap_or("")
}

/// Tool errors carry their stable codes on the radio: `busy` while a connect holds the
/// operation lock (the AP's DHCP server stopped, so the connect waits out its timeout), then
/// `no_dhcp` for that connect, `not_found`, `not_connected`, `invalid_argument` (arguments
/// rmcp's deserializer refused, and bad input the tools refuse).
async fn error_codes(t: &mut Tally, sock: &Path) {
    let p = "error codes";
    let pid = std::fs::read_to_string("/run/hwsim/dnsmasq-wpa2.pid").unwrap_or_default();
    let stopped = pid.trim().parse::<i32>().is_ok_and(|p| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        )
        .is_ok()
    });
    t.check(
        &format!("{p}: the wpa2 AP's DHCP server stopped"),
        stopped,
        pid.trim(),
    );
    let args = json!({"ssid": env("AP_WPA2_SSID"), "password": env("AP_WPA2_PSK"),
                      "timeout_secs": 12});
    let connect = {
        let sock = sock.to_path_buf();
        tokio::spawn(async move {
            let t0 = Instant::now();
            (tool(&sock, "wifi_connect", args).await, t0.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t0 = Instant::now();
    let r = tool(sock, "wifi_disconnect", json!({})).await;
    let waited = t0.elapsed();
    t.check(
        &format!("{p}: wifi_disconnect during a connect → busy"),
        r["isError"] == true && code(&r) == "busy",
        format!("after {waited:?}: {}", short(&r)),
    );
    let r = tool(sock, "wifi_forget", json!({"ssid": env("AP_WPA2_SSID")})).await;
    t.check(
        &format!("{p}: wifi_forget during a connect → busy"),
        r["isError"] == true && code(&r) == "busy",
        short(&r),
    );
    let (r, took) = connect.await.unwrap_or((Value::Null, Duration::ZERO));
    t.check(
        &format!("{p}: the connect without DHCP → no_dhcp"),
        r["isError"] == true && code(&r) == "no_dhcp",
        format!("after {took:?}: {}", short(&r)),
    );
    let r = tool(sock, "wifi_disconnect", json!({})).await;
    t.check(
        &format!("{p}: wifi_disconnect once it ended works"),
        r["isError"] != true && r.get("structuredContent").is_some(),
        short(&r),
    );
    let r = tool(sock, "wifi_forget", json!({"ssid": "wi-never-configured"})).await;
    t.check(
        &format!("{p}: wifi_forget of an unknown network → not_found"),
        r["isError"] == true && code(&r) == "not_found",
        short(&r),
    );
    let r = tool(sock, "network_ping", json!({})).await;
    t.check(
        &format!("{p}: network_ping with no connection → not_connected"),
        r["isError"] == true && code(&r) == "not_connected",
        short(&r),
    );
    let r = tool(sock, "wifi_scan", json!({"timeout_secs": "abc"})).await;
    t.check(
        &format!("{p}: an argument of the wrong type (rmcp's deserializer) → invalid_argument"),
        r["isError"] == true && code(&r) == "invalid_argument",
        short(&r),
    );
    let r = tool(sock, "network_http_get", json!({"url": "ftp://ap.test/"})).await;
    t.check(
        &format!("{p}: network_http_get of a non-http URL → invalid_argument"),
        r["isError"] == true && code(&r) == "invalid_argument",
        short(&r),
    );
}

#[tokio::main]
async fn main() {
    let sta = std::env::args()
        .nth(1)
        .expect("usage: hwsim-clients-probe STATION");
    let sock = PathBuf::from(format!("/run/wifi-isolate/{sta}.sock"));
    let ssid = env("AP_WPA2_SSID");
    let mut t = Tally::default();
    // The daemon starts its box on the first connection; wait for the socket itself.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sock.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    raw_socket(&mut t, &sock, &ssid).await;
    raw_connect(&mut t, &sta, &ssid).await;
    let tap = Tap::default();
    let port = relay(sock.clone(), tap.clone()).await;
    inspector_path(
        &mut t,
        "socket",
        &[
            "--transport".into(),
            "http".into(),
            "--server-url".into(),
            format!("http://127.0.0.1:{port}/mcp"),
        ],
        &ssid,
        Ask::ToolsList,
    )
    .await;
    let sent = String::from_utf8_lossy(&tap.lock().unwrap()).into_owned();
    t.check(
        "clients: inspector-cli via socket: its default era is the handshake (initialize, no server/discover)",
        sent.contains("\"method\":\"initialize\"") && !sent.contains("server/discover"),
        format!("sent: {}", sent.chars().take(800).collect::<String>()),
    );
    inspector_path(
        &mut t,
        "connect",
        &["wifi-isolate".into(), "connect".into(), sta.clone()],
        &ssid,
        Ask::Scan,
    )
    .await;
    let psk = env("AP_WPA2_PSK");
    tasks::completed(&mut t, &sock, &ssid, &psk).await;
    tasks::without_extension(&mut t, &sock).await;
    tasks::legacy_declared(&mut t, &sock).await;
    error_codes(&mut t, &sock).await;
    tasks::cancelled(&mut t, &sock, &ssid, &psk).await;
    println!("{} passed, {} failed", t.passed, t.failed);
    std::process::exit(if t.failed == 0 { 0 } else { 1 });
}
