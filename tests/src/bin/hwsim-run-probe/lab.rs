//! The lab: the radios, the host baseline, the checks every scenario repeats (MCP helpers).

use super::*;

pub(crate) fn subnet_prefix(cidr: &str) -> String {
    // "10.0.2.0/24" -> "10.0.2."
    let net = cidr.split('/').next().unwrap_or("");
    net.rsplit_once('.')
        .map(|(a, _)| format!("{a}."))
        .unwrap_or_default()
}

pub(crate) struct Lab {
    pub(crate) t: Tally,
    pub(crate) sta1: String,
    pub(crate) phy1: String,
    pub(crate) sta2: String,
    pub(crate) phy2: String,
    pub(crate) baseline: String,
    pub(crate) iw_baseline: String,
    pub(crate) mounts: String,
}

impl Lab {
    pub(crate) fn check_host(&mut self, when: &str) {
        let now = host_view();
        let detail = format!("before:\n{}\nnow:\n{}", self.baseline, now);
        self.t.check(
            &format!("host routes/addresses unchanged {when}"),
            now == self.baseline,
            detail,
        );
    }

    /// Start `run IFACE --engine netns` and wait for READY=1. Checks the status line and the
    /// isolation. Returns the instance (even if not ready, for cleanup).
    /// [`Lab::start`], the daemon killed if it did not come up: `None` ends the scenario (its
    /// checks have failed already).
    pub(crate) async fn start_up(
        &mut self,
        label: &str,
        iface: &str,
        phy: &str,
    ) -> Option<Instance> {
        let (d, ok) = self.start(label, iface, phy).await;
        if !ok {
            d.signal(nix::sys::signal::Signal::SIGKILL);
            return None;
        }
        Some(d)
    }

    pub(crate) async fn start(&mut self, label: &str, iface: &str, phy: &str) -> (Instance, bool) {
        let mut d = Instance::spawn(label, &["run", iface, "--engine", "netns"]);
        let ready = d.ready(Duration::from_secs(30)).await;
        let ok = self.t.check(
            &format!("[{label}] READY=1 within 30 s"),
            ready.is_some(),
            match &ready {
                Some((t, _)) => format!("{} ms", ms(*t)),
                None => format!(
                    "{}; notify: {:?}\n{}",
                    describe(d.exited_now()),
                    d.statuses(),
                    d.log_tail(30)
                ),
            },
        );
        if let Some((t, m)) = &ready {
            self.t.time(&format!("{label} READY"), ms(*t));
            let status = m
                .lines()
                .find_map(|l| l.strip_prefix("STATUS="))
                .unwrap_or("")
                .to_string();
            self.t.check(
                &format!("[{label}] STATUS names the iface, phy and netns box"),
                status.contains(iface)
                    && status.contains(&format!("({phy})"))
                    && status.contains("netns:"),
                &status,
            );
        }
        if !ok {
            return (d, false);
        }
        self.t.check(
            &format!("[{label}] {iface} gone from the root netns"),
            !in_host(iface) && !phy_in_host(phy),
            format!(
                "/sys/class/net/{iface}: {}, /sys/class/ieee80211/{phy}: {}",
                in_host(iface),
                phy_in_host(phy)
            ),
        );
        let st = state(iface);
        let bp = box_pid(iface);
        self.t.check(
            &format!("[{label}] state file records the box"),
            bp.is_some()
                && st
                    .as_ref()
                    .is_some_and(|s| s["moved"] == true && s["phy_name"] == phy),
            format!("{st:?}"),
        );
        if let Some(bp) = bp {
            let (yes, seen) = in_box(bp, iface, phy);
            self.t.check(
                &format!("[{label}] {phy}/{iface} is in the box's netns (pid {bp})"),
                yes,
                seen,
            );
        }
        (d, true)
    }

    /// After the phy came home: down, no IPv4, original phy; nothing left behind.
    pub(crate) fn check_home(&mut self, label: &str, iface: &str, phy: &str) {
        let (up, oper) = link_state(iface);
        let v4 = ipv4_of(iface);
        let phy_now = fs::read_to_string(format!("/sys/class/net/{iface}/phy80211/name"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        self.t.check(
            &format!("[{label}] {iface} home: down, no IPv4, on {phy}"),
            up == Some(false) && oper == "down" && v4.is_empty() && phy_now == phy,
            format!("up={up:?} operstate={oper} ipv4={v4:?} phy={phy_now}"),
        );
    }

    pub(crate) fn check_nothing_left(&mut self, label: &str, iface: &str) {
        let (live, zombies) = agents();
        self.t.check(
            &format!("[{label}] no agent process left"),
            live.is_empty(),
            format!("live {live:?}, zombies {zombies:?}"),
        );
        if !zombies.is_empty() {
            self.t.note(format!(
                "[{label}] agent zombies (not reaped by the VM's PID 1): {zombies:?}"
            ));
        }
        self.t.check(
            &format!("[{label}] state files gone"),
            !state_path(iface).exists() && !netns_state_path(iface).exists(),
            format!(
                "{}: {}, {}: {}",
                state_path(iface).display(),
                state_path(iface).exists(),
                netns_state_path(iface).display(),
                netns_state_path(iface).exists()
            ),
        );
        let left: Vec<String> = walk(Path::new(ROOT));
        self.t
            .note(format!("[{label}] {ROOT} after release: {left:?}"));
        let m = mountinfo();
        self.t.check(
            &format!("[{label}] no leftover mounts"),
            m == self.mounts,
            format!("before:\n{}\nnow:\n{m}", self.mounts),
        );
        self.check_host(&format!("[{label}] after release"));
    }

    /// SIGTERM → timed return → STOPPING=1 → exit 0 → nothing left.
    pub(crate) async fn stop(&mut self, label: &str, d: &mut Instance, iface: &str, phy: &str) {
        let t0 = Instant::now();
        d.signal(nix::sys::signal::Signal::SIGTERM);
        let back = wait_iface(iface, t0, Duration::from_secs(15)).await;
        if let Some(b) = back {
            self.t.time(&format!("{label} SIGTERM→{iface} home"), ms(b));
        }
        self.t.check(
            &format!("[{label}] {iface} back under its name < 0.5 s after SIGTERM"),
            back.is_some_and(|b| b < Duration::from_millis(500)),
            match back {
                Some(b) => format!("{} ms", ms(b)),
                None => format!("not back; iw dev:\n{}\n{}", iw_dev(), d.log_tail(30)),
            },
        );
        let stopping = d
            .note(
                |m| m.lines().any(|l| l == "STOPPING=1"),
                Duration::from_secs(5),
            )
            .await;
        self.t.check(
            &format!("[{label}] STOPPING=1 sent"),
            stopping.is_some(),
            format!("{:?}", d.statuses()),
        );
        let exit = d.wait_exit(Duration::from_secs(15)).await;
        if exit.is_some() {
            self.t
                .time(&format!("{label} SIGTERM→exit"), ms(t0.elapsed()));
        }
        self.t.check(
            &format!("[{label}] daemon exits 0"),
            exit.is_some_and(|s| s.code() == Some(0)),
            format!(
                "{}\n{}",
                describe(exit),
                if exit.is_some_and(|s| s.success()) {
                    String::new()
                } else {
                    d.log_tail(30)
                }
            ),
        );
        if back.is_some() {
            self.check_home(label, iface, phy);
        }
        self.check_nothing_left(label, iface);
    }
}
