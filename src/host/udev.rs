//! The persistent opt-in: one local udev rule per adapter enabled for isolation.
//!
//! `wifi-isolate enable IFACE` writes `/etc/udev/rules.d/81-wifi-isolate-IFACE.rules`, which
//! sets `ENV{WIFI_ISOLATE}="1"` for a stable identity of the adapter: its udev `ID_PATH`
//! (`pci-0000:06:00.0`, also for USB adapters behind a PCI controller) or, for adapters without a
//! bus path (virtual radios), the wiphy's permanent MAC address. Never `phyN`: phy indexes change
//! on every driver reload. The packaged `82-wifi-isolate.rules` acts on that property (NM off,
//! `SYSTEMD_WANTS`); 81 sorts after `80-net-setup-link.rules`, which imports `ID_PATH` and names
//! the interface.
//!
//! [`check_identity`] reads the identity back from the rule and compares it with the adapter's
//! current one, so that `run IFACE` never seizes another adapter that took the name (a rename, a
//! different probe order). [`current_identity`] is how both `enable` and that check read it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

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

    /// A bus path (`pci-0000:06:00.0`), refused when a udev match could not carry it literally.
    pub fn bus_path(p: &str) -> Result<Self, IdentityError> {
        let ok = p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+".contains(&b));
        if ok {
            Ok(Identity::BusPath(p.to_owned()))
        } else {
            Err(IdentityError::BadPath(p.to_owned()))
        }
    }

    /// A permanent MAC (`02:00:00:00:0a:00`, case-insensitive), stored lower-case.
    pub fn mac(m: &str) -> Result<Self, IdentityError> {
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
         {}\n",
        rule_line(identity)
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

/// Where an adapter's current identity is read from: sysfs and udev's `ID_PATH`.
///
/// [`Adapters::system`] reads `/sys/class/net` and asks `udevadm`; tests point it at a temp dir
/// and hand in the `ID_PATH` they want.
pub struct Adapters<'a> {
    /// The directory of network interfaces (`/sys/class/net`).
    pub sys_class_net: &'a Path,
    /// udev's `ID_PATH` of an interface, given its sysfs directory; `Ok(None)` when it has none.
    pub id_path: &'a (dyn Fn(&Path) -> Result<Option<String>, String> + Sync),
}

impl Adapters<'static> {
    /// The real host: `/sys/class/net` and `udevadm info --query=property`.
    pub fn system() -> Self {
        Adapters {
            sys_class_net: Path::new("/sys/class/net"),
            id_path: &udevadm_id_path,
        }
    }
}

/// `ID_PATH` from `udevadm info --query=property --path=DEV`.
pub fn udevadm_id_path(dev: &Path) -> Result<Option<String>, String> {
    let out = Command::new("udevadm")
        .args(["info", "--query=property"])
        .arg(format!("--path={}", dev.display()))
        .output()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                "udevadm not found: reading an adapter's identity needs udev".to_owned()
            } else {
                format!("cannot run udevadm: {e}")
            }
        })?;
    if !out.status.success() {
        return Err(format!(
            "`udevadm info --query=property --path={}` failed ({}): {}",
            dev.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("ID_PATH="))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned))
}

/// Why an adapter's current identity could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No such interface in the host (absent, or isolated right now).
    #[error("there is no interface {iface} in the host (see `ip link` or `iw dev`)")]
    NotInHost {
        /// The interface name.
        iface: String,
    },
    /// The interface has no `phy80211`.
    #[error(
        "{iface} is not a wireless interface (it has no phy80211): only WiFi adapters can be isolated"
    )]
    NotWireless {
        /// The interface name.
        iface: String,
    },
    /// udev could not be asked for `ID_PATH`.
    #[error("{0}")]
    Udev(String),
    /// `phy80211/macaddress` could not be read.
    #[error("cannot read the permanent MAC of {iface}: {cause}")]
    Mac {
        /// The interface name.
        iface: String,
        /// The read error.
        cause: io::Error,
    },
    /// What sysfs or udev reported cannot be used as an identity.
    #[error("{iface}: {cause}")]
    Unusable {
        /// The interface name.
        iface: String,
        /// Why.
        cause: IdentityError,
    },
}

impl Adapters<'_> {
    /// The sysfs directory of `iface`, checked to be a wireless interface in the host.
    fn dev(&self, iface: &IfaceName) -> Result<PathBuf, ReadError> {
        let dev = self.sys_class_net.join(iface.as_str());
        if !dev.exists() {
            return Err(ReadError::NotInHost {
                iface: iface.to_string(),
            });
        }
        if !dev.join("phy80211").exists() {
            return Err(ReadError::NotWireless {
                iface: iface.to_string(),
            });
        }
        Ok(dev)
    }

    fn mac_of(&self, iface: &IfaceName, dev: &Path) -> Result<Identity, ReadError> {
        let mac = std::fs::read_to_string(dev.join("phy80211/macaddress")).map_err(|cause| {
            ReadError::Mac {
                iface: iface.to_string(),
                cause,
            }
        })?;
        Identity::mac(&mac).map_err(|cause| ReadError::Unusable {
            iface: iface.to_string(),
            cause,
        })
    }

    fn bus_path_of(&self, iface: &IfaceName, dev: &Path) -> Result<Option<Identity>, ReadError> {
        match (self.id_path)(dev).map_err(ReadError::Udev)? {
            Some(p) if !p.trim().is_empty() => {
                Identity::bus_path(p.trim())
                    .map(Some)
                    .map_err(|cause| ReadError::Unusable {
                        iface: iface.to_string(),
                        cause,
                    })
            }
            _ => Ok(None),
        }
    }
}

/// The identity `enable` records for `iface`: udev's `ID_PATH` when it has one, else the wiphy's
/// permanent MAC ([`Identity::choose`]).
pub fn current_identity(adapters: &Adapters<'_>, iface: &IfaceName) -> Result<Identity, ReadError> {
    let dev = adapters.dev(iface)?;
    match adapters.bus_path_of(iface, &dev)? {
        Some(id) => Ok(id),
        None => adapters.mac_of(iface, &dev),
    }
}

/// The identity a rule written by [`rule_text`] matches, read back from its text.
pub fn parse_rule(text: &str) -> Result<Identity, String> {
    let rules: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let [line] = rules.as_slice() else {
        return Err(format!(
            "it holds {} rules, `wifi-isolate enable` writes exactly one",
            rules.len()
        ));
    };
    let value = |key: &str| {
        let start = line.find(key)? + key.len();
        let end = line[start..].find('"')?;
        Some(&line[start..start + end])
    };
    let identity = match (
        value("ENV{ID_PATH}==\""),
        value("ATTR{phy80211/macaddress}==\""),
    ) {
        (Some(p), None) => Identity::bus_path(p),
        (None, Some(m)) => Identity::mac(m),
        (None, None) => {
            return Err(
                "it matches neither ENV{ID_PATH}== nor ATTR{phy80211/macaddress}==".to_owned(),
            );
        }
        (Some(_), Some(_)) => {
            return Err(
                "it matches both ENV{ID_PATH}== and ATTR{phy80211/macaddress}==".to_owned(),
            );
        }
    }
    .map_err(|e| e.to_string())?;
    // Exactly the line `enable` writes for that identity: an edited rule may match more.
    let written = rule_line(&identity);
    if *line != written {
        return Err(format!(
            "its rule is not the one `wifi-isolate enable` writes for {identity} ({written})"
        ));
    }
    Ok(identity)
}

/// The rule line of [`rule_text`].
fn rule_line(identity: &Identity) -> String {
    format!(
        "SUBSYSTEM==\"net\", ACTION!=\"remove\", ENV{{DEVTYPE}}==\"wlan\", {}, ENV{{WIFI_ISOLATE}}=\"1\"",
        identity.udev_match()
    )
}

/// Why `run IFACE` must not take the adapter now called `IFACE`. Nothing was changed when it is
/// returned; every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum IdentityMismatch {
    /// The adapter is another one than the rule names.
    #[error(
        "{iface} is not the adapter enabled as {iface}: the rule {} names {recorded}, this one \
         is {current} (renamed or probed in another order?); nothing was changed. Re-run \
         `wifi-isolate enable {iface}` if this is the adapter you want isolated",
        rule.display()
    )]
    Differs {
        /// The interface name.
        iface: String,
        /// The rule file.
        rule: PathBuf,
        /// What the rule names.
        recorded: Identity,
        /// What the adapter called `iface` is.
        current: Identity,
    },
    /// The rule file exists but cannot be read.
    #[error(
        "cannot read {} to check that {iface} is the adapter enabled as {iface}: {cause}; \
         nothing was changed. Fix its permissions, or re-run `wifi-isolate enable {iface}`",
        rule.display()
    )]
    Unreadable {
        /// The interface name.
        iface: String,
        /// The rule file.
        rule: PathBuf,
        /// The read error.
        cause: io::Error,
    },
    /// The rule file is not one `enable` writes.
    #[error(
        "{} is not a rule written by `wifi-isolate enable`: {why}; nothing was changed. \
         Re-run `wifi-isolate enable {iface}` to write it again, or remove it \
         (`wifi-isolate disable {iface}`)",
        rule.display()
    )]
    Foreign {
        /// The interface name.
        iface: String,
        /// The rule file.
        rule: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The identity of the adapter called `iface` cannot be read.
    #[error(
        "cannot check that {iface} is the adapter enabled as {iface} (rule {}): {cause}; \
         nothing was changed",
        rule.display()
    )]
    Unknown {
        /// The interface name.
        iface: String,
        /// The rule file.
        rule: PathBuf,
        /// Why it cannot be read.
        cause: ReadError,
    },
}

/// Check that the adapter now called `iface` is the one `wifi-isolate enable iface` recorded, on
/// the real host ([`Adapters::system`]). See [`check_identity_with`].
pub fn check_identity(
    rules_dir: &Path,
    iface: &IfaceName,
) -> Result<Option<Identity>, IdentityMismatch> {
    check_identity_with(rules_dir, iface, &Adapters::system())
}

/// Check that the adapter now called `iface` is the one the rule in `rules_dir` names.
///
/// `Ok(None)`: `iface` has no rule (not enabled), nothing to compare. `Ok(Some(id))`: it matches.
/// The comparison is the one udev makes: a bus-path rule against the adapter's `ID_PATH`, a
/// MAC rule against its permanent MAC (udev is asked only for a bus-path rule). Reads only.
pub fn check_identity_with(
    rules_dir: &Path,
    iface: &IfaceName,
    adapters: &Adapters<'_>,
) -> Result<Option<Identity>, IdentityMismatch> {
    let rule = rule_file(rules_dir, iface);
    let text = match std::fs::read_to_string(&rule) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(cause) => {
            return Err(IdentityMismatch::Unreadable {
                iface: iface.to_string(),
                rule,
                cause,
            });
        }
    };
    let recorded = parse_rule(&text).map_err(|why| IdentityMismatch::Foreign {
        iface: iface.to_string(),
        rule: rule.clone(),
        why,
    })?;
    let unknown = |rule: &Path, cause| IdentityMismatch::Unknown {
        iface: iface.to_string(),
        rule: rule.to_owned(),
        cause,
    };
    let dev = adapters.dev(iface).map_err(|e| unknown(&rule, e))?;
    let current = match &recorded {
        Identity::BusPath(_) => match adapters
            .bus_path_of(iface, &dev)
            .map_err(|e| unknown(&rule, e))?
        {
            Some(id) => id,
            None => adapters
                .mac_of(iface, &dev)
                .map_err(|e| unknown(&rule, e))?,
        },
        Identity::PermanentMac(_) => adapters
            .mac_of(iface, &dev)
            .map_err(|e| unknown(&rule, e))?,
    };
    if current == recorded {
        Ok(Some(current))
    } else {
        Err(IdentityMismatch::Differs {
            iface: iface.to_string(),
            rule,
            recorded,
            current,
        })
    }
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

    /// A fake `/sys/class/net` with one wireless interface.
    fn sysfs(iface: &str, mac: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let phy = dir.path().join(iface).join("phy80211");
        std::fs::create_dir_all(&phy).unwrap();
        std::fs::write(phy.join("macaddress"), format!("{mac}\n")).unwrap();
        dir
    }

    fn no_udev(_: &Path) -> Result<Option<String>, String> {
        panic!("udev must not be asked for a MAC rule")
    }

    fn enable_with(rules: &Path, iface: &IfaceName, id: &Identity) {
        std::fs::write(rule_file(rules, iface), rule_text(iface, id)).unwrap();
    }

    #[test]
    fn a_rule_reads_back_the_identity_it_was_written_for() {
        let iface = IfaceName::parse("wlan1").unwrap();
        for id in [
            Identity::BusPath("pci-0000:00:14.0-usb-0:2:1.0".into()),
            Identity::PermanentMac("02:00:00:00:0a:00".into()),
        ] {
            assert_eq!(parse_rule(&rule_text(&iface, &id)).unwrap(), id);
        }
    }

    #[test]
    fn a_foreign_or_edited_rule_is_refused() {
        let written = rule_text(
            &IfaceName::parse("wlan1").unwrap(),
            &Identity::BusPath("pci-0000:06:00.0".into()),
        );
        for (text, needle) in [
            ("# only comments\n".to_owned(), "holds 0 rules"),
            (format!("{written}{written}"), "holds 2 rules"),
            (
                "SUBSYSTEM==\"net\", ENV{WIFI_ISOLATE}=\"1\"\n".to_owned(),
                "matches neither",
            ),
            (
                written.replace("pci-0000:06:00.0", "pci-*"),
                "cannot match literally",
            ),
            (written.replace("ACTION!=\"remove\", ", ""), "not the one"),
            (
                written.replace(
                    ", ENV{WIFI",
                    ", ATTR{phy80211/macaddress}==\"02:00:00:00:0a:00\", ENV{WIFI",
                ),
                "matches both",
            ),
        ] {
            let e = parse_rule(&text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn without_a_rule_there_is_nothing_to_compare() {
        let rules = tempfile::tempdir().unwrap();
        let sys = sysfs("wlan1", "02:00:00:00:01:00");
        let a = Adapters {
            sys_class_net: sys.path(),
            id_path: &no_udev,
        };
        let iface = IfaceName::parse("wlan1").unwrap();
        assert!(
            check_identity_with(rules.path(), &iface, &a)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_enabled_adapter_passes_and_another_one_under_its_name_is_refused() {
        let rules = tempfile::tempdir().unwrap();
        let iface = IfaceName::parse("wlan1").unwrap();
        let sys = sysfs("wlan1", "02:00:00:00:01:00");
        let bus = |p: &'static str| {
            move |dev: &Path| {
                assert!(dev.ends_with("wlan1"), "{}", dev.display());
                Ok(Some(p.to_owned()))
            }
        };
        let here = bus("pci-0000:06:00.0");
        let a = Adapters {
            sys_class_net: sys.path(),
            id_path: &here,
        };
        // enable reads the identity the same way.
        let id = current_identity(&a, &iface).unwrap();
        assert_eq!(id, Identity::BusPath("pci-0000:06:00.0".into()));
        enable_with(rules.path(), &iface, &id);
        assert_eq!(
            check_identity_with(rules.path(), &iface, &a).unwrap(),
            Some(id)
        );

        let other = bus("pci-0000:07:00.0");
        let a = Adapters {
            sys_class_net: sys.path(),
            id_path: &other,
        };
        let e = check_identity_with(rules.path(), &iface, &a).unwrap_err();
        assert!(matches!(e, IdentityMismatch::Differs { .. }), "{e:?}");
        let rule = rule_file(rules.path(), &iface);
        assert_eq!(
            e.to_string(),
            format!(
                "wlan1 is not the adapter enabled as wlan1: the rule {} names bus path \
                 pci-0000:06:00.0, this one is bus path pci-0000:07:00.0 (renamed or probed in another \
                 order?); nothing was changed. Re-run `wifi-isolate enable wlan1` if this is the \
                 adapter you want isolated",
                rule.display()
            )
        );

        // A virtual radio without a bus path now under the name: compared by what it has.
        let none = |_: &Path| Ok(None);
        let a = Adapters {
            sys_class_net: sys.path(),
            id_path: &none,
        };
        let e = check_identity_with(rules.path(), &iface, &a).unwrap_err();
        assert!(
            e.to_string()
                .contains("this one is permanent MAC 02:00:00:00:01:00"),
            "{e}"
        );
    }

    #[test]
    fn a_mac_rule_compares_the_permanent_mac_only() {
        let rules = tempfile::tempdir().unwrap();
        let iface = IfaceName::parse("wlan0").unwrap();
        let sys = sysfs("wlan0", "02:00:00:00:0A:00");
        let a = Adapters {
            sys_class_net: sys.path(),
            id_path: &no_udev,
        };
        enable_with(
            rules.path(),
            &iface,
            &Identity::PermanentMac("02:00:00:00:0a:00".into()),
        );
        assert_eq!(
            check_identity_with(rules.path(), &iface, &a).unwrap(),
            Some(Identity::PermanentMac("02:00:00:00:0a:00".into()))
        );
        let sys2 = sysfs("wlan0", "02:00:00:00:0b:00");
        let a = Adapters {
            sys_class_net: sys2.path(),
            id_path: &no_udev,
        };
        let e = check_identity_with(rules.path(), &iface, &a).unwrap_err();
        assert!(
            e.to_string().contains(
                "names permanent MAC 02:00:00:00:0a:00, this one is permanent MAC 02:00:00:00:0b:00"
            ),
            "{e}"
        );
    }

    #[test]
    fn what_cannot_be_checked_is_a_clear_refusal() {
        let rules = tempfile::tempdir().unwrap();
        let iface = IfaceName::parse("wlan1").unwrap();
        let sys = sysfs("wlan1", "02:00:00:00:01:00");
        let a = Adapters {
            sys_class_net: sys.path(),
            id_path: &no_udev,
        };
        // Foreign rule.
        std::fs::write(
            rule_file(rules.path(), &iface),
            "KERNEL==\"wlan1\", ENV{WIFI_ISOLATE}=\"1\"\n",
        )
        .unwrap();
        let e = check_identity_with(rules.path(), &iface, &a).unwrap_err();
        assert!(matches!(e, IdentityMismatch::Foreign { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("not a rule written by `wifi-isolate enable`"),
            "{e}"
        );
        // Unreadable rule (a directory in its place reads as an error, also as root).
        std::fs::remove_file(rule_file(rules.path(), &iface)).unwrap();
        std::fs::create_dir(rule_file(rules.path(), &iface)).unwrap();
        let e = check_identity_with(rules.path(), &iface, &a).unwrap_err();
        assert!(matches!(e, IdentityMismatch::Unreadable { .. }), "{e:?}");
        std::fs::remove_dir(rule_file(rules.path(), &iface)).unwrap();
        // The interface is not in the host, not wireless, or udev fails.
        enable_with(
            rules.path(),
            &iface,
            &Identity::BusPath("pci-0000:06:00.0".into()),
        );
        let empty = tempfile::tempdir().unwrap();
        let gone = Adapters {
            sys_class_net: empty.path(),
            id_path: &no_udev,
        };
        let e = check_identity_with(rules.path(), &iface, &gone).unwrap_err();
        assert!(
            matches!(
                e,
                IdentityMismatch::Unknown {
                    cause: ReadError::NotInHost { .. },
                    ..
                }
            ),
            "{e:?}"
        );
        std::fs::create_dir(empty.path().join("wlan1")).unwrap();
        let e = check_identity_with(rules.path(), &iface, &gone).unwrap_err();
        assert!(
            matches!(
                e,
                IdentityMismatch::Unknown {
                    cause: ReadError::NotWireless { .. },
                    ..
                }
            ),
            "{e:?}"
        );
        let broken = |_: &Path| Err("udevadm not found".to_owned());
        let a = Adapters {
            sys_class_net: sys.path(),
            id_path: &broken,
        };
        let e = check_identity_with(rules.path(), &iface, &a).unwrap_err();
        assert!(
            e.to_string()
                .contains("udevadm not found; nothing was changed"),
            "{e}"
        );
    }
}
