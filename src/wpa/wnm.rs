//! 802.11v BSS Transition Management (BTM) requests and our responses, from wpa_supplicant's
//! debug output.
//!
//! wpa_supplicant 2.10 (Debian 12) tells its control interface almost nothing about a BTM
//! request: at the monitor's default level only `WNM: Preferred List Available`,
//! `WNM: Disassociation Imminent - Disassociation Timer N` and
//! `WNM: BSS Transition Management Request did not include candidates` (wnm_sta.c). The
//! request's dialog token, request mode, validity, the candidate list and the response it sends
//! are printed with `wpa_printf(MSG_DEBUG, …)` only, which reaches stdout under `-d` and never
//! a monitor socket. So the supervisor runs wpa_supplicant with `-d` and feeds its stdout lines
//! here. The lines used (verbatim formats from wnm_sta.c, 2.10):
//!
//! ```text
//! WNM: BSS Transition Management Request: dialog_token=%u request_mode=0x%x disassoc_timer=%u validity_interval=%u
//! WNM: BSS Transition Candidate List
//! %u: <bssid> info=0x%x op_class=%u chan=%u phy=%u pref=%d freq=%d
//! WNM: Candidate list valid for %u ms
//! <ifname>: WNM: Transition to BSS <bssid> based on BSS Transition Management Request (old BSSID <bssid> after_new_scan=%d)
//! WNM: Send BSS Transition Management Response to <bssid> dialog_token=%u status=%u reason=%u delay=%d
//! ```
//!
//! The request came from the air: every field is a number or a MAC address parsed strictly,
//! the candidate list is bounded, and nothing of the frame's free text (the ESS disassociation
//! URL) is kept. Pure and total: any line is accepted, unknown ones are ignored.

use crate::validate::Bssid;

/// Candidates kept per request (wpa_supplicant itself keeps at most 10).
pub const MAX_CANDIDATES: usize = 16;

/// Request mode bits (IEEE 802.11-2020 9.6.13.9).
pub const MODE_PREFERRED_LIST: u8 = 0x01;
/// The list is abridged: BSSs not in it are not preferred.
pub const MODE_ABRIDGED: u8 = 0x02;
/// The AP will disassociate us after the disassociation timer.
pub const MODE_DISASSOC_IMMINENT: u8 = 0x04;
/// The BSS Termination Duration field is included.
pub const MODE_BSS_TERMINATION: u8 = 0x08;
/// The whole ESS is about to disassociate us.
pub const MODE_ESS_DISASSOC_IMMINENT: u8 = 0x10;

/// One transition candidate of a request (a Neighbor Report element).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The candidate BSS.
    pub bssid: Bssid,
    /// The BSSID Information field.
    pub bssid_info: u32,
    /// Operating class.
    pub op_class: u8,
    /// Channel number.
    pub channel: u8,
    /// PHY type.
    pub phy_type: u8,
    /// Preference (0 = excluded, 255 = most preferred), when the AP gave one.
    pub preference: Option<u8>,
    /// The channel's frequency as wpa_supplicant computed it.
    pub freq_mhz: Option<u32>,
}

/// A BSS Transition Management Request, as wpa_supplicant read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtmRequest {
    /// Dialog token (the response carries the same).
    pub dialog_token: u8,
    /// Request mode bits (`MODE_*`).
    pub request_mode: u8,
    /// Disassociation timer, in TBTTs.
    pub disassoc_timer: u16,
    /// Validity interval of the candidate list, in TBTTs.
    pub validity_interval: u8,
    /// The candidate list, most preferred first (as wpa_supplicant sorted it).
    pub candidates: Vec<Candidate>,
    /// Candidates beyond [`MAX_CANDIDATES`], not kept.
    pub candidates_dropped: u32,
}

/// The BSS Transition Management Response wpa_supplicant sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtmResponse {
    /// Dialog token (that of the request answered).
    pub dialog_token: u8,
    /// Status code (0 accept, 1.. reject; IEEE 802.11-2020 Table 9-428).
    pub status: u8,
    /// MBO transition reject reason (0 unspecified).
    pub reason: u8,
    /// The BSS we said we move to (accept only).
    pub target_bssid: Option<Bssid>,
}

/// What a line (or a flush) completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WnmEvent {
    /// A request, with its candidate list.
    Request(BtmRequest),
    /// Our response.
    Response(BtmResponse),
}

/// The meaning of a BTM status code.
pub fn status_text(code: u8) -> &'static str {
    match code {
        0 => "accept",
        1 => "reject: unspecified",
        2 => "reject: insufficient beacons",
        3 => "reject: insufficient capacity",
        4 => "reject: BSS termination undesired",
        5 => "reject: BSS termination delay request",
        6 => "reject: station BSS transition candidate list provided",
        7 => "reject: no suitable candidates",
        8 => "reject: leaving ESS",
        _ => "reject: reserved status code",
    }
}

/// Reads wpa_supplicant's debug lines, one at a time, into [`WnmEvent`]s.
#[derive(Debug, Default)]
pub struct BtmParser {
    pending: Option<BtmRequest>,
    in_list: bool,
    target: Option<Bssid>,
}

/// `key=value` in a space-separated list.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.split(' ')
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

fn num<T: std::str::FromStr>(text: &str, key: &str) -> Option<T> {
    field(text, key)?.parse().ok()
}

fn hex_u32(text: &str, key: &str) -> Option<u32> {
    u32::from_str_radix(field(text, key)?.strip_prefix("0x")?, 16).ok()
}

impl BtmParser {
    /// A line of wpa_supplicant's stdout. Returns what it completed (at most two events: a
    /// pending request, then a response).
    pub fn feed(&mut self, line: &str) -> Vec<WnmEvent> {
        let mut out = Vec::new();
        let line = line.trim_end();
        // wpa_dbg/wpa_msg lines carry `<ifname>: ` in front; wpa_printf lines do not.
        let text = match line.split_once(": WNM: ") {
            Some((ifname, rest)) if !ifname.contains(' ') && !ifname.is_empty() => {
                line.get(ifname.len() + 2..).unwrap_or(rest)
            }
            _ => line,
        };
        if self.in_list {
            if let Some(c) = parse_candidate(text) {
                if let Some(p) = self.pending.as_mut() {
                    if p.candidates.len() < MAX_CANDIDATES {
                        p.candidates.push(c);
                    } else {
                        p.candidates_dropped = p.candidates_dropped.saturating_add(1);
                    }
                }
                return out;
            }
            self.in_list = false;
        }
        let Some(wnm) = text.strip_prefix("WNM: ") else {
            return out;
        };
        if let Some(args) = wnm.strip_prefix("BSS Transition Management Request: ") {
            out.extend(self.flush());
            self.target = None;
            let (Some(dialog_token), Some(mode), Some(timer), Some(validity)) = (
                num(args, "dialog_token"),
                field(args, "request_mode")
                    .and_then(|m| m.strip_prefix("0x"))
                    .and_then(|m| u8::from_str_radix(m, 16).ok()),
                num(args, "disassoc_timer"),
                num(args, "validity_interval"),
            ) else {
                return out;
            };
            self.pending = Some(BtmRequest {
                dialog_token,
                request_mode: mode,
                disassoc_timer: timer,
                validity_interval: validity,
                candidates: Vec::new(),
                candidates_dropped: 0,
            });
        } else if wnm == "BSS Transition Candidate List" {
            self.in_list = self.pending.is_some();
        } else if let Some(rest) = wnm.strip_prefix("Transition to BSS ") {
            out.extend(self.flush());
            self.target = rest.get(..17).and_then(|b| Bssid::parse(b).ok());
        } else if let Some(args) = wnm.strip_prefix("Send BSS Transition Management Response to ") {
            out.extend(self.flush());
            let (Some(dialog_token), Some(status)) =
                (num(args, "dialog_token"), num(args, "status"))
            else {
                return out;
            };
            let target = self.target.take();
            out.push(WnmEvent::Response(BtmResponse {
                dialog_token,
                status,
                reason: num(args, "reason").unwrap_or(0),
                target_bssid: if status == 0 { target } else { None },
            }));
        } else if wnm.starts_with("Candidate list valid for")
            || wnm.starts_with("BSS Transition Management Request did not include candidates")
            || wnm.starts_with("Candidate list included bit is set, but no candidates")
        {
            out.extend(self.flush());
        }
        out
    }

    /// The pending request, if any (call when the output has been quiet for a moment).
    pub fn flush(&mut self) -> Option<WnmEvent> {
        self.in_list = false;
        self.pending.take().map(WnmEvent::Request)
    }

    /// A request is waiting for its end.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }
}

/// `0: 02:00:00:00:01:00 info=0x0 op_class=81 chan=11 phy=7 pref=1 freq=2462`.
fn parse_candidate(text: &str) -> Option<Candidate> {
    let (index, rest) = text.split_once(": ")?;
    if index.is_empty() || index.len() > 3 || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bssid = Bssid::parse(rest.get(..17)?).ok()?;
    let args = rest.get(17..)?;
    let pref: i32 = num(args, "pref")?;
    let freq: i64 = num(args, "freq")?;
    Some(Candidate {
        bssid,
        bssid_info: hex_u32(args, "info")?,
        op_class: num(args, "op_class")?,
        channel: num(args, "chan")?,
        phy_type: num(args, "phy")?,
        preference: u8::try_from(pref).ok(),
        freq_mhz: u32::try_from(freq).ok().filter(|f| *f > 0 && *f < 100_000),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bssid {
        Bssid::parse(s).unwrap()
    }

    fn feed_all(p: &mut BtmParser, lines: &[&str]) -> Vec<WnmEvent> {
        lines.iter().flat_map(|l| p.feed(l)).collect()
    }

    #[test]
    fn a_request_its_candidates_and_an_accept() {
        let mut p = BtmParser::default();
        let got = feed_all(
            &mut p,
            &[
                "wlan0: RX action 7 from 02:00:00:00:01:00",
                "WNM: BSS Transition Management Request: dialog_token=1 request_mode=0x5 disassoc_timer=300 validity_interval=200",
                "wlan0: WNM: Disassociation Imminent - Disassociation Timer 300",
                "wlan0: WNM: Preferred List Available",
                "WNM: Neighbor report tag 52",
                "WNM: Subelement id=3 len=1",
                "WNM: BSS Transition Candidate List",
                "0: 02:00:00:00:02:00 info=0x0 op_class=81 chan=11 phy=7 pref=255 freq=2462",
                "1: 02:00:00:00:03:00 info=0x1f op_class=81 chan=6 phy=7 pref=-1 freq=0",
                "WNM: Candidate list valid for 204 ms",
                "wlan0: WNM: Fetch current scan results from the driver for checking transition candidates",
                "wlan0: WNM: Transition to BSS 02:00:00:00:02:00 based on BSS Transition Management Request (old BSSID 02:00:00:00:01:00 after_new_scan=0)",
                "WNM: Sending successful BSS Transition Management Response",
                "WNM: Send BSS Transition Management Response to 02:00:00:00:01:00 dialog_token=1 status=0 reason=0 delay=0",
            ],
        );
        assert_eq!(
            got,
            vec![
                WnmEvent::Request(BtmRequest {
                    dialog_token: 1,
                    request_mode: 0x05,
                    disassoc_timer: 300,
                    validity_interval: 200,
                    candidates: vec![
                        Candidate {
                            bssid: b("02:00:00:00:02:00"),
                            bssid_info: 0,
                            op_class: 81,
                            channel: 11,
                            phy_type: 7,
                            preference: Some(255),
                            freq_mhz: Some(2462)
                        },
                        Candidate {
                            bssid: b("02:00:00:00:03:00"),
                            bssid_info: 0x1f,
                            op_class: 81,
                            channel: 6,
                            phy_type: 7,
                            preference: None,
                            freq_mhz: None
                        }
                    ],
                    candidates_dropped: 0,
                }),
                WnmEvent::Response(BtmResponse {
                    dialog_token: 1,
                    status: 0,
                    reason: 0,
                    target_bssid: Some(b("02:00:00:00:02:00"))
                })
            ]
        );
        assert!(!p.has_pending());
    }

    #[test]
    fn a_request_without_candidates_is_rejected() {
        let mut p = BtmParser::default();
        let got = feed_all(
            &mut p,
            &[
                "WNM: BSS Transition Management Request: dialog_token=7 request_mode=0x0 disassoc_timer=0 validity_interval=1",
                "wlan0: WNM: BSS Transition Management Request did not include candidates",
                "WNM: Send BSS Transition Management Response to 02:00:00:00:01:00 dialog_token=7 status=1 reason=0 delay=0",
            ],
        );
        assert_eq!(got.len(), 2);
        assert!(
            matches!(&got[0], WnmEvent::Request(r) if r.dialog_token == 7 && r.candidates.is_empty())
        );
        assert_eq!(
            got[1],
            WnmEvent::Response(BtmResponse {
                dialog_token: 7,
                status: 1,
                reason: 0,
                target_bssid: None
            })
        );
        assert_eq!(status_text(7), "reject: no suitable candidates");
    }

    #[test]
    fn a_reject_after_a_scan_and_a_flush_when_quiet() {
        let mut p = BtmParser::default();
        let got = feed_all(
            &mut p,
            &[
                "WNM: BSS Transition Management Request: dialog_token=2 request_mode=0x1 disassoc_timer=0 validity_interval=50",
                "WNM: BSS Transition Candidate List",
                "0: 02:00:00:00:09:00 info=0x0 op_class=81 chan=1 phy=7 pref=1 freq=2412",
            ],
        );
        assert!(got.is_empty());
        assert!(p.has_pending());
        let Some(WnmEvent::Request(r)) = p.flush() else {
            panic!("a request")
        };
        assert_eq!(r.candidates.len(), 1);
        // A stale transition target is not carried into a reject.
        let got = feed_all(
            &mut p,
            &[
                "wlan0: WNM: Transition to BSS 02:00:00:00:09:00 based on BSS Transition Management Request (old BSSID 02:00:00:00:01:00 after_new_scan=1)",
                "WNM: Send BSS Transition Management Response to 02:00:00:00:01:00 dialog_token=2 status=7 reason=0 delay=0",
            ],
        );
        assert_eq!(
            got,
            vec![WnmEvent::Response(BtmResponse {
                dialog_token: 2,
                status: 7,
                reason: 0,
                target_bssid: None
            })]
        );
    }

    #[test]
    fn hostile_and_truncated_lines() {
        let mut p = BtmParser::default();
        for l in [
            "",
            "WNM: ",
            "WNM: BSS Transition Management Request: ",
            "WNM: BSS Transition Management Request: dialog_token=300 request_mode=0x1 disassoc_timer=0 validity_interval=1",
            "WNM: BSS Transition Management Request: dialog_token=1 request_mode=0x1ff disassoc_timer=0 validity_interval=1",
            "WNM: BSS Transition Management Request: dialog_token=1 request_mode=1 disassoc_timer=0 validity_interval=1",
            "WNM: Send BSS Transition Management Response to ",
            "WNM: Send BSS Transition Management Response to x dialog_token=-1 status=0",
            "WNM: Transition to BSS 02:00",
            "WNM: BSS Transition Candidate List",
            "0: 02:00:00:00:09:00",
            "é: WNM: é",
            "wlan0: WNM: Transition to BSS éééééééééééééééééé",
        ] {
            assert!(p.feed(l).is_empty(), "{l:?}");
        }
        assert!(p.flush().is_none());
        // Candidate lines outside a list are ignored; a bad one ends the list.
        assert!(
            p.feed("0: 02:00:00:00:09:00 info=0x0 op_class=81 chan=1 phy=7 pref=1 freq=2412")
                .is_empty()
        );
        p.feed("WNM: BSS Transition Management Request: dialog_token=3 request_mode=0x1 disassoc_timer=0 validity_interval=1");
        p.feed("WNM: BSS Transition Candidate List");
        p.feed("0: 02:00:00:00:09:00 info=zz op_class=81 chan=1 phy=7 pref=1 freq=2412");
        p.feed("1: 02:00:00:00:0a:00 info=0x0 op_class=81 chan=1 phy=7 pref=1 freq=2412");
        let Some(WnmEvent::Request(r)) = p.flush() else {
            panic!("a request")
        };
        assert!(r.candidates.is_empty());
    }

    #[test]
    fn the_candidate_list_is_bounded() {
        let mut p = BtmParser::default();
        p.feed("WNM: BSS Transition Management Request: dialog_token=4 request_mode=0x1 disassoc_timer=0 validity_interval=1");
        p.feed("WNM: BSS Transition Candidate List");
        for i in 0..40 {
            p.feed(&format!(
                "{i}: 02:00:00:00:{i:02x}:00 info=0x0 op_class=81 chan=1 phy=7 pref=1 freq=2412"
            ));
        }
        let got = p.feed("WNM: Candidate list valid for 1 ms");
        let [WnmEvent::Request(r)] = got.as_slice() else {
            panic!("{got:?}")
        };
        assert_eq!(r.candidates.len(), MAX_CANDIDATES);
        assert_eq!(r.candidates_dropped, 40 - MAX_CANDIDATES as u32);
    }
}
