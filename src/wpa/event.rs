//! Unsolicited messages from an attached monitor socket (`<3>CTRL-EVENT-CONNECTED …`).

use super::escape::{printf_decode, take_quoted};
use super::parse::WpaState;
use crate::validate::Bssid;

/// One received event: its priority, the raw text and the parsed [`Event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMessage {
    /// wpa_supplicant message level (2 debug, 3 info, 4 warning, 5 error).
    pub priority: u8,
    /// `IFNAME=` prefix, present when events come through the global control interface.
    pub ifname: Option<String>,
    /// The text after the priority (and `IFNAME=`) prefix, verbatim, for a debug log ring.
    pub text: String,
    /// The parsed event.
    pub event: Event,
}

impl EventMessage {
    /// The raw text (without the `<N>` prefix).
    pub fn raw(&self) -> &str {
        &self.text
    }
}

/// A parsed wpa_supplicant event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `CTRL-EVENT-CONNECTED - Connection to <bssid> completed [id=N id_str=…]`.
    Connected {
        /// The AP (or the PAE group address on wired).
        bssid: Option<Bssid>,
        /// The configured network in use.
        network_id: Option<u32>,
    },
    /// `CTRL-EVENT-DISCONNECTED bssid=… reason=N [locally_generated=1]`.
    Disconnected {
        /// The AP we were connected to.
        bssid: Option<Bssid>,
        /// IEEE 802.11 reason code.
        reason: Option<u16>,
        /// We disconnected ourselves (e.g. `DISCONNECT`).
        locally_generated: bool,
    },
    /// `CTRL-EVENT-SCAN-STARTED`.
    ScanStarted,
    /// `CTRL-EVENT-SCAN-RESULTS`: new results are in the BSS table.
    ScanResults,
    /// `CTRL-EVENT-SCAN-FAILED ret=N`.
    ScanFailed {
        /// The driver's error code.
        ret: Option<i32>,
    },
    /// `CTRL-EVENT-SSID-TEMP-DISABLED id=N ssid="…" auth_failures=N duration=N reason=…`.
    /// `reason=WRONG_KEY` means the passphrase/password is wrong.
    SsidTempDisabled {
        /// Network id.
        id: Option<u32>,
        /// SSID bytes.
        ssid: Vec<u8>,
        /// Consecutive failures so far.
        auth_failures: Option<u32>,
        /// Seconds until the network is retried.
        duration_secs: Option<u32>,
        /// `WRONG_KEY`, `CONN_FAILED`, `AUTH_FAILED`, …
        reason: Option<String>,
    },
    /// `CTRL-EVENT-SSID-REENABLED id=N ssid="…"`.
    SsidReenabled {
        /// Network id.
        id: Option<u32>,
        /// SSID bytes.
        ssid: Vec<u8>,
    },
    /// `CTRL-EVENT-AUTH-REJECT <bssid> auth_type=N auth_transaction=N status_code=N`.
    AuthReject {
        /// The AP.
        bssid: Option<Bssid>,
        /// IEEE 802.11 status code.
        status_code: Option<u16>,
    },
    /// `CTRL-EVENT-ASSOC-REJECT bssid=… status_code=N`.
    AssocReject {
        /// The AP.
        bssid: Option<Bssid>,
        /// IEEE 802.11 status code.
        status_code: Option<u16>,
    },
    /// `CTRL-EVENT-NETWORK-NOT-FOUND`: no enabled network seen in the last scan.
    NetworkNotFound,
    /// `CTRL-EVENT-NETWORK-ADDED N`.
    NetworkAdded {
        /// Network id.
        id: Option<u32>,
    },
    /// `CTRL-EVENT-NETWORK-REMOVED N`.
    NetworkRemoved {
        /// Network id.
        id: Option<u32>,
    },
    /// `CTRL-EVENT-EAP-STARTED`.
    EapStarted,
    /// `CTRL-EVENT-EAP-METHOD EAP vendor 0 method 25 (PEAP) selected`.
    EapMethod {
        /// The text after the event name.
        detail: String,
    },
    /// `CTRL-EVENT-EAP-SUCCESS`.
    EapSuccess,
    /// `CTRL-EVENT-EAP-FAILURE`.
    EapFailure,
    /// `CTRL-EVENT-STATE-CHANGE id=N state=N …` (only some builds emit it).
    StateChange {
        /// The new state.
        state: WpaState,
    },
    /// `SME: Trying to authenticate with <bssid> (SSID='…' freq=N MHz)`.
    Authenticating {
        /// The AP.
        bssid: Option<Bssid>,
    },
    /// `Trying to associate with <bssid> (SSID='…' freq=N MHz)`.
    Associating {
        /// The AP.
        bssid: Option<Bssid>,
        /// SSID bytes.
        ssid: Vec<u8>,
        /// Frequency in MHz.
        freq_mhz: Option<u32>,
    },
    /// `Associated with <bssid>`.
    Associated {
        /// The AP.
        bssid: Option<Bssid>,
    },
    /// `WPA: Key negotiation completed with <bssid> [PTK=… GTK=…]`.
    KeyNegotiationCompleted {
        /// The AP.
        bssid: Option<Bssid>,
    },
    /// `WPA: 4-Way Handshake failed - pre-shared key may be incorrect`.
    HandshakeFailed,
    /// `CTRL-EVENT-TERMINATING`: wpa_supplicant is exiting.
    Terminating,
    /// `ANQP-QUERY-DONE addr=<bssid> result=SUCCESS|FAILURE|INVALID_FRAME`.
    AnqpQueryDone {
        /// The AP asked.
        bssid: Option<Bssid>,
        /// `SUCCESS`, `FAILURE`, … (cut to 32 bytes).
        result: String,
    },
    /// `INTERWORKING-AP <bssid> type=home|roaming|unknown …`: a BSS matching a credential.
    InterworkingAp {
        /// The matching AP.
        bssid: Option<Bssid>,
        /// `home`, `roaming` or `unknown` (cut to 32 bytes).
        kind: String,
    },
    /// `INTERWORKING-NO-MATCH …`: no BSS matches any credential.
    InterworkingNoMatch,
    /// `INTERWORKING-SELECTED <bssid>`: the BSS `INTERWORKING_SELECT auto` connects to.
    InterworkingSelected {
        /// The AP.
        bssid: Option<Bssid>,
    },
    /// An 802.11v BSS Transition Management Request from the AP (from wpa_supplicant's debug
    /// output, see [`super::wnm`]; never parsed from a monitor socket).
    BssTransitionRequest(super::wnm::BtmRequest),
    /// The BSS Transition Management Response wpa_supplicant sent (debug output likewise).
    BssTransitionResponse(super::wnm::BtmResponse),
    /// wpa_supplicant refused an AP's SAE-PK proof (`SAE-PK: Invalid or incorrect signature in
    /// KeyAuth`, `SAE-PK: K_AP fingerprint mismatch`, …): the text after `SAE-PK: `, from its
    /// stdout (see [`sae_pk_failure`]); never parsed from a monitor socket.
    SaePkFailed(String),
    /// Anything else; see [`EventMessage::text`].
    Other,
}

impl Event {
    /// For [`Event::SsidTempDisabled`]: the failure was a wrong key/password.
    pub fn is_wrong_key(&self) -> bool {
        matches!(self, Event::SsidTempDisabled { reason: Some(r), .. } if r == "WRONG_KEY")
    }
}

/// An SAE-PK verification failure in a line of wpa_supplicant's stdout: the reason (the text
/// after `SAE-PK: `). The signature and key failures print at its default (info) level, the
/// fingerprint mismatch at debug level only.
pub fn sae_pk_failure(line: &str) -> Option<String> {
    const FAILURES: &[&str] = &[
        "Invalid or incorrect signature",
        "fingerprint mismatch",
        "Failed to parse K_AP",
        "Unsupported public key type",
        "Not all mandatory IEs",
        "Failed to decrypt EncryptedModifier",
        "No room for EncryptedModifier",
        "Failed to parse confirm",
        "did not use an ECC group",
        "No KEK available",
    ];
    let at = line.find("SAE-PK: ")?;
    let why = line[at + "SAE-PK: ".len()..].trim();
    FAILURES
        .iter()
        .any(|f| why.contains(f))
        .then(|| why.to_owned())
}

/// Parse one datagram from a monitor socket. `None` if it is not an event (no `<N>` prefix,
/// e.g. a `PONG` or `OK` reply). Never panics.
pub fn parse_event(datagram: &str) -> Option<EventMessage> {
    let datagram = datagram.trim_end_matches('\n');
    let rest = datagram.strip_prefix('<')?;
    let (level, rest) = rest.split_once('>')?;
    let priority = level.parse::<u8>().ok()?;
    let (ifname, text) = match rest.strip_prefix("IFNAME=") {
        Some(tail) => {
            let (name, text) = tail.split_once(' ').unwrap_or((tail, ""));
            (Some(name.to_owned()), text)
        }
        None => (None, rest),
    };
    Some(EventMessage {
        priority,
        ifname,
        text: text.to_owned(),
        event: parse_text(text),
    })
}

/// `key=value` for a space-separated argument list (values without spaces).
fn arg<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.split(' ')
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

fn arg_num<T: std::str::FromStr>(text: &str, key: &str) -> Option<T> {
    arg(text, key)?.parse().ok()
}

fn first_bssid(text: &str) -> Option<Bssid> {
    text.split([' ', '=', '[', '('])
        .find_map(|w| Bssid::parse(w).ok())
}

fn quoted_arg(text: &str, key: &str) -> Vec<u8> {
    let needle = format!("{key}=");
    text.find(&needle)
        .and_then(|at| take_quoted(&text[at + needle.len()..]))
        .map(|(value, _)| value)
        .unwrap_or_default()
}

fn parse_text(text: &str) -> Event {
    let (name, args) = text.split_once(' ').unwrap_or((text, ""));
    match name {
        "CTRL-EVENT-CONNECTED" => Event::Connected {
            bssid: first_bssid(args),
            network_id: args
                .find("[id=")
                .and_then(|at| arg_num(&args[at + 1..], "id")),
        },
        "CTRL-EVENT-DISCONNECTED" => Event::Disconnected {
            bssid: arg(args, "bssid").and_then(|b| Bssid::parse(b).ok()),
            reason: arg_num(args, "reason"),
            locally_generated: arg(args, "locally_generated") == Some("1"),
        },
        "CTRL-EVENT-SCAN-STARTED" => Event::ScanStarted,
        "CTRL-EVENT-SCAN-RESULTS" => Event::ScanResults,
        "CTRL-EVENT-SCAN-FAILED" => Event::ScanFailed {
            ret: arg_num(args, "ret"),
        },
        "CTRL-EVENT-SSID-TEMP-DISABLED" => {
            // The SSID may contain spaces and `key=`-lookalikes: read the fields after it.
            let ssid_at = args.find("ssid=\"");
            let after_ssid = ssid_at
                .and_then(|at| take_quoted(&args[at + 5..]))
                .map(|(_, rest)| rest)
                .unwrap_or(args);
            Event::SsidTempDisabled {
                id: arg_num(
                    args.get(..ssid_at.unwrap_or(args.len())).unwrap_or(""),
                    "id",
                ),
                ssid: quoted_arg(args, "ssid"),
                auth_failures: arg_num(after_ssid, "auth_failures"),
                duration_secs: arg_num(after_ssid, "duration"),
                reason: arg(after_ssid, "reason").map(str::to_owned),
            }
        }
        "CTRL-EVENT-SSID-REENABLED" => Event::SsidReenabled {
            id: arg_num(
                args.get(..args.find("ssid=").unwrap_or(args.len()))
                    .unwrap_or(""),
                "id",
            ),
            ssid: quoted_arg(args, "ssid"),
        },
        "CTRL-EVENT-AUTH-REJECT" => Event::AuthReject {
            bssid: first_bssid(args),
            status_code: arg_num(args, "status_code"),
        },
        "CTRL-EVENT-ASSOC-REJECT" => Event::AssocReject {
            bssid: arg(args, "bssid").and_then(|b| Bssid::parse(b).ok()),
            status_code: arg_num(args, "status_code"),
        },
        "CTRL-EVENT-NETWORK-NOT-FOUND" => Event::NetworkNotFound,
        "CTRL-EVENT-NETWORK-ADDED" => Event::NetworkAdded {
            id: args.trim().parse().ok(),
        },
        "CTRL-EVENT-NETWORK-REMOVED" => Event::NetworkRemoved {
            id: args.trim().parse().ok(),
        },
        "CTRL-EVENT-EAP-STARTED" => Event::EapStarted,
        "CTRL-EVENT-EAP-METHOD" => Event::EapMethod {
            detail: args.to_owned(),
        },
        "CTRL-EVENT-EAP-SUCCESS" => Event::EapSuccess,
        "CTRL-EVENT-EAP-FAILURE" => Event::EapFailure,
        "CTRL-EVENT-STATE-CHANGE" => Event::StateChange {
            state: arg_num(args, "state")
                .map(WpaState::from_number)
                .unwrap_or(WpaState::Unknown),
        },
        "CTRL-EVENT-TERMINATING" => Event::Terminating,
        "ANQP-QUERY-DONE" => Event::AnqpQueryDone {
            bssid: arg(args, "addr").and_then(|b| Bssid::parse(b).ok()),
            result: short(arg(args, "result").unwrap_or("")),
        },
        "INTERWORKING-AP" => Event::InterworkingAp {
            bssid: args.get(..17).and_then(|b| Bssid::parse(b).ok()),
            kind: short(arg(args, "type").unwrap_or("")),
        },
        "INTERWORKING-NO-MATCH" => Event::InterworkingNoMatch,
        "INTERWORKING-SELECTED" => Event::InterworkingSelected {
            bssid: args.get(..17).and_then(|b| Bssid::parse(b).ok()),
        },
        _ => parse_plain(text),
    }
}

/// A word of an event, cut to 32 bytes of printable ASCII.
fn short(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect()
}

/// Messages without a `CTRL-EVENT-` name.
fn parse_plain(text: &str) -> Event {
    if let Some(rest) = text.strip_prefix("Trying to associate with ") {
        let bssid = rest.get(..17).and_then(|b| Bssid::parse(b).ok());
        // `(SSID='<printf-escaped>' freq=2412 MHz)`; a quote inside the SSID is not escaped,
        // so the SSID ends at the *last* `' freq=`.
        let (ssid, freq_mhz) = match (rest.find("(SSID='"), rest.rfind("' freq=")) {
            (Some(start), Some(end)) if start + 7 <= end => {
                let freq = rest[end + 7..]
                    .split(' ')
                    .next()
                    .and_then(|f| f.parse().ok());
                (printf_decode(&rest[start + 7..end]), freq)
            }
            _ => (Vec::new(), None),
        };
        return Event::Associating {
            bssid,
            ssid,
            freq_mhz,
        };
    }
    if let Some(rest) = text.strip_prefix("SME: Trying to authenticate with ") {
        return Event::Authenticating {
            bssid: rest.get(..17).and_then(|b| Bssid::parse(b).ok()),
        };
    }
    if let Some(rest) = text.strip_prefix("Associated with ") {
        return Event::Associated {
            bssid: rest.get(..17).and_then(|b| Bssid::parse(b).ok()),
        };
    }
    if let Some(rest) = text.strip_prefix("WPA: Key negotiation completed with ") {
        return Event::KeyNegotiationCompleted {
            bssid: rest.get(..17).and_then(|b| Bssid::parse(b).ok()),
        };
    }
    if text.starts_with("WPA: 4-Way Handshake failed") {
        return Event::HandshakeFailed;
    }
    Event::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sae_pk_failures_are_read_from_the_stdout_lines_that_say_them() {
        assert_eq!(
            sae_pk_failure("SAE-PK: Invalid or incorrect signature in KeyAuth").as_deref(),
            Some("Invalid or incorrect signature in KeyAuth")
        );
        assert_eq!(
            sae_pk_failure("1796218055.1: SAE-PK: K_AP fingerprint mismatch").as_deref(),
            Some("K_AP fingerprint mismatch")
        );
        // success and progress lines are not failures
        assert_eq!(
            sae_pk_failure("SAE-PK: Valid KeyAuth signature received"),
            None
        );
        assert_eq!(sae_pk_failure("SAE-PK: Valid K_AP fingerprint"), None);
        assert_eq!(sae_pk_failure("wlan0: SME: Trying to authenticate"), None);
    }

    #[test]
    fn anqp_and_interworking_events() {
        assert_eq!(
            ev("<3>ANQP-QUERY-DONE addr=02:00:00:00:0d:00 result=SUCCESS"),
            Event::AnqpQueryDone {
                bssid: b("02:00:00:00:0d:00"),
                result: "SUCCESS".into()
            }
        );
        assert_eq!(
            ev("<3>INTERWORKING-AP 02:00:00:00:0d:00 type=roaming id=0 priority=0 sp_priority=0"),
            Event::InterworkingAp {
                bssid: b("02:00:00:00:0d:00"),
                kind: "roaming".into()
            }
        );
        assert_eq!(
            ev("<3>INTERWORKING-NO-MATCH No network with matching credentials found"),
            Event::InterworkingNoMatch
        );
        assert_eq!(
            ev("<3>INTERWORKING-SELECTED 02:00:00:00:0d:00"),
            Event::InterworkingSelected {
                bssid: b("02:00:00:00:0d:00")
            }
        );
        assert_eq!(
            ev("<3>INTERWORKING-AP zz"),
            Event::InterworkingAp {
                bssid: None,
                kind: String::new()
            }
        );
        assert_eq!(
            ev(&format!(
                "<3>ANQP-QUERY-DONE addr=x result={}",
                "A".repeat(99)
            )),
            Event::AnqpQueryDone {
                bssid: None,
                result: "A".repeat(32)
            }
        );
    }

    fn ev(text: &str) -> Event {
        parse_event(text).expect("an event").event
    }

    fn b(text: &str) -> Option<Bssid> {
        Some(Bssid::parse(text).unwrap())
    }

    #[test]
    fn real_wired_events() {
        // Verbatim from wpa_supplicant 2.10 -D wired.
        assert_eq!(
            ev(
                "<3>CTRL-EVENT-CONNECTED - Connection to 01:80:c2:00:00:03 completed [id=0 id_str=]"
            ),
            Event::Connected {
                bssid: b("01:80:c2:00:00:03"),
                network_id: Some(0)
            }
        );
        assert_eq!(
            ev("<3>CTRL-EVENT-DISCONNECTED bssid=01:80:c2:00:00:03 reason=3 locally_generated=1"),
            Event::Disconnected {
                bssid: b("01:80:c2:00:00:03"),
                reason: Some(3),
                locally_generated: true
            }
        );
        assert_eq!(
            ev("<3>Associated with 01:80:c2:00:00:03"),
            Event::Associated {
                bssid: b("01:80:c2:00:00:03")
            }
        );
        assert_eq!(
            ev("<3>CTRL-EVENT-NETWORK-ADDED 0"),
            Event::NetworkAdded { id: Some(0) }
        );
        assert_eq!(
            ev("<3>CTRL-EVENT-NETWORK-REMOVED 12"),
            Event::NetworkRemoved { id: Some(12) }
        );
        let msg = parse_event("<3>CTRL-EVENT-SUBNET-STATUS-UPDATE status=0").unwrap();
        assert_eq!(msg.event, Event::Other);
        assert_eq!(msg.raw(), "CTRL-EVENT-SUBNET-STATUS-UPDATE status=0");
        assert_eq!(msg.priority, 3);
    }

    #[test]
    fn wifi_events() {
        assert_eq!(
            ev("<3>CTRL-EVENT-DISCONNECTED bssid=02:00:00:00:01:00 reason=15"),
            Event::Disconnected {
                bssid: b("02:00:00:00:01:00"),
                reason: Some(15),
                locally_generated: false
            }
        );
        let temp = ev(
            "<3>CTRL-EVENT-SSID-TEMP-DISABLED id=1 ssid=\"a \\\"b\\\" reason=X id=9\" auth_failures=2 duration=20 reason=WRONG_KEY",
        );
        assert_eq!(
            temp,
            Event::SsidTempDisabled {
                id: Some(1),
                ssid: b"a \"b\" reason=X id=9".to_vec(),
                auth_failures: Some(2),
                duration_secs: Some(20),
                reason: Some("WRONG_KEY".into())
            }
        );
        assert!(temp.is_wrong_key());
        assert_eq!(
            ev("<3>CTRL-EVENT-SSID-REENABLED id=1 ssid=\"x\""),
            Event::SsidReenabled {
                id: Some(1),
                ssid: b"x".to_vec()
            }
        );
        assert_eq!(
            ev(
                "<3>CTRL-EVENT-AUTH-REJECT 02:00:00:00:01:00 auth_type=3 auth_transaction=1 status_code=1"
            ),
            Event::AuthReject {
                bssid: b("02:00:00:00:01:00"),
                status_code: Some(1)
            }
        );
        assert_eq!(
            ev("<3>CTRL-EVENT-ASSOC-REJECT bssid=02:00:00:00:01:00 status_code=17"),
            Event::AssocReject {
                bssid: b("02:00:00:00:01:00"),
                status_code: Some(17)
            }
        );
        assert_eq!(ev("<3>CTRL-EVENT-SCAN-STARTED "), Event::ScanStarted);
        assert_eq!(ev("<3>CTRL-EVENT-SCAN-RESULTS "), Event::ScanResults);
        assert_eq!(
            ev("<3>CTRL-EVENT-SCAN-FAILED ret=-16 retry=1"),
            Event::ScanFailed { ret: Some(-16) }
        );
        assert_eq!(
            ev("<3>CTRL-EVENT-NETWORK-NOT-FOUND "),
            Event::NetworkNotFound
        );
        assert_eq!(
            ev("<3>CTRL-EVENT-EAP-STARTED EAP authentication started"),
            Event::EapStarted
        );
        assert_eq!(
            ev("<3>CTRL-EVENT-EAP-SUCCESS EAP authentication completed successfully"),
            Event::EapSuccess
        );
        assert_eq!(
            ev("<4>CTRL-EVENT-EAP-FAILURE EAP authentication failed"),
            Event::EapFailure
        );
        assert_eq!(
            ev("<3>CTRL-EVENT-STATE-CHANGE id=0 state=9 BSSID=02:00:00:00:01:00 SSID=x"),
            Event::StateChange {
                state: WpaState::Completed
            }
        );
        assert_eq!(
            ev(
                "<3>Trying to associate with 02:00:00:00:01:00 (SSID='it's ' freq=1' freq=2412 MHz)"
            ),
            Event::Associating {
                bssid: b("02:00:00:00:01:00"),
                ssid: b"it's ' freq=1".to_vec(),
                freq_mhz: Some(2412)
            }
        );
        assert_eq!(
            ev("<3>SME: Trying to authenticate with 02:00:00:00:01:00 (SSID='x' freq=2412 MHz)"),
            Event::Authenticating {
                bssid: b("02:00:00:00:01:00")
            }
        );
        assert_eq!(
            ev("<3>WPA: Key negotiation completed with 02:00:00:00:01:00 [PTK=CCMP GTK=CCMP]"),
            Event::KeyNegotiationCompleted {
                bssid: b("02:00:00:00:01:00")
            }
        );
        assert_eq!(
            ev("<3>WPA: 4-Way Handshake failed - pre-shared key may be incorrect"),
            Event::HandshakeFailed
        );
        assert_eq!(ev("<2>CTRL-EVENT-TERMINATING"), Event::Terminating);
        let msg = parse_event("<3>IFNAME=wlan0 CTRL-EVENT-SCAN-RESULTS \n").unwrap();
        assert_eq!(msg.ifname.as_deref(), Some("wlan0"));
        assert_eq!(msg.event, Event::ScanResults);
    }

    #[test]
    fn malformed() {
        assert_eq!(parse_event("OK\n"), None);
        assert_eq!(parse_event("PONG"), None);
        assert_eq!(parse_event(""), None);
        assert_eq!(parse_event("<"), None);
        assert_eq!(parse_event("<x>CTRL-EVENT-CONNECTED"), None);
        assert_eq!(parse_event("<999>x"), None);
        assert_eq!(
            ev("<3>CTRL-EVENT-CONNECTED"),
            Event::Connected {
                bssid: None,
                network_id: None
            }
        );
        assert_eq!(
            ev("<3>CTRL-EVENT-SSID-TEMP-DISABLED id=1 ssid=\"unterminated"),
            Event::SsidTempDisabled {
                id: Some(1),
                ssid: b"unterminated".to_vec(),
                auth_failures: None,
                duration_secs: None,
                reason: None
            }
        );
        assert_eq!(
            ev("<3>Trying to associate with 02:00"),
            Event::Associating {
                bssid: None,
                ssid: vec![],
                freq_mhz: None
            }
        );
        assert_eq!(
            ev("<3>Associated with é"),
            Event::Associated { bssid: None }
        );
        assert_eq!(ev("<3>IFNAME=wlan0"), Event::Other);
    }
}
