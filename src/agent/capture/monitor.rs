//! A monitor interface on the box's own phy, for an 802.11 (radiotap) capture: nl80211
//! `NEW_INTERFACE` type monitor on the wiphy of the box's WiFi interface, brought up, deleted
//! afterwards — by [`MonitorIface::remove`] on every normal path, and by its `Drop` (a task that
//! deletes it) when the capture is cancelled or panics.
//!
//! The phy is already in the box's netns and the agent holds `CAP_NET_ADMIN` there; a monitor
//! interface is created in the wiphy's netns, so it appears in the box only. It gives the box
//! nothing new: it hears the frames the box's radio hears (on the channel the station uses).

use futures::TryStreamExt;
use wl_nl80211::{Nl80211Attr, Nl80211InterfaceType};

use crate::agent::failure::{Code, Failure};

/// The monitor interface's name in the box (the kernel's 15-byte limit).
pub const MONITOR_NAME: &str = "wimon0";

/// One monitor capture at a time: set while a [`MonitorIface`] of ours exists (so a second
/// capture never takes the first's interface for a leftover and deletes it).
static IN_USE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A monitor interface we created; delete it with [`MonitorIface::remove`].
pub struct MonitorIface {
    /// Its ifindex.
    pub index: u32,
    /// Its name.
    pub name: String,
    removed: bool,
}

fn netlink_errno(e: &wl_nl80211::Nl80211Error) -> Option<i32> {
    match e {
        wl_nl80211::Nl80211Error::NetlinkError(m) => Some(-m.raw_code()),
        _ => None,
    }
}

/// The wiphy of interface `index`.
async fn wiphy_of(handle: &wl_nl80211::Nl80211Handle, index: u32) -> anyhow::Result<u32> {
    let mut h = handle.interface();
    let mut s = h.get(vec![Nl80211Attr::IfIndex(index)]).execute().await;
    while let Some(msg) = s.try_next().await? {
        if let Some(w) = msg.payload.attributes.iter().find_map(|a| match a {
            Nl80211Attr::Wiphy(w) => Some(*w),
            _ => None,
        }) {
            return Ok(w);
        }
    }
    anyhow::bail!("nl80211 named no wiphy for interface {index}")
}

async fn delete(index: u32) -> anyhow::Result<()> {
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

impl MonitorIface {
    /// Create a monitor interface on the phy of `station_index` and bring it up. A driver or
    /// an interface combination that refuses it is `unsupported`, with nothing left behind.
    pub async fn create(
        station_index: u32,
        net: &crate::agent::netcfg::NetCfg,
    ) -> Result<Self, Failure> {
        use std::sync::atomic::Ordering;
        if IN_USE.swap(true, Ordering::AcqRel) {
            return Err(Failure::new(
                Code::Busy,
                "a monitor capture is running (one at a time): wifi_capture_stop it first",
            ));
        }
        let r = Self::create_inner(station_index, net).await;
        if r.is_err() {
            IN_USE.store(false, Ordering::Release);
        }
        r
    }

    async fn create_inner(
        station_index: u32,
        net: &crate::agent::netcfg::NetCfg,
    ) -> Result<Self, Failure> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Failure::new(Code::Failed, format!("{what}: {e:#}"))
        };
        let (conn, handle, _) =
            wl_nl80211::new_connection().map_err(|e| fail("opening nl80211", &e))?;
        let task = tokio::spawn(conn);
        let made = async {
            let wiphy = wiphy_of(&handle, station_index)
                .await
                .map_err(|e| fail("finding the box's phy", &e))?;
            // A leftover of an agent that died mid-capture: delete it first.
            if let Ok(Some(old)) = net.index(MONITOR_NAME).await {
                let _ = delete(old).await;
            }
            let attrs = wl_nl80211::Nl80211NewInterface::new(
                wiphy,
                Nl80211InterfaceType::Monitor,
                MONITOR_NAME.to_string(),
            )
            .build();
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
                        let errno = netlink_errno(&e);
                        return Err(match errno {
                            Some(libc::EOPNOTSUPP) | Some(libc::EBUSY) | Some(libc::EINVAL) => {
                                Failure::new(
                                    Code::Unsupported,
                                    format!(
                                        "the driver of phy{wiphy} refuses a monitor interface \
                                         next to the station ({e}); no 802.11 capture on this \
                                         radio (interface: station still works)"
                                    ),
                                )
                            }
                            _ => fail("creating a monitor interface", &e),
                        });
                    }
                }
            }
            Ok::<_, Failure>(index)
        }
        .await;
        task.abort();
        let index = match made? {
            Some(i) => i,
            None => net
                .index(MONITOR_NAME)
                .await
                .ok()
                .flatten()
                .ok_or_else(|| {
                    Failure::from("the monitor interface was made but has no ifindex")
                })?,
        };
        let mut me = MonitorIface {
            index,
            name: MONITOR_NAME.to_string(),
            removed: false,
        };
        if let Err(e) = net.set_up(index).await {
            me.removed = true;
            let _ = delete(index).await;
            return Err(Failure::new(
                Code::Unsupported,
                format!(
                    "the monitor interface would not come up ({e:#}); the driver may not allow \
                     it on the station's channel — removed again"
                ),
            ));
        }
        Ok(me)
    }

    /// Delete the interface (and say whether that worked).
    pub async fn remove(mut self) -> anyhow::Result<()> {
        self.removed = true;
        let r = delete(self.index).await;
        IN_USE.store(false, std::sync::atomic::Ordering::Release);
        r
    }
}

impl Drop for MonitorIface {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        // Cancelled or unwinding: delete it from a task of its own.
        let index = self.index;
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = delete(index).await {
                        tracing::warn!(index, cause = %format!("{e:#}"), "deleting the monitor interface failed");
                    }
                    IN_USE.store(false, std::sync::atomic::Ordering::Release);
                });
            }
            Err(_) => IN_USE.store(false, std::sync::atomic::Ordering::Release),
        }
    }
}
