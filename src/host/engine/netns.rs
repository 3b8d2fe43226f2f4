//! The built-in runtime: the agent as a child of the daemon in fresh network + mount namespaces.
//!
//! No engine, no image: `spec.agent_path` (the host's `wifi-isolate-agent`) runs with
//! `spec.agent_args`, inside the service's own cgroup (so `MemoryMax=`/`TasksMax=` of the unit
//! are its limits). Everything is set up by the forked child itself, in a `pre_exec` hook, before
//! `execve` — only raw system calls on memory prepared before the fork, so it is
//! async-signal-safe (no allocation, no locks):
//!
//! 1. `unshare(CLONE_NEWNET | CLONE_NEWNS)`: a netns with only `lo`, a private copy of the mounts;
//! 2. `mount --make-rprivate /`: nothing propagates back to the host;
//! 3. open `O_PATH` handles on the runtime dir and `<runtime_dir>/resolv.conf` (they may live under
//!    the host's `/run`, which is about to be covered);
//! 4. a fresh read-only `sysfs` on `/sys`, so `/sys/class/net` and `/sys/class/ieee80211` show
//!    the box's devices;
//! 5. everything read-only, recursively (`mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY)`), then
//!    `/dev` writable again — a root process without capabilities could otherwise still write
//!    root-owned host files;
//! 6. tmpfs on `/run` and `/tmp`; `/run/wifi-isolate` is a bind of the runtime dir (through
//!    `/proc/self/fd/N`), and `/etc/resolv.conf` (or the file its symlink points to, created in
//!    the new `/run` when it lives there) a bind of `<runtime_dir>/resolv.conf` — both writable;
//!    `/proc/sys/net` writable for the box's own sysctls;
//! 7. `lo` up (`SIOCSIFFLAGS`);
//! 8. `no_new_privs`, and every capability dropped from the bounding set except `NET_ADMIN` and
//!    `NET_RAW` — after `execve` the agent holds exactly those two, as in a container.
//!
//! A failing step writes its name to stderr and fails the spawn with its errno: nothing runs.
//! The agent gets its own process group; stopping it sends SIGTERM, waits up to 5 s, then
//! SIGKILLs the group. Signals go through a pidfd, never a bare PID.
//!
//! A state file `<state_dir>/<instance>.json` (pid + start time from `/proc/PID/stat`) lets a
//! restarted daemon find, adopt or kill an agent an earlier one left behind. It lives outside the
//! runtime dir on purpose: the box can write there, and must not be able to point the daemon's
//! kill at another process.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::{
    BOX_RUNTIME_DIR, BoxExit, BoxHandle, BoxSpec, Engine, EngineError, EngineKind, Result,
};

/// Where the netns engine keeps its state files by default.
pub const DEFAULT_STATE_DIR: &str = "/run/wifi-isolate/.netns";
/// Grace period between SIGTERM and SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Size of the box's `/run` and `/tmp` tmpfs.
const TMPFS_OPTS: &str = "mode=0755,size=16m";
const TMP_TMPFS_OPTS: &str = "mode=1777,size=16m";
/// Capabilities the agent keeps.
const KEEP_CAPS: [u32; 2] = [12 /* CAP_NET_ADMIN */, 13 /* CAP_NET_RAW */];

/// What a state file records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct State {
    instance: String,
    pid: u32,
    /// Field 22 of `/proc/PID/stat` (clock ticks since boot): guards against PID reuse.
    starttime: u64,
    agent: PathBuf,
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
        std::fs::create_dir_all(&self.state_dir)
            .map_err(|e| EngineError::io(format!("creating {}", self.state_dir.display()), e))?;
        let path = self.state_path(&st.instance);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string(st).expect("state serializes");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
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
        let plan = Plan::new(&runtime_dir, &spec.resolv_conf_path())?;

        let mut cmd = tokio::process::Command::new(&agent);
        cmd.args(&spec.agent_args)
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
        // SAFETY: the hook only makes raw system calls on data prepared before the fork.
        unsafe {
            cmd.pre_exec(move || plan.run_in_child());
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| EngineError::Spawn(format!("{}: {e}", spec.agent_path.display())))?;
        let pid = child
            .id()
            .ok_or_else(|| EngineError::Spawn("the agent exited before it was seen".into()))?;
        // Not reaped yet (only the task below waits), so the PID cannot have been reused.
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
            // Like a container's init: when the agent goes, what it left in its group goes too.
            sweep_group(pid);
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
            warn!(engine = "netns", BOX = %h.name, pid = h.pid, "agent ignored SIGTERM; killing its process group");
            // The leader is not reaped yet, so its PID (= the group id) cannot be reused.
            sweep_group(h.pid);
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
        if self.tracked(&h.id).is_none() {
            // Adopted: nobody else sweeps its group. The group id stays allocated while any
            // member lives, so this cannot hit a recycled process group.
            sweep_group(h.pid);
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

/// SIGKILL the box's process group (the agent is its leader: `process_group(0)`).
fn sweep_group(pgid: u32) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid)
        && pgid > 1
    {
        // SAFETY: kill(2) with a negative pid signals the process group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

fn exit_of(status: ExitStatus) -> BoxExit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => BoxExit::Exited { code: code.into() },
        (None, Some(signal)) => BoxExit::Signaled { signal },
        _ => BoxExit::Vanished,
    }
}

fn parse_id(id: &str) -> Option<(u32, u64)> {
    let (pid, start) = id.split_once(':')?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

/// Fields after `comm` in `/proc/PID/stat` (comm may hold spaces and parentheses).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Field 22 of `/proc/PID/stat`: the start time in clock ticks after boot.
pub(crate) fn proc_starttime(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

fn proc_state(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the returned fd is owned by us.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A pidfd for `pid` if that PID still is the process that started at `starttime`.
fn open_verified(pid: u32, starttime: u64) -> Option<OwnedFd> {
    let fd = pidfd_open(pid).ok()?;
    // Opened first, checked second: if the check passes, the fd is that process.
    (proc_starttime(pid) == Some(starttime) && proc_state(pid).is_some_and(|s| s != 'Z'))
        .then_some(fd)
}

fn pidfd_signal(fd: &OwnedFd, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall on a valid fd.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A pidfd polls readable once its process has exited (also for non-children).
async fn pidfd_exited(fd: &Arc<OwnedFd>) {
    // AsyncFd wants ownership: give it a duplicate.
    let Ok(dup) = fd.try_clone() else {
        return;
    };
    // SAFETY: `dup` is an open fd owned by the AsyncFd until it is dropped.
    let registered = unsafe { AsyncFd::register_with_interest(dup, tokio::io::Interest::READABLE) };
    let Ok(afd) = registered else {
        // Not pollable (should not happen): fall back to /proc polling.
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if pidfd_signal(fd, 0).is_err() {
                return;
            }
        }
    };
    let _ = afd.readable().await;
}

/// Everything the child needs, prepared before the fork (no allocation afterwards).
struct Plan {
    runtime_dir: CString,
    resolv_src: CString,
    /// Where the bind for resolv.conf goes (`/etc/resolv.conf`, or its symlink's target).
    resolv_target: Option<CString>,
    /// Directories to create in the new `/run` before `resolv_target` (a symlink into /run).
    resolv_mkdirs: Vec<CString>,
    /// `resolv_target` lives in the new `/run` and must be created.
    resolv_create: bool,
    lit: Literals,
}

/// C strings used by the child.
struct Literals {
    root: CString,
    sys: CString,
    sysfs: CString,
    run: CString,
    tmp: CString,
    dev: CString,
    tmpfs: CString,
    tmpfs_opts: CString,
    tmp_tmpfs_opts: CString,
    box_runtime: CString,
    proc_sys_net: CString,
}

fn cstr(s: impl AsRef<[u8]>) -> Result<CString> {
    CString::new(s.as_ref().to_vec())
        .map_err(|_| EngineError::Spawn("a path contains a NUL byte".into()))
}

impl Plan {
    fn new(runtime_dir: &Path, resolv_src: &Path) -> Result<Self> {
        let (resolv_target, resolv_mkdirs, resolv_create) = resolv_target()?;
        Ok(Plan {
            runtime_dir: cstr(runtime_dir.as_os_str().as_bytes())?,
            resolv_src: cstr(resolv_src.as_os_str().as_bytes())?,
            resolv_target,
            resolv_mkdirs,
            resolv_create,
            lit: Literals {
                root: cstr("/")?,
                sys: cstr("/sys")?,
                sysfs: cstr("sysfs")?,
                run: cstr("/run")?,
                tmp: cstr("/tmp")?,
                dev: cstr("/dev")?,
                tmpfs: cstr("tmpfs")?,
                tmpfs_opts: cstr(TMPFS_OPTS)?,
                tmp_tmpfs_opts: cstr(TMP_TMPFS_OPTS)?,
                box_runtime: cstr(BOX_RUNTIME_DIR)?,
                proc_sys_net: cstr("/proc/sys/net")?,
            },
        })
    }

    /// Runs in the forked child, before `execve`. Raw system calls only.
    fn run_in_child(&self) -> io::Result<()> {
        use libc::{
            MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT,
        };
        let l = &self.lit;
        let null = std::ptr::null::<libc::c_char>();
        // SAFETY (whole block): system calls on NUL-terminated strings that outlive the call.
        unsafe {
            step(
                b"unshare",
                libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS),
            )?;
            step(
                b"make / rprivate",
                libc::mount(
                    null,
                    l.root.as_ptr(),
                    null,
                    MS_REC | MS_PRIVATE,
                    std::ptr::null(),
                ),
            )?;
            let rt = libc::open(
                self.runtime_dir.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            step(b"open runtime dir", rt)?;
            let rs = libc::open(self.resolv_src.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
            step(b"open resolv.conf", rs)?;
            step(
                b"mount sysfs",
                libc::mount(
                    l.sysfs.as_ptr(),
                    l.sys.as_ptr(),
                    l.sysfs.as_ptr(),
                    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    std::ptr::null(),
                ),
            )?;
            step(b"read-only /", setattr_rdonly(&l.root, true))?;
            step(b"writable /dev", setattr_rdonly(&l.dev, false))?;
            step(
                b"tmpfs /run",
                libc::mount(
                    l.tmpfs.as_ptr(),
                    l.run.as_ptr(),
                    l.tmpfs.as_ptr(),
                    MS_NOSUID | MS_NODEV,
                    l.tmpfs_opts.as_ptr().cast(),
                ),
            )?;
            step(
                b"tmpfs /tmp",
                libc::mount(
                    l.tmpfs.as_ptr(),
                    l.tmp.as_ptr(),
                    l.tmpfs.as_ptr(),
                    MS_NOSUID | MS_NODEV,
                    l.tmp_tmpfs_opts.as_ptr().cast(),
                ),
            )?;
            step(
                b"mkdir /run/wifi-isolate",
                libc::mkdir(l.box_runtime.as_ptr(), 0o755),
            )?;
            let mut buf = [0u8; 32];
            step(
                b"bind runtime dir",
                libc::mount(
                    fd_path(&mut buf, rt),
                    l.box_runtime.as_ptr(),
                    null,
                    MS_BIND,
                    std::ptr::null(),
                ),
            )?;
            step(
                b"runtime dir rw",
                libc::mount(
                    null,
                    l.box_runtime.as_ptr(),
                    null,
                    MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV,
                    std::ptr::null(),
                ),
            )?;
            if let Some(target) = &self.resolv_target {
                for d in &self.resolv_mkdirs {
                    if libc::mkdir(d.as_ptr(), 0o755) != 0
                        && *libc::__errno_location() != libc::EEXIST
                    {
                        step(b"mkdir for resolv.conf", -1)?;
                    }
                }
                if self.resolv_create {
                    let fd = libc::open(
                        target.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o644,
                    );
                    step(b"create resolv.conf target", fd)?;
                    libc::close(fd);
                }
                step(
                    b"bind resolv.conf",
                    libc::mount(
                        fd_path(&mut buf, rs),
                        target.as_ptr(),
                        null,
                        MS_BIND,
                        std::ptr::null(),
                    ),
                )?;
                step(
                    b"resolv.conf rw",
                    libc::mount(
                        null,
                        target.as_ptr(),
                        null,
                        MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        std::ptr::null(),
                    ),
                )?;
            }
            libc::close(rt);
            libc::close(rs);
            // The box's own sysctls (this netns only) stay writable, the rest of /proc not.
            if libc::mount(
                l.proc_sys_net.as_ptr(),
                l.proc_sys_net.as_ptr(),
                null,
                MS_BIND,
                std::ptr::null(),
            ) == 0
            {
                libc::mount(
                    null,
                    l.proc_sys_net.as_ptr(),
                    null,
                    MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    std::ptr::null(),
                );
            }
            lo_up()?;
            step(
                b"no_new_privs",
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            )?;
            for cap in 0..64u32 {
                if KEEP_CAPS.contains(&cap) {
                    continue;
                }
                if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0
                    && *libc::__errno_location() != libc::EINVAL
                {
                    step(b"drop capabilities", -1)?;
                }
            }
        }
        Ok(())
    }
}

/// On failure: name the step on stderr (async-signal-safe `write`) and return the errno.
fn step(what: &[u8], rc: libc::c_int) -> io::Result<()> {
    if rc >= 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    let prefix = b"wifi-isolate netns box: failed to ";
    // SAFETY: write(2) on stderr with valid buffers.
    unsafe {
        libc::write(2, prefix.as_ptr().cast(), prefix.len());
        libc::write(2, what.as_ptr().cast(), what.len());
        libc::write(2, b"\n".as_ptr().cast(), 1);
    }
    Err(err)
}

/// `/proc/self/fd/N` into `buf`, NUL-terminated, without allocating.
fn fd_path(buf: &mut [u8; 32], fd: RawFd) -> *const libc::c_char {
    let prefix = b"/proc/self/fd/";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let mut n = fd.max(0) as u32;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[prefix.len() + i] = digits[len - 1 - i];
    }
    buf[prefix.len() + len] = 0;
    buf.as_ptr().cast()
}

/// `struct mount_attr` (linux/mount.h).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}
const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// Recursively set (or clear) read-only on the mount tree at `path`.
fn setattr_rdonly(path: &CString, rdonly: bool) -> libc::c_int {
    let attr = MountAttr {
        attr_set: if rdonly { MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: if rdonly { 0 } else { MOUNT_ATTR_RDONLY },
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr(2) with a valid path and attr struct.
    unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        ) as libc::c_int
    }
}

/// `ip link set lo up`, with an ioctl (no netlink, no allocation).
fn lo_up() -> io::Result<()> {
    // SAFETY: socket + ioctl on a zeroed ifreq; the fd is closed on every path.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        step(b"open a socket for lo", s)?;
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as libc::c_char;
        ifr.ifr_name[1] = b'o' as libc::c_char;
        let mut rc = libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr);
        if rc == 0 {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            rc = libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr);
        }
        let r = step(b"bring lo up", rc);
        libc::close(s);
        r
    }
}

/// Where a bind over the box's `/etc/resolv.conf` must go.
///
/// `/etc/resolv.conf` is often a symlink (systemd-resolved: `../run/systemd/resolve/…`). A mount
/// follows it, so the bind goes on the final target; when that is under `/run` it lives in the
/// box's fresh tmpfs and is created there (with its directories). Without any `/etc/resolv.conf`
/// on the host there is nothing to mount over (the read-only `/etc` cannot take a new file): the
/// box then has none, and the agent should be pointed at `/run/wifi-isolate/resolv.conf`.
fn resolv_target() -> Result<(Option<CString>, Vec<CString>, bool)> {
    let mut p = PathBuf::from("/etc/resolv.conf");
    for _ in 0..16 {
        match std::fs::symlink_metadata(&p) {
            Ok(md) if md.file_type().is_symlink() => {
                let link = std::fs::read_link(&p)
                    .map_err(|e| EngineError::io(format!("reading link {}", p.display()), e))?;
                let base = p.parent().unwrap_or(Path::new("/")).to_path_buf();
                p = normalize(&base.join(link));
                // /var/run is a symlink to /run on every current distribution.
                if let Ok(rest) = p.strip_prefix("/var/run") {
                    p = Path::new("/run").join(rest);
                }
            }
            Ok(_) => break,
            Err(_) => break,
        }
    }
    if let Ok(rest) = p.strip_prefix("/run") {
        let mut dirs = Vec::new();
        let mut cur = PathBuf::from("/run");
        let comps: Vec<_> = rest.components().collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            cur.push(c);
            dirs.push(cstr(cur.as_os_str().as_bytes())?);
        }
        if comps.is_empty() {
            return Ok((None, Vec::new(), false));
        }
        return Ok((Some(cstr(p.as_os_str().as_bytes())?), dirs, true));
    }
    if std::fs::metadata(&p).is_ok_and(|m| m.is_file()) {
        return Ok((Some(cstr(p.as_os_str().as_bytes())?), Vec::new(), false));
    }
    warn!(path = %p.display(), "no /etc/resolv.conf to bind over; the box gets none");
    Ok((None, Vec::new(), false))
}

/// Lexical `..`/`.` resolution.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_paths() {
        let mut b = [0u8; 32];
        for (fd, want) in [
            (0, "/proc/self/fd/0"),
            (7, "/proc/self/fd/7"),
            (1234, "/proc/self/fd/1234"),
        ] {
            let p = fd_path(&mut b, fd);
            let s = unsafe { std::ffi::CStr::from_ptr(p) };
            assert_eq!(s.to_str().unwrap(), want);
        }
    }

    #[test]
    fn normalizes() {
        assert_eq!(
            normalize(Path::new("/etc/../run/systemd/resolve/stub-resolv.conf")),
            PathBuf::from("/run/systemd/resolve/stub-resolv.conf")
        );
        assert_eq!(normalize(Path::new("/a/./b/../../..")), PathBuf::from("/"));
    }

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
