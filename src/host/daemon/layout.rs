//! The runtime layout, and its one owner: sockets, box dirs, locks, hold files and the state
//! files that `status`, `doctor`, `enable` and crash recovery read.
//!
//! ```text
//! /run/wifi-isolate/
//!   IFACE.sock            the MCP endpoint (systemd's socket unit, or ours)
//!   box/IFACE/            bind-mounted into the box at /run/wifi-isolate: mcp.sock, resolv.conf,
//!                         networks/ (the saved networks the box may use, for its root alone)
//!   state/IFACE.json      what the daemon did (Isolation), outside the box's reach
//!   state/IFACE.lock      one daemon per instance
//!   state/wiphyN.lock     one daemon per phy
//!   hold/IFACE            a user's stop: udev and the socket do not start it again
//! ```

use std::path::{Path, PathBuf};

use tracing::{info, warn};

use crate::host::files::write_atomic;

use super::{Isolation, RunError};

/// Where the daemon keeps its files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `/run/wifi-isolate` by default.
    pub root: PathBuf,
    /// Where `enable` writes the adapters' local udev rules (`/etc/udev/rules.d`).
    pub rules_dir: PathBuf,
    /// The host's saved networks ([`crate::networks::host_dir`]), copied into each box.
    pub networks_dir: PathBuf,
}

impl Paths {
    /// The runtime root `root` and the system's udev rules dir.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Paths {
            root: root.into(),
            rules_dir: PathBuf::from(crate::host::udev::RULES_DIR),
            networks_dir: crate::networks::host_dir(),
        }
    }

    /// Whether `iface` is enabled for isolation (`wifi-isolate enable`): its udev rule keeps
    /// NetworkManager off it, also after a stop.
    pub fn enabled(&self, iface: &str) -> bool {
        crate::validate::IfaceName::parse(iface)
            .is_ok_and(|i| crate::host::udev::rule_file(&self.rules_dir, &i).exists())
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

    /// The default MCP endpoint of an instance started by hand (systemd's socket unit uses the
    /// same path).
    pub fn endpoint(&self, instance: &str) -> PathBuf {
        self.root.join(format!("{instance}.sock"))
    }

    fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }

    /// The state file (outside the box's reach).
    pub fn state_file(&self, instance: &str) -> PathBuf {
        self.state_dir().join(format!("{instance}.json"))
    }

    /// Record what `iso` did (atomically); a failure is logged, not fatal: the state file only
    /// serves a later cleanup.
    pub fn save_state(&self, iso: &Isolation) {
        let path = self.state_file(&iso.instance);
        let done = serde_json::to_vec_pretty(iso)
            .map_err(std::io::Error::other)
            .and_then(|b| write_atomic(&path, &b));
        if let Err(e) = done {
            warn!(path = %path.display(), cause = %e, "cannot write the state file");
        }
    }

    /// The recorded state of `instance`: `Ok(None)` when there is none.
    pub fn load_state(&self, instance: &str) -> Result<Option<Isolation>, String> {
        match std::fs::read(self.state_file(instance)) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| format!("unreadable state file: {e}")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", self.state_file(instance).display())),
        }
    }

    /// Forget the state of `instance` (everything was undone).
    pub fn remove_state(&self, instance: &str) {
        let _ = std::fs::remove_file(self.state_file(instance));
    }

    /// Every readable state file, sorted by instance.
    pub fn states(&self) -> Vec<Isolation> {
        let mut out: Vec<Isolation> = std::fs::read_dir(self.state_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<Isolation>(&b).ok())
            .collect();
        out.sort_by(|a, b| a.instance.cmp(&b.instance));
        out
    }

    /// A live instance other than `instance` whose phy or interface is called `name`
    /// (`wlan1 (pid N)`).
    pub fn held_by_other_instance(&self, instance: &str, name: &str) -> Option<String> {
        self.states()
            .into_iter()
            .find(|i| {
                (i.phy_name == name || i.iface == name)
                    && i.instance != instance
                    && Path::new(&format!("/proc/{}", i.daemon_pid)).exists()
            })
            .map(|i| format!("{} (pid {})", i.instance, i.daemon_pid))
    }

    /// The per-wiphy lock: two instances never fight over one phy.
    pub fn wiphy_lock(&self, index: u32) -> PathBuf {
        self.state_dir().join(format!("wiphy{index}.lock"))
    }

    /// The per-instance lock.
    pub fn instance_lock(&self, instance: &str) -> PathBuf {
        self.state_dir().join(format!("{instance}.lock"))
    }

    /// The hold file the udev rule and the daemon test: while it exists, neither the
    /// interface's return to the host (an *add* uevent) nor a client on the socket starts the
    /// instance again.
    pub fn hold_file(&self, iface: &str) -> PathBuf {
        self.root.join("hold").join(iface)
    }

    /// Whether `iface` is held (for any reason: udev does not start it on its return).
    pub fn held(&self, iface: &str) -> bool {
        self.hold_file(iface).exists()
    }

    /// Why `iface` is held, if it is.
    pub fn hold_reason(&self, iface: &str) -> Option<Hold> {
        let text = std::fs::read_to_string(self.hold_file(iface)).ok()?;
        Some(if text.trim() == "failed" {
            Hold::Failed
        } else {
            Hold::Stopped
        })
    }

    /// Hold `iface` in the host: a stop the user asked for (or a start that failed) must not
    /// be undone by udev when the phy comes home; a user's stop not by the next client either.
    pub fn hold(&self, iface: &str, why: Hold) {
        let path = self.hold_file(iface);
        let text = match why {
            Hold::Stopped => "stopped\n",
            Hold::Failed => "failed\n",
        };
        if let Err(e) = write_atomic(&path, text.as_bytes()) {
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

/// Why an adapter is held in the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// A stop (SIGTERM/SIGINT: `systemctl stop`, a start timeout, a removal): it stays home
    /// until a user starts it; a client on the socket meets a held endpoint.
    Stopped,
    /// A failure: only udev is kept from starting it again — the unit's restart policy, and a
    /// client on the socket, still may.
    Failed,
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

#[cfg(test)]
mod tests {
    use super::*;

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
                p.endpoint("wlan0"),
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

    #[test]
    fn state_files_round_trip_and_list() {
        let dir = tempfile::tempdir().unwrap();
        let p = Paths::new(dir.path());
        assert_eq!(p.load_state("wlan1").unwrap().map(|i| i.instance), None);
        for name in ["wlan2", "wlan1"] {
            p.save_state(&Isolation {
                instance: name.into(),
                daemon_pid: std::process::id(),
                phy_name: format!("phy-{name}"),
                iface: name.into(),
                ..Default::default()
            });
        }
        let back = p.load_state("wlan1").unwrap().unwrap();
        assert_eq!(back.phy_name, "phy-wlan1");
        let all: Vec<String> = p.states().into_iter().map(|i| i.instance).collect();
        assert_eq!(all, ["wlan1", "wlan2"]);
        assert_eq!(
            p.held_by_other_instance("phy-wlan2", "phy-wlan2")
                .as_deref(),
            Some(format!("wlan2 (pid {})", std::process::id()).as_str())
        );
        assert_eq!(p.held_by_other_instance("wlan2", "phy-wlan2"), None);
        std::fs::write(p.state_file("bad"), b"{").unwrap();
        assert!(p.load_state("bad").is_err());
        p.remove_state("wlan1");
        assert_eq!(p.states().len(), 1, "the unreadable file is not listed");
    }

    #[test]
    fn hold_files_come_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let p = Paths::new(dir.path());
        assert!(!p.held("wlan1"));
        assert_eq!(p.hold_reason("wlan1"), None);
        p.hold("wlan1", Hold::Stopped);
        assert!(p.held("wlan1"));
        assert_eq!(p.hold_reason("wlan1"), Some(Hold::Stopped));
        p.hold("wlan1", Hold::Failed);
        assert_eq!(p.hold_reason("wlan1"), Some(Hold::Failed));
        p.unhold("wlan1");
        assert!(!p.held("wlan1"));
        // An empty hold file (an older daemon's) is a stop.
        std::fs::write(p.hold_file("wlan1"), b"").unwrap();
        assert_eq!(p.hold_reason("wlan1"), Some(Hold::Stopped));
    }
}
