//! An MCP client session over a Unix socket (streamable HTTP at `http://localhost/mcp`) and one
//! tool call with its outcome.

use std::path::Path;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, ClientRequest, Request};
use rmcp::service::{PeerRequestOptions, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, UnixSocketHttpClient};
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;

/// Initialize a session on `socket` (bounded: 20 s).
pub async fn session(socket: &Path) -> Result<RunningService<RoleClient, ()>, String> {
    let sock = socket.to_string_lossy().into_owned();
    let http = UnixSocketHttpClient::new(&sock, "http://localhost/mcp");
    let transport = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp"),
    );
    match tokio::time::timeout(Duration::from_secs(20), ().serve(transport)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("MCP initialize: {e}")),
        Err(_) => Err("MCP initialize timed out".into()),
    }
}

/// Call `tool`: (succeeded, structured content, text content).
pub async fn call(
    svc: &RunningService<RoleClient, ()>,
    tool: &str,
    args: Value,
) -> (bool, Value, String) {
    let params = CallToolRequestParams::new(tool.to_string())
        .with_arguments(args.as_object().cloned().unwrap_or_default());
    let handle = match svc
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
    {
        Ok(h) => h,
        Err(e) => return (false, Value::Null, format!("send: {e}")),
    };
    crate::guest::tool_outcome(handle.await_response().await)
}
