//! `wifi_roam`: move the association to another BSS of the same network (wpa_supplicant's
//! `ROAM`), time it, say how it went (fast transition when the key management in use is FT,
//! otherwise a full reassociation), then renew the DHCP lease.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;
use tokio::sync::broadcast;

use super::Agent;
use super::failure::{Code, Failure};
use crate::validate::Bssid;
use crate::wpa::{Event, WpaState};

/// `wifi_roam` result.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RoamResult {
    /// The BSS before.
    pub from_bssid: String,
    /// The BSS now.
    pub to_bssid: String,
    /// `ft` (802.11r fast transition: the key management in use is FT-*) or `reassociation`.
    pub method: String,
    /// Key management after the roam.
    pub key_mgmt: Option<String>,
    /// Frequency now, MHz.
    pub freq_mhz: Option<u32>,
    /// From the ROAM request to `CTRL-EVENT-CONNECTED` with the new BSS, ms.
    pub roam_ms: u64,
    /// The DHCP lease after the roam (renewed), if one came in time.
    pub ip: Option<String>,
    /// From the connection to the renewed lease, ms.
    pub dhcp_ms: Option<u64>,
}

impl Agent {
    /// Roam to `target` (a BSS of the current network in the last scan), within `timeout`.
    pub async fn roam(&self, target: Bssid, timeout: Duration) -> Result<RoamResult, Failure> {
        let _g = self.op.lock().await;
        let client = self.client().await?;
        let st = client.status().await.map_err(|e| e.to_string())?;
        let (Some(from), WpaState::Completed) = (st.bssid, st.wpa_state) else {
            return Err(Failure::new(
                Code::NotConnected,
                "not connected: connect first with wifi_connect, then roam",
            ));
        };
        if from == target {
            return Err(Failure::invalid(format!(
                "already connected to {target}: give another BSS of this network"
            )));
        }
        let table = client.bss_all().await.map_err(|e| e.to_string())?;
        let same_net = table
            .iter()
            .any(|b| b.bssid == target && Some(b.ssid_hex.as_str()) == st.ssid_hex.as_deref());
        if !same_net {
            return Err(Failure::new(
                Code::NotFound,
                format!(
                    "no BSS {target} of this network ({}) in the last scan: wifi_scan lists \
                     them (same ssid, another bssid)",
                    st.ssid.clone().unwrap_or_default()
                ),
            ));
        }
        let mut rx = self.wpa.subscribe();
        let started = Instant::now();
        let deadline = started + timeout;
        client
            .roam(target)
            .await
            .map_err(|e| format!("wpa_supplicant refused the roam: {e}"))?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Ok(Event::Connected { bssid, .. })) if bssid == Some(target) => break,
                Ok(Ok(Event::AuthReject { status_code, .. })) => {
                    return Err(Failure::new(
                        Code::AuthFailed,
                        format!("the target AP rejected authentication (status {status_code:?})"),
                    ));
                }
                Ok(Ok(Event::AssocReject { status_code, .. })) => {
                    return Err(Failure::new(
                        Code::AssocRejected,
                        format!("the target AP rejected the association (status {status_code:?})"),
                    ));
                }
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(_)) => {
                    return Err(Failure::new(
                        Code::SupplicantGone,
                        "wpa_supplicant went away while roaming",
                    ));
                }
                Err(_) => {
                    return Err(Failure::new(
                        Code::Timeout,
                        format!("not connected to {target} within {}s", timeout.as_secs()),
                    ));
                }
            }
        }
        let roam_ms = started.elapsed().as_millis() as u64;
        let after = client.status().await.ok();
        // The lease may belong to the old AP's network: ask again (the same address on one
        // network, a new one on another).
        let connected = Instant::now();
        self.dhcp.stop().await;
        let lease = match self.dhcp.start().await {
            Ok(()) => {
                self.dhcp
                    .wait_lease(
                        deadline
                            .saturating_duration_since(Instant::now())
                            .max(Duration::from_secs(5)),
                    )
                    .await
            }
            Err(_) => None,
        };
        let key_mgmt = after.as_ref().and_then(|s| s.key_mgmt.clone());
        Ok(RoamResult {
            from_bssid: from.to_string(),
            to_bssid: target.to_string(),
            method: if key_mgmt.as_deref().is_some_and(|k| k.starts_with("FT-")) {
                "ft".into()
            } else {
                "reassociation".into()
            },
            key_mgmt,
            freq_mhz: after.as_ref().and_then(|s| s.freq_mhz),
            roam_ms,
            dhcp_ms: lease
                .as_ref()
                .map(|_| connected.elapsed().as_millis() as u64),
            ip: lease.map(|l| format!("{}/{}", l.ip, l.prefix)),
        })
    }
}
