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
//! [`Wiphys`] is the capability the daemon uses; [`Nl80211`] is the real implementation and
//! [`fake::FakeWiphys`] a recording stand-in for unit tests of the daemon's logic.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use rtnetlink::LinkUnspec;
use serde::Serialize;
use tracing::{debug, info, warn};
use wl_nl80211::packet_core::{
    DefaultNla, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use wl_nl80211::packet_generic::GenlMessage;
use wl_nl80211::{
    Nl80211Attr, Nl80211Command, Nl80211Handle, Nl80211InterfaceType, Nl80211Message,
};

/// `NL80211_ATTR_NETNS_FD`: a network-namespace file descriptor (u32, native endian).
/// wl-nl80211 has no typed attribute for it.
pub const NL80211_ATTR_NETNS_FD: u16 = 219;

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
    /// when given and different. Returns the interface's final name in the host.
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

/// The real [`Wiphys`]: nl80211 through wl-nl80211, links through rtnetlink.
#[derive(Debug, Clone)]
pub struct Nl80211 {
    sys: PathBuf,
}

impl Default for Nl80211 {
    fn default() -> Self {
        Self::new()
    }
}

impl Nl80211 {
    /// The real implementation, reading sysfs under `/sys`.
    pub fn new() -> Self {
        Nl80211 {
            sys: PathBuf::from("/sys"),
        }
    }
}

impl Wiphys for Nl80211 {
    async fn resolve(&self, name: &str) -> Result<Wiphy, WiphyError> {
        let (mut nl, _) = open_sockets()?;
        let ifaces = dump_interfaces(&mut nl).await?;
        let wiphys = dump_wiphys(&mut nl, None).await?;

        let index = if let Some((phy, _)) = ifaces.iter().find(|(_, i)| i.name == name) {
            if let Some(sysfs) = sysfs_phy_index(&self.sys, name)?
                && sysfs != *phy
            {
                return Err(WiphyError::SysfsMismatch {
                    iface: name.to_owned(),
                    nl80211: *phy,
                    sysfs,
                });
            }
            *phy
        } else if let Some(phy) = wiphys.values().find(|p| p.name.as_deref() == Some(name)) {
            phy.index
        } else if netdev_exists(name) {
            return Err(WiphyError::NotWireless {
                iface: name.to_owned(),
            });
        } else {
            return Err(WiphyError::NoSuchDevice {
                name: name.to_owned(),
            });
        };

        let info = wiphys
            .get(&index)
            .ok_or(WiphyError::PhyGone { phy: index })?;
        let phy_name = info.name.clone().unwrap_or_else(|| format!("phy{index}"));
        let (pci_path, driver) = sysfs_device(&self.sys, &phy_name);
        let wiphy = Wiphy {
            index,
            ifaces: ifaces_of(&ifaces, index),
            netns_ok: info.netns_ok,
            name: phy_name,
            pci_path,
            driver,
        };
        debug!(name, phy = %wiphy.name, index, netns_ok = wiphy.netns_ok, "resolved wiphy");
        Ok(wiphy)
    }

    async fn move_to_netns(&self, phy: u32, netns: BorrowedFd<'_>) -> Result<(), WiphyError> {
        let (mut nl, rt) = open_sockets()?;
        let wiphys = dump_wiphys(&mut nl, Some(phy)).await?;
        let info = wiphys.get(&phy).ok_or(WiphyError::PhyGone { phy })?;
        let phy_name = info
            .name
            .clone()
            .unwrap_or_else(|| format!("wiphy index {phy}"));
        if !info.netns_ok {
            return Err(WiphyError::NetnsUnsupported { phy: phy_name });
        }
        let ifaces = ifaces_of(&dump_interfaces(&mut nl).await?, phy);
        for iface in &ifaces {
            set_link_down(&rt, iface.index).await.map_err(|e| {
                WiphyError::Netlink(format!("bringing {} down before the move: {e}", iface.name))
            })?;
        }
        set_wiphy_netns(&mut nl, phy, netns.as_raw_fd())
            .await
            .map_err(|e| e.into_move_error(&phy_name))?;
        info!(phy = %phy_name, index = phy, netns_fd = netns.as_raw_fd(), "wiphy moved");
        Ok(())
    }

    async fn move_back(
        &self,
        phy: u32,
        box_netns: &Path,
        host_netns: BorrowedFd<'_>,
        restore_name: Option<&str>,
    ) -> Result<String, WiphyError> {
        let box_fd = open_netns_file(box_netns)?;
        let host_fd = host_netns.try_clone_to_owned()?;

        // In the box: down its interfaces, then send the move from there (nl80211 looks the
        // wiphy up in the sender's namespace). ENODEV: the phy is not in the box (it came home
        // on its own, or was unplugged) — the host side below tells which.
        let phy_name = format!("phy index {phy}");
        let (mut box_nl, box_rt) = in_netns(box_fd, open_sockets).await?;
        for iface in ifaces_of(&dump_interfaces(&mut box_nl).await?, phy) {
            if let Err(e) = set_link_down(&box_rt, iface.index).await {
                warn!(phy, iface = %iface.name, cause = %e,
                    "could not bring the interface down in the box; moving anyway");
            }
        }
        match set_wiphy_netns(&mut box_nl, phy, host_netns.as_raw_fd()).await {
            Ok(()) => info!(phy, box_netns = %box_netns.display(), "wiphy moved home"),
            Err(NlError {
                errno: Some(libc::ENODEV),
                ..
            }) => info!(phy, box_netns = %box_netns.display(),
                "wiphy is not in the box; looking for it in the host"),
            Err(e) => return Err(e.into_move_error(&phy_name)),
        }
        drop((box_nl, box_rt));

        // The move is synchronous: once acknowledged, the interfaces exist in the host.
        let (mut host_nl, host_rt) = in_netns(host_fd, open_sockets).await?;
        restore_iface(&mut host_nl, &host_rt, phy, restore_name).await
    }

    async fn ensure_iface(&self, phy: u32, name: &str) -> Result<String, WiphyError> {
        let (mut nl, rt) = open_sockets()?;
        restore_iface(&mut nl, &rt, phy, Some(name)).await
    }

    async fn exists(&self, phy: u32, also_in: Option<&Path>) -> Result<bool, WiphyError> {
        let (mut nl, _) = open_sockets()?;
        if dump_wiphys(&mut nl, Some(phy)).await?.contains_key(&phy) {
            return Ok(true);
        }
        let Some(path) = also_in else {
            return Ok(false);
        };
        let fd = match File::open(path) {
            Ok(file) => OwnedFd::from(file),
            // The box's process is gone: its namespace hands the phy back to the host.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => {
                return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display())).into());
            }
        };
        let (mut nl, _) = in_netns(fd, open_sockets).await?;
        Ok(dump_wiphys(&mut nl, Some(phy)).await?.contains_key(&phy))
    }

    async fn locate(&self, phy: u32, netns: &Path) -> Result<Vec<IfaceInfo>, WiphyError> {
        let fd = open_netns_file(netns)?;
        let (mut nl, _) = in_netns(fd, open_sockets).await?;
        if !dump_wiphys(&mut nl, Some(phy)).await?.contains_key(&phy) {
            return Err(WiphyError::PhyGone { phy });
        }
        Ok(ifaces_of(&dump_interfaces(&mut nl).await?, phy))
    }
}

// ---- namespaces and sockets ----------------------------------------------------------------

fn open_netns_file(path: &Path) -> io::Result<OwnedFd> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// An nl80211 and an rtnetlink socket in the calling thread's namespace, their connections
/// spawned on the current tokio runtime. The connections end when the handles are dropped.
fn open_sockets() -> io::Result<(Nl80211Handle, rtnetlink::Handle)> {
    let (conn, nl, _) = wl_nl80211::new_connection()?;
    tokio::spawn(conn);
    let (conn, rt, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);
    Ok((nl, rt))
}

/// Run `make` on a fresh OS thread that has joined the network namespace `netns`, with the
/// current tokio runtime entered (so sockets made there register with its reactor). The thread
/// exits when `make` returns; whatever sockets it made keep the namespace.
async fn in_netns<T, F>(netns: OwnedFd, make: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("wi-netns".into())
        .spawn(move || {
            let result = nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("setns: {e}")))
                .and_then(|()| {
                    let _entered = runtime.enter();
                    make()
                });
            let _ = tx.send(result);
        })?;
    rx.await
        .map_err(|_| io::Error::other("the network-namespace helper thread died"))?
}

fn netdev_exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

/// `/sys/class/net/IFACE/phy80211/index`, if present.
fn sysfs_phy_index(sys: &Path, iface: &str) -> io::Result<Option<u32>> {
    if iface.contains('/') || iface.starts_with('.') {
        return Ok(None);
    }
    let path = sys.join("class/net").join(iface).join("phy80211/index");
    match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}

/// The device path and driver behind `/sys/class/ieee80211/PHY`.
fn sysfs_device(sys: &Path, phy: &str) -> (Option<String>, Option<String>) {
    let device = sys.join("class/ieee80211").join(phy).join("device");
    let path = fs::canonicalize(&device)
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let driver = fs::canonicalize(device.join("driver"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    (path, driver)
}

// ---- nl80211 -------------------------------------------------------------------------------

/// A failed netlink request: the kernel's errno if it sent one, and a text for humans.
#[derive(Debug)]
struct NlError {
    errno: Option<i32>,
    text: String,
}

impl NlError {
    fn other(text: impl Into<String>) -> Self {
        NlError {
            errno: None,
            text: text.into(),
        }
    }

    fn kernel(what: &str, errno: i32) -> Self {
        NlError {
            errno: Some(errno),
            text: format!("{what}: {}", io::Error::from_raw_os_error(errno)),
        }
    }

    fn into_move_error(self, phy: &str) -> WiphyError {
        match self.errno {
            Some(libc::EOPNOTSUPP) => WiphyError::NetnsUnsupported {
                phy: phy.to_owned(),
            },
            Some(libc::ENODEV) => WiphyError::Netlink(format!(
                "{}: {phy} is not in the sender's network namespace",
                self.text
            )),
            _ => WiphyError::Netlink(self.text),
        }
    }
}

impl From<NlError> for WiphyError {
    fn from(e: NlError) -> Self {
        WiphyError::Netlink(e.text)
    }
}

/// Send one nl80211 request and collect the replies. An error payload with a code fails the
/// request; an ACK or the end of the stream is success.
async fn nl80211_request(
    nl: &mut Nl80211Handle,
    cmd: Nl80211Command,
    attributes: Vec<Nl80211Attr>,
    flags: u16,
) -> Result<Vec<Nl80211Message>, NlError> {
    let what = format!("{cmd:?}");
    let mut message = NetlinkMessage::from(GenlMessage::from_payload(Nl80211Message {
        cmd,
        attributes,
    }));
    message.header.flags = flags;
    let replies = nl
        .request(message)
        .await
        .map_err(|e| NlError::other(format!("{what}: {e}")))?;
    let mut replies = std::pin::pin!(replies);
    let mut out = Vec::new();
    while let Some(reply) = replies.next().await {
        let reply = reply.map_err(|e| NlError::other(format!("{what}: undecodable reply: {e}")))?;
        match reply.payload {
            NetlinkPayload::InnerMessage(genl) => out.push(genl.payload),
            NetlinkPayload::Error(err) => {
                if let Some(code) = err.code {
                    return Err(NlError::kernel(&what, -code.get()));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// What a wiphy dump says about one wiphy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PhyInfo {
    index: u32,
    name: Option<String>,
    netns_ok: bool,
}

/// Merge a (split) wiphy dump into one entry per wiphy index.
fn collect_wiphys(messages: &[Nl80211Message]) -> BTreeMap<u32, PhyInfo> {
    let mut out: BTreeMap<u32, PhyInfo> = BTreeMap::new();
    for message in messages {
        let Some(index) = message.attributes.iter().find_map(|a| match a {
            Nl80211Attr::Wiphy(i) => Some(*i),
            _ => None,
        }) else {
            continue;
        };
        let entry = out.entry(index).or_insert_with(|| PhyInfo {
            index,
            ..PhyInfo::default()
        });
        for attr in &message.attributes {
            match attr {
                Nl80211Attr::WiphyName(name) => entry.name = Some(name.clone()),
                Nl80211Attr::SupportedCommand(cmds)
                    if cmds.contains(&Nl80211Command::SetWiphyNetns) =>
                {
                    entry.netns_ok = true;
                }
                _ => {}
            }
        }
    }
    out
}

/// `(wiphy index, interface)` for every netdev an interface dump lists.
fn collect_interfaces(messages: &[Nl80211Message]) -> Vec<(u32, IfaceInfo)> {
    let mut out = Vec::new();
    for message in messages {
        let (mut phy, mut index, mut name, mut mac) = (None, None, None, None);
        for attr in &message.attributes {
            match attr {
                Nl80211Attr::Wiphy(i) => phy = Some(*i),
                Nl80211Attr::IfIndex(i) => index = Some(*i),
                Nl80211Attr::IfName(n) => name = Some(n.clone()),
                Nl80211Attr::Mac(m) => mac = Some(*m),
                _ => {}
            }
        }
        if let (Some(phy), Some(index), Some(name)) = (phy, index, name) {
            out.push((phy, IfaceInfo { index, name, mac }));
        }
    }
    out.sort_by_key(|(phy, iface)| (*phy, iface.index));
    out
}

fn ifaces_of(all: &[(u32, IfaceInfo)], phy: u32) -> Vec<IfaceInfo> {
    all.iter()
        .filter(|(p, _)| *p == phy)
        .map(|(_, i)| i.clone())
        .collect()
}

/// Dump the wiphys of the socket's namespace (only `only` if given). A wiphy not in the
/// namespace is simply absent from the result.
async fn dump_wiphys(
    nl: &mut Nl80211Handle,
    only: Option<u32>,
) -> Result<BTreeMap<u32, PhyInfo>, WiphyError> {
    let mut attributes = vec![Nl80211Attr::SplitWiphyDump];
    attributes.extend(only.map(Nl80211Attr::Wiphy));
    match nl80211_request(
        nl,
        Nl80211Command::GetWiphy,
        attributes,
        NLM_F_REQUEST | NLM_F_DUMP,
    )
    .await
    {
        Ok(messages) => {
            let mut all = collect_wiphys(&messages);
            if let Some(phy) = only {
                all.retain(|index, _| *index == phy);
            }
            Ok(all)
        }
        Err(NlError {
            errno: Some(libc::ENODEV),
            ..
        }) if only.is_some() => Ok(BTreeMap::new()),
        Err(e) => Err(e.into()),
    }
}

async fn dump_interfaces(nl: &mut Nl80211Handle) -> Result<Vec<(u32, IfaceInfo)>, WiphyError> {
    let messages = nl80211_request(
        nl,
        Nl80211Command::GetInterface,
        Vec::new(),
        NLM_F_REQUEST | NLM_F_DUMP,
    )
    .await?;
    Ok(collect_interfaces(&messages))
}

/// `NL80211_CMD_SET_WIPHY_NETNS` with `NL80211_ATTR_WIPHY` and `NL80211_ATTR_NETNS_FD`, sent
/// from `nl`'s namespace (the wiphy must be there).
async fn set_wiphy_netns(nl: &mut Nl80211Handle, phy: u32, netns_fd: i32) -> Result<(), NlError> {
    let fd = u32::try_from(netns_fd).map_err(|_| NlError::other("negative netns fd"))?;
    let attributes = vec![
        Nl80211Attr::Wiphy(phy),
        Nl80211Attr::Other(DefaultNla::new(
            NL80211_ATTR_NETNS_FD,
            fd.to_ne_bytes().to_vec(),
        )),
    ];
    nl80211_request(
        nl,
        Nl80211Command::SetWiphyNetns,
        attributes,
        NLM_F_REQUEST | NLM_F_ACK,
    )
    .await
    .map(drop)
}

/// `NL80211_CMD_NEW_INTERFACE`: a station (managed) interface named `name` on wiphy `phy` (a
/// `%d` in the name lets the kernel pick a free number). Returns the interface the kernel made.
async fn new_station(nl: &mut Nl80211Handle, phy: u32, name: &str) -> Result<IfaceInfo, NlError> {
    let attributes = vec![
        Nl80211Attr::Wiphy(phy),
        Nl80211Attr::IfName(name.to_owned()),
        Nl80211Attr::IfType(Nl80211InterfaceType::Station),
    ];
    let replies = nl80211_request(
        nl,
        Nl80211Command::NewInterface,
        attributes,
        NLM_F_REQUEST | NLM_F_ACK,
    )
    .await?;
    collect_interfaces(&replies)
        .into_iter()
        .find(|(p, _)| *p == phy)
        .map(|(_, iface)| iface)
        .ok_or_else(|| NlError::other("NewInterface: the kernel did not describe the interface"))
}

/// In the namespace of `nl`/`rt`: give wiphy `phy` an interface named `want` (create a station
/// interface if it has none, rename the first one otherwise). The final name.
async fn restore_iface(
    nl: &mut Nl80211Handle,
    rt: &rtnetlink::Handle,
    phy: u32,
    want: Option<&str>,
) -> Result<String, WiphyError> {
    let ifaces = ifaces_of(&dump_interfaces(nl).await?, phy);
    if ifaces.is_empty() && dump_wiphys(nl, Some(phy)).await?.is_empty() {
        return Err(WiphyError::PhyGone { phy });
    }
    let Some(primary) = ifaces.first() else {
        let Some(want) = want else {
            return Err(WiphyError::Netlink(format!(
                "phy index {phy} is in the host but has no network interface"
            )));
        };
        let made = match new_station(nl, phy, want).await {
            Ok(made) => made,
            Err(e) if matches!(e.errno, Some(libc::EEXIST | libc::ENFILE)) => {
                warn!(phy, wanted = want, cause = %e.text,
                    "the interface name is taken; creating the station interface as wlan%d");
                new_station(nl, phy, "wlan%d").await.map_err(|e| {
                    WiphyError::Netlink(format!(
                        "phy index {phy} came home without an interface, and creating one failed: {}",
                        e.text
                    ))
                })?
            }
            Err(e) => {
                return Err(WiphyError::Netlink(format!(
                    "phy index {phy} came home without an interface, and creating {want} failed: {}",
                    e.text
                )));
            }
        };
        info!(phy, iface = %made.name, index = made.index,
            "the phy came home without an interface; created a station interface");
        return Ok(made.name);
    };
    if ifaces.len() > 1 {
        warn!(phy, count = ifaces.len(), iface = %primary.name,
            "wiphy has several interfaces; only the first one is renamed");
    }
    let Some(want) = want.filter(|want| *want != primary.name) else {
        return Ok(primary.name.clone());
    };
    match rename_link(rt, primary.index, want).await {
        Ok(()) => {
            info!(phy, from = %primary.name, to = want, "interface name restored");
            Ok(want.to_owned())
        }
        Err(e) => {
            let taken = e.errno == Some(libc::EEXIST);
            warn!(phy, iface = %primary.name, wanted = want, taken, cause = %e.text,
                "could not restore the interface name; it keeps the name it came back with");
            Ok(primary.name.clone())
        }
    }
}

// ---- rtnetlink -----------------------------------------------------------------------------

fn route_error(what: &str, e: rtnetlink::Error) -> NlError {
    match e {
        rtnetlink::Error::NetlinkError(msg) => match msg.code {
            Some(code) => NlError::kernel(what, -code.get()),
            None => NlError::other(format!("{what}: {msg}")),
        },
        other => NlError::other(format!("{what}: {other}")),
    }
}

async fn set_link_down(rt: &rtnetlink::Handle, index: u32) -> Result<(), String> {
    rt.link()
        .set(LinkUnspec::new_with_index(index).down().build())
        .execute()
        .await
        .map_err(|e| route_error("link down", e).text)
}

/// Rename a link (down first: the kernel refuses to rename a running interface).
async fn rename_link(rt: &rtnetlink::Handle, index: u32, name: &str) -> Result<(), NlError> {
    rt.link()
        .set(LinkUnspec::new_with_index(index).down().build())
        .execute()
        .await
        .map_err(|e| route_error("link down", e))?;
    rt.link()
        .set(LinkUnspec::new_with_index(index).name(name).build())
        .execute()
        .await
        .map_err(|e| route_error(&format!("rename to {name}"), e))
}

// ---- the fake ------------------------------------------------------------------------------

pub mod fake {
    //! A recording [`Wiphys`] for unit tests of the daemon's logic (not for behaviour: that is
    //! proved against real radios in the hwsim VM).
    //!
    //! ```
    //! use wifi_isolate::host::wiphy::{Wiphys, WiphyError, fake::{Call, FakeWiphys, Op}};
    //! # tokio_test_block_on(async {
    //! let fake = FakeWiphys::new().with_wiphy(FakeWiphys::wiphy(0, "phy0", "wlp6s0"));
    //! let phy = fake.resolve("wlp6s0").await.unwrap();
    //! assert_eq!(phy.name, "phy0");
    //! fake.fail_once(Op::MoveToNetns, || WiphyError::NetnsUnsupported { phy: "phy0".into() });
    //! let ns = std::fs::File::open("/proc/self/ns/net").unwrap();
    //! use std::os::fd::AsFd;
    //! assert!(fake.move_to_netns(0, ns.as_fd()).await.is_err());
    //! assert!(matches!(fake.calls()[1], Call::MoveToNetns { phy: 0, .. }));
    //! # });
    //! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
    //! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    //! # }
    //! ```

    use std::collections::HashMap;
    use std::os::fd::{AsRawFd, BorrowedFd};
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex, MutexGuard};

    use super::{IfaceInfo, Wiphy, WiphyError, Wiphys};

    /// One recorded call, in order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Call {
        /// [`Wiphys::resolve`].
        Resolve(String),
        /// [`Wiphys::move_to_netns`] (the descriptor number it was given).
        MoveToNetns {
            /// Wiphy index.
            phy: u32,
            /// The raw namespace descriptor.
            netns_fd: i32,
        },
        /// [`Wiphys::move_back`].
        MoveBack {
            /// Wiphy index.
            phy: u32,
            /// The box namespace path.
            box_netns: PathBuf,
            /// The requested name.
            restore_name: Option<String>,
        },
        /// [`Wiphys::ensure_iface`].
        EnsureIface {
            /// Wiphy index.
            phy: u32,
            /// The requested name.
            name: String,
        },
        /// [`Wiphys::exists`].
        Exists {
            /// Wiphy index.
            phy: u32,
            /// The extra namespace searched.
            in_netns: Option<PathBuf>,
        },
        /// [`Wiphys::locate`].
        Locate {
            /// Wiphy index.
            phy: u32,
            /// The namespace searched.
            netns: PathBuf,
        },
    }

    /// The operations a failure can be injected into.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Op {
        /// [`Wiphys::resolve`].
        Resolve,
        /// [`Wiphys::move_to_netns`].
        MoveToNetns,
        /// [`Wiphys::move_back`].
        MoveBack,
        /// [`Wiphys::ensure_iface`].
        EnsureIface,
        /// [`Wiphys::exists`].
        Exists,
        /// [`Wiphys::locate`].
        Locate,
    }

    /// Where a fake wiphy is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Place {
        /// In the caller's (host) namespace.
        Host,
        /// Moved into a box by [`Wiphys::move_to_netns`].
        Boxed,
        /// Unplugged ([`FakeWiphys::unplug`]).
        Gone,
    }

    type MakeError = Box<dyn Fn() -> WiphyError + Send + Sync>;

    struct Failure {
        make: MakeError,
        once: bool,
    }

    #[derive(Default)]
    struct State {
        wiphys: Vec<(Wiphy, Place)>,
        /// Interface names that exist but are not wireless (`lo` is always one).
        other_netdevs: Vec<String>,
        calls: Vec<Call>,
        failures: HashMap<Op, Failure>,
    }

    /// A recording, configurable [`Wiphys`]. Clones share state, so a test can keep one and
    /// hand another to the code under test.
    ///
    /// Behaviour: `resolve` finds registered wiphys by interface or phy name while they are in
    /// the host (`lo` and [`FakeWiphys::with_netdev`] names → `NotWireless`, others →
    /// `NoSuchDevice`); `move_to_netns` checks `netns_ok` and moves the phy to
    /// [`Place::Boxed`]; `move_back` returns it and renames its first interface to
    /// `restore_name` (or, when [`FakeWiphys::delete_ifaces`] emptied it, creates one under that
    /// name, as a driver that deletes the interface in the box forces the real one to);
    /// `ensure_iface` does the same for a phy in the host ([`FakeWiphys::come_home`]); `locate`
    /// lists its interfaces while boxed; `exists` is false once unplugged. Injected failures
    /// take precedence.
    #[derive(Clone, Default)]
    pub struct FakeWiphys {
        state: Arc<Mutex<State>>,
    }

    impl std::fmt::Debug for FakeWiphys {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let state = self.lock();
            f.debug_struct("FakeWiphys")
                .field("wiphys", &state.wiphys)
                .field("calls", &state.calls)
                .finish_non_exhaustive()
        }
    }

    impl FakeWiphys {
        /// An empty fake (only `lo` exists, and it is not wireless).
        pub fn new() -> Self {
            Self::default()
        }

        /// A netns-capable wiphy with one interface, handy for [`FakeWiphys::with_wiphy`].
        pub fn wiphy(index: u32, phy: &str, iface: &str) -> Wiphy {
            Wiphy {
                index,
                name: phy.to_owned(),
                ifaces: vec![IfaceInfo {
                    index: 100 + index,
                    name: iface.to_owned(),
                    mac: Some([0x02, 0, 0, 0, 0, index as u8]),
                }],
                netns_ok: true,
                pci_path: None,
                driver: Some("fake".to_owned()),
            }
        }

        /// Register a wiphy, in the host.
        pub fn with_wiphy(self, wiphy: Wiphy) -> Self {
            self.lock().wiphys.push((wiphy, Place::Host));
            self
        }

        /// Register a non-wireless interface name.
        pub fn with_netdev(self, name: &str) -> Self {
            self.lock().other_netdevs.push(name.to_owned());
            self
        }

        /// Make every call of `op` fail with `make()` until [`FakeWiphys::clear_failures`].
        pub fn fail_on(
            &self,
            op: Op,
            make: impl Fn() -> WiphyError + Send + Sync + 'static,
        ) -> &Self {
            self.lock().failures.insert(
                op,
                Failure {
                    make: Box::new(make),
                    once: false,
                },
            );
            self
        }

        /// Make the next call of `op` fail with `make()`.
        pub fn fail_once(
            &self,
            op: Op,
            make: impl Fn() -> WiphyError + Send + Sync + 'static,
        ) -> &Self {
            self.lock().failures.insert(
                op,
                Failure {
                    make: Box::new(make),
                    once: true,
                },
            );
            self
        }

        /// Remove all injected failures.
        pub fn clear_failures(&self) {
            self.lock().failures.clear();
        }

        /// Simulate unplugging wiphy `phy` (wherever it is).
        pub fn unplug(&self, phy: u32) {
            for (w, place) in &mut self.lock().wiphys {
                if w.index == phy {
                    *place = Place::Gone;
                }
            }
        }

        /// Simulate the interfaces of wiphy `phy` being deleted (in the box, by the agent or by a
        /// driver when the box's namespace dies): it keeps no interface.
        pub fn delete_ifaces(&self, phy: u32) {
            if let Some((w, _)) = find(&mut self.lock(), phy) {
                w.ifaces.clear();
            }
        }

        /// Simulate the kernel handing wiphy `phy` home on its own (the box's namespace died),
        /// with its interfaces unless `keep_ifaces` is false.
        pub fn come_home(&self, phy: u32, keep_ifaces: bool) {
            if let Some((w, place)) = find(&mut self.lock(), phy) {
                *place = Place::Host;
                if !keep_ifaces {
                    w.ifaces.clear();
                }
            }
        }

        /// The interfaces wiphy `phy` has now (wherever it is).
        pub fn ifaces(&self, phy: u32) -> Vec<IfaceInfo> {
            find(&mut self.lock(), phy)
                .map(|(w, _)| w.ifaces.clone())
                .unwrap_or_default()
        }

        /// Where wiphy `phy` is now (`None` if never registered).
        pub fn place(&self, phy: u32) -> Option<Place> {
            self.lock()
                .wiphys
                .iter()
                .find(|(w, _)| w.index == phy)
                .map(|(_, p)| *p)
        }

        /// The calls made so far, in order.
        pub fn calls(&self) -> Vec<Call> {
            self.lock().calls.clone()
        }

        /// Forget the recorded calls.
        pub fn clear_calls(&self) {
            self.lock().calls.clear();
        }

        fn lock(&self) -> MutexGuard<'_, State> {
            self.state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        /// Record `call`, then return the injected failure for `op`, if any.
        fn enter(&self, op: Op, call: Call) -> Result<MutexGuard<'_, State>, WiphyError> {
            let mut state = self.lock();
            state.calls.push(call);
            if let Some(failure) = state.failures.get(&op) {
                let err = (failure.make)();
                if failure.once {
                    state.failures.remove(&op);
                }
                return Err(err);
            }
            Ok(state)
        }
    }

    fn find(state: &mut State, phy: u32) -> Option<&mut (Wiphy, Place)> {
        state.wiphys.iter_mut().find(|(w, _)| w.index == phy)
    }

    /// Rename the first interface of `w` to `want`, or create one so named if it has none.
    fn restore(w: &mut Wiphy, want: Option<&str>) -> Result<String, WiphyError> {
        match (w.ifaces.first_mut(), want) {
            (Some(first), Some(want)) => first.name = want.to_owned(),
            (Some(_), None) => {}
            (None, Some(want)) => w.ifaces.push(IfaceInfo {
                index: 200 + w.index,
                name: want.to_owned(),
                mac: Some([0x02, 0, 0, 0, 0, w.index as u8]),
            }),
            (None, None) => {
                return Err(WiphyError::Netlink(format!("{} has no interface", w.name)));
            }
        }
        Ok(w.ifaces[0].name.clone())
    }

    impl Wiphys for FakeWiphys {
        async fn resolve(&self, name: &str) -> Result<Wiphy, WiphyError> {
            let state = self.enter(Op::Resolve, Call::Resolve(name.to_owned()))?;
            let hit = state.wiphys.iter().find(|(w, place)| {
                *place == Place::Host && (w.name == name || w.ifaces.iter().any(|i| i.name == name))
            });
            if let Some((w, _)) = hit {
                return Ok(w.clone());
            }
            if name == "lo" || state.other_netdevs.iter().any(|n| n == name) {
                return Err(WiphyError::NotWireless {
                    iface: name.to_owned(),
                });
            }
            Err(WiphyError::NoSuchDevice {
                name: name.to_owned(),
            })
        }

        async fn move_to_netns(&self, phy: u32, netns: BorrowedFd<'_>) -> Result<(), WiphyError> {
            let call = Call::MoveToNetns {
                phy,
                netns_fd: netns.as_raw_fd(),
            };
            let mut state = self.enter(Op::MoveToNetns, call)?;
            match find(&mut state, phy) {
                Some((w, place @ Place::Host)) => {
                    if !w.netns_ok {
                        return Err(WiphyError::NetnsUnsupported {
                            phy: w.name.clone(),
                        });
                    }
                    *place = Place::Boxed;
                    Ok(())
                }
                _ => Err(WiphyError::PhyGone { phy }),
            }
        }

        async fn move_back(
            &self,
            phy: u32,
            box_netns: &Path,
            _host_netns: BorrowedFd<'_>,
            restore_name: Option<&str>,
        ) -> Result<String, WiphyError> {
            let call = Call::MoveBack {
                phy,
                box_netns: box_netns.to_owned(),
                restore_name: restore_name.map(str::to_owned),
            };
            let mut state = self.enter(Op::MoveBack, call)?;
            let Some((w, place)) = find(&mut state, phy) else {
                return Err(WiphyError::PhyGone { phy });
            };
            if *place == Place::Gone {
                return Err(WiphyError::PhyGone { phy });
            }
            *place = Place::Host;
            restore(w, restore_name)
        }

        async fn ensure_iface(&self, phy: u32, name: &str) -> Result<String, WiphyError> {
            let call = Call::EnsureIface {
                phy,
                name: name.to_owned(),
            };
            let mut state = self.enter(Op::EnsureIface, call)?;
            match find(&mut state, phy) {
                Some((w, Place::Host)) => restore(w, Some(name)),
                _ => Err(WiphyError::PhyGone { phy }),
            }
        }

        async fn exists(&self, phy: u32, in_netns: Option<&Path>) -> Result<bool, WiphyError> {
            let call = Call::Exists {
                phy,
                in_netns: in_netns.map(Path::to_owned),
            };
            let mut state = self.enter(Op::Exists, call)?;
            Ok(match find(&mut state, phy) {
                Some((_, Place::Host)) => true,
                Some((_, Place::Boxed)) => in_netns.is_some(),
                _ => false,
            })
        }

        async fn locate(&self, phy: u32, netns: &Path) -> Result<Vec<IfaceInfo>, WiphyError> {
            let call = Call::Locate {
                phy,
                netns: netns.to_owned(),
            };
            let mut state = self.enter(Op::Locate, call)?;
            match find(&mut state, phy) {
                Some((w, Place::Boxed)) => Ok(w.ifaces.clone()),
                _ => Err(WiphyError::PhyGone { phy }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{Call, FakeWiphys, Op, Place};
    use super::*;
    use std::os::fd::AsFd;

    fn msg(cmd: Nl80211Command, attributes: Vec<Nl80211Attr>) -> Nl80211Message {
        Nl80211Message { cmd, attributes }
    }

    #[test]
    fn split_wiphy_dump_is_merged_per_index() {
        let messages = vec![
            msg(
                Nl80211Command::NewWiphy,
                vec![Nl80211Attr::Wiphy(3), Nl80211Attr::WiphyName("phy3".into())],
            ),
            msg(
                Nl80211Command::NewWiphy,
                vec![
                    Nl80211Attr::Wiphy(3),
                    Nl80211Attr::SupportedCommand(vec![
                        Nl80211Command::NewInterface,
                        Nl80211Command::SetWiphyNetns,
                    ]),
                ],
            ),
            msg(
                Nl80211Command::NewWiphy,
                vec![Nl80211Attr::Wiphy(5), Nl80211Attr::WiphyName("phy5".into())],
            ),
            msg(
                Nl80211Command::NewWiphy,
                vec![
                    Nl80211Attr::Wiphy(5),
                    Nl80211Attr::SupportedCommand(vec![Nl80211Command::Connect]),
                ],
            ),
            // No index: ignored.
            msg(
                Nl80211Command::NewWiphy,
                vec![Nl80211Attr::WiphyName("x".into())],
            ),
        ];
        let all = collect_wiphys(&messages);
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[&3],
            PhyInfo {
                index: 3,
                name: Some("phy3".into()),
                netns_ok: true
            }
        );
        assert_eq!(
            all[&5],
            PhyInfo {
                index: 5,
                name: Some("phy5".into()),
                netns_ok: false
            }
        );
    }

    #[test]
    fn interface_dump_keeps_netdevs_only() {
        let messages = vec![
            msg(
                Nl80211Command::NewInterface,
                vec![
                    Nl80211Attr::IfIndex(9),
                    Nl80211Attr::IfName("wlan1".into()),
                    Nl80211Attr::Wiphy(1),
                    Nl80211Attr::Mac([2, 0, 0, 0, 1, 0]),
                ],
            ),
            msg(
                Nl80211Command::NewInterface,
                vec![
                    Nl80211Attr::IfIndex(4),
                    Nl80211Attr::IfName("wlan0".into()),
                    Nl80211Attr::Wiphy(1),
                ],
            ),
            // A P2P-device wdev: no ifindex.
            msg(
                Nl80211Command::NewInterface,
                vec![Nl80211Attr::Wiphy(1), Nl80211Attr::Wdev(77)],
            ),
            msg(
                Nl80211Command::NewInterface,
                vec![
                    Nl80211Attr::IfIndex(2),
                    Nl80211Attr::IfName("wlan7".into()),
                    Nl80211Attr::Wiphy(0),
                ],
            ),
        ];
        let all = collect_interfaces(&messages);
        let of1 = ifaces_of(&all, 1);
        assert_eq!(
            of1.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
            ["wlan0", "wlan1"]
        );
        assert_eq!(of1[1].mac, Some([2, 0, 0, 0, 1, 0]));
        assert_eq!(of1[0].mac, None);
        assert_eq!(ifaces_of(&all, 0).len(), 1);
        assert!(ifaces_of(&all, 2).is_empty());
    }

    #[test]
    fn netns_fd_attribute_is_219_native_endian_u32() {
        let attr = Nl80211Attr::Other(DefaultNla::new(
            NL80211_ATTR_NETNS_FD,
            7u32.to_ne_bytes().to_vec(),
        ));
        let message = msg(
            Nl80211Command::SetWiphyNetns,
            vec![Nl80211Attr::Wiphy(2), attr],
        );
        let mut nl = NetlinkMessage::from(GenlMessage::from_payload(message));
        nl.finalize();
        let mut buf = vec![0u8; nl.header.length as usize];
        nl.serialize(&mut buf);
        // netlink header 16 + genl header 4, then WIPHY (len 8, type 1, u32 2), then NETNS_FD.
        let attrs = &buf[20..];
        assert_eq!(&attrs[0..4], &[8, 0, 1, 0]);
        assert_eq!(&attrs[4..8], &2u32.to_ne_bytes());
        assert_eq!(&attrs[8..12], &[8, 0, 219, 0]);
        assert_eq!(&attrs[12..16], &7u32.to_ne_bytes());
    }

    #[test]
    fn sysfs_index_and_device() {
        let tmp = tempfile::tempdir().unwrap();
        let sys = tmp.path();
        assert_eq!(sysfs_phy_index(sys, "wlan0").unwrap(), None);
        fs::create_dir_all(sys.join("class/net/wlan0/phy80211")).unwrap();
        fs::write(sys.join("class/net/wlan0/phy80211/index"), "4\n").unwrap();
        assert_eq!(sysfs_phy_index(sys, "wlan0").unwrap(), Some(4));
        fs::write(sys.join("class/net/wlan0/phy80211/index"), "x\n").unwrap();
        assert!(sysfs_phy_index(sys, "wlan0").is_err());
        assert_eq!(sysfs_phy_index(sys, "../x").unwrap(), None);

        let dev = sys.join("devices/pci0000:00/0000:06:00.0");
        let drv = sys.join("bus/pci/drivers/iwlwifi");
        fs::create_dir_all(&dev).unwrap();
        fs::create_dir_all(&drv).unwrap();
        std::os::unix::fs::symlink(&drv, dev.join("driver")).unwrap();
        fs::create_dir_all(sys.join("class/ieee80211/phy0")).unwrap();
        std::os::unix::fs::symlink(&dev, sys.join("class/ieee80211/phy0/device")).unwrap();
        let (path, driver) = sysfs_device(sys, "phy0");
        assert_eq!(path.as_deref(), fs::canonicalize(&dev).unwrap().to_str());
        assert_eq!(driver.as_deref(), Some("iwlwifi"));
        assert_eq!(sysfs_device(sys, "phy1"), (None, None));
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let e = WiphyError::NoSuchDevice { name: "wlx".into() };
        assert_eq!(
            e.to_string(),
            "no network interface or phy named wlx; `iw dev` lists wireless interfaces"
        );
        let e = WiphyError::NetnsUnsupported { phy: "phy0".into() };
        assert!(e.to_string().contains("WIPHY_FLAG_NETNS_OK"));
        assert!(e.to_string().contains("SET_WIPHY_NETNS"));
        let e = NlError::kernel("SetWiphyNetns", libc::EOPNOTSUPP).into_move_error("phy1");
        assert!(matches!(e, WiphyError::NetnsUnsupported { ref phy } if phy == "phy1"));
        let e = NlError::kernel("SetWiphyNetns", libc::EPERM).into_move_error("phy1");
        assert!(matches!(e, WiphyError::Netlink(ref t) if t.contains("SetWiphyNetns")));
    }

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_netns_runs_on_a_thread_that_exits_and_leaves_workers_alone() {
        use std::os::unix::fs::MetadataExt;
        let before = File::from(current_netns().unwrap())
            .metadata()
            .unwrap()
            .ino();
        let fd = current_netns().unwrap();
        let (name, ino) = in_netns(fd, || {
            let ino = File::from(current_netns()?).metadata()?.ino();
            Ok((std::thread::current().name().map(str::to_owned), ino))
        })
        .await
        .unwrap();
        assert_eq!(name.as_deref(), Some("wi-netns"));
        assert_eq!(ino, before);
        let after = File::from(current_netns().unwrap())
            .metadata()
            .unwrap()
            .ino();
        assert_eq!(before, after);
    }

    #[tokio::test]
    async fn real_resolve_of_loopback_is_not_wireless() {
        // Needs no radio: `lo` exists in every namespace. Without nl80211 in the kernel
        // (no cfg80211), the generic-netlink family lookup fails instead: also acceptable here.
        match Nl80211::new().resolve("lo").await {
            Err(WiphyError::NotWireless { iface }) => assert_eq!(iface, "lo"),
            Err(WiphyError::Netlink(text)) => assert!(!text.is_empty()),
            other => panic!("unexpected: {other:?}"),
        }
        match Nl80211::new().resolve("no-such-if0").await {
            Err(WiphyError::NoSuchDevice { name }) => assert_eq!(name, "no-such-if0"),
            Err(WiphyError::Netlink(_)) => {}
            other => panic!("unexpected: {other:?}"),
        }
    }

    #[tokio::test]
    async fn fake_round_trip_records_calls() {
        let fake = FakeWiphys::new()
            .with_wiphy(FakeWiphys::wiphy(0, "phy0", "wlp6s0"))
            .with_netdev("eth0");
        let shared = fake.clone();
        assert_eq!(fake.resolve("wlp6s0").await.unwrap().index, 0);
        assert_eq!(fake.resolve("phy0").await.unwrap().index, 0);
        assert!(matches!(
            fake.resolve("eth0").await,
            Err(WiphyError::NotWireless { .. })
        ));
        assert!(matches!(
            fake.resolve("lo").await,
            Err(WiphyError::NotWireless { .. })
        ));
        assert!(matches!(
            fake.resolve("wlan9").await,
            Err(WiphyError::NoSuchDevice { .. })
        ));

        let ns = current_netns().unwrap();
        let boxns = Path::new("/proc/1/ns/net");
        fake.move_to_netns(0, ns.as_fd()).await.unwrap();
        assert_eq!(shared.place(0), Some(Place::Boxed));
        assert!(matches!(
            fake.resolve("wlp6s0").await,
            Err(WiphyError::NoSuchDevice { .. })
        ));
        assert_eq!(fake.locate(0, boxns).await.unwrap()[0].name, "wlp6s0");
        assert!(fake.exists(0, Some(boxns)).await.unwrap());
        assert!(!fake.exists(0, None).await.unwrap());

        fake.fail_once(Op::MoveBack, || WiphyError::Netlink("boom".into()));
        assert!(
            fake.move_back(0, boxns, ns.as_fd(), Some("wlp6s0"))
                .await
                .is_err()
        );
        let name = fake
            .move_back(0, boxns, ns.as_fd(), Some("wlp6s0"))
            .await
            .unwrap();
        assert_eq!(name, "wlp6s0");
        assert_eq!(shared.place(0), Some(Place::Host));

        shared.unplug(0);
        assert!(!fake.exists(0, Some(boxns)).await.unwrap());
        assert!(matches!(
            fake.move_to_netns(0, ns.as_fd()).await,
            Err(WiphyError::PhyGone { phy: 0 })
        ));

        let calls = shared.calls();
        assert_eq!(calls[0], Call::Resolve("wlp6s0".into()));
        assert!(calls.iter().any(|c| matches!(
            c,
            Call::MoveBack { phy: 0, restore_name: Some(n), .. } if n == "wlp6s0"
        )));
        assert_eq!(
            calls
                .iter()
                .filter(|c| matches!(c, Call::MoveBack { .. }))
                .count(),
            2
        );
    }

    #[tokio::test]
    async fn fake_phy_whose_interface_vanished_in_the_box_comes_home_with_one() {
        let fake = FakeWiphys::new().with_wiphy(FakeWiphys::wiphy(2, "phy2", "wlan2"));
        let ns = current_netns().unwrap();
        let boxns = Path::new("/proc/1/ns/net");
        // Explicit return: the interface was deleted inside the box.
        fake.move_to_netns(2, ns.as_fd()).await.unwrap();
        fake.delete_ifaces(2);
        assert!(fake.locate(2, boxns).await.unwrap().is_empty());
        let name = fake
            .move_back(2, boxns, ns.as_fd(), Some("wlan2"))
            .await
            .unwrap();
        assert_eq!(name, "wlan2");
        assert_eq!(fake.place(2), Some(Place::Host));
        assert_eq!(fake.resolve("wlan2").await.unwrap().index, 2);
        // Without a name to restore there is nothing to create.
        fake.move_to_netns(2, ns.as_fd()).await.unwrap();
        fake.delete_ifaces(2);
        assert!(fake.move_back(2, boxns, ns.as_fd(), None).await.is_err());

        // The kernel handed it home bare (the box's netns died): ensure_iface creates it.
        fake.come_home(2, false);
        assert!(fake.ifaces(2).is_empty());
        assert_eq!(fake.ensure_iface(2, "wlan2").await.unwrap(), "wlan2");
        assert_eq!(fake.ifaces(2)[0].name, "wlan2");
        // Home with an interface under another name: renamed.
        fake.move_to_netns(2, ns.as_fd()).await.unwrap();
        fake.come_home(2, true);
        assert_eq!(fake.ensure_iface(2, "wlp2s0").await.unwrap(), "wlp2s0");
        assert_eq!(fake.ifaces(2).len(), 1);
        // Not in the host: PhyGone.
        fake.move_to_netns(2, ns.as_fd()).await.unwrap();
        assert!(matches!(
            fake.ensure_iface(2, "wlan2").await,
            Err(WiphyError::PhyGone { phy: 2 })
        ));
        assert!(fake.calls().contains(&Call::EnsureIface {
            phy: 2,
            name: "wlp2s0".into()
        }));
    }

    #[test]
    fn new_interface_request_names_the_phy_the_name_and_station() {
        let message = msg(
            Nl80211Command::NewInterface,
            vec![
                Nl80211Attr::Wiphy(3),
                Nl80211Attr::IfName("wlan1".into()),
                Nl80211Attr::IfType(Nl80211InterfaceType::Station),
            ],
        );
        let mut nl = NetlinkMessage::from(GenlMessage::from_payload(message));
        nl.finalize();
        let mut buf = vec![0u8; nl.header.length as usize];
        nl.serialize(&mut buf);
        // genl cmd 7 (NEW_INTERFACE); WIPHY (1) = 3; IFNAME (4) = "wlan1\0"; IFTYPE (5) = 2.
        assert_eq!(buf[16], 7);
        let attrs = &buf[20..];
        assert_eq!(&attrs[0..8], &[8, 0, 1, 0, 3, 0, 0, 0]);
        assert_eq!(&attrs[8..12], &[10, 0, 4, 0]);
        assert_eq!(&attrs[12..18], b"wlan1\0");
        assert_eq!(&attrs[20..28], &[8, 0, 5, 0, 2, 0, 0, 0]);
    }

    #[tokio::test]
    async fn fake_refuses_a_driver_without_netns_support() {
        let mut wiphy = FakeWiphys::wiphy(4, "phy4", "wlan4");
        wiphy.netns_ok = false;
        let fake = FakeWiphys::new().with_wiphy(wiphy);
        let ns = current_netns().unwrap();
        assert!(matches!(
            fake.move_to_netns(4, ns.as_fd()).await,
            Err(WiphyError::NetnsUnsupported { .. })
        ));
        fake.fail_on(Op::Resolve, || WiphyError::Netlink("down".into()));
        assert!(fake.resolve("wlan4").await.is_err());
        assert!(fake.resolve("wlan4").await.is_err());
        fake.clear_failures();
        assert!(fake.resolve("wlan4").await.is_ok());
    }
}
