//! The box's wireless interfaces: find the station's one in the agent's network namespace,
//! waiting for it to arrive; add and delete the extra ones the agent makes on its phy (the
//! monitor of an 802.11 capture, the AP of concurrent access-point mode) and delete those an
//! earlier agent left behind; read the phy's interface combinations ([`concurrency`]).
//!
//! The host moves the phy in *after* the box starts, so the agent polls nl80211 (whose interface
//! dump is scoped to the sender's netns) until a wireless interface shows up.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use wl_nl80211::Nl80211Attr;

/// A wireless interface seen through nl80211.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WirelessIface {
    /// Interface name (`wlan0`).
    pub name: String,
    /// Interface index in this netns.
    pub index: u32,
    /// Index of the wiphy it belongs to.
    pub wiphy: u32,
}

/// The wireless interfaces in this network namespace.
pub async fn list() -> anyhow::Result<Vec<WirelessIface>> {
    let (conn, handle, _) = wl_nl80211::new_connection()?;
    let task = tokio::spawn(conn);
    let mut out = Vec::new();
    let mut dump = handle.interface().get(Vec::new()).execute().await;
    while let Some(msg) = dump.try_next().await? {
        let (mut name, mut index, mut wiphy) = (None, None, None);
        for attr in &msg.payload.attributes {
            match attr {
                Nl80211Attr::IfName(n) => name = Some(n.clone()),
                Nl80211Attr::IfIndex(i) => index = Some(*i),
                Nl80211Attr::Wiphy(w) => wiphy = Some(*w),
                _ => {}
            }
        }
        if let (Some(name), Some(index), Some(wiphy)) = (name, index, wiphy) {
            out.push(WirelessIface { name, index, wiphy });
        }
    }
    task.abort();
    Ok(out)
}

/// Wait up to `timeout` for a wireless interface (the one called `wanted`, if given).
pub async fn wait_for(wanted: Option<&str>, timeout: Duration) -> anyhow::Result<WirelessIface> {
    let deadline = Instant::now() + timeout;
    let mut announced = false;
    loop {
        let found = list().await?;
        let pick = match wanted {
            Some(w) => found.iter().find(|i| i.name == w).cloned(),
            // Not an extra interface of an earlier agent (`wlan0ap` next to `wlan0`).
            None => found
                .iter()
                .find(|i| {
                    !found.iter().any(|o| {
                        o.index != i.index
                            && o.wiphy == i.wiphy
                            && extra_names(&o.name).contains(&i.name)
                    })
                })
                .cloned(),
        };
        if let Some(i) = pick {
            return Ok(i);
        }
        if Instant::now() >= deadline {
            let seen: Vec<_> = found.iter().map(|i| i.name.as_str()).collect();
            anyhow::bail!(
                "no wireless interface{} appeared in this network namespace within {:?} \
                 (wireless interfaces present: {:?}); the host must move the phy in with \
                 `wifi-isolate run` or `iw phy PHY set netns PID`",
                wanted.map(|w| format!(" named {w}")).unwrap_or_default(),
                timeout,
                seen
            );
        }
        if !announced {
            tracing::info!(wanted = ?wanted, "waiting for a wireless interface to arrive");
            announced = true;
        }
        // A dump of an (almost) empty namespace is cheap: look often, so the agent starts
        // its work right after the host's move, not up to a poll interval later.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- Extra interfaces on the box's phy (the monitor of a capture, the AP of concurrent mode) ---

/// The errno of a netlink error, if it is one.
pub fn netlink_errno(e: &wl_nl80211::Nl80211Error) -> Option<i32> {
    match e {
        wl_nl80211::Nl80211Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

/// The wiphy of interface `index`, over an open nl80211 connection.
async fn wiphy_via(handle: &wl_nl80211::Nl80211Handle, index: u32) -> anyhow::Result<u32> {
    let mut h = handle.interface();
    let mut s = h.get(vec![Nl80211Attr::IfIndex(index)]).execute().await;
    let mut wiphy = None;
    while let Some(msg) = s.try_next().await? {
        for a in &msg.payload.attributes {
            if let Nl80211Attr::Wiphy(w) = a {
                wiphy = wiphy.or(Some(*w));
            }
        }
    }
    wiphy.ok_or_else(|| anyhow::anyhow!("nl80211 named no wiphy for interface {index}"))
}

/// Why [`add`] failed: the kernel's errno (a driver or an interface combination that refuses
/// the interface answers `EOPNOTSUPP`, `EBUSY` or `EINVAL`), or another error.
#[derive(Debug)]
pub enum AddError {
    /// The kernel refused with this errno.
    Refused(i32, String),
    /// Anything else (the nl80211 connection, the phy lookup).
    Other(anyhow::Error),
}

impl AddError {
    /// Whether the driver or its interface combinations refused the interface.
    pub fn unsupported(&self) -> bool {
        matches!(self, AddError::Refused(e, _) if [libc::EOPNOTSUPP, libc::EBUSY, libc::EINVAL].contains(e))
    }
}

impl std::fmt::Display for AddError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddError::Refused(_, text) => f.write_str(text),
            AddError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

/// Add an interface `name` of type `kind` on the phy of `station_index` (nl80211
/// `NEW_INTERFACE`; it appears in the phy's netns, the box, down), with `mac` if given. A
/// leftover of that name (an agent that died with it) is deleted first ([`delete_leftover`]).
/// Its ifindex.
pub async fn add(
    station_index: u32,
    kind: wl_nl80211::Nl80211InterfaceType,
    name: &str,
    mac: Option<[u8; 6]>,
    net: &crate::agent::netcfg::NetCfg,
) -> Result<u32, AddError> {
    let (conn, handle, _) = wl_nl80211::new_connection().map_err(|e| AddError::Other(e.into()))?;
    let task = tokio::spawn(conn);
    let r = async {
        let wiphy = wiphy_via(&handle, station_index)
            .await
            .map_err(AddError::Other)?;
        delete_leftover(net, wiphy, name).await;
        let mut attrs = wl_nl80211::Nl80211NewInterface::new(wiphy, kind, name.to_string()).build();
        if let Some(m) = mac {
            attrs.push(Nl80211Attr::Mac(m));
        }
        let mut h = handle.interface();
        let mut s = h.add(attrs).execute().await;
        let mut index = None;
        loop {
            match s.try_next().await {
                Ok(Some(msg)) => {
                    index = index.or(msg.payload.attributes.iter().find_map(|a| match a {
                        Nl80211Attr::IfIndex(i) => Some(*i),
                        _ => None,
                    }))
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(match netlink_errno(&e) {
                        Some(errno) => AddError::Refused(errno, e.to_string()),
                        None => AddError::Other(e.into()),
                    });
                }
            }
        }
        Ok(index)
    }
    .await;
    task.abort();
    match r? {
        Some(i) => Ok(i),
        None => net.index(name).await.ok().flatten().ok_or_else(|| {
            AddError::Other(anyhow::anyhow!(
                "interface {name} was made but has no ifindex"
            ))
        }),
    }
}

/// Delete interface `index` (nl80211 `DEL_INTERFACE`); already gone is fine.
pub async fn delete(index: u32) -> anyhow::Result<()> {
    let (conn, handle, _) = wl_nl80211::new_connection()?;
    let task = tokio::spawn(conn);
    let mut h = handle.interface();
    let r = async {
        let mut s = h.delete(vec![Nl80211Attr::IfIndex(index)]).execute().await;
        while s.try_next().await?.is_some() {}
        Ok::<_, wl_nl80211::Nl80211Error>(())
    }
    .await;
    task.abort();
    match r {
        // Already gone (ENODEV): nothing left behind.
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(()),
        r => Ok(r?),
    }
}

/// Delete the interface called `name` if there is one on `wiphy` (a leftover of an agent that
/// died with it); whether one went. An interface of that name on another phy, or not
/// wireless, is left alone.
pub async fn delete_leftover(net: &crate::agent::netcfg::NetCfg, wiphy: u32, name: &str) -> bool {
    let Ok(Some(old)) = net.index(name).await else {
        return false;
    };
    let on_ours = match wl_nl80211::new_connection() {
        Ok((conn, handle, _)) => {
            let task = tokio::spawn(conn);
            let r = wiphy_via(&handle, old).await;
            task.abort();
            r.is_ok_and(|w| w == wiphy)
        }
        Err(_) => false,
    };
    if !on_ours {
        return false;
    }
    match delete(old).await {
        Ok(()) => {
            tracing::info!(
                iface = name,
                "a leftover interface of an earlier agent deleted"
            );
            true
        }
        Err(e) => {
            tracing::warn!(iface = name, cause = %format!("{e:#}"), "cannot delete a leftover interface");
            false
        }
    }
}

/// The names of the extra interfaces this agent makes next to `station` (the monitor of a
/// capture, the AP of concurrent mode): not the box's station interface when the agent picks one.
pub fn extra_names(station: &str) -> [String; 2] {
    [
        crate::agent::capture::monitor::MONITOR_NAME.to_string(),
        crate::agent::ap::ap_iface_name(station),
    ]
}

/// On the agent's start: delete the extra interfaces an earlier agent left on the phy
/// ([`extra_names`]); the names deleted.
pub async fn delete_leftovers(
    net: &crate::agent::netcfg::NetCfg,
    station: &WirelessIface,
) -> Vec<String> {
    let mut gone = Vec::new();
    for name in extra_names(&station.name) {
        if delete_leftover(net, station.wiphy, &name).await {
            gone.push(name);
        }
    }
    gone
}

// --- The phy's interface combinations (which interfaces may run at once) ---------------------

/// One limit of an interface combination: at most `max` interfaces of these types together.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct IfaceLimit {
    /// At most this many interfaces of these types.
    pub max: u32,
    /// The interface types (station, ap, adhoc, mesh_point, p2p_client, p2p_go, p2p_device,
    /// monitor, ap_vlan, wds, ocb, nan).
    pub types: Vec<String>,
}

/// One of the phy's valid interface combinations (nl80211 `NL80211_ATTR_INTERFACE_COMBINATIONS`,
/// what `iw phy PHY info` lists under "valid interface combinations").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct IfaceCombination {
    /// The limits per type.
    pub limits: Vec<IfaceLimit>,
    /// At most this many interfaces in all (iw's `total`).
    pub max_interfaces: u32,
    /// On at most this many different channels at once (iw's `#channels`).
    pub num_different_channels: u32,
}

/// Whether the box's phy may run a station and an access point at once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ApConcurrency {
    /// The wiphy index (`phyN` in the box).
    pub wiphy: u32,
    /// One station and one AP at once: some combination allows both (`wifi_ap_start` with
    /// `mode: "concurrent"`).
    pub station_and_ap: bool,
    /// On how many different channels they may run (the most any such combination allows;
    /// 1: the AP shares the station's channel). 0 when `station_and_ap` is false.
    pub channels: u32,
    /// Every combination the phy reports.
    pub combinations: Vec<IfaceCombination>,
}

/// The name of an interface type as [`IfaceLimit::types`] writes it.
pub fn type_name(t: &wl_nl80211::Nl80211InterfaceType) -> String {
    use wl_nl80211::Nl80211InterfaceType as T;
    match t {
        T::Unspecified => "unspecified".into(),
        T::Adhoc => "adhoc".into(),
        T::Station => "station".into(),
        T::Ap => "ap".into(),
        T::ApVlan => "ap_vlan".into(),
        T::Wds => "wds".into(),
        T::Monitor => "monitor".into(),
        T::MeshPoint => "mesh_point".into(),
        T::P2pClient => "p2p_client".into(),
        T::P2pGo => "p2p_go".into(),
        T::P2pDevice => "p2p_device".into(),
        T::Ocb => "ocb".into(),
        T::Nan => "nan".into(),
        T::Other(n) => format!("type_{n}"),
    }
}

impl ApConcurrency {
    /// Decide from the combinations: a combination allows one station and one AP when it
    /// allows two interfaces and its limits take a station and an AP (one limit with both
    /// types and `max >= 2`, or two limits, one for each).
    pub fn decide(wiphy: u32, combinations: Vec<IfaceCombination>) -> ApConcurrency {
        let fits = |c: &IfaceCombination| {
            let has = |l: &IfaceLimit, t: &str| l.types.iter().any(|x| x == t) && l.max >= 1;
            c.max_interfaces >= 2
                && c.limits.iter().enumerate().any(|(i, s)| {
                    has(s, "station")
                        && c.limits
                            .iter()
                            .enumerate()
                            .any(|(j, a)| has(a, "ap") && (i != j || s.max >= 2))
                })
        };
        let channels = combinations
            .iter()
            .filter(|c| fits(c))
            .map(|c| c.num_different_channels.max(1))
            .max()
            .unwrap_or(0);
        ApConcurrency {
            wiphy,
            station_and_ap: channels > 0,
            channels,
            combinations,
        }
    }
}

/// The interface combinations of the phy of interface `index` (nl80211 `GET_WIPHY`, split
/// dump: the combinations come in one of its later messages).
pub async fn concurrency(index: u32) -> anyhow::Result<ApConcurrency> {
    use wl_nl80211::{Nl80211IfaceCombAttribute as C, Nl80211IfaceCombLimitAttribute as L};
    let (conn, handle, _) = wl_nl80211::new_connection()?;
    let task = tokio::spawn(conn);
    let r = async {
        let wiphy = wiphy_via(&handle, index).await?;
        let mut s = handle
            .wireless_physic()
            .get()
            .wiphy_index(wiphy)
            .execute()
            .await;
        let mut out = Vec::new();
        while let Some(msg) = s.try_next().await? {
            let attrs = &msg.payload.attributes;
            let ours = attrs
                .iter()
                .any(|a| matches!(a, Nl80211Attr::Wiphy(w) if w == &wiphy));
            if !ours {
                continue;
            }
            for a in attrs {
                let Nl80211Attr::InterfaceCombination(combs) = a else {
                    continue;
                };
                for comb in combs {
                    let mut c = IfaceCombination {
                        limits: Vec::new(),
                        max_interfaces: 0,
                        num_different_channels: 0,
                    };
                    for ca in &comb.attributes {
                        match ca {
                            C::Limits(ls) => {
                                for l in ls {
                                    let mut lim = IfaceLimit {
                                        max: 0,
                                        types: Vec::new(),
                                    };
                                    for la in &l.attributes {
                                        match la {
                                            L::Max(m) => lim.max = *m,
                                            L::Iftypes(ts) => {
                                                lim.types = ts.iter().map(type_name).collect()
                                            }
                                            _ => {}
                                        }
                                    }
                                    c.limits.push(lim);
                                }
                            }
                            C::Maxnum(m) => c.max_interfaces = *m,
                            C::NumChannels(n) => c.num_different_channels = *n,
                            _ => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
        Ok::<_, anyhow::Error>(ApConcurrency::decide(wiphy, out))
    }
    .await;
    task.abort();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comb(limits: &[(u32, &[&str])], total: u32, channels: u32) -> IfaceCombination {
        IfaceCombination {
            limits: limits
                .iter()
                .map(|(max, types)| IfaceLimit {
                    max: *max,
                    types: types.iter().map(|t| t.to_string()).collect(),
                })
                .collect(),
            max_interfaces: total,
            num_different_channels: channels,
        }
    }

    #[test]
    fn station_and_ap_at_once_only_where_a_combination_takes_both() {
        // mac80211_hwsim: one limit for managed and AP (and more), one channel.
        let hwsim = comb(
            &[
                (1, &["adhoc"]),
                (2048, &["station", "ap", "p2p_client", "p2p_go"]),
            ],
            2048,
            1,
        );
        let c = ApConcurrency::decide(0, vec![hwsim.clone()]);
        assert!(c.station_and_ap);
        assert_eq!(c.channels, 1);
        // Two limits, one each, two channels in a second combination.
        let two = comb(&[(1, &["station"]), (1, &["ap"])], 2, 2);
        let c = ApConcurrency::decide(0, vec![hwsim, two]);
        assert_eq!((c.station_and_ap, c.channels), (true, 2));
        // One limit of max 1 for both: one or the other.
        let either = comb(&[(1, &["station", "ap"])], 2, 1);
        assert!(!ApConcurrency::decide(0, vec![either]).station_and_ap);
        // A total of one interface.
        let one = comb(&[(1, &["station"]), (1, &["ap"])], 1, 1);
        assert!(!ApConcurrency::decide(0, vec![one]).station_and_ap);
        // Stations only; no combinations at all (one interface at a time).
        let sta = comb(&[(8, &["station"])], 8, 1);
        assert!(!ApConcurrency::decide(0, vec![sta]).station_and_ap);
        let none = ApConcurrency::decide(3, vec![]);
        assert_eq!(
            (none.station_and_ap, none.channels, none.wiphy),
            (false, 0, 3)
        );
    }
}
