//! Hotspot 2.0 / Passpoint: ANQP queries of one access point (`wifi_anqp`) and joining by a
//! credential instead of an SSID (`wifi_connect_passpoint`).
//!
//! A query is wpa_supplicant's `ANQP_GET` (a GAS exchange with the AP, before any association),
//! bounded by its `ANQP-QUERY-DONE` event, then the BSS entry's answers parsed by
//! [`crate::wpa::anqp`] — bytes from the air, parsed as hostile input.
//!
//! A Passpoint connect adds one credential (`ADD_CRED` / `SET_CRED`: realm, username,
//! password or client certificate, EAP method…), and `INTERWORKING_SELECT auto` lets
//! wpa_supplicant scan, ask every interworking AP for its realms and connect to the best match;
//! from the association on it is the path every connect takes ([`Agent::wait_connected`], the
//! DHCP lease, [`ConnectResult`]). No match is `not_found`, naming the Passpoint APs seen and
//! their realms. The credential goes on failure and on `wifi_disconnect` (and the network
//! wpa_supplicant made from it with it); it is not restored into a restarted wpa_supplicant.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;
use tokio::sync::broadcast;

use super::failure::{Code, Failure};
use super::{Agent, ConnectResult, Stage};
use crate::validate::{Bssid, Ssid};
use crate::wpa::anqp::{self, AnqpInfo};
use crate::wpa::{CredField, Event, NetworkSel};

/// A credential to add: the fields in order, the secrets to scrub, the PEM files written.
#[derive(Clone)]
pub struct CredSpec {
    /// The realm, for messages.
    pub realm: String,
    /// `SET_CRED` fields in order.
    pub fields: Vec<CredField>,
    /// Plain secrets that must never appear in the debug log.
    pub secrets: Vec<String>,
    /// PEM files written for this call ([`super::certs::Certs`]).
    pub uploads: Vec<PathBuf>,
}

/// What `wifi_anqp` answers.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AnqpReport {
    /// The AP asked.
    pub bssid: String,
    /// Its SSID (as the scan saw it).
    pub ssid: String,
    /// The AP advertises Hotspot 2.0 (so the HS 2.0 subtypes were asked too).
    pub hotspot20: bool,
    /// wpa_supplicant's verdict on the exchange (`SUCCESS`, `FAILURE`, …).
    pub result: String,
    /// What the answers say.
    pub anqp: AnqpInfo,
    /// Time from the request to the answers, in milliseconds.
    pub elapsed_ms: u64,
}

impl Agent {
    /// Ask `bssid` (an AP of the last scan that offers interworking) for its ANQP elements;
    /// waits for `ANQP-QUERY-DONE` up to `timeout`.
    pub async fn anqp(&self, bssid: Bssid, timeout: Duration) -> Result<AnqpReport, Failure> {
        let started = Instant::now();
        let client = self.client().await?;
        let Some(bss) = client
            .bss(crate::wpa::BssSelector::Bssid(bssid))
            .await
            .map_err(|e| e.to_string())?
        else {
            return Err(Failure::new(
                Code::NotFound,
                format!("{bssid} is not in the scan results: run wifi_scan first"),
            ));
        };
        let (interworking, hotspot20) = match bss.id {
            Some(id) => match client.bss_elements(id).await {
                Some((_, d)) => (d.interworking, d.hotspot20),
                None => (false, false),
            },
            None => (false, false),
        };
        if !interworking {
            return Err(Failure::new(
                Code::NotFound,
                format!(
                    "{bssid} ({}) does not offer 802.11u interworking: it answers no ANQP",
                    bss.ssid
                ),
            ));
        }
        let mut rx = self.wpa.subscribe();
        let hs20: &[u8] = if hotspot20 { anqp::HS20_SUBTYPES } else { &[] };
        client
            .anqp_get(bssid, anqp::ANQP_IDS, hs20)
            .await
            .map_err(|e| format!("ANQP request failed: {e}"))?;
        let result = wait_anqp(&mut rx, bssid, started + timeout, timeout).await?;
        let info = client
            .bss_anqp(bssid)
            .await
            .map_err(|e| format!("reading the ANQP answers failed: {e}"))?
            .unwrap_or_default();
        self.log.push(
            "agent",
            format!(
                "ANQP of {bssid}: {result}, {} realm(s), {} domain(s)",
                info.nai_realms.len(),
                info.domain_names.len()
            ),
        );
        Ok(AnqpReport {
            bssid: bssid.to_string(),
            ssid: bss.ssid,
            hotspot20,
            result,
            anqp: info,
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Add the credential, let wpa_supplicant select a matching Passpoint AP, connect and get a
    /// lease.
    pub async fn connect_passpoint(
        &self,
        cred: CredSpec,
        timeout: Duration,
        progress: &(dyn Fn(Stage) + Send + Sync),
    ) -> Result<ConnectResult, Failure> {
        let started = Instant::now();
        let _g = self.op_lock("wifi_connect_passpoint").await?;
        super::net::http::clear_cookies();
        for s in &cred.secrets {
            self.log.register_secret(s);
        }
        let result = self
            .passpoint_locked(&cred, started, timeout, progress)
            .await;
        match &result {
            Ok(r) => match Ssid::parse(&r.ssid) {
                Ok(ssid) => self.certs.adopt(&cred.uploads, &ssid),
                Err(_) => self.certs.discard(&cred.uploads),
            },
            Err(_) => self.certs.discard(&cred.uploads),
        }
        result
    }

    async fn passpoint_locked(
        &self,
        cred: &CredSpec,
        started: Instant,
        timeout: Duration,
        progress: &(dyn Fn(Stage) + Send + Sync),
    ) -> Result<ConnectResult, Failure> {
        let deadline = started + timeout;
        let client = self.client().await?;
        self.dhcp.stop().await;
        let before = client.list_networks().await.map_err(|e| e.to_string())?;
        if let Some(perm) = self.perm_mac {
            self.set_mac(&client, perm).await?;
        }
        // One credential at a time: an earlier one (and its network) goes.
        let _ = client.remove_cred(NetworkSel::All).await;
        let mut rx = self.wpa.subscribe();
        let id = client.add_cred().await.map_err(|e| e.to_string())?;
        let configured = async {
            for f in &cred.fields {
                client.set_cred(id, f).await?;
            }
            // The match alone decides, as SELECT_NETWORK would: no other network competes.
            client.disable_network(NetworkSel::All).await?;
            client.interworking_select(true).await
        }
        .await;
        // Nothing half-applied: the credential (and the network made from it) goes, what was
        // enabled is again.
        let restore = || async {
            self.dhcp.stop().await;
            let _ = client.remove_cred(id).await;
            for n in before.iter().filter(|n| !n.disabled) {
                let _ = client.enable_network(n.id).await;
            }
        };
        if let Err(e) = configured {
            restore().await;
            return Err(format!("wpa_supplicant refused the credential: {e}").into());
        }
        self.log.push(
            "agent",
            format!("Passpoint: selecting a network for realm {}", cred.realm),
        );
        progress(Stage::Associating);
        let outcome = match self
            .wait_connected(&mut rx, deadline, timeout, progress)
            .await
        {
            Ok(network_id) => {
                progress(Stage::Dhcp);
                match self.lease_until(deadline).await {
                    Ok(Some(l)) => Ok((network_id, l)),
                    Err(e) => Err(Failure::from(e)),
                    Ok(None) => Err(Failure::new(
                        Code::NoDhcp,
                        format!(
                            "associated by the credential for {} but DHCP gave no address \
                             within the {}s timeout",
                            cred.realm,
                            timeout.as_secs()
                        ),
                    )),
                }
            }
            Err(f) if f.code == Code::NotFound => Err(Failure::new(
                Code::NotFound,
                format!("{}; {}", f.text, self.passpoint_seen(&client).await),
            )),
            Err(f) => Err(f),
        };
        match outcome {
            Ok((network_id, lease)) => {
                let st = client.status().await.ok();
                let ssid = st.as_ref().and_then(|s| s.ssid.clone()).unwrap_or_default();
                progress(Stage::Done);
                self.log.push(
                    "agent",
                    format!("Passpoint: connected to {ssid} for realm {}", cred.realm),
                );
                Ok(ConnectResult::new(
                    ssid,
                    st.as_ref(),
                    network_id,
                    &lease,
                    started,
                ))
            }
            Err(e) => {
                restore().await;
                self.log.push(
                    "agent",
                    format!("Passpoint connect for realm {} failed: {e}", cred.realm),
                );
                Err(e)
            }
        }
    }

    /// The Passpoint APs of the last scan and the realms they answered, for a no-match message.
    async fn passpoint_seen(&self, client: &crate::wpa::CtrlClient) -> String {
        let mut seen = Vec::new();
        for bss in client.bss_all().await.unwrap_or_default() {
            if !bss.detail.as_ref().is_some_and(|d| d.interworking) {
                continue;
            }
            let realms: Vec<String> = match client.bss_anqp(bss.bssid).await {
                Ok(Some(info)) => info
                    .nai_realms
                    .iter()
                    .flat_map(|r| r.realms.iter().cloned())
                    .take(8)
                    .collect(),
                _ => Vec::new(),
            };
            seen.push(format!(
                "{} {:?} realms [{}]",
                bss.bssid,
                bss.ssid,
                realms.join(", ")
            ));
            if seen.len() >= 8 {
                break;
            }
        }
        if seen.is_empty() {
            "no access point offering interworking was seen".into()
        } else {
            format!("interworking APs seen: {}", seen.join("; "))
        }
    }
}

/// Wait for `ANQP-QUERY-DONE` of `bssid`.
async fn wait_anqp(
    rx: &mut broadcast::Receiver<Event>,
    bssid: Bssid,
    deadline: Instant,
    timeout: Duration,
) -> Result<String, Failure> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Ok(Event::AnqpQueryDone {
                bssid: Some(b),
                result,
            })) if b == bssid => {
                return Ok(result);
            }
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(_)) => {
                return Err(Failure::new(
                    Code::SupplicantGone,
                    "wpa_supplicant went away during the ANQP query",
                ));
            }
            Err(_) => {
                return Err(Failure::new(
                    Code::Timeout,
                    format!("{bssid} gave no ANQP answer within {}s", timeout.as_secs()),
                ));
            }
        }
    }
}
