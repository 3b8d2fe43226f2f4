//! The daemon as a child, the way systemd runs it: a test NOTIFY_SOCKET, signals, its exit.

use super::*;

pub(crate) struct Instance {
    pub(crate) child: tokio::process::Child,
    pub(crate) pid: u32,
    pub(crate) rx: mpsc::UnboundedReceiver<(Instant, String)>,
    pub(crate) seen: Vec<(Instant, String)>,
    pub(crate) log: PathBuf,
    pub(crate) t0: Instant,
    pub(crate) exit: Option<ExitStatus>,
}

impl Instance {
    pub(crate) fn spawn(label: &str, args: &[&str]) -> Instance {
        fs::create_dir_all("/run/probe").unwrap();
        let sock = PathBuf::from(format!("/run/probe/notify-{label}.sock"));
        let _ = fs::remove_file(&sock);
        let dgram = UnixDatagram::bind(&sock).expect("binding the notify socket");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = dgram.recv(&mut buf).await {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if tx.send((Instant::now(), msg)).is_err() {
                    break;
                }
            }
        });
        let log = PathBuf::from(format!("{LOGS}/daemon-{label}.log"));
        let file = fs::File::create(&log).expect("daemon log");
        let t0 = Instant::now();
        let child = tokio::process::Command::new(WI)
            .args(args)
            .env("NOTIFY_SOCKET", &sock)
            .env("WIFI_ISOLATE_LOG", DAEMON_LOG_FILTER)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawning wifi-isolate run");
        let pid = child.id().unwrap();
        Instance {
            child,
            pid,
            rx,
            seen: Vec::new(),
            log,
            t0,
            exit: None,
        }
    }

    /// The first notify message (since spawn) that satisfies `pred`, waiting up to `within`.
    pub(crate) async fn note(
        &mut self,
        pred: impl Fn(&str) -> bool,
        within: Duration,
    ) -> Option<(Instant, String)> {
        if let Some(m) = self.seen.iter().find(|(_, m)| pred(m)) {
            return Some(m.clone());
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) => {
                    self.seen.push(m.clone());
                    if pred(&m.1) {
                        return Some(m);
                    }
                }
                _ => return None,
            }
        }
    }

    pub(crate) fn drain(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.seen.push(m);
        }
    }

    /// Wait for READY=1 (or the daemon's exit). Returns the READY message and its delay.
    pub(crate) async fn ready(&mut self, within: Duration) -> Option<(Duration, String)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some((t, m)) = self
                .note(
                    |m| m.lines().any(|l| l == "READY=1"),
                    Duration::from_millis(100),
                )
                .await
            {
                return Some((t - self.t0, m));
            }
            if self.exited_now().is_some() || tokio::time::Instant::now() >= deadline {
                return None;
            }
        }
    }

    pub(crate) fn exited_now(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    pub(crate) async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        if self.exit.is_none()
            && let Ok(Ok(s)) = tokio::time::timeout(within, self.child.wait()).await
        {
            self.exit = Some(s);
        }
        self.exit
    }

    pub(crate) fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), sig);
    }

    pub(crate) fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn log_tail(&self, n: usize) -> String {
        let t = self.log_text();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub(crate) fn statuses(&mut self) -> Vec<String> {
        self.drain();
        self.seen
            .iter()
            .map(|(_, m)| m.replace('\n', " | "))
            .collect()
    }
}

pub(crate) fn describe(s: Option<ExitStatus>) -> String {
    match s {
        None => "still running".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => format!("{s:?}"),
        },
    }
}

/// Poll `/sys/class/net/IFACE` every 10 ms. Returns how long it took after `since`.
pub(crate) async fn wait_iface(iface: &str, since: Instant, within: Duration) -> Option<Duration> {
    loop {
        if in_host(iface) {
            return Some(since.elapsed());
        }
        if since.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
