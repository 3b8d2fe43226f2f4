//! The lab library every test of wifi-isolate shares (one way to share test code: this crate).
//!
//! - [`env`]: the repository, the built binaries, root and tools (fail, never skip);
//! - [`tally`]: the one tally — one `ok NAME` / `FAIL NAME: detail` line per named check;
//! - [`vm`]: the one VM harness, host side (suites in `tests/vm/*/lab.toml`);
//! - [`guest`], [`hwsim_nl`], [`mcp_unix`]: what the probes inside the VMs share;
//! - [`logs`]: the process's own log lines, captured (secrets absent, flood summaries);
//! - [`agent`]: the real agent in-process (its MCP server and a client; a netns of its own);
//! - [`engine`]: private podman/dockerd daemons, the stand-in agent and the checks every engine
//!   must pass (`tests/host/engine_*.rs`).

pub mod agent;
pub mod engine;
pub mod env;
pub mod guest;
pub mod hwsim_nl;
pub mod logs;
pub mod mcp_unix;
pub mod tally;
pub mod vm;
