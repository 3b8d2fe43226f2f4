//! [`WifiTools`], the MCP server: one handler per tool (argument bounds, then the agent),
//! progress notifications, and the tool-call audit record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, Json, Peer, RoleServer, ServerHandler, tool, tool_handler, tool_router};

use super::elicit;
use super::err;
use super::progress::Progress;
use super::schema::*;
use super::translate::{eap_spec, inline_eap_secrets, profile_spec, psk_spec};
use crate::agent::failure::{Code, Failure};
use crate::agent::net::target::Family;
use crate::agent::nettools::{self, Connectivity, PingReport};
use crate::agent::{Agent, ConnectResult};
use crate::validate::{self, Ssid};
use crate::wpa;

mod tasks;

/// A failure as the tool error a client reads: the text, and its stable code in `_meta`.
impl rmcp::handler::server::tool::IntoCallToolResult for Failure {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        Ok(coded_error(self.code.as_str(), self.text).into())
    }
}

/// The HTTP response stream of the request that carries a tool call: cancelled when the client
/// closes it before the answer (the 2026 way to cancel; `notifications/cancelled` is the other).
#[derive(Debug, Clone)]
pub struct ResponseStream(pub tokio_util::sync::CancellationToken);

/// Tools that change the radio's association: a cancelled one is followed by a disconnect, so
/// the radio ends in a stated condition (disconnected) and no half-made network stays behind.
const ASSOCIATING: &[&str] = &[
    "wifi_connect",
    "wifi_connect_eap",
    "wifi_connect_passpoint",
    "wifi_reconnect",
    "wifi_roam",
];

/// The peer of an MCP connection, as seen by the socket (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy)]
pub struct PeerCred {
    /// Peer user id.
    pub uid: u32,
    /// Peer process id.
    pub pid: i32,
}

/// The tool error when `[security] inline_secrets = false` and a call carries a secret.
pub(super) fn inline_refused(what: &str) -> Failure {
    Failure::invalid(format!(
        "this host does not accept secrets as tool arguments ({what}): use a saved network, \
         wifi_connect {{\"network\": NAME}} (see wifi_saved_networks); an administrator adds \
         one on the host with `wifi-isolate network add NAME --ssid SSID --security MODE`"
    ))
}

pub(super) fn timeout_of(secs: Option<u64>, default: u64) -> Result<Duration, Failure> {
    timeout_within(secs, default, 300)
}

fn timeout_within(secs: Option<u64>, default: u64, max: u64) -> Result<Duration, Failure> {
    match secs {
        None => Ok(Duration::from_secs(default)),
        Some(s) if (1..=max).contains(&s) => Ok(Duration::from_secs(s)),
        Some(s) => Err(Failure::invalid(format!(
            "timeout_secs must be 1-{max}, got {s}"
        ))),
    }
}

/// The MCP server: the agent's tools.
#[derive(Clone)]
pub struct WifiTools {
    pub(super) agent: Arc<Agent>,
    tool_router: ToolRouter<Self>,
    /// The Tasks extension's tasks ([`tasks`]), one store for the process: a sessionless
    /// server builds a `WifiTools` per request.
    tasks: rmcp::task_manager::TaskManager,
}

#[tool_router]
impl WifiTools {
    /// Tools over a started agent.
    pub fn new(agent: Arc<Agent>) -> Self {
        Self {
            agent,
            tool_router: Self::tool_router()
                + Self::radio_router()
                + Self::net_router()
                + Self::captive_router()
                + Self::capture_router()
                + Self::ap_router()
                + Self::passpoint_router(),
            tasks: tasks::manager(),
        }
    }

    #[tool(
        description = "Scan for WiFi networks now (a fresh scan, 2-10 s; waits for its results up \
                       to timeout_secs, default 30) and list every access point seen: bssid, \
                       ssid, frequency (MHz), channel, signal (dBm), security (open, owe, \
                       owe-transition, wpa2-psk, wpa3-sae, wpa2-psk/wpa3-sae, wpa2-eap, ...) and \
                       modes (AKMs, ciphers, PMF disabled/optional/required, SAE H2E/PK, \
                       transition) and detail (802.11 generation n/ac/ax/be, channel width, \
                       BSS load, 802.11k/v/r, country, WPS, Hotspot 2.0). complete=false means \
                       the time ran out and the list is partial. Hidden networks show an empty \
                       ssid.",
        annotations(title = "Scan WiFi", read_only_hint = true, open_world_hint = true)
    )]
    async fn wifi_scan(
        &self,
        Parameters(a): Parameters<TimeoutArgs>,
    ) -> Result<Json<ScanResult>, Failure> {
        let t = timeout_of(a.timeout_secs, 30)?;
        let started = Instant::now();
        let mut scan = self.agent.scan_until(t).await?;
        scan.networks
            .sort_by_key(|n| std::cmp::Reverse(n.signal_dbm));
        Ok(Json(ScanResult {
            networks: scan.networks,
            elapsed_ms: started.elapsed().as_millis() as u64,
            complete: scan.complete,
            attempts: scan.attempts,
            note: scan.note,
        }))
    }

    #[tool(
        description = "Connect to a WiFi network and get an address by DHCP. Prefer a saved \
                       network: {\"network\": NAME} (wifi_saved_networks lists them; any \
                       security, EAP included, and the password never passes through this \
                       conversation). Or inline: ssid (+ password) for open, WPA2-PSK or \
                       WPA3-SAE. SAE-PK (sae_pk: auto, required, off): with an SAE-PK password \
                       (like abcd-efgh-ijkl) the AP proves it holds the network's key; \
                       link_security.sae_pk says it did. Reports progress (associating, 4-way \
                       handshake, DHCP). Returns ip, gateway, dns and elapsed time. A wrong \
                       password fails fast with 'authentication failed'. Replaces an earlier \
                       configuration of the same SSID.",
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
        // Before `meta`: that extractor moves the request's _meta out of the context (the
        // 2026-07-28 client capabilities are there).
        ctx: RequestContext<RoleServer>,
        meta: rmcp::model::RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<ConnectResult>, elicit::ConnectError> {
        let t = timeout_of(a.timeout_secs, 30)?;
        let mut a = a;
        super::radio::auto_owe(&self.agent, &mut a).await;
        let spec = match &a.network {
            Some(name) => {
                if a.ssid.is_some()
                    || a.password.is_some()
                    || a.bssid.is_some()
                    || a.hidden
                    || a.security != SecurityMode::Auto
                    || a.mac_address != MacMode::Permanent
                    || a.sae_pk != SaePkMode::Auto
                {
                    return Err(elicit::ConnectError::from(Failure::invalid(
                        "network names a saved network: its ssid, password, security, \
                                bssid, hidden, mac_address and sae_pk come from the host's \
                                profile; give network alone (and timeout_secs)",
                    )));
                }
                let p = self.agent.saved_network(name)?;
                profile_spec(self.agent.perm_mac, self.agent.certs(), &p)
                    .map_err(Failure::invalid)?
            }
            None => {
                if a.password.is_some() && !self.agent.options().inline_secrets {
                    return Err(inline_refused("password").into());
                }
                match elicit::without_secret(&self.agent, &a, &ctx).await? {
                    Some(spec) => spec,
                    None => psk_spec(self.agent.perm_mac, &a).map_err(Failure::invalid)?,
                }
            }
        };
        let progress = Progress::new(peer, &meta);
        let result = self.agent.connect(spec, t, &progress.sink()).await;
        progress.flush().await;
        Ok(Json(result?))
    }

    #[tool(
        description = "Connect to a WPA2/WPA3-Enterprise network: PEAP or TTLS with MSCHAPv2 \
                       (identity + password), or EAP-TLS (client certificate + private key, as \
                       PEM text or files in the box's certificates directory \
                       /etc/wifi-isolate/certs). Give ca_cert to verify the server. security: \
                       auto (default: WPA2 or WPA3-Enterprise as the AP offers, PMF when it \
                       has it, the 192-bit mode when the scan saw only that), wpa2-eap, \
                       wpa3-eap (EAP-SHA256, PMF required) or wpa3-eap-192 (suite B: \
                       GCMP-256, BIP-GMAC-256, EAP-TLS with the SUITEB192 ciphers and a P-384 \
                       certificate). Returns ip, gateway, dns and elapsed time.",
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
    ) -> Result<Json<ConnectResult>, Failure> {
        let t = timeout_of(a.timeout_secs, 30)?;
        let inline = inline_eap_secrets(&a);
        if !inline.is_empty() && !self.agent.options().inline_secrets {
            return Err(inline_refused(&inline.join(", ")));
        }
        let mut a = a;
        if a.security == EapSecurity::Auto
            && let Ok(ssid) = Ssid::parse(&a.ssid)
            && self.agent.offers_eap192_only(&ssid).await
        {
            a.security = EapSecurity::Wpa3Eap192;
        }
        let spec = eap_spec(&self.agent, &a).map_err(Failure::invalid)?;
        let progress = Progress::new(peer, &meta);
        let result = self.agent.connect(spec, t, &progress.sink()).await;
        progress.flush().await;
        Ok(Json(result?))
    }

    #[tool(
        description = "The saved networks this adapter may use (set up on the host by its \
                       administrator): name, ssid, security, EAP method, hidden. Connect with \
                       wifi_connect {\"network\": NAME}. Never shows a secret.",
        annotations(title = "Saved networks", read_only_hint = true)
    )]
    async fn wifi_saved_networks(&self) -> Result<Json<SavedNetworksResult>, Failure> {
        let (ok, unreadable) = self.agent.saved_networks();
        Ok(Json(SavedNetworksResult {
            networks: ok
                .into_iter()
                .map(|(name, p)| SavedNetwork {
                    name,
                    ssid: p.ssid.clone(),
                    security: p.security.to_string(),
                    eap_method: p.eap.as_ref().map(|e| {
                        match e.method {
                            EapKind::Peap => "peap",
                            EapKind::Ttls => "ttls",
                            EapKind::Tls => "tls",
                        }
                        .to_string()
                    }),
                    hidden: p.hidden,
                })
                .collect(),
            unreadable,
        }))
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
    async fn wifi_disconnect(&self) -> Result<Json<Done>, Failure> {
        self.agent.disconnect().await?;
        Ok(Json(Done {
            message: "disconnected; lease released".into(),
            network_ids: vec![],
        }))
    }

    #[tool(
        description = "Current WiFi state: supplicant state, ssid, bssid, frequency, channel, signal \
                       (dBm), key management, IP address, gateway, DNS servers, the box's \
                       routes and addresses (IPv4 and IPv6), the access point that runs \
                       (wifi_ap_start) and what the phy allows (a station and an AP at once, on \
                       how many channels: its interface combinations).",
        annotations(title = "WiFi status", read_only_hint = true)
    )]
    async fn wifi_status(&self) -> Result<Json<StatusResult>, Failure> {
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
            link_security: (st.wpa_state == wpa::WpaState::Completed).then(|| {
                wpa::modes::LinkSecurity::from_status(
                    st.key_mgmt.as_deref(),
                    st.pairwise_cipher.as_deref(),
                    st.group_cipher.as_deref(),
                    &st.other,
                )
            }),
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
            access_point: self.agent.ap_summary(),
            ap_concurrency: self.agent.ap_concurrency().await.ok(),
        }))
    }

    #[tool(
        description = "List the networks configured in this session (id, ssid, bssid, flags: \
                       current, disabled). Secrets are never shown.",
        annotations(title = "List configured networks", read_only_hint = true)
    )]
    async fn wifi_list_networks(&self) -> Result<Json<NetworksResult>, Failure> {
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
    async fn wifi_forget(
        &self,
        Parameters(a): Parameters<ForgetArgs>,
    ) -> Result<Json<Done>, Failure> {
        let ssid = match &a.ssid {
            Some(s) => Some(Ssid::parse(s).map_err(Failure::invalid)?),
            None => None,
        };
        if ssid.is_none() && a.network_id.is_none() {
            return Err(Failure::invalid("give ssid or network_id"));
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
    ) -> Result<Json<ConnectResult>, Failure> {
        let t = timeout_of(a.timeout_secs, 30)?;
        let progress = Progress::new(peer, &meta);
        let result = self.agent.reconnect(t, &progress.sink()).await;
        progress.flush().await;
        Ok(Json(result?))
    }

    #[tool(
        description = "Ping a host through the WiFi (ICMP or ICMPv6 echo). host: IPv4 or IPv6 \
                       address or name (default: the gateway); family: auto, ipv4 or ipv6. \
                       Returns the address and family used, sent/received and round-trip times \
                       (ms).",
        annotations(title = "Ping", read_only_hint = true, open_world_hint = true)
    )]
    async fn network_ping(
        &self,
        Parameters(a): Parameters<PingArgs>,
    ) -> Result<Json<PingReport>, Failure> {
        let count = a.count.unwrap_or(3);
        if !(1..=20).contains(&count) {
            return Err(Failure::invalid(format!("count must be 1-20, got {count}")));
        }
        let wait = timeout_within(a.timeout_secs, 2, 30)?;
        let family = a.family.unwrap_or_default();
        let dns = self.agent.dns().await;
        let host = match a.host {
            Some(h) => {
                validate::host(&h).map_err(Failure::invalid)?;
                h
            }
            None if family == Family::Ipv6 => {
                // (checked first, so a network without IPv6 says so rather than "no router")
                crate::agent::net::conn::check_family(&dns, "::", family)?;
                self.default_router_v6().await.ok_or(Failure::new(
                    Code::NotFound,
                    "no IPv6 default router (the network sent no router advertisement with a \
                     default route); give host",
                ))?
            }
            None => self
                .agent
                .lease()
                .and_then(|l| l.gateway)
                .map(|g| g.to_string())
                .ok_or(Failure::new(
                    Code::NotConnected,
                    "not connected (no gateway); give host",
                ))?,
        };
        let (ip, _) = crate::agent::net::conn::resolve(&dns, &host, family).await?;
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
    ) -> Result<Json<CheckResult>, Failure> {
        Ok(Json(self.check(a).await?))
    }

    // network_check_captive: in the captive router (tools/captive.rs).

    #[tool(
        description = "Recent wpa_supplicant, DHCP and agent events (secrets redacted), oldest \
                       first; for diagnosing failed connections.",
        annotations(title = "WiFi debug logs", read_only_hint = true)
    )]
    async fn wifi_debug_logs(
        &self,
        Parameters(a): Parameters<LogArgs>,
    ) -> Result<Json<LogsResult>, Failure> {
        let n = a.lines.unwrap_or(100).min(500);
        Ok(Json(LogsResult {
            entries: self.agent.log().recent(n, a.source.as_deref()),
        }))
    }
}

impl WifiTools {
    /// The IPv6 default router of the WiFi interface (a router advertisement's), if any.
    async fn default_router_v6(&self) -> Option<String> {
        let routes = self.agent.net().routes().await.ok()?;
        routes
            .into_iter()
            .find(|r| {
                r.family == crate::agent::netcfg::Family::Ipv6
                    && r.destination == "default"
                    && r.dev.as_deref() == Some(self.agent.iface())
            })
            .and_then(|r| r.gateway)
    }

    async fn check(&self, a: CheckArgs) -> Result<CheckResult, Failure> {
        let url = a
            .url
            .unwrap_or_else(|| self.agent.options().check_url.clone());
        let parsed = crate::agent::net::target::web_url(&url)?;
        let dns = self.agent.dns().await;
        let family = a.family.unwrap_or_default();
        super::captive::check_family(&dns, &parsed, family)?;
        let started = Instant::now();
        // The same request as network_check_captive's first step, with the session's cookies,
        // so a portal that unlocks by cookie reads `full` here too after network_captive_login.
        let fetch = crate::agent::net::captive::Fetch {
            tls: Default::default(),
            connect_timeout: Duration::from_secs(10),
            family,
        };
        match tokio::time::timeout(
            Duration::from_secs(15),
            crate::agent::net::captive::probe(&dns, &parsed, &fetch),
        )
        .await
        {
            Ok((c, _)) => Ok(c),
            Err(_) => Ok(CheckResult {
                connectivity: Connectivity::None,
                url,
                status: None,
                portal_url: None,
                error: Some("no answer within 15 s".into()),
                family: None,
                elapsed_ms: started.elapsed().as_millis() as u64,
            }),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for WifiTools {
    fn get_info(&self) -> ServerConfig {
        #[allow(deprecated)] // logging/setLevel: 2025-11-25 clients still send it
        let caps = ServerCapabilities::builder()
            .enable_logging()
            .enable_prompts()
            .enable_resources()
            .enable_tools()
            .enable_tasks()
            .build();
        ServerConfig::new(caps)
            .with_server_info(Implementation::new(
                "wifi-isolate-agent",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(format!(
                "Controls the WiFi adapter {} inside an isolated network namespace. Start with \
                 wifi_saved_networks and wifi_scan, then wifi_connect (a saved network by name, \
                 so no password passes through the conversation; or ssid + password, or \
                 wifi_connect_eap); network_* tools go out through the WiFi only. The host's own \
                 networking is never affected.",
                self.agent.iface()
            ))
    }

    /// `logging/setLevel` (2025-11-25; deprecated in 2026-07-28 for the per-request level):
    /// accepted. The agent's own events are the `wifi-isolate://debug-log` resource and
    /// `wifi_debug_logs`; it sends no log notifications.
    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        tracing::debug!(level = ?request.level, "client log level");
        Ok(())
    }

    async fn list_resources(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourcesResult, ErrorData> {
        Ok(rmcp::model::ListResourcesResult::with_all_items(vec![
            rmcp::model::Resource::new(RESOURCE_STATUS, "status")
                .with_description(
                    "What wifi_status returns: the WiFi state, addresses and routes in the box",
                )
                .with_mime_type("application/json"),
            rmcp::model::Resource::new(RESOURCE_LOG, "debug-log")
                .with_description(
                    "The agent's recent events (supplicant, DHCP, agent), secrets redacted",
                )
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: rmcp::model::ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ReadResourceResponse, ErrorData> {
        let json = |v: serde_json::Value| {
            rmcp::model::ResourceContents::text(v.to_string(), request.uri.clone())
                .with_mime_type("application/json")
        };
        let contents = match request.uri.as_str() {
            RESOURCE_STATUS => match self.wifi_status().await {
                Ok(Json(st)) => json(serde_json::to_value(st).unwrap_or_default()),
                Err(f) => json(serde_json::json!({"error": f.text, "code": f.code.as_str()})),
            },
            RESOURCE_LOG => json(serde_json::json!({
                "entries": self.agent.log().recent(200, None),
            })),
            other => {
                return Err(ErrorData::resource_not_found(
                    format!("no resource {other:?}: see resources/list"),
                    None,
                ));
            }
        };
        Ok(rmcp::model::ReadResourceResult::new(vec![contents]).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListPromptsResult, ErrorData> {
        let mut network = rmcp::model::PromptArgument::new("network");
        network.description =
            Some("a saved network's name (wifi_saved_networks), or an SSID to scan for".into());
        network.required = Some(true);
        Ok(rmcp::model::ListPromptsResult::with_all_items(vec![
            rmcp::model::Prompt::new(
                PROMPT_TEST,
                Some(
                    "Join a network and report what it does: association, DHCP, DNS, internet, captive portal",
                ),
                Some(vec![network]),
            ),
        ]))
    }

    async fn get_prompt(
        &self,
        request: rmcp::model::GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetPromptResponse, ErrorData> {
        if request.name != PROMPT_TEST {
            return Err(ErrorData::invalid_params(
                format!("no prompt {:?}: see prompts/list", request.name),
                None,
            ));
        }
        let network = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("network"))
            .and_then(|v| v.as_str())
            .ok_or_else(|| ErrorData::invalid_params("the argument network is required", None))?;
        let text = format!(
            "Test the WiFi network {network:?} with the wifi-isolate tools: if wifi_saved_networks \
             lists it, connect with wifi_connect {{\"network\": NAME}} (never ask for its password); \
             otherwise find it with wifi_scan. Then report the lease (wifi_status), \
             network_check_internet, network_check_captive, a DNS lookup and a ping of the \
             gateway, and disconnect with wifi_disconnect. Say what failed and its error code."
        );
        Ok(
            rmcp::model::GetPromptResult::new(vec![rmcp::model::PromptMessage::new_text(
                rmcp::model::Role::User,
                text,
            )])
            .with_description("Join a network and report what it does")
            .into(),
        )
    }

    /// `tasks/get` (the Tasks extension): the task's state, its result once completed.
    async fn get_task(
        &self,
        request: rmcp::model::GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetTaskResult, ErrorData> {
        self.tasks
            .get_task(&request.task_id)
            .map(rmcp::model::GetTaskResult::new)
    }

    /// `tasks/update`: no tool asks for input mid-task; answers are accepted and ignored.
    async fn update_task(
        &self,
        request: rmcp::model::UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks
            .update_task(&request.task_id, request.input_responses)
    }

    /// `tasks/cancel`: the call stops as with `notifications/cancelled` ([`tasks`]).
    async fn cancel_task(
        &self,
        request: rmcp::model::CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks.cancel_task(&request.task_id)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = request.name.to_string();
        if let Some(f) = elicit::declined(&request) {
            return Ok(coded_error(f.code.as_str(), f.text).into());
        }
        let version = context.protocol_version();
        if tasks::wants_task(&tool, &context) {
            return Ok(self.spawn_task(request, context));
        }
        let peer = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<PeerCred>().copied());
        let started = Instant::now();
        let stream_closed = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<ResponseStream>().cloned());
        let cancelled = context.ct.clone();
        let call = self
            .tool_router
            .call(ToolCallContext::new(self, request, context));
        // A cancelled call is dropped where it stands (its operation lock with it), then an
        // associating tool is followed by a disconnect.
        let why = tokio::select! {
            r = call => Ok(r),
            _ = cancelled.cancelled() => Err("notifications/cancelled"),
            _ = async {
                match &stream_closed {
                    Some(s) => s.0.cancelled().await,
                    None => std::future::pending().await,
                }
            } => Err("the client closed the response stream"),
        };
        let mut result = match why {
            // Arguments that do not fit the tool's input schema: a tool error the model can
            // correct (as the specification asks of input validation), coded like every other
            // bad input. An unknown tool stays the protocol error.
            Ok(Err(e))
                if e.code == rmcp::model::ErrorCode::INVALID_PARAMS
                    && self.tool_router.has_route(&tool) =>
            {
                Ok(CallToolResponse::Complete(coded_error(
                    Code::InvalidArgument.as_str(),
                    format!("{tool}: {}", e.message),
                )))
            }
            Ok(r) => elicit::for_era(r, version),
            Err(why) => Ok(self.cancelled(&tool, why).await),
        };
        if let Ok(CallToolResponse::Complete(r)) = &mut result {
            give_code(r);
        }
        let outcome = match &result {
            Ok(CallToolResponse::Complete(r))
                if error_code(r) == Some(Code::Cancelled.as_str()) =>
            {
                "cancelled"
            }
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => "tool-error",
            Ok(_) => "ok",
            Err(_) => "protocol-error",
        };
        // The audit record of a tool call is the host's (the proxy's, MESSAGE_ID TOOL_CALL, with
        // this outcome read from the answer): one record per call, findable in the journal. The
        // agent's own line is a debug trace.
        tracing::debug!(
            tool = %tool,
            outcome,
            peer_uid = peer.map(|p| p.uid as i64).unwrap_or(-1),
            peer_pid = peer.map(|p| p.pid as i64).unwrap_or(-1),
            duration_ms = started.elapsed().as_millis() as u64,
            "tool call done"
        );
        result
    }
}

impl WifiTools {
    /// What a cancelled call leaves: the radio disconnected after an associating tool (bounded:
    /// 5 s), and a tool error with the stable code `cancelled` saying so.
    async fn cancelled(&self, tool: &str, why: &str) -> CallToolResponse {
        let mut state = "nothing changed on the radio";
        if ASSOCIATING.contains(&tool) {
            state =
                match tokio::time::timeout(Duration::from_secs(5), self.agent.disconnect()).await {
                    Ok(Ok(())) => "the radio is disconnected",
                    Ok(Err(_)) | Err(_) => "the disconnect after it failed; call wifi_disconnect",
                };
        }
        tracing::info!(tool, why, state, "tool call cancelled");
        CallToolResponse::Complete(coded_error(
            Code::Cancelled.as_str(),
            format!("{tool} cancelled ({why}); {state}"),
        ))
    }
}

/// The resource that reads like `wifi_status`.
const RESOURCE_STATUS: &str = "wifi-isolate://status";
/// The resource of the agent's recent events.
const RESOURCE_LOG: &str = "wifi-isolate://debug-log";
/// The one prompt: test a network end to end.
const PROMPT_TEST: &str = "test_network";

/// The `_meta` key of a tool error's stable, machine-readable code (the text says the rest).
/// Not `structuredContent`: that must match the tool's output schema.
pub const ERROR_CODE_KEY: &str = "wifi-isolate/error-code";

/// A tool error (`isError: true`) with its stable code in `_meta` ([`ERROR_CODE_KEY`]).
fn coded_error(code: &str, text: String) -> rmcp::model::CallToolResult {
    let mut r = rmcp::model::CallToolResult::error(vec![rmcp::model::ContentBlock::text(text)]);
    let mut meta = serde_json::Map::new();
    meta.insert(ERROR_CODE_KEY.into(), serde_json::Value::from(code));
    r.meta = Some(rmcp::model::MetaObject(meta));
    r
}

/// Every tool error leaves with a code: rmcp's own (arguments its deserializer refused, before
/// the tool ran) are `invalid_argument`; anything else uncoded is `failed`.
fn give_code(r: &mut rmcp::model::CallToolResult) {
    if r.is_error != Some(true) || error_code(r).is_some() {
        return;
    }
    let text: String = r
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect();
    let code = if text.starts_with("failed to deserialize parameters") {
        Code::InvalidArgument
    } else {
        Code::Failed
    };
    r.meta.get_or_insert_with(Default::default).0.insert(
        ERROR_CODE_KEY.into(),
        serde_json::Value::from(code.as_str()),
    );
}

/// The stable code of a tool error, if it has one.
fn error_code(r: &rmcp::model::CallToolResult) -> Option<&str> {
    r.meta.as_ref()?.0.get(ERROR_CODE_KEY)?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rmcp derives a tool's outputSchema only from a literal `Json<T>` / `Result<Json<T>, E>`
    /// return type (an alias hides it): every tool of every router has one.
    #[test]
    fn every_tool_has_an_output_schema() {
        let tools = (WifiTools::tool_router()
            + WifiTools::radio_router()
            + WifiTools::net_router()
            + WifiTools::captive_router()
            + WifiTools::capture_router()
            + WifiTools::ap_router()
            + WifiTools::passpoint_router())
        .list_all();
        assert!(tools.len() >= 20, "{} tools", tools.len());
        let missing: Vec<_> = tools
            .iter()
            .filter(|t| t.output_schema.is_none())
            .map(|t| t.name.to_string())
            .collect();
        assert!(missing.is_empty(), "no outputSchema: {missing:?}");
    }

    #[test]
    fn a_coded_error_carries_its_code_in_meta_not_in_structured_content() {
        let r = coded_error("cancelled", "wifi_connect cancelled".into());
        assert_eq!(r.is_error, Some(true));
        assert_eq!(error_code(&r), Some("cancelled"));
        assert!(r.structured_content.is_none());
        let wire = serde_json::to_value(&r).unwrap();
        assert_eq!(wire["_meta"][ERROR_CODE_KEY], "cancelled");
        assert_eq!(
            error_code(&rmcp::model::CallToolResult::error(vec![])),
            None
        );
    }

    #[test]
    fn every_tool_error_leaves_with_a_code() {
        let mut bad = rmcp::model::CallToolResult::error(vec![rmcp::model::ContentBlock::text(
            "failed to deserialize parameters: invalid type: string \"abc\", expected u64",
        )]);
        give_code(&mut bad);
        assert_eq!(error_code(&bad), Some("invalid_argument"));
        let mut other =
            rmcp::model::CallToolResult::error(vec![rmcp::model::ContentBlock::text("boom")]);
        give_code(&mut other);
        assert_eq!(error_code(&other), Some("failed"));
        let mut coded = coded_error("busy", "held".into());
        give_code(&mut coded);
        assert_eq!(error_code(&coded), Some("busy"));
        let mut fine = rmcp::model::CallToolResult::success(vec![]);
        give_code(&mut fine);
        assert_eq!(error_code(&fine), None);
    }
}
