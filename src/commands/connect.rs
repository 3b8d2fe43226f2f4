//! `wifi-isolate connect IFACE`: a stdio ⇄ socket bridge for stdio-only MCP clients.
//!
//! Reads newline-delimited JSON-RPC from stdin, POSTs each message to the instance's MCP socket
//! (streamable HTTP), and writes every JSON-RPC message of the answer (plain JSON or SSE events)
//! to stdout, one per line. If the service restarts between calls (the session is gone: 404, or
//! the socket refuses for a moment), the bridge replays the client's `initialize` to get a new
//! session and sends the message again; the client never notices.
//!
//! A 2026-07-28 (sessionless) message carries its version in `_meta`; stdio has no headers, so
//! the bridge derives the HTTP headers that era requires from the body ([`modern_headers`]):
//! `MCP-Protocol-Version`, `Mcp-Method` and, for the named methods, `Mcp-Name`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;
use tracing::{info, warn};

/// Arguments of `connect`.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// The isolated adapter (its instance name).
    pub iface: String,
    /// The MCP socket (default: /run/wifi-isolate/IFACE.sock).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// How long to keep retrying while the service (re)starts, seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub retry: u64,
}

#[derive(Default)]
struct Session {
    id: Option<String>,
    protocol: Option<String>,
    initialize: Option<Value>,
    initialized: Option<Value>,
}

struct Bridge {
    socket: PathBuf,
    retry: Duration,
    session: Mutex<Session>,
    out: Mutex<tokio::io::Stdout>,
}

enum Sent {
    /// Answered (status, content type, body streamed to stdout already).
    Done,
    /// The session is unknown to the server (it restarted).
    SessionLost,
}

impl Bridge {
    async fn write_out(&self, msg: &[u8]) {
        let mut out = self.out.lock().await;
        let _ = out.write_all(msg).await;
        let _ = out.write_all(b"\n").await;
        let _ = out.flush().await;
    }

    /// POST one message; stream the answer's messages to stdout (unless `quiet`).
    async fn post(&self, body: &Value, quiet: bool) -> anyhow::Result<Sent> {
        let deadline = Instant::now() + self.retry;
        loop {
            match self.post_once(body, quiet).await {
                Ok(Some(s)) => return Ok(s),
                Err(e) if e.is::<Held>() => return Err(e),
                Ok(None) | Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Ok(None) => anyhow::bail!("the service stayed unavailable for {:?}", self.retry),
                Err(e) => return Err(e),
            }
        }
    }

    /// `Ok(None)`: retry (connection refused, 502, a 503 that is not a hold).
    async fn post_once(&self, body: &Value, quiet: bool) -> anyhow::Result<Option<Sent>> {
        let stream = match tokio::net::UnixStream::connect(&self.socket).await {
            Ok(s) => s,
            Err(e) => {
                warn!(socket = %self.socket.display(), cause = %e, "cannot connect; retrying");
                return Ok(None);
            }
        };
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::post("/mcp")
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream");
        let modern = modern_headers(body);
        {
            let s = self.session.lock().await;
            if let Some(id) = &s.id {
                req = req.header("mcp-session-id", id);
            }
            if let Some(p) = &s.protocol
                && modern.is_empty()
            {
                req = req.header("mcp-protocol-version", p);
            }
        }
        for (name, value) in modern {
            req = req.header(name, value);
        }
        let req = req.body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                warn!(cause = %e, "request failed; retrying");
                return Ok(None);
            }
        };
        let status = resp.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // A held adapter (a user's `systemctl stop`) does not start by waiting: say so.
            let body = tokio::time::timeout(Duration::from_secs(2), resp.into_body().collect())
                .await
                .ok()
                .and_then(|r| r.ok())
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if let Some(held) = held_message(&body) {
                return Err(Held(held).into());
            }
            return Ok(None);
        }
        if status == StatusCode::BAD_GATEWAY {
            return Ok(None);
        }
        if status == StatusCode::NOT_FOUND && self.session.lock().await.id.is_some() {
            return Ok(Some(Sent::SessionLost));
        }
        if let Some(id) = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            self.session.lock().await.id = Some(id.to_string());
        }
        let is_sse = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let mut body = resp.into_body();
        if is_sse {
            let mut buf = Vec::new();
            let mut data = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame?;
                let Some(chunk) = frame.data_ref() else {
                    continue;
                };
                buf.extend_from_slice(chunk);
                while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    let line = line.strip_suffix(b"\n").unwrap_or(&line);
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if line.is_empty() {
                        if !data.is_empty() {
                            self.deliver(&data, quiet).await;
                            data.clear();
                        }
                    } else if let Some(d) = line.strip_prefix(b"data:") {
                        if !data.is_empty() {
                            data.push(b'\n');
                        }
                        data.extend_from_slice(d.strip_prefix(b" ").unwrap_or(d));
                    }
                }
            }
            if !data.is_empty() {
                self.deliver(&data, quiet).await;
            }
        } else {
            let bytes = body.collect().await?.to_bytes();
            let is_jsonrpc =
                serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| v.get("jsonrpc").is_some());
            if status.is_success() || is_jsonrpc {
                if !bytes.is_empty() {
                    self.deliver(&bytes, quiet).await;
                }
            } else {
                anyhow::bail!(
                    "the server answered {status}: {}",
                    String::from_utf8_lossy(&bytes).trim()
                );
            }
        }
        Ok(Some(Sent::Done))
    }

    /// One JSON-RPC message from the server: note the negotiated version, pass it on.
    async fn deliver(&self, data: &[u8], quiet: bool) {
        if let Ok(v) = serde_json::from_slice::<Value>(data)
            && let Some(p) = v["result"]["protocolVersion"].as_str()
        {
            self.session.lock().await.protocol = Some(p.to_string());
        }
        if !quiet && !data.iter().all(u8::is_ascii_whitespace) {
            self.write_out(data).await;
        }
    }

    /// Send a client message, re-initialising once if the service restarted under us.
    async fn forward(&self, msg: Value) -> anyhow::Result<()> {
        if let Sent::SessionLost = self.post(&msg, false).await? {
            info!("the service restarted: re-initialising the session");
            let (init, initialized) = {
                // A fresh handshake, exactly like the client's first one (no session, no
                // protocol header: that is what the client's own initialize carried).
                let mut s = self.session.lock().await;
                s.id = None;
                s.protocol = None;
                (s.initialize.clone(), s.initialized.clone())
            };
            if let Some(mut init) = init {
                init["id"] = Value::String("wifi-isolate-connect-reinit".into());
                self.post(&init, true).await?;
                if let Some(n) = initialized {
                    self.post(&n, true).await?;
                }
            }
            self.post(&msg, false).await?;
        }
        Ok(())
    }
}

/// Bridge stdin/stdout to the instance's socket until stdin closes.
pub async fn exec(args: ConnectArgs) -> ExitCode {
    let socket = args
        .socket
        .unwrap_or_else(|| PathBuf::from(format!("/run/wifi-isolate/{}.sock", args.iface)));
    let bridge = Arc::new(Bridge {
        socket,
        retry: Duration::from_secs(args.retry),
        session: Mutex::default(),
        out: Mutex::new(tokio::io::stdout()),
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut tasks = tokio::task::JoinSet::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let msg: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                let err = serde_json::json!({
                    "jsonrpc": "2.0", "id": null,
                    "error": {"code": -32700, "message": format!("parse error: {e}")}
                });
                bridge.write_out(err.to_string().as_bytes()).await;
                continue;
            }
        };
        let method = msg["method"].as_str().unwrap_or("").to_string();
        if method == "initialize" {
            bridge.session.lock().await.initialize = Some(msg.clone());
        } else if method == "notifications/initialized" {
            bridge.session.lock().await.initialized = Some(msg.clone());
        }
        // The handshake is sequential; everything after it may run concurrently (a long
        // wifi_connect must not hold up a ping or a cancellation).
        if method == "initialize" || method.starts_with("notifications/initialized") {
            if let Err(e) = bridge.forward(msg).await {
                warn!(cause = %e, "forwarding failed");
                reply_error(&bridge, &line, &e).await;
            }
        } else {
            let b = bridge.clone();
            tasks.spawn(async move {
                if let Err(e) = b.forward(msg).await {
                    warn!(cause = %e, "forwarding failed");
                    reply_error(&b, &line, &e).await;
                }
            });
        }
    }
    while tasks.join_next().await.is_some() {}
    ExitCode::SUCCESS
}

/// A request that could not be delivered still gets an answer, so the client does not hang.
async fn reply_error(b: &Bridge, line: &str, e: &anyhow::Error) {
    let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
    if let Some(id) = v.get("id").filter(|i| !i.is_null()) {
        let err = serde_json::json!({
            "jsonrpc": "2.0", "id": id,
            "error": {"code": -32603, "message": format!("wifi-isolate connect: {e}")}
        });
        b.write_out(err.to_string().as_bytes()).await;
    }
}

/// The endpoint is held: retrying does not help.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Held(String);

/// The message of a held endpoint's 503 (a JSON-RPC error, or plain text) if it says the
/// adapter is held.
fn held_message(body: &[u8]) -> Option<String> {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => v.pointer("/error/message")?.as_str()?.to_owned(),
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    text.contains(" is held").then_some(text)
}

/// The metadata key of the 2026-07-28 era's per-request protocol version.
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// The HTTP headers a sessionless (2026-07-28 or newer) request needs, derived from its body
/// the way the specification's clients derive them: `MCP-Protocol-Version` equal to
/// `_meta["io.modelcontextprotocol/protocolVersion"]`, `Mcp-Method` equal to `method`, and
/// `Mcp-Name` equal to `params.name` (tools/call, prompts/get), `params.uri` (resources/read,
/// resources/subscribe, resources/unsubscribe) or `params.taskId` (tasks/get, tasks/update,
/// tasks/cancel), in the `=?base64?…?=` form when it cannot travel bare. Empty for a message
/// without that metadata (the legacy era: its headers come from the session).
fn modern_headers(msg: &Value) -> Vec<(&'static str, String)> {
    let Some(version) = msg
        .pointer("/params/_meta")
        .and_then(|m| m.get(META_VERSION))
        .and_then(Value::as_str)
    else {
        return Vec::new();
    };
    let Some(method) = msg.get("method").and_then(Value::as_str) else {
        return Vec::new();
    };
    // A value that is not a valid header value would fail the whole request: the server then
    // answers the missing header with its own -32020, which is the honest outcome.
    let bare = |v: &str| http::HeaderValue::from_str(v).is_ok();
    let mut out = Vec::new();
    if bare(version) {
        out.push(("mcp-protocol-version", version.to_string()));
    }
    if bare(method) {
        out.push(("mcp-method", method.to_string()));
    }
    let key = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    };
    if let Some(name) = key
        .and_then(|k| msg.pointer(&format!("/params/{k}")))
        .and_then(Value::as_str)
    {
        out.push(("mcp-name", header_value(name)));
    }
    out
}

/// `value` as a header value: bare when it is visible ASCII without leading or trailing blanks
/// (and does not itself look like the sentinel), else `=?base64?<standard base64>?=`.
fn header_value(value: &str) -> String {
    let needs = value.starts_with([' ', '\t'])
        || value.ends_with([' ', '\t'])
        || value.chars().any(|c| !(' '..='~').contains(&c))
        || (value.starts_with("=?base64?") && value.ends_with("?="));
    if needs {
        format!("=?base64?{}?=", base64(value.as_bytes()))
    } else {
        value.to_string()
    }
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_modern_tools_call_gets_the_headers_its_body_implies() {
        let msg = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "wifi_scan", "arguments": {},
                       "_meta": {META_VERSION: "2026-07-28"}}});
        assert_eq!(
            modern_headers(&msg),
            vec![
                ("mcp-protocol-version", "2026-07-28".to_string()),
                ("mcp-method", "tools/call".to_string()),
                ("mcp-name", "wifi_scan".to_string()),
            ]
        );
        let read = json!({"jsonrpc": "2.0", "id": 2, "method": "resources/read",
            "params": {"uri": "wifi-isolate://status", "_meta": {META_VERSION: "2026-07-28"}}});
        assert!(modern_headers(&read).contains(&("mcp-name", "wifi-isolate://status".into())));
        let discover = json!({"jsonrpc": "2.0", "id": 3, "method": "server/discover",
            "params": {"_meta": {META_VERSION: "2026-07-28"}}});
        assert_eq!(modern_headers(&discover).len(), 2);
    }

    #[test]
    fn a_legacy_message_gets_no_modern_headers() {
        let msg = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "wifi_scan"}});
        assert!(modern_headers(&msg).is_empty());
    }

    #[test]
    fn names_that_cannot_travel_bare_are_base64_wrapped() {
        assert_eq!(header_value("wifi_scan"), "wifi_scan");
        assert_eq!(header_value("café"), "=?base64?Y2Fmw6k=?=");
        assert_eq!(header_value(" x"), "=?base64?IHg=?=");
        assert_eq!(
            header_value("=?base64?eA==?="),
            "=?base64?PT9iYXNlNjQ/ZUE9PT89?="
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b"a"), "YQ==");
    }
}
