//! Host-side OS capabilities the `run` daemon calls.

/// The box's agent socket, checked before every use: a socket (never a symlink) owned by and
/// listened on by the box's uid.
pub mod agent_socket;
/// The `run` daemon's settings: TOML drop-ins from /usr/lib, /run and /etc.
pub mod config;
/// The `run` daemon as a state machine with inverse steps.
pub mod daemon;
/// Box runtimes: Podman/Docker (Engine API) and the built-in netns runtime.
pub mod engine;
/// Files written whole or not at all.
pub mod files;
/// NetworkManager over D-Bus: read and set (at runtime) whether NM manages an interface.
pub mod nm;
/// rfkill of one wiphy through sysfs: read the state, lift a soft block.
pub mod rfkill;
/// The persistent opt-in: local udev rules keyed by a stable identity of the adapter.
pub mod udev;
/// Wireless PHYs over nl80211: resolve a name, move the radio into a box's netns and back.
pub mod wiphy;
