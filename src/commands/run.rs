//! `wifi-isolate run IFACE`: the service's main process.

use std::path::PathBuf;
use std::process::ExitCode;

use tracing::{error, info, warn};

use crate::host::config::{EngineChoice, Settings};
use crate::host::daemon::{Daemon, EXIT_NEVER_WORKS, Ending, Lock, Paths, SdNotify, status_line};
use crate::host::engine;
use crate::host::nm::{NetworkManager, NmDbus, NmError};
use crate::host::wiphy::Nl80211;
use crate::proxy::{self, ListenSpec, Listener, Proxy, ProxyConfig};

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The adapter: its interface name (wlp6s0) or phy name (phy0).
    pub iface: String,
    /// Override the configured engine: auto, podman, docker or netns.
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<String>,
    /// Runtime root (sockets, state, the dir shared with the box).
    #[arg(long, default_value = "/run/wifi-isolate", value_name = "DIR")]
    pub runtime_root: PathBuf,
    /// Serve MCP here when systemd passes no sockets: `unix:PATH` or `tcp:127.0.0.1:PORT`
    /// (repeatable; TCP needs a bearer token). Default: unix:RUNTIME_ROOT/IFACE.sock.
    #[arg(long, value_name = "SPEC")]
    pub listen: Vec<ListenSpec>,
    /// Serve no MCP endpoint of our own (the agent's socket is still there).
    #[arg(long, conflicts_with = "listen")]
    pub no_listen: bool,
}

/// NetworkManager if the system bus has one, else every call says `NotRunning`.
pub struct MaybeNm(Option<NmDbus>);

impl MaybeNm {
    /// Connect to the system bus; no bus means no NetworkManager.
    pub async fn system() -> Self {
        Self(NmDbus::system().await.ok())
    }
}

impl NetworkManager for MaybeNm {
    async fn managed(&self, iface: &str) -> Result<bool, NmError> {
        match &self.0 {
            Some(nm) => nm.managed(iface).await,
            None => Err(NmError::NotRunning),
        }
    }
    async fn set_managed(&self, iface: &str, managed: bool) -> Result<(), NmError> {
        match &self.0 {
            Some(nm) => nm.set_managed(iface, managed).await,
            None => Err(NmError::NotRunning),
        }
    }
    async fn version(&self) -> Result<String, NmError> {
        match &self.0 {
            Some(nm) => nm.version().await,
            None => Err(NmError::NotRunning),
        }
    }
}

async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: releasing"),
        _ = int.recv() => info!("SIGINT: releasing"),
    }
}

/// A live instance whose isolated phy or interface is called `name` (`wlan1 (pid N)`).
fn held_by_other_instance(paths: &Paths, name: &str) -> Option<String> {
    let rd = std::fs::read_dir(paths.root.join("state")).ok()?;
    rd.filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<crate::host::daemon::Isolation>(&b).ok())
        .find(|i| {
            (i.phy_name == name || i.iface == name)
                && i.instance != name
                && std::path::Path::new(&format!("/proc/{}", i.daemon_pid)).exists()
        })
        .map(|i| format!("{} (pid {})", i.instance, i.daemon_pid))
}

/// Unix sockets we bound ourselves are removed when we exit (systemd's are systemd's).
struct OwnSockets(Vec<PathBuf>);

impl Drop for OwnSockets {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The listeners: systemd's if it passed any, else ours.
/// Unix sockets we bind ourselves are recorded in `own`, so they go away with us.
fn listeners(args: &RunArgs, own: &mut OwnSockets) -> Result<Vec<Listener>, String> {
    let from_systemd = proxy::from_systemd().map_err(|e| format!("listeners from systemd: {e}"))?;
    if !from_systemd.is_empty() {
        for (name, _) in &from_systemd {
            info!(IFACE = %args.iface, name = %name, "listener from systemd");
        }
        return Ok(from_systemd.into_iter().map(|(_, l)| l).collect());
    }
    if args.no_listen {
        return Ok(vec![]);
    }
    let specs = if args.listen.is_empty() {
        vec![ListenSpec::Unix(
            args.runtime_root.join(format!("{}.sock", args.iface)),
        )]
    } else {
        args.listen.clone()
    };
    specs
        .iter()
        .map(|s| {
            if let ListenSpec::Unix(p) = s {
                own.0.push(p.clone());
            }
            proxy::bind(s).map_err(|e| format!("binding {s:?}: {e}"))
        })
        .collect()
}

/// Run the daemon until stopped. The exit code follows the unit's restart policy.
pub async fn exec(args: RunArgs) -> ExitCode {
    if let Err(e) = crate::validate::IfaceName::parse(&args.iface) {
        error!("{e}");
        return ExitCode::from(EXIT_NEVER_WORKS);
    }
    let (mut settings, files) = match Settings::load(&args.iface) {
        Ok(s) => s,
        Err(e) => {
            error!(IFACE = %args.iface, "configuration: {e}");
            return ExitCode::from(EXIT_NEVER_WORKS);
        }
    };
    if let Some(e) = &args.engine {
        settings.engine.kind = match e.as_str() {
            "auto" => EngineChoice::Auto,
            "podman" => EngineChoice::Podman,
            "docker" => EngineChoice::Docker,
            "netns" => EngineChoice::Netns,
            other => {
                error!("--engine must be auto, podman, docker or netns, not {other:?}");
                return ExitCode::from(EXIT_NEVER_WORKS);
            }
        };
    }
    info!(IFACE = %args.iface, files = ?files, engine = %settings.engine.kind, "starting");
    let paths = Paths::new(&args.runtime_root);
    // The lock first: a second instance must not touch the first one's sockets.
    let _instance_lock = match Lock::take(&paths.instance_lock(&args.iface), &args.iface) {
        Ok(l) => l,
        Err(e) => {
            error!(IFACE = %args.iface, "{e}");
            return ExitCode::FAILURE;
        }
    };
    // This start was asked for: udev may start the instance again when the phy comes home.
    paths.unhold(&args.iface);
    let mut _own_sockets = OwnSockets(Vec::new());
    // The MCP endpoint comes up next: early clients wait (bounded) until the agent is ready.
    let listeners = match listeners(&args, &mut _own_sockets) {
        Ok(l) => l,
        Err(e) => {
            error!(IFACE = %args.iface, "{e}");
            return ExitCode::from(EXIT_NEVER_WORKS);
        }
    };
    let token = if listeners.iter().any(|l| matches!(l, Listener::Tcp(_))) {
        match proxy::load_token(&settings.proxy.token_file) {
            Ok(Some(t)) => Some(t),
            Ok(None) => {
                error!(
                    IFACE = %args.iface,
                    "a TCP listener needs a bearer token: put one in the systemd credential `token` \
                     (LoadCredential=token:/etc/wifi-isolate/token) or in {} (root-only, mode 600)",
                    settings.proxy.token_file.display()
                );
                return ExitCode::from(EXIT_NEVER_WORKS);
            }
            Err(e) => {
                error!(IFACE = %args.iface, "bearer token: {e}");
                return ExitCode::from(EXIT_NEVER_WORKS);
            }
        }
    } else {
        None
    };
    let (ready_tx, ready_rx) = tokio::sync::watch::channel(None);
    let proxy_ct = tokio_util::sync::CancellationToken::new();
    let proxy_task = {
        let proxy = Proxy::new(
            ProxyConfig {
                upstream: paths.agent_socket(&args.iface),
                ready_wait: std::time::Duration::from_secs(settings.proxy.ready_wait),
                max_connections: settings.proxy.max_connections,
                max_body_bytes: settings.proxy.max_body_bytes,
                token,
                instance: args.iface.clone(),
            },
            ready_rx,
        );
        match proxy::serve_dedicated(proxy, listeners, proxy_ct.clone()) {
            Ok(done) => done,
            Err(e) => {
                error!(IFACE = %args.iface, "cannot start the MCP endpoint: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let engine = match engine::select(
        &settings.engine.kind.to_string(),
        &settings.engine.podman_socket,
        &settings.engine.docker_socket,
    )
    .await
    {
        Ok(e) => e,
        Err(e) => {
            error!(IFACE = %args.iface, "{e}");
            return ExitCode::FAILURE;
        }
    };
    let daemon = Daemon {
        wiphys: Nl80211::new(),
        nm: MaybeNm::system().await,
        engine,
        notify: SdNotify,
        settings,
        paths,
    };
    for note in daemon.recover(&args.iface).await {
        warn!(IFACE = %args.iface, "{note}");
    }
    // Two instances never fight over one phy (an interface name and a phy name may both name it).
    let (phy, iface) = match daemon.resolve(&args.iface).await {
        Ok(x) => x,
        Err(e) => {
            if let Some(holder) = held_by_other_instance(&daemon.paths, &args.iface) {
                error!(IFACE = %args.iface, "{} is isolated by instance {holder}; stop that one first", args.iface);
                return ExitCode::FAILURE;
            }
            error!(IFACE = %args.iface, "{e}");
            return ExitCode::from(if e.never_works() { EXIT_NEVER_WORKS } else { 1 });
        }
    };
    // Two instances never fight over one phy (an interface name and a phy name may both name it).
    let _phy_lock = match Lock::take(&daemon.paths.wiphy_lock(phy.index), &phy.name) {
        Ok(l) => l,
        Err(e) => {
            error!(IFACE = %args.iface, "{e}");
            return ExitCode::FAILURE;
        }
    };
    if iface != args.iface {
        daemon.paths.unhold(&iface);
    }
    let (iso, h) = match daemon
        .isolate_resolved(&args.iface, phy, iface.clone())
        .await
    {
        Ok(x) => x,
        Err(e) => {
            error!(IFACE = %args.iface, "{e}");
            // The phy may have gone into the box and come back (an add event): whether this
            // starts again is the unit's restart policy, not udev's.
            daemon.paths.hold(&iface);
            return ExitCode::from(if e.never_works() { EXIT_NEVER_WORKS } else { 1 });
        }
    };
    use crate::host::daemon::Notifier;
    let line = status_line(&iso, &h, "agent ready");
    info!(IFACE = %iso.iface, PHY = %iso.phy_name, BOX = %h.name, "{line}");
    daemon.notify.ready(&line);
    ready_tx.send_replace(Some(h.uid));
    let ending = daemon.supervise(&iso, &h, stop_signal()).await;
    daemon.notify.stopping();
    ready_tx.send_replace(None);
    proxy_ct.cancel();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(6), proxy_task).await;
    let code = match &ending {
        Ok(Ending::Stopped) => 0,
        Ok(Ending::Unplugged) => {
            info!(IFACE = %iso.iface, PHY = %iso.phy_name, "the adapter was removed; exiting");
            0
        }
        Err(e) => {
            error!(IFACE = %iso.iface, "{e}");
            1
        }
    };
    daemon.notify.status(&format!("{}: releasing", iso.iface));
    let mut iso = iso;
    if !matches!(ending, Ok(Ending::Unplugged)) {
        // Written before the phy comes home, so the add event it causes finds it: a stop the
        // user asked for stays a stop, and after a failure the unit's restart policy alone
        // decides (an udev start on top would count against the start limit twice). Only an
        // unplugged adapter is left unheld, so plugging it in again isolates it.
        daemon.paths.hold(&iso.iface);
    }
    if matches!(ending, Ok(Ending::Unplugged)) {
        // Nothing to bring home; the box and NetworkManager still get their inverse steps.
        iso.moved = false;
    }
    let errors = daemon.release(&iso).await;
    for e in &errors {
        error!(IFACE = %iso.iface, "release: {e}");
    }
    if errors.is_empty() && code == 0 {
        info!(IFACE = %iso.iface, "released");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
