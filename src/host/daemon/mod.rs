//! `wifi-isolate run IFACE` as a visible state machine:
//! resolve → unmanage → box → move → ready → serve → release.
//!
//! Each step records what it did in an [`Isolation`]; [`Daemon::release`] walks the inverses
//! (move the phy home, remove the box, give the device back to NetworkManager) and keeps going
//! past errors, collecting them. A step that fails releases what the earlier steps did, so a
//! failed start leaves nothing behind. The record is also written to a state file outside the
//! box, so a daemon restarted after a crash can clean up what its predecessor left.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use super::agent_socket::{AgentSocket, AgentSocketError};
use super::config::Settings;
use super::engine::{BoxExit, BoxHandle, BoxSpec, Engine, EngineError};
use super::nm::{NetworkManager, NmError};
use super::wiphy::{Wiphy, WiphyError, Wiphys};
use crate::logging::msgid;

/// Exit status for "this can never work" (systemd's `RestartPreventExitStatus=`): not wireless,
/// no such device, driver cannot change namespace, bad configuration. EX_CONFIG from sysexits.h.
pub const EXIT_NEVER_WORKS: u8 = 78;

/// Where the daemon keeps its files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `/run/wifi-isolate` by default.
    pub root: PathBuf,
    /// Where `enable` writes the adapters' local udev rules (`/etc/udev/rules.d`).
    pub rules_dir: PathBuf,
}

impl Paths {
    /// The runtime root `root` and the system's udev rules dir.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Paths {
            root: root.into(),
            rules_dir: PathBuf::from(super::udev::RULES_DIR),
        }
    }

    /// Whether `iface` is enabled for isolation (`wifi-isolate enable`): its udev rule keeps
    /// NetworkManager off it, also after a stop.
    pub fn enabled(&self, iface: &str) -> bool {
        crate::validate::IfaceName::parse(iface)
            .is_ok_and(|i| super::udev::rule_file(&self.rules_dir, &i).exists())
    }

    /// The host dir bind-mounted into the box at `/run/wifi-isolate`: only the agent's socket
    /// (and the box's resolv.conf) live there. Box dirs have a level of their own
    /// (`<root>/box/INSTANCE`), so no instance name (`state`, `hold`, `config`, `.netns`) can
    /// collide with the rest of the runtime layout.
    pub fn box_dir(&self, instance: &str) -> PathBuf {
        self.root.join("box").join(instance)
    }

    /// The agent's MCP socket as the host sees it.
    pub fn agent_socket(&self, instance: &str) -> PathBuf {
        self.box_dir(instance).join("mcp.sock")
    }

    /// The state file (outside the box's reach).
    pub fn state_file(&self, instance: &str) -> PathBuf {
        self.root.join("state").join(format!("{instance}.json"))
    }

    /// The per-wiphy lock: two instances never fight over one phy.
    pub fn wiphy_lock(&self, index: u32) -> PathBuf {
        self.root.join("state").join(format!("wiphy{index}.lock"))
    }

    /// The per-instance lock.
    pub fn instance_lock(&self, instance: &str) -> PathBuf {
        self.root.join("state").join(format!("{instance}.lock"))
    }

    /// The hold file the udev rule tests: while it exists, the interface's return to the host
    /// (an *add* uevent) does not start the instance again.
    pub fn hold_file(&self, iface: &str) -> PathBuf {
        self.root.join("hold").join(iface)
    }

    /// Hold `iface` in the host: a stop the user asked for (or a start that can never work)
    /// must not be undone by udev when the phy comes home.
    pub fn hold(&self, iface: &str) {
        let path = self.hold_file(iface);
        let done = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, b""));
        if let Err(e) = done {
            warn!(
                IFACE = iface,
                "cannot write the hold file {}: {e}",
                path.display()
            );
        }
    }

    /// Lift the hold on `iface` (a start the user asked for).
    pub fn unhold(&self, iface: &str) {
        let path = self.hold_file(iface);
        match std::fs::remove_file(&path) {
            Ok(()) => info!(IFACE = iface, "hold lifted"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warn!(
                IFACE = iface,
                "cannot remove the hold file {}: {e}",
                path.display()
            ),
        }
    }
}

/// What `run` has done so far (and what release must undo). Persisted as the state file.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Isolation {
    /// The instance name given by the user.
    pub instance: String,
    /// The daemon that did it.
    pub daemon_pid: u32,
    /// Wiphy index (never reused by the kernel until reboot).
    pub phy_index: u32,
    /// Wiphy name (`phy0`).
    pub phy_name: String,
    /// The interface name in the host before the move (restored on release).
    pub iface: String,
    /// NetworkManager's `Managed` before we changed it; `None` if we did not change it.
    pub nm_previous: Option<bool>,
    /// The box, once started: engine, id, name, pid, netns path.
    pub box_engine: Option<String>,
    /// Container id or netns `PID:STARTTIME`.
    pub box_id: Option<String>,
    /// `wifi-isolate-INSTANCE`.
    pub box_name: Option<String>,
    /// A process in the box's netns.
    pub box_pid: Option<u32>,
    /// The host uid the box's root runs as (its agent socket's owner).
    #[serde(default)]
    pub box_uid: Option<u32>,
    /// The box's netns path.
    pub box_netns: Option<PathBuf>,
    /// Whether the phy was moved into the box.
    pub moved: bool,
    /// Our handle on the box's netns, taken at the move: it keeps the netns (and the phy in it)
    /// alive when the box dies, so release always brings the phy home explicitly, under its
    /// name, instead of relying on the netns dying.
    #[serde(skip)]
    pub netns_handle: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
}

impl Isolation {
    /// The path through which the box's netns can be opened: our handle, else the recorded path.
    pub fn netns_path(&self) -> PathBuf {
        match &self.netns_handle {
            Some(fd) => PathBuf::from(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(fd.as_ref())
            )),
            None => self.box_netns.clone().unwrap_or_default(),
        }
    }

    fn handle(&self) -> Option<BoxHandle> {
        Some(BoxHandle {
            engine: self.box_engine.as_deref()?.parse().ok()?,
            id: self.box_id.clone()?,
            name: self.box_name.clone()?,
            pid: self.box_pid?,
            netns_path: self.box_netns.clone()?,
            uid: self.box_uid.unwrap_or(0),
        })
    }
}

/// Why `run` stopped before or during serving.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The adapter cannot be resolved, is not wireless, or its driver cannot change namespace.
    #[error(transparent)]
    Wiphy(#[from] WiphyError),
    /// Another instance holds this phy.
    #[error("{0}")]
    Busy(String),
    /// The box could not be started.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The agent never answered.
    #[error("the agent did not answer on {socket} within {secs} s (see the box's log)")]
    AgentTimeout {
        /// The socket polled.
        socket: PathBuf,
        /// The timeout.
        secs: u64,
    },
    /// The box ended on its own.
    #[error("the box {name} {exit}; bringing the adapter home")]
    BoxExited {
        /// Box name.
        name: String,
        /// How it ended.
        exit: BoxExit,
    },
    /// The kernel has no wireless stack (no cfg80211 / nl80211).
    #[error(
        "this kernel has no wireless support (no nl80211: {0}); load it with `modprobe cfg80211` or use a kernel with WiFi drivers"
    )]
    NoWirelessStack(String),
    /// The phy was moved out of the box by someone else.
    #[error("{phy} left the box without us (moved back to the host from inside?); releasing")]
    LeftTheBox {
        /// The phy name.
        phy: String,
    },
    /// The phy has no network interface to hand over.
    #[error(
        "{phy} has no network interface; create one with `iw phy {phy} interface add wlan0 type managed`"
    )]
    NoInterface {
        /// The phy name.
        phy: String,
    },
    /// Anything else (I/O on our own files).
    #[error("{0}")]
    Other(String),
}

impl RunError {
    /// Errors that a restart cannot fix (mapped to [`EXIT_NEVER_WORKS`]).
    pub fn never_works(&self) -> bool {
        matches!(
            self,
            RunError::Wiphy(
                WiphyError::NotWireless { .. }
                    | WiphyError::NetnsUnsupported { .. }
                    | WiphyError::NoSuchDevice { .. }
            ) | RunError::NoInterface { .. }
                | RunError::NoWirelessStack(_)
        )
    }
}

/// How serving ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// SIGTERM/SIGINT: a stop the user asked for.
    Stopped,
    /// The wiphy disappeared (unplugged): nothing to bring home.
    Unplugged,
}

/// Progress and readiness reports (sd_notify in production; recorded in tests).
pub trait Notifier: Send + Sync {
    /// `STATUS=`.
    fn status(&self, text: &str);
    /// `READY=1` with a `STATUS=`.
    fn ready(&self, text: &str);
    /// `STOPPING=1`.
    fn stopping(&self);
    /// `WATCHDOG=1`.
    fn watchdog(&self);
}

/// The sd_notify notifier (does nothing without `NOTIFY_SOCKET`).
pub struct SdNotify;

impl Notifier for SdNotify {
    fn status(&self, text: &str) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(text)]);
    }
    fn ready(&self, text: &str) {
        let _ = sd_notify::notify(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(text),
        ]);
    }
    fn stopping(&self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    }
    fn watchdog(&self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
    }
}

/// An exclusive, non-blocking `flock` held for the daemon's lifetime (released on exit, even
/// on SIGKILL).
pub struct Lock {
    _file: nix::fcntl::Flock<std::fs::File>,
}

impl Lock {
    /// Take the lock at `path` or say that another instance holds it.
    pub fn take(path: &Path, what: &str) -> Result<Self, RunError> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)
                .map_err(|e| RunError::Other(format!("{}: {e}", d.display())))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| RunError::Other(format!("{}: {e}", path.display())))?;
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(f) => Ok(Self { _file: f }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(RunError::Busy(format!(
                "{what} is already isolated by another wifi-isolate instance (lock {})",
                path.display()
            ))),
            Err((_, e)) => Err(RunError::Other(format!("locking {}: {e}", path.display()))),
        }
    }
}

/// The daemon over its OS capabilities.
pub struct Daemon<W, N, E, S> {
    /// nl80211.
    pub wiphys: W,
    /// NetworkManager.
    pub nm: N,
    /// The box runtime.
    pub engine: E,
    /// sd_notify.
    pub notify: S,
    /// Settings.
    pub settings: Settings,
    /// Files.
    pub paths: Paths,
}

impl<W: Wiphys, N: NetworkManager, E: Engine, S: Notifier> Daemon<W, N, E, S> {
    fn save(&self, iso: &Isolation) {
        let path = self.paths.state_file(&iso.instance);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().expect("state dir"))?;
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(iso)?)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            warn!(path = %path.display(), cause = %e, "cannot write the state file");
        }
    }

    /// Step 1: resolve the name to its wiphy; refuse what can never work.
    pub async fn resolve(&self, instance: &str) -> Result<(Wiphy, String), RunError> {
        let phy = match self.wiphys.resolve(instance).await {
            Err(WiphyError::Netlink(e))
                if !std::path::Path::new("/sys/class/ieee80211").exists() =>
            {
                return Err(RunError::NoWirelessStack(e));
            }
            r => r?,
        };
        if !phy.netns_ok {
            return Err(WiphyError::NetnsUnsupported {
                phy: phy.name.clone(),
            }
            .into());
        }
        let iface = phy
            .ifaces
            .iter()
            .find(|i| i.name == instance)
            .or_else(|| phy.ifaces.first())
            .map(|i| i.name.clone())
            .ok_or_else(|| RunError::NoInterface {
                phy: phy.name.clone(),
            })?;
        Ok((phy, iface))
    }

    /// Step 2: unblock rfkill, and tell NetworkManager to leave the device alone (runtime only).
    pub async fn unmanage(&self, iso: &mut Isolation) -> Result<(), RunError> {
        match super::rfkill::unblock_phy(&iso.phy_name) {
            Ok(true) => info!(IFACE = %iso.iface, PHY = %iso.phy_name, "rfkill soft block lifted"),
            Ok(false) => {}
            Err(e) => warn!(PHY = %iso.phy_name, cause = %e, "rfkill"),
        }
        match self.nm.managed(&iso.iface).await {
            Ok(was) => {
                if was {
                    self.nm.set_managed(&iso.iface, false).await.map_err(|e| {
                        RunError::Other(format!(
                            "NetworkManager refused to unmanage {}: {e}",
                            iso.iface
                        ))
                    })?;
                }
                iso.nm_previous = Some(was);
                info!(MESSAGE_ID = msgid::UNMANAGE, IFACE = %iso.iface, was_managed = was, "NetworkManager leaves the device alone");
            }
            Err(NmError::NotRunning) => {
                info!(IFACE = %iso.iface, "NetworkManager is not running; nothing to unmanage")
            }
            Err(NmError::NoDevice { .. }) => {
                info!(IFACE = %iso.iface, "NetworkManager does not know the device")
            }
            Err(e) => {
                warn!(IFACE = %iso.iface, cause = %e, "NetworkManager query failed; carrying on")
            }
        }
        Ok(())
    }

    /// The box the settings ask for.
    pub fn box_spec(&self, iso: &Isolation) -> BoxSpec {
        let a = &self.settings.agent;
        let mut agent_args = vec![
            "--listen".to_string(),
            "unix:/run/wifi-isolate/mcp.sock".to_string(),
            "--interface".to_string(),
            iso.iface.clone(),
            "--runtime-dir".to_string(),
            "/run/wifi-isolate-agent".to_string(),
        ];
        if let Some(c) = &a.country {
            agent_args.extend(["--country".to_string(), c.clone()]);
        }
        if let Some(u) = &a.check_url {
            agent_args.extend(["--check-url".to_string(), u.clone()]);
        }
        BoxSpec {
            instance: iso.instance.clone(),
            image: self.settings.engine.image.clone(),
            runtime_dir: self.paths.box_dir(&iso.instance),
            agent_args,
            agent_path: a.path.clone(),
            memory_bytes: self.settings.engine.memory_mb * 1024 * 1024,
            pids_limit: self.settings.engine.pids_limit,
            env: vec![("WIFI_ISOLATE_LOG".into(), a.log.clone())],
            certs_dir: Some(
                self.settings
                    .engine
                    .certs_dir
                    .to_string_lossy()
                    .replace("INSTANCE", &iso.instance)
                    .into(),
            )
            .filter(|d: &PathBuf| d.is_dir()),
            box_uid: self.settings.engine.box_uid,
        }
    }

    /// Step 3: start the box.
    pub async fn start_box(&self, iso: &mut Isolation) -> Result<BoxHandle, RunError> {
        let dir = self.paths.box_dir(&iso.instance);
        std::fs::create_dir_all(&dir)
            .map_err(|e| RunError::Other(format!("{}: {e}", dir.display())))?;
        let _ = std::fs::remove_file(self.paths.agent_socket(&iso.instance));
        let spec = self.box_spec(iso);
        let t = Duration::from_secs(self.settings.timeouts.box_start);
        let h = tokio::time::timeout(t, self.engine.start(&spec))
            .await
            .map_err(|_| {
                RunError::Other(format!("the box did not start within {} s", t.as_secs()))
            })??;
        iso.box_engine = Some(h.engine.to_string());
        iso.box_id = Some(h.id.clone());
        iso.box_name = Some(h.name.clone());
        iso.box_pid = Some(h.pid);
        iso.box_uid = Some(h.uid);
        iso.box_netns = Some(h.netns_path.clone());
        self.save(iso);
        info!(IFACE = %iso.iface, BOX = %format!("{}:{}", h.engine, h.name), pid = h.pid, "box started");
        Ok(h)
    }

    /// Step 4: move the wiphy into the box's netns (by FD).
    pub async fn move_in(&self, iso: &mut Isolation, h: &BoxHandle) -> Result<(), RunError> {
        let fd = std::fs::File::open(&h.netns_path).map_err(|e| {
            RunError::Other(format!(
                "opening the box's netns {}: {e}",
                h.netns_path.display()
            ))
        })?;
        self.wiphys.move_to_netns(iso.phy_index, fd.as_fd()).await?;
        iso.moved = true;
        iso.netns_handle = Some(std::sync::Arc::new(std::os::fd::OwnedFd::from(fd)));
        self.save(iso);
        info!(MESSAGE_ID = msgid::MOVE_IN, IFACE = %iso.iface, PHY = %iso.phy_name, BOX = %h.name, "phy moved into the box");
        Ok(())
    }

    /// Step 5: wait until the agent answers on its socket.
    pub async fn wait_ready(&self, iso: &Isolation, h: &BoxHandle) -> Result<(), RunError> {
        let socket = self.paths.agent_socket(&iso.instance);
        let secs = self.settings.timeouts.agent_ready;
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if agent_answers(&socket, h.uid)
                .await
                .map_err(|e| RunError::Other(e.to_string()))?
            {
                return Ok(());
            }
            if !self.engine.is_running(h).await {
                return Err(RunError::BoxExited {
                    name: h.name.clone(),
                    exit: BoxExit::Vanished,
                });
            }
            if Instant::now() >= deadline {
                return Err(RunError::AgentTimeout { socket, secs });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Steps 1-5. On failure everything done so far is undone before the error returns.
    pub async fn isolate(&self, instance: &str) -> Result<(Isolation, BoxHandle), RunError> {
        self.notify.status(&format!("{instance}: resolving"));
        let (phy, iface) = self.resolve(instance).await?;
        self.isolate_resolved(instance, phy, iface).await
    }

    /// Steps 2-5 for a wiphy [`Daemon::resolve`] already found (and the caller locked).
    pub async fn isolate_resolved(
        &self,
        instance: &str,
        phy: Wiphy,
        iface: String,
    ) -> Result<(Isolation, BoxHandle), RunError> {
        let mut iso = Isolation {
            instance: instance.to_string(),
            daemon_pid: std::process::id(),
            phy_index: phy.index,
            phy_name: phy.name.clone(),
            iface,
            ..Default::default()
        };
        self.save(&iso);
        let result = async {
            self.notify
                .status(&format!("{} ({}): unmanaging", iso.iface, iso.phy_name));
            self.unmanage(&mut iso).await?;
            self.notify.status(&format!(
                "{} ({}): starting the box",
                iso.iface, iso.phy_name
            ));
            let h = self.start_box(&mut iso).await?;
            self.notify.status(&format!(
                "{} ({}): moving into {}",
                iso.iface, iso.phy_name, h.name
            ));
            self.move_in(&mut iso, &h).await?;
            self.notify.status(&format!(
                "{} ({}): waiting for the agent",
                iso.iface, iso.phy_name
            ));
            self.wait_ready(&iso, &h).await?;
            Ok::<_, RunError>(h)
        }
        .await;
        match result {
            Ok(h) => Ok((iso, h)),
            Err(e) => {
                error!(IFACE = %iso.iface, cause = %e, "isolation failed; undoing");
                for te in self.release(&iso).await {
                    error!(IFACE = %iso.iface, cause = %te, "undo step failed");
                }
                Err(e)
            }
        }
    }

    /// Step 7: undo everything, in reverse, keeping going past errors. Returns the errors.
    pub async fn release(&self, iso: &Isolation) -> Vec<String> {
        let mut errors = Vec::new();
        let h = iso.handle();
        // A rootful box (podman/docker: CAP_NET_ADMIN over the host's user namespace) must be
        // gone before the phy leaves it: the move gives the box's netns an id for the host's
        // netns, through which such a box could create links in the host (IFLA_TARGET_NETNSID).
        // Our handle keeps the box's netns, and the phy in it, alive meanwhile. The netns box
        // has no capability outside its own user namespace: it keeps the fast order.
        let rootful = h.as_ref().is_some_and(|h| h.uid == 0);
        if rootful && let Some(h) = &h {
            self.remove_box(h, &mut errors).await;
        }
        if iso.moved {
            self.move_home(iso, &mut errors).await;
        }
        if !rootful && let Some(h) = &h {
            self.remove_box(h, &mut errors).await;
        }
        if let Some(prev) = iso.nm_previous {
            if prev && self.paths.enabled(&iso.iface) {
                info!(MESSAGE_ID = msgid::RESTORE, IFACE = %iso.iface, "enabled for isolation: NetworkManager stays off it (wifi-isolate disable gives it back)");
            } else if prev {
                match self.nm.set_managed(&iso.iface, true).await {
                    Ok(()) => {
                        info!(MESSAGE_ID = msgid::RESTORE, IFACE = %iso.iface, "NetworkManager manages the device again")
                    }
                    Err(NmError::NotRunning) => {
                        info!(IFACE = %iso.iface, "NetworkManager gone; nothing to restore")
                    }
                    Err(e) => errors.push(format!(
                        "restoring NetworkManager management of {}: {e}",
                        iso.iface
                    )),
                }
            } else {
                info!(MESSAGE_ID = msgid::RESTORE, IFACE = %iso.iface, "NetworkManager did not manage it before; left unmanaged");
            }
        }
        let _ = std::fs::remove_file(self.paths.agent_socket(&iso.instance));
        if errors.is_empty() {
            let _ = std::fs::remove_file(self.paths.state_file(&iso.instance));
        } else {
            self.save(iso);
        }
        errors
    }

    /// Release step: stop and remove the box.
    async fn remove_box(&self, h: &BoxHandle, errors: &mut Vec<String>) {
        let t = Duration::from_secs(self.settings.timeouts.box_stop + 10);
        match tokio::time::timeout(t, self.engine.stop_remove(h)).await {
            Ok(Ok(())) => info!(BOX = %h.name, "box removed"),
            Ok(Err(e)) => errors.push(format!("removing box {}: {e}", h.name)),
            Err(_) => errors.push(format!("removing box {} timed out", h.name)),
        }
    }

    /// Release step: bring the phy home explicitly, under its name.
    async fn move_home(&self, iso: &Isolation, errors: &mut Vec<String>) {
        let netns = iso.netns_path();
        let host = match super::wiphy::current_netns() {
            Ok(host) => host,
            Err(e) => return errors.push(format!("opening the host netns: {e}")),
        };
        let t0 = Instant::now();
        match self
            .wiphys
            .move_back(iso.phy_index, &netns, host.as_fd(), Some(&iso.iface))
            .await
        {
            Ok(name) => {
                info!(MESSAGE_ID = msgid::MOVE_OUT, IFACE = %name, PHY = %iso.phy_name, ms = t0.elapsed().as_millis() as u64, "phy brought home");
                if name != iso.iface {
                    errors.push(format!(
                        "{} came home as {name} (its name was taken)",
                        iso.phy_name
                    ));
                }
            }
            Err(e) if matches!(e, WiphyError::PhyGone { .. }) || !netns.exists() => {
                // Not in the box and not in the host: unplugged, or on its way home
                // (the box's netns is gone: the kernel hands the phy back itself).
                if !self.wait_home(iso.phy_index).await {
                    warn!(PHY = %iso.phy_name, "phy not found anywhere (unplugged?)");
                }
            }
            Err(e) => errors.push(format!("moving {} home: {e}", iso.phy_name)),
        }
    }

    /// After a box dies, its netns hands the phy back on its own within ~0.5 s.
    async fn wait_home(&self, phy: u32) -> bool {
        for _ in 0..40 {
            if self.wiphys.exists(phy, None).await.unwrap_or(false) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Clean up what a crashed predecessor left (state file, leftover boxes). Returns what was
    /// done, for the log.
    pub async fn recover(&self, instance: &str) -> Vec<String> {
        let mut notes = Vec::new();
        let path = self.paths.state_file(instance);
        if let Ok(text) = std::fs::read(&path) {
            match serde_json::from_slice::<Isolation>(&text) {
                Ok(old) if old.daemon_pid != std::process::id() => {
                    notes.push(format!(
                        "found the state of an earlier run (pid {}): cleaning up",
                        old.daemon_pid
                    ));
                    let mut old = old;
                    // The phy may be in the box or already home; move_back handles both.
                    old.moved = true;
                    for e in self.release(&old).await {
                        notes.push(format!("cleanup: {e}"));
                    }
                }
                Ok(_) => {}
                Err(e) => notes.push(format!("ignoring an unreadable state file: {e}")),
            }
            let _ = std::fs::remove_file(&path);
        }
        match self.engine.find_existing(instance).await {
            Ok(boxes) => {
                for b in boxes {
                    notes.push(format!("removing leftover box {} ({})", b.name, b.id));
                    if let Err(e) = self.engine.stop_remove(&b).await {
                        notes.push(format!("cleanup: removing {}: {e}", b.name));
                    }
                }
            }
            Err(e) => notes.push(format!("cannot list leftover boxes: {e}")),
        }
        notes
    }

    /// Step 6: supervise until a stop is asked for, the box ends, or the phy disappears.
    pub async fn supervise(
        &self,
        iso: &Isolation,
        h: &BoxHandle,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<Ending, RunError> {
        let watchdog = sd_notify::watchdog_enabled();
        let mut wd =
            tokio::time::interval(watchdog.map(|d| d / 2).unwrap_or(Duration::from_secs(3600)));
        let mut unplug = tokio::time::interval(Duration::from_millis(500));
        let netns = iso.netns_path();
        let mut missing = 0u32;
        tokio::pin!(stop);
        let exit = self.engine.wait(h);
        tokio::pin!(exit);
        loop {
            tokio::select! {
                _ = &mut stop => return Ok(Ending::Stopped),
                r = &mut exit => {
                    let exit = r.unwrap_or(BoxExit::Vanished);
                    return Err(RunError::BoxExited { name: h.name.clone(), exit });
                }
                _ = wd.tick() => if watchdog.is_some() { self.notify.watchdog() },
                _ = unplug.tick() => {
                    // Two separate looks: at home (moved back behind our back), and in the box.
                    let in_host = self.wiphys.exists(iso.phy_index, None).await.unwrap_or(false);
                    let in_box = !in_host
                        && !matches!(
                            self.wiphys.locate(iso.phy_index, &netns).await,
                            Err(WiphyError::PhyGone { .. })
                        );
                    missing = if in_box || in_host { 0 } else { missing + 1 };
                    if missing >= 3 {
                        return Ok(Ending::Unplugged);
                    }
                    if in_host {
                        return Err(RunError::LeftTheBox { phy: iso.phy_name.clone() });
                    }
                }
            }
        }
    }
}

/// The readiness probe: the agent socket passes [`AgentSocket`]'s checks (a socket owned by and
/// listened on by `uid`, never a symlink) and answers HTTP. `Ok(false)`: not there (yet) or not
/// answering; `Err`: refused — waiting will not cure it.
pub async fn agent_answers(socket: &Path, uid: u32) -> Result<bool, AgentSocketError> {
    let probe = match AgentSocket::open(socket, uid) {
        Ok(s) => s.answers().await,
        Err(e) => Err(e),
    };
    match probe {
        Ok(()) => Ok(true),
        Err(e) if e.is_refusal() => Err(e),
        Err(_) => Ok(false),
    }
}

/// The `STATUS=` line while serving.
pub fn status_line(iso: &Isolation, h: &BoxHandle, detail: &str) -> String {
    format!(
        "{} ({}) isolated in {}:{} — {detail}",
        iso.iface, iso.phy_name, h.engine, h.name
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::host::engine::{EngineKind, Result as EResult};
    use crate::host::nm::fake::{FakeNm, NmFailure};
    use crate::host::wiphy::fake::{FakeWiphys, Op, Place};

    /// A recording engine: boxes are `sleep` processes in fresh netns-less children, so a real
    /// `/proc/PID/ns/net` exists for the move step to open.
    #[derive(Clone, Default)]
    struct FakeEngine {
        calls: Arc<Mutex<Vec<String>>>,
        fail_start: Arc<Mutex<bool>>,
        running: Arc<Mutex<Vec<String>>>,
        /// The uid of the boxes it starts (0: a rootful container).
        uid: u32,
        /// Where phy 3 was each time a box was stopped.
        watch: Option<FakeWiphys>,
        phy_at_stop: Arc<Mutex<Vec<Option<Place>>>>,
    }

    impl Engine for FakeEngine {
        fn kind(&self) -> EngineKind {
            EngineKind::Netns
        }
        async fn start(&self, spec: &BoxSpec) -> EResult<BoxHandle> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("start {}", spec.instance));
            if *self.fail_start.lock().unwrap() {
                return Err(EngineError::Spawn("no engine today".into()));
            }
            self.running.lock().unwrap().push(spec.box_name());
            // Pretend the agent answers: a listener on the agent socket.
            let sock = spec.runtime_dir.join("mcp.sock");
            let l = tokio::net::UnixListener::bind(&sock).expect("bind fake agent");
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                while let Ok((mut s, _)) = l.accept().await {
                    let _ = s
                        .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                        .await;
                }
            });
            Ok(BoxHandle {
                engine: EngineKind::Netns,
                id: "1:1".into(),
                name: spec.box_name(),
                pid: std::process::id(),
                netns_path: "/proc/self/ns/net".into(),
                uid: self.uid,
            })
        }
        async fn wait(&self, _h: &BoxHandle) -> EResult<BoxExit> {
            std::future::pending().await
        }
        async fn stop_remove(&self, h: &BoxHandle) -> EResult<()> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("stop_remove {}", h.name));
            if let Some(w) = &self.watch {
                self.phy_at_stop.lock().unwrap().push(w.place(3));
            }
            self.running.lock().unwrap().retain(|n| n != &h.name);
            Ok(())
        }
        async fn find_existing(&self, _instance: &str) -> EResult<Vec<BoxHandle>> {
            Ok(vec![])
        }
        async fn is_running(&self, h: &BoxHandle) -> bool {
            self.running.lock().unwrap().contains(&h.name)
        }
    }

    #[derive(Default)]
    struct Notes(Mutex<Vec<String>>);
    impl Notifier for Notes {
        fn status(&self, t: &str) {
            self.0.lock().unwrap().push(format!("STATUS={t}"));
        }
        fn ready(&self, t: &str) {
            self.0.lock().unwrap().push(format!("READY=1 {t}"));
        }
        fn stopping(&self) {
            self.0.lock().unwrap().push("STOPPING=1".into());
        }
        fn watchdog(&self) {}
    }

    fn daemon(
        root: &Path,
        w: FakeWiphys,
        nm: FakeNm,
        e: FakeEngine,
    ) -> Daemon<FakeWiphys, FakeNm, FakeEngine, Notes> {
        let mut settings = Settings::default();
        settings.timeouts.agent_ready = 2;
        Daemon {
            wiphys: w,
            nm,
            engine: e,
            notify: Notes::default(),
            settings,
            paths: Paths {
                root: root.to_path_buf(),
                rules_dir: root.join("rules.d"),
            },
        }
    }

    fn lab() -> (tempfile::TempDir, FakeWiphys, FakeNm, FakeEngine) {
        (
            tempfile::tempdir().unwrap(),
            FakeWiphys::new()
                .with_wiphy(FakeWiphys::wiphy(3, "phy3", "wlan1"))
                .with_netdev("eth0"),
            FakeNm::running().with_device("wlan1", true),
            FakeEngine::default(),
        )
    }

    #[tokio::test]
    async fn an_enabled_adapter_stays_away_from_networkmanager_after_release() {
        let (dir, w, nm, e) = lab();
        let d = daemon(dir.path(), w, nm.clone(), e);
        let wlan1 = crate::validate::IfaceName::parse("wlan1").unwrap();
        std::fs::create_dir_all(&d.paths.rules_dir).unwrap();
        std::fs::write(
            super::super::udev::rule_file(&d.paths.rules_dir, &wlan1),
            "",
        )
        .unwrap();
        let (iso, _h) = d.isolate("wlan1").await.expect("isolate");
        assert_eq!(iso.nm_previous, Some(true));
        assert!(d.release(&iso).await.is_empty());
        assert_eq!(
            nm.state_of("wlan1"),
            Some(false),
            "enabled: NM stays off it"
        );
    }

    #[tokio::test]
    async fn isolate_and_release_walk_every_step_and_its_inverse() {
        let (dir, w, nm, e) = lab();
        let d = daemon(dir.path(), w.clone(), nm.clone(), e.clone());
        let (iso, h) = d.isolate("wlan1").await.expect("isolate");
        assert!(iso.moved);
        assert_eq!(w.place(3), Some(Place::Boxed));
        assert_eq!(nm.state_of("wlan1"), Some(false), "NM told to leave it");
        assert!(d.paths.state_file("wlan1").exists());
        assert!(e.is_running(&h).await);
        let errors = d.release(&iso).await;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(w.place(3), Some(Place::Host));
        assert_eq!(nm.state_of("wlan1"), Some(true), "NM management restored");
        assert!(!e.is_running(&h).await);
        assert!(!d.paths.state_file("wlan1").exists());
        assert_eq!(
            *e.calls.lock().unwrap(),
            ["start wlan1", "stop_remove wifi-isolate-wlan1"]
        );
    }

    /// A rootful box (uid 0) is removed before the phy leaves it (the move would give it a
    /// netns id for the host's netns); a netns box (its own uid) after, for a fast return.
    #[tokio::test]
    async fn release_removes_a_rootful_box_before_the_phy_leaves_it() {
        for (uid, want) in [
            (0, Place::Boxed),
            (crate::host::engine::DEFAULT_BOX_UID, Place::Host),
        ] {
            let (dir, w, nm, mut e) = lab();
            e.watch = Some(w.clone());
            let d = daemon(dir.path(), w.clone(), nm, e.clone());
            let (mut iso, _h) = d.isolate("wlan1").await.expect("isolate");
            // (The fake agent listens as root: the box's uid is set for release only.)
            iso.box_uid = Some(uid);
            assert!(d.release(&iso).await.is_empty());
            assert_eq!(w.place(3), Some(Place::Host), "uid {uid}: phy home");
            assert_eq!(*e.phy_at_stop.lock().unwrap(), [Some(want)], "uid {uid}");
        }
    }

    #[tokio::test]
    async fn refuses_what_never_works_and_changes_nothing() {
        let (dir, w, nm, e) = lab();
        let w = w.with_wiphy({
            let mut p = FakeWiphys::wiphy(4, "phy4", "wlan9");
            p.netns_ok = false;
            p
        });
        let d = daemon(dir.path(), w.clone(), nm.clone(), e.clone());
        for (name, never) in [("eth0", true), ("nosuch0", true), ("wlan9", true)] {
            let err = d.isolate(name).await.expect_err(name);
            assert_eq!(err.never_works(), never, "{name}: {err}");
        }
        assert!(e.calls.lock().unwrap().is_empty(), "no box started");
        assert_eq!(nm.state_of("wlan1"), Some(true));
    }

    /// Each step failing in turn leaves nothing behind: the inverse steps ran.
    #[tokio::test]
    async fn every_failing_step_leaves_nothing_behind() {
        // NetworkManager refuses.
        let (dir, w, nm, e) = lab();
        nm.fail_set_managed(NmFailure::DBus("refused".into()));
        let d = daemon(dir.path(), w.clone(), nm.clone(), e.clone());
        assert!(d.isolate("wlan1").await.is_err());
        assert!(e.calls.lock().unwrap().is_empty());
        assert_eq!(w.place(3), Some(Place::Host));

        // The engine fails to start the box: NM restored.
        let (dir, w, nm, e) = lab();
        *e.fail_start.lock().unwrap() = true;
        let d = daemon(dir.path(), w.clone(), nm.clone(), e.clone());
        assert!(d.isolate("wlan1").await.is_err());
        assert_eq!(nm.state_of("wlan1"), Some(true));
        assert_eq!(w.place(3), Some(Place::Host));

        // The move fails: box removed, NM restored.
        let (dir, w, nm, e) = lab();
        w.fail_on(Op::MoveToNetns, || WiphyError::Netlink("EBUSY".into()));
        let d = daemon(dir.path(), w.clone(), nm.clone(), e.clone());
        assert!(d.isolate("wlan1").await.is_err());
        assert!(e.running.lock().unwrap().is_empty(), "box removed");
        assert_eq!(nm.state_of("wlan1"), Some(true));
        assert_eq!(w.place(3), Some(Place::Host));
        assert!(!d.paths.state_file("wlan1").exists());
    }

    #[tokio::test]
    async fn release_keeps_going_past_errors_and_reports_them() {
        let (dir, w, nm, e) = lab();
        let d = daemon(dir.path(), w.clone(), nm.clone(), e.clone());
        let (iso, _h) = d.isolate("wlan1").await.unwrap();
        w.fail_on(Op::MoveBack, || WiphyError::Netlink("EPERM".into()));
        nm.fail_set_managed(NmFailure::DBus("refused".into()));
        let errors = d.release(&iso).await;
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            e.running.lock().unwrap().is_empty(),
            "the box was still removed"
        );
        assert!(
            d.paths.state_file("wlan1").exists(),
            "state kept for a later cleanup"
        );
    }

    #[tokio::test]
    async fn a_restarted_daemon_cleans_up_what_a_crashed_one_left() {
        let (dir, w, nm, e) = lab();
        let d = daemon(dir.path(), w.clone(), nm.clone(), e.clone());
        let (mut iso, _h) = d.isolate("wlan1").await.unwrap();
        // The daemon dies here (SIGKILL): its state file stays. Pretend it was another pid.
        iso.daemon_pid = 1;
        std::fs::write(
            d.paths.state_file("wlan1"),
            serde_json::to_vec(&iso).unwrap(),
        )
        .unwrap();
        let d2 = daemon(dir.path(), w.clone(), nm.clone(), e.clone());
        let notes = d2.recover("wlan1").await;
        assert!(notes.iter().any(|n| n.contains("earlier run")), "{notes:?}");
        assert_eq!(w.place(3), Some(Place::Host));
        assert_eq!(nm.state_of("wlan1"), Some(true));
        assert!(e.running.lock().unwrap().is_empty());
        // And it can isolate again.
        assert!(d2.isolate("wlan1").await.is_ok());
    }

    #[tokio::test]
    async fn supervise_ends_on_stop_and_on_unplug() {
        let (dir, w, nm, e) = lab();
        let d = daemon(dir.path(), w.clone(), nm.clone(), e.clone());
        let (iso, h) = d.isolate("wlan1").await.unwrap();
        let r = d.supervise(&iso, &h, async {}).await.unwrap();
        assert_eq!(r, Ending::Stopped);
        w.unplug(3);
        let r = d.supervise(&iso, &h, std::future::pending()).await.unwrap();
        assert_eq!(r, Ending::Unplugged);
    }

    /// Box dirs live under `box/`: an instance called like a part of the runtime layout
    /// (`state`, `hold`, `config`, `.netns`) or like a listener (`wlan0.sock`) cannot reach it.
    #[test]
    fn box_dirs_have_a_level_of_their_own() {
        let p = Paths::new("/run/wifi-isolate");
        assert_eq!(
            p.agent_socket("wlan0"),
            Path::new("/run/wifi-isolate/box/wlan0/mcp.sock")
        );
        for name in ["state", "hold", "config", ".netns", "wlan0.sock"] {
            let dir = p.box_dir(name);
            assert_eq!(dir.parent(), Some(Path::new("/run/wifi-isolate/box")));
            for other in [
                p.state_file("wlan0"),
                p.instance_lock("wlan0"),
                p.wiphy_lock(0),
                p.hold_file("wlan0"),
                p.root.join("wlan0.sock"),
                p.root.join("config"),
                p.root.join(".netns"),
            ] {
                assert!(
                    !other.starts_with(&dir) && !dir.starts_with(&other),
                    "{} vs {}",
                    dir.display(),
                    other.display()
                );
            }
        }
    }

    #[test]
    fn locks_are_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let a = Lock::take(&p, "phy0").unwrap();
        assert!(matches!(Lock::take(&p, "phy0"), Err(RunError::Busy(_))));
        drop(a);
        assert!(Lock::take(&p, "phy0").is_ok());
    }
}
