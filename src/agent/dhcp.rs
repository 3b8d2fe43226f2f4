//! A real DHCP client in the box: busybox `udhcpc`, with the agent itself as its hook.
//!
//! Why udhcpc: it is one static applet already in the box (busybox-static), runs in the foreground
//! as a child we supervise, and does nothing on its own — every change goes through the script it
//! calls. We make that script the agent binary (`WIFI_ISOLATE_DHCP_SOCK` in its environment), which
//! forwards the lease to the running agent over a Unix socket; the agent applies it with rtnetlink
//! on the WiFi interface only and writes the box's `resolv.conf`. dhcpcd, by contrast, would manage
//! every interface and run resolvconf hooks of its own.
//!
//! udhcpc runs with `-R`, so stopping it releases the lease (DHCPRELEASE) and calls `deconfig`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, watch};
use tracing::{info, warn};

use super::events::LogRing;
use super::netcfg::{NetCfg, mask_to_prefix};

/// Environment variable that turns the agent binary into the udhcpc hook.
pub const HOOK_ENV: &str = "WIFI_ISOLATE_DHCP_SOCK";

/// Variables udhcpc exports to its script that we forward.
const HOOK_VARS: &[&str] = &[
    "interface",
    "ip",
    "subnet",
    "mask",
    "router",
    "dns",
    "domain",
    "lease",
    "serverid",
];

/// A DHCP lease as applied in the box.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct Lease {
    /// Our address.
    pub ip: Ipv4Addr,
    /// Prefix length of the subnet.
    pub prefix: u8,
    /// Default gateway, if offered.
    pub gateway: Option<Ipv4Addr>,
    /// DNS servers offered.
    pub dns: Vec<Ipv4Addr>,
    /// Search domain, if offered.
    pub domain: Option<String>,
    /// Lease time in seconds.
    pub lease_secs: Option<u64>,
    /// The DHCP server that granted it.
    pub server: Option<Ipv4Addr>,
}

/// One call of the hook by udhcpc.
#[derive(Debug, Serialize, Deserialize)]
struct HookCall {
    event: String,
    vars: BTreeMap<String, String>,
}

impl HookCall {
    fn lease(&self) -> anyhow::Result<Lease> {
        let get = |k: &str| {
            self.vars
                .get(k)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let ip: Ipv4Addr = get("ip").context("udhcpc gave no ip")?.parse()?;
        let prefix = match (get("mask"), get("subnet")) {
            (Some(m), _) => m.parse()?,
            (None, Some(s)) => mask_to_prefix(s.parse()?).context("bad subnet mask")?,
            (None, None) => 24,
        };
        let ips = |k: &str| -> Vec<Ipv4Addr> {
            get(k)
                .map(|v| {
                    v.split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(Lease {
            ip,
            prefix,
            gateway: ips("router").into_iter().next(),
            dns: ips("dns"),
            domain: get("domain").map(str::to_string),
            lease_secs: get("lease").and_then(|l| l.parse().ok()),
            server: get("serverid").and_then(|s| s.parse().ok()),
        })
    }
}

/// Entry point when the agent binary runs as udhcpc's script. Returns the process exit code.
pub fn run_hook(socket: &Path, event: &str) -> i32 {
    let vars = HOOK_VARS
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    let call = HookCall {
        event: event.to_string(),
        vars,
    };
    let result = (|| -> std::io::Result<String> {
        use std::io::{BufRead, Write};
        let mut s = std::os::unix::net::UnixStream::connect(socket)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut line = serde_json::to_string(&call)?;
        line.push('\n');
        s.write_all(line.as_bytes())?;
        let mut reply = String::new();
        std::io::BufReader::new(s).read_line(&mut reply)?;
        Ok(reply)
    })();
    match result {
        Ok(r) if r.trim() == "ok" => 0,
        Ok(r) => {
            eprintln!("wifi-isolate dhcp hook: agent answered {:?}", r.trim());
            1
        }
        Err(e) => {
            eprintln!(
                "wifi-isolate dhcp hook: cannot reach agent at {}: {e}",
                socket.display()
            );
            1
        }
    }
}

/// Runs udhcpc on the WiFi interface and applies what it reports.
pub struct Dhcp {
    iface: String,
    net: NetCfg,
    hook_sock: PathBuf,
    resolv_conf: PathBuf,
    program: Vec<String>,
    child: Mutex<Option<Child>>,
    lease: watch::Sender<Option<Lease>>,
    log: LogRing,
}

impl Dhcp {
    /// Prepare the DHCP client for `iface`; `program` is the udhcpc command line prefix
    /// (`["udhcpc"]` or `["busybox", "udhcpc"]`).
    pub fn new(
        iface: &str,
        net: NetCfg,
        runtime_dir: &Path,
        resolv_conf: &Path,
        program: Vec<String>,
        log: LogRing,
    ) -> Arc<Self> {
        Arc::new(Self {
            iface: iface.to_string(),
            net,
            hook_sock: runtime_dir.join("dhcp-hook.sock"),
            resolv_conf: resolv_conf.to_path_buf(),
            program,
            child: Mutex::new(None),
            lease: watch::channel(None).0,
            log,
        })
    }

    /// Serve the hook socket. Call once; the task lives as long as the agent.
    pub fn serve_hook(self: &Arc<Self>) -> anyhow::Result<()> {
        // Only the box's own hook (udhcpc's script, same uid) talks to it.
        let listener = crate::unix_socket::bind_fresh(&self.hook_sock, 0o600)?;
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let me = me.clone();
                tokio::spawn(async move {
                    if let Err(e) = me.handle_hook(stream).await {
                        warn!(cause = %e, "dhcp hook call failed");
                    }
                });
            }
        });
        Ok(())
    }

    async fn handle_hook(&self, stream: UnixStream) -> anyhow::Result<()> {
        let (r, mut w) = stream.into_split();
        let mut line = String::new();
        BufReader::new(r).read_line(&mut line).await?;
        let call: HookCall = serde_json::from_str(&line)?;
        let outcome = self.apply(&call).await;
        let reply = match &outcome {
            Ok(()) => "ok\n".to_string(),
            Err(e) => format!("error: {e}\n"),
        };
        w.write_all(reply.as_bytes()).await?;
        outcome
    }

    async fn apply(&self, call: &HookCall) -> anyhow::Result<()> {
        if call.vars.get("interface").is_some_and(|i| i != &self.iface) {
            anyhow::bail!(
                "hook call for foreign interface {:?}",
                call.vars["interface"]
            );
        }
        let index = self
            .net
            .index(&self.iface)
            .await?
            .context("the WiFi interface is gone")?;
        match call.event.as_str() {
            "deconfig" => {
                self.net.flush(index).await?;
                self.lease.send_replace(None);
                self.log
                    .push("dhcp", "deconfig: addresses and routes removed".into());
            }
            "bound" | "renew" => {
                let lease = call.lease()?;
                self.net
                    .apply_lease(index, lease.ip, lease.prefix, lease.gateway)
                    .await?;
                self.write_resolv_conf(&lease);
                self.log.push(
                    "dhcp",
                    format!(
                        "{}: {}/{} gateway {} dns {:?}",
                        call.event,
                        lease.ip,
                        lease.prefix,
                        lease.gateway.map(|g| g.to_string()).unwrap_or("-".into()),
                        lease.dns
                    ),
                );
                info!(iface = %self.iface, ip = %lease.ip, "dhcp lease {}", call.event);
                self.lease.send_replace(Some(lease));
            }
            other => self.log.push("dhcp", other.to_string()),
        }
        Ok(())
    }

    fn write_resolv_conf(&self, lease: &Lease) {
        let mut text = String::from("# written by wifi-isolate-agent from the WiFi DHCP lease\n");
        if let Some(d) = &lease.domain {
            text.push_str(&format!("search {d}\n"));
        }
        for ns in &lease.dns {
            text.push_str(&format!("nameserver {ns}\n"));
        }
        // Written in place: the file may be a bind mount (ip netns exec, containers), which a
        // rename over it would fail on.
        if let Err(e) = std::fs::write(&self.resolv_conf, text) {
            warn!(path = %self.resolv_conf.display(), cause = %e, "cannot write resolv.conf");
        }
    }

    /// Changes of the lease (for the event history).
    pub fn subscribe_lease(&self) -> watch::Receiver<Option<Lease>> {
        self.lease.subscribe()
    }

    /// The current lease, if any.
    pub fn lease(&self) -> Option<Lease> {
        self.lease.borrow().clone()
    }

    /// Start (or restart) the client on the interface.
    pub async fn start(&self) -> anyhow::Result<()> {
        self.stop().await;
        let exe = std::env::current_exe().context("locating the agent binary for the DHCP hook")?;
        let mut cmd = Command::new(&self.program[0]);
        cmd.args(&self.program[1..])
            .args([
                "-f",
                "-R",
                "-i",
                &self.iface,
                "-t",
                "10",
                "-T",
                "1",
                "-A",
                "3",
                "-s",
            ])
            .arg(&exe)
            .env(HOOK_ENV, &self.hook_sock)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting DHCP client {:?}", self.program))?;
        super::events::pipe_lines(child.stdout.take(), self.log.clone(), "udhcpc");
        super::events::pipe_lines(child.stderr.take(), self.log.clone(), "udhcpc");
        *self.child.lock().await = Some(child);
        Ok(())
    }

    /// Wait for a lease, up to `timeout`.
    pub async fn wait_lease(&self, timeout: Duration) -> Option<Lease> {
        let mut rx = self.lease.subscribe();
        let got = tokio::time::timeout(timeout, rx.wait_for(|l| l.is_some())).await;
        match got {
            Ok(Ok(l)) => l.clone(),
            _ => None,
        }
    }

    /// Whether the client process is running.
    pub async fn running(&self) -> bool {
        let mut guard = self.child.lock().await;
        match guard.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stop the client: it releases the lease; then make sure nothing of it is left — and
    /// nothing of the network's IPv6 either (SLAAC addresses, RA routes): this runs whenever
    /// the association ends or changes. (Not on `deconfig`: udhcpc calls that at its start,
    /// after the router advertisement may already have configured IPv6.)
    pub async fn stop(&self) {
        let child = self.child.lock().await.take();
        if let Some(mut child) = child {
            if let Some(pid) = child.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            if tokio::time::timeout(Duration::from_secs(3), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        if let Ok(Some(index)) = self.net.index(&self.iface).await {
            let _ = self.net.flush(index).await;
            let _ = self.net.flush_ipv6(index).await;
        }
        if self.lease.send_replace(None).is_some() {
            let _ = std::fs::write(&self.resolv_conf, "# no WiFi lease\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(vars: &[(&str, &str)]) -> HookCall {
        HookCall {
            event: "bound".into(),
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn lease_from_udhcpc_vars() {
        let l = call(&[
            ("ip", "10.0.2.150"),
            ("subnet", "255.255.255.0"),
            ("router", "10.0.2.1 10.0.2.2"),
            ("dns", "10.0.2.1"),
            ("lease", "3600"),
        ])
        .lease()
        .unwrap();
        assert_eq!(l.ip, Ipv4Addr::new(10, 0, 2, 150));
        assert_eq!(l.prefix, 24);
        assert_eq!(l.gateway, Some(Ipv4Addr::new(10, 0, 2, 1)));
        assert_eq!(l.dns, vec![Ipv4Addr::new(10, 0, 2, 1)]);
        assert_eq!(l.lease_secs, Some(3600));
    }

    #[test]
    fn lease_prefers_mask_and_rejects_garbage() {
        let l = call(&[
            ("ip", "192.168.1.9"),
            ("mask", "16"),
            ("subnet", "255.255.255.0"),
        ])
        .lease()
        .unwrap();
        assert_eq!(l.prefix, 16);
        assert!(call(&[("ip", "not-an-ip")]).lease().is_err());
        assert!(call(&[]).lease().is_err());
        assert!(
            call(&[("ip", "1.2.3.4"), ("subnet", "255.0.255.0")])
                .lease()
                .is_err()
        );
    }
}
