//! The access-point tools ([`crate::agent::ap`]): `wifi_ap_start`, `wifi_ap_clients`,
//! `wifi_ap_stop` — their arguments (checked by [`ApSettings::parse`] before anything starts)
//! and a router of their own, added to [`WifiTools`]'s.
//!
//! Start and stop run in a task of their own: a cancelled call (or a client that goes away)
//! does not leave half an access point — the start finishes (or rolls back) and the AP can be
//! stopped by the next call.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::router::WifiTools;
use crate::agent::ap::{ApClients, ApMode, ApSecurity, ApSettings, ApStarted, ApStopped, Band};
use crate::agent::failure::Failure;

/// `wifi_ap_start` arguments.
/// (No `Debug`: it holds the passphrase.)
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApStartArgs {
    /// The network name: 1 to 32 bytes.
    pub ssid: String,
    /// open (default), wpa2 (WPA2-Personal), sae (WPA3-Personal, PMF required) or owe
    /// (enhanced open: encrypted without a passphrase, PMF required).
    #[serde(default)]
    pub security: ApSecurity,
    /// For wpa2 and sae: 8 to 63 printable ASCII characters (wpa2 also takes a raw PSK of 64
    /// hex digits). Never shown in a result or a log.
    pub passphrase: Option<String>,
    /// "2.4" (default) or "5" (GHz).
    pub band: Option<Band>,
    /// The channel: 1-13 on 2.4 GHz (default 6); 36-64 or 100-144 (multiples of 4) or 149-165
    /// (149, 153, 157, 161, 165) on 5 GHz (default 36).
    pub channel: Option<u32>,
    /// Leave the SSID out of the beacons (clients must know it).
    #[serde(default)]
    pub hidden: bool,
    /// The name the AP's DNS answers with the box's address (default ap.home.arpa).
    pub dns_name: Option<String>,
    /// exclusive (default): the box's interface becomes the AP, the station side is paused
    /// (refused while connected). concurrent: a second interface of type AP on the same phy,
    /// the station and its connection untouched — where the phy's interface combinations
    /// allow it (wifi_status: ap_concurrency); on a one-channel phy the AP takes the
    /// connected station's channel (leave channel out, or give that one).
    #[serde(default)]
    pub mode: ApMode,
}

#[tool_router(router = ap_router, vis = "pub(super)")]
impl WifiTools {
    #[tool(
        description = "Make the box's radio a WiFi access point that other devices join: \
                       hostapd with ssid, security (open, wpa2, sae, owe) + passphrase, band \
                       (2.4 or 5), channel and hidden; a DHCP server handing out \
                       192.168.77.100-199 (the box is 192.168.77.1, router and DNS); a DNS \
                       answer for dns_name (default ap.home.arpa) with the box's address. All \
                       inside the box. mode exclusive (default): the radio is a station or an \
                       access point, one at a time: refused (busy) while connected — \
                       wifi_disconnect first; the station tools answer busy until wifi_ap_stop. \
                       mode concurrent: the AP on a second interface of the phy next to the \
                       station, which stays connected (where the phy's interface combinations \
                       allow it; wifi_status ap_concurrency); a one-channel phy puts the AP on \
                       the station's channel.",
        annotations(
            title = "Start an access point",
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn wifi_ap_start(
        &self,
        Parameters(a): Parameters<ApStartArgs>,
    ) -> Result<Json<ApStarted>, Failure> {
        let s = ApSettings::parse(
            &a.ssid,
            a.security,
            a.passphrase.as_deref(),
            a.band,
            a.channel,
            a.hidden,
            a.dns_name.as_deref(),
        )?;
        let s = ApSettings { mode: a.mode, ..s };
        let agent = self.agent.clone();
        let started = tokio::spawn(async move { agent.ap_start(s).await })
            .await
            .map_err(|e| Failure::from(format!("wifi_ap_start failed: {e}")))??;
        Ok(Json(started))
    }

    #[tool(
        description = "The stations associated with the box's access point (wifi_ap_start): \
                       MAC, signal (dBm), connected time, inactivity, bytes, and the DHCP lease \
                       each got (ip, host name, seconds left); plus every lease the DHCP server \
                       holds. not_found when no access point runs.",
        annotations(title = "Access point clients", read_only_hint = true)
    )]
    async fn wifi_ap_clients(&self) -> Result<Json<ApClients>, Failure> {
        Ok(Json(self.agent.ap_clients().await?))
    }

    #[tool(
        description = "Stop the box's access point: hostapd, the DHCP server and the DNS answer \
                       stop, the address goes, and the radio is given back to the station side \
                       (wpa_supplicant again, disconnected; wifi_connect works) — or, in mode \
                       concurrent, the AP's interface is deleted and the station left as it \
                       is. not_found when no access point runs.",
        annotations(
            title = "Stop the access point",
            destructive_hint = true,
            idempotent_hint = false
        )
    )]
    async fn wifi_ap_stop(&self) -> Result<Json<ApStopped>, Failure> {
        let agent = self.agent.clone();
        let stopped = tokio::spawn(async move { agent.ap_stop().await })
            .await
            .map_err(|e| Failure::from(format!("wifi_ap_stop failed: {e}")))??;
        Ok(Json(stopped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_deserialize_and_unknown_ones_are_refused() {
        let a: ApStartArgs = serde_json::from_value(serde_json::json!({
            "ssid": "lab", "security": "wpa2", "passphrase": "12345678", "band": "5", "channel": 36
        }))
        .unwrap();
        assert_eq!(
            (a.security, a.band, a.channel),
            (ApSecurity::Wpa2, Some(Band::G5), Some(36))
        );
        let a: ApStartArgs = serde_json::from_value(serde_json::json!({"ssid": "x"})).unwrap();
        assert_eq!(a.security, ApSecurity::Open);
        assert_eq!(a.mode, ApMode::Exclusive);
        let a: ApStartArgs =
            serde_json::from_value(serde_json::json!({"ssid": "x", "mode": "concurrent"})).unwrap();
        assert_eq!(a.mode, ApMode::Concurrent);
        assert!(!a.hidden);
        for bad in [
            serde_json::json!({"ssid": "x", "security": "wep"}),
            serde_json::json!({"ssid": "x", "band": "6"}),
            serde_json::json!({"ssid": "x", "channel": -1}),
            serde_json::json!({"ssid": "x", "psk": "12345678"}),
            serde_json::json!({"ssid": "x", "mode": "both"}),
            serde_json::json!({}),
        ] {
            assert!(
                serde_json::from_value::<ApStartArgs>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
