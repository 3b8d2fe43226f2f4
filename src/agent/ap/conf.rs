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
        })
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
