//! `wifi-isolate`: the host CLI and daemon. Parses and dispatches only.

use clap::Parser;

/// Hand a WiFi adapter, whole, to an isolated box and let MCP clients drive it.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    eprintln!("wifi-isolate: no subcommand yet; the in-box agent is `wifi-isolate-agent --help`");
    std::process::exit(2);
}
