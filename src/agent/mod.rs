//! `wifi-isolate-agent`: the MCP WiFi agent that runs inside the box.
//!
//! [`Agent`] owns the WiFi interface of its network namespace: it supervises wpa_supplicant
//! ([`supervisor`]), runs DHCP after association ([`dhcp`]), and implements the operations the MCP
//! tools ([`tools`]) expose. [`server`] serves them over streamable HTTP on a Unix socket or stdio.

pub mod ap;
pub mod capture;
pub mod certs;
pub mod dhcp;
pub mod events;
pub mod failure;
pub mod history;
pub mod iface;
pub mod link;
pub mod net;
pub mod netcfg;
pub mod nettools;
pub mod passpoint;
pub mod radio;
pub mod roam;
pub mod server;
pub mod supervisor;
pub mod survey;
pub mod tools;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio::sync::{Mutex, MutexGuard, broadcast};
use tracing::{info, warn};

use crate::validate::Ssid;
use crate::wpa::{CtrlClient, Event, NetworkField};
use dhcp::{Dhcp, Lease};
use events::LogRing;
use failure::{Code, Failure};
use netcfg::NetCfg;
use supervisor::{Wpa, WpaPaths};

/// How the agent is set up (from its command line).
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Use this wireless interface; by default the first one that appears.
    pub interface: Option<String>,
    /// How long to wait for the wireless interface to arrive.
    pub wait_interface: Duration,
    /// Private runtime dir (wpa_supplicant config, sockets): a tmpfs in the box.
    pub runtime_dir: PathBuf,
    /// The box's resolv.conf, rewritten from the DHCP lease.
    pub resolv_conf: PathBuf,
    /// wpa_supplicant binary.
    pub wpa_supplicant: PathBuf,
    /// DHCP client command prefix (`udhcpc`, or `busybox udhcpc`).
    pub udhcpc: Vec<String>,
    /// Regulatory country for wpa_supplicant (changes the kernel's domain host-wide).
    pub country: Option<String>,
    /// URL used by the Internet and captive-portal checks.
    pub check_url: String,
    /// The only directory EAP certificate and key paths may point into (read-only in the box:
    /// [`certs::DEFAULT_CERTS_DIR`]).
    pub certs_dir: PathBuf,
    /// Box-private directory for PEM text given inline (`<runtime_dir>/certs` by default).
    pub upload_dir: PathBuf,
    /// The box's copy of the host's saved networks ([`crate::networks`]), read at each call.
    pub networks_dir: PathBuf,
    /// Whether tools accept passwords and keys as arguments (`[security] inline_secrets`);
    /// saved networks work either way.
    pub inline_secrets: bool,
    /// Test only: drive the wired interface [`AgentOptions::interface`] names (wpa_supplicant
    /// `-D wired`, no nl80211), so the MCP server runs on a host without WiFi (the conformance
    /// suite in `tests/host/conformance.rs`). Scans and connects do not work in this mode.
    pub wired: bool,
}

/// Where the daemon puts the box's copy of the saved networks, as the box sees it.
pub const DEFAULT_NETWORKS_DIR: &str = "/run/wifi-isolate/networks";

/// Stages `wifi_connect` reports as MCP progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Looking for and associating with the AP.
    Associating,
    /// Associated; keys being negotiated (4-way handshake, SAE or EAP).
    Authenticating,
    /// Connected; waiting for a DHCP lease.
    Dhcp,
    /// Done.
    Done,
}

impl Stage {
    /// Progress value (out of 4) and a message for clients.
    pub fn progress(self) -> (f64, &'static str) {
        match self {
            Stage::Associating => (1.0, "associating"),
            Stage::Authenticating => (2.0, "4-way handshake / authentication"),
            Stage::Dhcp => (3.0, "DHCP"),
            Stage::Done => (4.0, "done"),
        }
    }
}

/// A network to configure: fields for SET_NETWORK, and the secrets to scrub from logs.
#[derive(Clone)]
pub struct NetworkSpec {
    /// The SSID.
    pub ssid: Ssid,
    /// Fields in the order they are set.
    pub fields: Vec<NetworkField>,
    /// Plain secrets that must never appear in the debug log.
    pub secrets: Vec<String>,
    /// A locally administered MAC to use for this network (per-network MAC mode).
    pub mac: Option<[u8; 6]>,
    /// PEM files written for this call ([`certs::Certs`]): kept if the connect succeeds.
    pub uploads: Vec<PathBuf>,
}

/// Structured result of a successful connection.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ConnectResult {
    /// SSID connected to.
    pub ssid: String,
    /// BSSID of the AP.
    pub bssid: Option<String>,
    /// Frequency in MHz.
    pub frequency: Option<u32>,
    /// Key management in use (`WPA2-PSK`, `SAE`, `NONE`, `WPA2/IEEE 802.1X/EAP`…).
    pub key_mgmt: Option<String>,
    /// The security of the association: ciphers, PMF in use, SAE group and H2E/PK.
    pub link_security: Option<crate::wpa::modes::LinkSecurity>,
    /// wpa_supplicant's network id.
    pub network_id: u32,
    /// Our IPv4 address.
    pub ip: String,
    /// Prefix length.
    pub prefix: u8,
    /// Default gateway.
    pub gateway: Option<String>,
    /// DNS servers.
    pub dns: Vec<String>,
    /// Time from request to lease, in milliseconds.
    pub elapsed_ms: u64,
}

impl ConnectResult {
    fn new(
        ssid: String,
        st: Option<&crate::wpa::Status>,
        network_id: u32,
        lease: &Lease,
        started: Instant,
    ) -> Self {
        Self {
            ssid,
            bssid: st.and_then(|s| s.bssid).map(|b| b.to_string()),
            frequency: st.and_then(|s| s.freq_mhz),
            key_mgmt: st.and_then(|s| s.key_mgmt.clone()),
            link_security: st.map(|s| {
                crate::wpa::modes::LinkSecurity::from_status(
                    s.key_mgmt.as_deref(),
                    s.pairwise_cipher.as_deref(),
                    s.group_cipher.as_deref(),
                    &s.other,
                )
            }),
            network_id,
            ip: lease.ip.to_string(),
            prefix: lease.prefix,
            gateway: lease.gateway.map(|g| g.to_string()),
            dns: lease.dns.iter().map(|d| d.to_string()).collect(),
            elapsed_ms: started.elapsed().as_millis() as u64,
        }
    }
}

/// How long an operation on the connection waits for the one before it before answering `busy`.
const BUSY_WAIT: Duration = Duration::from_secs(2);

/// The agent: one WiFi interface, its supplicant, its DHCP client.
pub struct Agent {
    opts: AgentOptions,
    iface: String,
    wpa: Arc<Wpa>,
    dhcp: Arc<Dhcp>,
    net: NetCfg,
    log: LogRing,
    /// Serialises operations that change the connection ([`Agent::op_lock`]).
    op: Mutex<()>,
    perm_mac: Option<[u8; 6]>,
    certs: certs::Certs,
    /// What happened on the radio (`wifi_events`).
    history: history::History,
    /// The access point, while the radio is one (`wifi_ap_start`).
    ap: ap::ApSlot,
    /// The phy's interface combinations, read once ([`Agent::ap_concurrency`]).
    concurrency: tokio::sync::OnceCell<iface::ApConcurrency>,
}

impl Agent {
    /// Wait for the wireless interface, start wpa_supplicant and the DHCP hook.
    pub async fn start(opts: AgentOptions) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(&opts.runtime_dir)
            .with_context(|| format!("creating runtime dir {}", opts.runtime_dir.display()))?;
        let wi = if opts.wired {
            let name = opts
                .interface
                .clone()
                .context("wired mode needs the interface named")?;
            let index = NetCfg::open()?
                .index(&name)
                .await?
                .with_context(|| format!("no interface {name} in this network namespace"))?;
            warn!(iface = %name, "wired test mode: no WiFi, wpa_supplicant -D wired");
            iface::WirelessIface {
                name,
                index,
                wiphy: u32::MAX,
            }
        } else {
            let wi = iface::wait_for(opts.interface.as_deref(), opts.wait_interface).await?;
            info!(iface = %wi.name, phy = wi.wiphy, "wireless interface found");
            wi
        };
        Self::start_on(opts, wi).await
    }

    /// [`Agent::start`] on an interface already found (tests drive a wired or loopback one:
    /// this host may have no radio).
    pub async fn start_on(
        opts: AgentOptions,
        wi: iface::WirelessIface,
    ) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(&opts.runtime_dir)
            .with_context(|| format!("creating runtime dir {}", opts.runtime_dir.display()))?;
        let net = NetCfg::open()?;
        if !opts.wired {
            // A monitor or an AP interface an earlier agent in this box died with.
            let gone = iface::delete_leftovers(&net, &wi).await;
            if !gone.is_empty() {
                info!(iface = %wi.name, deleted = ?gone, "leftover interfaces of an earlier agent deleted");
            }
        }
        net.set_up(wi.index)
            .await
            .with_context(|| format!("bringing {} up (rfkill blocked?)", wi.name))?;
        // Over rtnetlink: the box has no /sys.
        let perm_mac = net.mac(wi.index).await.ok().flatten();
        let log = LogRing::new(500);
        let wpa = Wpa::spawn(
            &wi.name,
            WpaPaths {
                binary: opts.wpa_supplicant.clone(),
                runtime_dir: opts.runtime_dir.clone(),
                ctrl_dir: opts.runtime_dir.join("wpa_supplicant"),
                country: opts.country.clone(),
                driver: if opts.wired { "wired" } else { "nl80211" },
            },
            log.clone(),
        )?;
        let dhcp = Dhcp::new(
            &wi.name,
            net.clone(),
            &opts.runtime_dir,
            &opts.resolv_conf,
            opts.udhcpc.clone(),
            log.clone(),
        );
        dhcp.serve_hook()?;
        let certs = certs::Certs::new(&opts.certs_dir, &opts.upload_dir);
        let history = history::History::default();
        history.spawn(wpa.subscribe(), dhcp.subscribe_lease());
        let agent = Arc::new(Self {
            history,
            opts,
            certs,
            iface: wi.name,
            wpa,
            dhcp,
            net,
            log,
            op: Mutex::new(()),
            perm_mac,
            ap: Default::default(),
            concurrency: Default::default(),
        });
        // Serve at once: tool calls wait (bounded) for wpa_supplicant's control socket
        // themselves, so the host's READY does not wait for it too. A wpa_supplicant that
        // never comes up is still reported — here, and by every call that needs it.
        {
            let wpa = agent.wpa.clone();
            let log = agent.log.clone();
            tokio::spawn(async move {
                if let Err(e) = wpa.client().await {
                    warn!(cause = %e, "wpa_supplicant's control socket did not come up");
                    log.push("agent", format!("wpa_supplicant did not come up: {e}"));
                }
            });
        }
        agent.clone().spawn_background();
        Ok(agent)
    }

    /// The interface this agent drives.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// What happened on the radio: connects, roams, disconnects, rejections, leases.
    pub fn history(&self) -> &history::History {
        &self.history
    }

    /// The debug log ring.
    pub fn log(&self) -> &LogRing {
        &self.log
    }

    /// Stop wpa_supplicant and DHCP (lease released); remove the uploaded PEM files.
    pub async fn shutdown(&self) {
        self.ap_shutdown().await;
        self.dhcp.stop().await;
        self.wpa.shutdown();
        self.certs.clear();
    }

    /// EAP certificate paths and PEM uploads.
    pub fn certs(&self) -> &certs::Certs {
        &self.certs
    }

    /// DHCP follows the association (also when wpa_supplicant reconnects on its own), and
    /// networks are replayed after a wpa_supplicant restart.
    fn spawn_background(self: Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut rx = me.wpa.subscribe();
            loop {
                match rx.recv().await {
                    Ok(Event::Connected { .. }) => {
                        if !me.dhcp.running().await
                            && let Err(e) = me.dhcp.start().await
                        {
                            warn!(cause = %format!("{e:#}"), "cannot start DHCP");
                            me.log.push("agent", format!("cannot start DHCP: {e:#}"));
                        }
                    }
                    Ok(Event::Disconnected { .. }) | Ok(Event::Terminating) => {
                        me.dhcp.stop().await;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        let me = self;
        tokio::spawn(async move {
            // After a restart the supervisor has restored the networks; the old lease is void.
            let mut gens = me.wpa.generations();
            while gens.changed().await.is_ok() {
                if *gens.borrow() > 1 {
                    me.dhcp.stop().await;
                }
            }
        });
    }

    /// The access point running now, if one does (for `wifi_status`).
    pub fn ap_summary(&self) -> Option<ap::ApSummary> {
        self.ap.summary()
    }

    /// The live control client.
    pub async fn client(&self) -> Result<Arc<CtrlClient>, Failure> {
        if self.ap.active() {
            return Err(ap::station_side_paused());
        }
        self.wpa
            .client()
            .await
            .map_err(|e| Failure::new(Code::SupplicantGone, e))
    }

    /// The operation lock for `what`: waits [`BUSY_WAIT`] for the operation before it (a
    /// cancelled one lets go at once), then answers `busy`.
    async fn op_lock(&self, what: &'static str) -> Result<MutexGuard<'_, ()>, Failure> {
        let g = match self.op.try_lock() {
            Ok(g) => g,
            Err(_) => match tokio::time::timeout(BUSY_WAIT, self.op.lock()).await {
                Ok(g) => g,
                Err(_) => {
                    return Err(Failure::new(
                        Code::Busy,
                        format!(
                            "{what}: another operation on the connection is running; wait for \
                             it to end (or cancel it) and retry"
                        ),
                    ));
                }
            },
        };
        Ok(g)
    }

    /// Current DHCP lease.
    pub fn lease(&self) -> Option<Lease> {
        self.dhcp.lease()
    }

    /// The route-netlink handle of the box.
    pub fn net(&self) -> &NetCfg {
        &self.net
    }

    /// Options the agent runs with.
    pub fn options(&self) -> &AgentOptions {
        &self.opts
    }

    /// How many times wpa_supplicant was restarted.
    pub fn wpa_restarts(&self) -> u32 {
        self.wpa.restarts()
    }

    /// The network tools' resolver: the WiFi's DNS servers (from the lease, else resolv.conf),
    /// knowing which address families the network gave the box (its addresses now), so a family
    /// it did not give fails before anything is sent and `auto` picks one the box can use.
    pub async fn dns(&self) -> nettools::Dns {
        let servers = self
            .lease()
            .map(|l| l.dns.into_iter().map(std::net::IpAddr::V4).collect())
            .unwrap_or_default();
        let dns = nettools::Dns::new(servers, &self.opts.resolv_conf);
        match self.net.addresses().await {
            Ok(a) => dns.with_stacks(crate::agent::net::stacks::Stacks::of(&a)),
            Err(_) => dns,
        }
    }

    /// The saved network `name` from the box's copy ([`AgentOptions::networks_dir`]).
    pub fn saved_network(&self, name: &str) -> Result<crate::networks::Profile, Failure> {
        let n = crate::networks::Name::parse(name).map_err(Failure::invalid)?;
        let path = self.opts.networks_dir.join(format!("{n}.toml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => crate::networks::Profile::parse(&text, &format!("saved network {n}"))
                .map_err(|e| Failure::from(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Failure::new(
                Code::NotFound,
                format!(
                    "no saved network {n:?} for this adapter (see wifi_saved_networks); an \
                 administrator adds it on the host: `wifi-isolate network add {n} --ssid SSID \
                 --security MODE` (the passphrase is read from a prompt or stdin, never from \
                 this conversation)"
                ),
            )),
            Err(e) => Err(format!("saved network {n}: {e}").into()),
        }
    }

    /// Every saved network in the box's copy, by name; and the names that could not be read,
    /// with the reason.
    pub fn saved_networks(&self) -> (Vec<(String, crate::networks::Profile)>, Vec<String>) {
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        let mut names: Vec<String> = std::fs::read_dir(&self.opts.networks_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().into_string().ok()?;
                n.strip_suffix(".toml").map(str::to_owned)
            })
            .filter(|n| crate::networks::Name::parse(n).is_ok())
            .collect();
        names.sort();
        for n in names {
            match self.saved_network(&n) {
                Ok(p) => ok.push((n, p)),
                Err(e) => bad.push(format!("{n}: {e}")),
            }
        }
        (ok, bad)
    }

    /// Trigger a fresh scan and return what wpa_supplicant saw.
    pub async fn scan(&self, timeout: Duration) -> Result<Vec<crate::wpa::Bss>, Failure> {
        let client = self.client().await?;
        let mut rx = self.wpa.subscribe();
        let deadline = Instant::now() + timeout;
        client.scan().await.map_err(|e| {
            let text = format!("scan request failed: {e}");
            // wpa_supplicant answers FAIL-BUSY while a scan (or an association) is under way.
            let code = if text.contains("FAIL-BUSY") {
                Code::Busy
            } else {
                Code::Failed
            };
            Failure::new(code, text)
        })?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Ok(Event::ScanResults)) => break,
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(_)) => {
                    return Err(Failure::new(
                        Code::SupplicantGone,
                        "wpa_supplicant went away during the scan",
                    ));
                }
                Err(_) => {
                    return Err(Failure::new(
                        Code::Timeout,
                        format!("no scan results within {timeout:?}"),
                    ));
                }
            }
        }
        client
            .bss_all()
            .await
            .map_err(|e| Failure::from(format!("reading scan results failed: {e}")))
    }

    /// Add `spec`, select it, wait for association and a lease.
    pub async fn connect(
        &self,
        spec: NetworkSpec,
        timeout: Duration,
        progress: &(dyn Fn(Stage) + Send + Sync),
    ) -> Result<ConnectResult, Failure> {
        let started = Instant::now();
        let _g = self.op_lock("wifi_connect").await?;
        net::http::clear_cookies(); // a new network: no cookie of the last one goes along
        for s in &spec.secrets {
            self.log.register_secret(s);
        }
        let result = self.connect_locked(&spec, started, timeout, progress).await;
        match &result {
            Ok(_) => self.certs.adopt(&spec.uploads, &spec.ssid),
            Err(_) => self.certs.discard(&spec.uploads),
        }
        result
    }

    async fn connect_locked(
        &self,
        spec: &NetworkSpec,
        started: Instant,
        timeout: Duration,
        progress: &(dyn Fn(Stage) + Send + Sync),
    ) -> Result<ConnectResult, Failure> {
        let deadline = started + timeout;
        let client = self.client().await?;
        let sae_pk_required = spec
            .fields
            .iter()
            .any(|f| matches!(f, NetworkField::SaePk(1)));
        if sae_pk_required {
            sae_pk_capable(&client).await?;
        }
        self.dhcp.stop().await;
        let before = client.list_networks().await.map_err(|e| e.to_string())?;
        if let Some(mac) = spec.mac {
            self.set_mac(&client, mac).await?;
        } else if let Some(perm) = self.perm_mac {
            self.set_mac(&client, perm).await?;
        }
        let mut rx = self.wpa.subscribe();
        let id = client.add_network().await.map_err(|e| e.to_string())?;
        let configured = async {
            for f in &spec.fields {
                client.set_network(id, f).await?;
            }
            client.select_network(id).await
        }
        .await;
        if let Err(e) = configured {
            let _ = client.remove_network(id).await;
            return Err(format!("wpa_supplicant refused the network settings: {e}").into());
        }
        self.log.push(
            "agent",
            format!("connecting to {} (network {id})", spec.ssid),
        );
        progress(Stage::Associating);
        let outcome = self
            .wait_connected(&mut rx, deadline, timeout, progress)
            .await
            .and(Ok(()));
        let outcome = match outcome {
            Err(e) if sae_pk_required && e.code == Code::NotFound => Err(Failure::new(
                Code::NotFound,
                format!(
                    "no access point of {} proves SAE-PK (sae_pk required): those with this SSID \
                     offer no SAE-PK (an ordinary WPA3-SAE network, or a twin without the key), \
                     or none answered",
                    spec.ssid
                ),
            )),
            Ok(()) => {
                progress(Stage::Dhcp);
                match self.lease_until(deadline).await {
                    Ok(Some(l)) => Ok(l),
                    Err(e) => Err(Failure::from(e)),
                    Ok(None) => Err(Failure::new(
                        Code::NoDhcp,
                        format!(
                            "associated with {} but DHCP gave no address within the {}s timeout",
                            spec.ssid,
                            timeout.as_secs()
                        ),
                    )),
                }
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(lease) => {
                self.wpa
                    .remember(spec.ssid.clone(), spec.fields.clone())
                    .await;
                // Older entries for the same SSID are replaced by this one.
                for n in before.iter().filter(|n| n.ssid_hex == spec.ssid.to_hex()) {
                    let _ = client.remove_network(n.id).await;
                }
                // A Passpoint credential of an earlier wifi_connect_passpoint (and its network)
                // does not outlive the connect that replaced it: its secrets leave wpa_supplicant.
                let _ = client.remove_cred(crate::wpa::NetworkSel::All).await;
                let st = client.status().await.ok();
                progress(Stage::Done);
                Ok(ConnectResult::new(
                    spec.ssid.to_string(),
                    st.as_ref(),
                    id,
                    &lease,
                    started,
                ))
            }
            Err(e) => {
                // Nothing half-applied: drop the new network, re-enable what was enabled.
                self.dhcp.stop().await;
                let _ = client.remove_network(id).await;
                for n in before.iter().filter(|n| !n.disabled) {
                    let _ = client.enable_network(n.id).await;
                }
                self.log
                    .push("agent", format!("connect to {} failed: {e}", spec.ssid));
                Err(e)
            }
        }
    }

    /// After association: make sure the DHCP client runs, and wait for its lease.
    async fn lease_until(&self, deadline: Instant) -> Result<Option<Lease>, String> {
        if !self.dhcp.running().await {
            self.dhcp.start().await.map_err(|e| format!("{e:#}"))?;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        Ok(self.dhcp.wait_lease(left).await)
    }

    /// Wait for `CTRL-EVENT-CONNECTED`, turning failure events into clear errors.
    async fn wait_connected(
        &self,
        rx: &mut broadcast::Receiver<Event>,
        deadline: Instant,
        timeout: Duration,
        progress: &(dyn Fn(Stage) + Send + Sync),
    ) -> Result<u32, Failure> {
        let (mut not_found, mut assoc_rejects, mut auth_rejects) = (0, 0, 0);
        let mut stage = Stage::Associating;
        // wpa_supplicant's own words when an AP's SAE-PK proof failed (its stdout): the reason
        // of the failure that follows (it tries again, then disables the network for a while).
        let mut sae_pk_failed: Option<String> = None;
        let sae_pk_refused = |why: &str| {
            Failure::new(
                Code::AuthFailed,
                format!(
                    "SAE-PK refused the access point: {why} (wpa_supplicant). It knows the \
                     password but could not prove it holds the key the password is the \
                     fingerprint of: not the genuine network (a rogue twin?)"
                ),
            )
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = match tokio::time::timeout(left, rx.recv()).await {
                Ok(Ok(ev)) => ev,
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(_)) => {
                    return Err(Failure::new(
                        Code::SupplicantGone,
                        "wpa_supplicant went away while connecting",
                    ));
                }
                Err(_) => {
                    if let Some(why) = &sae_pk_failed {
                        return Err(sae_pk_refused(why));
                    }
                    return Err(Failure::new(
                        Code::Timeout,
                        format!(
                            "timed out after {}s while {}",
                            timeout.as_secs(),
                            stage.progress().1
                        ),
                    ));
                }
            };
            match ev {
                Event::Connected { network_id, .. } => return Ok(network_id.unwrap_or(0)),
                Event::SaePkFailed(why) => sae_pk_failed = Some(why),
                Event::SsidTempDisabled { .. } if sae_pk_failed.is_some() => {
                    return Err(sae_pk_refused(sae_pk_failed.as_deref().unwrap_or_default()));
                }
                Event::Associated { .. } | Event::EapStarted if stage == Stage::Associating => {
                    stage = Stage::Authenticating;
                    progress(stage);
                }
                Event::HandshakeFailed => {
                    return Err(Failure::new(
                        Code::AuthFailed,
                        "authentication failed: the 4-way handshake failed (wrong password?)",
                    ));
                }
                Event::SsidTempDisabled { reason, .. } => {
                    let reason = reason.unwrap_or_default();
                    return Err(if reason.contains("WRONG_KEY") {
                        Failure::new(
                            Code::AuthFailed,
                            "authentication failed: the access point rejected the password",
                        )
                    } else if reason.contains("AUTH_FAILED") || reason.contains("EAP") {
                        Failure::new(
                            Code::AuthFailed,
                            format!("authentication failed ({reason})"),
                        )
                    } else {
                        Failure::from(format!(
                            "connection failed: network temporarily disabled ({reason})"
                        ))
                    });
                }
                Event::EapFailure => {
                    return Err(Failure::new(
                        Code::AuthFailed,
                        "authentication failed: the EAP server rejected the credentials",
                    ));
                }
                Event::AuthReject { .. } => {
                    auth_rejects += 1;
                    if auth_rejects >= 2 {
                        return Err(Failure::new(
                            Code::AuthFailed,
                            "authentication failed: the access point rejected authentication \
                             (wrong password or security mode)",
                        ));
                    }
                }
                Event::AssocReject { .. } => {
                    assoc_rejects += 1;
                    if assoc_rejects >= 3 {
                        return Err(Failure::new(
                            Code::AssocRejected,
                            "the access point rejected the association 3 times",
                        ));
                    }
                }
                Event::InterworkingNoMatch => {
                    return Err(Failure::new(
                        Code::NotFound,
                        "no Passpoint access point matches the credential (INTERWORKING-NO-MATCH)",
                    ));
                }
                Event::NetworkNotFound => {
                    not_found += 1;
                    if not_found >= 3 {
                        return Err(Failure::new(
                            Code::NotFound,
                            "network not found: no access point with this SSID (and BSSID, if \
                             given) answered; for a hidden network set hidden=true",
                        ));
                    }
                }
                _ => {}
            }
        }
    }

    async fn set_mac(&self, client: &CtrlClient, mac: [u8; 6]) -> Result<(), String> {
        let index = self
            .net
            .index(&self.iface)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the WiFi interface is gone")?;
        if self.net.mac(index).await.ok().flatten() == Some(mac) {
            return Ok(());
        }
        let want = crate::validate::Bssid::from(mac).to_string();
        let _ = client.disconnect().await;
        self.net
            .set_mac(index, mac)
            .await
            .map_err(|e| format!("cannot set the MAC address: {e:#}"))?;
        self.log.push("agent", format!("MAC address set to {want}"));
        Ok(())
    }

    /// Disconnect and release the lease; the uploaded PEM files go (until a reconnect).
    pub async fn disconnect(&self) -> Result<(), Failure> {
        let _g = self.op_lock("wifi_disconnect").await?;
        let client = self.client().await?;
        client.disconnect().await.map_err(|e| e.to_string())?;
        // A Passpoint credential (wifi_connect_passpoint) goes, and the network made from it.
        let _ = client.remove_cred(crate::wpa::NetworkSel::All).await;
        self.dhcp.stop().await;
        self.certs.remove_files();
        net::http::clear_cookies();
        Ok(())
    }

    /// Reconnect to the current (or best enabled) network and wait for a lease.
    pub async fn reconnect(
        &self,
        timeout: Duration,
        progress: &(dyn Fn(Stage) + Send + Sync),
    ) -> Result<ConnectResult, Failure> {
        let started = Instant::now();
        let deadline = started + timeout;
        let _g = self.op_lock("wifi_reconnect").await?;
        let client = self.client().await?;
        if !client
            .list_networks()
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .any(|n| !n.disabled)
        {
            return Err(Failure::new(
                Code::NotFound,
                "no enabled network to reconnect to: use wifi_connect first",
            ));
        }
        self.dhcp.stop().await;
        self.certs.restore_files()?;
        let mut rx = self.wpa.subscribe();
        client.disconnect().await.map_err(|e| e.to_string())?;
        client.reconnect().await.map_err(|e| e.to_string())?;
        progress(Stage::Associating);
        let id = self
            .wait_connected(&mut rx, deadline, timeout, progress)
            .await?;
        progress(Stage::Dhcp);
        let lease = self.lease_until(deadline).await?.ok_or(Failure::new(
            Code::NoDhcp,
            "reconnected but DHCP gave no address in time",
        ))?;
        let st = client.status().await.map_err(|e| e.to_string())?;
        progress(Stage::Done);
        let ssid = st.ssid.clone().unwrap_or_default();
        Ok(ConnectResult::new(ssid, Some(&st), id, &lease, started))
    }

    /// Forget networks by id or SSID; returns the ids removed.
    pub async fn forget(&self, id: Option<u32>, ssid: Option<&Ssid>) -> Result<Vec<u32>, Failure> {
        let _g = self.op_lock("wifi_forget").await?;
        let client = self.client().await?;
        let nets = client.list_networks().await.map_err(|e| e.to_string())?;
        let targets: Vec<u32> = nets
            .iter()
            .filter(|n| Some(n.id) == id || ssid.is_some_and(|s| n.ssid_hex == s.to_hex()))
            .map(|n| n.id)
            .collect();
        if targets.is_empty() {
            return Err(Failure::new(
                Code::NotFound,
                "no configured network matches; see wifi_list_networks",
            ));
        }
        let was_current = nets.iter().any(|n| n.current && targets.contains(&n.id));
        for t in &targets {
            client.remove_network(*t).await.map_err(|e| e.to_string())?;
        }
        for n in nets.iter().filter(|n| targets.contains(&n.id)) {
            if let Ok(s) = Ssid::from_hex(&n.ssid_hex) {
                self.wpa.forget(&s).await;
                self.certs.forget(&s);
            }
        }
        if was_current {
            self.dhcp.stop().await;
        }
        Ok(targets)
    }
}

/// A stable, locally administered MAC for (permanent MAC, SSID): the per-network MAC mode.
pub fn per_network_mac(perm: [u8; 6], ssid: &[u8]) -> [u8; 6] {
    // FNV-1a, 64 bit: stable across builds and releases, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in perm.iter().chain(b"|").chain(ssid) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    let mut mac = [b[0], b[1], b[2], b[3], b[4], b[5]];
    mac[0] = (mac[0] & 0xfc) | 0x02; // unicast, locally administered
    mac
}

/// `sae_pk` required needs a wpa_supplicant built with SAE-PK: `GET_CAPABILITY sae` says `PK`
/// (Debian 12's says `H2E` only, and takes `sae_pk=1` without acting on it: it would join an
/// AP without checking its proof). Checked before anything changes.
async fn sae_pk_capable(client: &CtrlClient) -> Result<(), Failure> {
    let reply = client
        .request(&crate::wpa::Command::GetCapabilitySae)
        .await
        .map_err(|e| Failure::from(format!("GET_CAPABILITY sae failed: {e}")))?;
    if reply.split_whitespace().any(|w| w == "PK") {
        return Ok(());
    }
    Err(Failure::new(
        Code::Unsupported,
        format!(
            "sae_pk required: this box's wpa_supplicant is built without SAE-PK (GET_CAPABILITY \
             sae answers {:?}), so it cannot check an access point's SAE-PK proof; nothing was \
             changed (sae_pk auto connects with plain SAE)",
            reply.trim()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_network_mac_is_stable_local_unicast_and_distinct() {
        let perm = [0x02, 0, 0, 0, 1, 0];
        let a = per_network_mac(perm, b"lab");
        assert_eq!(a, per_network_mac(perm, b"lab"));
        assert_ne!(a, per_network_mac(perm, b"lab2"));
        assert_ne!(a, per_network_mac([0x02, 0, 0, 0, 2, 0], b"lab"));
        assert_eq!(a[0] & 0x01, 0, "unicast");
        assert_eq!(a[0] & 0x02, 0x02, "locally administered");
    }
}
