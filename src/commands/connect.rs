//! `wifi-isolate connect IFACE`: a stdio ⇄ socket bridge for stdio-only MCP clients.
//!
//! Reads newline-delimited JSON-RPC from stdin, POSTs each message to the instance's MCP socket
//! (streamable HTTP), and writes every JSON-RPC message of the answer (plain JSON or SSE events)
//! to stdout, one per line. If the service restarts between calls (the session is gone: 404, or
//! the socket refuses for a moment), the bridge replays the client's `initialize` to get a new
//! session and sends the message again; the client never notices.

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
        {
            let s = self.session.lock().await;
            if let Some(id) = &s.id {
                req = req.header("mcp-session-id", id);
            }
            if let Some(p) = &s.protocol {
                req = req.header("mcp-protocol-version", p);
            }
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
