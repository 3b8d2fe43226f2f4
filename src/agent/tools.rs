//! The MCP tools: argument schemas, validation, structured results and the audit log.
//!
//! Arguments are validated here, before anything reaches wpa_supplicant; a bad argument becomes a
//! tool error (`isError: true`) that says what is wrong, and nothing is applied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ProgressNotificationParam,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, Json, Peer, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::nettools::{self, Connectivity, DnsReport, HttpReport, PingReport};
use super::{Agent, ConnectResult, NetworkSpec, Stage};
use crate::logging::msgid;
use crate::validate::{self, Bssid, Passphrase, SaePassword, Ssid};
use crate::wpa::{self, Bss, ConfiguredNetwork, EapMethod, KeyMgmt, NetworkField, Phase2};

type ToolResult<T> = Result<Json<T>, String>;

/// The peer of an MCP connection, as seen by the socket (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy)]
pub struct PeerCred {
    /// Peer user id.
    pub uid: u32,
    /// Peer process id.
    pub pid: i32,
}

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
}

/// MAC address to present to the network.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
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

/// `wifi_connect` arguments.
// No Debug: it holds a password.
#[derive(Deserialize, JsonSchema)]
pub struct ConnectArgs {
    /// Network name, 1-32 bytes.
    pub ssid: String,
    /// WPA passphrase (8-63 printable ASCII characters) or a 64-hex-digit PSK. Omit for open networks.
    pub password: Option<String>,
    /// Connect only to this access point (aa:bb:cc:dd:ee:ff).
    pub bssid: Option<String>,
    /// The network does not broadcast its SSID (probe for it explicitly).
    #[serde(default)]
    pub hidden: bool,
    /// auto (default), open, wpa2-psk or wpa3-sae.
    #[serde(default)]
    pub security: SecurityMode,
    /// permanent (default), random or per-network.
    #[serde(default)]
    pub mac_address: MacMode,
    /// Give up after this many seconds (default 30, max 300).
    pub timeout_secs: Option<u64>,
}

/// EAP method for `wifi_connect_eap`.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EapKind {
    /// PEAP with MSCHAPv2 inside.
    Peap,
    /// TTLS with MSCHAPv2 inside.
    Ttls,
    /// EAP-TLS with a client certificate.
    Tls,
}

/// `wifi_connect_eap` arguments.
// No Debug: it holds a password.
#[derive(Deserialize, JsonSchema)]
pub struct ConnectEapArgs {
    /// Network name, 1-32 bytes.
    pub ssid: String,
    /// peap, ttls or tls.
    pub method: EapKind,
    /// User identity.
    pub identity: String,
    /// Outer identity sent in the clear (PEAP/TTLS), e.g. "anonymous".
    pub anonymous_identity: Option<String>,
    /// Password (PEAP/TTLS).
    pub password: Option<String>,
    /// CA certificate to verify the server: PEM text, or a file in the box's certificates
    /// directory (/etc/wifi-isolate/certs; absolute or relative to it, no symlinks).
    pub ca_cert: Option<String>,
    /// Client certificate (TLS): PEM text or a file in the certificates directory.
    pub client_cert: Option<String>,
    /// Client private key (TLS): PEM text or a file in the certificates directory.
    pub private_key: Option<String>,
    /// Password of the private key, if it is encrypted.
    pub private_key_password: Option<String>,
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
    /// IPv4 or IPv6 address, or a host name (resolved through the WiFi's DNS; IPv4 preferred).
    /// Default: the IPv4 gateway.
    pub host: Option<String>,
    /// Echo requests to send (1-20, default 3).
    pub count: Option<u32>,
    /// Seconds to wait for each reply (default 2).
    pub timeout_secs: Option<u64>,
}

/// `network_dns_lookup` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DnsArgs {
    /// Host name to resolve.
    pub name: String,
    /// Ask this DNS server (IPv4/IPv6 address) instead of the ones from DHCP.
    pub server: Option<String>,
}

/// `network_http_get` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct HttpGetArgs {
    /// An http:// URL.
    pub url: String,
    /// Return at most this many body bytes (default 4096, max 65536).
    pub max_bytes: Option<usize>,
    /// Give up after this many seconds (default 10).
    pub timeout_secs: Option<u64>,
}

/// `network_check_internet` / `network_check_captive` arguments.
#[derive(Debug, Deserialize, JsonSchema, Default)]
pub struct CheckArgs {
    /// Connectivity-check URL answering 204 (default: the agent's configured one).
    pub url: Option<String>,
}

/// `wifi_debug_logs` arguments.
#[derive(Debug, Deserialize, JsonSchema, Default)]
pub struct LogArgs {
    /// How many recent entries (default 100, max 500).
    pub lines: Option<usize>,
    /// Only entries from this source: wpa, event, dhcp, udhcpc or agent.
    pub source: Option<String>,
}

/// `wifi_scan` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScanResult {
    /// Access points seen, strongest first.
    pub networks: Vec<Bss>,
    /// Time the scan took, in milliseconds.
    pub elapsed_ms: u64,
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
    /// Our IPv4 address (CIDR), from DHCP.
    pub ip: Option<String>,
    /// Default gateway.
    pub gateway: Option<String>,
    /// DNS servers.
    pub dns: Vec<String>,
    /// Routes in the box (main table), IPv4 and IPv6 (`protocol: ra` = from a router
    /// advertisement).
    pub routes: Vec<super::netcfg::RouteInfo>,
    /// Addresses in the box, IPv4 (DHCP) and IPv6 (link-local, SLAAC from router
    /// advertisements).
    pub addresses: Vec<super::netcfg::AddrInfo>,
    /// The box's network interfaces (`lo` and the WiFi, nothing else), as `name` or `name (down)`.
    pub links: Vec<String>,
    /// Times wpa_supplicant had to be restarted.
    pub supplicant_restarts: u32,
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

/// `network_check_internet` / `network_check_captive` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CheckResult {
    /// full, captive or none.
    pub connectivity: Connectivity,
    /// The check URL.
    pub url: String,
    /// HTTP status, if an answer came.
    pub status: Option<u16>,
    /// Where a captive portal redirects to.
    pub portal_url: Option<String>,
    /// What went wrong, when there was no answer.
    pub error: Option<String>,
    /// Time taken in milliseconds.
    pub elapsed_ms: u64,
}

/// `wifi_debug_logs` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LogsResult {
    /// Recent entries, oldest first, secrets redacted.
    pub entries: Vec<super::events::LogEntry>,
}

fn timeout_of(secs: Option<u64>, default: u64) -> Result<Duration, String> {
    timeout_within(secs, default, 300)
}

fn timeout_within(secs: Option<u64>, default: u64, max: u64) -> Result<Duration, String> {
    match secs {
        None => Ok(Duration::from_secs(default)),
        Some(s) if (1..=max).contains(&s) => Ok(Duration::from_secs(s)),
        Some(s) => Err(format!("timeout_secs must be 1-{max}, got {s}")),
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Build the network fields for `wifi_connect`; validation only, nothing is sent.
pub fn psk_spec(agent_perm_mac: Option<[u8; 6]>, a: &ConnectArgs) -> Result<NetworkSpec, String> {
    let ssid = Ssid::parse(&a.ssid).map_err(err)?;
    let mut fields = vec![NetworkField::Ssid(ssid.clone())];
    let mut secrets = Vec::new();
    if let Some(b) = &a.bssid {
        fields.push(NetworkField::Bssid(Bssid::parse(b).map_err(err)?));
    }
    if a.hidden {
        fields.push(NetworkField::ScanSsid(true));
    }
    let security = match (a.security, &a.password) {
        (SecurityMode::Auto, None) => SecurityMode::Open,
        (s, _) => s,
    };
    match (security, &a.password) {
        (SecurityMode::Open, Some(_)) => {
            return Err("security is open but a password was given; drop one of them".into());
        }
        (SecurityMode::Open, None) => fields.push(NetworkField::KeyMgmt(vec![KeyMgmt::None])),
        (_, None) => {
            return Err(format!(
                "security {security:?} needs a password (8-63 printable ASCII characters)"
            ));
        }
        (SecurityMode::Wpa2Psk, Some(p)) => {
            let pass = Passphrase::parse(p).map_err(err)?;
            secrets.push(p.clone());
            fields.push(NetworkField::KeyMgmt(vec![KeyMgmt::WpaPsk]));
            fields.push(NetworkField::Psk(pass));
        }
        (SecurityMode::Wpa3Sae, Some(p)) => {
            let sae = SaePassword::parse(p).map_err(err)?;
            secrets.push(p.clone());
            fields.push(NetworkField::KeyMgmt(vec![KeyMgmt::Sae]));
            fields.push(NetworkField::SaePassword(sae));
            fields.push(NetworkField::Ieee80211w(2));
        }
        (SecurityMode::Auto, Some(p)) => {
            let pass = Passphrase::parse(p).map_err(err)?;
            secrets.push(p.clone());
            if pass.is_raw_psk() {
                fields.push(NetworkField::KeyMgmt(vec![KeyMgmt::WpaPsk]));
            } else {
                fields.push(NetworkField::KeyMgmt(vec![KeyMgmt::WpaPsk, KeyMgmt::Sae]));
                fields.push(NetworkField::SaePassword(
                    SaePassword::parse(p).map_err(err)?,
                ));
                fields.push(NetworkField::Ieee80211w(1));
            }
            fields.push(NetworkField::Psk(pass));
        }
    }
    let mac = match a.mac_address {
        MacMode::Permanent => {
            fields.push(NetworkField::MacAddr(0));
            None
        }
        MacMode::Random => {
            fields.push(NetworkField::MacAddr(1));
            None
        }
        MacMode::PerNetwork => {
            fields.push(NetworkField::MacAddr(0));
            let perm = agent_perm_mac.ok_or("the adapter's permanent MAC is unknown")?;
            Some(super::per_network_mac(perm, ssid.as_bytes()))
        }
    };
    Ok(NetworkSpec {
        ssid,
        fields,
        secrets,
        mac,
        uploads: Vec::new(),
    })
}

/// Build the network fields for `wifi_connect_eap`. Certificates and keys: PEM text is stored
/// in the box-private upload dir, paths only from the certs dir ([`super::certs`]); on a refused
/// argument nothing stays behind.
pub fn eap_spec(agent: &Agent, a: &ConnectEapArgs) -> Result<NetworkSpec, String> {
    let mut uploads = Vec::new();
    let spec = eap_fields(agent.certs(), a, &mut uploads);
    if spec.is_err() {
        agent.certs().discard(&uploads);
    }
    spec.map(|(ssid, fields, secrets)| NetworkSpec {
        ssid,
        fields,
        secrets,
        mac: None,
        uploads,
    })
}

type EapFields = (Ssid, Vec<NetworkField>, Vec<String>);

fn eap_fields(
    certs: &super::certs::Certs,
    a: &ConnectEapArgs,
    uploads: &mut Vec<std::path::PathBuf>,
) -> Result<EapFields, String> {
    let ssid = Ssid::parse(&a.ssid).map_err(err)?;
    let mut fields = vec![
        NetworkField::Ssid(ssid.clone()),
        NetworkField::KeyMgmt(vec![KeyMgmt::WpaEap]),
    ];
    let mut secrets = Vec::new();
    if let Some(b) = &a.bssid {
        fields.push(NetworkField::Bssid(Bssid::parse(b).map_err(err)?));
    }
    if a.hidden {
        fields.push(NetworkField::ScanSsid(true));
    }
    fields.push(NetworkField::Identity(
        validate::EapIdentity::parse(&a.identity).map_err(err)?,
    ));
    match a.method {
        EapKind::Peap | EapKind::Ttls => {
            fields.push(NetworkField::Eap(if a.method == EapKind::Peap {
                EapMethod::Peap
            } else {
                EapMethod::Ttls
            }));
            fields.push(NetworkField::Phase2(Phase2::Mschapv2));
            let pw = a
                .password
                .as_deref()
                .ok_or("PEAP and TTLS need a password")?;
            secrets.push(pw.to_string());
            fields.push(NetworkField::Password(
                validate::EapPassword::parse(pw).map_err(err)?,
            ));
            if let Some(anon) = &a.anonymous_identity {
                fields.push(NetworkField::AnonymousIdentity(
                    validate::EapIdentity::parse_anonymous(anon).map_err(err)?,
                ));
            }
        }
        EapKind::Tls => {
            fields.push(NetworkField::Eap(EapMethod::Tls));
            let cert = a
                .client_cert
                .as_deref()
                .ok_or("EAP-TLS needs client_cert")?;
            let key = a
                .private_key
                .as_deref()
                .ok_or("EAP-TLS needs private_key")?;
            if key.contains("-----BEGIN") {
                secrets.push(key.to_string());
            }
            fields.push(NetworkField::ClientCert(certs.resolve(
                "client_cert",
                cert,
                uploads,
            )?));
            fields.push(NetworkField::PrivateKey(certs.resolve(
                "private_key",
                key,
                uploads,
            )?));
            if let Some(p) = &a.private_key_password {
                secrets.push(p.clone());
                fields.push(NetworkField::PrivateKeyPasswd(
                    validate::EapPassword::parse_key_password(p).map_err(err)?,
                ));
            }
        }
    }
    if let Some(ca) = &a.ca_cert {
        fields.push(NetworkField::CaCert(certs.resolve("ca_cert", ca, uploads)?));
    }
    if let Some(d) = &a.domain_suffix_match {
        fields.push(NetworkField::DomainSuffixMatch(
            validate::Hostname::parse(d).map_err(err)?,
        ));
    }
    Ok((ssid, fields, secrets))
}

/// The MCP server: the agent's tools.
#[derive(Clone)]
pub struct WifiTools {
    agent: Arc<Agent>,
    tool_router: ToolRouter<Self>,
}

/// MCP progress for one tool call: notifications go out in order from one task, and
/// [`Progress::flush`] waits until they are all sent, so none trails the result.
struct Progress {
    tx: Option<tokio::sync::mpsc::UnboundedSender<Stage>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn new(peer: Peer<RoleServer>, meta: &rmcp::model::RequestMetaObject) -> Self {
        let Some(token) = meta.get_progress_token() else {
            return Self {
                tx: None,
                task: None,
            };
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Stage>();
        let task = tokio::spawn(async move {
            while let Some(stage) = rx.recv().await {
                let (n, msg) = stage.progress();
                let _ = peer
                    .notify_progress(
                        ProgressNotificationParam::new(token.clone(), n)
                            .with_total(4.0)
                            .with_message(msg),
                    )
                    .await;
            }
        });
        Self {
            tx: Some(tx),
            task: Some(task),
        }
    }

    fn sink(&self) -> impl Fn(Stage) + Send + Sync + use<> {
        let tx = self.tx.clone();
        move |stage| {
            if let Some(tx) = &tx {
                let _ = tx.send(stage);
            }
        }
    }

    async fn flush(mut self) {
        self.tx.take();
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }
}

#[tool_router]
impl WifiTools {
    /// Tools over a started agent.
    pub fn new(agent: Arc<Agent>) -> Self {
        Self {
            agent,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Scan for WiFi networks now (a fresh scan, 2-10 s) and list every access point \
                       seen: bssid, ssid, frequency (MHz), channel, signal (dBm), security \
                       (open, wpa2-psk, wpa3-sae, wpa2-psk/wpa3-sae, wpa2-eap, ...). Hidden networks \
                       show an empty ssid.",
        annotations(title = "Scan WiFi", read_only_hint = true, open_world_hint = true)
    )]
    async fn wifi_scan(&self, Parameters(a): Parameters<TimeoutArgs>) -> ToolResult<ScanResult> {
        let t = timeout_of(a.timeout_secs, 15)?;
        let started = Instant::now();
        let mut networks = self.agent.scan(t).await?;
        networks.sort_by_key(|n| std::cmp::Reverse(n.signal_dbm));
        Ok(Json(ScanResult {
            networks,
            elapsed_ms: started.elapsed().as_millis() as u64,
        }))
    }

    #[tool(
        description = "Connect to a WiFi network (open, WPA2-PSK or WPA3-SAE) and get an address by \
                       DHCP. Reports progress (associating, 4-way handshake, DHCP). Returns ip, \
                       gateway, dns and elapsed time. A wrong password fails fast with \
                       'authentication failed'. Replaces an earlier configuration of the same SSID.",
        annotations(
            title = "Connect to WiFi",
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn wifi_connect(
        &self,
        Parameters(a): Parameters<ConnectArgs>,
        meta: rmcp::model::RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> ToolResult<ConnectResult> {
        let t = timeout_of(a.timeout_secs, 30)?;
        let spec = psk_spec(self.agent.perm_mac, &a)?;
        let progress = Progress::new(peer, &meta);
        let result = self.agent.connect(spec, t, &progress.sink()).await;
        progress.flush().await;
        Ok(Json(result?))
    }

    #[tool(
        description = "Connect to a WPA2/WPA3-Enterprise network: PEAP or TTLS with MSCHAPv2 \
                       (identity + password), or EAP-TLS (client certificate + private key, as \
                       PEM text or files in the box's certificates directory \
                       /etc/wifi-isolate/certs). Give ca_cert to verify the server. Returns \
                       ip, gateway, dns and elapsed time.",
        annotations(
            title = "Connect to enterprise WiFi",
            destructive_hint = true,
            open_world_hint = true
        )
    )]
    async fn wifi_connect_eap(
        &self,
        Parameters(a): Parameters<ConnectEapArgs>,
        meta: rmcp::model::RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> ToolResult<ConnectResult> {
        let t = timeout_of(a.timeout_secs, 30)?;
        let spec = eap_spec(&self.agent, &a)?;
        let progress = Progress::new(peer, &meta);
        let result = self.agent.connect(spec, t, &progress.sink()).await;
        progress.flush().await;
        Ok(Json(result?))
    }

    #[tool(
        description = "Disconnect from the current WiFi network: releases the DHCP lease and removes \
                       the box's address and routes. The network stays configured (wifi_reconnect).",
        annotations(
            title = "Disconnect WiFi",
            destructive_hint = true,
            idempotent_hint = true
        )
    )]
    async fn wifi_disconnect(&self) -> ToolResult<Done> {
        self.agent.disconnect().await?;
        Ok(Json(Done {
            message: "disconnected; lease released".into(),
            network_ids: vec![],
        }))
    }

    #[tool(
        description = "Current WiFi state: supplicant state, ssid, bssid, frequency, channel, signal \
                       (dBm), key management, IP address, gateway, DNS servers, and the box's \
                       routes and addresses (IPv4 and IPv6).",
        annotations(title = "WiFi status", read_only_hint = true)
    )]
    async fn wifi_status(&self) -> ToolResult<StatusResult> {
        let client = self.agent.client().await?;
        let st = client.status().await.map_err(err)?;
        let signal = if st.wpa_state == wpa::WpaState::Completed {
            client
                .signal_poll()
                .await
                .ok()
                .flatten()
                .and_then(|s| s.rssi_dbm)
        } else {
            None
        };
        let lease = self.agent.lease();
        let routes = self.agent.net().routes().await.map_err(err)?;
        let addresses = self.agent.net().addresses().await.map_err(err)?;
        let links = self
            .agent
            .net()
            .links()
            .await
            .map_err(err)?
            .into_iter()
            .map(|(_, name, up)| if up { name } else { format!("{name} (down)") })
            .collect();
        Ok(Json(StatusResult {
            interface: self.agent.iface().to_string(),
            wpa_state: st.wpa_state,
            ssid: st.ssid.clone(),
            bssid: st.bssid.map(|b| b.to_string()),
            frequency: st.freq_mhz,
            channel: st.channel,
            signal_dbm: signal,
            key_mgmt: st.key_mgmt.clone(),
            ip: lease.as_ref().map(|l| format!("{}/{}", l.ip, l.prefix)),
            gateway: lease
                .as_ref()
                .and_then(|l| l.gateway)
                .map(|g| g.to_string()),
            dns: lease
                .map(|l| l.dns.iter().map(|d| d.to_string()).collect())
                .unwrap_or_default(),
            routes,
            addresses,
            links,
            supplicant_restarts: self.agent.wpa_restarts(),
        }))
    }

    #[tool(
        description = "List the networks configured in this session (id, ssid, bssid, flags: \
                       current, disabled). Secrets are never shown.",
        annotations(title = "List configured networks", read_only_hint = true)
    )]
    async fn wifi_list_networks(&self) -> ToolResult<NetworksResult> {
        let client = self.agent.client().await?;
        Ok(Json(NetworksResult {
            networks: client.list_networks().await.map_err(err)?,
        }))
    }

    #[tool(
        description = "Forget configured networks, by ssid or network_id. Forgetting the current \
                       network disconnects.",
        annotations(
            title = "Forget network",
            destructive_hint = true,
            idempotent_hint = true
        )
    )]
    async fn wifi_forget(&self, Parameters(a): Parameters<ForgetArgs>) -> ToolResult<Done> {
        let ssid = match &a.ssid {
            Some(s) => Some(Ssid::parse(s).map_err(err)?),
            None => None,
        };
        if ssid.is_none() && a.network_id.is_none() {
            return Err("give ssid or network_id".into());
        }
        let ids = self.agent.forget(a.network_id, ssid.as_ref()).await?;
        Ok(Json(Done {
            message: format!("forgot {} network(s)", ids.len()),
            network_ids: ids,
        }))
    }

    #[tool(
        description = "Reconnect to the configured network (after wifi_disconnect or a drop) and \
                       wait for a DHCP address. Returns the same fields as wifi_connect.",
        annotations(title = "Reconnect WiFi", destructive_hint = true)
    )]
    async fn wifi_reconnect(
        &self,
        Parameters(a): Parameters<TimeoutArgs>,
        meta: rmcp::model::RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> ToolResult<ConnectResult> {
        let t = timeout_of(a.timeout_secs, 30)?;
        let progress = Progress::new(peer, &meta);
        let result = self.agent.reconnect(t, &progress.sink()).await;
        progress.flush().await;
        Ok(Json(result?))
    }

    #[tool(
        description = "Ping a host through the WiFi (ICMP or ICMPv6 echo). host: IPv4 or IPv6 \
                       address or name (default: the gateway). Returns sent/received and \
                       round-trip times (ms).",
        annotations(title = "Ping", read_only_hint = true, open_world_hint = true)
    )]
    async fn network_ping(&self, Parameters(a): Parameters<PingArgs>) -> ToolResult<PingReport> {
        let count = a.count.unwrap_or(3);
        if !(1..=20).contains(&count) {
            return Err(format!("count must be 1-20, got {count}"));
        }
        let wait = timeout_within(a.timeout_secs, 2, 30)?;
        let host = match a.host {
            Some(h) => h,
            None => self
                .agent
                .lease()
                .and_then(|l| l.gateway)
                .map(|g| g.to_string())
                .ok_or("not connected (no gateway); give host")?,
        };
        validate::host(&host).map_err(err)?;
        let ip = self
            .agent
            .dns()
            .lookup(&host)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let ip = nettools::pick_address(&ip).ok_or_else(|| format!("{host} has no address"))?;
        let scope = self
            .agent
            .net()
            .index(self.agent.iface())
            .await
            .ok()
            .flatten()
            .unwrap_or(0);
        Ok(Json(
            nettools::ping(ip, scope, count, wait)
                .await
                .map_err(|e| format!("{e:#}"))?,
        ))
    }

    #[tool(
        description = "Resolve a host name through the WiFi's DNS servers (from DHCP) or a given \
                       server. Returns the addresses and the servers asked.",
        annotations(title = "DNS lookup", read_only_hint = true, open_world_hint = true)
    )]
    async fn network_dns_lookup(
        &self,
        Parameters(a): Parameters<DnsArgs>,
    ) -> ToolResult<DnsReport> {
        validate::host(&a.name).map_err(err)?;
        let dns = match &a.server {
            Some(s) => nettools::Dns::new(
                vec![
                    s.parse()
                        .map_err(|_| format!("server must be an IP address, got {s:?}"))?,
                ],
                &self.agent.options().resolv_conf,
            ),
            None => self.agent.dns(),
        };
        let started = Instant::now();
        let addrs = dns.lookup(&a.name).await.map_err(|e| format!("{e:#}"))?;
        Ok(Json(DnsReport {
            name: a.name,
            addresses: addrs.iter().map(|a| a.to_string()).collect(),
            servers: dns.servers().iter().map(|s| s.to_string()).collect(),
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        }))
    }

    #[tool(
        description = "HTTP GET an http:// URL through the WiFi. Returns status, a few headers \
                       (location, content-type, server) and the start of the body.",
        annotations(title = "HTTP GET", read_only_hint = true, open_world_hint = true)
    )]
    async fn network_http_get(
        &self,
        Parameters(a): Parameters<HttpGetArgs>,
    ) -> ToolResult<HttpReport> {
        let max = a.max_bytes.unwrap_or(4096);
        if max > 65536 {
            return Err("max_bytes must be at most 65536".into());
        }
        let t = timeout_of(a.timeout_secs, 10)?;
        Ok(Json(
            nettools::http_get(&self.agent.dns(), &a.url, max, t)
                .await
                .map_err(|e| format!("{e:#}"))?,
        ))
    }

    #[tool(
        description = "Check Internet access through the WiFi: fetch a connectivity-check URL that \
                       answers 204. connectivity is full, captive (a portal intercepts) or none.",
        annotations(
            title = "Check Internet",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn network_check_internet(
        &self,
        Parameters(a): Parameters<CheckArgs>,
    ) -> ToolResult<CheckResult> {
        Ok(Json(self.check(a).await?))
    }

    #[tool(
        description = "Detect a captive portal on the WiFi: like network_check_internet, and when a \
                       portal intercepts, portal_url says where it redirects.",
        annotations(
            title = "Check captive portal",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn network_check_captive(
        &self,
        Parameters(a): Parameters<CheckArgs>,
    ) -> ToolResult<CheckResult> {
        Ok(Json(self.check(a).await?))
    }

    #[tool(
        description = "Recent wpa_supplicant, DHCP and agent events (secrets redacted), oldest \
                       first; for diagnosing failed connections.",
        annotations(title = "WiFi debug logs", read_only_hint = true)
    )]
    async fn wifi_debug_logs(&self, Parameters(a): Parameters<LogArgs>) -> ToolResult<LogsResult> {
        let n = a.lines.unwrap_or(100).min(500);
        Ok(Json(LogsResult {
            entries: self.agent.log().recent(n, a.source.as_deref()),
        }))
    }
}

impl WifiTools {
    async fn check(&self, a: CheckArgs) -> Result<CheckResult, String> {
        let url = a
            .url
            .unwrap_or_else(|| self.agent.options().check_url.clone());
        nettools::parse_http_url(&url).map_err(|e| format!("{e:#}"))?;
        let started = Instant::now();
        let got = nettools::http_get(&self.agent.dns(), &url, 1024, Duration::from_secs(10)).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(match got {
            Ok(r) => CheckResult {
                connectivity: nettools::classify(Some(r.status), r.body.len()),
                portal_url: r
                    .headers
                    .iter()
                    .find(|(k, _)| k == "location")
                    .map(|(_, v)| v.clone()),
                url,
                status: Some(r.status),
                error: None,
                elapsed_ms,
            },
            Err(e) => CheckResult {
                connectivity: Connectivity::None,
                url,
                status: None,
                portal_url: None,
                error: Some(format!("{e:#}")),
                elapsed_ms,
            },
        })
    }
}

#[tool_handler]
impl ServerHandler for WifiTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("wifi-isolate-agent", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "Controls the WiFi adapter {} inside an isolated network namespace. Start with \
                 wifi_scan, then wifi_connect (or wifi_connect_eap); network_* tools go out through \
                 the WiFi only. The host's own networking is never affected.",
                self.agent.iface()
            ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = request.name.to_string();
        let peer = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<PeerCred>().copied());
        let started = Instant::now();
        let result = self
            .tool_router
            .call(ToolCallContext::new(self, request, context))
            .await;
        let outcome = match &result {
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => "tool-error",
            Ok(_) => "ok",
            Err(_) => "protocol-error",
        };
        tracing::info!(
            MESSAGE_ID = msgid::TOOL_CALL,
            IFACE = %self.agent.iface(),
            tool = %tool,
            outcome,
            peer_uid = peer.map(|p| p.uid as i64).unwrap_or(-1),
            peer_pid = peer.map(|p| p.pid as i64).unwrap_or(-1),
            duration_ms = started.elapsed().as_millis() as u64,
            "MCP tool call"
        );
        result
    }
}
