//! What a BSS offers besides its security: the PHY generation (HT/VHT/HE/EHT) and channel
//! width, BSS load, 802.11k/v/r support, country, WPS and Hotspot 2.0 — parsed from the same
//! information elements as [`super::modes`] (the `ie=` hex of a `BSS` reply). Everything here
//! comes from the air, so from whoever runs the AP: pure and total, any byte string gives an
//! answer, strings are bounded and cleaned of control characters.

use schemars::JsonSchema;
use serde::Serialize;

use super::modes::elements;

/// The newest 802.11 generation a BSS advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum Phy {
    /// 802.11be (EHT, Wi-Fi 7).
    #[serde(rename = "802.11be")]
    Be,
    /// 802.11ax (HE, Wi-Fi 6/6E).
    #[serde(rename = "802.11ax")]
    Ax,
    /// 802.11ac (VHT, Wi-Fi 5).
    #[serde(rename = "802.11ac")]
    Ac,
    /// 802.11n (HT, Wi-Fi 4).
    #[serde(rename = "802.11n")]
    N,
    /// 802.11a/g (OFDM rates, no HT).
    #[serde(rename = "802.11a/g")]
    Ag,
    /// 802.11b (DSSS rates only).
    #[serde(rename = "802.11b")]
    B,
}

/// The BSS Load element: how busy the AP says it is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, JsonSchema)]
pub struct BssLoad {
    /// Associated stations.
    pub station_count: u16,
    /// Share of time the AP sensed the channel busy, in percent (0–100).
    pub channel_utilization_pct: f64,
    /// Remaining admission capacity, in units of 32 µs per second.
    pub admission_capacity: Option<u16>,
}

/// Fast BSS transition (802.11r) as the Mobility Domain element describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Ft {
    /// Mobility domain identifier, 4 hex digits as hostapd's `mobility_domain` writes it.
    pub mobility_domain: String,
    /// FT over the distribution system supported (otherwise over the air only).
    pub over_ds: bool,
}

/// Everything but security that one BSS advertises.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Detail {
    /// The newest generation advertised; `None` without any rate or capability element.
    pub phy: Option<Phy>,
    /// Channel width in MHz (20, 40, 80, 160; 8080 for 80+80) from the operation elements.
    pub width_mhz: u16,
    /// Where a 40 MHz channel's secondary 20 MHz lies: `above` or `below` the primary.
    pub secondary_channel: Option<String>,
    /// Spatial streams of the HT MCS set (1–4), if the AP has HT capabilities.
    pub ht_streams: Option<u8>,
    /// Highest legacy rate in Mbit/s (supported + extended supported rates).
    pub max_legacy_rate_mbps: Option<f64>,
    /// The BSS Load element, if present.
    pub bss_load: Option<BssLoad>,
    /// 802.11k radio measurement (RM Enabled Capabilities element present).
    pub rrm_11k: bool,
    /// 802.11k neighbor reports offered.
    pub neighbor_report: bool,
    /// 802.11v BSS transition management (extended capability bit 19).
    pub bss_transition_11v: bool,
    /// 802.11r fast transition (Mobility Domain element), if offered.
    pub ft_11r: Option<Ft>,
    /// Interworking (802.11u, extended capability bit 31).
    pub interworking: bool,
    /// Hotspot 2.0 / Passpoint indication element present.
    pub hotspot20: bool,
    /// The Hotspot 2.0 release the AP names in its indication element (1, 2, 3…).
    pub hotspot20_release: Option<u8>,
    /// The Interworking element's access network type (`private`, `private_guest`,
    /// `chargeable_public`, `free_public`, `personal_device`, `emergency_only`, `test`,
    /// `wildcard`, `reserved-N`).
    pub access_network_type: Option<String>,
    /// The Interworking element says the network reaches the internet.
    pub internet: Option<bool>,
    /// Country code of the Country element (two letters, e.g. `US`).
    pub country: Option<String>,
    /// Wi-Fi Protected Setup: `configured` or `unconfigured`, if advertised.
    pub wps: Option<String>,
    /// The WPS device name, cleaned (control characters dropped, at most 32 bytes).
    pub wps_device_name: Option<String>,
}

const RATES: u8 = 1;
const COUNTRY: u8 = 7;
const BSS_LOAD: u8 = 11;
const HT_CAP: u8 = 45;
const MOBILITY_DOMAIN: u8 = 54;
const EXT_RATES: u8 = 50;
const HT_OP: u8 = 61;
const RM_CAPS: u8 = 70;
const EXT_CAPS: u8 = 127;
const INTERWORKING: u8 = 107;
const VHT_CAP: u8 = 191;
const VHT_OP: u8 = 192;
const VENDOR: u8 = 221;
const EXTENSION: u8 = 255;
const EXT_HE_CAP: u8 = 35;
const EXT_HE_OP: u8 = 36;
const EXT_EHT_OP: u8 = 106;
const EXT_EHT_CAP: u8 = 108;

/// Printable text of at most `max` bytes: control characters dropped, invalid UTF-8 replaced.
fn clean(raw: &[u8], max: usize) -> String {
    let raw = &raw[..raw.len().min(max)];
    String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

/// Width from a VHT operation information triple (width, CCFS0, CCFS1); `None` = 20/40 (look at HT).
fn vht_width(info: &[u8]) -> Option<u16> {
    let (&w, &c0, &c1) = (info.first()?, info.get(1)?, info.get(2)?);
    match w {
        1 if c1 == 0 => Some(80),
        1 if c1.abs_diff(c0) == 8 => Some(160),
        1 => Some(8080),
        2 => Some(160), // deprecated encoding
        3 => Some(8080),
        _ => None,
    }
}

/// WPS attributes (type u16 BE, length u16 BE, value): the state and the device name.
fn wps(body: &[u8]) -> (Option<String>, Option<String>) {
    let (mut state, mut name) = (None, None);
    let mut rest = body;
    while rest.len() >= 4 {
        let ty = u16::from_be_bytes([rest[0], rest[1]]);
        let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        let Some(v) = rest.get(4..4 + len) else { break };
        match (ty, v) {
            (0x1044, [1]) => state = Some("unconfigured".to_string()),
            (0x1044, [2]) => state = Some("configured".to_string()),
            (0x1011, _) => name = Some(clean(v, 32)).filter(|n| !n.is_empty()),
            _ => {}
        }
        rest = &rest[4 + len..];
    }
    (state, name)
}

impl Detail {
    /// Parse the raw IEs of one BSS.
    pub fn from_ies(ies: &[u8]) -> Detail {
        let mut d = Detail {
            phy: None,
            width_mhz: 20,
            secondary_channel: None,
            ht_streams: None,
            max_legacy_rate_mbps: None,
            bss_load: None,
            rrm_11k: false,
            neighbor_report: false,
            bss_transition_11v: false,
            ft_11r: None,
            interworking: false,
            hotspot20: false,
            hotspot20_release: None,
            access_network_type: None,
            internet: None,
            country: None,
            wps: None,
            wps_device_name: None,
        };
        let (mut ht, mut vht, mut he, mut eht, mut ofdm, mut rates) =
            (false, false, false, false, false, false);
        let (mut ht_width, mut vht_w, mut he_w) = (None, None, None);
        let mut max_rate = 0u8;
        for (id, body) in elements(ies) {
            match id {
                RATES | EXT_RATES => {
                    for &r in body {
                        let r = r & 0x7f; // the top bit marks a basic rate
                        rates = true;
                        max_rate = max_rate.max(r);
                        // 6, 9, 12, 18, 24, 36, 48, 54 Mbit/s are OFDM (a/g); 1, 2, 5.5, 11 DSSS.
                        if ![2, 4, 11, 22].contains(&r) && r != 0 {
                            ofdm = true;
                        }
                    }
                }
                COUNTRY if body.len() >= 2 => {
                    let cc = &body[..2];
                    if cc.iter().all(u8::is_ascii_alphabetic) {
                        d.country = Some(String::from_utf8_lossy(cc).to_ascii_uppercase());
                    }
                }
                BSS_LOAD if body.len() >= 3 => {
                    d.bss_load = Some(BssLoad {
                        station_count: u16::from_le_bytes([body[0], body[1]]),
                        channel_utilization_pct: (f64::from(body[2]) * 1000.0 / 255.0).round()
                            / 10.0,
                        admission_capacity: body
                            .get(3..5)
                            .map(|b| u16::from_le_bytes([b[0], b[1]])),
                    })
                }
                HT_CAP => {
                    ht = true;
                    // Supported MCS set from byte 3: one byte of rx MCS bits per stream.
                    if let Some(mcs) = body.get(3..7) {
                        let n = mcs.iter().take_while(|&&b| b != 0).count() as u8;
                        d.ht_streams = (n > 0).then_some(n);
                    }
                }
                HT_OP if body.len() >= 2 => {
                    ht = true;
                    let (offset, any_width) = (body[1] & 0x03, body[1] & 0x04 != 0);
                    d.secondary_channel = match offset {
                        1 => Some("above".to_string()),
                        3 => Some("below".to_string()),
                        _ => None,
                    };
                    ht_width = Some(if d.secondary_channel.is_some() && any_width {
                        40
                    } else {
                        20
                    });
                }
                MOBILITY_DOMAIN if body.len() >= 3 => {
                    d.ft_11r = Some(Ft {
                        mobility_domain: format!("{:02x}{:02x}", body[0], body[1]),
                        over_ds: body[2] & 0x01 != 0,
                    })
                }
                RM_CAPS => {
                    d.rrm_11k = true;
                    d.neighbor_report = body.first().is_some_and(|b| b & 0x02 != 0);
                }
                EXT_CAPS => {
                    d.bss_transition_11v = body.get(2).is_some_and(|b| b & 0x08 != 0);
                    d.interworking = body.get(3).is_some_and(|b| b & 0x80 != 0);
                }
                INTERWORKING if !body.is_empty() => {
                    d.access_network_type = Some(match body[0] & 0x0f {
                        0 => "private".into(),
                        1 => "private_guest".into(),
                        2 => "chargeable_public".into(),
                        3 => "free_public".into(),
                        4 => "personal_device".into(),
                        5 => "emergency_only".into(),
                        14 => "test".into(),
                        15 => "wildcard".into(),
                        n => format!("reserved-{n}"),
                    });
                    d.internet = Some(body[0] & 0x10 != 0);
                }
                VHT_CAP => vht = true,
                VHT_OP => {
                    vht = true;
                    vht_w = vht_width(body);
                }
                VENDOR if body.len() >= 4 => match (&body[..3], body[3]) {
                    ([0x00, 0x50, 0xf2], 4) => {
                        let (state, name) = wps(&body[4..]);
                        d.wps = state.or(Some("advertised".to_string()));
                        d.wps_device_name = name;
                    }
                    ([0x50, 0x6f, 0x9a], 0x10) => {
                        d.hotspot20 = true;
                        // Hotspot configuration: the release number (0 = release 1) in bits 4-7.
                        d.hotspot20_release = body.get(4).map(|b| (b >> 4) + 1);
                    }
                    _ => {}
                },
                EXTENSION if !body.is_empty() => match body[0] {
                    EXT_HE_CAP => he = true,
                    EXT_HE_OP => {
                        he = true;
                        he_w = he_op_width(&body[1..]);
                    }
                    EXT_EHT_CAP | EXT_EHT_OP => eht = true,
                    _ => {}
                },
                _ => {}
            }
        }
        d.phy = if eht {
            Some(Phy::Be)
        } else if he {
            Some(Phy::Ax)
        } else if vht {
            Some(Phy::Ac)
        } else if ht {
            Some(Phy::N)
        } else if ofdm {
            Some(Phy::Ag)
        } else if rates {
            Some(Phy::B)
        } else {
            None
        };
        d.width_mhz = he_w.or(vht_w).or(ht_width).unwrap_or(20);
        d.max_legacy_rate_mbps = rates.then(|| f64::from(max_rate) / 2.0);
        d
    }
}

/// Width from an HE Operation element (after its extension id): its VHT operation information
/// (5 GHz) or its 6 GHz operation information, where present.
fn he_op_width(b: &[u8]) -> Option<u16> {
    // HE Operation Parameters (3 bytes), BSS Color (1), Basic HE-MCS and NSS set (2), then the
    // optional parts in order: VHT Operation Information (3, bit 14), Max Co-Hosted BSSID
    // Indicator (1, bit 15), 6 GHz Operation Information (5, bit 17).
    let params = u32::from(*b.first()?) | u32::from(*b.get(1)?) << 8 | u32::from(*b.get(2)?) << 16;
    let mut at = 6;
    let mut width = None;
    if params & (1 << 14) != 0 {
        width = vht_width(b.get(at..at + 3)?);
        at += 3;
    }
    if params & (1 << 15) != 0 {
        at += 1;
    }
    if params & (1 << 17) != 0 {
        // primary channel (1), control (1): bits 0-1 width 0 = 20, 1 = 40, 2 = 80, 3 = 160/80+80
        let control = *b.get(at + 1)?;
        width = Some(match control & 0x03 {
            0 => 20,
            1 => 40,
            2 => 80,
            _ => 160,
        });
    }
    width
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ie(id: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![id, body.len() as u8];
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn legacy_b_and_g() {
        let b = Detail::from_ies(&ie(RATES, &[0x82, 0x84, 0x8b, 0x96]));
        assert_eq!(b.phy, Some(Phy::B));
        assert_eq!(b.max_legacy_rate_mbps, Some(11.0));
        let g = Detail::from_ies(
            &[
                ie(RATES, &[0x82, 0x84, 0x8b, 0x96, 0x0c, 0x12, 0x18, 0x24]),
                ie(EXT_RATES, &[0x30, 0x48, 0x60, 0x6c]),
            ]
            .concat(),
        );
        assert_eq!(g.phy, Some(Phy::Ag));
        assert_eq!(g.max_legacy_rate_mbps, Some(54.0));
        assert_eq!(g.width_mhz, 20);
        assert_eq!(Detail::from_ies(&[]).phy, None);
    }

    #[test]
    fn ht40_above_two_streams() {
        let mut cap = vec![0u8; 26];
        cap[3] = 0xff;
        cap[4] = 0xff;
        let mut op = vec![0u8; 22];
        op[0] = 6;
        op[1] = 0x05; // secondary above, any width
        let d = Detail::from_ies(&[ie(HT_CAP, &cap), ie(HT_OP, &op)].concat());
        assert_eq!(d.phy, Some(Phy::N));
        assert_eq!(d.width_mhz, 40);
        assert_eq!(d.secondary_channel.as_deref(), Some("above"));
        assert_eq!(d.ht_streams, Some(2));
        // A secondary offset without "any width" is still a 20 MHz BSS.
        op[1] = 0x03;
        let d = Detail::from_ies(&ie(HT_OP, &op));
        assert_eq!(
            (d.width_mhz, d.secondary_channel.as_deref()),
            (20, Some("below"))
        );
    }

    #[test]
    fn vht_80_160_8080() {
        for (info, want) in [([1, 42, 0], 80), ([1, 42, 50], 160), ([1, 42, 155], 8080)] {
            let d = Detail::from_ies(&[ie(VHT_CAP, &[0; 12]), ie(VHT_OP, &info)].concat());
            assert_eq!((d.phy, d.width_mhz), (Some(Phy::Ac), want), "{info:?}");
        }
        let d = Detail::from_ies(&ie(VHT_OP, &[0, 36, 0]));
        assert_eq!(d.width_mhz, 20);
    }

    #[test]
    fn he_6ghz_and_eht() {
        // params: bit 17 (6 GHz info present); color; basic mcs; 6 GHz info: primary 37, control 2
        let op = [
            EXT_HE_OP, 0x00, 0x00, 0x02, 0x01, 0xfc, 0xff, 37, 0x02, 39, 0, 0,
        ];
        let d = Detail::from_ies(&ie(EXTENSION, &op));
        assert_eq!((d.phy, d.width_mhz), (Some(Phy::Ax), 80));
        let d =
            Detail::from_ies(&[ie(EXTENSION, &op), ie(EXTENSION, &[EXT_EHT_CAP, 0, 0])].concat());
        assert_eq!(d.phy, Some(Phy::Be));
        // HE operation with its VHT information (bit 14): 160 MHz.
        let op = [EXT_HE_OP, 0x00, 0x40, 0x00, 0x01, 0xfc, 0xff, 1, 50, 42];
        assert_eq!(Detail::from_ies(&ie(EXTENSION, &op)).width_mhz, 160);
    }

    #[test]
    fn load_kvr_country_wps_hs20() {
        let mut wps_body = vec![0x00, 0x50, 0xf2, 4];
        wps_body.extend_from_slice(&[0x10, 0x44, 0, 1, 2]);
        wps_body.extend_from_slice(&[0x10, 0x11, 0, 7]);
        wps_body.extend_from_slice(b"Lab\x07 AP\x1b");
        let ies = [
            ie(BSS_LOAD, &[3, 0, 128, 0x10, 0x00]),
            ie(RM_CAPS, &[0x73, 0, 0, 0, 0]),
            ie(EXT_CAPS, &[0, 0, 0x08, 0x80]),
            ie(MOBILITY_DOMAIN, &[0xa1, 0xb2, 0x00]),
            ie(COUNTRY, b"de\x20\x01\x0d\x14"),
            ie(VENDOR, &wps_body),
            ie(VENDOR, &[0x50, 0x6f, 0x9a, 0x10, 0x20]),
            ie(INTERWORKING, &[0x12, 2, 8]),
        ]
        .concat();
        let d = Detail::from_ies(&ies);
        assert_eq!(d.hotspot20_release, Some(3));
        assert_eq!(d.access_network_type.as_deref(), Some("chargeable_public"));
        assert_eq!(d.internet, Some(true));
        let bare = Detail::from_ies(
            &[ie(VENDOR, &[0x50, 0x6f, 0x9a, 0x10]), ie(INTERWORKING, &[])].concat(),
        );
        assert!(bare.hotspot20 && bare.hotspot20_release.is_none() && bare.internet.is_none());
        let load = d.bss_load.unwrap();
        assert_eq!(load.station_count, 3);
        assert_eq!(load.channel_utilization_pct, 50.2);
        assert_eq!(load.admission_capacity, Some(16));
        assert!(d.rrm_11k && d.neighbor_report && d.bss_transition_11v && d.interworking);
        assert_eq!(
            d.ft_11r,
            Some(Ft {
                mobility_domain: "a1b2".into(),
                over_ds: false
            })
        );
        assert_eq!(d.country.as_deref(), Some("DE"));
        assert_eq!(d.wps.as_deref(), Some("configured"));
        assert_eq!(d.wps_device_name.as_deref(), Some("Lab AP"));
        assert!(d.hotspot20);
    }

    #[test]
    fn hostile_and_truncated_elements_give_an_answer() {
        // Every truncation of a rich element list, and garbage, parse without panicking.
        let mut wps_body = vec![0x00, 0x50, 0xf2, 4, 0x10, 0x11, 0xff, 0xff, b'x'];
        wps_body.extend_from_slice(&[0xff; 40]);
        let ies = [
            ie(HT_CAP, &[0; 3]),
            ie(HT_OP, &[6]),
            ie(VHT_OP, &[1]),
            ie(EXTENSION, &[EXT_HE_OP, 0xff, 0xff, 0xff]),
            ie(COUNTRY, &[0xff, 0xfe, 0]),
            ie(BSS_LOAD, &[1, 2]),
            ie(MOBILITY_DOMAIN, &[1]),
            ie(VENDOR, &wps_body),
            ie(EXTENSION, &[]),
        ]
        .concat();
        for n in 0..=ies.len() {
            let d = Detail::from_ies(&ies[..n]);
            assert!(d.width_mhz >= 20);
        }
        let d = Detail::from_ies(&ies);
        assert_eq!(d.country, None, "non-letter country codes are dropped");
        assert_eq!(
            d.wps_device_name, None,
            "an attribute longer than the element is ignored"
        );
        assert_eq!(d.bss_load, None);
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let _ = Detail::from_ies(&noise);
        // A long device name is cut to 32 bytes.
        let mut long = vec![0x00, 0x50, 0xf2, 4, 0x10, 0x11, 0, 100];
        long.extend_from_slice(&[b'a'; 100]);
        let d = Detail::from_ies(&ie(VENDOR, &long));
        assert_eq!(d.wps_device_name.map(|n| n.len()), Some(32));
    }
}
