//! The real agent in-process, for host tests on a host without radios: its MCP server on a Unix
//! socket and an rmcp client of it (the production path the host's proxy forwards to), and a
//! network namespace of its own to run in (the agent owns its interface's addresses; the host's
//! must not be touched).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, UnixSocketHttpClient};
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use wifi_isolate::agent::{Agent, server};

/// Run `f` on a thread of its own in a fresh network namespace, on a single-threaded runtime
/// (every task and socket of the agent stays in that namespace). Needs root.
pub fn in_own_netns<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET): this test needs root");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f());
    })
    .join()
    .expect("the test body");
}

/// The agent's MCP server on `dir/mcp.sock` and a client session of it.
pub struct Served {
    /// The client session.
    pub client: RunningService<RoleClient, ()>,
    ct: CancellationToken,
}

/// Serve `agent` on `dir/mcp.sock` and open a client session.
pub async fn serve(agent: Arc<Agent>, dir: &Path) -> Served {
    let sock = dir.join("mcp.sock");
    let listener = server::bind_unix(&sock).unwrap();
    let ct = CancellationToken::new();
    tokio::spawn(server::serve_unix(agent, listener, ct.clone()));
    let transport = StreamableHttpClientTransport::with_client(
        UnixSocketHttpClient::new(sock.to_str().unwrap(), "http://localhost/mcp"),
        StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp"),
    );
    let client = ().serve(transport).await.expect("initialize");
    Served { client, ct }
}

impl Served {
    /// Call `tool`: (succeeded, the whole result as JSON text, `_meta` included); a protocol
    /// error is (false, its text). Panics if there is no answer `within`.
    pub async fn call(&self, tool: &'static str, args: Value, within: Duration) -> (bool, String) {
        let p = CallToolRequestParams::new(tool)
            .with_arguments(args.as_object().cloned().unwrap_or_default());
        match tokio::time::timeout(within, self.client.call_tool(p)).await {
            Ok(Ok(r)) => (r.is_error != Some(true), serde_json::to_string(&r).unwrap()),
            Ok(Err(e)) => (false, e.to_string()),
            Err(_) => panic!("{tool} did not answer within {within:?}"),
        }
    }

    /// End the session and stop the server.
    pub async fn close(self) {
        let _ = self.client.cancel().await;
        self.ct.cancel();
    }
}
