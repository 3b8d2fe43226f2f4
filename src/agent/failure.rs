//! Why a tool failed: a stable, machine-readable [`Code`] a client can branch on, and the text a
//! person reads. The code travels in the tool error's `_meta` (`wifi-isolate/error-code`).

use std::fmt;

/// The stable codes of tool failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// An argument is malformed or out of range; nothing was applied.
    InvalidArgument,
    /// The network refused the credentials (wrong password, EAP rejected, handshake failed).
    AuthFailed,
    /// The access point refused the association.
    AssocRejected,
    /// No such network: no access point answered, or no saved network of that name.
    NotFound,
    /// The operation ran out of its time.
    Timeout,
    /// Associated, but DHCP gave no address in time.
    NoDhcp,
    /// wpa_supplicant went away (the agent restarts it).
    SupplicantGone,
    /// The caller cancelled the call.
    Cancelled,
    /// The network needs a passphrase the call did not carry and no saved network has (the
    /// text names `wifi-isolate network add`).
    SecretRequired,
    /// Another operation that changes the connection holds the radio (the operation lock), or
    /// wpa_supplicant refused because it is busy (a scan already running): retry later.
    Busy,
    /// The tool needs a connection (an association, a lease, a gateway) and there is none.
    NotConnected,
    /// A name did not resolve (NXDOMAIN, SERVFAIL, no answer, no DNS server).
    DnsFailed,
    /// The peer refused the TCP connection (RST).
    ConnectionRefused,
    /// No route to the peer, or the network is down.
    Unreachable,
    /// The TLS peer's certificate is not trusted (unknown issuer, expired, wrong name).
    TlsUntrusted,
    /// The TLS handshake failed for another reason (protocol, alert, no common cipher).
    TlsFailed,
    /// A captive portal works in a browser only: no form to submit, but scripts (the text names
    /// what was found).
    NeedsBrowser,
    /// The address family asked for (`family: "ipv6"`, or an IPv6 address) is one this network
    /// did not give the box (no router advertisement: no global IPv6 address); nothing was sent.
    FamilyUnavailable,
    /// The driver or the radio cannot do what was asked (a monitor interface next to the
    /// station); nothing was left behind.
    Unsupported,
    /// Anything else; the text says what.
    Failed,
}

impl Code {
    /// The code as clients see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArgument => "invalid_argument",
            Code::AuthFailed => "auth_failed",
            Code::AssocRejected => "assoc_rejected",
            Code::NotFound => "not_found",
            Code::Timeout => "timeout",
            Code::NoDhcp => "no_dhcp",
            Code::SupplicantGone => "supplicant_gone",
            Code::Cancelled => "cancelled",
            Code::SecretRequired => "secret_required",
            Code::Busy => "busy",
            Code::NotConnected => "not_connected",
            Code::DnsFailed => "dns_failed",
            Code::ConnectionRefused => "connection_refused",
            Code::Unreachable => "unreachable",
            Code::TlsUntrusted => "tls_untrusted",
            Code::TlsFailed => "tls_failed",
            Code::NeedsBrowser => "needs_browser",
            Code::FamilyUnavailable => "family_unavailable",
            Code::Unsupported => "unsupported",
            Code::Failed => "failed",
        }
    }
}

/// A tool failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What kind.
    pub code: Code,
    /// What happened and what to do, for a person.
    pub text: String,
}

impl Failure {
    /// A failure of `code`.
    pub fn new(code: Code, text: impl Into<String>) -> Self {
        Failure {
            code,
            text: text.into(),
        }
    }

    /// A bad argument (nothing was applied).
    pub fn invalid(text: impl fmt::Display) -> Self {
        Failure::new(Code::InvalidArgument, text.to_string())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<String> for Failure {
    fn from(text: String) -> Self {
        Failure::new(Code::Failed, text)
    }
}

impl From<&str> for Failure {
    fn from(text: &str) -> Self {
        Failure::new(Code::Failed, text)
    }
}
