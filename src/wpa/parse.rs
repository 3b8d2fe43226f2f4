//! Pure parsers for control-interface replies. None of them panics on any input.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::escape::printf_decode;
use crate::validate::{Bssid, Ssid};

/// A reply that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// `key=value` lines, split at the first `=`; lines without `=` are ignored.
fn key_values(reply: &str) -> impl Iterator<Item = (&str, &str)> {
    reply.lines().filter_map(|line| line.split_once('='))
}

// ---------------------------------------------------------------------------------------------
// Frequencies
// ---------------------------------------------------------------------------------------------

/// A WiFi band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
pub enum Band {
    /// 2.4 GHz.
    #[serde(rename = "2.4GHz")]
    Ghz2_4,
    /// 4.9 GHz (public safety / Japan).
    #[serde(rename = "4.9GHz")]
    Ghz4_9,
    /// 5 GHz.
    #[serde(rename = "5GHz")]
    Ghz5,
    /// 6 GHz.
    #[serde(rename = "6GHz")]
    Ghz6,
    /// 60 GHz (DMG).
    #[serde(rename = "60GHz")]
    Ghz60,
}

/// The band of a centre frequency in MHz.
pub fn freq_to_band(freq: u32) -> Option<Band> {
    freq_to_band_channel(freq).map(|(band, _)| band)
}

/// The channel number of a centre frequency in MHz (2.4, 4.9, 5, 6 and 60 GHz).
pub fn freq_to_channel(freq: u32) -> Option<u32> {
    freq_to_band_channel(freq).map(|(_, channel)| channel)
}

fn freq_to_band_channel(freq: u32) -> Option<(Band, u32)> {
    match freq {
        2484 => Some((Band::Ghz2_4, 14)),
        2412..=2472 if (freq - 2407).is_multiple_of(5) => Some((Band::Ghz2_4, (freq - 2407) / 5)),
        4910..=4980 if freq.is_multiple_of(5) => Some((Band::Ghz4_9, (freq - 4000) / 5)),
        5000..=5925 if freq.is_multiple_of(5) => Some((Band::Ghz5, (freq - 5000) / 5)),
        5935 => Some((Band::Ghz6, 2)),
        5955..=7115 if (freq - 5950).is_multiple_of(5) => Some((Band::Ghz6, (freq - 5950) / 5)),
        58320..=70200 if (freq - 56160).is_multiple_of(2160) => {
            Some((Band::Ghz60, (freq - 56160) / 2160))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Security
// ---------------------------------------------------------------------------------------------

/// What a client needs to join a BSS, derived from its `flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
pub enum Security {
    /// No encryption.
    #[serde(rename = "open")]
    Open,
    /// Enhanced Open (OWE): encrypted, no password.
    #[serde(rename = "owe")]
    Owe,
    /// The open half of an OWE transition pair: legacy stations join it unencrypted, OWE
    /// stations (this agent, by default) go to its OWE companion BSS.
    #[serde(rename = "owe-transition")]
    OweTransition,
    /// WEP (obsolete).
    #[serde(rename = "wep")]
    Wep,
    /// WPA (v1) personal only.
    #[serde(rename = "wpa-psk")]
    WpaPsk,
    /// WPA2 personal.
    #[serde(rename = "wpa2-psk")]
    Wpa2Psk,
    /// WPA2/WPA3 personal transition mode: a passphrase works with either.
    #[serde(rename = "wpa2-psk/wpa3-sae")]
    Wpa2Wpa3,
    /// WPA3 personal (SAE) only.
    #[serde(rename = "wpa3-sae")]
    Wpa3Sae,
    /// WPA (v1) enterprise only.
    #[serde(rename = "wpa-eap")]
    WpaEap,
    /// WPA2 enterprise (802.1X).
    #[serde(rename = "wpa2-eap")]
    Wpa2Eap,
    /// WPA3 enterprise (EAP-SHA256 and the like; PMF).
    #[serde(rename = "wpa3-eap")]
    Wpa3Eap,
    /// WPA3 enterprise 192-bit mode (suite B: EAP-SUITE-B-192, GCMP-256, EAP-TLS on P-384)
    /// only.
    #[serde(rename = "wpa3-eap-192")]
    Wpa3Eap192,
    /// Something else (OSEN, DPP only, unparsable IE).
    #[serde(rename = "unknown")]
    Unknown,
}

impl Security {
    /// The serialized name (`wpa2-psk`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Open => "open",
            Security::Owe => "owe",
            Security::OweTransition => "owe-transition",
            Security::Wep => "wep",
            Security::WpaPsk => "wpa-psk",
            Security::Wpa2Psk => "wpa2-psk",
            Security::Wpa2Wpa3 => "wpa2-psk/wpa3-sae",
            Security::Wpa3Sae => "wpa3-sae",
            Security::WpaEap => "wpa-eap",
            Security::Wpa2Eap => "wpa2-eap",
            Security::Wpa3Eap => "wpa3-eap",
            Security::Wpa3Eap192 => "wpa3-eap-192",
            Security::Unknown => "unknown",
        }
    }

    /// Classify from BSS flags (the bracketed items without brackets, e.g. `WPA2-PSK+SAE-CCMP`).
    pub fn from_flags<S: AsRef<str>>(flags: &[S]) -> Security {
        let mut wpa1: Vec<&'static str> = Vec::new();
        let mut rsn: Vec<&'static str> = Vec::new();
        let mut any_wpa_ie = false;
        let mut wep = false;
        for flag in flags {
            let flag = flag.as_ref();
            if let Some(body) = flag
                .strip_prefix("WPA2-")
                .or_else(|| flag.strip_prefix("RSN-"))
            {
                any_wpa_ie = true;
                rsn.extend(akms(body));
            } else if let Some(body) = flag.strip_prefix("WPA-") {
                any_wpa_ie = true;
                wpa1.extend(akms(body));
            } else if flag == "WEP" {
                wep = true;
            }
        }
        let has = |set: &[&str], names: &[&str]| set.iter().any(|a| names.contains(a));
        const SAE: &[&str] = &["SAE", "FT/SAE", "SAE-EXT-KEY", "FT/SAE-EXT-KEY"];
        const PSK: &[&str] = &["PSK", "FT/PSK", "PSK-SHA256"];
        const EAP2: &[&str] = &["EAP", "FT/EAP"];
        const EAP3: &[&str] = &[
            "EAP-SHA256",
            "EAP-SHA384",
            "FT/EAP-SHA384",
            "EAP-SUITE-B",
            "EAP-SUITE-B-192",
        ];
        if has(&rsn, SAE) && has(&rsn, PSK) {
            Security::Wpa2Wpa3
        } else if has(&rsn, SAE) {
            Security::Wpa3Sae
        } else if has(&rsn, EAP2) {
            Security::Wpa2Eap
        } else if has(&rsn, &["EAP-SUITE-B-192"])
            && !has(
                &rsn,
                &["EAP-SHA256", "EAP-SHA384", "FT/EAP-SHA384", "EAP-SUITE-B"],
            )
        {
            Security::Wpa3Eap192
        } else if has(&rsn, EAP3) {
            Security::Wpa3Eap
        } else if has(&rsn, PSK) {
            Security::Wpa2Psk
        } else if has(&rsn, &["OWE"]) {
            Security::Owe
        } else if has(&wpa1, PSK) {
            Security::WpaPsk
        } else if has(&wpa1, EAP2) {
            Security::WpaEap
        } else if any_wpa_ie {
            Security::Unknown
        } else if wep {
            Security::Wep
        } else {
            Security::Open
        }
    }
}

/// The AKM names of one `PROTO-akm+akm-cipher[-preauth]` flag body.
fn akms(body: &str) -> Vec<&'static str> {
    // Longest names first so `PSK-SHA256` wins over `PSK`.
    const KNOWN: &[&str] = &[
        "FT/SAE-EXT-KEY",
        "EAP-SUITE-B-192",
        "FT-FILS-SHA256",
        "FT-FILS-SHA384",
        "FT/EAP-SHA384",
        "SAE-EXT-KEY",
        "EAP-SUITE-B",
        "FILS-SHA256",
        "FILS-SHA384",
        "EAP-SHA256",
        "EAP-SHA384",
        "PSK-SHA256",
        "FT/EAP",
        "FT/PSK",
        "FT/SAE",
        "None",
        "OSEN",
        "PASN",
        "EAP",
        "PSK",
        "SAE",
        "OWE",
        "DPP",
    ];
    body.split('+')
        .filter_map(|item| {
            KNOWN.iter().copied().find(|name| {
                item.strip_prefix(name)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
            })
        })
        .collect()
}

/// Split `[A][B-C][D]` into `A`, `B-C`, `D`. Text outside brackets is ignored.
fn split_flags(flags: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = flags;
    while let Some(start) = rest.find('[') {
        let after = &rest[start + 1..];
        match after.find(']') {
            Some(end) => {
                out.push(after[..end].to_owned());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// BSS
// ---------------------------------------------------------------------------------------------

/// One scan result, from a `BSS` reply.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Bss {
    /// wpa_supplicant's BSS table id (for `BSS NEXT-<id>`).
    pub id: Option<u32>,
    /// The AP's MAC address.
    pub bssid: Bssid,
    /// The SSID as text (invalid UTF-8 replaced by U+FFFD; empty for hidden networks).
    pub ssid: String,
    /// The exact SSID bytes as hex (use this to connect to a non-UTF-8 SSID).
    pub ssid_hex: String,
    /// The SSID is empty or all NUL bytes (a hidden network).
    pub hidden: bool,
    /// Centre frequency in MHz.
    pub freq_mhz: Option<u32>,
    /// Channel number derived from the frequency.
    pub channel: Option<u32>,
    /// Band derived from the frequency.
    pub band: Option<Band>,
    /// Signal level in dBm.
    pub signal_dbm: Option<i32>,
    /// Noise level in dBm, if the driver reports it.
    pub noise_dbm: Option<i32>,
    /// Signal-to-noise ratio in dB.
    pub snr_db: Option<i32>,
    /// wpa_supplicant's estimated throughput in kbit/s.
    pub est_throughput_kbps: Option<u32>,
    /// Seconds since the BSS was last seen.
    pub age_secs: Option<u32>,
    /// Security classification of `flags`.
    pub security: Security,
    /// Raw flags without brackets (`WPA2-PSK-CCMP`, `ESS`, `WPS`, …).
    pub flags: Vec<String>,
    /// The security modes exactly, from the BSS's information elements (AKMs, ciphers, PMF,
    /// SAE H2E/PK, transition modes); `None` when the elements could not be read.
    pub modes: Option<super::modes::Modes>,
    /// PHY generation and channel width, BSS load, 802.11k/v/r, country, WPS, Hotspot 2.0,
    /// from the same elements; `None` when the elements could not be read.
    pub detail: Option<super::detail::Detail>,
}

impl Bss {
    /// Parse a `BSS` reply (one entry). Fails on an empty reply or a missing/invalid `bssid`.
    pub fn parse(reply: &str) -> Result<Bss, ParseError> {
        let mut id = None;
        let mut bssid = None;
        let mut ssid = Vec::new();
        let mut freq = None;
        let mut level = None;
        let mut noise = None;
        let mut snr = None;
        let mut throughput = None;
        let mut age = None;
        let mut flags = Vec::new();
        let mut modes = None;
        let mut detail = None;
        for (key, value) in key_values(reply) {
            match key {
                "id" => id = value.parse().ok(),
                "bssid" => {
                    bssid = Some(Bssid::parse(value).map_err(|_| {
                        ParseError(format!("BSS reply has an invalid bssid {value:?}"))
                    })?)
                }
                "ssid" => ssid = printf_decode(value),
                "freq" => freq = value.parse().ok(),
                "level" => level = value.parse().ok(),
                "noise" => noise = value.parse().ok(),
                "snr" => snr = value.parse().ok(),
                "est_throughput" => throughput = value.parse().ok(),
                "age" => age = value.parse().ok(),
                "flags" => flags = split_flags(value),
                "ie" => {
                    let ies = super::modes::hex_prefix(value);
                    modes = Some(super::modes::Modes::from_ies(&ies));
                    detail = Some(super::detail::Detail::from_ies(&ies));
                }
                _ => {}
            }
        }
        let bssid = bssid.ok_or_else(|| ParseError("BSS reply has no bssid".into()))?;
        Ok(Bss {
            id,
            bssid,
            hidden: ssid.iter().all(|&b| b == 0),
            ssid: String::from_utf8_lossy(&ssid).into_owned(),
            ssid_hex: hex::encode(&ssid),
            freq_mhz: freq,
            channel: freq.and_then(freq_to_channel),
            band: freq.and_then(freq_to_band),
            signal_dbm: level,
            // wpa_supplicant reports 0 when the driver gives no noise value.
            noise_dbm: noise.filter(|&n| n != 0),
            snr_db: snr,
            est_throughput_kbps: throughput,
            age_secs: age,
            security: match &modes {
                Some(m) if m.transition == Some(super::modes::Transition::OweOpen) => {
                    Security::OweTransition
                }
                _ => Security::from_flags(&flags),
            },
            modes,
            detail,
            flags,
        })
    }

    /// The exact SSID bytes.
    pub fn ssid_bytes(&self) -> Vec<u8> {
        hex::decode(&self.ssid_hex).unwrap_or_default()
    }

    /// The SSID as a validated [`Ssid`], `None` for a hidden (empty) one.
    pub fn ssid(&self) -> Option<Ssid> {
        Ssid::from_bytes(&self.ssid_bytes()).ok()
    }
}

// ---------------------------------------------------------------------------------------------
// STATUS
// ---------------------------------------------------------------------------------------------

/// wpa_supplicant's connection state (`wpa_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WpaState {
    /// Not connected, not trying.
    Disconnected,
    /// The interface is down.
    InterfaceDisabled,
    /// No enabled network.
    Inactive,
    /// Scanning for a network.
    Scanning,
    /// Authenticating.
    Authenticating,
    /// Associating.
    Associating,
    /// Associated; key negotiation next.
    Associated,
    /// WPA 4-way handshake.
    #[serde(rename = "4WAY_HANDSHAKE")]
    FourWayHandshake,
    /// WPA group handshake.
    GroupHandshake,
    /// Connected and keys installed.
    Completed,
    /// A state this parser does not know.
    Unknown,
}

impl WpaState {
    /// Parse the `wpa_state` text.
    pub fn parse(text: &str) -> WpaState {
        match text {
            "DISCONNECTED" => WpaState::Disconnected,
            "INTERFACE_DISABLED" => WpaState::InterfaceDisabled,
            "INACTIVE" => WpaState::Inactive,
            "SCANNING" => WpaState::Scanning,
            "AUTHENTICATING" => WpaState::Authenticating,
            "ASSOCIATING" => WpaState::Associating,
            "ASSOCIATED" => WpaState::Associated,
            "4WAY_HANDSHAKE" => WpaState::FourWayHandshake,
            "GROUP_HANDSHAKE" => WpaState::GroupHandshake,
            "COMPLETED" => WpaState::Completed,
            _ => WpaState::Unknown,
        }
    }

    /// The numeric form used by `CTRL-EVENT-STATE-CHANGE` (`enum wpa_states`).
    pub fn from_number(number: u32) -> WpaState {
        match number {
            0 => WpaState::Disconnected,
            1 => WpaState::InterfaceDisabled,
            2 => WpaState::Inactive,
            3 => WpaState::Scanning,
            4 => WpaState::Authenticating,
            5 => WpaState::Associating,
            6 => WpaState::Associated,
            7 => WpaState::FourWayHandshake,
            8 => WpaState::GroupHandshake,
            9 => WpaState::Completed,
            _ => WpaState::Unknown,
        }
    }
}

/// The `STATUS` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Status {
    /// Connection state.
    pub wpa_state: WpaState,
    /// SSID of the current network as text (lossy).
    pub ssid: Option<String>,
    /// SSID bytes as hex.
    pub ssid_hex: Option<String>,
    /// The AP we are associated with.
    pub bssid: Option<Bssid>,
    /// Operating frequency in MHz.
    pub freq_mhz: Option<u32>,
    /// Channel derived from the frequency.
    pub channel: Option<u32>,
    /// Configured network id in use.
    pub network_id: Option<u32>,
    /// Key management in use (`WPA2-PSK`, `SAE`, `NONE`, `IEEE 802.1X (no WPA)`, …).
    pub key_mgmt: Option<String>,
    /// Pairwise cipher.
    pub pairwise_cipher: Option<String>,
    /// Group cipher.
    pub group_cipher: Option<String>,
    /// Mode (`station`).
    pub mode: Option<String>,
    /// IPv4 address wpa_supplicant saw on the interface (from the kernel, not from us).
    pub ip_address: Option<String>,
    /// The interface's own MAC address.
    pub address: Option<Bssid>,
    /// EAP state machine state, when 802.1X is in use.
    pub eap_state: Option<String>,
    /// `WiFi 4/5/6/7` generation, when reported.
    pub wifi_generation: Option<u8>,
    /// Every other key, verbatim.
    pub other: BTreeMap<String, String>,
}

impl Status {
    /// Parse a `STATUS` reply. Never fails: unknown or malformed values end up as `None` or in
    /// `other`.
    pub fn parse(reply: &str) -> Status {
        let mut status = Status {
            wpa_state: WpaState::Unknown,
            ssid: None,
            ssid_hex: None,
            bssid: None,
            freq_mhz: None,
            channel: None,
            network_id: None,
            key_mgmt: None,
            pairwise_cipher: None,
            group_cipher: None,
            mode: None,
            ip_address: None,
            address: None,
            eap_state: None,
            wifi_generation: None,
            other: BTreeMap::new(),
        };
        for (key, value) in key_values(reply) {
            match key {
                "wpa_state" => status.wpa_state = WpaState::parse(value),
                "ssid" => {
                    let bytes = printf_decode(value);
                    status.ssid = Some(String::from_utf8_lossy(&bytes).into_owned());
                    status.ssid_hex = Some(hex::encode(&bytes));
                }
                "bssid" => status.bssid = Bssid::parse(value).ok(),
                "freq" => {
                    status.freq_mhz = value.parse().ok().filter(|&f| f != 0);
                    status.channel = status.freq_mhz.and_then(freq_to_channel);
                }
                "id" => status.network_id = value.parse().ok(),
                "key_mgmt" => status.key_mgmt = Some(value.to_owned()),
                "pairwise_cipher" => status.pairwise_cipher = Some(value.to_owned()),
                "group_cipher" => status.group_cipher = Some(value.to_owned()),
                "mode" => status.mode = Some(value.to_owned()),
                "ip_address" => status.ip_address = Some(value.to_owned()),
                "address" => status.address = Bssid::parse(value).ok(),
                "EAP state" => status.eap_state = Some(value.to_owned()),
                "wifi_generation" => status.wifi_generation = value.parse().ok(),
                _ => {
                    status.other.insert(key.to_owned(), value.to_owned());
                }
            }
        }
        status
    }
}

// ---------------------------------------------------------------------------------------------
// LIST_NETWORKS
// ---------------------------------------------------------------------------------------------

/// One configured network, from `LIST_NETWORKS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ConfiguredNetwork {
    /// Network id.
    pub id: u32,
    /// SSID as text (lossy).
    pub ssid: String,
    /// SSID bytes as hex.
    pub ssid_hex: String,
    /// BSSID lock, if any.
    pub bssid: Option<Bssid>,
    /// This is the network in use.
    pub current: bool,
    /// Disabled (not used for automatic selection).
    pub disabled: bool,
    /// Temporarily disabled after failures (e.g. a wrong key).
    pub temp_disabled: bool,
    /// Raw flags without brackets.
    pub flags: Vec<String>,
}

impl ConfiguredNetwork {
    /// Parse a `LIST_NETWORKS` reply (header line, then `id\tssid\tbssid\tflags` lines).
    pub fn parse_list(reply: &str) -> Result<Vec<ConfiguredNetwork>, ParseError> {
        let mut lines = reply.lines();
        match lines.next() {
            Some(header) if header.starts_with("network id") => {}
            _ => {
                return Err(ParseError(format!(
                    "LIST_NETWORKS reply has no header: {:?}",
                    reply.chars().take(80).collect::<String>()
                )));
            }
        }
        let mut out = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let mut columns = line.split('\t');
            let id = columns
                .next()
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| ParseError(format!("LIST_NETWORKS line without id: {line:?}")))?;
            let ssid = printf_decode(columns.next().unwrap_or_default());
            let bssid = match columns.next().unwrap_or("any") {
                "any" | "" => None,
                text => Some(Bssid::parse(text).map_err(|_| {
                    ParseError(format!("LIST_NETWORKS line with invalid bssid: {line:?}"))
                })?),
            };
            let flags = split_flags(columns.next().unwrap_or_default());
            out.push(ConfiguredNetwork {
                id,
                ssid: String::from_utf8_lossy(&ssid).into_owned(),
                ssid_hex: hex::encode(&ssid),
                bssid,
                current: flags.iter().any(|f| f == "CURRENT"),
                disabled: flags.iter().any(|f| f == "DISABLED"),
                temp_disabled: flags.iter().any(|f| f == "TEMP-DISABLED"),
                flags,
            });
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// SIGNAL_POLL
// ---------------------------------------------------------------------------------------------

/// The `SIGNAL_POLL` reply (only while associated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SignalPoll {
    /// Signal strength in dBm.
    pub rssi_dbm: Option<i32>,
    /// Averaged signal in dBm.
    pub avg_rssi_dbm: Option<i32>,
    /// Averaged beacon signal in dBm.
    pub avg_beacon_rssi_dbm: Option<i32>,
    /// Transmit bit rate in Mbit/s.
    pub linkspeed_mbps: Option<u32>,
    /// Noise in dBm (`None` when the driver does not report it).
    pub noise_dbm: Option<i32>,
    /// Operating frequency in MHz.
    pub frequency_mhz: Option<u32>,
    /// Channel width (`20 MHz`, `80 MHz`, …).
    pub width: Option<String>,
    /// Centre frequency 1 in MHz.
    pub center_frq1_mhz: Option<u32>,
    /// Centre frequency 2 in MHz.
    pub center_frq2_mhz: Option<u32>,
}

impl SignalPoll {
    /// Parse a `SIGNAL_POLL` reply. `FAIL` or a reply without `RSSI` is an error.
    pub fn parse(reply: &str) -> Result<SignalPoll, ParseError> {
        let mut poll = SignalPoll {
            rssi_dbm: None,
            avg_rssi_dbm: None,
            avg_beacon_rssi_dbm: None,
            linkspeed_mbps: None,
            noise_dbm: None,
            frequency_mhz: None,
            width: None,
            center_frq1_mhz: None,
            center_frq2_mhz: None,
        };
        let mut seen = false;
        for (key, value) in key_values(reply) {
            seen = true;
            match key {
                "RSSI" => poll.rssi_dbm = value.parse().ok(),
                "AVG_RSSI" => poll.avg_rssi_dbm = value.parse().ok(),
                "AVG_BEACON_RSSI" => poll.avg_beacon_rssi_dbm = value.parse().ok(),
                "LINKSPEED" => poll.linkspeed_mbps = value.parse().ok(),
                // 9999 means "unknown" in wpa_supplicant.
                "NOISE" => poll.noise_dbm = value.parse().ok().filter(|&n: &i32| n != 9999),
                "FREQUENCY" => poll.frequency_mhz = value.parse().ok(),
                "WIDTH" => poll.width = Some(value.to_owned()),
                "CENTER_FRQ1" => poll.center_frq1_mhz = value.parse().ok(),
                "CENTER_FRQ2" => poll.center_frq2_mhz = value.parse().ok(),
                _ => {}
            }
        }
        if !seen {
            return Err(ParseError(format!(
                "SIGNAL_POLL reply has no values: {:?}",
                reply.trim()
            )));
        }
        Ok(poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BSS_REPLY: &str = "id=7\nbssid=02:00:00:00:01:00\nfreq=2437\nbeacon_int=100\n\
capabilities=0x0411\nnoise=-92\nlevel=-38\nage=2\nflags=[WPA2-PSK+SAE-CCMP][ESS]\n\
ssid=caf\\xc3\\xa9 \\\"q\\\" \\\\ \\n\nsnr=54\nest_throughput=65000\n";

    #[test]
    fn bss_full() {
        let bss = Bss::parse(BSS_REPLY).unwrap();
        assert_eq!(bss.id, Some(7));
        assert_eq!(bss.bssid.to_string(), "02:00:00:00:01:00");
        assert_eq!(bss.ssid, "café \"q\" \\ \n");
        assert_eq!(bss.ssid_bytes(), "café \"q\" \\ \n".as_bytes());
        assert!(!bss.hidden);
        assert_eq!(bss.freq_mhz, Some(2437));
        assert_eq!(bss.channel, Some(6));
        assert_eq!(bss.band, Some(Band::Ghz2_4));
        assert_eq!(bss.signal_dbm, Some(-38));
        assert_eq!(bss.noise_dbm, Some(-92));
        assert_eq!(bss.snr_db, Some(54));
        assert_eq!(bss.est_throughput_kbps, Some(65000));
        assert_eq!(bss.age_secs, Some(2));
        assert_eq!(bss.flags, vec!["WPA2-PSK+SAE-CCMP", "ESS"]);
        assert_eq!(bss.security, Security::Wpa2Wpa3);
        let json = serde_json::to_value(&bss).unwrap();
        assert_eq!(json["bssid"], "02:00:00:00:01:00");
        assert_eq!(json["security"], "wpa2-psk/wpa3-sae");
        assert_eq!(json["band"], "2.4GHz");
    }

    #[test]
    fn bss_hidden_and_binary() {
        let bss = Bss::parse("bssid=02:00:00:00:01:00\nssid=\\x00\\x00\nflags=[ESS]\n").unwrap();
        assert!(bss.hidden);
        assert_eq!(bss.ssid_hex, "0000");
        assert_eq!(bss.security, Security::Open);
        let bss = Bss::parse("bssid=02:00:00:00:01:00\nssid=\n").unwrap();
        assert!(bss.hidden);
        assert_eq!(bss.ssid(), None);
        let binary = "\\xff".repeat(32);
        let bss = Bss::parse(&format!("bssid=02:00:00:00:01:00\nssid={binary}\n")).unwrap();
        assert_eq!(bss.ssid_bytes(), vec![0xff; 32]);
        assert_eq!(bss.ssid().unwrap().as_bytes(), &[0xff; 32]);
    }

    #[test]
    fn bss_malformed() {
        assert!(Bss::parse("").is_err());
        assert!(Bss::parse("FAIL\n").is_err());
        assert!(Bss::parse("bssid=zz:00:00:00:01:00\n").is_err());
        // Truncated in the middle: what is there is used.
        let truncated = &BSS_REPLY[..60];
        let bss = Bss::parse(truncated).unwrap();
        assert_eq!(bss.freq_mhz, Some(2437));
        assert_eq!(bss.signal_dbm, None);
        let bss = Bss::parse("bssid=02:00:00:00:01:00\nfreq=abc\nlevel=-\nflags=[WPA2-\n").unwrap();
        assert_eq!(bss.freq_mhz, None);
        assert_eq!(bss.flags, Vec::<String>::new());
    }

    #[test]
    fn security_classes() {
        let cases: &[(&[&str], Security)] = &[
            (&["ESS"], Security::Open),
            (&["WEP", "ESS"], Security::Wep),
            (&["WPA-PSK-TKIP", "ESS"], Security::WpaPsk),
            (
                &["WPA-PSK-TKIP", "WPA2-PSK-CCMP+TKIP", "ESS"],
                Security::Wpa2Psk,
            ),
            (&["WPA2-PSK-CCMP-preauth", "ESS"], Security::Wpa2Psk),
            (&["WPA2-PSK-SHA256-CCMP", "ESS"], Security::Wpa2Psk),
            (&["WPA2-PSK+FT/PSK-CCMP", "ESS", "WPS"], Security::Wpa2Psk),
            (&["WPA2-SAE-CCMP", "ESS"], Security::Wpa3Sae),
            (&["RSN-SAE-CCMP", "ESS", "SAE-H2E"], Security::Wpa3Sae),
            (&["WPA2-SAE-EXT-KEY-GCMP-256", "ESS"], Security::Wpa3Sae),
            (&["WPA2-PSK+SAE-CCMP", "ESS"], Security::Wpa2Wpa3),
            (&["WPA2-PSK+PSK-SHA256+SAE-CCMP", "ESS"], Security::Wpa2Wpa3),
            (&["WPA2-EAP-CCMP", "ESS"], Security::Wpa2Eap),
            (&["WPA2-EAP+EAP-SHA256-CCMP", "ESS"], Security::Wpa2Eap),
            (&["WPA2-EAP-SHA256-CCMP", "ESS"], Security::Wpa3Eap),
            (
                &["WPA2-EAP-SUITE-B-192-GCMP-256", "ESS"],
                Security::Wpa3Eap192,
            ),
            (
                &["WPA2-EAP-SHA256+EAP-SUITE-B-192-GCMP-256", "ESS"],
                Security::Wpa3Eap,
            ),
            (&["WPA-EAP-TKIP", "ESS"], Security::WpaEap),
            (&["WPA2-OWE-CCMP", "ESS"], Security::Owe),
            (&["OWE-TRANS-OPEN", "ESS"], Security::Open),
            (&["WPA2-?", "ESS"], Security::Unknown),
            (&["WPA2-DPP-CCMP", "ESS"], Security::Unknown),
        ];
        for (flags, expected) in cases {
            assert_eq!(Security::from_flags(flags), *expected, "{flags:?}");
        }
        assert_eq!(split_flags("[A][B-C]junk[D"), vec!["A", "B-C"]);
    }

    #[test]
    fn channels() {
        assert_eq!(freq_to_channel(2412), Some(1));
        assert_eq!(freq_to_channel(2472), Some(13));
        assert_eq!(freq_to_channel(2484), Some(14));
        assert_eq!(freq_to_channel(5180), Some(36));
        assert_eq!(freq_to_channel(5825), Some(165));
        assert_eq!(freq_to_band(5180), Some(Band::Ghz5));
        assert_eq!(freq_to_channel(5955), Some(1));
        assert_eq!(freq_to_channel(7115), Some(233));
        assert_eq!(freq_to_channel(5935), Some(2));
        assert_eq!(freq_to_band(5975), Some(Band::Ghz6));
        assert_eq!(freq_to_channel(4920), Some(184));
        assert_eq!(freq_to_channel(58320), Some(1));
        assert_eq!(freq_to_channel(0), None);
        assert_eq!(freq_to_channel(2413), None);
        assert_eq!(freq_to_channel(u32::MAX), None);
    }

    #[test]
    fn status_connected() {
        let reply = "bssid=02:00:00:00:01:00\nfreq=5180\nssid=my \\\"net\\\"\\xe2\\x82\\xac\nid=0\n\
mode=station\nwifi_generation=6\npairwise_cipher=CCMP\ngroup_cipher=CCMP\nkey_mgmt=WPA2-PSK\n\
wpa_state=COMPLETED\nip_address=192.168.4.130\naddress=02:00:00:00:00:00\n\
uuid=d25b5ee8-b08e-5904-b9fe-131cc43e4359\n";
        let status = Status::parse(reply);
        assert_eq!(status.wpa_state, WpaState::Completed);
        assert_eq!(status.ssid.as_deref(), Some("my \"net\"€"));
        assert_eq!(status.bssid.unwrap().to_string(), "02:00:00:00:01:00");
        assert_eq!(status.channel, Some(36));
        assert_eq!(status.network_id, Some(0));
        assert_eq!(status.key_mgmt.as_deref(), Some("WPA2-PSK"));
        assert_eq!(status.ip_address.as_deref(), Some("192.168.4.130"));
        assert_eq!(status.wifi_generation, Some(6));
        assert!(status.other.contains_key("uuid"));
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["wpa_state"], "COMPLETED");
    }

    #[test]
    fn status_wired_and_malformed() {
        // Verbatim from wpa_supplicant 2.10 -D wired with 802.1X.
        let reply = "bssid=01:80:c2:00:00:03\nfreq=0\nssid=ab\nid=0\nmode=station\n\
pairwise_cipher=NONE\ngroup_cipher=NONE\nkey_mgmt=IEEE 802.1X (no WPA)\nwpa_state=ASSOCIATED\n\
address=c2:a5:e4:b5:bf:4d\nSupplicant PAE state=CONNECTING\nsuppPortStatus=Unauthorized\n\
EAP state=IDLE\n";
        let status = Status::parse(reply);
        assert_eq!(status.wpa_state, WpaState::Associated);
        assert_eq!(status.freq_mhz, None);
        assert_eq!(status.eap_state.as_deref(), Some("IDLE"));
        assert_eq!(
            status.other.get("Supplicant PAE state").map(String::as_str),
            Some("CONNECTING")
        );
        let status = Status::parse("wpa_state=FOO\nbssid=nope\n==\n\n");
        assert_eq!(status.wpa_state, WpaState::Unknown);
        assert_eq!(status.bssid, None);
        assert_eq!(Status::parse("").wpa_state, WpaState::Unknown);
        assert_eq!(WpaState::from_number(7), WpaState::FourWayHandshake);
        assert_eq!(
            serde_json::to_value(WpaState::FourWayHandshake).unwrap(),
            "4WAY_HANDSHAKE"
        );
    }

    #[test]
    fn list_networks() {
        // Verbatim shapes from wpa_supplicant 2.10.
        let reply = "network id / ssid / bssid / flags\n0\t\\x00\tany\t[DISABLED]\n\
1\tab\\tc\t02:00:00:00:01:00\t[CURRENT]\n2\tx\tany\t[TEMP-DISABLED]\n3\ty\tany\t\n";
        let list = ConfiguredNetwork::parse_list(reply).unwrap();
        assert_eq!(list.len(), 4);
        assert_eq!(list[0].ssid_hex, "00");
        assert!(list[0].disabled);
        assert_eq!(list[1].ssid, "ab\tc");
        assert!(list[1].current);
        assert_eq!(list[1].bssid.unwrap().to_string(), "02:00:00:00:01:00");
        assert!(list[2].temp_disabled);
        assert!(list[3].flags.is_empty());
        assert!(
            ConfiguredNetwork::parse_list("network id / ssid / bssid / flags\n")
                .unwrap()
                .is_empty()
        );
        assert!(ConfiguredNetwork::parse_list("FAIL\n").is_err());
        assert!(ConfiguredNetwork::parse_list("").is_err());
        assert!(ConfiguredNetwork::parse_list("network id\nx\ty\n").is_err());
        assert!(ConfiguredNetwork::parse_list("network id\n1\ty\tzz\n").is_err());
        // Truncated mid-line: id and ssid are still read.
        let list = ConfiguredNetwork::parse_list("network id\n4\tpart").unwrap();
        assert_eq!(list[0].ssid, "part");
    }

    #[test]
    fn signal_poll() {
        let reply = "RSSI=-42\nLINKSPEED=866\nNOISE=9999\nFREQUENCY=5180\nWIDTH=80 MHz\n\
CENTER_FRQ1=5210\nAVG_RSSI=-43\n";
        let poll = SignalPoll::parse(reply).unwrap();
        assert_eq!(poll.rssi_dbm, Some(-42));
        assert_eq!(poll.linkspeed_mbps, Some(866));
        assert_eq!(poll.noise_dbm, None);
        assert_eq!(poll.width.as_deref(), Some("80 MHz"));
        assert_eq!(poll.center_frq1_mhz, Some(5210));
        assert_eq!(poll.avg_rssi_dbm, Some(-43));
        assert!(SignalPoll::parse("FAIL\n").is_err());
        assert!(SignalPoll::parse("").is_err());
    }
}
