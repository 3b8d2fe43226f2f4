//! What a client sees: the tools' argument types (their JSON schemas, from the doc comments)
//! and structured results.

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::wpa::{self, Bss, ConfiguredNetwork};

/// Security a client asks for in `wifi_connect`.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SecurityMode {
    /// Open if no password, else WPA2-PSK and WPA3-SAE (whichever the AP offers).
    #[default]
    Auto,
    /// No encryption.
    Open,
    /// WPA2 personal.
    Wpa2Psk,
    /// WPA3 personal (SAE), with management frame protection required.
    Wpa3Sae,
    /// WPA2/WPA3 personal transition: WPA2-PSK or SAE, whichever the AP offers (SAE
    /// preferred), management frame protection when the AP offers it (as `auto` with a
    /// password).
    #[serde(rename = "wpa2-psk/wpa3-sae")]
    Wpa2Wpa3,
    /// Enhanced Open (OWE): encrypted, no password, management frame protection required;
    /// joins an OWE transition network through its OWE companion BSS. `auto` without a
    /// password picks it when the last scan saw the SSID offered with OWE.
    Owe,
}

/// SAE-PK for `wifi_connect` (wpa_supplicant's `sae_pk` network option): whether the AP must
/// prove, with a signature, that it holds the private key whose fingerprint the password is.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SaePkMode {
    /// SAE-PK when the AP offers it and the password is an SAE-PK password (wpa_supplicant's
    /// `sae_pk=0`); else plain SAE.
    #[default]
    Auto,
    /// Only an AP that proves SAE-PK (`sae_pk=1`): the password must be an SAE-PK password,
    /// security wpa3-sae (or auto, which then means it); an AP without SAE-PK, or one whose
    /// proof fails (a rogue twin that knows the password but not the key), is refused.
    Required,
    /// Never SAE-PK (`sae_pk=2`): plain SAE even with an SAE-PK password and AP.
    Off,
}

/// MAC address to present to the network.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MacMode {
    /// The adapter's own MAC.
    #[default]
    Permanent,
    /// A new random MAC for each connection.
    Random,
    /// A stable random MAC derived from the adapter and the SSID.
    PerNetwork,
}

/// The text of every refused secret argument: fixed, so it can never repeat the value.
pub const SECRET_NOT_A_STRING: &str =
    "a password or key argument must be a JSON string (the value given is not repeated here)";

/// A secret tool argument (a password, a PEM key): a JSON string. Anything else is refused with
/// [`SECRET_NOT_A_STRING`], never with serde's own text (`invalid type: integer `12345678``),
/// which rmcp would put in its error reply and its WARN log line. No `Debug` that shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretArg(crate::validate::Secret);

impl SecretArg {
    /// Wrap a value (a saved network's secret, a test's).
    pub fn new(value: impl Into<String>) -> Self {
        Self(crate::validate::Secret::new(value))
    }

    /// The value; only for validation and the encoder.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for SecretArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // deserialize_any: serde_json's deserialize_string reports a wrong type itself, quoting
        // the value, before any visitor method could refuse it quietly.
        d.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl SecretVisitor {
    fn refuse<T, E: de::Error>(self) -> Result<T, E> {
        Err(E::custom(SECRET_NOT_A_STRING))
    }
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = SecretArg;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretArg, E> {
        Ok(SecretArg::new(v))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<SecretArg, E> {
        Ok(SecretArg::new(v))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretArg, E> {
        self.refuse()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretArg, E> {
        self.refuse()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretArg, E> {
        self.refuse()
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<SecretArg, E> {
        self.refuse()
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<SecretArg, E> {
        self.refuse()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretArg, E> {
        self.refuse()
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<SecretArg, E> {
        self.refuse()
    }
    fn visit_none<E: de::Error>(self) -> Result<SecretArg, E> {
        self.refuse()
    }
    fn visit_unit<E: de::Error>(self) -> Result<SecretArg, E> {
        self.refuse()
    }
    fn visit_some<D: Deserializer<'de>>(self, _: D) -> Result<SecretArg, D::Error> {
        self.refuse()
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, _: D) -> Result<SecretArg, D::Error> {
        self.refuse()
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<SecretArg, A::Error> {
        self.refuse()
    }
    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<SecretArg, A::Error> {
        self.refuse()
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<SecretArg, A::Error> {
        self.refuse()
    }
}

impl JsonSchema for SecretArg {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        String::schema_name()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(g)
    }
}

/// `wifi_connect` arguments: a saved `network`, or `ssid` (+ `password`, …) inline.
// No Debug: it holds a password.
#[derive(Deserialize, JsonSchema)]
pub struct ConnectArgs {
    /// A saved network by name (see wifi_saved_networks): its SSID, security and secret come
    /// from the host's profile, and never pass through this conversation. Give either network
    /// or ssid.
    pub network: Option<String>,
    /// Network name, 1-32 bytes (without network).
    pub ssid: Option<String>,
    /// WPA passphrase (8-63 printable ASCII characters) or a 64-hex-digit PSK. Omit for open
    /// networks. May be refused by the host's policy: prefer a saved network.
    pub password: Option<SecretArg>,
    /// Connect only to this access point (aa:bb:cc:dd:ee:ff).
    pub bssid: Option<String>,
    /// The network does not broadcast its SSID (probe for it explicitly).
    #[serde(default)]
    pub hidden: bool,
    /// auto (default), open, owe, wpa2-psk, wpa3-sae or wpa2-psk/wpa3-sae.
    #[serde(default)]
    pub security: SecurityMode,
    /// permanent (default), random or per-network.
    #[serde(default)]
    pub mac_address: MacMode,
    /// SAE-PK (WPA3-Personal with a public key: the AP proves it holds the key the password
    /// is the fingerprint of, e.g. a password like abcd-efgh-ijkl): auto (default: when the AP
    /// offers it and the password is an SAE-PK password), required (only such an AP; security
    /// wpa3-sae) or off.
    #[serde(default)]
    pub sae_pk: SaePkMode,
    /// Give up after this many seconds (default 30, max 300).
    pub timeout_secs: Option<u64>,
}

/// EAP method for `wifi_connect_eap`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EapKind {
    /// PEAP with MSCHAPv2 inside.
    Peap,
    /// TTLS with MSCHAPv2 inside.
    Ttls,
    /// EAP-TLS with a client certificate.
    Tls,
}

/// Which enterprise security `wifi_connect_eap` asks for.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum EapSecurity {
    /// WPA2- or WPA3-Enterprise, whichever the AP offers (key management WPA-EAP or
    /// WPA-EAP-SHA256, PMF when the AP has it); the 192-bit mode when the last scan saw this
    /// SSID offer only that.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// WPA2-Enterprise only (WPA-EAP).
    #[serde(rename = "wpa2-eap")]
    Wpa2Eap,
    /// WPA3-Enterprise only (WPA-EAP-SHA256, PMF required).
    #[serde(rename = "wpa3-eap")]
    Wpa3Eap,
    /// WPA3-Enterprise 192-bit mode (suite B): WPA-EAP-SUITE-B-192, GCMP-256, BIP-GMAC-256,
    /// PMF required, EAP-TLS with the SUITEB192 TLS ciphers (a P-384 certificate).
    #[serde(rename = "wpa3-eap-192")]
    Wpa3Eap192,
}

/// `wifi_connect_eap` arguments.
// No Debug: it holds a password.
#[derive(Deserialize, JsonSchema)]
pub struct ConnectEapArgs {
    /// Network name, 1-32 bytes.
    pub ssid: String,
    /// auto (default), wpa2-eap, wpa3-eap or wpa3-eap-192 (needs method tls).
    #[serde(default)]
    pub security: EapSecurity,
    /// peap, ttls or tls.
    pub method: EapKind,
    /// User identity.
    pub identity: String,
    /// Outer identity sent in the clear (PEAP/TTLS), e.g. "anonymous".
    pub anonymous_identity: Option<String>,
    /// Password (PEAP/TTLS). May be refused by the host's policy: prefer a saved network
    /// (wifi_connect with network).
    pub password: Option<SecretArg>,
    /// CA certificate to verify the server: PEM text, or a file in the box's certificates
    /// directory (/etc/wifi-isolate/certs; absolute or relative to it, no symlinks).
    pub ca_cert: Option<String>,
    /// Client certificate (TLS): PEM text or a file in the certificates directory.
    pub client_cert: Option<String>,
    /// Client private key (TLS): PEM text or a file in the certificates directory.
    pub private_key: Option<SecretArg>,
    /// Password of the private key, if it is encrypted.
    pub private_key_password: Option<SecretArg>,
    /// Accept only a server certificate for this domain (or a subdomain).
    pub domain_suffix_match: Option<String>,
    /// Connect only to this access point.
    pub bssid: Option<String>,
    /// The network does not broadcast its SSID.
    #[serde(default)]
    pub hidden: bool,
    /// Give up after this many seconds (default 30, max 300).
    pub timeout_secs: Option<u64>,
}

/// Arguments with only a timeout.
#[derive(Debug, Deserialize, JsonSchema, Default)]
pub struct TimeoutArgs {
    /// Give up after this many seconds.
    pub timeout_secs: Option<u64>,
}

/// `wifi_forget` arguments: one of `ssid` or `network_id`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ForgetArgs {
    /// Forget every configured network with this SSID.
    pub ssid: Option<String>,
    /// Forget the network with this id (from wifi_list_networks).
    pub network_id: Option<u32>,
}

/// `network_ping` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PingArgs {
    /// IPv4 or IPv6 address, or a host name (resolved through the WiFi's DNS). Default: the
    /// gateway — the lease's IPv4 router, or with family ipv6 the IPv6 default router (from the
    /// network's router advertisements).
    pub host: Option<String>,
    /// Address family: auto (default: IPv4 when the box has an IPv4 address and the name an A
    /// record, else IPv6), ipv4 or ipv6; the result's `family` says which was used. ipv6 on a
    /// network that gave the box no IPv6 address fails with family_unavailable, nothing sent.
    pub family: Option<crate::agent::net::target::Family>,
    /// Echo requests to send (1-20, default 3).
    pub count: Option<u32>,
    /// Seconds to wait for each reply (default 2).
    pub timeout_secs: Option<u64>,
}

/// `network_http_get` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct HttpGetArgs {
    /// An http:// or https:// URL.
    pub url: String,
    /// Return at most this many body bytes (default 4096, max 65536).
    pub max_bytes: Option<usize>,
    /// Give up after this many seconds (default 10).
    pub timeout_secs: Option<u64>,
}

/// `network_check_internet` arguments (`network_check_captive`'s are in `tools/captive.rs`).
#[derive(Debug, Deserialize, JsonSchema, Default)]
pub struct CheckArgs {
    /// Connectivity-check URL answering 204 (default: the agent's configured one).
    pub url: Option<String>,
    /// Address family: auto (default: IPv4 when the box has an IPv4 address and the name an A
    /// record, else IPv6), ipv4 or ipv6; the result's `family` says which was used. ipv6 on a
    /// network that gave the box no IPv6 address fails with family_unavailable, nothing sent.
    pub family: Option<crate::agent::net::target::Family>,
}

/// `wifi_debug_logs` arguments.
#[derive(Debug, Deserialize, JsonSchema, Default)]
pub struct LogArgs {
    /// How many recent entries (default 100, max 500).
    pub lines: Option<usize>,
    /// Only entries from this source: wpa, event, dhcp, udhcpc or agent.
    pub source: Option<String>,
}

/// One saved network, as `wifi_saved_networks` lists it: never a secret, nor its length.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SavedNetwork {
    /// The name to pass to wifi_connect as network.
    pub name: String,
    /// The SSID.
    pub ssid: String,
    /// open, wpa2-psk, wpa3-sae, wpa2-psk/wpa3-sae or eap.
    pub security: String,
    /// The EAP method (peap, ttls, tls), for eap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eap_method: Option<String>,
    /// The network does not broadcast its SSID.
    pub hidden: bool,
}

/// `wifi_saved_networks` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SavedNetworksResult {
    /// Saved networks this adapter may use, by name.
    pub networks: Vec<SavedNetwork>,
    /// Profiles the agent could not read (name and reason), if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

/// `wifi_scan` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScanResult {
    /// Access points seen, strongest first.
    pub networks: Vec<Bss>,
    /// Time the scan took, in milliseconds.
    pub elapsed_ms: u64,
    /// The scan finished (its results event arrived). `false`: the timeout ran out first and
    /// `networks` is partial (what wpa_supplicant's table held then); `note` says why.
    pub complete: bool,
    /// Scan requests sent (a scan the driver refused is asked for again).
    pub attempts: u32,
    /// Why the result is partial, when it is.
    pub note: Option<String>,
}

/// `wifi_roam` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RoamArgs {
    /// The BSS to move to (aa:bb:cc:dd:ee:ff): another access point of the current network,
    /// as wifi_scan lists it.
    pub bssid: String,
    /// Give up after this many seconds (default 15, max 60).
    pub timeout_secs: Option<u64>,
}

/// `wifi_events` arguments.
#[derive(Debug, Deserialize, JsonSchema, Default)]
pub struct EventsArgs {
    /// Only events after this sequence number (the `last_seq` of an earlier call).
    pub since_seq: Option<u64>,
    /// At most this many (the newest), 1-500 (default 100).
    pub limit: Option<u64>,
    /// Only these kinds (all when omitted).
    #[serde(default)]
    pub kinds: Vec<crate::agent::history::Kind>,
}

/// `wifi_link` arguments.
#[derive(Debug, Deserialize, JsonSchema, Default)]
pub struct LinkArgs {
    /// Sample the link for this many seconds (1-60) and report min/avg/max; omit for one
    /// reading now.
    pub sample_secs: Option<u64>,
    /// Time between samples in milliseconds (200-5000, default 1000); only with sample_secs.
    pub interval_ms: Option<u64>,
}

/// `wifi_status` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StatusResult {
    /// The WiFi interface.
    pub interface: String,
    /// wpa_supplicant's state (COMPLETED, SCANNING, DISCONNECTED, …).
    pub wpa_state: wpa::WpaState,
    /// SSID, when associated.
    pub ssid: Option<String>,
    /// BSSID, when associated.
    pub bssid: Option<String>,
    /// Frequency in MHz.
    pub frequency: Option<u32>,
    /// Channel number.
    pub channel: Option<u32>,
    /// Signal strength in dBm.
    pub signal_dbm: Option<i32>,
    /// Key management in use.
    pub key_mgmt: Option<String>,
    /// The security of the association (ciphers, PMF, SAE group, H2E, SAE-PK), when
    /// associated.
    pub link_security: Option<crate::wpa::modes::LinkSecurity>,
    /// Our IPv4 address (CIDR), from DHCP.
    pub ip: Option<String>,
    /// Default gateway.
    pub gateway: Option<String>,
    /// DNS servers.
    pub dns: Vec<String>,
    /// Routes in the box (main table), IPv4 and IPv6 (`protocol: ra` = from a router
    /// advertisement).
    pub routes: Vec<crate::agent::netcfg::RouteInfo>,
    /// Addresses in the box, IPv4 (DHCP) and IPv6 (link-local, SLAAC from router
    /// advertisements).
    pub addresses: Vec<crate::agent::netcfg::AddrInfo>,
    /// The box's network interfaces (`lo` and the WiFi, nothing else), as `name` or `name (down)`.
    pub links: Vec<String>,
    /// Times wpa_supplicant had to be restarted.
    pub supplicant_restarts: u32,
    /// The access point that runs (`wifi_ap_start`), if one does.
    pub access_point: Option<crate::agent::ap::ApSummary>,
    /// What the phy's interface combinations allow: a station and an AP at once
    /// (`wifi_ap_start` mode concurrent), on how many channels; absent if nl80211 would not say.
    pub ap_concurrency: Option<crate::agent::iface::ApConcurrency>,
}

/// `wifi_list_networks` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NetworksResult {
    /// Configured networks.
    pub networks: Vec<ConfiguredNetwork>,
}

/// A plain outcome.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Done {
    /// What happened.
    pub message: String,
    /// Network ids affected, if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network_ids: Vec<u32>,
}

/// `network_check_internet` result (`network_check_captive` returns these fields and more).
pub use crate::agent::net::captive::CheckResult;

/// `wifi_debug_logs` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LogsResult {
    /// Recent entries, oldest first, secrets redacted.
    pub entries: Vec<crate::agent::events::LogEntry>,
}
