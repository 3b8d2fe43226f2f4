//! Serve the agent's MCP tools: streamable HTTP on a Unix socket (path `/mcp`), or stdio.
//!
//! rmcp leaves Origin validation off by default; we turn it on with an allow-list of local origins
//! only, and accept `Host: localhost` (the host-side proxy rewrites `Host` for us).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Agent;
use super::tools::{PeerCred, ResponseStream, WifiTools};

/// Origins a browser-based client on this machine may use.
pub const LOCAL_ORIGINS: &[&str] = &[
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "https://[::1]:*",
];

/// The rmcp HTTP config we serve with: Origin validation on, local hosts only.
pub fn http_config(ct: CancellationToken) -> StreamableHttpServerConfig {
    StreamableHttpServerConfig::default()
        .with_allowed_hosts(["localhost", "127.0.0.1", "::1"])
        .with_allowed_origins(LOCAL_ORIGINS.iter().copied())
        .enforce_origin_validation()
        .with_cancellation_token(ct)
}

/// Bind the agent's Unix socket (replacing a stale one), mode 0660.
pub fn bind_unix(path: &Path) -> anyhow::Result<UnixListener> {
    Ok(crate::unix_socket::bind_fresh(path, 0o660)?)
}

/// Serve MCP over HTTP on `listener` until `ct` is cancelled.
pub async fn serve_unix(
    agent: Arc<Agent>,
    listener: UnixListener,
    ct: CancellationToken,
) -> anyhow::Result<()> {
    let service = StreamableHttpService::new(
        {
            let agent = agent.clone();
            move || Ok(WifiTools::new(agent.clone()))
        },
        Arc::new(LocalSessionManager::default()),
        http_config(ct.child_token()),
    );
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = ct.cancelled() => return Ok(()),
        };
        let cred = stream.peer_cred().ok().map(|c| PeerCred {
            uid: c.uid(),
            pid: c.pid().unwrap_or(-1),
        });
        let service = service.clone();
        let ct = ct.clone();
        tokio::spawn(async move {
            let svc = WithCred {
                inner: service,
                cred,
            };
            let conn = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
                .into_owned();
            tokio::select! {
                r = conn => if let Err(e) = r {
                    // A client that goes away mid-answer (or cancels by closing its stream) is
                    // normal; anything else is worth a warning.
                    let gone = e
                        .downcast_ref::<hyper::Error>()
                        .is_some_and(|h| h.is_incomplete_message() || h.is_closed() || h.is_canceled());
                    if gone {
                        tracing::debug!(cause = %e, "MCP client went away");
                    } else {
                        warn!(cause = %e, "MCP connection ended with an error");
                    }
                },
                _ = ct.cancelled() => {}
            }
        });
    }
}

/// The rmcp service, with each request carrying the connection's peer credentials.
#[derive(Clone)]
struct WithCred {
    inner: StreamableHttpService<WifiTools, LocalSessionManager>,
    cred: Option<PeerCred>,
}

impl tower_service::Service<http::Request<hyper::body::Incoming>> for WithCred {
    type Response = http::Response<
        http_body_util::combinators::BoxBody<bytes::Bytes, std::convert::Infallible>,
    >;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<hyper::body::Incoming>) -> Self::Future {
        if let Some(c) = self.cred {
            req.extensions_mut().insert(c);
        }
        // The response stream of this request: a tool call it carries is cancelled when the
        // client closes it before the end.
        let closed = CancellationToken::new();
        req.extensions_mut().insert(ResponseStream(closed.clone()));
        let inner = self.inner.clone();
        Box::pin(async move {
            let (parts, body) = inner.handle(req).await.into_parts();
            let body = http_body_util::combinators::BoxBody::new(Watched {
                inner: body,
                closed: Some(closed.drop_guard()),
            });
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

/// A response body that cancels its request's [`ResponseStream`] if it is dropped before its end.
struct Watched {
    inner: http_body_util::combinators::BoxBody<bytes::Bytes, std::convert::Infallible>,
    closed: Option<tokio_util::sync::DropGuard>,
}

impl hyper::body::Body for Watched {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(None) = &polled
            && let Some(g) = self.closed.take()
        {
            // Answered to the end: nothing to cancel.
            g.disarm();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serve MCP over stdio until the client closes it.
pub async fn serve_stdio(agent: Arc<Agent>) -> anyhow::Result<()> {
    info!("serving MCP on stdio");
    let running = WifiTools::new(agent)
        .serve(rmcp::transport::stdio())
        .await
        .context("MCP initialisation on stdio failed")?;
    running.waiting().await?;
    Ok(())
}
