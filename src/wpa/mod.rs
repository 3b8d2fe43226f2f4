//! The wpa_supplicant control protocol, spoken natively over its Unix datagram socket.
//!
//! # Layout
//!
//! - [`proto`] — [`Command`] and [`NetworkField`]: the only place that builds command text.
//!   Every user-supplied string goes out as hex or as a value validated in [`crate::validate`],
//!   so a `"`, newline, NUL or space can never inject another command or field.
//! - [`escape`] — wpa_supplicant's `printf_encode` escaping of SSIDs (decoder, plus the encoder
//!   that tests round-trip against) and its quoted-or-hex config values.
//! - [`parse`] — pure parsers for `STATUS`, `BSS`, `LIST_NETWORKS`, `SIGNAL_POLL` replies and
//!   the security classification of BSS flags.
//! - [`modes`] — a BSS's security modes from its information elements (AKMs, PMF, SAE H2E/PK,
//!   transition modes), and the security of the current association from `STATUS`.
//! - [`anqp`] — the ANQP answers of a BSS (venue, NAI realms and their EAP methods, domains,
//!   roaming consortium, HS 2.0 operator names, WAN metrics): a total, bounded parser of
//!   hostile bytes.
//! - [`event`] — the `<N>CTRL-EVENT-…` messages of an attached monitor, parsed into [`Event`].
//! - [`wnm`] — 802.11v BSS transition requests and responses, from wpa_supplicant's `-d` output
//!   (2.10 reports them nowhere else).
//! - [`ctrl`] — [`CtrlClient`] (request/reply) and [`EventMonitor`] (`ATTACH`), on tokio.
//!
//! # Protocol notes (verified against wpa_supplicant 2.10)
//!
//! - One ASCII command per datagram, one reply datagram. Replies to most commands end in `\n`;
//!   `GET_NETWORK` and `GET` replies do not. A reply is capped near 4 KiB, which is why
//!   [`CtrlClient::bss_all`] walks the BSS table one entry per request with a field mask.
//! - `BSS FIRST` with an empty table answers an empty datagram.
//! - `GET_NETWORK` answers `*` for write-only secrets (`psk`, `password`, `sae_password`,
//!   `private_key_passwd`), a quoted string for printable strings, hex otherwise, and `FAIL`
//!   for fields that were never set.
//! - `SIGNAL_POLL` answers `FAIL` when not associated (and always on the wired driver).

pub mod anqp;
pub mod ctrl;
pub mod detail;
pub mod escape;
pub mod event;
pub mod modes;
pub mod parse;
pub mod proto;
pub mod wnm;

use std::path::PathBuf;
use std::time::Duration;

pub use ctrl::{CtrlClient, EventMonitor, ScanRequest};
pub use event::{Event, EventMessage, parse_event};
pub use parse::{
    Band, Bss, ConfiguredNetwork, ParseError, Security, SignalPoll, Status, WpaState, freq_to_band,
    freq_to_channel,
};
pub use proto::{
    BssSelector, Cipher, Command, CredField, EapMethod, GlobalSetting, KeyMgmt, MgmtCipher,
    NetworkField, NetworkFieldName, NetworkSel, Phase2, TlsCiphers,
};

/// What went wrong talking to wpa_supplicant.
#[derive(Debug, thiserror::Error)]
pub enum WpaError {
    /// The control socket is missing or nobody listens on it.
    #[error(
        "wpa_supplicant control socket {path} is not available ({source}); is wpa_supplicant running for this interface?"
    )]
    NotRunning {
        /// The control socket path.
        path: PathBuf,
        /// The connect error (`ENOENT`, `ECONNREFUSED`, …).
        source: std::io::Error,
    },
    /// Our own client socket could not be created.
    #[error("cannot create the wpa_supplicant client socket {path}: {source}")]
    ClientSocket {
        /// The client socket path.
        path: PathBuf,
        /// The bind/chmod error.
        source: std::io::Error,
    },
    /// The interface name cannot name a control socket.
    #[error(
        "interface name {0:?} is not valid: expected 1 to 15 characters without '/', NUL or whitespace"
    )]
    InvalidIfname(String),
    /// A send or receive failed.
    #[error("I/O error talking to wpa_supplicant: {0}")]
    Io(#[from] std::io::Error),
    /// No reply within the timeout.
    #[error("wpa_supplicant did not answer `{command}` within {timeout:?}")]
    Timeout {
        /// The command, secrets redacted.
        command: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// wpa_supplicant answered `FAIL`, `UNKNOWN COMMAND` or something else than expected.
    #[error("wpa_supplicant rejected `{command}`: {reply}")]
    Rejected {
        /// The command, secrets redacted.
        command: String,
        /// The reply, trimmed.
        reply: String,
    },
    /// The reply could not be understood.
    #[error("cannot parse the wpa_supplicant reply to `{command}`: {reason}")]
    Parse {
        /// The command, secrets redacted.
        command: String,
        /// What was wrong.
        reason: String,
    },
}
