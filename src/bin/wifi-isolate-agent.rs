//! `wifi-isolate-agent`: the MCP WiFi agent that runs inside the box. Parses and dispatches only.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use wifi_isolate::agent::{self, Agent, AgentOptions, certs, dhcp, server};

/// MCP server that drives the one WiFi adapter of its network namespace.
///
/// Runs inside the isolated box that `wifi-isolate run` builds (a container or a network
/// namespace holding only `lo` and the WiFi interface). It waits for the wireless interface to
/// arrive, supervises wpa_supplicant (config and control socket in the runtime dir), runs a DHCP
/// client (busybox udhcpc) after association, and exposes MCP tools: wifi_scan, wifi_connect,
/// wifi_connect_eap, wifi_saved_networks, wifi_disconnect, wifi_status, wifi_list_networks, wifi_forget,
/// wifi_reconnect, network_ping, network_dns_lookup, network_http_get, network_check_internet,
/// network_check_captive and wifi_debug_logs.
///
/// Addresses, routes and resolv.conf are changed in the box only. Secrets never reach a log.
#[derive(Debug, Parser)]
#[command(name = "wifi-isolate-agent", version, about, long_about, after_help = EXAMPLES)]
struct Cli {
    /// Serve MCP streamable HTTP (path /mcp) on this socket: `unix:PATH`.
    #[arg(
        long,
        value_name = "unix:PATH",
        conflicts_with = "stdio",
        required_unless_present = "stdio"
    )]
    listen: Option<String>,

    /// Serve MCP over stdin/stdout instead (logs go to stderr).
    #[arg(long)]
    stdio: bool,

    /// Drive this wireless interface (default: the first one that appears).
    #[arg(long, short = 'i', value_name = "IFACE")]
    interface: Option<String>,

    /// Seconds to wait for a wireless interface to appear in this namespace.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    wait_interface: u64,

    /// Private runtime dir: wpa_supplicant config, control and hook sockets.
    #[arg(long, default_value = "/run/wifi-isolate-agent", value_name = "DIR")]
    runtime_dir: PathBuf,

    /// The box's resolv.conf, rewritten from each DHCP lease (written in place).
    #[arg(long, default_value = "/etc/resolv.conf", value_name = "FILE")]
    resolv_conf: PathBuf,

    /// wpa_supplicant binary.
    #[arg(long, default_value = "wpa_supplicant", value_name = "PATH")]
    wpa_supplicant: PathBuf,

    /// DHCP client: a udhcpc binary (default: `udhcpc` from PATH, else `busybox udhcpc`).
    #[arg(long, value_name = "PATH")]
    udhcpc: Option<PathBuf>,

    /// Regulatory country (ISO 3166 alpha-2). NOTE: the kernel's regulatory domain is global,
    /// so this changes it for the whole host.
    #[arg(long, value_name = "CC", value_parser = parse_country)]
    country: Option<String>,

    /// URL answering 204 used by network_check_internet and network_check_captive.
    #[arg(
        long,
        default_value = "http://connectivitycheck.gstatic.com/generate_204",
        value_name = "URL"
    )]
    check_url: String,

    /// The only directory EAP certificate and key paths may point into (the host's
    /// per-instance certs directory, mounted read-only in the box). Symlinks are refused.
    #[arg(long, default_value = certs::DEFAULT_CERTS_DIR, value_name = "DIR")]
    certs_dir: PathBuf,

    /// Box-private directory (0700) for PEM text given inline; default RUNTIME_DIR/certs.
    #[arg(long, value_name = "DIR")]
    upload_dir: Option<PathBuf>,

    /// The box's copy of the host's saved networks (NAME.toml, written by the host daemon):
    /// `wifi_connect {network: NAME}` and `wifi_saved_networks` read it at each call.
    #[arg(long, default_value = agent::DEFAULT_NETWORKS_DIR, value_name = "DIR")]
    networks_dir: PathBuf,

    /// Refuse passwords and keys given as tool arguments (`[security] inline_secrets = false`
    /// on the host): only saved networks carry secrets.
    #[arg(long)]
    no_inline_secrets: bool,

    /// Test only: drive the wired interface --interface names (wpa_supplicant -D wired), so
    /// the MCP server runs on a host without WiFi (the conformance suite). Scan and connect
    /// do not work.
    #[arg(long, hide = true, requires = "interface")]
    wired: bool,
}

const EXAMPLES: &str = "\
Examples:
  # in a netns that holds a WiFi interface, serve on a socket the host can reach:
  wifi-isolate-agent --listen unix:/run/wifi-isolate/mcp.sock
  # as a stdio MCP server:
  wifi-isolate-agent --stdio --interface wlan0

Environment:
  WIFI_ISOLATE_LOG   log filter (e.g. debug, wifi_isolate=trace); default info";

fn parse_country(s: &str) -> Result<String, String> {
    wifi_isolate::validate::CountryCode::parse(s)
        .map(|c| c.as_str().to_owned())
        .map_err(|e| e.to_string())
}

fn find_udhcpc(explicit: Option<PathBuf>) -> Vec<String> {
    if let Some(p) = explicit {
        return vec![p.display().to_string()];
    }
    let in_path = |name: &str| {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
            .unwrap_or(false)
    };
    if in_path("udhcpc") {
        vec!["udhcpc".into()]
    } else {
        vec!["busybox".into(), "udhcpc".into()]
    }
}

fn main() -> std::process::ExitCode {
    // udhcpc calls us as its script: forward the event to the running agent.
    if let Some(sock) = std::env::var_os(dhcp::HOOK_ENV) {
        let event = std::env::args().nth(1).unwrap_or_default();
        return std::process::ExitCode::from(dhcp::run_hook(sock.as_ref(), &event) as u8);
    }
    let cli = Cli::parse();
    wifi_isolate::logging::init(cli.stdio);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wifi-isolate-agent: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("wifi-isolate-agent: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let listener = match &cli.listen {
        Some(l) => {
            let path = l
                .strip_prefix("unix:")
                .ok_or_else(|| anyhow::anyhow!("--listen must be unix:PATH, got {l:?}"))?;
            Some(server::bind_unix(path.as_ref())?)
        }
        None => None,
    };
    let upload_dir = cli
        .upload_dir
        .unwrap_or_else(|| cli.runtime_dir.join(certs::UPLOAD_SUBDIR));
    // Armed first: as PID 1 of its box the agent ignores every signal it has no handler for,
    // so a stop while it still waits for the interface must be heard here.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let starting = Agent::start(AgentOptions {
        interface: cli.interface,
        wait_interface: Duration::from_secs(cli.wait_interface),
        runtime_dir: cli.runtime_dir,
        certs_dir: cli.certs_dir,
        upload_dir,
        networks_dir: cli.networks_dir,
        inline_secrets: !cli.no_inline_secrets,
        resolv_conf: cli.resolv_conf,
        wpa_supplicant: cli.wpa_supplicant,
        udhcpc: find_udhcpc(cli.udhcpc),
        country: cli.country,
        check_url: cli.check_url,
        wired: cli.wired,
    });
    let agent = tokio::select! {
        agent = starting => agent?,
        _ = term.recv() => {
            tracing::info!("SIGTERM before the agent was ready: exiting");
            if let Some(p) = cli.listen.as_deref().and_then(|l| l.strip_prefix("unix:")) {
                let _ = std::fs::remove_file(p);
            }
            return Ok(());
        }
    };
    tracing::info!(iface = %agent.iface(), "agent ready");
    let ct = CancellationToken::new();
    let serving = {
        let agent = agent.clone();
        let ct = ct.clone();
        async move {
            match listener {
                Some(l) => server::serve_unix(agent, l, ct).await,
                None => server::serve_stdio(agent).await,
            }
        }
    };
    let result = tokio::select! {
        r = serving => r,
        _ = term.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    ct.cancel();
    agent.shutdown().await;
    if let Some(l) = &cli.listen
        && let Some(p) = l.strip_prefix("unix:")
    {
        let _ = std::fs::remove_file(p);
    }
    result
}
