//! Saved networks: root-only profiles on the host, so a password never passes through the AI
//! model. `wifi-isolate network add` writes them, the `run` daemon copies the ones an adapter
//! may use into its box, and `wifi_connect {network: NAME}` reads the copy there.
//!
//! ```text
//! /etc/wifi-isolate/networks/          root 0700 (WIFI_ISOLATE_NETWORKS_DIR overrides it)
//!   office.toml                        root 0600: anything else is refused, with the chmod
//! /run/wifi-isolate/box/IFACE/networks/ root 0755, made fresh at each box start
//!   office.toml                        0600, owned by the box's uid (netns) or root (podman,
//!                                      docker: the box's root is root): the box alone reads it
//! ```
//!
//! A profile (`NAME`: 1-32 of `[a-z0-9_-]`, starting with a letter or digit):
//!
//! ```toml
//! ssid = "Office"
//! security = "wpa2-psk"        # open | wpa2-psk | wpa3-sae | wpa2-psk/wpa3-sae | eap
//! psk = "correct horse"        # wpa2-psk, wpa2-psk/wpa3-sae: 8-63 characters (or 64 hex)
//! #sae_password = "…"          # wpa3-sae
//! hidden = false
//! #bssid = "02:00:00:00:01:00"
//! mac_address = "permanent"    # permanent | random | per-network (not for eap)
//! #interfaces = ["wlp6s0"]     # only these adapters' boxes get it (default: every adapter)
//!
//! [eap]                        # security = "eap" only
//! method = "peap"              # peap | ttls (identity + password) | tls (client cert + key)
//! identity = "alice"
//! #anonymous_identity = "anonymous"
//! password = "…"
//! #ca_cert = "/etc/wifi-isolate/networks/corp-ca.pem"   # PEM text, or a root-owned file
//! #client_cert, private_key (0600 root), private_key_password, domain_suffix_match
//! ```
//!
//! Every value is checked by the same typed constructors the tools use ([`crate::validate`]);
//! unknown keys are refused. Certificate and key paths are host paths: the daemon reads them and
//! puts their PEM text in the box's copy, so the box needs no host file.
//!
//! systemd credentials named `wifi-isolate.network.NAME` (same format; `LoadCredential=` or
//! `SetCredentialEncrypted=` in a drop-in for `wifi-isolate@.service`) are profiles too, for the
//! daemon only (a credential wins over a file of the same name; `network list` does not see them).
//!
//! **When the box sees a change:** at every box start, and at once when `network add` or
//! `network remove` runs while boxes run (it rewrites every running box's copy). The agent reads
//! the copy at each call, so nothing needs a restart.

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, fchmod, fstat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use serde::{Deserialize, Serialize};

use crate::agent::tools::{EapKind, MacMode};
use crate::validate::{
    Bssid, EapIdentity, EapPassword, FilePath, Hostname, IfaceName, Passphrase, SaePassword, Ssid,
};

/// The profiles' directory on the host.
pub const DEFAULT_DIR: &str = "/etc/wifi-isolate/networks";
/// Environment variable that moves the profiles' directory (tests, a second installation).
pub const DIR_ENV: &str = "WIFI_ISOLATE_NETWORKS_DIR";
/// systemd credentials named `wifi-isolate.network.NAME` (`LoadCredential=` /
/// `SetCredentialEncrypted=` in a drop-in of `wifi-isolate@.service`) are profiles too, read from
/// `$CREDENTIALS_DIRECTORY` by the daemon; a credential wins over a file of the same name.
pub const CREDENTIAL_PREFIX: &str = "wifi-isolate.network.";
/// The box's copy: this directory under the box's runtime dir (`/run/wifi-isolate/networks` in
/// the box).
pub const BOX_SUBDIR: &str = "networks";

/// The host's profiles directory: `$WIFI_ISOLATE_NETWORKS_DIR`, else [`DEFAULT_DIR`].
pub fn host_dir() -> PathBuf {
    std::env::var_os(DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_DIR.into())
}

/// Why a profile was refused. The text never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The name is not a profile name.
    #[error(
        "invalid network name {0:?}: use 1 to 32 of a-z, 0-9, '_' and '-', starting with a letter or digit"
    )]
    Name(String),
    /// No such profile.
    #[error(
        "no saved network {name:?} in {dir}; add it with `wifi-isolate network add {name} --ssid SSID --security MODE`"
    )]
    NotFound {
        /// The name asked for.
        name: String,
        /// The profiles' directory.
        dir: String,
    },
    /// A file or directory with permissions that would expose a secret.
    #[error("{0}")]
    Permissions(String),
    /// Not valid TOML, an unknown key, or a value refused.
    #[error("{path}: {message}")]
    Invalid {
        /// The file (or the profile's name).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The profile exists already.
    #[error("saved network {0:?} exists; pass --replace to overwrite it, or remove it first")]
    Exists(String),
    /// A read or write failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ProfileError + '_ {
    move |source| ProfileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A profile's name: 1-32 of `[a-z0-9_-]`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

impl Name {
    /// Check a name.
    pub fn parse(s: &str) -> Result<Self, ProfileError> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            && s.as_bytes()[0].is_ascii_alphanumeric();
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(ProfileError::Name(crate::validate::shorten(s)))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn file_name(&self) -> String {
        format!("{}.toml", self.0)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A profile's security, named as `wifi_scan` names what access points offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Security {
    /// No encryption.
    #[serde(rename = "open")]
    Open,
    /// WPA2 personal (`psk`).
    #[serde(rename = "wpa2-psk")]
    Wpa2Psk,
    /// WPA3 personal (`sae_password`), management frame protection required.
    #[serde(rename = "wpa3-sae")]
    Wpa3Sae,
    /// WPA2/WPA3 transition: one passphrase (`psk`), whichever the access point offers.
    #[serde(rename = "wpa2-psk/wpa3-sae")]
    Transition,
    /// WPA2/WPA3-Enterprise (`[eap]`).
    #[serde(rename = "eap")]
    Eap,
}

impl Security {
    /// Every value, as written in a profile.
    pub const ALL: [Security; 5] = [
        Security::Open,
        Security::Wpa2Psk,
        Security::Wpa3Sae,
        Security::Transition,
        Security::Eap,
    ];

    /// As written in a profile.
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Open => "open",
            Security::Wpa2Psk => "wpa2-psk",
            Security::Wpa3Sae => "wpa3-sae",
            Security::Transition => "wpa2-psk/wpa3-sae",
            Security::Eap => "eap",
        }
    }
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Security {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Security::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown security {s:?}: use open, wpa2-psk, wpa3-sae, wpa2-psk/wpa3-sae or eap"
                )
            })
    }
}

/// The `[eap]` table of a profile.
// No Debug: it holds a password and maybe a key.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EapProfile {
    /// peap, ttls or tls.
    pub method: EapKind,
    /// The user identity.
    pub identity: String,
    /// Outer identity (PEAP/TTLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_identity: Option<String>,
    /// The password (PEAP/TTLS).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "secret"
    )]
    pub password: Option<String>,
    /// CA certificate: PEM text or a root-owned file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
    /// Client certificate (TLS): PEM text or a root-owned file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// Client private key (TLS): PEM text or a root-only (0600) file.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "secret"
    )]
    pub private_key: Option<String>,
    /// The private key's password, if it is encrypted.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "secret"
    )]
    pub private_key_password: Option<String>,
    /// Accept only a server certificate for this domain (or a subdomain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_suffix_match: Option<String>,
}

/// One saved network (the file's contents). Build it with [`Profile::parse`] or check it with
/// [`Profile::validate`] before use.
// No Debug: it holds secrets.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The SSID, 1-32 bytes.
    pub ssid: String,
    /// The security.
    pub security: Security,
    /// WPA passphrase (wpa2-psk, wpa2-psk/wpa3-sae).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "secret"
    )]
    pub psk: Option<String>,
    /// WPA3 password (wpa3-sae).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "secret"
    )]
    pub sae_password: Option<String>,
    /// The network does not broadcast its SSID.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// Connect only to this access point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bssid: Option<String>,
    /// The MAC to present: permanent, random or per-network.
    #[serde(default, skip_serializing_if = "is_permanent")]
    pub mac_address: MacMode,
    /// Only the boxes of these adapters (instance names) get the profile; empty: every one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
    /// Enterprise credentials (security = eap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eap: Option<EapProfile>,
}

impl fmt::Debug for Profile {
    /// The SSID, the security and which secrets are set; never a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("ssid", &self.ssid)
            .field("security", &self.security)
            .field("secrets_set", &self.secrets_set())
            .finish_non_exhaustive()
    }
}

/// A secret key: a string, or an error that does not quote the value (serde's would).
fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<crate::agent::tools::SecretArg>::deserialize(d)
        .map(|s| s.map(|s| s.expose().to_owned()))
}

fn is_permanent(m: &MacMode) -> bool {
    *m == MacMode::Permanent
}

fn is_pem(s: &str) -> bool {
    s.trim_start().starts_with("-----BEGIN")
}

impl Profile {
    /// Parse and validate a profile's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ProfileError> {
        let p: Profile = toml::from_str(text).map_err(|e| ProfileError::Invalid {
            path: origin.to_string(),
            // The message only: toml's Display quotes the offending line, which may be a secret.
            message: e.message().to_string(),
        })?;
        p.validate().map_err(|message| ProfileError::Invalid {
            path: origin.to_string(),
            message,
        })?;
        Ok(p)
    }

    /// Check every value with the typed constructors the tools use. The error names the key.
    pub fn validate(&self) -> Result<(), String> {
        fn at<E: fmt::Display>(key: &'static str) -> impl FnOnce(E) -> String {
            move |e| format!("{key}: {e}")
        }
        Ssid::parse(&self.ssid).map_err(at("ssid"))?;
        if let Some(b) = &self.bssid {
            Bssid::parse(b).map_err(at("bssid"))?;
        }
        for i in &self.interfaces {
            IfaceName::parse(i).map_err(at("interfaces"))?;
        }
        let only = |allowed: &[&str]| -> Result<(), String> {
            for (key, set) in [
                ("psk", self.psk.is_some()),
                ("sae_password", self.sae_password.is_some()),
                ("[eap]", self.eap.is_some()),
            ] {
                if set && !allowed.contains(&key) {
                    return Err(format!(
                        "security {} takes no {key}{}",
                        self.security,
                        match self.security {
                            Security::Wpa3Sae => " (its password is sae_password)",
                            Security::Wpa2Psk | Security::Transition => " (its passphrase is psk)",
                            _ => "",
                        }
                    ));
                }
            }
            Ok(())
        };
        let need = |key: &str| format!("security {} needs {key}", self.security);
        match self.security {
            Security::Open => only(&[])?,
            Security::Wpa2Psk => {
                only(&["psk"])?;
                Passphrase::parse(self.psk.as_deref().ok_or_else(|| need("psk"))?)
                    .map_err(at("psk"))?;
            }
            Security::Transition => {
                only(&["psk"])?;
                let p = self.psk.as_deref().ok_or_else(|| need("psk"))?;
                if Passphrase::parse(p).map_err(at("psk"))?.is_raw_psk() {
                    return Err(
                        "psk: WPA3 (SAE) has no raw-PSK form: give the passphrase, or use security wpa2-psk"
                            .into(),
                    );
                }
                SaePassword::parse(p).map_err(at("psk"))?;
            }
            Security::Wpa3Sae => {
                only(&["sae_password"])?;
                SaePassword::parse(
                    self.sae_password
                        .as_deref()
                        .ok_or_else(|| need("sae_password"))?,
                )
                .map_err(at("sae_password"))?;
            }
            Security::Eap => {
                only(&["[eap]"])?;
                if self.mac_address != MacMode::Permanent {
                    return Err("mac_address: only permanent is supported for eap".into());
                }
                self.eap
                    .as_ref()
                    .ok_or_else(|| need("an [eap] table"))?
                    .validate()?;
            }
        }
        Ok(())
    }

    /// The secret keys that are set (for `show`: `psk: set`), never their values.
    pub fn secrets_set(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.psk.is_some() {
            v.push("psk");
        }
        if self.sae_password.is_some() {
            v.push("sae_password");
        }
        if let Some(e) = &self.eap {
            if e.password.is_some() {
                v.push("eap.password");
            }
            if e.private_key.as_deref().is_some_and(is_pem) {
                v.push("eap.private_key");
            }
            if e.private_key_password.is_some() {
                v.push("eap.private_key_password");
            }
        }
        v
    }

    /// Whether the box of `instance` gets this profile.
    pub fn applies_to(&self, instance: &str) -> bool {
        self.interfaces.is_empty() || self.interfaces.iter().any(|i| i == instance)
    }

    /// The certificate and key values that are host paths (not PEM text), by key.
    fn cert_paths(&self) -> Vec<(&'static str, &str)> {
        let Some(e) = &self.eap else { return vec![] };
        [
            ("eap.ca_cert", &e.ca_cert),
            ("eap.client_cert", &e.client_cert),
            ("eap.private_key", &e.private_key),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !is_pem(v)).map(|v| (k, v)))
        .collect()
    }

    /// Check that every certificate path is a root-owned regular file that no one else may
    /// write (the key: that no one else may read either).
    pub fn check_cert_files(&self) -> Result<(), ProfileError> {
        for (key, path) in self.cert_paths() {
            let p = Path::new(path);
            let f = open_nofollow(p)?;
            check_private(p, &f, key == "eap.private_key")?;
        }
        Ok(())
    }

    /// This profile as the box receives it: certificate and key paths replaced by the files'
    /// PEM text (the box cannot read host files), `interfaces` dropped.
    pub fn for_box(&self) -> Result<Vec<u8>, ProfileError> {
        let mut p = self.clone();
        p.interfaces.clear();
        if let Some(e) = &mut p.eap {
            for (key, slot) in [
                ("eap.ca_cert", &mut e.ca_cert),
                ("eap.client_cert", &mut e.client_cert),
                ("eap.private_key", &mut e.private_key),
            ] {
                if let Some(path) = slot.as_deref().filter(|v| !is_pem(v)) {
                    let path = PathBuf::from(path);
                    let mut f = open_nofollow(&path)?;
                    check_private(&path, &f, key == "eap.private_key")?;
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut f, &mut text).map_err(io_err(&path))?;
                    if !is_pem(&text) {
                        return Err(ProfileError::Invalid {
                            path: path.display().to_string(),
                            message: format!("{key}: not a PEM file (no -----BEGIN line)"),
                        });
                    }
                    *slot = Some(text);
                }
            }
        }
        toml::to_string(&p)
            .map(String::into_bytes)
            .map_err(|e| ProfileError::Invalid {
                path: "box copy".into(),
                message: e.to_string(),
            })
    }
}

impl EapProfile {
    fn validate(&self) -> Result<(), String> {
        EapIdentity::parse(&self.identity).map_err(|e| format!("eap.identity: {e}"))?;
        match self.method {
            EapKind::Peap | EapKind::Ttls => {
                let pw = self
                    .password
                    .as_deref()
                    .ok_or("eap.password: PEAP and TTLS need a password")?;
                EapPassword::parse(pw).map_err(|e| format!("eap.password: {e}"))?;
                if let Some(a) = &self.anonymous_identity {
                    EapIdentity::parse_anonymous(a)
                        .map_err(|e| format!("eap.anonymous_identity: {e}"))?;
                }
                for (k, set) in [
                    ("client_cert", self.client_cert.is_some()),
                    ("private_key", self.private_key.is_some()),
                    ("private_key_password", self.private_key_password.is_some()),
                ] {
                    if set {
                        return Err(format!("eap.{k}: only for method tls"));
                    }
                }
            }
            EapKind::Tls => {
                if self.password.is_some() || self.anonymous_identity.is_some() {
                    return Err(
                        "eap: method tls takes client_cert, private_key and private_key_password, not password or anonymous_identity"
                            .into(),
                    );
                }
                if self.client_cert.is_none() {
                    return Err("eap.client_cert: EAP-TLS needs a client certificate".into());
                }
                if self.private_key.is_none() {
                    return Err("eap.private_key: EAP-TLS needs a private key".into());
                }
                if let Some(p) = &self.private_key_password {
                    EapPassword::parse_key_password(p)
                        .map_err(|e| format!("eap.private_key_password: {e}"))?;
                }
            }
        }
        for (k, v) in [
            ("ca_cert", &self.ca_cert),
            ("client_cert", &self.client_cert),
            ("private_key", &self.private_key),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !is_pem(v)) {
                FilePath::parse(v).map_err(|e| {
                    format!("eap.{k}: give PEM text (-----BEGIN …) or an absolute path: {e}")
                })?;
            }
        }
        if let Some(d) = &self.domain_suffix_match {
            Hostname::parse(d).map_err(|e| format!("eap.domain_suffix_match: {e}"))?;
        }
        Ok(())
    }
}

fn open_nofollow(p: &Path) -> Result<std::fs::File, ProfileError> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => ProfileError::Permissions(format!(
                "{} is a symbolic link: give the file itself",
                p.display()
            )),
            _ => io_err(p)(source),
        })
}

/// A regular file owned by root, writable by root alone; `secret`: readable by root alone too.
fn check_private(p: &Path, f: &std::fs::File, secret: bool) -> Result<(), ProfileError> {
    let md = f.metadata().map_err(io_err(p))?;
    let d = p.display();
    if !md.is_file() {
        return Err(ProfileError::Permissions(format!(
            "{d} is not a regular file"
        )));
    }
    if md.uid() != 0 {
        return Err(ProfileError::Permissions(format!(
            "{d} is owned by uid {}, not root: chown root:root {d}",
            md.uid()
        )));
    }
    let mask = if secret { 0o077 } else { 0o022 };
    if md.mode() & mask != 0 {
        return Err(ProfileError::Permissions(format!(
            "{d} has mode {:04o}: {} — chmod {} {d}",
            md.mode() & 0o7777,
            if secret {
                "a secret must be readable by root alone"
            } else {
                "only root may write it"
            },
            if secret { "600" } else { "644" },
        )));
    }
    Ok(())
}

/// A profile's name and what reading it gave.
pub type Loaded = (Name, Result<Profile, ProfileError>);

/// The host's profiles: one root-only TOML file per name (and, for the daemon, systemd
/// credentials).
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    credentials: Option<PathBuf>,
}

impl Store {
    /// The profiles in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            credentials: None,
        }
    }

    /// Also the credentials `wifi-isolate.network.NAME` in `dir` (`$CREDENTIALS_DIRECTORY`).
    pub fn with_credentials(mut self, dir: Option<PathBuf>) -> Self {
        self.credentials = dir;
        self
    }

    /// The profiles given as systemd credentials, sorted by name. systemd makes them root's
    /// and 0400; the same permission rule applies.
    fn credential_profiles(&self) -> Vec<Loaded> {
        let Some(dir) = &self.credentials else {
            return vec![];
        };
        let mut v: Vec<Loaded> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().into_string().ok()?;
                let name = Name::parse(n.strip_prefix(CREDENTIAL_PREFIX)?).ok()?;
                let path = e.path();
                let p = open_nofollow(&path).and_then(|mut f| {
                    check_private(&path, &f, true)?;
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut f, &mut text).map_err(io_err(&path))?;
                    Profile::parse(&text, &format!("credential {n}"))
                });
                Some((name, p))
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `name`.
    pub fn path(&self, name: &Name) -> PathBuf {
        self.dir.join(name.file_name())
    }

    fn check_dir(&self) -> Result<bool, ProfileError> {
        let md = match std::fs::symlink_metadata(&self.dir) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let d = self.dir.display();
        if !md.is_dir() {
            return Err(ProfileError::Permissions(format!("{d} is not a directory")));
        }
        if md.uid() != 0 {
            return Err(ProfileError::Permissions(format!(
                "{d} is owned by uid {}, not root: chown root:root {d}",
                md.uid()
            )));
        }
        if md.mode() & 0o077 != 0 {
            return Err(ProfileError::Permissions(format!(
                "{d} has mode {:04o}: saved networks hold secrets — chmod 700 {d}",
                md.mode() & 0o7777
            )));
        }
        Ok(true)
    }

    /// Read and validate the profile `name`: refused when the file is not root's 0600.
    pub fn load(&self, name: &Name) -> Result<Profile, ProfileError> {
        if !self.check_dir()? {
            return Err(self.not_found(name));
        }
        let path = self.path(name);
        let mut f = match open_nofollow(&path) {
            Err(ProfileError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Err(self.not_found(name));
            }
            r => r?,
        };
        check_private(&path, &f, true)?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut f, &mut text).map_err(io_err(&path))?;
        Profile::parse(&text, &path.display().to_string())
    }

    fn not_found(&self, name: &Name) -> ProfileError {
        ProfileError::NotFound {
            name: name.to_string(),
            dir: self.dir.display().to_string(),
        }
    }

    /// The profile names, sorted (files `NAME.toml` with a valid name; others are ignored).
    pub fn names(&self) -> Result<Vec<Name>, ProfileError> {
        if !self.check_dir()? {
            return Ok(vec![]);
        }
        let mut v: Vec<Name> = std::fs::read_dir(&self.dir)
            .map_err(io_err(&self.dir))?
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().into_string().ok()?;
                Name::parse(n.strip_suffix(".toml")?).ok()
            })
            .collect();
        v.sort();
        Ok(v)
    }

    /// Every profile with its outcome, sorted by name.
    pub fn list(&self) -> Result<Vec<Loaded>, ProfileError> {
        Ok(self
            .names()?
            .into_iter()
            .map(|n| {
                let p = self.load(&n);
                (n, p)
            })
            .collect())
    }

    /// Validate `p` (certificate files included) and write it as root's 0600, atomically. The
    /// directory is made (0700) if missing. `replace`: overwrite an existing profile.
    pub fn save(&self, name: &Name, p: &Profile, replace: bool) -> Result<PathBuf, ProfileError> {
        p.validate().map_err(|message| ProfileError::Invalid {
            path: name.to_string(),
            message,
        })?;
        p.check_cert_files()?;
        let text = toml::to_string(p).map_err(|e| ProfileError::Invalid {
            path: name.to_string(),
            message: e.to_string(),
        })?;
        if !self.check_dir()? {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(io_err(&self.dir))?;
            self.check_dir()?;
        }
        let path = self.path(name);
        if !replace && std::fs::symlink_metadata(&path).is_ok() {
            return Err(ProfileError::Exists(name.to_string()));
        }
        crate::host::files::write_atomic_private(&path, text.as_bytes()).map_err(io_err(&path))?;
        Ok(path)
    }

    /// Remove the profile `name`.
    pub fn remove(&self, name: &Name) -> Result<PathBuf, ProfileError> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(self.not_found(name)),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// The box copies for `instance`: every readable profile that applies to it, as
    /// [`Profile::for_box`] makes them. Profiles that cannot be read are returned as errors
    /// (the caller logs them), not copied.
    #[allow(clippy::type_complexity)]
    pub fn for_box(
        &self,
        instance: &str,
    ) -> Result<(Vec<(Name, Vec<u8>)>, Vec<ProfileError>), ProfileError> {
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        let creds = self.credential_profiles();
        let taken: Vec<Name> = creds.iter().map(|(n, _)| n.clone()).collect();
        let files = self.list()?.into_iter().filter(|(n, _)| !taken.contains(n));
        for (name, p) in creds.into_iter().chain(files) {
            match p.and_then(|p| {
                if p.applies_to(instance) {
                    p.for_box().map(Some)
                } else {
                    Ok(None)
                }
            }) {
                Ok(Some(bytes)) => ok.push((name, bytes)),
                Ok(None) => {}
                Err(e) => bad.push(e),
            }
        }
        Ok((ok, bad))
    }
}

/// Write the box copies `files` into `<box_dir>/networks` (made root 0755 if missing), each
/// 0600 owned by `owner` (the uid the box's root is), and remove copies not in `files`.
///
/// The box may own `box_dir` and rename or replace anything in it: the directory is opened
/// without following links and must be root's, every file is created fresh (`O_EXCL`,
/// `O_NOFOLLOW`) under a temporary name and renamed into place inside that directory.
pub fn install_in_box(
    box_dir: &Path,
    owner: u32,
    files: &[(Name, Vec<u8>)],
) -> std::io::Result<()> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let parent: OwnedFd = openat(nix::fcntl::AT_FDCWD, box_dir, flags, Mode::empty())?;
    match mkdirat(parent.as_fd(), BOX_SUBDIR, Mode::from_bits_truncate(0o755)) {
        Ok(()) => {}
        Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let dir: OwnedFd = openat(parent.as_fd(), BOX_SUBDIR, flags, Mode::empty())?;
    let st = fstat(dir.as_fd())?;
    if st.st_uid != 0 || st.st_mode & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "{}/{BOX_SUBDIR} is not root's own directory (uid {}, mode {:04o}): refusing to write saved networks there",
            box_dir.display(),
            st.st_uid,
            st.st_mode & 0o7777
        )));
    }
    // 0755 whatever the umask (the unit's is 0077): the netns box's uid must enter it.
    fchmod(dir.as_fd(), Mode::from_bits_truncate(0o755))?;
    for (name, bytes) in files {
        crate::host::files::write_owned_in(&dir, name.file_name().as_str(), owner, bytes)?;
    }
    let keep: Vec<String> = files.iter().map(|(n, _)| n.file_name()).collect();
    let listing = std::fs::read_dir(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&dir)
    ))?;
    for e in listing.flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if n.ends_with(".toml") && !keep.iter().any(|k| *k == n) {
            let _ = unlinkat(dir.as_fd(), n.as_ref(), UnlinkatFlags::NoRemoveDir);
        }
    }
    Ok(())
}

/// Rewrite the copies in every running box under `box_root` (`/run/wifi-isolate/box`): after
/// `network add` or `remove`, so a running agent sees the change at its next call. A box's
/// owner is its box dir's owner (the box uid for netns, root for podman/docker). Returns the
/// instances refreshed and the errors met.
pub fn refresh_boxes(store: &Store, box_root: &Path) -> (Vec<String>, Vec<String>) {
    let (mut done, mut errors) = (Vec::new(), Vec::new());
    let Ok(rd) = std::fs::read_dir(box_root) else {
        return (done, errors);
    };
    for e in rd.flatten() {
        let instance = e.file_name().to_string_lossy().into_owned();
        let dir = e.path();
        // Only boxes that got a copy at their start (an older daemon's boxes did not).
        let Ok(md) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if !md.is_dir() || std::fs::symlink_metadata(dir.join(BOX_SUBDIR)).is_err() {
            continue;
        }
        let r = store
            .for_box(&instance)
            .map_err(|e| e.to_string())
            .and_then(|(files, bad)| {
                for b in bad {
                    errors.push(format!("{instance}: {b}"));
                }
                install_in_box(&dir, md.uid(), &files).map_err(|e| e.to_string())
            });
        match r {
            Ok(()) => done.push(instance),
            Err(e) => errors.push(format!("{instance}: {e}")),
        }
    }
    done.sort();
    (done, errors)
}

#[cfg(test)]
mod tests;
