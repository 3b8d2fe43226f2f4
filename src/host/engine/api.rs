//! Podman and Docker through the Docker-compatible Engine API (bollard over a Unix socket).
//!
//! One code path serves both: Podman's compat API (`podman system service`, `podman.socket`) and
//! dockerd. The container is `wifi-isolate-INSTANCE`:
//!
//! | setting | value |
//! |---|---|
//! | network | `NetworkMode=none` (only `lo`; the phy is moved in later) |
//! | capabilities | `CapDrop=[ALL]`, `CapAdd=[NET_ADMIN, NET_RAW, NET_BIND_SERVICE]` (the last for the access point's DHCP :67 and DNS :53, in the box's own netns) |
//! | filesystem | read-only rootfs; tmpfs `/run` and `/tmp`; `<runtime_dir>` at `/run/wifi-isolate`; `<runtime_dir>/resolv.conf` at `/etc/resolv.conf` (rw) |
//! | privileges | `no-new-privileges`; seccomp: our own profile ([`SECCOMP_PROFILE`]) |
//! | certificates | `<certs_dir>` at `/etc/wifi-isolate/certs` (ro), when the spec names one |
//! | limits | memory, pids, `nofile`/`nproc` 1024 (Podman 4.3 with runc needs explicit ulimits) |
//! | lifecycle | restart policy `no`, stop timeout 5 s, labels `io.wifi-isolate.{instance,managed}` |
//!
//! The netns is `/proc/<State.Pid>/ns/net` unless the engine reports a `SandboxKey` (Docker
//! does; Podman 4.3 reports an empty one for `NetworkMode=none`).
//!
//! ## Why these boxes are rootful, and what holds them
//!
//! The box's root is the host's root (no user namespace): CAP_NET_ADMIN and CAP_NET_RAW in the
//! initial user namespace. `tests/src/bin/hostile-probe.rs`, started by the engine in place of the
//! agent (tests/engine_{podman,docker}.rs, the full-system story), shows what still holds it: the
//! PID namespace (no host pid to signal, to name in `IFLA_NET_NS_PID`/`NL80211_ATTR_PID`, or to
//! reach through `/proc/PID/root`), the mount namespace with the read-only image as `/` (no host
//! file), the dropped capabilities (no `mknod`, no raw devices) and the seccomp profile (no new
//! namespaces, mounts, keyrings, ptrace, BPF, perf, kexec or modules). Podman's own default
//! profile (containers-common) allows `unshare`, `setns`, `mount`, `keyctl` and `ptrace`, so the
//! probe created user namespaces in a podman box; keyrings are not namespaced and uid 0 in the
//! box is the host's root for them. Both engines therefore get [`SECCOMP_PROFILE`]: Docker's
//! default allow-list minus those calls.
//!
//! One hole is left to the caller's order of release: when a netdev leaves the box's netns for
//! the host's (the phy's interface going home), the kernel gives the box's netns an nsid for the
//! host's netns, and a rootful box may then create links IN THE HOST with
//! `IFLA_TARGET_NETNSID` (CAP_NET_ADMIN over the initial user namespace) until it is stopped —
//! seen on the build host: a veth moved out of such a podman box, then the probe run in the box
//! (`podman exec`) made `wihost3` in the host netns. So `Daemon::release` removes a rootful box
//! (`BoxHandle::uid == 0`) *before* it moves the phy home, the box's netns kept alive by the
//! daemon's fd meanwhile.
//!
//! User namespaces were not taken: podman's `UsernsMode=auto` needs `/etc/subuid` and
//! `/etc/subgid` ranges for the `containers` user (a system-wide change the package would make on
//! every host), the compat API has no per-container uid map, and the range is picked at create,
//! after the daemon made the runtime dir the agent must own. Docker's remap is daemon-wide
//! (`userns-remap` in daemon.json, every container of the host). The built-in netns engine is
//! user-namespaced (src/host/engine/sandbox.rs).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, HostConfig, ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::{ClientVersion, Docker};
use futures::StreamExt;
use tracing::{debug, info, warn};

use super::{
    BOX_CERTS_DIR, BOX_RUNTIME_DIR, BoxExit, BoxHandle, BoxSpec, Engine, EngineError, EngineKind,
    LABEL_INSTANCE, LABEL_MANAGED, Result,
};

/// The Engine API version we speak: Docker 20.10 (Debian 12's docker.io) and podman 4.3's
/// compat API both serve v1.41, and every call used here exists there.
const ENGINE_API: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};
/// Timeout of ordinary API requests (seconds).
const REQUEST_TIMEOUT_SECS: u64 = 30;
/// Timeout of the connect-time `/_ping` probe when the engine was named, or when `auto` finds
/// its socket: a socket-activated podman.service starts on this first request, which took
/// over 5 s at boot in the full-system VM.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// The same probe while `auto` looks for an engine whose socket is not there.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Grace period between SIGTERM and SIGKILL when stopping a box (seconds).
pub const STOP_TIMEOUT_SECS: i32 = 5;
/// `ulimit -n` and `ulimit -u` inside the box.
const ULIMIT: i64 = 1024;
/// The seccomp profile of every podman and docker box (`api-seccomp.json`): Docker's default
/// allow-list (the agent, wpa_supplicant and busybox need nothing else), `clone` without namespace
/// flags, `clone3` ENOSYS (glibc falls back to `clone`), and EPERM for namespaces, mounts,
/// keyrings, ptrace, BPF, perf, kexec, modules, device nodes and io_uring; anything else ENOSYS.
/// Docker takes it inline in `SecurityOpt`; podman's compat API takes a path (see
/// [`seccomp_file`]).
pub const SECCOMP_PROFILE: &str = include_str!("api-seccomp.json");

/// A Docker-compatible engine (Podman or Docker) reached over its Unix socket.
#[derive(Debug, Clone)]
pub struct ApiEngine {
    kind: EngineKind,
    socket: PathBuf,
    docker: Docker,
}

impl ApiEngine {
    /// Connect to `socket`, check it answers `/_ping`, and negotiate the API version.
    ///
    /// A missing socket or one that does not answer is [`EngineError::Unavailable`], with a hint
    /// how to start the engine.
    pub async fn connect(kind: EngineKind, socket: &Path) -> Result<Self> {
        Self::connect_within(kind, socket, CONNECT_TIMEOUT).await
    }

    /// [`ApiEngine::connect`] with the ping bounded by `within`.
    pub async fn connect_within(kind: EngineKind, socket: &Path, within: Duration) -> Result<Self> {
        let unavailable = |what: String| EngineError::Unavailable {
            engine: kind,
            socket: socket.to_path_buf(),
            hint: format!("{what}; {}", start_hint(kind, socket)),
        };
        let path = socket
            .to_str()
            .ok_or_else(|| unavailable("socket path is not UTF-8".into()))?;
        if !socket.exists() {
            return Err(unavailable("no such socket".into()));
        }
        let docker = Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, &ENGINE_API)
            .map_err(|e| unavailable(e.to_string()))?;
        // A ping only: version negotiation (`/version`) costs podman 4.3 over a second under
        // load, at every start; both engines speak the pinned API version.
        let probe = async {
            docker.ping().await?;
            Ok::<_, BollardError>(docker)
        };
        let docker = match tokio::time::timeout(within, probe).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => return Err(unavailable(format!("it does not answer ({e})"))),
            Err(_) => {
                return Err(unavailable(format!(
                    "no answer within {}s",
                    within.as_secs()
                )));
            }
        };
        debug!(engine = %kind, socket = %socket.display(), api = %docker.client_version(), "engine connected");
        Ok(ApiEngine {
            kind,
            socket: socket.to_path_buf(),
            docker,
        })
    }

    /// The API socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The create request for `spec` (pure: no I/O). `seccomp` is the value of the
    /// `seccomp=` security option: the profile itself (Docker) or the path of a file holding it
    /// (podman).
    pub fn create_body(spec: &BoxSpec, seccomp: &str) -> Result<ContainerCreateBody> {
        let runtime = bind_source(&spec.runtime_dir)?;
        let resolv = bind_source(&spec.resolv_conf_path())?;
        let mut binds = vec![
            format!("{runtime}:{BOX_RUNTIME_DIR}:rw"),
            format!("{resolv}:/etc/resolv.conf:rw"),
        ];
        if let Some(certs) = &spec.certs_dir {
            binds.push(format!("{}:{BOX_CERTS_DIR}:ro", bind_source(certs)?));
        }
        let labels = HashMap::from([
            (LABEL_INSTANCE.to_string(), spec.instance.clone()),
            (LABEL_MANAGED.to_string(), "true".to_string()),
        ]);
        let ulimit = |name: &str| ResourcesUlimits {
            name: Some(name.into()),
            soft: Some(ULIMIT),
            hard: Some(ULIMIT),
        };
        let memory = i64::try_from(spec.memory_bytes).map_err(|_| {
            EngineError::Spawn(format!("memory limit {} too large", spec.memory_bytes))
        })?;
        let host = HostConfig {
            network_mode: Some("none".into()),
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: Some(vec![
                "NET_ADMIN".into(),
                "NET_RAW".into(),
                "NET_BIND_SERVICE".into(),
            ]),
            readonly_rootfs: Some(true),
            security_opt: Some(vec![
                "no-new-privileges".into(),
                format!("seccomp={seccomp}"),
            ]),
            memory: (memory > 0).then_some(memory),
            pids_limit: (spec.pids_limit > 0).then_some(spec.pids_limit),
            ulimits: Some(vec![ulimit("nofile"), ulimit("nproc")]),
            tmpfs: Some(HashMap::from([
                ("/run".to_string(), "rw,nosuid,nodev,mode=0755".to_string()),
                ("/tmp".to_string(), "rw,nosuid,nodev,mode=1777".to_string()),
            ])),
            binds: Some(binds),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            ..Default::default()
        };
        Ok(ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(spec.agent_args.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            stop_timeout: Some(STOP_TIMEOUT_SECS.into()),
            network_disabled: None,
            host_config: Some(host),
            ..Default::default()
        })
    }

    fn api_err(&self, what: &str, e: BollardError) -> EngineError {
        match e {
            BollardError::SocketNotFoundError(_)
            | BollardError::HyperResponseError { .. }
            | BollardError::HyperLegacyError { .. }
            | BollardError::IOError { .. }
            | BollardError::RequestTimeoutError => EngineError::Unavailable {
                engine: self.kind,
                socket: self.socket.clone(),
                hint: format!("{what}: {e}; {}", start_hint(self.kind, &self.socket)),
            },
            e => EngineError::Api(format!("{what}: {e}")),
        }
    }

    /// `GET /containers/ID/json`, parsed leniently.
    ///
    /// Not bollard's typed inspect: Podman 4.3 reports states (`stopped`) that its enum does not
    /// know, and the whole answer would fail to parse.
    async fn inspect(&self, id: &str) -> Result<Option<Inspect>> {
        let ver = self.docker.client_version();
        let path = format!(
            "/v{}.{}/containers/{id}/json",
            ver.major_version, ver.minor_version
        );
        let fut = raw_get(&self.socket, &path);
        let (status, body) =
            match tokio::time::timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS), fut).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    return Err(EngineError::Unavailable {
                        engine: self.kind,
                        socket: self.socket.clone(),
                        hint: format!("inspect: {e}; {}", start_hint(self.kind, &self.socket)),
                    });
                }
                Err(_) => return Err(EngineError::Api(format!("inspect {id}: timed out"))),
            };
        match status {
            200 => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| EngineError::Api(format!("inspect {id}: {e}"))),
            404 => Ok(None),
            s => Err(EngineError::Api(format!(
                "inspect {id}: HTTP {s}: {}",
                String::from_utf8_lossy(&body).trim()
            ))),
        }
    }

    fn handle_from(&self, r: &Inspect) -> BoxHandle {
        let pid = if r.state.running {
            u32::try_from(r.state.pid).unwrap_or(0)
        } else {
            0
        };
        let sandbox = Some(r.network_settings.sandbox_key.clone()).filter(|k| !k.is_empty());
        let netns_path = match (sandbox, pid) {
            (_, 0) => PathBuf::new(),
            (Some(k), _) => PathBuf::from(k),
            (None, pid) => PathBuf::from(format!("/proc/{pid}/ns/net")),
        };
        BoxHandle {
            engine: self.kind,
            id: r.id.clone(),
            name: r.name.trim_start_matches('/').to_string(),
            pid,
            netns_path,
            // Rootful podman/docker: the box's root is the host's root (see the hostile suite).
            uid: 0,
        }
    }

    /// Remove `id` by force; gone already is fine; "removal in progress" is waited out.
    async fn force_remove(&self, id: &str) -> Result<()> {
        let opts = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        for _ in 0..50 {
            match self.docker.remove_container(id, Some(opts.clone())).await {
                Ok(()) => return Ok(()),
                Err(e) if status(&e) == Some(404) => return Ok(()),
                // Docker: "removal of container … is already in progress".
                Err(e) if status(&e) == Some(409) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(self.api_err("remove", e)),
            }
        }
        Err(EngineError::Api(format!(
            "container {id} is still being removed"
        )))
    }

    /// The last lines the box printed (for an error message when it dies at once).
    async fn tail_logs(&self, id: &str) -> String {
        let opts = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail("20")
            .build();
        let mut out = String::new();
        let mut logs = self.docker.logs(id, Some(opts));
        while let Ok(Some(Ok(chunk))) =
            tokio::time::timeout(Duration::from_secs(2), logs.next()).await
        {
            out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            if out.len() > 4096 {
                break;
            }
        }
        out.trim().to_string()
    }

    async fn start_inner(&self, spec: &BoxSpec, id: &str) -> Result<BoxHandle> {
        if let Err(e) = self.docker.start_container(id, None).await {
            return Err(EngineError::Spawn(format!("{}: {e}", spec.box_name())));
        }
        let r = self.inspect(id).await?.ok_or_else(|| {
            EngineError::Spawn(format!("{} vanished right after start", spec.box_name()))
        })?;
        let h = self.handle_from(&r);
        if h.pid == 0 {
            let state = r.state;
            let logs = self.tail_logs(id).await;
            return Err(EngineError::Spawn(format!(
                "{} exited at once (status {}{}){}",
                spec.box_name(),
                state.exit_code,
                Some(state.error)
                    .filter(|e| !e.is_empty())
                    .map(|e| format!(", {e}"))
                    .unwrap_or_default(),
                if logs.is_empty() {
                    String::new()
                } else {
                    format!(": {logs}")
                }
            )));
        }
        Ok(h)
    }

    /// Poll until the container stops or disappears.
    async fn poll_exit(&self, id: &str) -> Result<BoxExit> {
        loop {
            match self.inspect(id).await? {
                None => return Ok(BoxExit::Vanished),
                Some(r) => {
                    if !r.state.running {
                        return Ok(BoxExit::Exited {
                            code: r.state.exit_code,
                        });
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Engine for ApiEngine {
    fn kind(&self) -> EngineKind {
        self.kind
    }

    async fn start(&self, spec: &BoxSpec) -> Result<BoxHandle> {
        spec.prepare()?;
        // Checked before anything is written or created.
        Self::create_body(spec, "")?;
        let name = spec.box_name();

        // The image must be here already: the engine would otherwise try a registry.
        match self.docker.inspect_image(&spec.image).await {
            Ok(_) => {}
            Err(e) if status(&e) == Some(404) => {
                return Err(EngineError::ImageMissing {
                    image: spec.image.clone(),
                    hint: image_hint(self.kind, &spec.image),
                });
            }
            Err(e) => return Err(self.api_err("inspect image", e)),
        }

        // A box of ours under this name (left by a crashed daemon) is replaced; anything else
        // under the name is not ours to remove.
        if let Some(old) = self.inspect(&name).await? {
            if old.config.labels.get(LABEL_MANAGED).map(String::as_str) != Some("true") {
                return Err(EngineError::Spawn(format!(
                    "a container named {name} exists and is not managed by wifi-isolate"
                )));
            }
            let old_id = if old.id.is_empty() {
                name.clone()
            } else {
                old.id
            };
            info!(engine = %self.kind, BOX = %name, id = %old_id, "removing a leftover box");
            self.force_remove(&old_id).await?;
        }

        // Podman reads the profile from a file at create (and keeps a copy): it goes right after.
        let profile_file = match self.kind {
            EngineKind::Podman => Some(ProfileFile::write(spec)?),
            _ => None,
        };
        let seccomp = match &profile_file {
            Some(f) => bind_source(&f.0)?,
            None => SECCOMP_PROFILE.to_string(),
        };
        let body = Self::create_body(spec, &seccomp)?;
        let opts = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = self.docker.create_container(Some(opts), body).await;
        drop(profile_file);
        let created = match created {
            Ok(c) => c,
            Err(e) if status(&e) == Some(404) => {
                return Err(EngineError::ImageMissing {
                    image: spec.image.clone(),
                    hint: image_hint(self.kind, &spec.image),
                });
            }
            Err(e) => return Err(self.api_err("create", e)),
        };
        for w in &created.warnings {
            warn!(engine = %self.kind, BOX = %name, warning = %w, "engine warning");
        }
        match self.start_inner(spec, &created.id).await {
            Ok(h) => {
                debug!(engine = %self.kind, BOX = %name, id = %h.id, pid = h.pid, "container started");
                Ok(h)
            }
            Err(e) => {
                if let Err(rm) = self.force_remove(&created.id).await {
                    warn!(engine = %self.kind, BOX = %name, cause = %rm, "cleanup after failed start");
                }
                Err(e)
            }
        }
    }

    async fn wait(&self, h: &BoxHandle) -> Result<BoxExit> {
        // The wait endpoint answers only when the container stops (Podman sends no headers
        // before that), so it needs a client without the request timeout.
        let patient = self
            .docker
            .clone()
            .with_timeout(Duration::from_secs(u32::MAX as u64));
        let opts = WaitContainerOptionsBuilder::new()
            .condition("not-running")
            .build();
        let mut stream = patient.wait_container(&h.id, Some(opts));
        match stream.next().await {
            Some(Ok(r)) => Ok(BoxExit::Exited {
                code: r.status_code,
            }),
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => {
                Ok(BoxExit::Exited { code })
            }
            Some(Err(e)) if status(&e) == Some(404) => Ok(BoxExit::Vanished),
            // The connection broke (engine restarted?) or ended early: fall back to polling.
            Some(Err(e)) => {
                debug!(engine = %self.kind, id = %h.id, cause = %e, "wait failed; polling");
                self.poll_exit(&h.id).await
            }
            None => self.poll_exit(&h.id).await,
        }
    }

    async fn stop_remove(&self, h: &BoxHandle) -> Result<()> {
        let opts = StopContainerOptionsBuilder::new()
            .t(STOP_TIMEOUT_SECS)
            .build();
        let stop = self.docker.stop_container(&h.id, Some(opts));
        match tokio::time::timeout(Duration::from_secs(STOP_TIMEOUT_SECS as u64 + 10), stop).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if matches!(status(&e), Some(304 | 404)) => {}
            Ok(Err(e)) => {
                warn!(engine = %self.kind, id = %h.id, cause = %e, "graceful stop failed; removing by force")
            }
            Err(_) => warn!(engine = %self.kind, id = %h.id, "stop timed out; removing by force"),
        }
        self.force_remove(&h.id).await?;
        debug!(engine = %self.kind, BOX = %h.name, id = %h.id, "container removed");
        Ok(())
    }

    async fn find_existing(&self, instance: &str) -> Result<Vec<BoxHandle>> {
        let filters = HashMap::from([(
            "label",
            vec![
                format!("{LABEL_INSTANCE}={instance}"),
                format!("{LABEL_MANAGED}=true"),
            ],
        )]);
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| self.api_err("list", e))?;
        let mut out = Vec::new();
        for c in list {
            // Filter again: never act on a container whose labels say otherwise.
            let labels = c.labels.unwrap_or_default();
            if labels.get(LABEL_INSTANCE).map(String::as_str) != Some(instance)
                || labels.get(LABEL_MANAGED).map(String::as_str) != Some("true")
            {
                continue;
            }
            let Some(id) = c.id else { continue };
            if let Some(r) = self.inspect(&id).await? {
                out.push(self.handle_from(&r));
            }
        }
        Ok(out)
    }

    async fn is_running(&self, h: &BoxHandle) -> bool {
        match self.inspect(&h.id).await {
            Ok(Some(r)) => {
                let now = self.handle_from(&r);
                now.pid != 0 && now.pid == h.pid
            }
            _ => false,
        }
    }
}

/// The parts of `GET /containers/ID/json` we use; every field optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct Inspect {
    id: String,
    name: String,
    state: InspectState,
    network_settings: InspectNetwork,
    config: InspectConfig,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct InspectState {
    running: bool,
    pid: i64,
    exit_code: i64,
    error: String,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct InspectNetwork {
    sandbox_key: String,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct InspectConfig {
    #[serde(deserialize_with = "null_as_default")]
    labels: HashMap<String, String>,
}

fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One HTTP/1.1 GET over the engine's Unix socket: status and body.
async fn raw_get(socket: &Path, path: &str) -> std::io::Result<(u16, bytes::Bytes)> {
    use http_body_util::BodyExt;
    let stream = tokio::net::UnixStream::connect(socket).await?;
    let (mut tx, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, "localhost")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(std::io::Error::other)?;
    let resp = tx.send_request(req).await.map_err(std::io::Error::other)?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok((status, body))
}

/// Where podman reads [`SECCOMP_PROFILE`] from for `spec`'s box: next to the box's runtime
/// dir, in the daemon's runtime root (`/run/wifi-isolate/box/.wifi-isolate-seccomp-wlan0.json`),
/// which no box sees; longer than any instance name, so never a box dir.
pub fn seccomp_file(spec: &BoxSpec) -> PathBuf {
    let name = format!(".wifi-isolate-seccomp-{}.json", spec.instance);
    match spec.runtime_dir.parent() {
        Some(p) if p != Path::new("") => p.join(name),
        _ => PathBuf::from("/run/wifi-isolate").join(name),
    }
}

/// The profile written for podman's create; removed on drop.
struct ProfileFile(PathBuf);

impl ProfileFile {
    /// Write it aside and rename it into place (a leftover of a crashed daemon is replaced).
    fn write(spec: &BoxSpec) -> Result<Self> {
        let path = seccomp_file(spec);
        crate::host::files::write_atomic(&path, SECCOMP_PROFILE.as_bytes()).map_err(|e| {
            EngineError::io(format!("writing the seccomp profile {}", path.display()), e)
        })?;
        Ok(ProfileFile(path))
    }
}

impl Drop for ProfileFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The HTTP status of an engine error, if it is one.
fn status(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// A path usable in `Binds` (`SRC:DST:OPTS`): absolute, UTF-8, no `:` or `,`.
fn bind_source(p: &Path) -> Result<String> {
    let s = p
        .to_str()
        .filter(|s| s.starts_with('/') && !s.contains([':', ',']))
        .ok_or_else(|| {
            EngineError::Spawn(format!(
                "{} cannot be bind-mounted (must be absolute, UTF-8, without ':' or ',')",
                p.display()
            ))
        })?;
    Ok(s.to_string())
}

fn start_hint(kind: EngineKind, socket: &Path) -> String {
    match kind {
        EngineKind::Podman => format!(
            "start it with `systemctl start podman.socket` (or `podman system service --time=0 unix://{}`)",
            socket.display()
        ),
        EngineKind::Docker => {
            "start it with `systemctl start docker.socket docker.service`".to_string()
        }
        EngineKind::Netns => "the netns engine has no socket".to_string(),
    }
}

fn image_hint(kind: EngineKind, image: &str) -> String {
    format!(
        "build it with `{kind} build -t {image} .` in the source tree, or offline with \
         `tests/host/image.sh {kind} {image} /usr/bin/wifi-isolate-agent`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BoxSpec {
        BoxSpec {
            instance: "wlp6s0".into(),
            image: "localhost/wifi-isolate-agent:latest".into(),
            runtime_dir: "/run/wifi-isolate/box/wlp6s0".into(),
            agent_args: vec!["--listen".into(), "unix:/run/wifi-isolate/mcp.sock".into()],
            agent_path: "/usr/bin/wifi-isolate-agent".into(),
            memory_bytes: 128 << 20,
            pids_limit: 64,
            env: vec![("RUST_LOG".into(), "info".into())],
            certs_dir: None,
            box_uid: crate::host::engine::DEFAULT_BOX_UID,
        }
    }

    #[test]
    fn create_body_is_locked_down() {
        let b = ApiEngine::create_body(&spec(), "/x/p.json").unwrap();
        let h = b.host_config.unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(
            h.cap_add,
            Some(vec![
                "NET_ADMIN".to_string(),
                "NET_RAW".to_string(),
                "NET_BIND_SERVICE".to_string()
            ])
        );
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(
            h.security_opt,
            Some(vec![
                "no-new-privileges".to_string(),
                "seccomp=/x/p.json".to_string()
            ])
        );
        assert_eq!(h.memory, Some(128 << 20));
        assert_eq!(h.pids_limit, Some(64));
        assert_eq!(h.privileged, None);
        assert_eq!(
            h.binds.unwrap(),
            vec![
                "/run/wifi-isolate/box/wlp6s0:/run/wifi-isolate:rw".to_string(),
                "/run/wifi-isolate/box/wlp6s0/resolv.conf:/etc/resolv.conf:rw".to_string()
            ]
        );
        assert!(h.tmpfs.unwrap().contains_key("/run"));
        assert_eq!(h.ulimits.unwrap().len(), 2);
        let labels = b.labels.unwrap();
        assert_eq!(labels[LABEL_INSTANCE], "wlp6s0");
        assert_eq!(labels[LABEL_MANAGED], "true");
        assert_eq!(b.cmd.unwrap()[0], "--listen");
        assert_eq!(b.env.unwrap(), vec!["RUST_LOG=info".to_string()]);
    }

    #[test]
    fn certs_dir_is_bound_read_only() {
        let mut s = spec();
        s.certs_dir = Some("/etc/wifi-isolate/certs/wlp6s0".into());
        let binds = ApiEngine::create_body(&s, "")
            .unwrap()
            .host_config
            .unwrap()
            .binds;
        assert_eq!(
            binds.unwrap()[2],
            "/etc/wifi-isolate/certs/wlp6s0:/etc/wifi-isolate/certs:ro"
        );
        s.certs_dir = Some("/etc/a:b".into());
        assert!(ApiEngine::create_body(&s, "").is_err());
    }

    /// The profile parses, and what it must deny is never allowed.
    #[test]
    fn seccomp_profile_denies_what_matters() {
        let p: serde_json::Value = serde_json::from_str(SECCOMP_PROFILE).unwrap();
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        let rules = p["syscalls"].as_array().unwrap();
        let allowed: Vec<&str> = rules
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
            .flat_map(|r| r["names"].as_array().unwrap())
            .map(|n| n.as_str().unwrap())
            .collect();
        for must in [
            "read",
            "socket",
            "execve",
            "arch_prctl",
            "wait4",
            "setsockopt",
        ] {
            assert!(allowed.contains(&must), "{must} is not allowed");
        }
        let denied = |name: &str| {
            rules.iter().any(|r| {
                r["action"] == "SCMP_ACT_ERRNO"
                    && r.get("args").is_none()
                    && r["names"].as_array().unwrap().iter().any(|n| n == name)
            })
        };
        for deny in [
            "unshare",
            "setns",
            "mount",
            "keyctl",
            "add_key",
            "ptrace",
            "bpf",
            "perf_event_open",
            "kexec_load",
            "init_module",
            "finit_module",
            "mknod",
            "io_uring_setup",
            "clone3",
        ] {
            assert!(!allowed.contains(&deny), "{deny} is allowed");
            assert!(denied(deny), "{deny} has no ERRNO rule");
        }
        // clone is allowed only without namespace flags (Docker's mask).
        let clone_allow: Vec<&serde_json::Value> = rules
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW" && r["names"][0] == "clone")
            .collect();
        assert_eq!(clone_allow.len(), 1);
        assert_eq!(clone_allow[0]["args"][0]["value"], 0x7E02_0000u64);
        assert_eq!(clone_allow[0]["args"][0]["valueTwo"], 0);
    }

    #[test]
    fn seccomp_file_is_beside_the_box_dir() {
        assert_eq!(
            seccomp_file(&spec()),
            PathBuf::from("/run/wifi-isolate/box/.wifi-isolate-seccomp-wlp6s0.json")
        );
        // Never a box dir: longer than any instance name (15 characters).
        let name = seccomp_file(&spec()).file_name().unwrap().len();
        assert!(name > 15);
    }

    #[test]
    fn odd_paths_are_refused() {
        let mut s = spec();
        s.runtime_dir = "/run/a:b".into();
        assert!(matches!(
            ApiEngine::create_body(&s, ""),
            Err(EngineError::Spawn(_))
        ));
        s.runtime_dir = "relative".into();
        assert!(matches!(
            ApiEngine::create_body(&s, ""),
            Err(EngineError::Spawn(_))
        ));
    }
}
