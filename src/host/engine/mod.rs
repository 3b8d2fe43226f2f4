//! Engines: where the box runs.
//!
//! A box is one process tree in its own network namespace (only `lo` until the WiFi phy is moved
//! in) and its own mount namespace, running `wifi-isolate-agent`. Three engines make one:
//!
//! - [`api::ApiEngine`] — Podman or Docker through the Docker-compatible Engine API (bollard) over
//!   their Unix sockets: `NetworkMode=none`, `CapAdd=[NET_ADMIN, NET_RAW, NET_BIND_SERVICE]` and nothing else,
//!   read-only rootfs, `no-new-privileges`, memory and pids limits, labels for adoption.
//! - [`netns::NetnsEngine`] — the built-in runtime: the daemon spawns the agent itself in fresh
//!   network + mount namespaces, inside the service's own cgroup. No engine needed.
//!
//! Every box sees the same layout: a tmpfs on `/run`, the host's per-box runtime directory at
//! [`BOX_RUNTIME_DIR`] (the agent's MCP socket lives there), and a writable `/etc/resolv.conf`
//! that is a bind mount of `<runtime_dir>/resolv.conf` ([`RESOLV_CONF_NAME`]), so the agent can
//! rewrite it in place (write + truncate, never rename) from its DHCP lease.
//!
//! [`select`] picks one (`auto`: a Podman socket that answers, then Docker, then `netns`) and
//! returns an [`AnyEngine`], so the daemon holds one concrete type.

pub mod api;
pub mod netns;
pub(crate) mod pidfd;
pub mod sandbox;

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use api::ApiEngine;
pub use netns::NetnsEngine;

/// Label every box carries: the instance (interface name) it belongs to.
pub const LABEL_INSTANCE: &str = "io.wifi-isolate.instance";
/// Label every box carries: `true`, "made by wifi-isolate" (safe to remove).
pub const LABEL_MANAGED: &str = "io.wifi-isolate.managed";
/// Where the host's per-box runtime directory appears inside the box.
pub const BOX_RUNTIME_DIR: &str = "/run/wifi-isolate";
/// Where the per-instance certificates directory appears inside the box (read-only): the only
/// place EAP certificate and key paths may point to.
pub const BOX_CERTS_DIR: &str = "/etc/wifi-isolate/certs";
/// The host uid that root of a netns box maps to (its own user namespace): the top 64 Ki of
/// systemd's container uid range (524288–1879048191), so it owns no host file and no user.
pub const DEFAULT_BOX_UID: u32 = 1_878_982_656;
/// File in the runtime directory that backs the box's `/etc/resolv.conf`.
pub const RESOLV_CONF_NAME: &str = "resolv.conf";
/// Default Podman API socket (the system `podman.socket`).
pub const DEFAULT_PODMAN_SOCKET: &str = "/run/podman/podman.sock";
/// Default Docker API socket.
pub const DEFAULT_DOCKER_SOCKET: &str = "/run/docker.sock";

/// What can go wrong running a box.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine's API socket is missing or does not answer.
    #[error("{engine} is not available at {}: {hint}", socket.display())]
    Unavailable {
        /// Which engine.
        engine: EngineKind,
        /// The socket tried.
        socket: PathBuf,
        /// What failed and how to start the engine.
        hint: String,
    },
    /// The agent image is not in the engine's store (no registry is consulted).
    #[error("image {image} not found: {hint}")]
    ImageMissing {
        /// The image reference.
        image: String,
        /// How to build or import it.
        hint: String,
    },
    /// The engine API refused or failed a request.
    #[error("engine API: {0}")]
    Api(String),
    /// The box could not be started (or died at once).
    #[error("starting the box: {0}")]
    Spawn(String),
    /// A local file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    /// An [`EngineError::Io`] with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        EngineError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result type of this module.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Which engine runs a box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// Podman's Docker-compatible API.
    Podman,
    /// dockerd.
    Docker,
    /// The built-in namespace runtime.
    Netns,
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineKind::Podman => "podman",
            EngineKind::Docker => "docker",
            EngineKind::Netns => "netns",
        })
    }
}

/// `auto` is not a kind: [`select`] resolves it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown engine {0:?} (expected podman, docker or netns)")]
pub struct UnknownEngine(pub String);

impl FromStr for EngineKind {
    type Err = UnknownEngine;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "podman" => Ok(EngineKind::Podman),
            "docker" => Ok(EngineKind::Docker),
            "netns" => Ok(EngineKind::Netns),
            _ => Err(UnknownEngine(s.to_string())),
        }
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxSpec {
    /// The instance: the interface name as the user knows it (`wlp6s0`).
    pub instance: String,
    /// Agent image (container engines).
    pub image: String,
    /// Host directory bind-mounted at [`BOX_RUNTIME_DIR`] in the box. Must exist. The engine
    /// creates `resolv.conf` in it (the box's `/etc/resolv.conf`).
    pub runtime_dir: PathBuf,
    /// Arguments after the agent binary (the container's `Cmd`; the image's entrypoint is the agent).
    pub agent_args: Vec<String>,
    /// The netns engine: the host's `wifi-isolate-agent` binary.
    pub agent_path: PathBuf,
    /// Memory limit in bytes (containers; the netns box shares the service's cgroup).
    pub memory_bytes: u64,
    /// Process limit (containers; the netns box shares the service's cgroup).
    pub pids_limit: i64,
    /// Environment for the agent.
    pub env: Vec<(String, String)>,
    /// Host directory mounted read-only at [`BOX_CERTS_DIR`] (EAP certificates), if it exists.
    pub certs_dir: Option<PathBuf>,
    /// The netns engine: the host uid (and gid) that the box's root maps to.
    pub box_uid: u32,
}

impl BoxSpec {
    /// The box's name: `wifi-isolate-INSTANCE`.
    pub fn box_name(&self) -> String {
        box_name(&self.instance)
    }

    /// Host path of the file that backs the box's `/etc/resolv.conf`.
    pub fn resolv_conf_path(&self) -> PathBuf {
        self.runtime_dir.join(RESOLV_CONF_NAME)
    }

    /// Check the spec and create `<runtime_dir>/resolv.conf` if it is missing.
    pub(crate) fn prepare(&self) -> Result<()> {
        if !valid_instance(&self.instance) {
            return Err(EngineError::Spawn(format!(
                "invalid instance name {:?} (an interface name: 1-15 of [A-Za-z0-9_.-])",
                self.instance
            )));
        }
        let md = std::fs::metadata(&self.runtime_dir).map_err(|e| {
            EngineError::io(format!("runtime dir {}", self.runtime_dir.display()), e)
        })?;
        if !md.is_dir() {
            return Err(EngineError::Spawn(format!(
                "runtime dir {} is not a directory",
                self.runtime_dir.display()
            )));
        }
        let resolv = self.resolv_conf_path();
        if std::fs::symlink_metadata(&resolv).is_err() {
            std::fs::write(&resolv, "# wifi-isolate: no WiFi lease yet\n")
                .map_err(|e| EngineError::io(format!("creating {}", resolv.display()), e))?;
        } else if !std::fs::symlink_metadata(&resolv)
            .map(|m| m.file_type().is_file())
            .unwrap_or(false)
        {
            return Err(EngineError::Spawn(format!(
                "{} is not a regular file",
                resolv.display()
            )));
        }
        Ok(())
    }
}

/// `wifi-isolate-INSTANCE`.
pub fn box_name(instance: &str) -> String {
    format!("wifi-isolate-{instance}")
}

/// An interface name ([`crate::validate::IfaceName`]'s rule) whose characters a container
/// name also allows (`[A-Za-z0-9_.-]`).
fn valid_instance(s: &str) -> bool {
    crate::validate::IfaceName::parse(s).is_ok()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// A running (or adopted) box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxHandle {
    /// The engine that runs it.
    pub engine: EngineKind,
    /// Container id, or for netns `PID:STARTTIME`.
    pub id: String,
    /// `wifi-isolate-INSTANCE`.
    pub name: String,
    /// A process whose `/proc/PID/ns/net` is the box's netns (0 for a stopped container that
    /// [`Engine::find_existing`] found).
    pub pid: u32,
    /// The box's netns: the engine's `SandboxKey` when it reports one, else `/proc/PID/ns/net`
    /// (empty for a stopped container).
    pub netns_path: PathBuf,
    /// The host uid the box's root runs as: the agent's socket must be owned by it and its
    /// peer must be it (0 for rootful podman/docker, the mapped uid for a netns box).
    pub uid: u32,
}

/// How a box ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoxExit {
    /// The agent exited with this status (containers: `128+N` for a signal N).
    Exited {
        /// Exit status.
        code: i64,
    },
    /// The agent was killed by this signal (netns engine, own child).
    Signaled {
        /// Signal number.
        signal: i32,
    },
    /// The box is gone and its status is unknown (removed, or an adopted process).
    Vanished,
}

impl fmt::Display for BoxExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoxExit::Exited { code } => write!(f, "exited with status {code}"),
            BoxExit::Signaled { signal } => write!(f, "killed by signal {signal}"),
            BoxExit::Vanished => f.write_str("vanished"),
        }
    }
}

/// A way to run boxes.
pub trait Engine: Send + Sync {
    /// Which engine this is.
    fn kind(&self) -> EngineKind;

    /// Create and start the box. On any failure, whatever was created is removed again.
    fn start(&self, spec: &BoxSpec) -> impl Future<Output = Result<BoxHandle>> + Send;

    /// Resolves when the box has exited (or vanished).
    fn wait(&self, h: &BoxHandle) -> impl Future<Output = Result<BoxExit>> + Send;

    /// Stop gracefully (SIGTERM, a short grace period), then force-remove. A box that is
    /// already gone is `Ok`.
    fn stop_remove(&self, h: &BoxHandle) -> impl Future<Output = Result<()>> + Send;

    /// Boxes labelled for `instance`, running or not (adoption and cleanup after a crash).
    fn find_existing(&self, instance: &str) -> impl Future<Output = Result<Vec<BoxHandle>>> + Send;

    /// Whether the box is still running.
    fn is_running(&self, h: &BoxHandle) -> impl Future<Output = bool> + Send;
}

/// One of the engines, chosen at run time.
#[derive(Debug)]
pub enum AnyEngine {
    /// Podman or Docker.
    Api(ApiEngine),
    /// The built-in runtime.
    Netns(NetnsEngine),
}

impl Engine for AnyEngine {
    fn kind(&self) -> EngineKind {
        match self {
            AnyEngine::Api(e) => e.kind(),
            AnyEngine::Netns(e) => e.kind(),
        }
    }

    async fn start(&self, spec: &BoxSpec) -> Result<BoxHandle> {
        match self {
            AnyEngine::Api(e) => e.start(spec).await,
            AnyEngine::Netns(e) => e.start(spec).await,
        }
    }

    async fn wait(&self, h: &BoxHandle) -> Result<BoxExit> {
        match self {
            AnyEngine::Api(e) => e.wait(h).await,
            AnyEngine::Netns(e) => e.wait(h).await,
        }
    }

    async fn stop_remove(&self, h: &BoxHandle) -> Result<()> {
        match self {
            AnyEngine::Api(e) => e.stop_remove(h).await,
            AnyEngine::Netns(e) => e.stop_remove(h).await,
        }
    }

    async fn find_existing(&self, instance: &str) -> Result<Vec<BoxHandle>> {
        match self {
            AnyEngine::Api(e) => e.find_existing(instance).await,
            AnyEngine::Netns(e) => e.find_existing(instance).await,
        }
    }

    async fn is_running(&self, h: &BoxHandle) -> bool {
        match self {
            AnyEngine::Api(e) => e.is_running(h).await,
            AnyEngine::Netns(e) => e.is_running(h).await,
        }
    }
}

/// Pick an engine: `auto` | `podman` | `docker` | `netns`.
///
/// `auto` takes the Podman socket if it answers `/_ping`, else the Docker socket, else the
/// built-in `netns` runtime (state in [`netns::DEFAULT_STATE_DIR`]). An explicit `podman` or
/// `docker` whose socket does not answer is [`EngineError::Unavailable`] — no silent fallback.
pub async fn select(kind: &str, podman_socket: &Path, docker_socket: &Path) -> Result<AnyEngine> {
    let kind = kind.trim();
    if kind.eq_ignore_ascii_case("auto") {
        for (k, sock) in [
            (EngineKind::Podman, podman_socket),
            (EngineKind::Docker, docker_socket),
        ] {
            // No socket: that engine is not installed (or its socket unit is off) — next. A
            // socket that is there is an engine that may be slow to start (podman.socket
            // activates `podman system service` on the first ping; under load that can take
            // more than the probe's 5 s): give it the full connect time rather than silently
            // choosing another kind of box.
            let within = if sock.exists() {
                api::CONNECT_TIMEOUT
            } else {
                api::PROBE_TIMEOUT
            };
            match ApiEngine::connect_within(k, sock, within).await {
                Ok(e) => return Ok(AnyEngine::Api(e)),
                Err(err) if sock.exists() => {
                    tracing::warn!(engine = %k, cause = %err, "engine socket present but not answering; trying the next engine")
                }
                Err(err) => tracing::debug!(engine = %k, cause = %err, "engine not usable"),
            }
        }
        return Ok(AnyEngine::Netns(NetnsEngine::new(netns::DEFAULT_STATE_DIR)));
    }
    match kind
        .parse::<EngineKind>()
        .map_err(|e| EngineError::Spawn(e.to_string()))?
    {
        k @ EngineKind::Podman => Ok(AnyEngine::Api(ApiEngine::connect(k, podman_socket).await?)),
        k @ EngineKind::Docker => Ok(AnyEngine::Api(ApiEngine::connect(k, docker_socket).await?)),
        EngineKind::Netns => Ok(AnyEngine::Netns(NetnsEngine::new(netns::DEFAULT_STATE_DIR))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_round_trips() {
        for k in [EngineKind::Podman, EngineKind::Docker, EngineKind::Netns] {
            assert_eq!(k.to_string().parse::<EngineKind>(), Ok(k));
        }
        assert_eq!("Docker".parse::<EngineKind>(), Ok(EngineKind::Docker));
        assert!("auto".parse::<EngineKind>().is_err());
        assert!("lxc".parse::<EngineKind>().is_err());
    }

    #[test]
    fn instance_names() {
        assert!(valid_instance("wlp6s0"));
        assert!(valid_instance("phy0"));
        assert!(valid_instance("wlan0.1"));
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "wlp0s20f3u1u2u3x",
            "x\n",
        ] {
            assert!(!valid_instance(bad), "{bad:?}");
        }
    }

    #[test]
    fn errors_say_how_to_fix() {
        let e = EngineError::Unavailable {
            engine: EngineKind::Podman,
            socket: "/run/podman/podman.sock".into(),
            hint: "start it: systemctl start podman.socket".into(),
        };
        let s = e.to_string();
        assert!(
            s.contains("podman is not available at /run/podman/podman.sock"),
            "{s}"
        );
        assert!(s.contains("systemctl start podman.socket"), "{s}");
    }
}
