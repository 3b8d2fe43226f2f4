//! The radio beyond joining: scans that finish (wait for wpa_supplicant's scan-results event,
//! bounded, and say so when the bound ran out), the choice of OWE for an open-looking network
//! that offers it, and the link's metrics ([`super::link`]).

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::broadcast;

use super::Agent;
use super::failure::{Code, Failure};
use crate::validate::Ssid;
use crate::wpa::{Bss, Event, ScanRequest, Security};

/// How often a scan the driver refused (`CTRL-EVENT-SCAN-FAILED`, e.g. busy while connected)
/// is asked for again within one call.
const SCAN_ATTEMPTS: u32 = 5;
/// Pause before asking again after a refused scan.
const SCAN_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// What a scan returned.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ScanOutcome {
    /// Every BSS in wpa_supplicant's table after the scan.
    pub networks: Vec<Bss>,
    /// The scan finished: wpa_supplicant reported the results of the scan this call started
    /// (`CTRL-EVENT-SCAN-RESULTS`). `false`: the bound ran out first, and `networks` is what the
    /// table held then (partial; see each entry's `age_secs`).
    pub complete: bool,
    /// Scan requests sent (a scan the driver refused is asked for again).
    pub attempts: u32,
    /// Why the result is partial, when it is.
    pub note: Option<String>,
}

impl Agent {
    /// Start a scan and wait (up to `timeout`) for its results; when the time runs out, return
    /// the table as it is, marked partial. Results of a scan that started before this call are
    /// not taken for this one's.
    pub async fn scan_until(&self, timeout: Duration) -> Result<ScanOutcome, Failure> {
        let client = self.client().await?;
        let mut rx = self.wpa.subscribe();
        let deadline = Instant::now() + timeout;
        let request = client
            .scan()
            .await
            .map_err(|e| format!("scan request failed: {e}"))?;
        let mut attempts = 1;
        // FAIL-BUSY: a scan is running now; its results are fresh enough to count.
        let mut ours = request == ScanRequest::AlreadyRunning;
        let mut stale_results = 0u32;
        let mut last_failure = None;
        let complete = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Ok(Event::ScanStarted)) => ours = true,
                Ok(Ok(Event::ScanResults)) if ours => break true,
                Ok(Ok(Event::ScanResults)) => stale_results += 1,
                Ok(Ok(Event::ScanFailed { ret })) => {
                    last_failure = Some(ret.unwrap_or_default());
                    if attempts >= SCAN_ATTEMPTS {
                        break false;
                    }
                    let pause =
                        SCAN_RETRY_PAUSE.min(deadline.saturating_duration_since(Instant::now()));
                    tokio::time::sleep(pause).await;
                    if Instant::now() >= deadline {
                        break false;
                    }
                    attempts += 1;
                    ours = client
                        .scan()
                        .await
                        .map_err(|e| format!("scan request failed: {e}"))?
                        == ScanRequest::AlreadyRunning;
                }
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    return Err(Failure::new(
                        Code::SupplicantGone,
                        "wpa_supplicant went away during the scan",
                    ));
                }
                Err(_) => break false,
            }
        };
        let networks = client
            .bss_all()
            .await
            .map_err(|e| format!("reading scan results failed: {e}"))?;
        let note = (!complete).then(|| {
            let why = match last_failure {
                Some(ret) => {
                    format!("the driver refused the scan {attempts} time(s) (last error {ret})")
                }
                None if stale_results > 0 => {
                    format!("only the results of an earlier scan arrived ({stale_results} time(s))")
                }
                None => "wpa_supplicant reported no results in time".to_string(),
            };
            format!(
                "partial: the scan did not finish within {}s ({why}); these are the {} entries \
                 wpa_supplicant's table held then (age_secs says how old each is) — scan again \
                 with a longer timeout_secs",
                timeout.as_secs(),
                networks.len()
            )
        });
        Ok(ScanOutcome {
            networks,
            complete,
            attempts,
            note,
        })
    }

    /// Whether the last scan saw `ssid` offered with OWE: an OWE BSS of that SSID, or an open
    /// BSS of that SSID that names an OWE companion (OWE transition). Reads wpa_supplicant's
    /// table only (no new scan).
    pub async fn offers_owe(&self, ssid: &Ssid) -> bool {
        self.any_bss(ssid, |b| {
            matches!(b.security, Security::Owe | Security::OweTransition)
                || b.modes.as_ref().is_some_and(|m| {
                    m.akms.iter().any(|a| a == "OWE") || m.owe_companion_bssid.is_some()
                })
        })
        .await
    }

    /// Whether the last scan saw `ssid` offered as WPA3-Enterprise 192-bit only (which a
    /// network block for WPA-EAP / WPA-EAP-SHA256 cannot join).
    pub async fn offers_eap192_only(&self, ssid: &Ssid) -> bool {
        self.any_bss(ssid, |b| b.security == Security::Wpa3Eap192)
            .await
            && !self
                .any_bss(ssid, |b| b.security != Security::Wpa3Eap192)
                .await
    }

    /// Whether a BSS of `ssid` in wpa_supplicant's table (the last scans) matches `pred`.
    async fn any_bss(&self, ssid: &Ssid, pred: impl Fn(&crate::wpa::Bss) -> bool) -> bool {
        let Ok(client) = self.client().await else {
            return false;
        };
        let Ok(table) = client.bss_all().await else {
            return false;
        };
        table.iter().any(|b| b.ssid_hex == ssid.to_hex() && pred(b))
    }
}
