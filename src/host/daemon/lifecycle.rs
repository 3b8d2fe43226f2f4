//! [`Daemon::run`]: the whole lifecycle of one instance as visible steps, each with its inverse.
//!
//! ```text
//! recover ─ held? ─ resolve ─ lock ─ unmanage ‖ box ─ move ─ ready ─ serve ─┐
//!    (a stop or a failure at any step, or the end of serving)              release
//! ```
//!
//! The stop (SIGTERM/SIGINT) is a [`CancellationToken`] the caller arms before the first step.
//! Waiting steps (resolve, the test pauses, the agent's readiness) end at once on a stop; steps
//! that create something (the box, the move) finish first — bounded — so their inverse knows
//! what to undo. Every ending goes through [`Daemon::release`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{Daemon, Ending, Hold, Isolation, Lock, Notifier, ReleaseError, RunError, status_line};
use crate::host::engine::{BoxHandle, Engine};
use crate::host::nm::NetworkManager;
use crate::host::wiphy::{Wiphy, Wiphys};

/// Who asked for this start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A user (`systemctl start`, udev for an enabled adapter, a manual `run`): lifts a hold.
    User,
    /// A client on the socket (socket activation with a connection waiting): a hold stays.
    Socket,
}

/// The steps, for the status line and the test hook `WIFI_ISOLATE_PAUSE_AT=STEP:MS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Find the wiphy behind the name.
    Resolve,
    /// Take the per-phy lock.
    Lock,
    /// NetworkManager leaves the device alone (beside the box's start).
    Unmanage,
    /// Start the box.
    Box,
    /// Move the phy into the box.
    Move,
    /// Wait for the agent to answer.
    Ready,
}

impl std::str::FromStr for Step {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "resolve" => Step::Resolve,
            "lock" => Step::Lock,
            "unmanage" => Step::Unmanage,
            "box" => Step::Box,
            "move" => Step::Move,
            "ready" => Step::Ready,
            _ => {
                return Err(format!(
                    "unknown step {s:?} (resolve, lock, unmanage, box, move, ready)"
                ));
            }
        })
    }
}

/// What the caller gives the lifecycle: the stop, the reload, the trigger, the test hook.
pub struct Control {
    /// Cancelled on SIGTERM/SIGINT.
    pub stop: CancellationToken,
    /// Notified on SIGHUP (`systemctl reload`): a held instance isolates after all.
    pub reload: Arc<Notify>,
    /// Who started us.
    pub trigger: Trigger,
    /// Sleep this long before this step (a fault-injection hook for the lifecycle's tests; a
    /// stop cuts it short).
    pub pause: Option<(Step, Duration)>,
}

impl Control {
    /// No stop yet, no pause.
    pub fn new(trigger: Trigger) -> Self {
        Control {
            stop: CancellationToken::new(),
            reload: Arc::new(Notify::new()),
            trigger,
            pause: None,
        }
    }

    /// Parse the test hook `STEP:MS` (`WIFI_ISOLATE_PAUSE_AT`).
    pub fn parse_pause(spec: &str) -> Result<(Step, Duration), String> {
        let (step, ms) = spec
            .split_once(':')
            .ok_or_else(|| format!("WIFI_ISOLATE_PAUSE_AT={spec:?}: want STEP:MS"))?;
        let ms: u64 = ms
            .parse()
            .map_err(|_| format!("WIFI_ISOLATE_PAUSE_AT={spec:?}: {ms:?} is not milliseconds"))?;
        Ok((step.parse()?, Duration::from_millis(ms)))
    }
}

/// The MCP endpoint as the lifecycle drives it (the proxy in production).
pub trait Endpoint {
    /// Requests wait (bounded) for the agent.
    fn starting(&self);
    /// Forward to the agent, whose socket belongs to `uid`.
    fn ready(&self, uid: u32);
    /// Answer every request 503 with `message`.
    fn held(&self, message: &str);
    /// Answer 503 "stopping".
    fn stopping(&self);
    /// How long no client has been connected.
    fn idle_for(&self) -> Duration;
}

/// No endpoint of our own (`run --no-listen`).
impl Endpoint for () {
    fn starting(&self) {}
    fn ready(&self, _uid: u32) {}
    fn held(&self, _message: &str) {}
    fn stopping(&self) {}
    fn idle_for(&self) -> Duration {
        Duration::MAX
    }
}

/// How a run ended, and what its release could not undo.
#[derive(Debug)]
pub struct Finished {
    /// The ending, or why the run failed.
    pub ending: Result<Ending, RunError>,
    /// Release steps that failed (the state file is kept for a later cleanup).
    pub release: Vec<ReleaseError>,
}

impl Finished {
    fn nothing(ending: Result<Ending, RunError>) -> Self {
        Finished {
            ending,
            release: Vec::new(),
        }
    }

    /// The exit status for the unit's restart policy: 0 for a stop, an unplug or a held run
    /// that released everything; [`super::EXIT_NEVER_WORKS`] for what a restart cannot fix;
    /// 1 otherwise (restart).
    pub fn exit_code(&self) -> u8 {
        match &self.ending {
            Ok(_) if self.release.is_empty() => 0,
            Err(e) if e.never_works() => super::EXIT_NEVER_WORKS,
            _ => 1,
        }
    }
}

/// Why start-up did not get to serving.
pub(super) enum Interrupt {
    /// A stop arrived.
    Stop,
    /// A step failed.
    Fail(RunError),
}

impl From<RunError> for Interrupt {
    fn from(e: RunError) -> Self {
        Interrupt::Fail(e)
    }
}

impl Interrupt {
    pub(super) fn into_error(self) -> RunError {
        match self {
            Interrupt::Stop => RunError::Other("stopped".into()),
            Interrupt::Fail(e) => e,
        }
    }
}

/// How long a step that creates something may still take after a stop, before its inverse.
const STOP_GRACE: Duration = Duration::from_secs(10);

enum HeldEnd {
    Reload,
    Stopped,
    Idle,
}

impl<W: Wiphys, N: NetworkManager, E: Engine, S: Notifier> Daemon<W, N, E, S> {
    /// The whole lifecycle of `instance`; see the module doc. Logs as it goes; the caller maps
    /// [`Finished::exit_code`] to the process's exit status.
    pub async fn run(&self, instance: &str, ctl: &Control, ep: &impl Endpoint) -> Finished {
        for note in self.recover(instance).await {
            warn!(IFACE = %instance, "{note}");
        }
        if let Some(why) = self.paths.hold_reason(instance) {
            match (ctl.trigger, why) {
                // A user's start lifts any hold; a client's start lifts one a failure left
                // (the restart policy would have started it anyway).
                (Trigger::User, _) | (Trigger::Socket, Hold::Failed) => self.paths.unhold(instance),
                (Trigger::Socket, Hold::Stopped) => {
                    match self.serve_held(instance, ctl, ep).await {
                        HeldEnd::Reload => {
                            self.paths.unhold(instance);
                            ep.starting();
                        }
                        HeldEnd::Stopped => return Finished::nothing(Ok(Ending::Stopped)),
                        HeldEnd::Idle => return Finished::nothing(Ok(Ending::Held)),
                    }
                }
            }
        }
        let resolved = async {
            self.pause(ctl, Step::Resolve, &format!("{instance}: resolving"))
                .await?;
            tokio::select! {
                biased;
                _ = ctl.stop.cancelled() => Err(Interrupt::Stop),
                r = self.resolve(instance) => r.map_err(|e| match self.paths.held_by_other_instance(instance, instance) {
                    Some(holder) => Interrupt::Fail(RunError::Busy(format!(
                        "{instance} is isolated by instance {holder}; stop that one first"
                    ))),
                    None => Interrupt::Fail(e),
                }),
            }
        }
        .await;
        let (phy, iface) = match resolved {
            Ok(x) => x,
            Err(Interrupt::Stop) => {
                info!(IFACE = %instance, "stopped before anything was changed");
                self.paths.hold(instance, Hold::Stopped);
                return Finished::nothing(Ok(Ending::Stopped));
            }
            Err(Interrupt::Fail(e)) => {
                error!(IFACE = %instance, "{e}");
                return Finished::nothing(Err(e));
            }
        };
        // An enabled adapter must be the one its rule recorded: after a rename or another
        // probe order, the name may now belong to the host's own WiFi.
        if let Ok(name) = crate::validate::IfaceName::parse(&iface)
            && let Err(e) = crate::host::udev::check_identity(&self.paths.rules_dir, &name)
        {
            let e = RunError::Identity(e.to_string());
            error!(IFACE = %instance, "{e}");
            return Finished::nothing(Err(e));
        }
        let locked = async {
            self.pause(ctl, Step::Lock, &format!("{iface} ({}): locking", phy.name))
                .await?;
            Lock::take(&self.paths.wiphy_lock(phy.index), &phy.name).map_err(Interrupt::Fail)
        }
        .await;
        let _phy_lock = match locked {
            Ok(l) => l,
            Err(Interrupt::Stop) => {
                self.paths.hold(&iface, Hold::Stopped);
                return Finished::nothing(Ok(Ending::Stopped));
            }
            Err(Interrupt::Fail(e)) => {
                error!(IFACE = %instance, "{e}");
                return Finished::nothing(Err(e));
            }
        };
        if iface != instance {
            self.paths.unhold(&iface);
        }
        let mut iso = self.begin(instance, &phy, iface);
        let (ending, h) = match self.start_steps(&mut iso, ctl).await {
            Ok(h) => {
                let line = status_line(&iso, &h, "agent ready");
                info!(IFACE = %iso.iface, PHY = %iso.phy_name, BOX = %h.name, "{line}");
                self.notify.ready(&line);
                ep.ready(h.uid);
                let ending = self.supervise(&iso, &h, ctl.stop.cancelled()).await;
                info!(IFACE = %iso.iface, ending = ?ending.as_ref().map_err(|e| e.to_string()), "serving ended");
                self.notify.stopping();
                ep.stopping();
                (ending, Some(h))
            }
            Err(Interrupt::Stop) => {
                info!(IFACE = %iso.iface, "stopped during start-up; undoing");
                (Ok(Ending::Stopped), None)
            }
            Err(Interrupt::Fail(e)) => {
                error!(IFACE = %iso.iface, cause = %e, "isolation failed; undoing");
                (Err(e), None)
            }
        };
        match &ending {
            Ok(Ending::Unplugged) => {
                info!(IFACE = %iso.iface, PHY = %iso.phy_name, "the adapter was removed; exiting");
                // Nothing to bring home; the box and NetworkManager still get their inverses.
                // Left unheld, so plugging it in again isolates it.
                iso.moved = false;
            }
            Ok(_) => {}
            Err(e) if h.is_some() => error!(IFACE = %iso.iface, "{e}"),
            Err(_) => {}
        }
        match &ending {
            Ok(Ending::Unplugged) => {}
            // Written before the phy comes home, so the add event it causes finds it: a stop
            // the user asked for stays a stop, and after a failure the unit's restart policy
            // alone decides (an udev start on top would count against the start limit twice).
            Ok(_) => self.paths.hold(&iso.iface, Hold::Stopped),
            Err(_) => self.paths.hold(&iso.iface, Hold::Failed),
        }
        self.notify.status(&format!("{}: releasing", iso.iface));
        let release = self.release(&iso).await;
        for e in &release {
            error!(IFACE = %iso.iface, "release: {e}");
        }
        if release.is_empty() {
            info!(IFACE = %iso.iface, "released");
        }
        Finished { ending, release }
    }

    /// The record a run starts from (saved at once: a crash from here on is cleaned up).
    pub(super) fn begin(&self, instance: &str, phy: &Wiphy, iface: String) -> Isolation {
        let iso = Isolation {
            instance: instance.to_string(),
            daemon_pid: std::process::id(),
            phy_index: phy.index,
            phy_name: phy.name.clone(),
            mac: phy
                .ifaces
                .iter()
                .find(|i| i.name == iface)
                .and_then(|i| i.mac)
                .map(Into::into),
            iface,
            ..Default::default()
        };
        self.save(&iso);
        iso
    }

    /// The status line of `step`, then the test pause before it (cut short by a stop).
    async fn pause(&self, ctl: &Control, step: Step, status: &str) -> Result<(), Interrupt> {
        self.notify.status(status);
        if ctl.stop.is_cancelled() {
            return Err(Interrupt::Stop);
        }
        if let Some((s, d)) = ctl.pause
            && s == step
        {
            info!(
                "pausing {} ms before {step:?} (WIFI_ISOLATE_PAUSE_AT)",
                d.as_millis()
            );
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = ctl.stop.cancelled() => return Err(Interrupt::Stop),
            }
        }
        Ok(())
    }

    /// Steps 3-5: NetworkManager and the box side by side (neither needs the other), then the
    /// move and the agent's readiness. What is done is recorded in `iso` as it happens.
    pub(super) async fn start_steps(
        &self,
        iso: &mut Isolation,
        ctl: &Control,
    ) -> Result<BoxHandle, Interrupt> {
        let name = format!("{} ({})", iso.iface, iso.phy_name);
        self.pause(ctl, Step::Unmanage, &format!("{name}: unmanaging"))
            .await?;
        let spec = self.box_spec(iso);
        let (iface, phy_name) = (iso.iface.clone(), iso.phy_name.clone());
        let nm = self.unmanage(&iface, &phy_name);
        let start = async {
            self.pause(ctl, Step::Box, &format!("{name}: starting the box"))
                .await?;
            self.start_box(&spec).await.map_err(Interrupt::Fail)
        };
        tokio::pin!(nm, start);
        let (mut nm_done, mut box_done) = (None, None);
        let grace = tokio::time::sleep(Duration::MAX / 4);
        tokio::pin!(grace);
        let mut stopping = false;
        while nm_done.is_none() || box_done.is_none() {
            tokio::select! {
                r = &mut nm, if nm_done.is_none() => {
                    if let Ok(prev) = &r {
                        iso.nm_previous = *prev;
                        self.save(iso);
                    }
                    nm_done = Some(r);
                }
                r = &mut start, if box_done.is_none() => {
                    if let Ok(h) = &r {
                        iso.record_box(h);
                        self.save(iso);
                    }
                    box_done = Some(r);
                }
                _ = ctl.stop.cancelled(), if !stopping => {
                    stopping = true;
                    grace.as_mut().reset(tokio::time::Instant::now() + STOP_GRACE);
                }
                _ = &mut grace => break,
            }
        }
        if box_done.is_none() {
            // The box's start outlived the grace: whatever the engine made is swept by name.
            let mut notes = Vec::new();
            self.sweep_boxes(&iso.instance, &mut notes).await;
            for n in notes {
                warn!(IFACE = %iso.iface, "{n}");
            }
        }
        if stopping {
            return Err(Interrupt::Stop);
        }
        nm_done.expect("NetworkManager's step ended")?;
        let h = box_done.expect("the box's step ended")?;
        self.pause(ctl, Step::Move, &format!("{name}: moving into {}", h.name))
            .await?;
        self.move_in(iso, &h).await?;
        self.pause(ctl, Step::Ready, &format!("{name}: waiting for the agent"))
            .await?;
        tokio::select! {
            biased;
            _ = ctl.stop.cancelled() => Err(Interrupt::Stop),
            r = self.wait_ready(iso, &h) => r.map(|()| h).map_err(Interrupt::Fail),
        }
    }

    /// Held: a user stopped this adapter and a client's connection started us. Isolate
    /// nothing; answer 503 until a reload (`systemctl reload`), a stop, or `held_idle` without
    /// a client.
    async fn serve_held(&self, instance: &str, ctl: &Control, ep: &impl Endpoint) -> HeldEnd {
        let idle = Duration::from_secs(self.settings.timeouts.held_idle);
        ep.held(&format!(
            "{instance} is held: it was stopped with `systemctl stop`, so no client starts it \
             again. Start it with `systemctl reload wifi-isolate@{instance}` while this endpoint \
             answers, or `systemctl start wifi-isolate@{instance}` once it exited ({} s \
             without a client)",
            idle.as_secs()
        ));
        let status = format!(
            "{instance} held (stopped by a user): isolating nothing; `systemctl reload \
             wifi-isolate@{instance}` isolates it"
        );
        info!(IFACE = %instance, "{status}");
        self.notify.ready(&status);
        // Held is a running state of the unit: its watchdog is fed here too.
        let watchdog = sd_notify::watchdog_enabled();
        let mut wd = tokio::time::interval(watchdog.map_or(Duration::from_secs(3600), |d| d / 2));
        loop {
            let left = idle.saturating_sub(ep.idle_for());
            if left.is_zero() {
                info!(IFACE = %instance, "held, {} s without a client: exiting", idle.as_secs());
                return HeldEnd::Idle;
            }
            tokio::select! {
                _ = ctl.stop.cancelled() => return HeldEnd::Stopped,
                _ = ctl.reload.notified() => {
                    info!(IFACE = %instance, "reload: lifting the hold");
                    return HeldEnd::Reload;
                }
                _ = wd.tick() => if watchdog.is_some() { self.notify.watchdog() },
                _ = tokio::time::sleep(left.max(Duration::from_millis(100))) => {}
            }
        }
    }
}
