//! Host-side OS capabilities the `run` daemon calls (each module says what it is in its own
//! docs; the outer `///` docs would make rustdoc resolve their links one scope up).

pub mod agent_socket;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod files;
pub mod nm;
pub mod proxy;
pub mod rfkill;
pub mod udev;
pub mod wiphy;
