//! The radio's tools beyond joining: `wifi_link` (the link's metrics, optionally sampled),
//! `wifi_events` (what happened on the radio, [`crate::agent::history`]), `wifi_survey` (the
//! driver's channel survey, [`crate::agent::survey`]), and
//! `auto` security picking OWE for a network the last scan saw offered with it.

use std::time::Duration;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::router::WifiTools;
use super::schema::{ConnectArgs, EventsArgs, LinkArgs, RoamArgs, SecurityMode};
use crate::agent::Agent;
use crate::agent::failure::{Code, Failure};
use crate::agent::history::EventsResult;
use crate::agent::link::LinkReport;
use crate::agent::roam::RoamResult;
use crate::agent::survey::{self, ChannelSurvey};
use crate::validate::{Bssid, Ssid};

/// `wifi_link`'s bounds, checked before anything is read: (period, interval).
pub(super) fn link_bounds(a: &LinkArgs) -> Result<(Option<Duration>, Duration), Failure> {
    let period = match a.sample_secs {
        None => None,
        Some(s) if (1..=60).contains(&s) => Some(Duration::from_secs(s)),
        Some(s) => {
            return Err(Failure::invalid(format!(
                "sample_secs must be 1-60, got {s}"
            )));
        }
    };
    let interval = match (a.interval_ms, period) {
        (None, _) => Duration::from_millis(1000),
        (Some(_), None) => {
            return Err(Failure::invalid(
                "interval_ms only goes with sample_secs (sampling over a period)",
            ));
        }
        (Some(ms), Some(_)) if (200..=5000).contains(&ms) => Duration::from_millis(ms),
        (Some(ms), Some(_)) => {
            return Err(Failure::invalid(format!(
                "interval_ms must be 200-5000, got {ms}"
            )));
        }
    };
    Ok((period, interval))
}

/// `auto` without a password: OWE when the last scan saw this SSID offered with OWE (an OWE BSS,
/// or an open one naming an OWE companion), open otherwise. An invalid SSID is left for the
/// validation that follows.
pub(super) async fn auto_owe(agent: &Agent, a: &mut ConnectArgs) {
    if a.network.is_some() || a.security != SecurityMode::Auto || a.password.is_some() {
        return;
    }
    let Some(Ok(ssid)) = a.ssid.as_deref().map(Ssid::parse) else {
        return;
    };
    if agent.offers_owe(&ssid).await {
        a.security = SecurityMode::Owe;
    }
}

#[tool_router(router = radio_router, vis = "pub(super)")]
impl WifiTools {
    #[tool(
        description = "How well the current WiFi link works: signal and its average (dBm), \
                       beacon signal, noise where known, tx/rx bit rate with PHY (HT/VHT/HE), \
                       MCS, spatial streams, width and guard interval, packets, bytes, \
                       retries, failed frames, beacon loss, connected time, the BSS, its \
                       channel and width, and the security in use (PMF, SAE H2E). With \
                       sample_secs: sampled every interval_ms with min/avg/max. From nl80211 \
                       station info (as `iw dev IF station dump`) and wpa_supplicant.",
        annotations(title = "WiFi link metrics", read_only_hint = true)
    )]
    async fn wifi_link(
        &self,
        Parameters(a): Parameters<LinkArgs>,
    ) -> Result<Json<LinkReport>, Failure> {
        let (period, interval) = link_bounds(&a)?;
        Ok(Json(self.agent.link(period, interval).await?))
    }

    #[tool(
        description = "Roam to another access point (bssid) of the current network, as \
                       wifi_scan lists it (same ssid): wpa_supplicant's ROAM, timed from the \
                       request to the new connection (roam_ms), with the method (ft when the \
                       key management in use is 802.11r FT, else reassociation), then the DHCP \
                       lease renewed (dhcp_ms). Connect first.",
        annotations(title = "Roam", destructive_hint = true, open_world_hint = true)
    )]
    async fn wifi_roam(
        &self,
        Parameters(a): Parameters<RoamArgs>,
    ) -> Result<Json<RoamResult>, Failure> {
        let bssid = Bssid::parse(&a.bssid).map_err(Failure::invalid)?;
        let timeout = match a.timeout_secs {
            None => Duration::from_secs(15),
            Some(s) if (1..=60).contains(&s) => Duration::from_secs(s),
            Some(s) => {
                return Err(Failure::invalid(format!(
                    "timeout_secs must be 1-60, got {s}"
                )));
            }
        };
        Ok(Json(self.agent.roam(bssid, timeout).await?))
    }

    #[tool(
        description = "What happened on the radio since the agent started (the last 500 \
                       events, oldest first): associating, connected, roamed (another BSS \
                       without a disconnect, from_bssid → bssid), disconnected (IEEE 802.11 \
                       reason code and its meaning, locally_generated), auth/assoc rejected \
                       (status code), network not found, temporarily disabled (WRONG_KEY, …), \
                       scan failed, DHCP lease gained/lost, 802.11v BSS transition requests \
                       from the AP (bss_transition: dialog token, request mode bits, \
                       disassociation timer, validity, candidates with preference and channel) \
                       and our responses (status_code 0 accept with the target bssid, or the \
                       reject reason). since_seq (the last_seq of an \
                       earlier call) returns only newer ones; kinds filters.",
        annotations(title = "WiFi events", read_only_hint = true)
    )]
    async fn wifi_events(
        &self,
        Parameters(a): Parameters<EventsArgs>,
    ) -> Result<Json<EventsResult>, Failure> {
        let limit = match a.limit {
            None => 100,
            Some(n) if (1..=500).contains(&n) => n as usize,
            Some(n) => return Err(Failure::invalid(format!("limit must be 1-500, got {n}"))),
        };
        Ok(Json(self.agent.history().query(
            a.since_seq.unwrap_or(0),
            limit,
            &a.kinds,
        )))
    }

    #[tool(
        description = "The channel survey the driver keeps for the box's radio (as `iw dev IF \
                       survey dump`): per channel the frequency, channel and band, whether the \
                       radio is on it now (in_use), the noise floor (dBm) and how long the radio \
                       was on it, busy, receiving and transmitting (ms, cumulative since the \
                       driver started counting), with busy_percent. Drivers fill what they \
                       measure; a scan visits (and so surveys) every channel. in_use_only: just \
                       the current channel.",
        annotations(title = "Channel survey", read_only_hint = true)
    )]
    async fn wifi_survey(
        &self,
        Parameters(a): Parameters<SurveyArgs>,
    ) -> Result<Json<SurveyReport>, Failure> {
        let interface = self.agent.iface().to_string();
        let index = self.iface_index().await?;
        let mut channels = survey::survey(index)
            .await
            .map_err(|e| Failure::from(format!("nl80211 survey of {interface}: {e:#}")))?;
        let in_use_frequency_mhz = channels.iter().find(|c| c.in_use).map(|c| c.frequency_mhz);
        if a.in_use_only.unwrap_or(false) {
            channels.retain(|c| c.in_use);
        }
        let note = channels.is_empty().then(|| {
            if a.in_use_only.unwrap_or(false) {
                "the driver marks no channel in use (not connected, or it does not say)".into()
            } else {
                "the driver reported no survey data for this radio".into()
            }
        });
        Ok(Json(SurveyReport {
            interface,
            in_use_frequency_mhz,
            channels,
            note,
        }))
    }
}

/// `wifi_survey` arguments.
#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SurveyArgs {
    /// Only the channel the radio is on now (default false: every channel surveyed).
    pub in_use_only: Option<bool>,
}

/// What `wifi_survey` answers.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SurveyReport {
    /// The box's WiFi interface.
    pub interface: String,
    /// The channel the radio is on now, when the driver says.
    pub in_use_frequency_mhz: Option<u32>,
    /// The channels, in the driver's order.
    pub channels: Vec<ChannelSurvey>,
    /// Anything to know about the result.
    pub note: Option<String>,
}

impl WifiTools {
    /// The interface index of the box's WiFi interface (in the agent's netns).
    pub(super) async fn iface_index(&self) -> Result<u32, Failure> {
        let iface = self.agent.iface();
        self.agent
            .net()
            .index(iface)
            .await
            .map_err(|e| format!("looking up {iface}: {e:#}"))?
            .ok_or_else(|| Failure::new(Code::Failed, format!("no interface {iface} in the box")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: serde_json::Value) -> LinkArgs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn link_bounds_refuse_what_is_out_of_range() {
        assert_eq!(
            link_bounds(&args(serde_json::json!({}))).unwrap(),
            (None, Duration::from_millis(1000))
        );
        assert_eq!(
            link_bounds(&args(
                serde_json::json!({"sample_secs": 3, "interval_ms": 500})
            ))
            .unwrap(),
            (Some(Duration::from_secs(3)), Duration::from_millis(500))
        );
        for bad in [
            serde_json::json!({"sample_secs": 0}),
            serde_json::json!({"sample_secs": 61}),
            serde_json::json!({"interval_ms": 500}),
            serde_json::json!({"sample_secs": 2, "interval_ms": 100}),
            serde_json::json!({"sample_secs": 2, "interval_ms": 9000}),
        ] {
            let e = link_bounds(&args(bad.clone())).unwrap_err();
            assert_eq!(
                e.code,
                crate::agent::failure::Code::InvalidArgument,
                "{bad}"
            );
        }
        assert!(
            serde_json::from_value::<LinkArgs>(serde_json::json!({"sample_secs": -1})).is_err()
        );
    }
}
