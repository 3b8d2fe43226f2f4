//! Find the wireless interface in the agent's network namespace, waiting for it to arrive.
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
            None => found.first().cloned(),
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
