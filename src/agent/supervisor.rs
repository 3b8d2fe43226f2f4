//! Run `wpa_supplicant` for the WiFi interface, keep it running, and fan its events out.
//!
//! The config lives in the agent's runtime dir (a tmpfs in the box) and holds no networks: networks
//! are added over the control socket, and replayed by the agent after a restart.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::process::Command;
use tokio::sync::{broadcast, watch};
use tracing::{error, info, warn};

use super::events::LogRing;
use crate::validate::Ssid;
use crate::wpa::{CtrlClient, Event, EventMonitor, NetworkField};

/// EAPOL over the netdev, not nl80211's control port: with the control port (mac80211 offers
/// it, wpa_supplicant 2.10 uses it when offered) the 4-way handshake never passes the
/// interface and a packet capture in the box (`wifi_capture`) sees none of it. The cost stays in
/// the box: a process there with `CAP_NET_RAW` could send EAPOL frames on the interface (the
/// control port would have tied them to wpa_supplicant's socket) — the box's own processes are
/// the box's to trust, and nothing of it reaches the host.
const CONTROL_PORT_OFF: &str = "# EAPOL through the interface (not nl80211's control port), so a capture sees it\n\
                                driver_param=control_port=0\n";

/// A line of wpa_supplicant's debug output worth the log: the debug lines are too many (they
/// would flood the ring), so at `LOG_LEVEL DEBUG` only errors and the 802.11v lines are kept
/// (the events are logged from the monitor socket anyway); at INFO every line is, as before.
fn worth_logging(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    [
        "error",
        "fail",
        "could not",
        "invalid",
        "unsupported",
        "successfully initialized",
    ]
    .iter()
    .any(|w| l.contains(w))
}

/// Read wpa_supplicant's stdout (at `LOG_LEVEL DEBUG` while connected): BSS transition requests and responses become events
/// ([`crate::wpa::wnm`]); errors and the 802.11v lines go to the log; the rest is dropped. A
/// request's candidate list ends at a known line, or after 300 ms of quiet.
fn wpa_stdout(
    pipe: Option<tokio::process::ChildStdout>,
    log: LogRing,
    events: broadcast::Sender<Event>,
    debug_on: Arc<std::sync::atomic::AtomicBool>,
) {
    use crate::wpa::wnm::{BtmParser, WnmEvent};
    use tokio::io::AsyncBufReadExt;
    let Some(pipe) = pipe else { return };
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(pipe).lines();
        let mut parser = BtmParser::default();
        let send = |e: WnmEvent| {
            let _ = events.send(match e {
                WnmEvent::Request(r) => Event::BssTransitionRequest(r),
                WnmEvent::Response(r) => Event::BssTransitionResponse(r),
            });
        };
        loop {
            let next = if parser.has_pending() {
                match tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await {
                    Ok(l) => l,
                    Err(_) => {
                        parser.flush().into_iter().for_each(send);
                        continue;
                    }
                }
            } else {
                lines.next_line().await
            };
            let Ok(Some(line)) = next else { break };
            let got = parser.feed(&line);
            // an AP's SAE-PK proof refused: the connect names it (Agent::wait_connected)
            if let Some(why) = crate::wpa::event::sae_pk_failure(&line) {
                let _ = events.send(Event::SaePkFailed(why));
            }
            let wnm = !got.is_empty()
                || line.contains("WNM: BSS Transition")
                || line.contains("WNM: Transition to BSS");
            if wnm || !debug_on.load(Ordering::Relaxed) || worth_logging(&line) {
                log.push("wpa", line);
            }
            got.into_iter().for_each(send);
        }
        parser.flush().into_iter().for_each(send);
    });
}

/// Where and how wpa_supplicant runs.
#[derive(Debug, Clone)]
pub struct WpaPaths {
    /// The wpa_supplicant binary.
    pub binary: PathBuf,
    /// Directory for the config file and our client sockets.
    pub runtime_dir: PathBuf,
    /// `ctrl_interface` directory.
    pub ctrl_dir: PathBuf,
    /// Optional two-letter regulatory country (host-wide in the kernel!).
    pub country: Option<String>,
    /// wpa_supplicant's driver: `nl80211`, or `wired` for the test-only wired mode.
    pub driver: &'static str,
}

/// A supervised wpa_supplicant.
pub struct Wpa {
    iface: String,
    paths: WpaPaths,
    client: watch::Sender<Option<Arc<CtrlClient>>>,
    events: broadcast::Sender<Event>,
    generation: watch::Sender<u32>,
    restarts: AtomicU32,
    /// Networks clients configured, restored into a restarted wpa_supplicant before anyone
    /// can use it.
    book: tokio::sync::Mutex<Vec<(Ssid, Vec<NetworkField>)>>,
    log: LogRing,
    stop: tokio_util::sync::CancellationToken,
    /// Held off the radio ([`Wpa::pause`]): the access point (`wifi_ap_start`) has it.
    paused: watch::Sender<bool>,
    /// A wpa_supplicant process exists (or is about to be spawned).
    running: watch::Sender<bool>,
    /// The next start follows a pause: it restores the networks but stays disconnected.
    resumed: std::sync::atomic::AtomicBool,
}

impl Wpa {
    /// Start supervising wpa_supplicant on `iface`.
    pub fn spawn(iface: &str, paths: WpaPaths, log: LogRing) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(&paths.ctrl_dir)
            .with_context(|| format!("creating {}", paths.ctrl_dir.display()))?;
        let me = Arc::new(Self {
            iface: iface.to_string(),
            paths,
            client: watch::channel(None).0,
            events: broadcast::channel(256).0,
            generation: watch::channel(0).0,
            restarts: AtomicU32::new(0),
            book: Default::default(),
            log,
            stop: Default::default(),
            paused: watch::channel(false).0,
            running: watch::channel(false).0,
            resumed: Default::default(),
        });
        let task = me.clone();
        tokio::spawn(async move { task.supervise().await });
        Ok(me)
    }

    fn config_text(&self) -> String {
        let mut c = format!(
            "# written by wifi-isolate-agent; networks are added over the control socket\n\
             ctrl_interface={}\nupdate_config=0\nap_scan=1\n\
             # SAE: hash-to-element when the AP offers it (an H2E-only AP needs it), else\n\
             # hunting-and-pecking\nsae_pwe=2\n\
             # 802.11u interworking and Hotspot 2.0: ANQP queries (wifi_anqp) and Passpoint\n\
             # credentials (wifi_connect_passpoint); never selects a network by itself\n\
             interworking=1\nhs20=1\nauto_interworking=0\n",
            self.paths.ctrl_dir.display()
        );
        if let Some(cc) = &self.paths.country {
            c.push_str(&format!("country={cc}\n"));
        }
        if self.paths.driver == "nl80211" {
            c.push_str(CONTROL_PORT_OFF);
        }
        c
    }

    async fn supervise(self: Arc<Self>) {
        let conf = self.paths.runtime_dir.join("wpa_supplicant.conf");
        let mut backoff = Duration::from_millis(500);
        while !self.stop.is_cancelled() {
            // Announced before the pause is looked at: a pause() that comes later waits for
            // the process this iteration spawns to go again.
            self.running.send_replace(true);
            if *self.paused.borrow() {
                self.running.send_replace(false);
                info!(iface = %self.iface, "wpa_supplicant paused: the radio is an access point");
                self.log.push(
                    "agent",
                    "wpa_supplicant stopped: the radio is an access point (wifi_ap_start)".into(),
                );
                let mut p = self.paused.subscribe();
                tokio::select! {
                    _ = p.wait_for(|p| !*p) => {}
                    _ = self.stop.cancelled() => break,
                }
                self.resumed.store(true, Ordering::Relaxed);
                self.log.push(
                    "agent",
                    "wpa_supplicant started again: the access point stopped".into(),
                );
                backoff = Duration::from_millis(500);
                continue;
            }
            let outcome = self.run_once(&conf).await;
            self.client.send_replace(None);
            self.running.send_replace(false);
            if self.stop.is_cancelled() {
                break;
            }
            if *self.paused.borrow() {
                continue;
            }
            match outcome {
                Ok(status) => {
                    error!(iface = %self.iface, %status, "wpa_supplicant exited; restarting");
                    self.log.push(
                        "agent",
                        format!("wpa_supplicant exited ({status}); restarting"),
                    );
                }
                Err(e) => {
                    error!(iface = %self.iface, cause = %format!("{e:#}"), "wpa_supplicant failed; restarting");
                    self.log
                        .push("agent", format!("wpa_supplicant failed: {e:#}; restarting"));
                }
            }
            self.restarts.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.cancelled() => break,
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }

    async fn run_once(&self, conf: &Path) -> anyhow::Result<std::process::ExitStatus> {
        std::fs::write(conf, self.config_text())?;
        let sock = self.paths.ctrl_dir.join(&self.iface);
        let _ = std::fs::remove_file(&sock);
        let mut child = Command::new(&self.paths.binary)
            .args(["-D", self.paths.driver, "-i", &self.iface, "-c"])
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.paths.binary.display()))?;
        let debug_on = Arc::new(std::sync::atomic::AtomicBool::new(false));
        wpa_stdout(
            child.stdout.take(),
            self.log.clone(),
            self.events.clone(),
            debug_on.clone(),
        );
        super::events::pipe_lines(child.stderr.take(), self.log.clone(), "wpa");

        // Wait for the control socket while the process is alive.
        let mut waited = Duration::ZERO;
        while !sock.exists() {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if *self.paused.borrow() {
                let _ = child.kill().await;
                return Ok(child.wait().await?);
            }
            if waited > Duration::from_secs(15) {
                anyhow::bail!("wpa_supplicant did not open {} within 15 s", sock.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += Duration::from_millis(50);
        }
        let client = Arc::new(
            CtrlClient::connect(&self.paths.ctrl_dir, &self.iface, &self.paths.runtime_dir).await?,
        );
        let mut monitor =
            EventMonitor::attach(&self.paths.ctrl_dir, &self.iface, &self.paths.runtime_dir)
                .await?;
        if self.resumed.swap(false, Ordering::Relaxed) {
            // After the access point: the networks come back, the association does not (the
            // station side was disconnected before wifi_ap_start). DISCONNECT first, so
            // enabling them starts no scan.
            let _ = client.disconnect().await;
            self.restore(&client).await;
        } else if self.restarts.load(Ordering::Relaxed) > 0 {
            self.restore(&client).await;
        }
        self.client.send_replace(Some(client));
        self.generation.send_modify(|g| *g += 1);
        info!(iface = %self.iface, "wpa_supplicant is up");

        // The monitor stops hearing events silently if wpa_supplicant restarts underneath it:
        // a periodic PING on the monitor socket notices.
        let mut keepalive = tokio::time::interval(Duration::from_secs(10));
        keepalive.tick().await;
        let mut paused = self.paused.subscribe();
        loop {
            tokio::select! {
                _ = async { let _ = paused.wait_for(|p| *p).await; } => {
                    return self.terminate(&mut child).await;
                }
                status = child.wait() => return Ok(status?),
                _ = keepalive.tick() => {
                    if let Err(e) = monitor.ping().await {
                        warn!(cause = %e, "event monitor lost; restarting wpa_supplicant");
                        let _ = child.kill().await;
                        return Ok(child.wait().await?);
                    }
                }
                ev = monitor.next_event() => match ev {
                    Ok(msg) => {
                        // Debug output while connected only: the one place 2.10 tells what a
                        // BSS transition request said (crate::wpa::wnm; read by wpa_stdout),
                        // and BTM requests come to a connected station. Off otherwise: under
                        // a slow CPU the debug output of a scan or a connect costs time.
                        let debug = match &msg.event {
                            Event::Connected { .. } => Some(true),
                            Event::Disconnected { .. } => Some(false),
                            _ => None,
                        };
                        if let (Some(on), Some(c)) = (debug, self.client.borrow().clone()) {
                            let flag = debug_on.clone();
                            if !on {
                                flag.store(false, Ordering::Relaxed);
                            }
                            tokio::spawn(async move {
                                match c.request_ok(&crate::wpa::Command::LogLevelDebug(on)).await {
                                    Ok(()) => flag.store(on, Ordering::Relaxed),
                                    Err(e) => warn!(cause = %e, "LOG_LEVEL refused"),
                                }
                            });
                        }
                        self.log.push("event", msg.raw().to_string());
                        let _ = self.events.send(msg.event);
                    }
                    Err(e) => {
                        warn!(cause = %e, "event socket failed; restarting wpa_supplicant");
                        let _ = child.kill().await;
                        return Ok(child.wait().await?);
                    }
                },
                _ = self.stop.cancelled() => {
                    return self.terminate(&mut child).await;
                }
            }
        }
    }

    /// Ask wpa_supplicant to TERMINATE (it deauthenticates and cleans up), kill it after 3 s.
    async fn terminate(
        &self,
        child: &mut tokio::process::Child,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let client = self.client.borrow().clone();
        if let Some(c) = client {
            let _ = c.request(&crate::wpa::Command::Terminate).await;
        }
        if tokio::time::timeout(Duration::from_secs(3), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
        Ok(child.wait().await?)
    }

    async fn restore(&self, client: &CtrlClient) {
        let book = self.book.lock().await.clone();
        let mut restored = 0;
        for (ssid, fields) in &book {
            let r = async {
                let id = client.add_network().await?;
                for f in fields {
                    client.set_network(id, f).await?;
                }
                client.enable_network(id).await
            }
            .await;
            match r {
                Ok(()) => restored += 1,
                Err(e) => warn!(ssid = %ssid, cause = %e, "cannot restore a network"),
            }
        }
        self.log.push(
            "agent",
            format!(
                "wpa_supplicant restarted; {restored} of {} network(s) restored",
                book.len()
            ),
        );
    }

    /// Remember a network (replacing one with the same SSID) for restoring after a restart.
    pub async fn remember(&self, ssid: Ssid, fields: Vec<NetworkField>) {
        let mut book = self.book.lock().await;
        book.retain(|(s, _)| s != &ssid);
        book.push((ssid, fields));
    }

    /// Forget a remembered network.
    pub async fn forget(&self, ssid: &Ssid) {
        self.book.lock().await.retain(|(s, _)| s != ssid);
    }

    /// A live control client, waiting up to 15 s for wpa_supplicant to (re)start.
    pub async fn client(&self) -> Result<Arc<CtrlClient>, String> {
        let mut rx = self.client.subscribe();
        match tokio::time::timeout(Duration::from_secs(15), rx.wait_for(|c| c.is_some())).await {
            Ok(Ok(c)) => Ok(c.clone().expect("checked by wait_for")),
            _ => Err("wpa_supplicant is not running (it is being restarted; try again)".into()),
        }
    }

    /// Subscribe to control events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Watch the start counter (1 after the first start; each restart adds one).
    pub fn generations(&self) -> watch::Receiver<u32> {
        self.generation.subscribe()
    }

    /// How many times wpa_supplicant had to be restarted.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Take wpa_supplicant off the radio (the access point needs it): it is stopped — not
    /// counted as a restart — and stays stopped until [`Wpa::resume`]. Returns once no
    /// wpa_supplicant process is left (bounded: 8 s).
    pub async fn pause(&self) -> Result<(), String> {
        self.paused.send_replace(true);
        let mut running = self.running.subscribe();
        match tokio::time::timeout(Duration::from_secs(8), running.wait_for(|r| !*r)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err("wpa_supplicant did not stop within 8 s".into()),
        }
    }

    /// Start wpa_supplicant again after [`Wpa::pause`]: the remembered networks are restored,
    /// disconnected.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// Whether [`Wpa::pause`] holds it off the radio.
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Stop wpa_supplicant for good.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }
}
