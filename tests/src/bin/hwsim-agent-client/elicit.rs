//! URL-mode elicitation on real radios: the daemon (`wifi-isolate run --engine netns`) serves
//! the passphrase page on the VM's 127.0.0.1; a client declaring `elicitation.url` asks to join
//! the WPA2 AP without a password → -32042 with a link; this client fills the form over HTTP as a
//! browser would (the browser itself is `tests/host/elicit_browser.rs`); the retried call
//! connects and gets a lease. A client without the capability gets `secret_required` naming
//! `wifi-isolate network add`. A 2026-07-28 client gets the same link as an MRTR input request.

use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ElicitationCapability, Implementation,
    UrlElicitationCapability,
};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, UnixSocketHttpClient};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Run, env, subnet_of};

/// One HTTP/1.1 exchange with the page (`Connection: close`): (status, body).
async fn http(url: &str, method: &str, origin: Option<&str>, body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Ok(mut s) = tokio::net::TcpStream::connect(authority).await else {
        return (0, format!("cannot connect to {authority}"));
    };
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    if let Some(o) = origin {
        req.push_str(&format!("Origin: {o}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    if s.write_all(req.as_bytes()).await.is_err() {
        return (0, "write failed".into());
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn csrf_of(body: &str) -> String {
    body.find("name=\"csrf\" value=\"")
        .map(|i| body[i + 19..].chars().take(32).collect())
        .unwrap_or_default()
}

pub(crate) async fn elicit_suite(run: &mut Run, sock: &str) {
    let ssid = env("AP_WPA2_SSID");
    let psk = env("AP_WPA2_PSK");
    // Without the capability (the suite's own client): the clear tool error.
    let code = run
        .tool_err(
            "elicit: a client without URL elicitation is told `wifi-isolate network add`",
            "wifi_connect",
            json!({"ssid": ssid, "timeout_secs": 60}),
            "wifi-isolate network add",
        )
        .await;
    run.check_code("elicit: without URL elicitation", code, "secret_required");

    let mut caps = ClientCapabilities::default();
    caps.elicitation = Some(ElicitationCapability::new().with_url(UrlElicitationCapability::new()));
    let transport = StreamableHttpClientTransport::with_client(
        UnixSocketHttpClient::new(sock, "http://localhost/mcp"),
        StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp"),
    );
    let svc = match ClientConfig::new(caps, Implementation::new("elicit-client", "1"))
        .serve(transport)
        .await
    {
        Ok(s) => s,
        Err(e) => return run.check("elicit: initialize with elicitation.url", false, e),
    };
    let call = |args: Value| {
        let p = CallToolRequestParams::new("wifi_connect")
            .with_arguments(args.as_object().cloned().unwrap_or_default());
        svc.call_tool(p)
    };
    let args = json!({"ssid": ssid, "timeout_secs": 60});
    let url = match call(args.clone()).await {
        Err(rmcp::ServiceError::McpError(e)) => {
            let el = e
                .data
                .as_ref()
                .map(|d| d["elicitations"][0].clone())
                .unwrap_or_default();
            let url = el["url"].as_str().unwrap_or("").to_owned();
            let id = el["elicitationId"].as_str().unwrap_or("-");
            run.check(
                "elicit: -32042 URL elicitation with a link to the daemon's loopback page",
                e.code.0 == -32042
                    && el["mode"] == "url"
                    && url.starts_with("http://127.0.0.1:")
                    && url.contains(&format!("/e/{id}?"))
                    && !url.contains(&psk),
                format!("{e:?}"),
            );
            url
        }
        other => {
            run.check(
                "elicit: -32042 URL elicitation with a link to the daemon's loopback page",
                false,
                format!("{other:?}"),
            );
            let _ = svc.cancel().await;
            return;
        }
    };
    let (st, page) = http(&url, "GET", None, "").await;
    let csrf = csrf_of(&page);
    run.check(
        "elicit: the page shows the SSID and a form with a CSRF token",
        st == 200 && page.contains(&ssid) && csrf.len() == 32 && page.contains("type=\"password\""),
        format!("{st}: {}", page.chars().take(400).collect::<String>()),
    );
    let origin = url.split('/').take(3).collect::<Vec<_>>().join("/");
    let path_url = url.split('?').next().unwrap_or("").to_owned();
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", &csrf)
        .append_pair("passphrase", &psk)
        .finish();
    let (st, _) = http(&path_url, "POST", Some("http://evil.example"), &body).await;
    run.check(
        "elicit: a POST from another Origin is refused (403)",
        st == 403,
        st,
    );
    let (st, answer) = http(&path_url, "POST", Some(&origin), &body).await;
    run.check(
        "elicit: the page took the passphrase for the box",
        st == 200 && answer.contains("has it") && !answer.contains(&psk),
        format!("{st}: {}", answer.chars().take(300).collect::<String>()),
    );
    let (st, _) = http(&path_url, "POST", Some(&origin), &body).await;
    run.check(
        "elicit: a replayed submission is refused (410)",
        st == 410,
        st,
    );
    let one_time = std::path::Path::new(&env("AGENT_SHARED_DIR"))
        .join("elicit")
        .join(format!("{}.toml", hex::encode(&ssid)));
    let md = std::fs::metadata(&one_time);
    run.check(
        "elicit: the one-time profile is in the box dir, 0600 for the box's uid",
        md.as_ref().is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.mode() & 0o777 == 0o600 && m.uid() != 0
        }),
        format!("{md:?}"),
    );
    let r = call(args).await;
    let c = match &r {
        Ok(r) if r.is_error != Some(true) => r.structured_content.clone().unwrap_or_default(),
        _ => Value::Null,
    };
    let gw = env("AP_WPA2_IP");
    run.check(
        "elicit: the retried wifi_connect connects and gets a lease in the AP's subnet",
        c["ip"]
            .as_str()
            .is_some_and(|ip| ip.starts_with(&format!("{}.", subnet_of(&gw)))),
        format!("{r:?}"),
    );
    run.check(
        "elicit: the one-time profile was consumed",
        !one_time.exists(),
        one_time.display(),
    );
    let d = svc
        .call_tool(CallToolRequestParams::new("wifi_disconnect"))
        .await;
    run.check(
        "elicit: disconnect",
        d.is_ok_and(|r| r.is_error != Some(true)),
        "",
    );
    let _ = svc.cancel().await;
    modern_suite(run, sock, &ssid, &psk).await;
}

/// A 2026-07-28 client: its handler gets the link as an `elicitation/create` (mode url) input
/// request, fills the page, accepts; rmcp's call_tool retries with inputResponses.
#[derive(Clone)]
struct Filler {
    psk: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl rmcp::ClientHandler for Filler {
    fn get_info(&self) -> ClientConfig {
        let mut caps = ClientCapabilities::default();
        caps.elicitation =
            Some(ElicitationCapability::new().with_url(UrlElicitationCapability::new()));
        ClientConfig::new(caps, Implementation::new("elicit-client-2026", "1"))
    }

    async fn create_elicitation(
        &self,
        request: rmcp::model::ElicitRequestParams,
        _ctx: rmcp::service::RequestContext<rmcp::RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, rmcp::ErrorData> {
        use rmcp::model::{ElicitRequestParams, ElicitResult, ElicitationAction};
        let ElicitRequestParams::UrlElicitationParams { url, .. } = request else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        let (st, page) = http(&url, "GET", None, "").await;
        let origin = url.split('/').take(3).collect::<Vec<_>>().join("/");
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("csrf", &csrf_of(&page))
            .append_pair("passphrase", &self.psk)
            .finish();
        let path_url = url.split('?').next().unwrap_or("").to_owned();
        let (posted, _) = http(&path_url, "POST", Some(&origin), &body).await;
        self.seen
            .lock()
            .unwrap()
            .push(format!("{st} {posted} {url}"));
        Ok(ElicitResult::new(ElicitationAction::Accept))
    }
}

async fn modern_suite(run: &mut Run, sock: &str, ssid: &str, psk: &str) {
    use rmcp::ClientServiceExt;
    let filler = Filler {
        psk: psk.to_owned(),
        seen: Default::default(),
    };
    let seen = filler.seen.clone();
    let transport = StreamableHttpClientTransport::with_client(
        UnixSocketHttpClient::new(sock, "http://localhost/mcp"),
        StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp"),
    );
    let lifecycle = rmcp::ClientLifecycleMode::Discover {
        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
    };
    let svc = match filler.serve_with_lifecycle(transport, lifecycle).await {
        Ok(s) => s,
        Err(e) => return run.check("elicit (2026-07-28): discover", false, e),
    };
    let p = CallToolRequestParams::new("wifi_connect").with_arguments(
        json!({"ssid": ssid, "timeout_secs": 60})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    let r = svc.call_tool(p).await;
    let seen = seen.lock().unwrap().clone();
    run.check(
        "elicit (2026-07-28): the link came as an elicitation/create input request; the page took the passphrase",
        seen.len() == 1 && seen[0].starts_with("200 200 http://127.0.0.1:"),
        format!("{seen:?}"),
    );
    let c = match &r {
        Ok(r) if r.is_error != Some(true) => r.structured_content.clone().unwrap_or_default(),
        _ => Value::Null,
    };
    let gw = env("AP_WPA2_IP");
    run.check(
        "elicit (2026-07-28): the retried call (inputResponses) connects with a lease",
        c["ip"]
            .as_str()
            .is_some_and(|ip| ip.starts_with(&format!("{}.", subnet_of(&gw)))),
        format!("{r:?}"),
    );
    let d = svc
        .call_tool(CallToolRequestParams::new("wifi_disconnect"))
        .await;
    run.check(
        "elicit (2026-07-28): disconnect",
        d.is_ok_and(|r| r.is_error != Some(true)),
        "",
    );
    let _ = svc.cancel().await;
}
