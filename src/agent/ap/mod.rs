//! Access-point mode (`wifi_ap_start`, `wifi_ap_clients`, `wifi_ap_stop`): the box's radio
//! becomes an access point that devices under test join — hostapd on a WiFi interface of the
//! box's phy, busybox udhcpd handing out `192.168.77.100-199`, and a DNS answer for the AP's own
//! name ([`dns`]), all inside the box. Two modes ([`ApMode`]):
//!
//! - **Exclusive** (the default): the box's one interface becomes the AP, so the radio is a
//!   station *or* an access point: `wifi_ap_start` refuses while the station side is connected
//!   (`busy`, "wifi_disconnect first"), then pauses wpa_supplicant's supervisor
//!   ([`crate::agent::supervisor::Wpa::pause`]: wpa_supplicant stopped, not counted as a crash)
//!   so it cannot fight hostapd for the interface; the station tools answer `busy` meanwhile.
//!   `wifi_ap_stop` resumes it: the remembered networks come back, disconnected, and the station
//!   tools work again.
//! - **Concurrent**, where the phy's interface combinations allow a station and an AP at once
//!   ([`crate::agent::iface::concurrency`]; else `unsupported`): a second interface of type AP
//!   on the same phy (`<iface>ap`, [`ap_iface_name`]; a locally administered MAC derived from
//!   the station's, [`ap_mac`]), hostapd and the rest on it; wpa_supplicant, the DHCP client and
//!   the connection are not touched, the station tools keep working. On a phy whose
//!   interfaces share one channel, a connected station's channel is the AP's (taken when the
//!   caller gave none; another one is refused). Refused when the station's address overlaps
//!   the AP's subnet. `wifi_ap_stop` (and a failed start, and the agent's shutdown) deletes the
//!   interface; an agent starting deletes one an earlier agent left
//!   ([`crate::agent::iface::delete_leftovers`]).
//! - **Children of the agent**: hostapd and udhcpd run in the foreground under the agent, their
//!   configs and hostapd's control socket in `<runtime_dir>/ap` (a tmpfs in the box, 0700; the
//!   hostapd config 0600: it holds the passphrase, and is removed on stop). A crash is logged and
//!   reported by `wifi_ap_clients` / `wifi_ap_stop` — not restarted behind the caller's back.
//! - **Addresses**: the AP's interface gets `192.168.77.1/24` (rtnetlink, the box's own
//!   interfaces only), removed on stop. SIGTERM to the agent tears it all down the same way
//!   ([`Agent::ap_shutdown`]): hostapd exits on SIGTERM and puts the interface back in station
//!   mode (a concurrent AP's interface is deleted), so the daemon's release brings the phy home
//!   as before.
//! - **Clients**: nl80211's station dump of the interface (what `iw dev … station dump` shows:
//!   MAC, signal, connected time) joined with udhcpd's lease file ([`leases`], read
//!   defensively: a hostile client chose what is in it).

pub mod conf;
pub mod dns;
pub mod leases;

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;
use tokio::process::Command;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Agent;
use super::events::{LogRing, pipe_lines};
use super::failure::{Code, Failure};
use super::iface::ApConcurrency;
use super::netcfg::NetCfg;
pub use conf::{AP_ADDR, AP_PREFIX, ApMode, ApSecurity, ApSettings, Band, POOL_END, POOL_START};
pub use leases::DhcpLease;

/// How long hostapd may take to enable the access point (under TCG in the lab: ~2 s).
const ENABLE_WAIT: Duration = Duration::from_secs(20);

/// The name of the concurrent AP's interface next to `station`: `<station>ap`, the station's
/// name cut to 13 bytes first so it stays within the kernel's 15 and never equals it.
pub fn ap_iface_name(station: &str) -> String {
    let mut cut = 13.min(station.len());
    while !station.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}ap", &station[..cut])
}

/// The concurrent AP interface's MAC, derived from the station's: locally administered,
/// unicast, and bit 2 of the first byte flipped — so it differs from the station's even when
/// that one is locally administered already (hwsim's `02:00:00:…`, a random per-network MAC).
pub fn ap_mac(station: [u8; 6]) -> [u8; 6] {
    let mut m = station;
    m[0] = ((m[0] | 0x02) & !0x01) ^ 0x04;
    m
}

/// The access point of an agent: whether the radio is one, and what runs for it.
#[derive(Default)]
pub struct ApSlot {
    /// Set for the whole of an exclusive start, run and stop: the station tools answer `busy`
    /// (not in concurrent mode: the station side keeps running).
    active: AtomicBool,
    inner: tokio::sync::Mutex<Option<Running>>,
    /// What runs, for `wifi_status` (without waiting for `inner`).
    running: std::sync::Mutex<Option<ApSummary>>,
}

impl ApSlot {
    /// Whether the radio is (becoming) an access point and the station side is paused.
    pub fn active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// The access point running now (None while none runs, or while one starts).
    pub fn summary(&self) -> Option<ApSummary> {
        self.running.lock().ok()?.clone()
    }

    fn set_summary(&self, r: Option<&Running>) {
        if let Ok(mut g) = self.running.lock() {
            *g = r.map(|r| ApSummary {
                interface: r.iface.clone(),
                ssid: r.settings.ssid.to_string(),
                mode: r.settings.mode,
                channel: r.settings.channel,
                frequency_mhz: r.settings.frequency_mhz(),
            });
        }
    }
}

/// The access point that runs, as `wifi_status` reports it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ApSummary {
    /// Its interface (the box's one in exclusive mode, `<iface>ap` in concurrent mode).
    pub interface: String,
    /// Its network name.
    pub ssid: String,
    /// exclusive or concurrent.
    pub mode: ApMode,
    /// Its channel.
    pub channel: u32,
    /// Its centre frequency, MHz.
    pub frequency_mhz: u32,
}

/// The tool error of a station tool while the radio is an access point.
pub fn station_side_paused() -> Failure {
    Failure::new(
        Code::Busy,
        "the radio is an access point now (wifi_ap_start): the station side is paused; \
         wifi_ap_stop gives the radio back to the station tools",
    )
}

fn no_ap() -> Failure {
    Failure::new(
        Code::NotFound,
        "no access point is running: start one with wifi_ap_start",
    )
}

/// What `wifi_ap_start` answers.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApStarted {
    /// The AP's interface: the box's WiFi interface, now in AP mode (exclusive), or the second
    /// interface made on its phy (concurrent: `<iface>ap`).
    pub interface: String,
    /// The station's interface (wpa_supplicant's).
    pub station_interface: String,
    /// The AP interface's MAC address (its BSSID).
    pub bssid: Option<String>,
    /// The network name.
    pub ssid: String,
    /// open, wpa2, sae or owe.
    pub security: ApSecurity,
    /// `2.4` or `5` (GHz).
    pub band: String,
    /// The channel.
    pub channel: u32,
    /// Its centre frequency, MHz.
    pub frequency_mhz: u32,
    /// Beacons without the SSID.
    pub hidden: bool,
    /// The box's address on the AP's network (CIDR).
    pub address: String,
    /// The addresses DHCP hands out (first-last).
    pub dhcp_range: String,
    /// The name the AP's DNS answers with the box's address.
    pub dns_name: String,
    /// `paused` (exclusive): wpa_supplicant is stopped while the AP runs, the station tools
    /// answer busy; `running` (concurrent): wpa_supplicant and its connection are untouched.
    pub station_side: String,
    /// `exclusive`: the radio is a station or an access point, one at a time; `concurrent`:
    /// both at once, on two interfaces of the phy.
    pub mode: String,
    /// What the phy's interface combinations allow (station + AP at once, on how many
    /// channels); absent if nl80211 would not say.
    pub concurrency: Option<ApConcurrency>,
    /// What to do next.
    pub message: String,
}

/// One associated station.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApClient {
    /// Its MAC address.
    pub mac: String,
    /// Signal of its last frame, dBm.
    pub signal_dbm: Option<i8>,
    /// Average signal, dBm.
    pub signal_avg_dbm: Option<i8>,
    /// Seconds since it associated.
    pub connected_time_s: Option<u32>,
    /// Milliseconds since its last activity.
    pub inactive_ms: Option<u32>,
    /// Bytes received from it.
    pub rx_bytes: Option<u64>,
    /// Bytes sent to it.
    pub tx_bytes: Option<u64>,
    /// The address its DHCP lease gave it, if it has one.
    pub ip: Option<String>,
    /// The host name it sent with its DHCP request (cleaned).
    pub hostname: Option<String>,
    /// Seconds left on its lease.
    pub lease_remaining_s: Option<u32>,
}

/// What `wifi_ap_clients` answers.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApClients {
    /// The access point's network name.
    pub ssid: String,
    /// The associated stations (nl80211's station dump), each with its lease.
    pub clients: Vec<ApClient>,
    /// Every lease udhcpd holds, associated or not (a station that left keeps its lease).
    pub leases: Vec<DhcpLease>,
    /// Seconds the access point has been up.
    pub uptime_s: u64,
}

/// What `wifi_ap_stop` answers.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApStopped {
    /// The network that was served.
    pub ssid: String,
    /// Stations associated when it stopped.
    pub clients_at_stop: usize,
    /// Seconds it was up.
    pub uptime_s: u64,
    /// hostapd's exit status if it had exited on its own (a crash) before the stop.
    pub hostapd_crashed: Option<String>,
    /// `resumed` once wpa_supplicant answers again (the station tools work), else `restarting`;
    /// `running` after a concurrent AP (the station side was never touched).
    pub station_side: String,
    /// The AP interface of a concurrent AP was deleted (false in exclusive mode: the interface
    /// is the station's, back in station mode).
    pub interface_deleted: bool,
    /// What happened.
    pub message: String,
}

/// A child of the agent for the access point: exit watched, stopped with SIGTERM (then KILL).
struct Proc {
    pid: Option<u32>,
    stop: CancellationToken,
    exit: watch::Receiver<Option<String>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proc {
    fn watch(name: &'static str, mut child: tokio::process::Child, log: LogRing) -> Proc {
        let stop = CancellationToken::new();
        let (tx, exit) = watch::channel(None);
        let pid = child.id();
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let text = tokio::select! {
                st = child.wait() => {
                    let t = match st {
                        Ok(st) => st.to_string(),
                        Err(e) => e.to_string(),
                    };
                    warn!(process = name, status = %t, "exited while the access point was up");
                    log.push(
                        "agent",
                        format!("{name} exited ({t}) while the access point was up; not restarted \
                                 (wifi_ap_stop, then wifi_ap_start again)"),
                    );
                    t
                }
                _ = s.cancelled() => {
                    if let Some(pid) = child.id() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid as i32),
                            nix::sys::signal::Signal::SIGTERM,
                        );
                    }
                    if tokio::time::timeout(Duration::from_secs(3), child.wait()).await.is_err() {
                        let _ = child.kill().await;
                    }
                    "stopped".to_string()
                }
            };
            tx.send_replace(Some(text));
        });
        Proc {
            pid,
            stop,
            exit,
            task: Some(task),
        }
    }

    /// Its exit status, once it exited on its own.
    fn exited(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    async fn stop(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// What runs for the access point; whatever of it was started ([`Running::teardown`]).
struct Running {
    settings: ApSettings,
    /// The AP's interface and its index.
    iface: String,
    index: u32,
    /// Concurrent mode: the AP interface we made on the phy, deleted on teardown.
    made: bool,
    dir: PathBuf,
    hostapd: Option<Proc>,
    udhcpd: Option<Proc>,
    dns: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
    addressed: bool,
    started: Instant,
}

impl Running {
    /// Stop what was started, newest first; remove the address and the files (the hostapd
    /// config holds the passphrase).
    async fn teardown(&mut self, net: &NetCfg) {
        if let Some((stop, task)) = self.dns.take() {
            stop.cancel();
            let _ = task.await;
        }
        if let Some(p) = self.udhcpd.take() {
            p.stop().await;
        }
        // hostapd leaves on SIGTERM as it should: the interface back in station mode. After a
        // crash nobody did that: done here, so the daemon's release finds a station interface.
        // (A concurrent AP's own interface is deleted below instead.)
        if let Some(p) = self.hostapd.take() {
            p.stop().await;
            if !self.made {
                match ensure_station(net, self.index).await {
                    Ok(true) => info!("the interface put back in station mode after hostapd"),
                    Ok(false) => {}
                    Err(e) => {
                        warn!(cause = %format!("{e:#}"), "cannot put the interface back in station mode")
                    }
                }
            }
        }
        if self.addressed {
            if let Err(e) = net.flush(self.index).await {
                warn!(cause = %format!("{e:#}"), "removing the access point's address");
            }
            self.addressed = false;
        }
        if self.made {
            match super::iface::delete(self.index).await {
                Ok(()) => {
                    info!(iface = %self.iface, "the access point's interface deleted");
                    self.made = false;
                }
                Err(e) => {
                    warn!(iface = %self.iface, cause = %format!("{e:#}"), "cannot delete the access point's interface")
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// udhcpd's leases: a SIGUSR1 makes it write its file now (it also does every second);
    /// read once it changed, or after 500 ms.
    async fn leases(&self) -> Vec<DhcpLease> {
        let file = self.dir.join("udhcpd.leases");
        let mtime = || std::fs::metadata(&file).and_then(|m| m.modified()).ok();
        let before = mtime();
        if let Some(pid) = self.udhcpd.as_ref().and_then(|p| p.pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGUSR1,
            );
            let until = Instant::now() + Duration::from_millis(500);
            while mtime() == before && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let mut bytes = Vec::new();
        if let Ok(f) = std::fs::File::open(&file) {
            use std::io::Read;
            let _ = f.take(leases::MAX_FILE as u64).read_to_end(&mut bytes);
        }
        leases::parse(&bytes, POOL_START, POOL_END)
    }
}

/// The interface back in station mode if it is not (hostapd crashed before it could do it):
/// down, nl80211 `SET_INTERFACE` type station, up. Whether it had to.
async fn ensure_station(net: &NetCfg, index: u32) -> anyhow::Result<bool> {
    use futures::TryStreamExt;
    use wl_nl80211::{Nl80211Attr, Nl80211Interface, Nl80211InterfaceType};
    let (conn, handle, _) = wl_nl80211::new_connection()?;
    let task = tokio::spawn(conn);
    let r = async {
        let mut get = handle
            .interface()
            .get(vec![Nl80211Attr::IfIndex(index)])
            .execute()
            .await;
        let mut station = true;
        while let Some(msg) = get.try_next().await? {
            for a in &msg.payload.attributes {
                if let Nl80211Attr::IfType(t) = a {
                    station = *t == Nl80211InterfaceType::Station;
                }
            }
        }
        if station {
            return Ok(false);
        }
        net.set_down(index).await?;
        let mut set = handle
            .interface()
            .set(
                Nl80211Interface::new(index)
                    .interface_type(Nl80211InterfaceType::Station)
                    .build(),
            )
            .execute()
            .await;
        while set.try_next().await?.is_some() {}
        net.set_up(index).await?;
        Ok::<bool, anyhow::Error>(true)
    }
    .await;
    task.abort();
    r
}

/// A file only its owner can read, written whole (the hostapd config holds the passphrase).
fn write_private(path: &Path, text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Failure::from(format!("writing {}: {e}", path.display())))
}

/// One request on hostapd's control socket (the wpa_supplicant protocol: a datagram each way).
async fn ctrl(sock: &Path, client_dir: &Path, cmd: &str) -> std::io::Result<String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let me = client_dir.join(format!(
        "hapd-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&me);
    let s = tokio::net::UnixDatagram::bind(&me)?;
    let r = async {
        s.connect(sock)?;
        s.send(cmd.as_bytes()).await?;
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(2), s.recv(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply"))??;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
    .await;
    let _ = std::fs::remove_file(&me);
    r
}

/// busybox udhcpd: `udhcpd` from PATH, else the `busybox` applet.
fn udhcpd_program() -> Vec<String> {
    let in_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("udhcpd").is_file()))
        .unwrap_or(false);
    if in_path {
        vec!["udhcpd".into()]
    } else {
        vec!["busybox".into(), "udhcpd".into()]
    }
}

impl Agent {
    /// The last lines `source` (hostapd, udhcpd) printed, for an error (secrets scrubbed).
    fn last_lines(&self, source: &str) -> String {
        let lines: Vec<String> = self
            .log
            .recent(4, Some(source))
            .into_iter()
            .map(|e| e.text)
            .collect();
        if lines.is_empty() {
            format!("{source} printed nothing")
        } else {
            format!("{source}: {}", lines.join(" | "))
        }
    }

    /// What the phy's interface combinations allow (read once: they do not change).
    pub async fn ap_concurrency(&self) -> anyhow::Result<ApConcurrency> {
        if self.opts.wired {
            anyhow::bail!("wired test mode: no phy");
        }
        let index = self
            .net
            .index(&self.iface)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no interface {} in the box", self.iface))?;
        self.concurrency
            .get_or_try_init(|| super::iface::concurrency(index))
            .await
            .cloned()
    }

    /// Make the radio an access point ([`ApSettings`] checked already): exclusive (the box's
    /// interface becomes the AP, the station side paused) or concurrent (a second interface).
    pub async fn ap_start(&self, mut s: ApSettings) -> Result<ApStarted, Failure> {
        let _g = self.op_lock("wifi_ap_start").await?;
        let mut slot = self.ap.inner.lock().await;
        if let Some(r) = slot.as_ref() {
            return Err(Failure::new(
                Code::Busy,
                format!(
                    "an access point ({}) is already running: wifi_ap_stop first",
                    r.settings.ssid
                ),
            ));
        }
        let client = self.client().await?;
        let st = client
            .status()
            .await
            .map_err(|e| format!("asking wpa_supplicant for its state: {e}"))?;
        use crate::wpa::WpaState as W;
        let state = serde_json::to_value(st.wpa_state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let on = st
            .ssid
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let idle = matches!(
            st.wpa_state,
            W::Disconnected | W::Inactive | W::InterfaceDisabled
        );
        let concurrency = self.ap_concurrency().await;
        if s.mode == ApMode::Exclusive && (!idle || self.lease().is_some()) {
            return Err(Failure::new(
                Code::Busy,
                format!(
                    "the station side is {state}{on}: in mode exclusive the radio is a station or \
                     an access point, one at a time; wifi_disconnect first, then wifi_ap_start{}",
                    match &concurrency {
                        Ok(c) if c.station_and_ap => {
                            " (or mode concurrent: this phy runs a station and an AP at once)"
                        }
                        _ => "",
                    }
                ),
            ));
        }
        let index = self
            .net
            .index(&self.iface)
            .await
            .map_err(|e| format!("looking up {}: {e:#}", self.iface))?
            .ok_or_else(|| Failure::from(format!("no interface {} in the box", self.iface)))?;
        if s.mode == ApMode::Concurrent {
            let c = concurrency.as_ref().map_err(|e| {
                Failure::from(format!(
                    "cannot read the phy's interface combinations ({e:#}): mode concurrent needs \
                     them; use mode exclusive"
                ))
            })?;
            if !c.station_and_ap {
                return Err(Failure::new(
                    Code::Unsupported,
                    format!(
                        "phy{} cannot run a station and an access point at once (its interface \
                         combinations: {}); use mode exclusive (wifi_disconnect first)",
                        c.wiphy,
                        serde_json::to_string(&c.combinations).unwrap_or_default()
                    ),
                ));
            }
            if c.channels <= 1 {
                match st.wpa_state {
                    W::Completed => {
                        let freq = st.freq_mhz.ok_or_else(|| {
                            Failure::from("wpa_supplicant names no frequency for the connection")
                        })?;
                        s.share_channel(freq, st.ssid.as_deref().unwrap_or("its network"))?;
                    }
                    W::Authenticating
                    | W::Associating
                    | W::Associated
                    | W::FourWayHandshake
                    | W::GroupHandshake => {
                        return Err(Failure::new(
                            Code::Busy,
                            format!(
                                "the station side is {state}{on}, and this phy runs its \
                                 interfaces on one channel: wait until it is connected (the AP \
                                 takes its channel) or wifi_disconnect, then wifi_ap_start"
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            // The AP's subnet must not be the station's: the box would not know which way a
            // packet for it goes.
            let mut mine: Vec<(std::net::Ipv4Addr, u8)> =
                self.lease().map(|l| (l.ip, l.prefix)).into_iter().collect();
            if let Ok(addrs) = self.net.addresses().await {
                for a in addrs.iter().filter(|a| a.dev == self.iface) {
                    if let Some((ip, p)) = a.cidr.split_once('/')
                        && let (Ok(ip), Ok(p)) = (ip.parse(), p.parse())
                    {
                        mine.push((ip, p));
                    }
                }
            }
            if let Some((ip, p)) = mine
                .iter()
                .find(|(ip, p)| conf::subnets_overlap(AP_ADDR, AP_PREFIX, *ip, *p))
            {
                return Err(Failure::new(
                    Code::Busy,
                    format!(
                        "the station's address {ip}/{p} overlaps the access point's network \
                         {AP_ADDR}/{AP_PREFIX}: the box could not tell the two apart; \
                         wifi_disconnect first and use mode exclusive, or connect the station to \
                         another network"
                    ),
                ));
            }
        }
        if let Some(p) = &s.passphrase {
            self.log.register_secret(p.expose());
        }
        let mut run = Running {
            iface: self.iface.clone(),
            index,
            made: false,
            settings: s,
            dir: self.opts.runtime_dir.join("ap"),
            hostapd: None,
            udhcpd: None,
            dns: None,
            addressed: false,
            started: Instant::now(),
        };
        let exclusive = run.settings.mode == ApMode::Exclusive;
        if exclusive {
            self.ap.active.store(true, Ordering::SeqCst);
            self.dhcp.stop().await;
            if let Err(e) = self.wpa.pause().await {
                self.wpa.resume();
                self.ap.active.store(false, Ordering::SeqCst);
                return Err(Failure::from(format!(
                    "cannot take the radio from the station side: {e}"
                )));
            }
        }
        let up = async {
            if !exclusive {
                self.ap_interface(&mut run).await?;
            }
            self.ap_bring_up(&mut run).await
        };
        match up.await {
            Ok(()) => {
                let bssid = self.net.mac(run.index).await.ok().flatten().map(|m| {
                    m.iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":")
                });
                let s = &run.settings;
                let out = ApStarted {
                    interface: run.iface.clone(),
                    station_interface: self.iface.clone(),
                    bssid,
                    ssid: s.ssid.to_string(),
                    security: s.security,
                    band: s.band.as_str().into(),
                    channel: s.channel,
                    frequency_mhz: s.frequency_mhz(),
                    hidden: s.hidden,
                    address: format!("{AP_ADDR}/{AP_PREFIX}"),
                    dhcp_range: format!("{POOL_START}-{POOL_END}"),
                    dns_name: s.dns_name.to_string(),
                    station_side: if exclusive { "paused" } else { "running" }.into(),
                    mode: s.mode.as_str().into(),
                    concurrency: concurrency.ok(),
                    message: if exclusive {
                        "the access point is up; wifi_ap_clients lists who joined, \
                         wifi_ap_stop gives the radio back to the station tools"
                    } else {
                        "the access point is up on its own interface next to the station, whose \
                         connection and tools are untouched; wifi_ap_clients lists who joined, \
                         wifi_ap_stop deletes the AP's interface"
                    }
                    .into(),
                };
                info!(iface = %run.iface, mode = s.mode.as_str(), channel = s.channel, security = s.security.as_str(), "access point up");
                self.log.push(
                    "agent",
                    format!(
                        "access point {} ({}, {}) up on {} channel {}",
                        s.ssid,
                        s.security.as_str(),
                        s.mode.as_str(),
                        run.iface,
                        s.channel
                    ),
                );
                self.ap.set_summary(Some(&run));
                *slot = Some(run);
                Ok(out)
            }
            Err(e) => {
                run.teardown(&self.net).await;
                if exclusive {
                    self.wpa.resume();
                    self.ap.active.store(false, Ordering::SeqCst);
                }
                self.log.push("agent", format!("wifi_ap_start failed: {e}"));
                Err(e)
            }
        }
    }

    /// Concurrent mode: the AP's own interface on the station's phy (type AP, `<iface>ap`, a
    /// MAC derived from the station's), recorded in `run` so a failure deletes it.
    async fn ap_interface(&self, run: &mut Running) -> Result<(), Failure> {
        let name = ap_iface_name(&self.iface);
        let station_mac = self
            .net
            .mac(run.index)
            .await
            .map_err(|e| format!("reading {}'s MAC: {e:#}", self.iface))?
            .ok_or_else(|| Failure::from(format!("{} has no MAC address", self.iface)))?;
        let index = super::iface::add(
            run.index,
            wl_nl80211::Nl80211InterfaceType::Ap,
            &name,
            Some(ap_mac(station_mac)),
            &self.net,
        )
        .await
        .map_err(|e| {
            if e.unsupported() {
                Failure::new(
                    Code::Unsupported,
                    format!(
                        "the driver refuses an AP interface next to the station ({e}); use mode \
                         exclusive (wifi_disconnect first)"
                    ),
                )
            } else {
                Failure::from(format!("creating the AP interface {name}: {e}"))
            }
        })?;
        run.iface = name;
        run.index = index;
        run.made = true;
        Ok(())
    }

    /// hostapd (until ENABLED), the address, the DNS answer, udhcpd; each recorded in `run` as
    /// it starts, so a failure tears down exactly what is there.
    async fn ap_bring_up(&self, run: &mut Running) -> Result<(), Failure> {
        let dir = run.dir.clone();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&dir)
            .map_err(|e| Failure::from(format!("creating {}: {e}", dir.display())))?;
        let ctrl_dir = dir.join("hostapd");
        let conf = dir.join("hostapd.conf");
        write_private(&conf, &run.settings.hostapd_conf(&run.iface, &ctrl_dir))?;
        let mut child = Command::new("hostapd")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                Failure::from(format!(
                    "cannot start hostapd ({e}): the box needs hostapd (Debian: apt install \
                     hostapd; it is in the podman image)"
                ))
            })?;
        pipe_lines(child.stdout.take(), self.log.clone(), "hostapd");
        pipe_lines(child.stderr.take(), self.log.clone(), "hostapd");
        run.hostapd = Some(Proc::watch("hostapd", child, self.log.clone()));
        let sock = ctrl_dir.join(&run.iface);
        let deadline = Instant::now() + ENABLE_WAIT;
        loop {
            if let Some(st) = run.hostapd.as_ref().and_then(Proc::exited) {
                return Err(Failure::from(format!(
                    "hostapd exited ({st}) before the access point was up; {}",
                    self.last_lines("hostapd")
                )));
            }
            if sock.exists()
                && ctrl(&sock, &dir, "STATUS")
                    .await
                    .is_ok_and(|r| r.lines().any(|l| l == "state=ENABLED"))
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(Failure::new(
                    Code::Timeout,
                    format!(
                        "hostapd did not enable the access point within {} s; {}",
                        ENABLE_WAIT.as_secs(),
                        self.last_lines("hostapd")
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.net
            .apply_lease(run.index, AP_ADDR, AP_PREFIX, None)
            .await
            .map_err(|e| format!("addressing {}: {e:#}", run.iface))?;
        run.addressed = true;
        let sock = tokio::net::UdpSocket::bind((AP_ADDR, 53))
            .await
            .map_err(|e| {
                let why = if e.kind() == std::io::ErrorKind::PermissionDenied {
                    ": binding port 53 needs CAP_NET_BIND_SERVICE in the box"
                } else {
                    ""
                };
                Failure::from(format!("cannot answer DNS on {AP_ADDR}:53 ({e}){why}"))
            })?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(dns::serve(
            sock,
            run.settings.dns_name.as_str().to_string(),
            AP_ADDR,
            stop.clone(),
        ));
        run.dns = Some((stop, task));
        let uconf = dir.join("udhcpd.conf");
        write_private(&uconf, &conf::udhcpd_conf(&run.iface, &dir))?;
        let prog = udhcpd_program();
        let mut child = Command::new(&prog[0])
            .args(&prog[1..])
            // -a 100: 100 ms for the ARP check of an address before it is offered (2 s by default)
            .args(["-f", "-a", "100"])
            .arg(&uconf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Failure::from(format!("cannot start the DHCP server {prog:?}: {e}")))?;
        pipe_lines(child.stdout.take(), self.log.clone(), "udhcpd");
        pipe_lines(child.stderr.take(), self.log.clone(), "udhcpd");
        run.udhcpd = Some(Proc::watch("udhcpd", child, self.log.clone()));
        // udhcpd leaves at once when it cannot bind port 67 or read the interface.
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Some(st) = run.udhcpd.as_ref().and_then(Proc::exited) {
            return Err(Failure::from(format!(
                "the DHCP server exited ({st}); {}",
                self.last_lines("udhcpd")
            )));
        }
        Ok(())
    }

    /// The stations associated with the access point, each with its lease.
    pub async fn ap_clients(&self) -> Result<ApClients, Failure> {
        let slot = self.ap.inner.lock().await;
        let run = slot.as_ref().ok_or_else(no_ap)?;
        if let Some(st) = run.hostapd.as_ref().and_then(Proc::exited) {
            return Err(Failure::from(format!(
                "hostapd exited ({st}): the access point is down; wifi_ap_stop gives the radio \
                 back to the station side"
            )));
        }
        let stations = super::link::stations(run.index)
            .await
            .map_err(|e| format!("reading the associated stations: {e:#}"))?;
        let leases = run.leases().await;
        let clients = stations
            .into_iter()
            .map(|s| {
                let mac = s.bssid.clone().unwrap_or_default();
                let lease = leases.iter().find(|l| l.mac == mac);
                ApClient {
                    signal_dbm: s.signal_dbm,
                    signal_avg_dbm: s.signal_avg_dbm,
                    connected_time_s: s.connected_time_s,
                    inactive_ms: s.inactive_ms,
                    rx_bytes: s.rx_bytes,
                    tx_bytes: s.tx_bytes,
                    ip: lease.map(|l| l.ip.clone()),
                    hostname: lease.and_then(|l| l.hostname.clone()),
                    lease_remaining_s: lease.map(|l| l.remaining_s),
                    mac,
                }
            })
            .collect();
        Ok(ApClients {
            ssid: run.settings.ssid.to_string(),
            clients,
            leases,
            uptime_s: run.started.elapsed().as_secs(),
        })
    }

    /// Stop the access point and give the radio back to the station side.
    pub async fn ap_stop(&self) -> Result<ApStopped, Failure> {
        let _g = self.op_lock("wifi_ap_stop").await?;
        let mut slot = self.ap.inner.lock().await;
        let mut run = slot.take().ok_or_else(no_ap)?;
        self.ap.set_summary(None);
        let clients_at_stop = super::link::stations(run.index)
            .await
            .map(|s| s.len())
            .unwrap_or(0);
        let hostapd_crashed = run.hostapd.as_ref().and_then(Proc::exited);
        let made = run.made;
        run.teardown(&self.net).await;
        let interface_deleted = made && !run.made;
        self.log.push(
            "agent",
            format!("access point {} stopped", run.settings.ssid),
        );
        if run.settings.mode == ApMode::Concurrent {
            return Ok(ApStopped {
                ssid: run.settings.ssid.to_string(),
                clients_at_stop,
                uptime_s: run.started.elapsed().as_secs(),
                hostapd_crashed,
                station_side: "running".into(),
                interface_deleted,
                message: if interface_deleted {
                    format!(
                        "hostapd, udhcpd and the DNS answer stopped, the interface {} deleted; \
                         the station side was not touched",
                        run.iface
                    )
                } else {
                    format!(
                        "hostapd, udhcpd and the DNS answer stopped, but the interface {} could \
                         not be deleted (see wifi_debug_logs); the host deletes it when the phy \
                         goes home",
                        run.iface
                    )
                },
            });
        }
        self.wpa.resume();
        self.ap.active.store(false, Ordering::SeqCst);
        let back = self.wpa.client().await.is_ok();
        Ok(ApStopped {
            ssid: run.settings.ssid.to_string(),
            clients_at_stop,
            uptime_s: run.started.elapsed().as_secs(),
            hostapd_crashed,
            station_side: if back { "resumed" } else { "restarting" }.into(),
            interface_deleted: false,
            message: if back {
                "hostapd, udhcpd and the DNS answer stopped, the address removed; wpa_supplicant \
                 is back (disconnected): the station tools work again"
            } else {
                "hostapd, udhcpd and the DNS answer stopped, the address removed; wpa_supplicant \
                 is still starting: retry the station tools in a moment"
            }
            .into(),
        })
    }

    /// On the agent's shutdown: whatever runs for the access point goes (hostapd puts the
    /// interface back in station mode), so the daemon's release finds the interface as before.
    pub async fn ap_shutdown(&self) {
        let mut slot = self.ap.inner.lock().await;
        if let Some(mut run) = slot.take() {
            self.ap.set_summary(None);
            run.teardown(&self.net).await;
            info!(iface = %self.iface, "access point stopped for the shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ap_interface_s_name_fits_and_differs_from_the_station_s() {
        assert_eq!(ap_iface_name("wlan0"), "wlan0ap");
        let long = "wlxaabbccddeeff";
        assert_eq!(long.len(), 15);
        let n = ap_iface_name(long);
        assert_eq!(n, "wlxaabbccddeeap");
        assert!(n.len() <= 15 && n != long);
        assert_eq!(ap_iface_name("wlé234567890123"), "wlé234567890ap");
    }

    #[test]
    fn the_ap_mac_is_locally_administered_unicast_and_not_the_station_s() {
        for st in [
            [0x02, 0, 0, 0, 0, 0],
            [0x00, 0x11, 0x22, 0x33, 0x44, 0x55],
            [0x06, 1, 2, 3, 4, 5],
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ] {
            let m = ap_mac(st);
            assert_ne!(m, st);
            assert_eq!(m[0] & 0x03, 0x02, "{m:02x?}");
            assert_eq!(m[1..], st[1..]);
        }
        assert_eq!(ap_mac([0x02, 0, 0, 0, 0, 0]), [0x06, 0, 0, 0, 0, 0]);
    }
}
