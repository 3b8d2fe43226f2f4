//! 802.11 frames as a monitor interface hands them to a packet socket: a radiotap header, then
//! the 802.11 frame (possibly with its FCS). Parsed by hand, pure and total: the frames come
//! from the air (anyone's), so every length is checked and nothing panics; a frame too short
//! for a field just lacks it. Summarized for `wifi_capture` in monitor mode: per management
//! and control subtype counts, the BSSs seen (SSID cleaned, bounded), the authentication and
//! (re)association exchange, deauthentications and disassociations with their reason codes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

/// How many entries each list of the summary keeps.
pub const LIST_MAX: usize = 64;

/// What the radiotap header said (the fields used here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Radiotap {
    /// Its length: where the 802.11 frame starts.
    pub len: usize,
    /// Channel frequency, MHz.
    pub freq_mhz: Option<u16>,
    /// Antenna signal, dBm.
    pub signal_dbm: Option<i8>,
    /// The frame ends with its 4-byte FCS.
    pub fcs: bool,
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The radiotap header at the start of `frame` (version 0). Only the fields before the first
/// one not understood are read (TSFT, flags, rate, channel, FHSS, antenna signal); the header
/// length is always honoured.
pub fn radiotap(frame: &[u8]) -> Option<Radiotap> {
    if *frame.first()? != 0 {
        return None;
    }
    let len = le16(frame, 2)? as usize;
    if len < 8 || len > frame.len() {
        return None;
    }
    let hdr = &frame[..len];
    let present = le32(hdr, 4)?;
    // Skip the extended present words (bit 31 chains another).
    let mut at = 8;
    let mut word = present;
    while word & (1 << 31) != 0 {
        word = le32(hdr, at)?;
        at += 4;
    }
    let mut r = Radiotap {
        len,
        ..Default::default()
    };
    let align = |at: usize, a: usize| at.div_ceil(a) * a;
    // (bit, alignment, size) of the leading fields, in order.
    for (bit, a, size) in [
        (0u32, 8usize, 8usize),
        (1, 1, 1),
        (2, 1, 1),
        (3, 2, 4),
        (4, 1, 2),
        (5, 1, 1),
    ] {
        if present & (1 << bit) == 0 {
            continue;
        }
        at = align(at, a);
        let field = hdr.get(at..at + size)?;
        match bit {
            1 => r.fcs = field[0] & 0x10 != 0,
            3 => r.freq_mhz = Some(u16::from_le_bytes([field[0], field[1]])).filter(|f| *f > 0),
            5 => r.signal_dbm = Some(field[0] as i8),
            _ => {}
        }
        at += size;
    }
    Some(r)
}

/// A MAC address as text.
fn mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Printable text of at most 32 bytes: control characters dropped, invalid UTF-8 replaced.
fn clean_ssid(raw: &[u8]) -> String {
    String::from_utf8_lossy(&raw[..raw.len().min(32)])
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

/// The information element `id` in `ies`.
fn element(ies: &[u8], id: u8) -> Option<&[u8]> {
    let mut at = 0;
    while at + 2 <= ies.len() {
        let (eid, len) = (ies[at], ies[at + 1] as usize);
        let body = ies.get(at + 2..at + 2 + len)?;
        if eid == id {
            return Some(body);
        }
        at += 2 + len;
    }
    None
}

/// The name of a management (type 0) or control (type 1) subtype.
pub fn subtype_name(ftype: u8, subtype: u8) -> &'static str {
    match (ftype, subtype) {
        (0, 0) => "assoc_req",
        (0, 1) => "assoc_resp",
        (0, 2) => "reassoc_req",
        (0, 3) => "reassoc_resp",
        (0, 4) => "probe_req",
        (0, 5) => "probe_resp",
        (0, 6) => "timing_advertisement",
        (0, 8) => "beacon",
        (0, 9) => "atim",
        (0, 10) => "disassoc",
        (0, 11) => "auth",
        (0, 12) => "deauth",
        (0, 13) => "action",
        (0, 14) => "action_no_ack",
        (0, _) => "mgmt_reserved",
        (1, 4) => "beamforming_report_poll",
        (1, 5) => "vht_ndp_announcement",
        (1, 7) => "control_wrapper",
        (1, 8) => "block_ack_req",
        (1, 9) => "block_ack",
        (1, 10) => "ps_poll",
        (1, 11) => "rts",
        (1, 12) => "cts",
        (1, 13) => "ack",
        (1, 14) => "cf_end",
        (1, 15) => "cf_end_ack",
        (1, _) => "ctrl_other",
        (2, _) => "data",
        _ => "extension",
    }
}

/// One frame, decoded as far as the summary needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    /// Radiotap fields.
    pub rt: Radiotap,
    /// 802.11 type (0 management, 1 control, 2 data, 3 extension); `None` when the frame is
    /// too short for a frame control field.
    pub ftype: Option<u8>,
    /// Subtype.
    pub subtype: u8,
    /// Protected frame bit.
    pub protected: bool,
    /// Receiver, transmitter and (management) BSSID.
    pub addr1: Option<String>,
    /// Transmitter.
    pub addr2: Option<String>,
    /// BSSID of a management frame (address 3).
    pub bssid: Option<String>,
    /// SSID of a beacon, probe request/response or (re)association request.
    pub ssid: Option<String>,
    /// Authentication: algorithm, transaction sequence number, status code.
    pub auth: Option<(u16, u16, u16)>,
    /// (Re)association response status code.
    pub assoc_status: Option<u16>,
    /// Deauthentication / disassociation reason code.
    pub reason: Option<u16>,
    /// An unprotected data frame carrying EAPOL (LLC/SNAP EtherType 0x888e).
    pub eapol: bool,
}

impl Frame {
    /// A management frame.
    pub fn is_mgmt(&self) -> bool {
        self.ftype == Some(0)
    }
}

/// Decode a frame from a monitor interface (radiotap first). Total: garbage gives a frame
/// with fewer fields, never a panic.
pub fn decode(frame: &[u8]) -> Frame {
    let Some(rt) = radiotap(frame) else {
        return Frame::default();
    };
    let mut f = Frame {
        rt,
        ..Default::default()
    };
    let mut body = &frame[rt.len..];
    if rt.fcs && body.len() >= 4 {
        body = &body[..body.len() - 4];
    }
    let (Some(&fc0), Some(&fc1)) = (body.first(), body.get(1)) else {
        return f;
    };
    let ftype = (fc0 >> 2) & 3;
    f.ftype = Some(ftype);
    f.subtype = fc0 >> 4;
    f.protected = fc1 & 0x40 != 0;
    f.addr1 = body.get(4..10).map(mac);
    f.addr2 = body.get(10..16).map(mac);
    match ftype {
        0 => {
            f.bssid = body.get(16..22).map(mac);
            let Some(b) = body.get(24..) else { return f };
            match f.subtype {
                // beacon, probe response: timestamp 8, interval 2, capability 2, elements
                8 | 5 => f.ssid = b.get(12..).and_then(|ies| element(ies, 0)).map(clean_ssid),
                4 => f.ssid = element(b, 0).map(clean_ssid),
                0 => f.ssid = b.get(4..).and_then(|ies| element(ies, 0)).map(clean_ssid),
                2 => f.ssid = b.get(10..).and_then(|ies| element(ies, 0)).map(clean_ssid),
                1 | 3 => f.assoc_status = le16(b, 2),
                11 if !f.protected => {
                    f.auth = match (le16(b, 0), le16(b, 2), le16(b, 4)) {
                        (Some(a), Some(s), Some(st)) => Some((a, s, st)),
                        _ => None,
                    }
                }
                10 | 12 if !f.protected => f.reason = le16(b, 0),
                _ => {}
            }
        }
        2 if !f.protected => {
            let mut hdr = 24;
            if fc1 & 0x03 == 0x03 {
                hdr += 6;
            }
            if f.subtype & 0x08 != 0 {
                hdr += 2;
                if fc1 & 0x80 != 0 {
                    hdr += 4;
                }
            }
            f.eapol = body.get(hdr..hdr + 8)
                == Some(&[0xaa, 0xaa, 0x03, 0x00, 0x00, 0x00, 0x88, 0x8e][..]);
        }
        _ => {}
    }
    f
}

/// A BSS heard (beacons or probe responses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BssSeen {
    /// The BSSID.
    pub bssid: String,
    /// Its SSID (cleaned; empty for a hidden one).
    pub ssid: String,
    /// Beacons heard.
    pub beacons: u32,
    /// Probe responses heard.
    pub probe_responses: u32,
    /// Channel frequency from radiotap, MHz.
    pub freq_mhz: Option<u16>,
    /// Strongest signal heard, dBm.
    pub max_signal_dbm: Option<i8>,
}

/// One frame of an authentication / association exchange, or a deauth/disassoc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct MgmtEvent {
    /// ms after the capture's start.
    pub time_ms: u64,
    /// `auth`, `assoc_req`, `assoc_resp`, `reassoc_req`, `reassoc_resp`, `deauth`, `disassoc`.
    pub subtype: String,
    /// Transmitter.
    pub from: Option<String>,
    /// Receiver.
    pub to: Option<String>,
    /// The BSSID (address 3).
    pub bssid: Option<String>,
    /// Authentication algorithm (0 open, 1 shared key, 2 FT, 3 SAE).
    pub auth_algorithm: Option<u16>,
    /// Authentication transaction sequence number.
    pub auth_seq: Option<u16>,
    /// Status code (authentication, association response).
    pub status_code: Option<u16>,
    /// Reason code (deauth, disassoc).
    pub reason_code: Option<u16>,
}

/// A subtype and how many frames of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SubtypeCount {
    /// `beacon`, `probe_req`, `ack`, `data`, …
    pub subtype: String,
    /// Frames.
    pub count: u32,
}

/// What a monitor capture saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AirSummary {
    /// Frames per management/control subtype (and `data`, `extension`, `undecodable`).
    pub subtypes: Vec<SubtypeCount>,
    /// The BSSs heard in beacons and probe responses (at most 64).
    pub bss_seen: Vec<BssSeen>,
    /// SSIDs asked for in probe requests (cleaned, at most 64; empty = wildcard).
    pub probed_ssids: Vec<String>,
    /// Authentication, (re)association, deauthentication and disassociation frames, in
    /// order (at most 64).
    pub exchange: Vec<MgmtEvent>,
    /// Unprotected data frames carrying EAPOL.
    pub eapol_frames: u32,
    /// A list above stopped at 64 entries.
    pub lists_truncated: bool,
}

/// Builds an [`AirSummary`] frame by frame.
#[derive(Debug, Default)]
pub struct AirSummarizer {
    counts: BTreeMap<&'static str, u32>,
    s: AirSummary,
}

impl AirSummarizer {
    /// Account for one frame seen `time_ms` after the start.
    pub fn add(&mut self, time_ms: u64, f: &Frame) {
        let name = match f.ftype {
            Some(t) => subtype_name(t, f.subtype),
            None => "undecodable",
        };
        *self.counts.entry(name).or_default() += 1;
        if f.eapol {
            self.s.eapol_frames += 1;
        }
        if !f.is_mgmt() {
            return;
        }
        match f.subtype {
            8 | 5 => {
                let Some(bssid) = f.bssid.clone() else { return };
                let i = match self.s.bss_seen.iter().position(|b| b.bssid == bssid) {
                    Some(i) => i,
                    None if self.s.bss_seen.len() < LIST_MAX => {
                        self.s.bss_seen.push(BssSeen {
                            bssid,
                            ssid: String::new(),
                            beacons: 0,
                            probe_responses: 0,
                            freq_mhz: None,
                            max_signal_dbm: None,
                        });
                        self.s.bss_seen.len() - 1
                    }
                    None => {
                        self.s.lists_truncated = true;
                        return;
                    }
                };
                let b = &mut self.s.bss_seen[i];
                if f.subtype == 8 {
                    b.beacons += 1;
                } else {
                    b.probe_responses += 1;
                }
                if let Some(s) = f.ssid.as_ref().filter(|s| !s.is_empty()) {
                    b.ssid = s.clone();
                }
                b.freq_mhz = f.rt.freq_mhz.or(b.freq_mhz);
                if let Some(sig) = f.rt.signal_dbm {
                    b.max_signal_dbm = Some(b.max_signal_dbm.map_or(sig, |m| m.max(sig)));
                }
            }
            4 => {
                let s = f.ssid.clone().unwrap_or_default();
                if !self.s.probed_ssids.contains(&s) {
                    if self.s.probed_ssids.len() < LIST_MAX {
                        self.s.probed_ssids.push(s);
                    } else {
                        self.s.lists_truncated = true;
                    }
                }
            }
            0..=3 | 10..=12 => {
                if self.s.exchange.len() >= LIST_MAX {
                    self.s.lists_truncated = true;
                    return;
                }
                self.s.exchange.push(MgmtEvent {
                    time_ms,
                    subtype: name.to_string(),
                    from: f.addr2.clone(),
                    to: f.addr1.clone(),
                    bssid: f.bssid.clone(),
                    auth_algorithm: f.auth.map(|a| a.0),
                    auth_seq: f.auth.map(|a| a.1),
                    status_code: f.auth.map(|a| a.2).or(f.assoc_status),
                    reason_code: f.reason,
                });
            }
            _ => {}
        }
    }

    /// The summary.
    pub fn finish(mut self) -> AirSummary {
        self.s.subtypes = self
            .counts
            .into_iter()
            .map(|(k, count)| SubtypeCount {
                subtype: k.to_string(),
                count,
            })
            .collect();
        self.s
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A radiotap header as mac80211 writes it: present flags|rate|channel|signal plus an
    /// extended present word, flags `flags`.
    pub(crate) fn rt(flags: u8, freq: u16, signal: i8) -> Vec<u8> {
        // present word 1: TSFT? no. bits 1,2,3,5 and 31 (ext); word 2: empty.
        let present: u32 = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 31);
        let mut h = vec![0u8, 0, 0, 0];
        h.extend_from_slice(&present.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        // at 12: flags, rate; channel aligned to 2 at 14; signal at 18
        h.push(flags);
        h.push(2);
        h.extend_from_slice(&freq.to_le_bytes());
        h.extend_from_slice(&0x00a0u16.to_le_bytes());
        h.push(signal as u8);
        let len = h.len() as u16;
        h[2..4].copy_from_slice(&len.to_le_bytes());
        h
    }

    pub(crate) fn mgmt(subtype: u8, a1: [u8; 6], a2: [u8; 6], a3: [u8; 6], body: &[u8]) -> Vec<u8> {
        let mut f = vec![subtype << 4, 0, 0, 0];
        f.extend_from_slice(&a1);
        f.extend_from_slice(&a2);
        f.extend_from_slice(&a3);
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(body);
        f
    }

    pub(crate) fn beacon(bssid: [u8; 6], ssid: &[u8]) -> Vec<u8> {
        let mut body = vec![0u8; 12];
        body.push(0);
        body.push(ssid.len() as u8);
        body.extend_from_slice(ssid);
        body.extend_from_slice(&[1, 1, 0x82]);
        mgmt(8, [0xff; 6], bssid, bssid, &body)
    }

    const AP: [u8; 6] = [2, 0, 0, 0, 1, 0];
    const STA: [u8; 6] = [2, 0, 0, 0, 0, 0];

    #[test]
    fn radiotap_fields_and_a_beacon() {
        let mut frame = rt(0x10, 2412, -30);
        assert_eq!(frame.len(), 19);
        frame.extend(beacon(AP, b"lab-\x07open"));
        frame.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]); // FCS
        let f = decode(&frame);
        assert_eq!(f.rt.freq_mhz, Some(2412));
        assert_eq!(f.rt.signal_dbm, Some(-30));
        assert!(f.rt.fcs);
        assert_eq!(f.ftype, Some(0));
        assert_eq!(f.subtype, 8);
        assert_eq!(f.bssid.as_deref(), Some("02:00:00:00:01:00"));
        assert_eq!(f.ssid.as_deref(), Some("lab-open"));
    }

    #[test]
    fn an_exchange_is_summarized() {
        let mut s = AirSummarizer::default();
        let r = rt(0, 2437, -40);
        let with = |mut f: Vec<u8>| {
            let mut v = r.clone();
            v.append(&mut f);
            v
        };
        for _ in 0..3 {
            s.add(1, &decode(&with(beacon(AP, b"lab-wpa2"))));
        }
        let mut probe = vec![0, 0];
        probe.extend_from_slice(&[1, 1, 0x82]);
        s.add(
            2,
            &decode(&with(mgmt(4, [0xff; 6], STA, [0xff; 6], &probe))),
        );
        s.add(
            3,
            &decode(&with(mgmt(11, AP, STA, AP, &[0, 0, 1, 0, 0, 0]))),
        );
        s.add(
            4,
            &decode(&with(mgmt(11, STA, AP, AP, &[0, 0, 2, 0, 0, 0]))),
        );
        s.add(
            5,
            &decode(&with(mgmt(1, STA, AP, AP, &[0x11, 0, 0, 0, 1, 0]))),
        );
        s.add(6, &decode(&with(mgmt(12, STA, AP, AP, &[3, 0]))));
        // EAPOL in a QoS data frame
        let mut data = vec![0x88, 0x02, 0, 0];
        data.extend_from_slice(&STA);
        data.extend_from_slice(&AP);
        data.extend_from_slice(&AP);
        data.extend_from_slice(&[0, 0, 0, 0]);
        data.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x88, 0x8e, 2, 3]);
        s.add(7, &decode(&with(data)));
        // an ack (control, 10 bytes)
        let mut ack = vec![0xd4, 0, 0, 0];
        ack.extend_from_slice(&STA);
        s.add(8, &decode(&with(ack)));
        let a = s.finish();
        let count = |n: &str| a.subtypes.iter().find(|c| c.subtype == n).map(|c| c.count);
        assert_eq!(count("beacon"), Some(3));
        assert_eq!(count("probe_req"), Some(1));
        assert_eq!(count("auth"), Some(2));
        assert_eq!(count("assoc_resp"), Some(1));
        assert_eq!(count("deauth"), Some(1));
        assert_eq!(count("data"), Some(1));
        assert_eq!(count("ack"), Some(1));
        assert_eq!(a.eapol_frames, 1);
        assert_eq!(a.bss_seen.len(), 1);
        assert_eq!(a.bss_seen[0].ssid, "lab-wpa2");
        assert_eq!(a.bss_seen[0].freq_mhz, Some(2437));
        assert_eq!(a.probed_ssids, vec![String::new()]);
        assert_eq!(a.exchange.len(), 4);
        assert_eq!(a.exchange[1].auth_seq, Some(2));
        assert_eq!(a.exchange[1].from.as_deref(), Some("02:00:00:00:01:00"));
        assert_eq!(a.exchange[2].status_code, Some(0));
        assert_eq!(a.exchange[3].reason_code, Some(3));
    }

    #[test]
    fn truncations_and_garbage_never_panic() {
        let mut full = rt(0x10, 2412, -30);
        full.extend(beacon(AP, b"lab"));
        full.extend_from_slice(&[0; 4]);
        for n in 0..full.len() {
            let _ = decode(&full[..n]);
        }
        // a header longer than the frame, a bad version, an endless ext chain
        assert_eq!(decode(&[0, 0, 0xff, 0xff, 0, 0, 0, 0]), Frame::default());
        assert_eq!(decode(&[1, 0, 8, 0, 0, 0, 0, 0]), Frame::default());
        assert_eq!(
            decode(&[0, 0, 12, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Frame::default()
        );
        // deterministic pseudo-random garbage after a valid radiotap header
        let mut x = 0x1234_5678u32;
        let mut s = AirSummarizer::default();
        for len in 0..400 {
            let mut f = rt(0, 2412, -50);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                f.push(x as u8);
            }
            s.add(0, &decode(&f));
        }
        let a = s.finish();
        assert!(a.bss_seen.len() <= LIST_MAX && a.exchange.len() <= LIST_MAX);
        // an element running past the end
        let mut f = rt(0, 2412, -50);
        let mut body = vec![0u8; 12];
        body.extend_from_slice(&[0, 200, b'x']);
        f.extend(mgmt(8, [0xff; 6], AP, AP, &body));
        assert_eq!(decode(&f).ssid, None);
    }

    #[test]
    fn lists_are_bounded() {
        let mut s = AirSummarizer::default();
        for i in 0..100u8 {
            let mut f = rt(0, 2412, -50);
            f.extend(beacon([2, 0, 0, 0, i, 0], b"x"));
            s.add(0, &decode(&f));
        }
        let a = s.finish();
        assert_eq!(a.bss_seen.len(), LIST_MAX);
        assert!(a.lists_truncated);
    }
}
