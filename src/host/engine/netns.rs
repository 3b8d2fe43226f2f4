//! The built-in runtime: the agent as a child of the daemon, sandboxed by bubblewrap.
//!
//! No engine, no image: `spec.agent_path` (the host's `wifi-isolate-agent`) runs with
//! `spec.agent_args` as PID 1 of a box that [`super::sandbox`] builds — its own user namespace
//! (box root = the unprivileged host uid `spec.box_uid`), net, mount, PID, IPC, UTS and cgroup
//! namespaces, a minimal read-only root, a private `/dev`, a seccomp filter of its own, only
//! `CAP_NET_ADMIN` + `CAP_NET_RAW` + `CAP_NET_BIND_SERVICE` over its own netns, and (under the unit's `Delegate=`) a cgroup
//! with `spec.memory_bytes` / `spec.pids_limit`. See that module for what the box sees and why.
//!
//! The agent is the box's init: stopping it sends SIGTERM, waits up to 5 s, then SIGKILLs it,
//! which takes every process of its PID namespace with it. Signals go through a pidfd, never a
//! bare PID.
//!
//! A state file `<state_dir>/<instance>.json` (pid + start time from `/proc/PID/stat`) lets a
//! restarted daemon find, adopt or kill an agent an earlier one left behind. It lives outside the
//! runtime dir on purpose: the box can write there, and must not be able to point the daemon's
//! kill at another process.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::pidfd::{
    open_verified, pidfd_exited, pidfd_open, pidfd_signal, proc_starttime, proc_state,
};
use super::{BoxExit, BoxHandle, BoxSpec, Engine, EngineError, EngineKind, Result, sandbox};

/// Where the netns engine keeps its state files by default.
pub const DEFAULT_STATE_DIR: &str = "/run/wifi-isolate/.netns";
/// Grace period between SIGTERM and SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// What a state file records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct State {
    instance: String,
    pid: u32,
    /// Field 22 of `/proc/PID/stat` (clock ticks since boot): guards against PID reuse.
    starttime: u64,
    agent: PathBuf,
    /// The host uid of the box's root.
    #[serde(default)]
    uid: u32,
}

impl State {
    fn id(&self) -> String {
        format!("{}:{}", self.pid, self.starttime)
    }
}

/// A box this engine spawned: its pidfd and its exit, published by the reaper task.
#[derive(Debug, Clone)]
struct Tracked {
    pidfd: Arc<OwnedFd>,
    exit: watch::Receiver<Option<BoxExit>>,
}

/// The built-in namespace runtime.
#[derive(Debug)]
pub struct NetnsEngine {
    state_dir: PathBuf,
    boxes: Arc<Mutex<HashMap<String, Tracked>>>,
}

impl NetnsEngine {
    /// An engine that keeps its state files in `state_dir` (created on first start). The
    /// directory must not be inside any box's runtime dir.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        NetnsEngine {
            state_dir: state_dir.into(),
            boxes: Arc::default(),
        }
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    fn state_path(&self, instance: &str) -> PathBuf {
        self.state_dir.join(format!("{instance}.json"))
    }

    fn read_state(&self, instance: &str) -> Option<State> {
        let text = std::fs::read_to_string(self.state_path(instance)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Remove the state file of `instance` if it still describes box `id`.
    fn forget_state(&self, instance: &str, id: &str) {
        if self.read_state(instance).is_some_and(|s| s.id() == id) {
            let _ = std::fs::remove_file(self.state_path(instance));
        }
    }

    fn write_state(&self, st: &State) -> Result<()> {
        let path = self.state_path(&st.instance);
        let text = serde_json::to_string(st).expect("state serializes");
        crate::host::files::write_atomic(&path, text.as_bytes())
            .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))
    }

    fn tracked(&self, id: &str) -> Option<Tracked> {
        self.boxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// A pidfd for the box, if its process still exists (never a recycled PID).
    fn pidfd_for(&self, h: &BoxHandle) -> Option<Arc<OwnedFd>> {
        if let Some(t) = self.tracked(&h.id) {
            return t.exit.borrow().is_none().then_some(t.pidfd);
        }
        let (pid, start) = parse_id(&h.id)?;
        open_verified(pid, start).map(Arc::new)
    }

    /// Resolves when the process behind `pidfd` has exited.
    async fn exited(&self, h: &BoxHandle, pidfd: &Arc<OwnedFd>) -> BoxExit {
        if let Some(t) = self.tracked(&h.id) {
            let mut rx = t.exit;
            return match rx.wait_for(Option::is_some).await {
                Ok(v) => v.unwrap_or(BoxExit::Vanished),
                Err(_) => BoxExit::Vanished,
            };
        }
        pidfd_exited(pidfd).await;
        BoxExit::Vanished
    }
}

impl Engine for NetnsEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Netns
    }

    async fn start(&self, spec: &BoxSpec) -> Result<BoxHandle> {
        spec.prepare()?;
        let runtime_dir = std::fs::canonicalize(&spec.runtime_dir).map_err(|e| {
            EngineError::io(format!("runtime dir {}", spec.runtime_dir.display()), e)
        })?;
        if let Ok(state_dir) = std::fs::canonicalize(&self.state_dir)
            && state_dir.starts_with(&runtime_dir)
        {
            return Err(EngineError::Spawn(format!(
                "the netns state dir {} must not be inside the box's runtime dir {}",
                state_dir.display(),
                runtime_dir.display()
            )));
        }
        if let Some(old) = self.read_state(&spec.instance)
            && open_verified(old.pid, old.starttime).is_some()
        {
            return Err(EngineError::Spawn(format!(
                "a box for {} is still running (pid {}): stop it first",
                spec.instance, old.pid
            )));
        }
        let agent = std::fs::canonicalize(&spec.agent_path)
            .map_err(|e| EngineError::Spawn(format!("{}: {e}", spec.agent_path.display())))?;
        if agent.starts_with("/tmp") || agent.starts_with("/run") {
            return Err(EngineError::Spawn(format!(
                "{}: the agent must not live under /tmp or /run (the box gets its own tmpfs there)",
                agent.display()
            )));
        }
        let bwrap = sandbox::find_bwrap()?;
        let uid = spec.box_uid;
        if let Some(dir) = &spec.certs_dir {
            warn_unreadable_certs(dir, uid);
        }
        // The box's root owns its runtime dir (its socket and resolv.conf), nothing else.
        for p in [runtime_dir.clone(), spec.resolv_conf_path()] {
            std::os::unix::fs::lchown(&p, Some(uid), Some(uid)).map_err(|e| {
                EngineError::io(format!("giving {} to the box uid {uid}", p.display()), e)
            })?;
        }
        let userns = tokio::task::spawn_blocking(move || sandbox::UserNs::create(uid))
            .await
            .map_err(|e| EngineError::Spawn(format!("user namespace task: {e}")))??;
        let cgroup = sandbox::BoxCgroup::create(spec.memory_bytes, spec.pids_limit)?;
        match &cgroup {
            Some(cg) => debug!(engine = "netns", cgroup = %cg.dir().display(), "box cgroup ready"),
            None => warn!(
                engine = "netns",
                "the box's memory and pids limits are not applied: this process's cgroup is not \
                 delegated to it (run it as wifi-isolate@IFACE.service, which has Delegate=)"
            ),
        }
        let seccomp: Vec<OwnedFd> = sandbox::seccomp_programs()?
            .iter()
            .map(|p| sandbox::memfd_with(c"wifi-isolate-seccomp", p))
            .collect::<io::Result<_>>()
            .map_err(|e| EngineError::io("seccomp program", e))?;
        let (info_r, info_w) =
            sandbox::pipe().map_err(|e| EngineError::io("bwrap info pipe", e))?;
        let seccomp_fds: Vec<RawFd> = seccomp.iter().map(|f| f.as_raw_fd()).collect();
        let certs_dir = spec.certs_dir.as_deref();
        let args = sandbox::bwrap_args(&sandbox::Layout {
            runtime_dir: &runtime_dir,
            resolv_conf: &spec.resolv_conf_path(),
            certs_dir,
            agent: &agent,
            seccomp_fds: &seccomp_fds,
            info_fd: info_w.as_raw_fd(),
        });
        let mut keep = seccomp_fds.clone();
        keep.push(info_w.as_raw_fd());
        let userns_fd = userns.raw_fd();
        let cgroup_fd = cgroup.as_ref().map(|c| c.procs_fd());

        let mut cmd = tokio::process::Command::new(&bwrap);
        cmd.args(&args)
            .arg(&agent)
            .args(&spec.agent_args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir("/")
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(false);
        // SAFETY: the hook only makes raw system calls on fds that outlive the spawn.
        unsafe {
            cmd.pre_exec(move || sandbox::enter_in_child(userns_fd, cgroup_fd, &keep));
        }
        let spawned = cmd
            .spawn()
            .map_err(|e| EngineError::Spawn(format!("{}: {e}", bwrap.display())));
        drop(info_w);
        drop(seccomp);
        drop(userns);
        let mut child = spawned?;
        // bwrap writes the box init's host PID once its namespaces exist, then closes the fd.
        let info = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::task::spawn_blocking(move || {
                let mut text = String::new();
                io::Read::read_to_string(&mut std::fs::File::from(info_r), &mut text).map(|_| text)
            }),
        )
        .await;
        let pid = match info {
            Ok(Ok(Ok(text))) => sandbox::parse_child_pid(&text),
            _ => None,
        };
        let Some(pid) = pid else {
            let _ = child.start_kill();
            let status = child.wait().await.ok();
            return Err(EngineError::Spawn(format!(
                "bubblewrap did not start the box ({}); its message is in the log above",
                status.map_or("no exit status".to_string(), |s| s.to_string())
            )));
        };
        let starttime = proc_starttime(pid);
        let pidfd = pidfd_open(pid);
        let (starttime, pidfd) = match (starttime, pidfd) {
            (Some(s), Ok(fd)) => (s, Arc::new(fd)),
            (_, res) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(EngineError::Spawn(format!(
                    "cannot track the agent (pid {pid}): {}",
                    res.err()
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| "no /proc entry".into())
                )));
            }
        };
        let st = State {
            instance: spec.instance.clone(),
            pid,
            starttime,
            agent: spec.agent_path.clone(),
            uid,
        };
        if let Err(e) = self.write_state(&st) {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(e);
        }
        let id = st.id();
        let (tx, rx) = watch::channel(None);
        self.boxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), Tracked { pidfd, exit: rx });
        // The reaper: publishes the exit, forgets the box.
        let boxes = Arc::clone(&self.boxes);
        let state_path = self.state_path(&spec.instance);
        let reaper_id = id.clone();
        tokio::spawn(async move {
            let exit = match child.wait().await {
                Ok(status) => exit_of(status),
                Err(_) => BoxExit::Vanished,
            };
            // bwrap has returned: its box init is gone, and with it the whole PID namespace.
            if let Some(cg) = cgroup {
                let _ = std::fs::remove_dir(cg.dir());
            }
            let _ = tx.send(Some(exit));
            if std::fs::read_to_string(&state_path)
                .ok()
                .and_then(|t| serde_json::from_str::<State>(&t).ok())
                .is_some_and(|s| s.id() == reaper_id)
            {
                let _ = std::fs::remove_file(&state_path);
            }
            // Keep the entry a little so a late wait() still gets the status.
            tokio::time::sleep(Duration::from_secs(60)).await;
            boxes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&reaper_id);
        });
        debug!(engine = "netns", BOX = %spec.box_name(), pid, "netns box spawned");
        Ok(BoxHandle {
            engine: EngineKind::Netns,
            id,
            name: spec.box_name(),
            pid,
            netns_path: PathBuf::from(format!("/proc/{pid}/ns/net")),
            uid,
        })
    }

    async fn wait(&self, h: &BoxHandle) -> Result<BoxExit> {
        if let Some(t) = self.tracked(&h.id) {
            let mut rx = t.exit;
            return Ok(match rx.wait_for(Option::is_some).await {
                Ok(v) => v.unwrap_or(BoxExit::Vanished),
                Err(_) => BoxExit::Vanished,
            });
        }
        match self.pidfd_for(h) {
            Some(fd) => Ok(self.exited(h, &fd).await),
            None => Ok(BoxExit::Vanished),
        }
    }

    async fn stop_remove(&self, h: &BoxHandle) -> Result<()> {
        let instance = h
            .name
            .strip_prefix("wifi-isolate-")
            .unwrap_or(&h.name)
            .to_string();
        let Some(pidfd) = self.pidfd_for(h) else {
            self.forget_state(&instance, &h.id);
            return Ok(());
        };
        let _ = pidfd_signal(&pidfd, libc::SIGTERM);
        let graceful = tokio::time::timeout(STOP_TIMEOUT, self.exited(h, &pidfd)).await;
        if graceful.is_err() {
            warn!(engine = "netns", BOX = %h.name, pid = h.pid, "agent ignored SIGTERM; killing the box");
            // The agent is the PID namespace's init: SIGKILL takes every box process with it.
            let _ = pidfd_signal(&pidfd, libc::SIGKILL);
            if tokio::time::timeout(STOP_TIMEOUT, self.exited(h, &pidfd))
                .await
                .is_err()
            {
                return Err(EngineError::Spawn(format!(
                    "agent pid {} survived SIGKILL",
                    h.pid
                )));
            }
        }
        self.forget_state(&instance, &h.id);
        info!(engine = "netns", BOX = %h.name, pid = h.pid, "box stopped");
        Ok(())
    }

    async fn find_existing(&self, instance: &str) -> Result<Vec<BoxHandle>> {
        let Some(st) = self.read_state(instance) else {
            return Ok(Vec::new());
        };
        if st.instance != instance || proc_starttime(st.pid) != Some(st.starttime) {
            // Stale: the process is gone (or the PID now belongs to someone else).
            let _ = std::fs::remove_file(self.state_path(instance));
            return Ok(Vec::new());
        }
        Ok(vec![BoxHandle {
            engine: EngineKind::Netns,
            id: st.id(),
            name: super::box_name(instance),
            pid: st.pid,
            netns_path: PathBuf::from(format!("/proc/{}/ns/net", st.pid)),
            uid: st.uid,
        }])
    }

    async fn is_running(&self, h: &BoxHandle) -> bool {
        if let Some(t) = self.tracked(&h.id) {
            return t.exit.borrow().is_none();
        }
        parse_id(&h.id).is_some_and(|(pid, start)| {
            proc_starttime(pid) == Some(start) && proc_state(pid).is_some_and(|s| s != 'Z')
        })
    }
}

/// The box reads its certificates as `uid`: say which files of `dir` it cannot read, and how to
/// fix it (the files are the admin's; they are not changed here).
fn warn_unreadable_certs(dir: &Path, uid: u32) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(md) = e.metadata() else { continue };
        let readable = (md.uid() == uid && md.mode() & 0o400 != 0)
            || (md.gid() == uid && md.mode() & 0o040 != 0)
            || md.mode() & 0o004 != 0;
        if md.is_file() && !readable {
            warn!(
                engine = "netns",
                file = %e.path().display(),
                "the box (uid {uid}) cannot read this certificate file: chown {uid} it (keys: keep 0600)"
            );
        }
    }
}

/// How the box ended, from bwrap's exit: bwrap returns its init's status, and `128 + N` when
/// the init was killed by signal N (the agent never exits with such a code itself).
fn exit_of(status: ExitStatus) -> BoxExit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) if (129..=128 + 64).contains(&code) => {
            BoxExit::Signaled { signal: code - 128 }
        }
        (Some(code), _) => BoxExit::Exited { code: code.into() },
        (None, Some(signal)) => BoxExit::Signaled { signal },
        _ => BoxExit::Vanished,
    }
}

fn parse_id(id: &str) -> Option<(u32, u64)> {
    let (pid, start) = id.split_once(':')?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(parse_id("123:456"), Some((123, 456)));
        assert_eq!(parse_id("x:1"), None);
        assert_eq!(parse_id("123"), None);
    }

    #[test]
    fn own_starttime_is_stable() {
        let me = std::process::id();
        let a = proc_starttime(me).unwrap();
        assert_eq!(proc_starttime(me), Some(a));
        assert!(open_verified(me, a).is_some());
        assert!(open_verified(me, a + 1).is_none());
    }
}
