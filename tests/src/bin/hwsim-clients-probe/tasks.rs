//! The Tasks extension (`io.modelcontextprotocol/tasks`) on the radio, through the daemon's
//! socket, with rmcp's client declaring the extension: a task-augmented wifi_connect → polled
//! with tasks/get → its result (a lease in the AP's subnet); a cancelled task (the AP's DHCP
//! server stopped, so the connect cannot finish) settles `cancelled` with the radio
//! disconnected and the operation lock free; a client without the extension gets no task.

use std::path::Path;
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientCapabilities, ClientConfig,
    GetTaskParams, Implementation, TaskPayload, TaskStatus,
};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, UnixSocketHttpClient};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use wifi_isolate_tests::tally::Tally;

/// A client that declares the Tasks extension.
#[derive(Clone)]
pub(crate) struct TaskClient;

impl ClientHandler for TaskClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_tasks().build(),
            Implementation::new("hwsim-clients-probe-tasks", "1"),
        )
    }
}

pub(crate) type Svc = RunningService<RoleClient, TaskClient>;

pub(crate) async fn client(sock: &Path) -> Result<Svc, String> {
    let http = UnixSocketHttpClient::new(&sock.to_string_lossy(), "http://localhost/mcp");
    let t = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp"),
    );
    TaskClient.serve(t).await.map_err(|e| e.to_string())
}

fn args(v: Value) -> CallToolRequestParams {
    CallToolRequestParams::new("wifi_connect").with_arguments(v.as_object().cloned().unwrap())
}

/// Start a task-augmented call: its id, or why not.
async fn start(svc: &Svc, params: CallToolRequestParams) -> Result<String, String> {
    match svc.call_tool_once(params).await {
        Ok(CallToolResponse::Task(t)) => Ok(t.task.task_id),
        Ok(other) => Err(format!("not a task: {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Poll tasks/get (every 500 ms) until the task is terminal or `within` passes.
async fn settle(svc: &Svc, id: &str, within: Duration) -> Result<(TaskStatus, Value, u32), String> {
    let deadline = Instant::now() + within;
    let mut polls = 0;
    loop {
        let r = svc
            .get_task(GetTaskParams::new(id))
            .await
            .map_err(|e| e.to_string())?;
        polls += 1;
        if r.task.status().is_terminal() || Instant::now() >= deadline {
            let result = match &r.task.payload {
                TaskPayload::Completed { result } => Value::Object(result.clone()),
                other => json!(format!("{other:?}")),
            };
            return Ok((r.task.status(), result, polls));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn is_v4_uuid(id: &str) -> bool {
    let b = id.as_bytes();
    id.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b[14] == b'4'
        && id
            .chars()
            .filter(|c| *c != '-')
            .all(|c| c.is_ascii_hexdigit())
}

/// A task-augmented connect that completes (before the DHCP server is stopped).
pub(crate) async fn completed(t: &mut Tally, sock: &Path, ssid: &str, psk: &str) {
    let p = "tasks";
    let svc = match client(sock).await {
        Ok(s) => s,
        Err(e) => {
            t.check(
                &format!("{p}: a client declaring the extension connects"),
                false,
                e,
            );
            return;
        }
    };
    let declared = svc
        .peer_info()
        .is_some_and(|i| i.capabilities.supports_tasks());
    t.check(
        &format!("{p}: the server offers io.modelcontextprotocol/tasks"),
        declared,
        format!("{:?}", svc.peer_info().map(|i| i.capabilities.clone())),
    );
    let started = start(
        &svc,
        args(json!({"ssid": ssid, "password": psk, "timeout_secs": 90})),
    )
    .await;
    t.check(
        &format!("{p}: wifi_connect answers with a task (an unguessable v4 UUID id)"),
        matches!(&started, Ok(id) if is_v4_uuid(id)),
        format!("{started:?}"),
    );
    if let Ok(id) = started {
        let r = settle(&svc, &id, Duration::from_secs(120)).await;
        let ip = match &r {
            Ok((_, v, _)) => v["structuredContent"]["ip"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            Err(_) => String::new(),
        };
        t.check(
            &format!("{p}: tasks/get polled to completed, the result a lease in the AP's subnet"),
            matches!(&r, Ok((TaskStatus::Completed, v, _)) if v["isError"] != true)
                && ip.starts_with("10.0.1."),
            format!("{r:?}"),
        );
        let r = svc
            .get_task(GetTaskParams::new("00000000-0000-4000-8000-000000000000"))
            .await;
        t.check(
            &format!("{p}: tasks/get of an id it never issued is an error"),
            r.is_err(),
            format!("{r:?}"),
        );
    }
    let r = svc
        .call_tool(CallToolRequestParams::new("wifi_disconnect"))
        .await;
    t.check(
        &format!("{p}: a short tool (wifi_disconnect) is answered directly"),
        r.as_ref().is_ok_and(|r| r.is_error != Some(true)),
        format!("{r:?}"),
    );
    let _ = svc.cancel().await;
}

/// A task-augmented connect that cannot finish (no DHCP), cancelled with tasks/cancel.
pub(crate) async fn cancelled(t: &mut Tally, sock: &Path, ssid: &str, psk: &str) {
    let p = "tasks";
    let svc = match client(sock).await {
        Ok(s) => s,
        Err(e) => {
            t.check(
                &format!("{p}: cancel: a client declaring the extension"),
                false,
                e,
            );
            return;
        }
    };
    let id = match start(
        &svc,
        args(json!({"ssid": ssid, "password": psk, "timeout_secs": 300})),
    )
    .await
    {
        Ok(id) => id,
        Err(e) => {
            t.check(
                &format!("{p}: cancel: the connect (no DHCP) runs as a task"),
                false,
                e,
            );
            return;
        }
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = svc.get_task(GetTaskParams::new(&id)).await;
    t.check(
        &format!("{p}: cancel: the connect (no DHCP) is working after 2 s"),
        r.as_ref()
            .is_ok_and(|r| r.task.status() == TaskStatus::Working),
        format!("{r:?}"),
    );
    let t0 = Instant::now();
    let ack = svc.cancel_task(CancelTaskParams::new(&id)).await;
    let r = settle(&svc, &id, Duration::from_secs(10)).await;
    let took = t0.elapsed();
    t.check(
        &format!("{p}: cancel: tasks/cancel → the task settles cancelled within 10 s"),
        ack.is_ok() && matches!(&r, Ok((TaskStatus::Cancelled, _, _))),
        format!("ack {ack:?}; {r:?} after {} ms", took.as_millis()),
    );
    let t0 = Instant::now();
    let r = svc
        .call_tool(CallToolRequestParams::new("wifi_disconnect"))
        .await;
    let took = t0.elapsed();
    t.check(
        &format!("{p}: cancel: wifi_disconnect answers within 2 s (the lock is free)"),
        r.as_ref().is_ok_and(|r| r.is_error != Some(true)) && took < Duration::from_secs(2),
        format!("{} ms: {r:?}", took.as_millis()),
    );
    let r = svc
        .call_tool(CallToolRequestParams::new("wifi_status"))
        .await;
    let st = r
        .as_ref()
        .ok()
        .and_then(|r| r.structured_content.as_ref())
        .map(|s| {
            (
                s["wpa_state"].as_str().unwrap_or("").to_string(),
                s["ip"].clone(),
            )
        });
    t.check(
        &format!("{p}: cancel: the radio ends disconnected, no address"),
        matches!(&st, Some((s, ip)) if (s == "DISCONNECTED" || s == "INACTIVE") && ip.is_null()),
        format!("{st:?}"),
    );
    let _ = svc.cancel().await;
}

/// A client that does not declare the extension: tasks/get is refused with -32021 (missing
/// required client capability), and its long calls stay plain results (the raw checks'
/// `resultType complete`).
pub(crate) async fn without_extension(t: &mut Tally, sock: &Path) {
    let id = "00000000-0000-4000-8000-000000000000";
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tasks/get",
                      "params": {"taskId": id, "_meta": crate::meta(crate::MODERN)}});
    let r = crate::http(
        sock,
        "POST",
        &[
            ("mcp-protocol-version", crate::MODERN),
            ("mcp-method", "tasks/get"),
            ("mcp-name", id),
        ],
        Some(&body),
    )
    .await;
    t.check(
        "tasks: tasks/get from a client without the extension → -32021",
        matches!(&r, Ok((_, v)) if v["error"]["code"] == -32021),
        format!("{r:?}"),
    );
}
