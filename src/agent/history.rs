//! `wifi_events`: a bounded log of what happened on the radio — association attempts,
//! connections, roams (a new BSS without a disconnect between), disconnects with their IEEE
//! 802.11 reason code, authentication/association rejections with their status code, networks
//! not found or temporarily disabled, refused scans, and DHCP leases gained and lost. Fed from
//! wpa_supplicant's events and the DHCP client's lease, in the background, from the agent's
//! start.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use super::dhcp::Lease;
use crate::wpa::{Event, wnm};

/// How many events the log keeps (older ones are dropped and counted).
pub const HISTORY_LEN: usize = 500;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Trying to associate with a BSS.
    Associating,
    /// Connected (keys in place) to a BSS.
    Connected,
    /// Connected to another BSS of the same network without a disconnect between.
    Roamed,
    /// The association ended.
    Disconnected,
    /// The AP rejected authentication.
    AuthRejected,
    /// The AP rejected the association.
    AssocRejected,
    /// No enabled network was found in the last scan.
    NetworkNotFound,
    /// A network was disabled for a while after failures.
    TemporarilyDisabled,
    /// The driver refused a scan.
    ScanFailed,
    /// A DHCP lease was obtained (or changed).
    DhcpLease,
    /// The DHCP lease is gone (released, or the link went).
    DhcpLost,
    /// The AP sent an 802.11v BSS Transition Management Request (see `bss_transition`).
    BssTransitionRequest,
    /// wpa_supplicant answered a BSS Transition Management Request: `status_code` (0 accept),
    /// `bssid` the target it moves to (accept), `detail` the status's meaning.
    BssTransitionResponse,
}

/// One transition candidate of a BSS Transition Management Request (a Neighbor Report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TransitionCandidate {
    /// The candidate BSS.
    pub bssid: String,
    /// Preference, 1–255 (higher preferred; 0 excludes the BSS); absent when not given.
    pub preference: Option<u8>,
    /// Channel number.
    pub channel: u8,
    /// Operating class.
    pub op_class: u8,
    /// Frequency in MHz (when known).
    pub freq_mhz: Option<u32>,
    /// PHY type.
    pub phy_type: u8,
    /// The BSSID Information field.
    pub bssid_info: u32,
}

/// What a BSS Transition Management Request said (or which request a response answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BssTransition {
    /// Dialog token (a response carries that of its request).
    pub dialog_token: u8,
    /// Request mode bits as sent (requests only).
    pub request_mode: Option<u8>,
    /// Bit 0: a preferred candidate list is included.
    pub preferred_list: Option<bool>,
    /// Bit 1: the list is abridged (BSSs not in it are not preferred).
    pub abridged: Option<bool>,
    /// Bit 2: the AP will disassociate us when the disassociation timer runs out.
    pub disassociation_imminent: Option<bool>,
    /// Bit 3: the BSS is terminating (a termination duration is included).
    pub bss_termination: Option<bool>,
    /// Bit 4: the whole ESS is about to disassociate us.
    pub ess_disassociation_imminent: Option<bool>,
    /// Disassociation timer, in beacon intervals (TBTTs).
    pub disassociation_timer_tbtt: Option<u16>,
    /// How long the candidate list is valid, in beacon intervals (TBTTs).
    pub validity_interval_tbtt: Option<u8>,
    /// The candidate list, most preferred first (at most 16 kept).
    pub candidates: Vec<TransitionCandidate>,
    /// Candidates beyond the 16 kept.
    pub candidates_dropped: u32,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RadioEvent {
    /// Sequence number (from 1, never reused): ask for `since_seq` to get only newer ones.
    pub seq: u64,
    /// When, in ms since the Unix epoch.
    pub at_unix_ms: u64,
    /// What happened.
    pub kind: Kind,
    /// The BSS concerned.
    pub bssid: Option<String>,
    /// The BSS before a roam.
    pub from_bssid: Option<String>,
    /// IEEE 802.11 reason code (disconnects).
    pub reason_code: Option<u16>,
    /// IEEE 802.11 status code (rejections).
    pub status_code: Option<u16>,
    /// We ended it ourselves (a disconnect the agent or wpa_supplicant asked for).
    pub locally_generated: Option<bool>,
    /// The code's meaning, or other detail (`WRONG_KEY`, the lease's address, …).
    pub detail: Option<String>,
    /// BSS transition (802.11v) requests and responses: what the request said.
    pub bss_transition: Option<BssTransition>,
}

/// The meaning of a common IEEE 802.11 reason code (Table 9-49).
pub fn reason_text(code: u16) -> &'static str {
    match code {
        1 => "unspecified reason",
        2 => "previous authentication no longer valid",
        3 => "deauthenticated: the station is leaving (or has left)",
        4 => "disassociated due to inactivity",
        5 => "disassociated: the AP cannot handle all associated stations",
        6 => "class 2 frame received from a nonauthenticated station",
        7 => "class 3 frame received from a nonassociated station",
        8 => "disassociated: the station is leaving (or has left)",
        9 => "station requesting (re)association is not authenticated",
        10 => "power capability unacceptable",
        11 => "supported channels unacceptable",
        12 => "disassociated due to BSS transition management",
        13 => "invalid element",
        14 => "message integrity code (MIC) failure",
        15 => "4-way handshake timeout",
        16 => "group key handshake timeout",
        17 => "4-way handshake element differs from (re)association",
        18 => "invalid group cipher",
        19 => "invalid pairwise cipher",
        20 => "invalid AKMP",
        21 => "unsupported RSNE version",
        22 => "invalid RSNE capabilities",
        23 => "IEEE 802.1X authentication failed",
        24 => "cipher suite rejected by policy",
        34 => "disassociated: too many frames unacknowledged (poor channel conditions)",
        _ => "see IEEE 802.11 reason codes",
    }
}

#[derive(Default)]
struct Inner {
    events: VecDeque<RadioEvent>,
    next_seq: u64,
    dropped: u64,
    /// The BSS of the current connection (for telling a roam from a reconnect).
    current: Option<String>,
}

/// The bounded event log; cheap to clone (shared).
#[derive(Clone, Default)]
pub struct History(Arc<Mutex<Inner>>);

/// What `wifi_events` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EventsResult {
    /// Events, oldest first.
    pub events: Vec<RadioEvent>,
    /// Events dropped from the log since the agent started (it keeps the last 500).
    pub dropped: u64,
    /// The sequence number of the newest event (0 when there is none).
    pub last_seq: u64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl History {
    fn push(&self, mut e: RadioEvent) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.next_seq += 1;
        e.seq = g.next_seq;
        e.at_unix_ms = now_ms();
        if g.events.len() >= HISTORY_LEN {
            g.events.pop_front();
            g.dropped += 1;
        }
        g.events.push_back(e);
    }

    fn event(kind: Kind) -> RadioEvent {
        RadioEvent {
            seq: 0,
            at_unix_ms: 0,
            kind,
            bssid: None,
            from_bssid: None,
            reason_code: None,
            status_code: None,
            locally_generated: None,
            detail: None,
            bss_transition: None,
        }
    }

    /// Record a wpa_supplicant event (the ones worth a line; others are ignored).
    pub fn on_event(&self, ev: &Event) {
        let b = |x: &Option<crate::validate::Bssid>| x.map(|b| b.to_string());
        let e = match ev {
            Event::Associating { bssid, .. } => RadioEvent {
                bssid: b(bssid),
                ..Self::event(Kind::Associating)
            },
            Event::Connected { bssid, .. } => {
                let now = b(bssid);
                let before = {
                    let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
                    std::mem::replace(&mut g.current, now.clone())
                };
                match before {
                    Some(prev) if now.is_some() && Some(&prev) != now.as_ref() => RadioEvent {
                        bssid: now,
                        from_bssid: Some(prev),
                        ..Self::event(Kind::Roamed)
                    },
                    _ => RadioEvent {
                        bssid: now,
                        ..Self::event(Kind::Connected)
                    },
                }
            }
            Event::Disconnected {
                bssid,
                reason,
                locally_generated,
            } => {
                self.0.lock().unwrap_or_else(|p| p.into_inner()).current = None;
                RadioEvent {
                    bssid: b(bssid),
                    reason_code: *reason,
                    locally_generated: Some(*locally_generated),
                    detail: reason.map(|r| reason_text(r).to_string()),
                    ..Self::event(Kind::Disconnected)
                }
            }
            Event::AuthReject { bssid, status_code } => RadioEvent {
                bssid: b(bssid),
                status_code: *status_code,
                ..Self::event(Kind::AuthRejected)
            },
            Event::AssocReject { bssid, status_code } => RadioEvent {
                bssid: b(bssid),
                status_code: *status_code,
                ..Self::event(Kind::AssocRejected)
            },
            Event::NetworkNotFound => Self::event(Kind::NetworkNotFound),
            Event::SsidTempDisabled { reason, .. } => RadioEvent {
                detail: reason.clone(),
                ..Self::event(Kind::TemporarilyDisabled)
            },
            Event::ScanFailed { ret } => RadioEvent {
                detail: ret.map(|r| format!("driver error {r}")),
                ..Self::event(Kind::ScanFailed)
            },
            Event::BssTransitionRequest(r) => {
                let bit = |m: u8| Some(r.request_mode & m != 0);
                RadioEvent {
                    bssid: self
                        .0
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .current
                        .clone(),
                    bss_transition: Some(BssTransition {
                        dialog_token: r.dialog_token,
                        request_mode: Some(r.request_mode),
                        preferred_list: bit(wnm::MODE_PREFERRED_LIST),
                        abridged: bit(wnm::MODE_ABRIDGED),
                        disassociation_imminent: bit(wnm::MODE_DISASSOC_IMMINENT),
                        bss_termination: bit(wnm::MODE_BSS_TERMINATION),
                        ess_disassociation_imminent: bit(wnm::MODE_ESS_DISASSOC_IMMINENT),
                        disassociation_timer_tbtt: Some(r.disassoc_timer),
                        validity_interval_tbtt: Some(r.validity_interval),
                        candidates: r
                            .candidates
                            .iter()
                            .map(|c| TransitionCandidate {
                                bssid: c.bssid.to_string(),
                                preference: c.preference,
                                channel: c.channel,
                                op_class: c.op_class,
                                freq_mhz: c.freq_mhz,
                                phy_type: c.phy_type,
                                bssid_info: c.bssid_info,
                            })
                            .collect(),
                        candidates_dropped: r.candidates_dropped,
                    }),
                    ..Self::event(Kind::BssTransitionRequest)
                }
            }
            Event::BssTransitionResponse(r) => RadioEvent {
                bssid: b(&r.target_bssid),
                status_code: Some(u16::from(r.status)),
                detail: Some(wnm::status_text(r.status).to_string()),
                bss_transition: Some(BssTransition {
                    dialog_token: r.dialog_token,
                    request_mode: None,
                    preferred_list: None,
                    abridged: None,
                    disassociation_imminent: None,
                    bss_termination: None,
                    ess_disassociation_imminent: None,
                    disassociation_timer_tbtt: None,
                    validity_interval_tbtt: None,
                    candidates: Vec::new(),
                    candidates_dropped: 0,
                }),
                ..Self::event(Kind::BssTransitionResponse)
            },
            Event::Terminating => {
                self.0.lock().unwrap_or_else(|p| p.into_inner()).current = None;
                return;
            }
            _ => return,
        };
        self.push(e);
    }

    /// Record a change of the DHCP lease.
    pub fn on_lease(&self, lease: Option<&Lease>) {
        self.push(match lease {
            Some(l) => RadioEvent {
                detail: Some(format!(
                    "{}/{}{}",
                    l.ip,
                    l.prefix,
                    l.server.map(|s| format!(" from {s}")).unwrap_or_default()
                )),
                ..Self::event(Kind::DhcpLease)
            },
            None => Self::event(Kind::DhcpLost),
        });
    }

    /// Events newer than `since_seq`, at most the newest `limit`, of the given kinds (all when
    /// empty).
    pub fn query(&self, since_seq: u64, limit: usize, kinds: &[Kind]) -> EventsResult {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let matching: Vec<RadioEvent> = g
            .events
            .iter()
            .filter(|e| e.seq > since_seq && (kinds.is_empty() || kinds.contains(&e.kind)))
            .cloned()
            .collect();
        let skip = matching.len().saturating_sub(limit);
        EventsResult {
            events: matching.into_iter().skip(skip).collect(),
            dropped: g.dropped,
            last_seq: g.next_seq,
        }
    }

    /// Feed the log from wpa_supplicant's events and the lease, until both end.
    pub fn spawn(
        &self,
        mut events: broadcast::Receiver<Event>,
        mut lease: watch::Receiver<Option<Lease>>,
    ) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut lease_open = true;
            loop {
                tokio::select! {
                    ev = events.recv() => match ev {
                        Ok(ev) => me.on_event(&ev),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            me.0.lock().unwrap_or_else(|p| p.into_inner()).dropped += n;
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    changed = lease.changed(), if lease_open => {
                        if changed.is_err() {
                            lease_open = false;
                            continue;
                        }
                        let l = lease.borrow_and_update().clone();
                        me.on_lease(l.as_ref());
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Bssid;

    fn bssid(n: u8) -> Option<Bssid> {
        Some(Bssid::from([2, 0, 0, 0, n, 0]))
    }

    #[test]
    fn connect_roam_disconnect_and_lease() {
        let h = History::default();
        h.on_event(&Event::Connected {
            bssid: bssid(1),
            network_id: Some(0),
        });
        h.on_lease(Some(&Lease {
            ip: "10.0.1.150".parse().unwrap(),
            prefix: 24,
            gateway: None,
            dns: vec![],
            domain: None,
            lease_secs: Some(3600),
            server: Some("10.0.1.1".parse().unwrap()),
        }));
        h.on_event(&Event::Connected {
            bssid: bssid(2),
            network_id: Some(0),
        });
        h.on_event(&Event::Disconnected {
            bssid: bssid(2),
            reason: Some(15),
            locally_generated: false,
        });
        h.on_event(&Event::Connected {
            bssid: bssid(2),
            network_id: Some(0),
        });
        h.on_event(&Event::ScanStarted); // not logged
        h.on_lease(None);
        let all = h.query(0, 100, &[]);
        let kinds: Vec<Kind> = all.events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![
                Kind::Connected,
                Kind::DhcpLease,
                Kind::Roamed,
                Kind::Disconnected,
                Kind::Connected,
                Kind::DhcpLost
            ]
        );
        assert_eq!(
            all.events[1].detail.as_deref(),
            Some("10.0.1.150/24 from 10.0.1.1")
        );
        assert_eq!(
            all.events[2].from_bssid.as_deref(),
            Some("02:00:00:00:01:00")
        );
        assert_eq!(all.events[3].reason_code, Some(15));
        assert_eq!(
            all.events[3].detail.as_deref(),
            Some("4-way handshake timeout")
        );
        assert_eq!(all.events[3].locally_generated, Some(false));
        assert_eq!(all.last_seq, 6);
        let newer = h.query(4, 100, &[]);
        assert_eq!(newer.events.len(), 2);
        let last = h.query(0, 1, &[Kind::Connected]);
        assert_eq!(last.events.len(), 1);
        assert_eq!(last.events[0].seq, 5);
        assert!(serde_json::to_value(&all).unwrap()["events"][2]["kind"] == "roamed");
    }

    #[test]
    fn bss_transition_request_and_response() {
        use crate::wpa::wnm::{BtmRequest, BtmResponse, Candidate};
        let h = History::default();
        h.on_event(&Event::Connected {
            bssid: bssid(1),
            network_id: Some(0),
        });
        h.on_event(&Event::BssTransitionRequest(BtmRequest {
            dialog_token: 3,
            request_mode: 0x05,
            disassoc_timer: 300,
            validity_interval: 200,
            candidates: vec![Candidate {
                bssid: bssid(2).unwrap(),
                bssid_info: 0,
                op_class: 81,
                channel: 11,
                phy_type: 7,
                preference: Some(1),
                freq_mhz: Some(2462),
            }],
            candidates_dropped: 0,
        }));
        h.on_event(&Event::BssTransitionResponse(BtmResponse {
            dialog_token: 3,
            status: 0,
            reason: 0,
            target_bssid: bssid(2),
        }));
        let r = h.query(
            0,
            10,
            &[Kind::BssTransitionRequest, Kind::BssTransitionResponse],
        );
        assert_eq!(r.events.len(), 2);
        let v = serde_json::to_value(&r).unwrap();
        let req = &v["events"][0];
        assert_eq!(req["kind"], "bss_transition_request");
        assert_eq!(req["bssid"], "02:00:00:00:01:00");
        let t = &req["bss_transition"];
        assert_eq!(t["dialog_token"], 3);
        assert_eq!(t["preferred_list"], true);
        assert_eq!(t["abridged"], false);
        assert_eq!(t["disassociation_imminent"], true);
        assert_eq!(t["disassociation_timer_tbtt"], 300);
        assert_eq!(t["candidates"][0]["bssid"], "02:00:00:00:02:00");
        assert_eq!(t["candidates"][0]["preference"], 1);
        assert_eq!(t["candidates"][0]["channel"], 11);
        let resp = &v["events"][1];
        assert_eq!(resp["kind"], "bss_transition_response");
        assert_eq!(resp["status_code"], 0);
        assert_eq!(resp["detail"], "accept");
        assert_eq!(resp["bssid"], "02:00:00:00:02:00");
        assert_eq!(resp["bss_transition"]["dialog_token"], 3);
    }

    #[test]
    fn the_log_is_bounded() {
        let h = History::default();
        for _ in 0..HISTORY_LEN + 7 {
            h.on_event(&Event::NetworkNotFound);
        }
        let r = h.query(0, usize::MAX, &[]);
        assert_eq!(r.events.len(), HISTORY_LEN);
        assert_eq!(r.dropped, 7);
        assert_eq!(r.events[0].seq, 8);
    }
}
