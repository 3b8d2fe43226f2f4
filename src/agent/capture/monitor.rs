//! A monitor interface on the box's own phy, for an 802.11 (radiotap) capture: nl80211
//! `NEW_INTERFACE` type monitor on the wiphy of the box's WiFi interface, brought up, deleted
//! afterwards — by [`MonitorIface::remove`] on every normal path, and by its `Drop` (a task that
//! deletes it) when the capture is cancelled or panics. Made and deleted with the helpers of
//! [`crate::agent::iface`] the concurrent access point uses too (a leftover deleted first, and
//! on the agent's start).
//!
//! The phy is already in the box's netns and the agent holds `CAP_NET_ADMIN` there; a monitor
//! interface is created in the wiphy's netns, so it appears in the box only. It gives the box
//! nothing new: it hears the frames the box's radio hears (on the channel the station uses).

use wl_nl80211::Nl80211InterfaceType;

use crate::agent::failure::{Code, Failure};
use crate::agent::iface;

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
        // A leftover of an agent that died mid-capture is deleted first (by `iface::add`).
        let index = iface::add(
            station_index,
            Nl80211InterfaceType::Monitor,
            MONITOR_NAME,
            None,
            net,
        )
        .await
        .map_err(|e| {
            if e.unsupported() {
                Failure::new(
                    Code::Unsupported,
                    format!(
                        "the driver of the box's phy refuses a monitor interface next to the \
                         station ({e}); no 802.11 capture on this radio (interface: station \
                         still works)"
                    ),
                )
            } else {
                Failure::new(Code::Failed, format!("creating a monitor interface: {e}"))
            }
        })?;
        let mut me = MonitorIface {
            index,
            name: MONITOR_NAME.to_string(),
            removed: false,
        };
        if let Err(e) = net.set_up(index).await {
            me.removed = true;
            let _ = iface::delete(index).await;
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
        let r = iface::delete(self.index).await;
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
                    if let Err(e) = iface::delete(index).await {
                        tracing::warn!(index, cause = %format!("{e:#}"), "deleting the monitor interface failed");
                    }
                    IN_USE.store(false, std::sync::atomic::Ordering::Release);
                });
            }
            Err(_) => IN_USE.store(false, std::sync::atomic::Ordering::Release),
        }
    }
}
