//! `wifi-isolate`: the host CLI and daemon. Parses and dispatches only.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wifi_isolate::commands;

/// Hand a WiFi adapter, whole, to an isolated box and let MCP clients drive it.
///
/// `wifi-isolate run IFACE` is the main process of `wifi-isolate@IFACE.service`: it moves the
/// adapter's phy into a box (a Podman or Docker container, or a network namespace of its own)
/// where `wifi-isolate-agent` serves MCP, keeps it there, and brings it home on stop. The host's
/// routes, addresses and NetworkManager never see the adapter's networks.
#[derive(Debug, Parser)]
#[command(version, about, long_about, after_help = AFTER)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const AFTER: &str = "\
Examples:
  wifi-isolate enable wlp6s0 --now        # isolate it now and whenever it appears
  systemctl start wifi-isolate@wlp6s0     # isolate it once, until stopped
  systemctl stop wifi-isolate@wlp6s0      # home, and held: no client or udev starts it again
  systemctl reload wifi-isolate@wlp6s0    # a held endpoint (clients retrying) isolates after all
  wifi-isolate run wlp6s0 --engine netns  # by hand, in the foreground
  wifi-isolate status --json
  wifi-isolate doctor

Files:
  /usr/lib/wifi-isolate/config.toml, /etc/wifi-isolate/config.d/*.toml,
  /etc/wifi-isolate/instance.d/IFACE.toml   settings (later files win)
  /etc/udev/rules.d/81-wifi-isolate-IFACE.rules   written by enable (adapter's identity)
  /etc/wifi-isolate/networks/NAME.toml      saved networks (root 0600), see `network --help`
  /run/wifi-isolate/IFACE.sock              the MCP endpoint (wifi-isolate@IFACE.socket)
  /run/wifi-isolate/box/IFACE/mcp.sock      the agent's MCP socket (inside: /run/wifi-isolate)
  /run/wifi-isolate/hold/IFACE              after a stop: neither udev nor a client on the
                                            socket restarts IFACE (a client gets 503: held)
  /run/wifi-isolate/state/IFACE.json        what run did, for status and crash recovery

Exit status of run: 0 stopped (also during start-up: everything undone), adapter unplugged,
or a held endpoint idle; 1 failure, or a hung agent (restart may help); 78 never works (not
wireless, no such device, driver cannot change namespace, bad config, not the adapter the
enable rule recorded, a TCP listener not on loopback).

Test hook: WIFI_ISOLATE_PAUSE_AT=STEP:MS (resolve, lock, unmanage, box, move, ready) makes run
wait MS ms before that step; a stop cuts the wait short.

Logs: journalctl -u 'wifi-isolate@*' (MESSAGE_IDs mark unmanage, move in/out, restore and
every MCP tool call). Secrets never reach a log.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Isolate an adapter and serve it until stopped (the service's main process).
    Run(commands::run::RunArgs),
    /// Show each isolated adapter: phy, box, agent health, WiFi state, host vs box view.
    Status(commands::status::StatusArgs),
    /// Check kernel, adapters, rfkill, NetworkManager, engines, units and permissions.
    Doctor,
    /// Bridge stdio to an instance's MCP socket (for stdio-only MCP clients).
    Connect(commands::connect::ConnectArgs),
    /// Isolate an adapter whenever it appears: a local udev rule keyed by its PCI path (or
    /// permanent MAC) keeps NetworkManager off it and starts wifi-isolate@IFACE; the socket
    /// unit is enabled. --now also starts the instance.
    Enable(commands::enable::EnableArgs),
    /// Undo enable: remove the rule, disable the socket and give the adapter back to
    /// NetworkManager. --now also stops the instance.
    Disable(commands::enable::EnableArgs),
    /// Saved networks (add, list, show, remove): root-only profiles whose passwords reach the
    /// box but never an MCP client; clients connect with wifi_connect {"network": NAME}.
    Network(commands::network::NetworkArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(_) => wifi_isolate::logging::init(false),
        // Interactive commands: warnings only, on stderr (connect speaks MCP on stdout).
        _ => wifi_isolate::logging::init_with_default(true, "warn"),
    }
    if let Command::Network(a) = cli.command {
        return commands::network::exec(a);
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wifi-isolate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        match cli.command {
            Command::Run(a) => commands::run::exec(a).await,
            Command::Status(a) => commands::status::exec(a).await,
            Command::Doctor => commands::doctor::exec().await,
            Command::Connect(a) => commands::connect::exec(a).await,
            Command::Enable(a) => commands::enable::exec_enable(a).await,
            Command::Disable(a) => commands::enable::exec_disable(a).await,
            Command::Network(_) => unreachable!("handled above"),
        }
    })
}
