//! One file per `wifi-isolate` subcommand, each with a single `exec` entry.

pub mod connect;
pub mod doctor;
pub mod enable;
pub mod network;
pub mod run;
pub mod status;
