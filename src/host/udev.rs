//! The persistent opt-in: one local udev rule per adapter enabled for isolation.
//!
//! `wifi-isolate enable IFACE` writes `/etc/udev/rules.d/81-wifi-isolate-IFACE.rules`, which
//! sets `ENV{WIFI_ISOLATE}="1"` for a stable identity of the adapter: its udev `ID_PATH`
//! (`pci-0000:06:00.0`, also for USB adapters behind a PCI controller) or, for adapters without a
//! bus path (virtual radios), the wiphy's permanent MAC address. Never `phyN`: phy indexes change
//! on every driver reload. The packaged `82-wifi-isolate.rules` acts on that property (NM off,
//! `SYSTEMD_WANTS`); 81 sorts after `80-net-setup-link.rules`, which imports `ID_PATH` and names
//! the interface.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::validate::IfaceName;

/// Where `enable` writes its rules.
pub const RULES_DIR: &str = "/etc/udev/rules.d";

/// A stable identity of a wireless adapter, as udev can match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// udev's `ID_PATH` of the interface (`pci-0000:06:00.0`).
    BusPath(String),
    /// The wiphy's permanent MAC address (`/sys/class/net/IFACE/phy80211/macaddress`).
    PermanentMac(String),
}

/// Why an identity could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// `ID_PATH` holds characters a udev match cannot carry literally.
    #[error("udev's ID_PATH {0:?} has characters a udev rule cannot match literally")]
    BadPath(String),
    /// The MAC address is not `xx:xx:xx:xx:xx:xx`.
    #[error("{0:?} is not a MAC address")]
    BadMac(String),
}

impl Identity {
    /// From udev's `ID_PATH` when there is one, else from the permanent MAC.
    pub fn choose(id_path: Option<&str>, mac: &str) -> Result<Self, IdentityError> {
        match id_path.map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => Self::bus_path(p),
            None => Self::mac(mac),
        }
    }

    fn bus_path(p: &str) -> Result<Self, IdentityError> {
        let ok = p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+".contains(&b));
        if ok {
            Ok(Identity::BusPath(p.to_owned()))
        } else {
            Err(IdentityError::BadPath(p.to_owned()))
        }
    }

    fn mac(m: &str) -> Result<Self, IdentityError> {
        let m = m.trim().to_ascii_lowercase();
        let parts: Vec<&str> = m.split(':').collect();
        let ok = parts.len() == 6
            && parts
                .iter()
                .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
        if ok && m != "00:00:00:00:00:00" {
            Ok(Identity::PermanentMac(m))
        } else {
            Err(IdentityError::BadMac(m))
        }
    }

    /// The udev match for this identity.
    pub fn udev_match(&self) -> String {
        match self {
            Identity::BusPath(p) => format!("ENV{{ID_PATH}}==\"{p}\""),
            Identity::PermanentMac(m) => format!("ATTR{{phy80211/macaddress}}==\"{m}\""),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::BusPath(p) => write!(f, "bus path {p}"),
            Identity::PermanentMac(m) => write!(f, "permanent MAC {m}"),
        }
    }
}

/// The local rule file of one adapter.
pub fn rule_file(dir: &Path, iface: &IfaceName) -> PathBuf {
    dir.join(format!("81-wifi-isolate-{iface}.rules"))
}

/// The text of the local rule that enables `iface` (known by `identity`) for isolation.
pub fn rule_text(iface: &IfaceName, identity: &Identity) -> String {
    format!(
        "# wifi-isolate: isolate the WiFi adapter {iface} ({identity}).\n\
         # Written by `wifi-isolate enable {iface}`; `wifi-isolate disable {iface}` removes it.\n\
         SUBSYSTEM==\"net\", ACTION!=\"remove\", ENV{{DEVTYPE}}==\"wlan\", {}, ENV{{WIFI_ISOLATE}}=\"1\"\n",
        identity.udev_match()
    )
}

/// Every adapter enabled in `dir`: (interface name, rule file).
pub fn enabled(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let iface = name
                .strip_prefix("81-wifi-isolate-")?
                .strip_suffix(".rules")?;
            Some((iface.to_owned(), e.path()))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bus_path_wins_over_the_mac() {
        let id = Identity::choose(Some("pci-0000:06:00.0"), "02:00:00:00:01:00").unwrap();
        assert_eq!(id, Identity::BusPath("pci-0000:06:00.0".into()));
        assert_eq!(id.udev_match(), r#"ENV{ID_PATH}=="pci-0000:06:00.0""#);
        let usb = Identity::choose(Some("pci-0000:00:14.0-usb-0:2:1.0"), "x").unwrap();
        assert!(matches!(usb, Identity::BusPath(_)));
    }

    #[test]
    fn without_a_bus_path_the_permanent_mac_keys_the_rule() {
        let id = Identity::choose(None, "02:00:00:00:0A:00\n").unwrap();
        assert_eq!(
            id.udev_match(),
            r#"ATTR{phy80211/macaddress}=="02:00:00:00:0a:00""#
        );
        assert!(Identity::choose(Some(" "), "02:00:00:00:0a:00").is_ok());
    }

    #[test]
    fn what_a_rule_cannot_carry_is_refused() {
        assert!(Identity::choose(Some("pci-0\"; RUN+=\"/bin/sh"), "").is_err());
        assert!(Identity::choose(Some("pci-*"), "").is_err());
        assert!(Identity::choose(None, "00:00:00:00:00:00").is_err());
        assert!(Identity::choose(None, "02:00:00:00:0a").is_err());
        assert!(Identity::choose(None, "zz:00:00:00:0a:00").is_err());
    }

    #[test]
    fn the_rule_matches_only_wlan_adds_and_changes_of_that_adapter() {
        let iface = IfaceName::parse("wlp6s0").unwrap();
        let text = rule_text(&iface, &Identity::BusPath("pci-0000:06:00.0".into()));
        let rule: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            rule,
            [
                r#"SUBSYSTEM=="net", ACTION!="remove", ENV{DEVTYPE}=="wlan", ENV{ID_PATH}=="pci-0000:06:00.0", ENV{WIFI_ISOLATE}="1""#
            ]
        );
    }

    #[test]
    fn enabled_adapters_are_listed_from_their_files() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["wlan1", "wlp6s0"] {
            let i = IfaceName::parse(n).unwrap();
            std::fs::write(rule_file(dir.path(), &i), "x").unwrap();
        }
        std::fs::write(dir.path().join("70-other.rules"), "x").unwrap();
        let names: Vec<String> = enabled(dir.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["wlan1", "wlp6s0"]);
    }
}
