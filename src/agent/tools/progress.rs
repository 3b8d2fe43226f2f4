//! MCP progress for one tool call: notifications go out in order from one task, and
//! [`Progress::flush`] waits until they are all sent, so none trails the result. A call whose
//! client asked for no progress (no progress token) sends nothing.

use std::time::Duration;

use rmcp::model::ProgressNotificationParam;
use rmcp::{Peer, RoleServer};

use crate::agent::Stage;

/// `(done, total, message)` of one notification.
type Step = (f64, f64, String);

pub(super) struct Progress {
    tx: Option<tokio::sync::mpsc::UnboundedSender<Step>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub(super) fn new(peer: Peer<RoleServer>, meta: &rmcp::model::RequestMetaObject) -> Self {
        let Some(token) = meta.get_progress_token() else {
            return Self {
                tx: None,
                task: None,
            };
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Step>();
        let task = tokio::spawn(async move {
            while let Some((n, total, msg)) = rx.recv().await {
                let _ = peer
                    .notify_progress(
                        ProgressNotificationParam::new(token.clone(), n)
                            .with_total(total)
                            .with_message(msg),
                    )
                    .await;
            }
        });
        Self {
            tx: Some(tx),
            task: Some(task),
        }
    }

    /// Step `n` of `total`.
    pub(super) fn send(&self, n: usize, total: usize, msg: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.send((n as f64, total as f64, msg));
        }
    }

    /// A connect's stages (out of 4), for the agent's connect/reconnect.
    pub(super) fn sink(&self) -> impl Fn(Stage) + Send + Sync + use<> {
        let tx = self.tx.clone();
        move |stage| {
            if let Some(tx) = &tx {
                let (n, msg) = stage.progress();
                let _ = tx.send((n, 4.0, msg.to_string()));
            }
        }
    }

    /// Wait (at most 2 s) until every notification is out.
    pub(super) async fn flush(mut self) {
        self.tx.take();
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }
}
