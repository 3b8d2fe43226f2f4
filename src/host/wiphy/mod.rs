//! Wireless PHYs (wiphys): resolve a name, move the whole radio into a box's network namespace
//! and bring it home again, over nl80211 (wl-nl80211) and rtnetlink.
//!
//! Facts this module relies on:
//! - A wiphy moves between network namespaces only whole, with `NL80211_CMD_SET_WIPHY_NETNS`
//!   (`ip link set netns` is refused for wireless netdevs) and only if its driver sets
//!   `WIPHY_FLAG_NETNS_OK`; the kernel then lists `SET_WIPHY_NETNS` among the wiphy's supported
//!   commands, which is what [`Wiphy::netns_ok`] reports.
//! - The target is named by a network-namespace **file descriptor** (`NL80211_ATTR_NETNS_FD`,
//!   219), never a PID: a PID can be reused, `/proc/PID/ns/net` opened once cannot.
//! - nl80211 finds a wiphy only in the sender's network namespace, so bringing a phy home means
//!   sending from a socket created *inside* the box. Such sockets are created on a dedicated,
//!   short-lived OS thread that calls `setns`; the thread exits right after, and the sockets (which
//!   keep their namespace for life) are driven from the tokio runtime. No tokio worker and no
//!   `spawn_blocking` thread ever changes namespace.
//! - The kernel closes (downs) each netdev while moving it and flushes its addresses; we still
//!   bring interfaces down first so nothing in the old namespace keeps using them mid-move.
//!
//! The rooms: this file holds the model ([`Wiphy`], [`IfaceInfo`], [`WiphyError`]), the
//! capability the daemon uses ([`Wiphys`]) and the namespace-file helpers the daemon shares;
//! `nl80211` holds [`Nl80211`], the real implementation, with its netlink plumbing (dumps,
//! moves, interface restore, the namespace thread); `fake` holds `FakeWiphys`, a
//! recording stand-in for unit tests of the daemon's logic (unit tests, or `--features fakes`).

use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use serde::Serialize;

#[cfg(any(test, feature = "fakes"))]
pub mod fake;
mod nl80211;

pub use nl80211::{NL80211_ATTR_NETNS_FD, Nl80211};

/// Errors of the wiphy capability. The daemon branches on the variants.
#[derive(Debug, thiserror::Error)]
pub enum WiphyError {
    /// Neither a network interface nor a wiphy has this name (in the caller's netns).
    #[error("no network interface or phy named {name}; `iw dev` lists wireless interfaces")]
    NoSuchDevice {
        /// The name that was looked up.
        name: String,
    },
    /// The interface exists but is not backed by an nl80211 wiphy (`lo`, a veth, Ethernet…).
    #[error(
        "{iface} is not a wireless interface (no nl80211 wiphy behind it); \
         `iw dev` lists wireless interfaces"
    )]
    NotWireless {
        /// The interface name.
        iface: String,
    },
    /// The driver does not let this wiphy change network namespace.
    #[error(
        "{phy} cannot be moved to another network namespace: its driver does not set \
         WIPHY_FLAG_NETNS_OK (SET_WIPHY_NETNS is not among the wiphy's supported commands), \
         so this adapter cannot be isolated"
    )]
    NetnsUnsupported {
        /// The wiphy, as `phyN` (or `wiphy index N` when its name is unknown).
        phy: String,
    },
    /// The wiphy is not in the namespace where it was looked for: unplugged, or moved already.
    #[error("wiphy index {phy} is not in this network namespace (unplugged, or moved already)")]
    PhyGone {
        /// The wiphy index.
        phy: u32,
    },
    /// nl80211 and sysfs disagree about which wiphy is behind an interface.
    #[error(
        "{iface}: nl80211 says wiphy index {nl80211} but /sys/class/net/{iface}/phy80211/index \
         says {sysfs}; is /sys mounted from another network namespace?"
    )]
    SysfsMismatch {
        /// The interface name.
        iface: String,
        /// The index nl80211 reported.
        nl80211: u32,
        /// The index sysfs reported.
        sysfs: u32,
    },
    /// Any other netlink failure (with the operation and the kernel's errno text).
    #[error("netlink: {0}")]
    Netlink(String),
    /// Opening a namespace file, spawning the namespace thread, reading sysfs.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// A network interface of a wiphy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IfaceInfo {
    /// The interface index (in the namespace it was listed in).
    pub index: u32,
    /// The interface name (`wlp6s0`).
    pub name: String,
    /// The current MAC address, if nl80211 reported one.
    pub mac: Option<[u8; 6]>,
}

/// A wireless PHY as seen from the caller's network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wiphy {
    /// The wiphy index (`NL80211_ATTR_WIPHY`); the kernel never reuses one until reboot.
    pub index: u32,
    /// The wiphy name (`phy0`).
    pub name: String,
    /// Its network interfaces (netdevs only; a P2P-device wdev has none), by index.
    pub ifaces: Vec<IfaceInfo>,
    /// Whether the wiphy may change network namespace (`SET_WIPHY_NETNS` is supported).
    pub netns_ok: bool,
    /// The real path of `/sys/class/ieee80211/PHY/device` (the PCI/USB device behind it).
    pub pci_path: Option<String>,
    /// The kernel driver (`iwlwifi`, `mac80211_hwsim`), from the device's `driver` link.
    pub driver: Option<String>,
}

/// The wiphy capability the daemon needs. Every namespace-changing operation runs its own
/// sockets; nothing is cached across calls (wiphy and interface indexes come from the kernel
/// each time).
pub trait Wiphys: Send + Sync {
    /// Resolve an interface name (`wlp6s0`) or a wiphy name (`phy0`) in the caller's network
    /// namespace.
    fn resolve(&self, name: &str) -> impl Future<Output = Result<Wiphy, WiphyError>> + Send;

    /// Move wiphy `phy` (in the caller's namespace) into the namespace `netns` refers to, after
    /// bringing its interfaces down.
    fn move_to_netns(
        &self,
        phy: u32,
        netns: BorrowedFd<'_>,
    ) -> impl Future<Output = Result<(), WiphyError>> + Send;

    /// Bring wiphy `phy` home from the namespace at `box_netns` (`/proc/PID/ns/net` or a bind
    /// mounted namespace file) into `host_netns`, then rename its interface to `restore_name`
    /// when given and different, and give it back `restore_mac` (the address it left with)
    /// when given and different. Returns the interface's final name in the host.
    ///
    /// It comes home with only the interface it left with: anything the box made on the phy
    /// is deleted (in the box before the move, and in the host for what raced it).
    ///
    /// A phy that comes home without an interface (its driver deleted it in the box) gets a new
    /// station interface named `restore_name` (see [`Wiphys::ensure_iface`]); without a
    /// `restore_name` that is an error.
    ///
    /// A rename that fails (the name is taken, the link is busy) is logged as a warning and the
    /// interface keeps the name it came back with: compare the result with `restore_name`.
    fn move_back(
        &self,
        phy: u32,
        box_netns: &Path,
        host_netns: BorrowedFd<'_>,
        restore_name: Option<&str>,
        restore_mac: Option<[u8; 6]>,
    ) -> impl Future<Output = Result<String, WiphyError>> + Send;

    /// Make sure wiphy `phy`, in the caller's namespace, has a network interface named `name`:
    /// when it has none (some drivers delete the interface when the box's namespace dies, and
    /// the phy comes home bare), create a station (managed) interface under that name; when its
    /// first interface has another name, rename it. Returns the interface's final name, which
    /// differs from `name` only when that name is taken by another interface (logged as a
    /// warning). [`WiphyError::PhyGone`] when the phy is not in the caller's namespace.
    ///
    /// [`Wiphys::move_back`] does this itself; call it after a phy came home on its own (the
    /// box's namespace died and the kernel handed the phy back).
    fn ensure_iface(
        &self,
        phy: u32,
        name: &str,
        mac: Option<[u8; 6]>,
    ) -> impl Future<Output = Result<String, WiphyError>> + Send;

    /// Whether wiphy `phy` exists in the caller's namespace or, if given, in `in_netns`.
    ///
    /// `Ok(false)` means unplugged — with one caveat: while a dying box namespace hands the phy
    /// back, it is briefly in neither; poll with a grace period before concluding.
    fn exists(
        &self,
        phy: u32,
        in_netns: Option<&Path>,
    ) -> impl Future<Output = Result<bool, WiphyError>> + Send;

    /// The interfaces of wiphy `phy` inside the namespace at `netns`;
    /// [`WiphyError::PhyGone`] when the wiphy is not there.
    fn locate(
        &self,
        phy: u32,
        netns: &Path,
    ) -> impl Future<Output = Result<Vec<IfaceInfo>, WiphyError>> + Send;
}

/// Open the network namespace of process `pid` (`/proc/PID/ns/net`). The descriptor names that
/// namespace for as long as it is open, whatever happens to the PID.
pub fn netns_fd_of_pid(pid: u32) -> io::Result<OwnedFd> {
    let path = format!("/proc/{pid}/ns/net");
    File::open(&path)
        .map(OwnedFd::from)
        .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}

/// Open the network namespace of the **calling thread** (`/proc/thread-self/ns/net`).
///
/// `/proc/self` names the thread-group leader, whose namespace can differ from the caller's;
/// `thread-self` is always the caller's own.
pub fn current_netns() -> io::Result<OwnedFd> {
    File::open("/proc/thread-self/ns/net").map(OwnedFd::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_helpers_open_namespace_files() {
        use std::os::unix::fs::MetadataExt;
        let mine = File::from(current_netns().unwrap()).metadata().unwrap();
        let by_pid = File::from(netns_fd_of_pid(std::process::id()).unwrap())
            .metadata()
            .unwrap();
        assert_eq!((mine.dev(), mine.ino()), (by_pid.dev(), by_pid.ino()));
        let err = netns_fd_of_pid(u32::MAX).unwrap_err();
        assert!(err.to_string().contains("/proc/4294967295/ns/net"), "{err}");
    }
}
