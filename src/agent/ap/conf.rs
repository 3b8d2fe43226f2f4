//! The access point's settings, validated before anything starts ([`ApSettings::parse`]), and
//! the two config files written from them: hostapd's ([`ApSettings::hostapd_conf`], 0600: it
//! holds the passphrase) and busybox udhcpd's ([`udhcpd_conf`]).
//!
//! Nothing is quoted by hand: the SSID goes to hostapd as hex (`ssid2=`), the passphrase is
//! printable ASCII (no newline can end its line early), and it is always `wpa_passphrase` —
//! never `sae_password`, whose value hostapd splits at `|mac=`, `|id=`, `|vlanid=`.

use std::net::Ipv4Addr;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::agent::failure::Failure;
use crate::validate::{Hostname, Passphrase, Ssid};

/// The box's address on its access point's network.
pub const AP_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
/// Its prefix length.
pub const AP_PREFIX: u8 = 24;
/// The first address udhcpd hands out.
pub const POOL_START: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 100);
/// The last address udhcpd hands out.
pub const POOL_END: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 199);
/// The name the AP's DNS answer resolves when `dns_name` is not given (RFC 8375's home.arpa).
pub const DEFAULT_DNS_NAME: &str = "ap.home.arpa";
/// A DHCP lease's length, seconds.
pub const LEASE_SECS: u32 = 3600;

/// The access point's security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApSecurity {
    /// No encryption.
    #[default]
    Open,
    /// WPA2-Personal (WPA-PSK, CCMP).
    Wpa2,
    /// WPA3-Personal (SAE, CCMP, PMF required).
    Sae,
    /// Enhanced open (OWE, CCMP, PMF required): encrypted, no passphrase.
    Owe,
}

impl ApSecurity {
    /// The name as a client writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ApSecurity::Open => "open",
            ApSecurity::Wpa2 => "wpa2",
            ApSecurity::Sae => "sae",
            ApSecurity::Owe => "owe",
        }
    }
}

/// The band the access point runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
pub enum Band {
    /// 2.4 GHz (802.11g): channels 1-13.
    #[default]
    #[serde(rename = "2.4", alias = "2.4ghz")]
    G2_4,
    /// 5 GHz (802.11a): the 20 MHz channels 36-64, 100-144, 149-165.
    #[serde(rename = "5", alias = "5ghz")]
    G5,
}

impl Band {
    /// `2.4` or `5`.
    pub fn as_str(self) -> &'static str {
        match self {
            Band::G2_4 => "2.4",
            Band::G5 => "5",
        }
    }

    fn valid(self, channel: u32) -> bool {
        match self {
            Band::G2_4 => (1..=13).contains(&channel),
            Band::G5 => {
                matches!(channel, 36..=64 | 100..=144 | 149..=165)
                    && ((channel < 149 && channel.is_multiple_of(4))
                        || (channel >= 149 && channel % 4 == 1))
            }
        }
    }

    fn default_channel(self) -> u32 {
        match self {
            Band::G2_4 => 6,
            Band::G5 => 36,
        }
    }
}

/// How the access point shares the radio with the station side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApMode {
    /// The box's one interface becomes the AP; wpa_supplicant is paused meanwhile (refused
    /// while the station is connected).
    #[default]
    Exclusive,
    /// A second interface of type AP on the same phy, next to the station: wpa_supplicant and
    /// its connection are left as they are (where the phy's interface combinations allow it).
    Concurrent,
}

impl ApMode {
    /// `exclusive` or `concurrent`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApMode::Exclusive => "exclusive",
            ApMode::Concurrent => "concurrent",
        }
    }
}

/// The band and channel of a centre frequency (MHz) an AP of ours can use, if it is one.
pub fn channel_of(freq_mhz: u32) -> Option<(Band, u32)> {
    let (band, ch) = match freq_mhz {
        2412..=2472 if (freq_mhz - 2407).is_multiple_of(5) => (Band::G2_4, (freq_mhz - 2407) / 5),
        5180..=5825 if freq_mhz.is_multiple_of(5) => (Band::G5, (freq_mhz - 5000) / 5),
        _ => return None,
    };
    band.valid(ch).then_some((band, ch))
}

/// Whether `a/pa` and `b/pb` share an address (one contains the other's network).
pub fn subnets_overlap(a: Ipv4Addr, pa: u8, b: Ipv4Addr, pb: u8) -> bool {
    let p = u32::from(pa.min(pb).min(32));
    let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    (u32::from(a) & mask) == (u32::from(b) & mask)
}

/// What `wifi_ap_start` runs, every field checked.
#[derive(Clone)]
pub struct ApSettings {
    /// The network name.
    pub ssid: Ssid,
    /// Its security.
    pub security: ApSecurity,
    /// wpa2 and sae: the passphrase (redacted in Debug and Display).
    pub passphrase: Option<Passphrase>,
    /// The band.
    pub band: Band,
    /// The channel, valid for the band.
    pub channel: u32,
    /// Beacons without the SSID.
    pub hidden: bool,
    /// The name the AP's DNS answer gives [`AP_ADDR`] for.
    pub dns_name: Hostname,
    /// Whether the caller chose the band (else the default, or the station's in concurrent mode).
    pub band_given: bool,
    /// Whether the caller chose the channel (else the default, or the station's).
    pub channel_given: bool,
    /// Exclusive (default) or concurrent with the station side (set after [`ApSettings::parse`]).
    pub mode: ApMode,
}

impl std::fmt::Debug for ApSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApSettings")
            .field("ssid", &self.ssid)
            .field("security", &self.security)
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("band", &self.band)
            .field("channel", &self.channel)
            .field("hidden", &self.hidden)
            .field("dns_name", &self.dns_name)
            .field("mode", &self.mode)
            .finish()
    }
}

impl ApSettings {
    /// Check every argument of `wifi_ap_start`; an error says what is wrong and what is allowed.
    pub fn parse(
        ssid: &str,
        security: ApSecurity,
        passphrase: Option<&str>,
        band: Option<Band>,
        channel: Option<u32>,
        hidden: bool,
        dns_name: Option<&str>,
    ) -> Result<ApSettings, Failure> {
        let ssid = Ssid::parse(ssid).map_err(Failure::invalid)?;
        let passphrase = match (security, passphrase) {
            (ApSecurity::Open | ApSecurity::Owe, None) => None,
            (ApSecurity::Open | ApSecurity::Owe, Some(_)) => {
                return Err(Failure::invalid(format!(
                    "security {} takes no passphrase (use wpa2 or sae for one)",
                    security.as_str()
                )));
            }
            (_, None) => {
                return Err(Failure::invalid(format!(
                    "security {} needs a passphrase: 8 to 63 printable ASCII characters",
                    security.as_str()
                )));
            }
            (_, Some(p)) => {
                let p = Passphrase::parse(p).map_err(Failure::invalid)?;
                if security == ApSecurity::Sae && p.is_raw_psk() {
                    return Err(Failure::invalid(
                        "security sae needs a passphrase of 8 to 63 printable ASCII characters; \
                         a 64-hex-digit raw PSK works for wpa2 only",
                    ));
                }
                Some(p)
            }
        };
        let (band_given, channel_given) = (band.is_some(), channel.is_some());
        let band = band.unwrap_or_default();
        let channel = channel.unwrap_or(band.default_channel());
        if !band.valid(channel) {
            return Err(Failure::invalid(format!(
                "channel {channel} is not a channel of the {} GHz band; use 1-13 on 2.4 GHz, or \
                 36-64, 100-144 (multiples of 4) or 149-165 (149, 153, 157, 161, 165) on 5 GHz",
                band.as_str()
            )));
        }
        let dns_name = Hostname::parse(dns_name.unwrap_or(DEFAULT_DNS_NAME))
            .map_err(|e| Failure::invalid(format!("dns_name: {e}")))?;
        Ok(ApSettings {
            ssid,
            security,
            passphrase,
            band,
            channel,
            hidden,
            dns_name,
            band_given,
            channel_given,
            mode: ApMode::Exclusive,
        })
    }

    /// Put the AP on the station's channel (`freq_mhz`), for a phy that runs all its
    /// interfaces on one channel: taken when the caller chose no channel; a different channel
    /// (or band) the caller chose is refused, saying what to do.
    pub fn share_channel(&mut self, freq_mhz: u32, ssid: &str) -> Result<(), Failure> {
        let Some((band, channel)) = channel_of(freq_mhz) else {
            return Err(Failure::new(
                crate::agent::failure::Code::Busy,
                format!(
                    "the station is connected to {ssid} on {freq_mhz} MHz, and this phy runs its \
                     interfaces on one channel: an access point of ours cannot use that one \
                     (2.4 GHz channels 1-13 and the 5 GHz channels of `channel` only); \
                     wifi_disconnect first, or use mode exclusive"
                ),
            ));
        };
        let differs = (self.channel_given && self.channel != channel)
            || (self.band_given && self.band != band);
        if differs {
            return Err(Failure::invalid(format!(
                "this phy runs the station and the access point on one channel, and the station \
                 is connected to {ssid} on channel {channel} ({} GHz, {freq_mhz} MHz): leave \
                 channel (and band) out to share it, give channel {channel}, or wifi_disconnect \
                 first",
                band.as_str()
            )));
        }
        self.band = band;
        self.channel = channel;
        Ok(())
    }

    /// The channel's centre frequency, MHz.
    pub fn frequency_mhz(&self) -> u32 {
        match self.band {
            Band::G2_4 => 2407 + 5 * self.channel,
            Band::G5 => 5000 + 5 * self.channel,
        }
    }

    /// hostapd's config for `iface`, its control socket in `ctrl_dir`.
    pub fn hostapd_conf(&self, iface: &str, ctrl_dir: &Path) -> String {
        let mut c = format!(
            "# written by wifi-isolate-agent (wifi_ap_start); mode 0600: it may hold the passphrase\n\
             interface={iface}\ndriver=nl80211\nctrl_interface={}\n\
             ssid2={}\nhw_mode={}\nchannel={}\nignore_broadcast_ssid={}\nwmm_enabled=1\nauth_algs=1\n",
            ctrl_dir.display(),
            self.ssid.to_hex(),
            match self.band {
                Band::G2_4 => "g",
                Band::G5 => "a",
            },
            self.channel,
            u8::from(self.hidden),
        );
        let key = |c: &mut String, p: &Passphrase| {
            if p.is_raw_psk() {
                c.push_str(&format!("wpa_psk={}\n", p.expose()));
            } else {
                c.push_str(&format!("wpa_passphrase={}\n", p.expose()));
            }
        };
        match self.security {
            ApSecurity::Open => {}
            ApSecurity::Wpa2 => {
                c.push_str("wpa=2\nwpa_key_mgmt=WPA-PSK\nrsn_pairwise=CCMP\n");
                if let Some(p) = &self.passphrase {
                    key(&mut c, p);
                }
            }
            ApSecurity::Sae => {
                c.push_str("wpa=2\nwpa_key_mgmt=SAE\nrsn_pairwise=CCMP\nieee80211w=2\n");
                if let Some(p) = &self.passphrase {
                    key(&mut c, p);
                }
            }
            ApSecurity::Owe => {
                c.push_str("wpa=2\nwpa_key_mgmt=OWE\nrsn_pairwise=CCMP\nieee80211w=2\n");
            }
        }
        c
    }
}

/// busybox udhcpd's config: the pool on `iface`, its lease and pid files in `dir`; the box's
/// address as router and DNS server. `auto_time 1`: the lease file is rewritten every second,
/// so `wifi_ap_clients` reads leases at most a second old (and a SIGUSR1 makes it at once).
pub fn udhcpd_conf(iface: &str, dir: &Path) -> String {
    format!(
        "# written by wifi-isolate-agent (wifi_ap_start)\n\
         interface {iface}\nstart {POOL_START}\nend {POOL_END}\nmax_leases 100\n\
         lease_file {}\npidfile {}\nauto_time 1\noffer_time 60\n\
         option subnet 255.255.255.0\noption router {AP_ADDR}\noption dns {AP_ADDR}\n\
         option lease {LEASE_SECS}\n",
        dir.join("udhcpd.leases").display(),
        dir.join("udhcpd.pid").display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        ssid: &str,
        sec: ApSecurity,
        pass: Option<&str>,
        band: Option<Band>,
        ch: Option<u32>,
    ) -> Result<ApSettings, Failure> {
        ApSettings::parse(ssid, sec, pass, band, ch, false, None)
    }

    #[test]
    fn bad_input_is_refused_with_invalid_argument() {
        use crate::agent::failure::Code;
        let bad = [
            parse(&"a".repeat(33), ApSecurity::Open, None, None, None),
            parse("", ApSecurity::Open, None, None, None),
            parse("x", ApSecurity::Wpa2, Some("1234567"), None, None),
            parse("x", ApSecurity::Wpa2, Some(&"a".repeat(64 + 1)), None, None),
            parse("x", ApSecurity::Wpa2, Some("abcdefgh\nwpa=0"), None, None),
            parse("x", ApSecurity::Wpa2, None, None, None),
            parse("x", ApSecurity::Sae, None, None, None),
            parse("x", ApSecurity::Sae, Some(&"ab".repeat(32)), None, None),
            parse("x", ApSecurity::Open, Some("12345678"), None, None),
            parse("x", ApSecurity::Owe, Some("12345678"), None, None),
            parse("x", ApSecurity::Open, None, Some(Band::G5), Some(14)),
            parse("x", ApSecurity::Open, None, None, Some(200)),
            parse("x", ApSecurity::Open, None, None, Some(0)),
            parse("x", ApSecurity::Open, None, None, Some(14)),
            parse("x", ApSecurity::Open, None, Some(Band::G5), Some(38)),
            parse("x", ApSecurity::Open, None, Some(Band::G5), Some(150)),
            parse("x", ApSecurity::Open, None, Some(Band::G5), Some(169)),
            ApSettings::parse("x", ApSecurity::Open, None, None, None, false, Some("a b")),
        ];
        for (i, b) in bad.into_iter().enumerate() {
            let e = b.expect_err(&format!("case {i} accepted"));
            assert_eq!(e.code, Code::InvalidArgument, "case {i}: {e}");
            assert!(!e.text.contains("abcdefgh"), "case {i} repeats the secret");
        }
        let s = parse("x", ApSecurity::Open, None, Some(Band::G5), None).unwrap();
        assert_eq!((s.channel, s.frequency_mhz()), (36, 5180));
        let s = parse("x", ApSecurity::Open, None, Some(Band::G5), Some(165)).unwrap();
        assert_eq!(s.frequency_mhz(), 5825);
        let s = parse("x", ApSecurity::Open, None, None, None).unwrap();
        assert_eq!((s.channel, s.frequency_mhz()), (6, 2437));
        assert_eq!(s.dns_name.as_str(), DEFAULT_DNS_NAME);
        assert!(parse("x", ApSecurity::Wpa2, Some(&"ab".repeat(32)), None, None).is_ok());
    }

    #[test]
    fn frequencies_map_to_our_channels_and_subnets_overlap_by_prefix() {
        assert_eq!(channel_of(2412), Some((Band::G2_4, 1)));
        assert_eq!(channel_of(2472), Some((Band::G2_4, 13)));
        assert_eq!(channel_of(2484), None);
        assert_eq!(channel_of(5180), Some((Band::G5, 36)));
        assert_eq!(channel_of(5825), Some((Band::G5, 165)));
        assert_eq!(channel_of(5190), None);
        assert_eq!(channel_of(5955), None);
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert!(subnets_overlap(AP_ADDR, 24, ip("192.168.77.50"), 24));
        assert!(subnets_overlap(AP_ADDR, 24, ip("192.168.0.9"), 16));
        assert!(subnets_overlap(AP_ADDR, 24, ip("192.168.77.130"), 25));
        assert!(!subnets_overlap(AP_ADDR, 24, ip("192.168.78.1"), 24));
        assert!(!subnets_overlap(AP_ADDR, 24, ip("10.0.6.100"), 24));
        assert!(subnets_overlap(AP_ADDR, 24, ip("10.0.0.1"), 0));
    }

    #[test]
    fn a_single_channel_phy_takes_the_station_s_channel_or_refuses_another() {
        use crate::agent::failure::Code;
        let mut s = parse("x", ApSecurity::Open, None, None, None).unwrap();
        s.share_channel(2412, "lab").unwrap();
        assert_eq!(
            (s.band, s.channel, s.frequency_mhz()),
            (Band::G2_4, 1, 2412)
        );
        let mut s = parse("x", ApSecurity::Open, None, None, None).unwrap();
        s.share_channel(5180, "lab").unwrap();
        assert_eq!((s.band, s.channel), (Band::G5, 36));
        let mut s = parse("x", ApSecurity::Open, None, None, Some(1)).unwrap();
        s.share_channel(2412, "lab").unwrap();
        let mut s = parse("x", ApSecurity::Open, None, None, Some(6)).unwrap();
        let e = s.share_channel(2412, "lab").unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        assert!(e.text.contains("channel 1"), "{e}");
        assert_eq!(s.channel, 6);
        let mut s = parse("x", ApSecurity::Open, None, Some(Band::G5), None).unwrap();
        assert!(s.share_channel(2412, "lab").is_err());
        let mut s = parse("x", ApSecurity::Open, None, None, None).unwrap();
        assert_eq!(s.share_channel(2484, "lab").unwrap_err().code, Code::Busy);
    }

    #[test]
    fn band_and_security_deserialize_from_their_names() {
        let b: Band = serde_json::from_value(serde_json::json!("5")).unwrap();
        assert_eq!(b, Band::G5);
        let b: Band = serde_json::from_value(serde_json::json!("2.4ghz")).unwrap();
        assert_eq!(b, Band::G2_4);
        let s: ApSecurity = serde_json::from_value(serde_json::json!("owe")).unwrap();
        assert_eq!(s, ApSecurity::Owe);
        assert!(serde_json::from_value::<ApSecurity>(serde_json::json!("wep")).is_err());
    }

    #[test]
    fn hostapd_conf_carries_the_ssid_as_hex_and_each_mode_s_lines() {
        let dir = Path::new("/run/a/hostapd");
        let s = ApSettings::parse(
            "lab\"\nx",
            ApSecurity::Sae,
            Some("pass|mac=ff"),
            None,
            Some(11),
            true,
            None,
        )
        .unwrap();
        let c = s.hostapd_conf("wlan0", dir);
        assert!(
            c.contains(&format!("ssid2={}\n", hex::encode("lab\"\nx"))),
            "{c}"
        );
        assert!(c.contains("interface=wlan0\n") && c.contains("ctrl_interface=/run/a/hostapd\n"));
        assert!(c.contains("channel=11\n") && c.contains("hw_mode=g\n"));
        assert!(c.contains("ignore_broadcast_ssid=1\n"));
        assert!(c.contains("wpa_key_mgmt=SAE\n") && c.contains("ieee80211w=2\n"));
        assert!(c.contains("wpa_passphrase=pass|mac=ff\n") && !c.contains("sae_password"));
        let owe = ApSettings::parse(
            "o",
            ApSecurity::Owe,
            None,
            Some(Band::G5),
            None,
            false,
            None,
        )
        .unwrap()
        .hostapd_conf("wlan0", dir);
        assert!(owe.contains("wpa_key_mgmt=OWE\n") && owe.contains("hw_mode=a\n"));
        assert!(!owe.contains("wpa_passphrase"));
        let open = ApSettings::parse("o", ApSecurity::Open, None, None, None, false, None)
            .unwrap()
            .hostapd_conf("wlan0", dir);
        assert!(!open.contains("wpa=") && open.contains("ignore_broadcast_ssid=0\n"));
        let psk = ApSettings::parse(
            "o",
            ApSecurity::Wpa2,
            Some(&"AB".repeat(32)),
            None,
            None,
            false,
            None,
        )
        .unwrap()
        .hostapd_conf("wlan0", dir);
        assert!(psk.contains(&format!("wpa_psk={}\n", "ab".repeat(32))));
        assert!(psk.contains("wpa_key_mgmt=WPA-PSK\n"));
        // One key=value per line: nothing a value holds starts a second one.
        assert_eq!(c.lines().filter(|l| l.starts_with("wpa=")).count(), 1);
    }

    #[test]
    fn udhcpd_conf_names_the_pool_and_the_files() {
        let c = udhcpd_conf("wlan0", Path::new("/run/a"));
        for want in [
            "interface wlan0\n",
            "start 192.168.77.100\n",
            "end 192.168.77.199\n",
            "lease_file /run/a/udhcpd.leases\n",
            "option router 192.168.77.1\n",
            "option dns 192.168.77.1\n",
        ] {
            assert!(c.contains(want), "{want:?} in {c}");
        }
    }
}
