//! `wifi-isolate run IFACE`: the service's main process.

use std::path::PathBuf;
use std::process::ExitCode;

use tracing::{error, info, warn};

use crate::host::config::{EngineChoice, Settings};
use crate::host::daemon::{Daemon, EXIT_NEVER_WORKS, Ending, Lock, Paths, SdNotify, status_line};
use crate::host::engine;
use crate::host::nm::{NetworkManager, NmDbus, NmError};
use crate::host::wiphy::{Nl80211, Wiphys};

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

/// Run the daemon until stopped. The exit code follows the unit's restart policy.
pub async fn exec(args: RunArgs) -> ExitCode {
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
    let paths = Paths {
        root: args.runtime_root.clone(),
    };
    let _instance_lock = match Lock::take(&paths.instance_lock(&args.iface), &args.iface) {
        Ok(l) => l,
        Err(e) => {
            error!(IFACE = %args.iface, "{e}");
            return ExitCode::FAILURE;
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
    let _phy_lock = match daemon.wiphys.resolve(&args.iface).await {
        Ok(phy) => match Lock::take(&daemon.paths.wiphy_lock(phy.index), &phy.name) {
            Ok(l) => l,
            Err(e) => {
                error!(IFACE = %args.iface, "{e}");
                return ExitCode::FAILURE;
            }
        },
        Err(e) => {
            let e = crate::host::daemon::RunError::from(e);
            error!(IFACE = %args.iface, "{e}");
            return ExitCode::from(if e.never_works() { EXIT_NEVER_WORKS } else { 1 });
        }
    };
    let (iso, h) = match daemon.isolate(&args.iface).await {
        Ok(x) => x,
        Err(e) => {
            error!(IFACE = %args.iface, "{e}");
            return ExitCode::from(if e.never_works() { EXIT_NEVER_WORKS } else { 1 });
        }
    };
    use crate::host::daemon::Notifier;
    let line = status_line(&iso, &h, "agent ready");
    info!(IFACE = %iso.iface, PHY = %iso.phy_name, BOX = %h.name, "{line}");
    daemon.notify.ready(&line);
    let ending = daemon.supervise(&iso, &h, stop_signal()).await;
    daemon.notify.stopping();
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
