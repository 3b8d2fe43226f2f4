//! [`Nl80211`], the real [`Wiphys`](super::Wiphys): nl80211 requests through wl-nl80211, links
//! through rtnetlink, sockets made inside a namespace on a short-lived thread (see the module
//! facts in [`super`]).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use rtnetlink::LinkUnspec;
use tracing::{debug, info, warn};
use wl_nl80211::packet_core::{
    DefaultNla, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use wl_nl80211::packet_generic::GenlMessage;
use wl_nl80211::{
    Nl80211Attr, Nl80211Command, Nl80211Handle, Nl80211InterfaceType, Nl80211Message,
};

use super::{IfaceInfo, Wiphy, WiphyError, Wiphys};
use crate::validate::Bssid;

/// `NL80211_ATTR_NETNS_FD`: a network-namespace file descriptor (u32, native endian).
/// wl-nl80211 has no typed attribute for it.
pub const NL80211_ATTR_NETNS_FD: u16 = 219;

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
        restore_mac: Option<[u8; 6]>,
    ) -> Result<String, WiphyError> {
        let box_fd = open_netns_file(box_netns)?;
        let host_fd = host_netns.try_clone_to_owned()?;

        // In the box: down its interfaces, then send the move from there (nl80211 looks the
        // wiphy up in the sender's namespace). ENODEV: the phy is not in the box (it came home
        // on its own, or was unplugged) — the host side below tells which.
        let phy_name = format!("phy index {phy}");
        let (mut box_nl, box_rt) = in_netns(box_fd, open_sockets).await?;
        // Network interfaces the box made on the phy are deleted here, before they can land in
        // the host as links; a P2P device (no netdev) is left to the host side, after the name
        // is back (deleting the one the box's wpa_supplicant made costs ~0.1-0.2 s here).
        let messages = dump_interface_messages(&mut box_nl).await?;
        let wdevs = collect_wdevs(&messages, phy);
        let netdevs: Vec<Wdev> = wdevs.into_iter().filter(|w| w.index.is_some()).collect();
        prune_extras(&mut box_nl, phy, &netdevs, "box").await;
        let keep = netdevs.first().and_then(|w| w.index);
        for iface in ifaces_of(&collect_interfaces(&messages), phy)
            .into_iter()
            .filter(|i| Some(i.index) == keep)
        {
            if let Err(e) = set_link_down(&box_rt, iface.index).await {
                warn!(phy, iface = %iface.name, cause = %e,
                    "could not bring the interface down in the box; moving anyway");
            }
            // Home as the station it left as, whatever the box made of it (an access point:
            // the netns box is stopped only after this move, so its own cleanup comes late).
            if let Err(e) = set_station(&mut box_nl, iface.index).await {
                warn!(phy, iface = %iface.name, cause = %e.text,
                    "could not put the interface back in station mode; moving anyway");
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
        restore_iface(&mut host_nl, &host_rt, phy, restore_name, restore_mac).await
    }

    async fn ensure_iface(
        &self,
        phy: u32,
        name: &str,
        mac: Option<[u8; 6]>,
    ) -> Result<String, WiphyError> {
        let (mut nl, rt) = open_sockets()?;
        restore_iface(&mut nl, &rt, phy, Some(name), mac).await
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
    Ok(collect_interfaces(&dump_interface_messages(nl).await?))
}

async fn dump_interface_messages(
    nl: &mut Nl80211Handle,
) -> Result<Vec<Nl80211Message>, WiphyError> {
    Ok(nl80211_request(
        nl,
        Nl80211Command::GetInterface,
        Vec::new(),
        NLM_F_REQUEST | NLM_F_DUMP,
    )
    .await?)
}

/// A wireless device of a wiphy as nl80211 dumps it: a network interface, or one without a
/// netdev (a P2P device).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wdev {
    /// `NL80211_ATTR_WDEV`: cfg80211 numbers a wiphy's wireless devices in the order they were
    /// made and never reuses a number, whatever namespace the wiphy is in.
    id: u64,
    /// The netdev's index, when it has one.
    index: Option<u32>,
    name: Option<String>,
}

fn collect_wdevs(messages: &[Nl80211Message], phy: u32) -> Vec<Wdev> {
    let mut out = Vec::new();
    for message in messages {
        let (mut of, mut id, mut index, mut name) = (None, None, None, None);
        for attr in &message.attributes {
            match attr {
                Nl80211Attr::Wiphy(i) => of = Some(*i),
                Nl80211Attr::Wdev(w) => id = Some(*w),
                Nl80211Attr::IfIndex(i) => index = Some(*i),
                Nl80211Attr::IfName(n) => name = Some(n.clone()),
                _ => {}
            }
        }
        if let (Some(p), Some(id)) = (of, id)
            && p == phy
        {
            out.push(Wdev { id, index, name });
        }
    }
    out.sort_by_key(|w| w.id);
    out
}

/// The wireless devices of a wiphy to delete so that it goes home as it left: all but the
/// oldest network interface. The phy left the host with one interface; anything the box made
/// on it (a monitor interface, a second station, an access point, a P2P device) is younger —
/// and would otherwise land in the host with the phy, a link the host never made.
fn extras(wdevs: &[Wdev]) -> Vec<&Wdev> {
    let keep = wdevs.iter().find(|w| w.index.is_some()).map(|w| w.id);
    wdevs.iter().filter(|w| Some(w.id) != keep).collect()
}

/// Delete the [`extras`] of wiphy `phy` in `nl`'s namespace, each logged. A device that is
/// already gone (ENODEV) is not a failure; any other failure is logged and the rest go on.
async fn prune_extras(nl: &mut Nl80211Handle, phy: u32, wdevs: &[Wdev], place: &str) {
    for w in extras(wdevs) {
        let name = w.name.as_deref().unwrap_or("(no netdev)");
        let target = match w.index {
            Some(i) => Nl80211Attr::IfIndex(i),
            None => Nl80211Attr::Wdev(w.id),
        };
        match nl80211_request(
            nl,
            Nl80211Command::DelInterface,
            vec![target],
            NLM_F_REQUEST | NLM_F_ACK,
        )
        .await
        {
            // wpa_supplicant in the box makes a P2P device of its own: routine, not a warning
            Ok(_) if w.index.is_none() => info!(
                phy,
                wdev = w.id,
                place,
                "deleted the P2P device made on the phy in the box"
            ),
            Ok(_) => warn!(
                phy,
                iface = name,
                wdev = w.id,
                place,
                "deleted an interface made on the phy while it was in the box; only the one it left with comes home"
            ),
            Err(NlError {
                errno: Some(libc::ENODEV),
                ..
            }) => {}
            Err(e) => warn!(phy, iface = name, wdev = w.id, place, cause = %e.text,
                "could not delete an interface made on the phy in the box"),
        }
    }
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

/// `NL80211_CMD_SET_INTERFACE` type station (managed) for interface `index`, which must be
/// down: what the box made of it (an access point, `wifi_ap_start`) does not come home. A
/// no-op for a station.
async fn set_station(nl: &mut Nl80211Handle, index: u32) -> Result<(), NlError> {
    let attributes = vec![
        Nl80211Attr::IfIndex(index),
        Nl80211Attr::IfType(Nl80211InterfaceType::Station),
    ];
    nl80211_request(
        nl,
        Nl80211Command::SetInterface,
        attributes,
        NLM_F_REQUEST | NLM_F_ACK,
    )
    .await
    .map(drop)
}

/// In the namespace of `nl`/`rt`: give wiphy `phy` an interface named `want` (create a station
/// interface if it has none, rename the first one otherwise). The final name.
async fn restore_iface(
    nl: &mut Nl80211Handle,
    rt: &rtnetlink::Handle,
    phy: u32,
    want: Option<&str>,
    mac: Option<[u8; 6]>,
) -> Result<String, WiphyError> {
    let messages = dump_interface_messages(nl).await?;
    let wdevs = collect_wdevs(&messages, phy);
    let ifaces = ifaces_of(&collect_interfaces(&messages), phy);
    if ifaces.is_empty() && dump_wiphys(nl, Some(phy)).await?.is_empty() {
        return Err(WiphyError::PhyGone { phy });
    }
    // The one it left with: the oldest network interface (see `extras`).
    let keep = wdevs.iter().find_map(|w| w.index);
    let Some(primary) = ifaces
        .iter()
        .find(|i| Some(i.index) == keep)
        .or(ifaces.first())
    else {
        prune_extras(nl, phy, &wdevs, "host").await;
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
    if let Some(mac) = mac.filter(|m| primary.mac != Some(*m)) {
        restore_address(rt, phy, primary, mac).await;
    }
    let name = match want.filter(|want| *want != primary.name) {
        None => primary.name.clone(),
        Some(want) => match rename_link(rt, primary.index, want).await {
            Ok(()) => {
                info!(phy, from = %primary.name, to = want, "interface name restored");
                want.to_owned()
            }
            Err(e) => {
                let taken = e.errno == Some(libc::EEXIST);
                warn!(phy, iface = %primary.name, wanted = want, taken, cause = %e.text,
                    "could not restore the interface name; it keeps the name it came back with");
                primary.name.clone()
            }
        },
    };
    // What else came home with it: everything, for a phy that came home on its own (the box's
    // namespace died); a P2P device and whatever raced the box-side prune, for one that
    // `move_back` moved.
    prune_extras(nl, phy, &wdevs, "host").await;
    Ok(name)
}

/// Give the interface back the MAC address it left with: the box may set its own (wpa_supplicant's
/// randomisation, or a hostile agent's choice), and the host must not carry it. A failure is
/// logged; the interface keeps the address it came back with.
async fn restore_address(rt: &rtnetlink::Handle, phy: u32, iface: &IfaceInfo, mac: [u8; 6]) {
    let r = async {
        rt.link()
            .set(LinkUnspec::new_with_index(iface.index).down().build())
            .execute()
            .await
            .map_err(|e| route_error("link down", e))?;
        rt.link()
            .set(
                LinkUnspec::new_with_index(iface.index)
                    .address(mac.to_vec())
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| route_error("set address", e))
    }
    .await;
    let from = iface
        .mac
        .map(|m| Bssid::from(m).to_string())
        .unwrap_or_default();
    let to = Bssid::from(mac).to_string();
    match r {
        Ok(()) => info!(phy, iface = %iface.name, from, to, "MAC address restored"),
        Err(e) => warn!(phy, iface = %iface.name, from, to, cause = %e.text,
            "could not restore the MAC address; the interface keeps the one it came back with"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::wiphy::current_netns;

    fn msg(cmd: Nl80211Command, attributes: Vec<Nl80211Attr>) -> Nl80211Message {
        Nl80211Message { cmd, attributes }
    }

    #[test]
    fn only_the_oldest_netdev_of_the_phy_is_kept() {
        let iface = |phy: u32, wdev: u64, index: Option<u32>, name: &str| {
            let mut a = vec![Nl80211Attr::Wiphy(phy), Nl80211Attr::Wdev(wdev)];
            a.extend(index.map(Nl80211Attr::IfIndex));
            a.push(Nl80211Attr::IfName(name.into()));
            msg(Nl80211Command::NewInterface, a)
        };
        let messages = vec![
            // dumped out of order, another phy's among them
            iface(1, (1 << 32) | 7, Some(9), "wimon0"),
            iface(1, (1 << 32) | 2, Some(4), "wlan0"),
            iface(2, (2 << 32) | 1, Some(5), "wlan1"),
            iface(1, (1 << 32) | 1, None, "p2p-dev-wlan0"),
            iface(1, (1 << 32) | 8, Some(10), "wlan0ap"),
        ];
        let wdevs = collect_wdevs(&messages, 1);
        assert_eq!(wdevs.len(), 4);
        let gone: Vec<_> = extras(&wdevs)
            .iter()
            .map(|w| w.name.clone().unwrap())
            .collect();
        // the P2P device is older but has no netdev: the station interface is the one kept
        assert_eq!(gone, ["p2p-dev-wlan0", "wimon0", "wlan0ap"]);
        // the box deleted the one it got and made another: that one is kept (it has the name
        // restored and is made a station)
        let wdevs = collect_wdevs(&messages[..1], 1);
        assert!(extras(&wdevs).is_empty());
        assert!(extras(&[]).is_empty());
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
}
