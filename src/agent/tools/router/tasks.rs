//! The Tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663) for the long tools, on rmcp's
//! [`TaskManager`]: a client that declares the extension (in `initialize`, or per request in
//! `_meta` on 2026-07-28) and calls one of [`LONG_TOOLS`] gets a task at once (`resultType:
//! "task"`, an unguessable id: a v4 UUID) and polls `tasks/get`, which carries the tool's result
//! (its error code included) once the task is `completed`. `tasks/cancel` stops the call the way
//! `notifications/cancelled` does: the call is dropped (its operation lock with it), an
//! associating tool is followed by a disconnect, and the task settles `cancelled` only once the
//! radio is disconnected. Clients that do not declare the extension are answered as before, with
//! progress on the request's own stream.

use rmcp::ErrorData;
use rmcp::RoleServer;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{CallToolRequestParams, CallToolResponse, CreateTaskResult};
use rmcp::service::RequestContext;
use rmcp::task_manager::{TaskExit, TaskManager, TaskOptions};

use super::{WifiTools, give_code};

/// The tools that may run as tasks: the ones that take seconds to minutes.
pub(super) const LONG_TOOLS: &[&str] = &[
    "wifi_connect",
    "wifi_connect_eap",
    "wifi_reconnect",
    "wifi_scan",
];

/// How long a task stays observable (rmcp marks a task still working at its TTL failed): beyond
/// the longest call (a connect's 300 s timeout) with room for the poller.
const TASK_TTL_MS: u64 = 15 * 60 * 1000;
/// The polling interval a task suggests.
const POLL_MS: u64 = 500;
/// At most this many tasks run at once; one more is answered `busy` (a client cannot pile up
/// operations it never polls).
const MAX_RUNNING: usize = 8;

/// The agent's one task store (an agent serves one radio; a 2026-07-28 server builds a handler
/// per request, so the store cannot live in the handler).
pub(super) fn manager() -> TaskManager {
    static TASKS: std::sync::OnceLock<TaskManager> = std::sync::OnceLock::new();
    TASKS.get_or_init(TaskManager::new).clone()
}

/// This call should become a task: a long tool, from a client that declared the extension.
pub(super) fn wants_task(tool: &str, context: &RequestContext<RoleServer>) -> bool {
    LONG_TOOLS.contains(&tool)
        && context
            .client_capabilities()
            .is_some_and(|c| c.supports_tasks())
}

impl WifiTools {
    /// Run the call as a task; answer with the task's seed state.
    pub(super) fn spawn_task(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> CallToolResponse {
        if self.tasks.running_task_count() >= MAX_RUNNING {
            return CallToolResponse::Complete(super::coded_error(
                crate::agent::failure::Code::Busy.as_str(),
                format!("{MAX_RUNNING} tasks are running already; wait for one to end"),
            ));
        }
        let me = self.clone();
        let tool = request.name.to_string();
        let options = TaskOptions::new()
            .with_ttl_ms(TASK_TTL_MS)
            .with_poll_interval_ms(POLL_MS)
            .with_status_message(format!("{tool} running"));
        let task = self.tasks.spawn(options, move |task| {
            Box::pin(async move {
                let call = me
                    .tool_router
                    .call(ToolCallContext::new(&me, request, context));
                tokio::select! {
                    r = call => match r {
                        Ok(CallToolResponse::Complete(mut r)) => {
                            give_code(&mut r);
                            Ok(r)
                        }
                        Ok(_) => Err(TaskExit::Error(ErrorData::internal_error(
                            format!("{tool} answered with neither a result nor an error"),
                            None,
                        ))),
                        Err(e) => Err(TaskExit::Error(e)),
                    },
                    _ = task.cancelled() => {
                        // The call is dropped above; disconnect before the task says cancelled.
                        let _ = me.cancelled(&tool, "tasks/cancel").await;
                        Err(TaskExit::Cancelled)
                    }
                }
            })
        });
        tracing::debug!(task_id = %task.task_id, "tool call runs as a task");
        CallToolResponse::Task(CreateTaskResult::new(task))
    }
}
