//! The sessionless 2026-07-28 protocol over the agent's socket (server/discover, per-request
//! metadata).

use rmcp::model::CallToolRequestParams;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, UnixSocketHttpClient};

use crate::Run;

pub(crate) async fn discover_suite(run: &mut Run, sock: &str) {
    // The sessionless 2026-07-28 protocol (server/discover, per-request metadata).
    let http = UnixSocketHttpClient::new(sock, "http://localhost/mcp");
    let transport = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp"),
    );
    use rmcp::ClientServiceExt;
    let lifecycle = rmcp::ClientLifecycleMode::Discover {
        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
    };
    match ().serve_with_lifecycle(transport, lifecycle).await {
        Ok(svc) => {
            let n = svc.list_all_tools().await.map(|t| t.len()).unwrap_or(0);
            let st = svc
                .call_tool(CallToolRequestParams::new("wifi_status"))
                .await
                .map(|r| r.is_error != Some(true))
                .unwrap_or(false);
            run.check(
                "protocol 2026-07-28: tools/list and a tool call",
                n >= 14 && st,
                format!("{n} tools, status ok {st}"),
            );
            let _ = svc.cancel().await;
        }
        Err(e) => run.check("protocol 2026-07-28: discover", false, e),
    }
}
