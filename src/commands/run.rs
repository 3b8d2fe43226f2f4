//! `wifi-isolate run IFACE`: the service's main process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::host::config::{EngineChoice, Settings};
use crate::host::daemon::{
    Control, Daemon, EXIT_NEVER_WORKS, Endpoint, Hold, Lock, Paths, SdNotify, Trigger,
};
use crate::host::engine;
use crate::host::nm::{NetworkManager, NmDbus, NmError};
use crate::host::proxy::{self, Limits, ListenSpec, Listener, Phase, Proxy, ProxyConfig};
use crate::host::wiphy::Nl80211;

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
    /// (repeatable; TCP needs a bearer token). Replaces the default unix:RUNTIME_ROOT/IFACE.sock:
    /// name it too to keep it.
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

/// The signals, armed before anything else: SIGTERM/SIGINT cancel `stop` (a second one is
/// logged, the first already unwinds), SIGHUP notifies `reload`.
fn arm_signals(stop: CancellationToken, reload: Arc<Notify>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = hup.recv() => {
                    info!("SIGHUP: a held instance isolates; otherwise nothing to reload");
                    reload.notify_one();
                    continue;
                }
            };
            if stop.is_cancelled() {
                info!("{name}: already releasing");
            } else {
                info!("{name}: releasing");
                stop.cancel();
            }
        }
    });
    Ok(())
}

/// The proxy as the lifecycle drives it.
struct ProxyEndpoint {
    phase: tokio::sync::watch::Sender<Phase>,
    proxy: Arc<Proxy>,
}

impl Endpoint for ProxyEndpoint {
    fn starting(&self) {
        self.phase.send_replace(Phase::Starting);
    }
    fn ready(&self, uid: u32) {
        self.phase.send_replace(Phase::Ready { uid });
    }
    fn held(&self, message: &str) {
        self.phase.send_replace(Phase::Held {
            message: message.to_owned(),
        });
    }
    fn stopping(&self) {
        self.phase.send_replace(Phase::Stopping);
    }
    fn idle_for(&self) -> Duration {
        self.proxy.idle_for()
    }
}

/// Run the daemon until stopped. The exit code follows the unit's restart policy.
pub async fn exec(args: RunArgs) -> ExitCode {
    // The signals first: a stop during start-up (systemctl stop, its start timeout, a package
    // removal) unwinds through the same inverses as one while serving.
    let (stop, reload) = (CancellationToken::new(), Arc::new(Notify::new()));
    if let Err(e) = arm_signals(stop.clone(), reload.clone()) {
        error!("cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
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
    let pause = match std::env::var("WIFI_ISOLATE_PAUSE_AT") {
        Ok(spec) => match Control::parse_pause(&spec) {
            Ok(p) => Some(p),
            Err(e) => {
                error!("{e}");
                return ExitCode::from(EXIT_NEVER_WORKS);
            }
        },
        Err(_) => None,
    };
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
    // The MCP endpoint comes up next: early clients wait (bounded) until the agent is ready.
    // (`--no-listen` conflicts with `--listen`: no default, nothing extra.)
    let default_endpoint = (!args.no_listen).then(|| paths.endpoint(&args.iface));
    let opened = proxy::open_listeners(&args.iface, default_endpoint, &args.listen);
    let proxy::Opened {
        listeners,
        from_systemd,
        client_waiting,
        own: _own_sockets,
    } = match opened {
        Ok(l) => l,
        Err(e) => {
            error!(IFACE = %args.iface, "{e}");
            return ExitCode::from(EXIT_NEVER_WORKS);
        }
    };
    // Also those systemd passes: a drop-in may name any address, and the endpoint is for
    // local clients only.
    if let Err(e) = proxy::require_loopback(&listeners) {
        error!(IFACE = %args.iface, "{e}");
        return ExitCode::from(EXIT_NEVER_WORKS);
    }
    let trigger = if from_systemd && client_waiting {
        info!(IFACE = %args.iface, "started by a client on the socket");
        Trigger::Socket
    } else {
        Trigger::User
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
    let (phase_tx, phase_rx) = tokio::sync::watch::channel(Phase::Starting);
    let proxy_ct = CancellationToken::new();
    let proxy = Proxy::with_phase(
        ProxyConfig {
            upstream: paths.agent_socket(&args.iface),
            ready_wait: Duration::from_secs(settings.proxy.ready_wait),
            max_connections: settings.proxy.max_connections,
            max_body_bytes: settings.proxy.max_body_bytes,
            token,
            instance: args.iface.clone(),
        },
        Limits::from(&settings.proxy),
        phase_rx,
    );
    let proxy_task = match proxy::serve_dedicated(proxy.clone(), listeners, proxy_ct.clone()) {
        Ok(done) => done,
        Err(e) => {
            error!(IFACE = %args.iface, "cannot start the MCP endpoint: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The passphrase page (URL-mode elicitation) on 127.0.0.1, before any box starts.
    crate::elicit::serve::start(
        &args.iface,
        &settings.elicitation,
        &paths.networks_dir,
        &proxy_ct,
    );
    // The engine's check (its API, the image) and NetworkManager's bus, side by side.
    let kind = settings.engine.kind.to_string();
    let both = async {
        tokio::join!(
            engine::select(
                &kind,
                &settings.engine.podman_socket,
                &settings.engine.docker_socket,
            ),
            MaybeNm::system()
        )
    };
    // A stop while an engine is still waking up (its socket-activated service) is a stop too.
    let (engine, nm) = tokio::select! {
        both = both => both,
        _ = stop.cancelled() => {
            info!(IFACE = %args.iface, "stopped before anything was changed");
            paths.hold(&args.iface, Hold::Stopped);
            proxy_ct.cancel();
            return ExitCode::SUCCESS;
        }
    };
    let engine = match engine {
        Ok(e) => e,
        Err(e) => {
            error!(IFACE = %args.iface, "{e}");
            return ExitCode::FAILURE;
        }
    };
    let daemon = Daemon {
        wiphys: Nl80211::new(),
        nm,
        engine,
        notify: SdNotify,
        settings,
        paths,
    };
    let ctl = Control {
        stop,
        reload,
        trigger,
        pause,
    };
    let finished = daemon
        .run(
            &args.iface,
            &ctl,
            &ProxyEndpoint {
                phase: phase_tx,
                proxy,
            },
        )
        .await;
    proxy_ct.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(6), proxy_task).await;
    ExitCode::from(finished.exit_code())
}
