//! Commands and their encoding — the single place that builds control-protocol text.
//!
//! Rules that make injection impossible:
//! - user strings (SSID, SAE/EAP passwords, identities, paths, domains) are sent as **hex**,
//!   which wpa_supplicant's string parser accepts for every string field;
//! - a WPA passphrase is sent quoted, `psk "…"`: it is validated printable ASCII (no newline,
//!   no NUL), the value is the rest of the datagram, and wpa_supplicant takes everything up to
//!   the *last* quote, so a `"` or a space inside is stored verbatim (verified against
//!   wpa_supplicant 2.10);
//! - everything else is a number, a validated [`Bssid`] or a token from a fixed enum.

use std::fmt;

use crate::validate::{
    Bssid, CountryCode, EapIdentity, EapPassword, FilePath, Hostname, Passphrase, SaePassword, Ssid,
};

/// `BSS` field mask used by [`Command::bss_summary`]: id, bssid, freq, beacon_int,
/// capabilities, noise, level, age, flags, ssid, snr, est_throughput — no IEs, so one entry
/// always fits in a reply.
pub const BSS_MASK_SUMMARY: u32 = (1 << 0)
    | (1 << 1)
    | (1 << 2)
    | (1 << 3)
    | (1 << 4)
    | (1 << 6)
    | (1 << 7)
    | (1 << 9)
    | (1 << 11)
    | (1 << 12)
    | (1 << 19)
    | (1 << 20);

/// `BSS` field mask of [`Command::bss_ies`]: id and the raw information elements (hex).
pub const BSS_MASK_IES: u32 = (1 << 0) | (1 << 10);

/// `BSS` field mask for the ANQP answers of an entry: id, bssid and the interworking fields
/// (`anqp_*`, `hs20_*`, hex of each element's payload).
pub const BSS_MASK_ANQP: u32 = (1 << 0) | (1 << 1) | (1 << 15);

/// A key management (AKM) suite for `key_mgmt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyMgmt {
    /// Open or WEP (no WPA).
    None,
    /// WPA/WPA2 personal.
    WpaPsk,
    /// WPA2 personal with SHA-256 (PMF).
    WpaPskSha256,
    /// WPA3 personal.
    Sae,
    /// Fast-transition PSK.
    FtPsk,
    /// Fast-transition SAE.
    FtSae,
    /// WPA/WPA2 enterprise.
    WpaEap,
    /// WPA2/WPA3 enterprise with SHA-256.
    WpaEapSha256,
    /// Fast-transition EAP.
    FtEap,
    /// WPA3 enterprise 192-bit.
    WpaEapSuiteB192,
    /// Opportunistic Wireless Encryption (Enhanced Open).
    Owe,
    /// Wired / dynamic-WEP IEEE 802.1X.
    Ieee8021x,
}

impl KeyMgmt {
    /// The wpa_supplicant token.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyMgmt::None => "NONE",
            KeyMgmt::WpaPsk => "WPA-PSK",
            KeyMgmt::WpaPskSha256 => "WPA-PSK-SHA256",
            KeyMgmt::Sae => "SAE",
            KeyMgmt::FtPsk => "FT-PSK",
            KeyMgmt::FtSae => "FT-SAE",
            KeyMgmt::WpaEap => "WPA-EAP",
            KeyMgmt::WpaEapSha256 => "WPA-EAP-SHA256",
            KeyMgmt::FtEap => "FT-EAP",
            KeyMgmt::WpaEapSuiteB192 => "WPA-EAP-SUITE-B-192",
            KeyMgmt::Owe => "OWE",
            KeyMgmt::Ieee8021x => "IEEE8021X",
        }
    }
}

/// A pairwise or group data cipher for `pairwise` / `group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// AES-CCMP (128-bit), the WPA2 default.
    Ccmp,
    /// AES-GCMP-256, the WPA3-Enterprise 192-bit cipher.
    Gcmp256,
}

impl Cipher {
    /// The wpa_supplicant token.
    pub fn as_str(self) -> &'static str {
        match self {
            Cipher::Ccmp => "CCMP",
            Cipher::Gcmp256 => "GCMP-256",
        }
    }
}

/// A group management (PMF) cipher for `group_mgmt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MgmtCipher {
    /// BIP-CMAC-128, the PMF default.
    BipCmac128,
    /// BIP-GMAC-256, the WPA3-Enterprise 192-bit one.
    BipGmac256,
}

impl MgmtCipher {
    /// The wpa_supplicant token.
    pub fn as_str(self) -> &'static str {
        match self {
            MgmtCipher::BipCmac128 => "AES-128-CMAC",
            MgmtCipher::BipGmac256 => "BIP-GMAC-256",
        }
    }
}

/// The TLS cipher set an EAP method may use (`openssl_ciphers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsCiphers {
    /// OpenSSL's `SUITEB192`: ECDHE-ECDSA-AES256-GCM-SHA384 on P-384 only (WPA3-Enterprise
    /// 192-bit).
    SuiteB192,
}

impl TlsCiphers {
    /// The OpenSSL cipher string.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsCiphers::SuiteB192 => "SUITEB192",
        }
    }
}

/// An outer EAP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EapMethod {
    /// PEAP (usually with MSCHAPv2 inside).
    Peap,
    /// EAP-TTLS.
    Ttls,
    /// EAP-TLS (client certificate).
    Tls,
    /// EAP-PWD.
    Pwd,
}

impl EapMethod {
    /// The wpa_supplicant token.
    pub fn as_str(self) -> &'static str {
        match self {
            EapMethod::Peap => "PEAP",
            EapMethod::Ttls => "TTLS",
            EapMethod::Tls => "TLS",
            EapMethod::Pwd => "PWD",
        }
    }
}

/// The inner (phase 2) authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase2 {
    /// `auth=MSCHAPV2` (PEAP, TTLS).
    Mschapv2,
    /// `auth=GTC` (PEAP).
    Gtc,
    /// `auth=MD5` (PEAP).
    Md5,
    /// `auth=PAP` (TTLS).
    Pap,
    /// `auth=CHAP` (TTLS).
    Chap,
    /// `auth=MSCHAP` (TTLS).
    Mschap,
    /// `autheap=MSCHAPV2` (TTLS with inner EAP).
    EapMschapv2,
    /// `autheap=GTC` (TTLS with inner EAP).
    EapGtc,
}

impl Phase2 {
    /// The phase2 string as wpa_supplicant expects it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase2::Mschapv2 => "auth=MSCHAPV2",
            Phase2::Gtc => "auth=GTC",
            Phase2::Md5 => "auth=MD5",
            Phase2::Pap => "auth=PAP",
            Phase2::Chap => "auth=CHAP",
            Phase2::Mschap => "auth=MSCHAP",
            Phase2::EapMschapv2 => "autheap=MSCHAPV2",
            Phase2::EapGtc => "autheap=GTC",
        }
    }
}

/// A network-block field to set with `SET_NETWORK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkField {
    /// `ssid`, always sent as hex.
    Ssid(Ssid),
    /// `psk`: a raw PSK as 64 bare hex digits, a passphrase quoted.
    Psk(Passphrase),
    /// `sae_password`, as hex.
    SaePassword(SaePassword),
    /// `key_mgmt`: space-separated fixed tokens. An empty list is rejected by wpa_supplicant.
    KeyMgmt(Vec<KeyMgmt>),
    /// `bssid`: lock the network to one AP.
    Bssid(Bssid),
    /// `bssid any`: clear a BSSID lock.
    AnyBssid,
    /// `scan_ssid`: probe for a hidden SSID.
    ScanSsid(bool),
    /// `ieee80211w` (protected management frames): 0 off, 1 optional, 2 required.
    /// wpa_supplicant rejects other values.
    Ieee80211w(u8),
    /// `mac_addr` for this network: 0 permanent address, 1 random per association,
    /// 2 random keeping the OUI. wpa_supplicant rejects other values.
    MacAddr(u8),
    /// `eap`.
    Eap(EapMethod),
    /// `phase2`, as hex.
    Phase2(Phase2),
    /// `identity`, as hex.
    Identity(EapIdentity),
    /// `anonymous_identity`, as hex.
    AnonymousIdentity(EapIdentity),
    /// `password`, as hex.
    Password(EapPassword),
    /// `ca_cert` path, as hex.
    CaCert(FilePath),
    /// `client_cert` path, as hex.
    ClientCert(FilePath),
    /// `private_key` path, as hex.
    PrivateKey(FilePath),
    /// `private_key_passwd`, as hex.
    PrivateKeyPasswd(EapPassword),
    /// `domain_suffix_match`, as hex.
    DomainSuffixMatch(Hostname),
    /// `priority` (higher wins in automatic selection).
    Priority(u16),
    /// `disabled`: `true` keeps the network out of automatic selection.
    Disabled(bool),
    /// `pairwise`: the pairwise ciphers allowed.
    Pairwise(Vec<Cipher>),
    /// `group`: the group ciphers allowed.
    Group(Vec<Cipher>),
    /// `group_mgmt`: the group management cipher.
    GroupMgmt(MgmtCipher),
    /// `openssl_ciphers`: the TLS ciphers the EAP method may use.
    OpensslCiphers(TlsCiphers),
    /// `sae_pk`: 0 automatic (SAE-PK when the AP offers it and the password is an SAE-PK
    /// password), 1 SAE-PK only, 2 never. wpa_supplicant rejects other values.
    SaePk(u8),
}

/// The name of a network-block field, for `GET_NETWORK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkFieldName {
    /// `ssid`.
    Ssid,
    /// `psk` (reads back as `*`).
    Psk,
    /// `sae_password` (reads back as `*`).
    SaePassword,
    /// `key_mgmt`.
    KeyMgmt,
    /// `bssid`.
    Bssid,
    /// `scan_ssid`.
    ScanSsid,
    /// `ieee80211w`.
    Ieee80211w,
    /// `mac_addr`.
    MacAddr,
    /// `eap`.
    Eap,
    /// `phase2`.
    Phase2,
    /// `identity`.
    Identity,
    /// `anonymous_identity`.
    AnonymousIdentity,
    /// `password` (reads back as `*`).
    Password,
    /// `ca_cert`.
    CaCert,
    /// `client_cert`.
    ClientCert,
    /// `private_key`.
    PrivateKey,
    /// `private_key_passwd` (reads back as `*`).
    PrivateKeyPasswd,
    /// `domain_suffix_match`.
    DomainSuffixMatch,
    /// `priority`.
    Priority,
    /// `disabled`.
    Disabled,
    /// `pairwise`.
    Pairwise,
    /// `group`.
    Group,
    /// `group_mgmt`.
    GroupMgmt,
    /// `openssl_ciphers`.
    OpensslCiphers,
    /// `sae_pk`.
    SaePk,
}

impl NetworkFieldName {
    /// The wpa_supplicant field name.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkFieldName::Ssid => "ssid",
            NetworkFieldName::Psk => "psk",
            NetworkFieldName::SaePassword => "sae_password",
            NetworkFieldName::KeyMgmt => "key_mgmt",
            NetworkFieldName::Bssid => "bssid",
            NetworkFieldName::ScanSsid => "scan_ssid",
            NetworkFieldName::Ieee80211w => "ieee80211w",
            NetworkFieldName::MacAddr => "mac_addr",
            NetworkFieldName::Eap => "eap",
            NetworkFieldName::Phase2 => "phase2",
            NetworkFieldName::Identity => "identity",
            NetworkFieldName::AnonymousIdentity => "anonymous_identity",
            NetworkFieldName::Password => "password",
            NetworkFieldName::CaCert => "ca_cert",
            NetworkFieldName::ClientCert => "client_cert",
            NetworkFieldName::PrivateKey => "private_key",
            NetworkFieldName::PrivateKeyPasswd => "private_key_passwd",
            NetworkFieldName::DomainSuffixMatch => "domain_suffix_match",
            NetworkFieldName::Priority => "priority",
            NetworkFieldName::Disabled => "disabled",
            NetworkFieldName::Pairwise => "pairwise",
            NetworkFieldName::Group => "group",
            NetworkFieldName::GroupMgmt => "group_mgmt",
            NetworkFieldName::OpensslCiphers => "openssl_ciphers",
            NetworkFieldName::SaePk => "sae_pk",
        }
    }

    /// Whether the value of this field is a secret.
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            NetworkFieldName::Psk
                | NetworkFieldName::SaePassword
                | NetworkFieldName::Password
                | NetworkFieldName::PrivateKeyPasswd
        )
    }
}

impl NetworkField {
    /// The field's name.
    pub fn name(&self) -> NetworkFieldName {
        match self {
            NetworkField::Ssid(_) => NetworkFieldName::Ssid,
            NetworkField::Psk(_) => NetworkFieldName::Psk,
            NetworkField::SaePassword(_) => NetworkFieldName::SaePassword,
            NetworkField::KeyMgmt(_) => NetworkFieldName::KeyMgmt,
            NetworkField::Bssid(_) | NetworkField::AnyBssid => NetworkFieldName::Bssid,
            NetworkField::ScanSsid(_) => NetworkFieldName::ScanSsid,
            NetworkField::Ieee80211w(_) => NetworkFieldName::Ieee80211w,
            NetworkField::MacAddr(_) => NetworkFieldName::MacAddr,
            NetworkField::Eap(_) => NetworkFieldName::Eap,
            NetworkField::Phase2(_) => NetworkFieldName::Phase2,
            NetworkField::Identity(_) => NetworkFieldName::Identity,
            NetworkField::AnonymousIdentity(_) => NetworkFieldName::AnonymousIdentity,
            NetworkField::Password(_) => NetworkFieldName::Password,
            NetworkField::CaCert(_) => NetworkFieldName::CaCert,
            NetworkField::ClientCert(_) => NetworkFieldName::ClientCert,
            NetworkField::PrivateKey(_) => NetworkFieldName::PrivateKey,
            NetworkField::PrivateKeyPasswd(_) => NetworkFieldName::PrivateKeyPasswd,
            NetworkField::DomainSuffixMatch(_) => NetworkFieldName::DomainSuffixMatch,
            NetworkField::Priority(_) => NetworkFieldName::Priority,
            NetworkField::Disabled(_) => NetworkFieldName::Disabled,
            NetworkField::Pairwise(_) => NetworkFieldName::Pairwise,
            NetworkField::Group(_) => NetworkFieldName::Group,
            NetworkField::GroupMgmt(_) => NetworkFieldName::GroupMgmt,
            NetworkField::OpensslCiphers(_) => NetworkFieldName::OpensslCiphers,
            NetworkField::SaePk(_) => NetworkFieldName::SaePk,
        }
    }

    /// Whether the encoded value carries a secret.
    pub fn is_sensitive(&self) -> bool {
        self.name().is_secret()
    }

    /// The value text as sent after the field name.
    fn encode_value(&self) -> String {
        fn hex_str(text: &str) -> String {
            hex::encode(text.as_bytes())
        }
        match self {
            NetworkField::Ssid(ssid) => ssid.to_hex(),
            NetworkField::Psk(pass) if pass.is_raw_psk() => pass.expose().to_owned(),
            NetworkField::Psk(pass) => format!("\"{}\"", pass.expose()),
            NetworkField::SaePassword(pass) => hex_str(pass.expose()),
            NetworkField::KeyMgmt(list) => list
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            NetworkField::Bssid(bssid) => bssid.to_string(),
            NetworkField::AnyBssid => "any".to_owned(),
            NetworkField::ScanSsid(on) | NetworkField::Disabled(on) => u8::from(*on).to_string(),
            NetworkField::Ieee80211w(value)
            | NetworkField::MacAddr(value)
            | NetworkField::SaePk(value) => value.to_string(),
            NetworkField::Eap(method) => method.as_str().to_owned(),
            NetworkField::Phase2(phase2) => hex_str(phase2.as_str()),
            NetworkField::Identity(id) | NetworkField::AnonymousIdentity(id) => {
                hex_str(id.as_str())
            }
            NetworkField::Password(pass) | NetworkField::PrivateKeyPasswd(pass) => {
                hex_str(pass.expose())
            }
            NetworkField::CaCert(path)
            | NetworkField::ClientCert(path)
            | NetworkField::PrivateKey(path) => hex_str(path.as_str()),
            NetworkField::DomainSuffixMatch(name) => hex_str(name.as_str()),
            NetworkField::Priority(priority) => priority.to_string(),
            NetworkField::Pairwise(list) | NetworkField::Group(list) => list
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            NetworkField::GroupMgmt(c) => c.as_str().to_owned(),
            NetworkField::OpensslCiphers(c) => format!("\"{}\"", c.as_str()),
        }
    }
}

/// A field of a Hotspot 2.0 / Passpoint credential (`SET_CRED`): strings go as hex, like
/// network fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredField {
    /// `realm`: the home realm the credential matches against the ANQP NAI realms.
    Realm(Hostname),
    /// `username` (the inner identity; the outer one is `anonymous@realm`).
    Username(EapIdentity),
    /// `password` (secret).
    Password(EapPassword),
    /// `eap`: the EAP method (TTLS, PEAP, TLS).
    Eap(EapMethod),
    /// `phase2`.
    Phase2(Phase2),
    /// `ca_cert`.
    CaCert(FilePath),
    /// `client_cert` (EAP-TLS).
    ClientCert(FilePath),
    /// `private_key` (EAP-TLS).
    PrivateKey(FilePath),
    /// `private_key_passwd` (secret).
    PrivateKeyPasswd(EapPassword),
    /// `domain`: the home operator's domain (a BSS whose ANQP domain list has it is `home`).
    Domain(Hostname),
    /// `domain_suffix_match`: the server certificate's name must end in this.
    DomainSuffixMatch(Hostname),
    /// `roaming_consortium`: an OI (3-15 bytes), matched against the AP's consortium list.
    RoamingConsortium(Vec<u8>),
}

impl CredField {
    /// The wpa_supplicant field name.
    pub fn name(&self) -> &'static str {
        match self {
            CredField::Realm(_) => "realm",
            CredField::Username(_) => "username",
            CredField::Password(_) => "password",
            CredField::Eap(_) => "eap",
            CredField::Phase2(_) => "phase2",
            CredField::CaCert(_) => "ca_cert",
            CredField::ClientCert(_) => "client_cert",
            CredField::PrivateKey(_) => "private_key",
            CredField::PrivateKeyPasswd(_) => "private_key_passwd",
            CredField::Domain(_) => "domain",
            CredField::DomainSuffixMatch(_) => "domain_suffix_match",
            CredField::RoamingConsortium(_) => "roaming_consortium",
        }
    }

    /// Whether the value is a secret.
    pub fn is_sensitive(&self) -> bool {
        matches!(
            self,
            CredField::Password(_) | CredField::PrivateKeyPasswd(_)
        )
    }

    fn encode_value(&self) -> String {
        let hex_str = |t: &str| hex::encode(t.as_bytes());
        match self {
            CredField::Realm(h) | CredField::Domain(h) | CredField::DomainSuffixMatch(h) => {
                hex_str(h.as_str())
            }
            CredField::Username(id) => hex_str(id.as_str()),
            CredField::Password(p) | CredField::PrivateKeyPasswd(p) => hex_str(p.expose()),
            CredField::Eap(m) => m.as_str().to_owned(),
            CredField::Phase2(p) => hex_str(p.as_str()),
            CredField::CaCert(p) | CredField::ClientCert(p) | CredField::PrivateKey(p) => {
                hex_str(p.as_str())
            }
            // Unquoted hex, as wpa_supplicant's parser for this field wants.
            CredField::RoamingConsortium(oi) => hex::encode(oi),
        }
    }
}

/// Which network(s) a command applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkSel {
    /// One network id.
    Id(u32),
    /// Every configured network (`all`).
    All,
}

impl From<u32> for NetworkSel {
    fn from(id: u32) -> Self {
        NetworkSel::Id(id)
    }
}

impl fmt::Display for NetworkSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkSel::Id(id) => write!(f, "{id}"),
            NetworkSel::All => f.write_str("all"),
        }
    }
}

/// Which entry of the BSS table a `BSS` command returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BssSelector {
    /// The first entry.
    First,
    /// The entry after the one with this id.
    Next(u32),
    /// The entry with this id.
    Id(u32),
    /// The entry with this BSSID.
    Bssid(Bssid),
}

/// A whitelisted global setting for `SET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GlobalSetting {
    /// `mac_addr`: default MAC policy for connections (0 permanent, 1 random, 2 random with
    /// the OUI kept).
    MacAddr(u8),
    /// `preassoc_mac_addr`: MAC policy while scanning (same values).
    PreassocMacAddr(u8),
    /// `rand_addr_lifetime` in seconds.
    RandAddrLifetime(u32),
    /// `country`: note that the regulatory domain is global to the host kernel.
    Country(CountryCode),
}

/// A control-interface command. [`Command::encode`] is the only place that builds command text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `PING` → `PONG`.
    Ping,
    /// `STATUS`.
    Status,
    /// `SCAN` → `OK` / `FAIL-BUSY`.
    Scan,
    /// `BSS <selector> [MASK=<hex>]`; an empty reply means "no such entry".
    Bss {
        /// Which entry.
        selector: BssSelector,
        /// Field mask; `None` = all fields (may overflow the reply with many IEs).
        mask: Option<u32>,
    },
    /// `BSS_FLUSH <age>`: drop BSS entries older than `age` seconds (0 = all unused).
    BssFlush(u32),
    /// `SIGNAL_POLL`.
    SignalPoll,
    /// `ADD_NETWORK` → the new id.
    AddNetwork,
    /// `SET_NETWORK <id> <field> <value>`.
    SetNetwork {
        /// Network id.
        id: u32,
        /// Field and value.
        field: NetworkField,
    },
    /// `GET_NETWORK <id> <field>`.
    GetNetwork {
        /// Network id.
        id: u32,
        /// Field.
        field: NetworkFieldName,
    },
    /// `SELECT_NETWORK <id>`: enable this one, disable all others, connect.
    SelectNetwork(u32),
    /// `ENABLE_NETWORK <id|all>`.
    EnableNetwork(NetworkSel),
    /// `DISABLE_NETWORK <id|all>`.
    DisableNetwork(NetworkSel),
    /// `REMOVE_NETWORK <id|all>`.
    RemoveNetwork(NetworkSel),
    /// `LIST_NETWORKS [LAST_ID=<id>]`.
    ListNetworks {
        /// Continue after this id (for lists longer than one reply).
        last_id: Option<u32>,
    },
    /// `DISCONNECT`.
    Disconnect,
    /// `RECONNECT` (only if disconnected).
    Reconnect,
    /// `REASSOCIATE` (always).
    Reassociate,
    /// `ROAM <bssid>`: move to another BSS of the current network (FT when both sides can).
    Roam(Bssid),
    /// `SET <key> <value>` for a whitelisted key.
    Set(GlobalSetting),
    /// `SAVE_CONFIG` (needs `update_config=1`).
    SaveConfig,
    /// `TERMINATE`: wpa_supplicant exits.
    Terminate,
    /// `ANQP_GET <bssid> <id>,…[,hs20:<subtype>,…]`: ask the AP (GAS) for these ANQP elements;
    /// the answer is the `ANQP-QUERY-DONE` event, then the BSS entry's `anqp_*` fields.
    AnqpGet {
        /// The AP.
        bssid: Bssid,
        /// ANQP info IDs (256-65535).
        ids: Vec<u16>,
        /// Hotspot 2.0 ANQP subtypes (1-255).
        hs20: Vec<u8>,
    },
    /// `ADD_CRED` → the new credential's id.
    AddCred,
    /// `SET_CRED <id> <field> <value>`.
    SetCred {
        /// Credential id.
        id: u32,
        /// Field and value.
        field: CredField,
    },
    /// `REMOVE_CRED <id|all>` (the networks made from it go too, disconnecting if current).
    RemoveCred(NetworkSel),
    /// `INTERWORKING_SELECT [auto]`: scan, fetch ANQP, match the credentials (events
    /// `INTERWORKING-AP` / `INTERWORKING-NO-MATCH`); with `auto`, connect to the best match.
    InterworkingSelect {
        /// Connect to the best match.
        auto: bool,
    },
    /// `LOG_LEVEL DEBUG` (true) or `LOG_LEVEL INFO` (false): what wpa_supplicant prints on
    /// stdout (its monitor sockets are not affected).
    LogLevelDebug(bool),
    /// `GET_CAPABILITY sae`: `H2E`, or `H2E PK` when wpa_supplicant is built with SAE-PK
    /// (an error reply when the driver has no SAE).
    GetCapabilitySae,
    /// `ATTACH`: this socket starts receiving events.
    Attach,
    /// `DETACH`.
    Detach,
}

impl Command {
    /// `BSS <selector> MASK=…` with [`BSS_MASK_SUMMARY`].
    pub fn bss_summary(selector: BssSelector) -> Self {
        Command::Bss {
            selector,
            mask: Some(BSS_MASK_SUMMARY),
        }
    }

    /// `BSS ID-<id> MASK=…`: one entry's id and information elements only (a separate request,
    /// so the summary always fits in a reply).
    pub fn bss_ies(id: u32) -> Self {
        Command::Bss {
            selector: BssSelector::Id(id),
            mask: Some(BSS_MASK_IES),
        }
    }

    /// The exact datagram text.
    pub fn encode(&self) -> String {
        self.render(false)
    }

    /// The command for logs: like [`Command::encode`], with any secret replaced by
    /// `<redacted>`.
    pub fn redacted(&self) -> String {
        self.render(true)
    }

    /// Whether [`Command::encode`] carries a secret (never log it; use [`Command::redacted`]).
    pub fn is_sensitive(&self) -> bool {
        matches!(self, Command::SetNetwork { field, .. } if field.is_sensitive())
            || matches!(self, Command::SetCred { field, .. } if field.is_sensitive())
    }

    /// Whether the command's success reply is exactly `OK`.
    pub fn expects_ok(&self) -> bool {
        matches!(
            self,
            Command::Scan
                | Command::BssFlush(_)
                | Command::SetNetwork { .. }
                | Command::SelectNetwork(_)
                | Command::EnableNetwork(_)
                | Command::DisableNetwork(_)
                | Command::RemoveNetwork(_)
                | Command::Disconnect
                | Command::Reconnect
                | Command::Reassociate
                | Command::Roam(_)
                | Command::Set(_)
                | Command::SaveConfig
                | Command::Terminate
                | Command::LogLevelDebug(_)
                | Command::Attach
                | Command::Detach
                | Command::AnqpGet { .. }
                | Command::SetCred { .. }
                | Command::RemoveCred(_)
                | Command::InterworkingSelect { .. }
        )
    }

    fn render(&self, redact: bool) -> String {
        match self {
            Command::Ping => "PING".into(),
            Command::Status => "STATUS".into(),
            Command::Scan => "SCAN".into(),
            Command::Bss { selector, mask } => {
                let selector = match selector {
                    BssSelector::First => "FIRST".to_owned(),
                    BssSelector::Next(id) => format!("NEXT-{id}"),
                    BssSelector::Id(id) => format!("ID-{id}"),
                    BssSelector::Bssid(bssid) => bssid.to_string(),
                };
                match mask {
                    Some(mask) => format!("BSS {selector} MASK=0x{mask:x}"),
                    None => format!("BSS {selector}"),
                }
            }
            Command::BssFlush(age) => format!("BSS_FLUSH {age}"),
            Command::SignalPoll => "SIGNAL_POLL".into(),
            Command::AddNetwork => "ADD_NETWORK".into(),
            Command::SetNetwork { id, field } => {
                let value = if redact && field.is_sensitive() {
                    "<redacted>".to_owned()
                } else {
                    field.encode_value()
                };
                format!("SET_NETWORK {id} {} {value}", field.name().as_str())
            }
            Command::GetNetwork { id, field } => {
                format!("GET_NETWORK {id} {}", field.as_str())
            }
            Command::SelectNetwork(id) => format!("SELECT_NETWORK {id}"),
            Command::EnableNetwork(sel) => format!("ENABLE_NETWORK {sel}"),
            Command::DisableNetwork(sel) => format!("DISABLE_NETWORK {sel}"),
            Command::RemoveNetwork(sel) => format!("REMOVE_NETWORK {sel}"),
            Command::ListNetworks { last_id: None } => "LIST_NETWORKS".into(),
            Command::ListNetworks { last_id: Some(id) } => format!("LIST_NETWORKS LAST_ID={id}"),
            Command::Disconnect => "DISCONNECT".into(),
            Command::Reconnect => "RECONNECT".into(),
            Command::Reassociate => "REASSOCIATE".into(),
            Command::Roam(bssid) => format!("ROAM {bssid}"),
            Command::Set(setting) => match setting {
                GlobalSetting::MacAddr(value) => format!("SET mac_addr {value}"),
                GlobalSetting::PreassocMacAddr(value) => format!("SET preassoc_mac_addr {value}"),
                GlobalSetting::RandAddrLifetime(secs) => format!("SET rand_addr_lifetime {secs}"),
                GlobalSetting::Country(code) => format!("SET country {}", code.as_str()),
            },
            Command::SaveConfig => "SAVE_CONFIG".into(),
            Command::Terminate => "TERMINATE".into(),
            Command::AnqpGet { bssid, ids, hs20 } => {
                let list: Vec<String> = ids
                    .iter()
                    .map(u16::to_string)
                    .chain(hs20.iter().map(|t| format!("hs20:{t}")))
                    .collect();
                format!("ANQP_GET {bssid} {}", list.join(","))
            }
            Command::AddCred => "ADD_CRED".into(),
            Command::SetCred { id, field } => {
                let value = if redact && field.is_sensitive() {
                    "<redacted>".to_owned()
                } else {
                    field.encode_value()
                };
                format!("SET_CRED {id} {} {value}", field.name())
            }
            Command::RemoveCred(sel) => format!("REMOVE_CRED {sel}"),
            Command::InterworkingSelect { auto: true } => "INTERWORKING_SELECT auto".into(),
            Command::InterworkingSelect { auto: false } => "INTERWORKING_SELECT".into(),
            Command::LogLevelDebug(true) => "LOG_LEVEL DEBUG".into(),
            Command::LogLevelDebug(false) => "LOG_LEVEL INFO".into(),
            Command::GetCapabilitySae => "GET_CAPABILITY sae".into(),
            Command::Attach => "ATTACH".into(),
            Command::Detach => "DETACH".into(),
        }
    }
}

impl fmt::Display for Command {
    /// Shows the redacted form, so `{}` in a log line is always safe.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(field: NetworkField) -> String {
        Command::SetNetwork { id: 3, field }.encode()
    }

    #[test]
    fn ssid_is_hex() {
        let hostile = Ssid::from_bytes(b"x\" \n\0\\\nSET_NETWORK 0 psk \"y\"").unwrap();
        let line = set(NetworkField::Ssid(hostile));
        assert_eq!(line.split(' ').count(), 4);
        assert!(!line.contains('\n') && !line.contains('\0') && !line.contains('"'));
        let ssid = Ssid::from_bytes(b"a\"b c\nd\0\\").unwrap();
        assert_eq!(
            set(NetworkField::Ssid(ssid)),
            "SET_NETWORK 3 ssid 61226220630a64005c"
        );
        let binary = Ssid::from_bytes(&[0xff; 32]).unwrap();
        let line = set(NetworkField::Ssid(binary));
        assert_eq!(line.split(' ').count(), 4);
        assert!(line.ends_with(&"ff".repeat(32)));
    }

    #[test]
    fn psk_forms() {
        let pass = Passphrase::parse("pa\"ss wo\"rd").unwrap();
        let cmd = Command::SetNetwork {
            id: 0,
            field: NetworkField::Psk(pass),
        };
        assert_eq!(cmd.encode(), "SET_NETWORK 0 psk \"pa\"ss wo\"rd\"");
        assert!(cmd.is_sensitive());
        assert_eq!(cmd.redacted(), "SET_NETWORK 0 psk <redacted>");
        assert_eq!(cmd.to_string(), "SET_NETWORK 0 psk <redacted>");
        assert!(!format!("{cmd:?}").contains("pa\"ss"));
        let raw = Passphrase::parse(&"AB".repeat(32)).unwrap();
        assert_eq!(
            set(NetworkField::Psk(raw)),
            format!("SET_NETWORK 3 psk {}", "ab".repeat(32))
        );
    }

    #[test]
    fn secrets_are_hex_and_redacted() {
        let cases = [
            (
                NetworkField::SaePassword(SaePassword::parse("s\"e cret").unwrap()),
                "sae_password",
                "7322652063726574",
            ),
            (
                NetworkField::Password(EapPassword::parse("p w").unwrap()),
                "password",
                "702077",
            ),
            (
                NetworkField::PrivateKeyPasswd(EapPassword::parse_key_password("k").unwrap()),
                "private_key_passwd",
                "6b",
            ),
        ];
        for (field, name, hex) in cases {
            let cmd = Command::SetNetwork { id: 1, field };
            assert!(cmd.is_sensitive());
            assert_eq!(cmd.encode(), format!("SET_NETWORK 1 {name} {hex}"));
            assert_eq!(cmd.redacted(), format!("SET_NETWORK 1 {name} <redacted>"));
        }
    }

    #[test]
    fn other_fields() {
        assert_eq!(
            set(NetworkField::KeyMgmt(vec![KeyMgmt::WpaPsk, KeyMgmt::Sae])),
            "SET_NETWORK 3 key_mgmt WPA-PSK SAE"
        );
        assert_eq!(
            set(NetworkField::Bssid(
                Bssid::parse("02:00:00:00:01:00").unwrap()
            )),
            "SET_NETWORK 3 bssid 02:00:00:00:01:00"
        );
        assert_eq!(set(NetworkField::AnyBssid), "SET_NETWORK 3 bssid any");
        assert_eq!(
            set(NetworkField::ScanSsid(true)),
            "SET_NETWORK 3 scan_ssid 1"
        );
        assert_eq!(
            set(NetworkField::Ieee80211w(2)),
            "SET_NETWORK 3 ieee80211w 2"
        );
        assert_eq!(set(NetworkField::MacAddr(1)), "SET_NETWORK 3 mac_addr 1");
        assert_eq!(
            set(NetworkField::Eap(EapMethod::Peap)),
            "SET_NETWORK 3 eap PEAP"
        );
        assert_eq!(
            set(NetworkField::Phase2(Phase2::Mschapv2)),
            format!("SET_NETWORK 3 phase2 {}", hex::encode("auth=MSCHAPV2"))
        );
        assert_eq!(
            set(NetworkField::Identity(EapIdentity::parse("a b\"").unwrap())),
            "SET_NETWORK 3 identity 61206222"
        );
        assert_eq!(
            set(NetworkField::CaCert(FilePath::parse("/c a").unwrap())),
            "SET_NETWORK 3 ca_cert 2f632061"
        );
        assert_eq!(
            set(NetworkField::DomainSuffixMatch(
                Hostname::parse("radius.example.org").unwrap()
            )),
            format!(
                "SET_NETWORK 3 domain_suffix_match {}",
                hex::encode("radius.example.org")
            )
        );
        assert_eq!(set(NetworkField::Priority(7)), "SET_NETWORK 3 priority 7");
        assert_eq!(
            set(NetworkField::Disabled(false)),
            "SET_NETWORK 3 disabled 0"
        );
        assert!(
            !Command::SetNetwork {
                id: 0,
                field: NetworkField::Priority(1)
            }
            .is_sensitive()
        );
    }

    #[test]
    fn plain_commands() {
        assert_eq!(
            Command::bss_summary(BssSelector::First).encode(),
            "BSS FIRST MASK=0x181adf"
        );
        assert_eq!(
            Command::Bss {
                selector: BssSelector::Next(12),
                mask: None
            }
            .encode(),
            "BSS NEXT-12"
        );
        assert_eq!(
            Command::RemoveNetwork(NetworkSel::All).encode(),
            "REMOVE_NETWORK all"
        );
        assert_eq!(
            Command::ListNetworks { last_id: Some(4) }.encode(),
            "LIST_NETWORKS LAST_ID=4"
        );
        assert_eq!(
            Command::Set(GlobalSetting::PreassocMacAddr(1)).encode(),
            "SET preassoc_mac_addr 1"
        );
        assert_eq!(
            Command::Set(GlobalSetting::Country(CountryCode::parse("DE").unwrap())).encode(),
            "SET country DE"
        );
        assert_eq!(
            Command::GetNetwork {
                id: 2,
                field: NetworkFieldName::Ssid
            }
            .encode(),
            "GET_NETWORK 2 ssid"
        );
        assert!(Command::Scan.expects_ok());
        assert!(!Command::AddNetwork.expects_ok());
    }
}
