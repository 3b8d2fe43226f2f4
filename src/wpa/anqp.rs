//! ANQP answers (802.11u, and the Hotspot 2.0 subtypes) as wpa_supplicant keeps them per BSS:
//! the `anqp_*` / `hs20_*` lines of `BSS <bssid> MASK=…` (hex of each element's payload), parsed
//! into venue names, NAI realms with their EAP methods, domain names, roaming consortium OIs,
//! the operator's friendly names and WAN metrics.
//!
//! These bytes come from the air, from an access point that may be hostile: the parser is pure
//! and total (any input gives a result, never a panic), bounded (at most [`MAX_ITEMS`] entries
//! per list, text cut to [`MAX_TEXT`] bytes with control characters dropped), and says in
//! `problems` which element was truncated or malformed, keeping what parsed before it.

use schemars::JsonSchema;
use serde::Serialize;

/// At most this many entries per list (realms, EAP methods of a realm, auth params, names).
pub const MAX_ITEMS: usize = 32;
/// At most this many bytes of any text (a realm, a name), before cleaning.
pub const MAX_TEXT: usize = 255;

/// The ANQP info IDs the agent asks for: venue name (258), network auth type (260), roaming
/// consortium (261), NAI realm (263), domain name (268).
pub const ANQP_IDS: &[u16] = &[258, 260, 261, 263, 268];
/// The Hotspot 2.0 ANQP subtypes asked for (only of a BSS with the HS 2.0 indication):
/// operator friendly name (3), WAN metrics (4).
pub const HS20_SUBTYPES: &[u8] = &[3, 4];

/// A text with its language (ISO 639 code, as the element gives it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct LangText {
    /// Language code (e.g. `eng`), empty if the element gives none.
    pub language: String,
    /// The text, cleaned.
    pub text: String,
}

/// The venue (ANQP Venue Name, info ID 258).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Venue {
    /// Venue group (802.11u: 1 assembly, 2 business, 3 educational, …).
    pub group: u8,
    /// Venue type within the group.
    pub venue_type: u8,
    /// Names, one per language.
    pub names: Vec<LangText>,
}

/// One auth parameter of an EAP method of a NAI realm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AuthParam {
    /// The parameter's ID (1 expanded EAP method, 2 non-EAP inner auth, 3 inner EAP method,
    /// 4 expanded inner EAP method, 5 credential type, 6 tunneled EAP credential type).
    pub id: u8,
    /// What the ID means (`non_eap_inner_auth`, `credential_type`, …; `vendor`/`unknown`).
    pub kind: String,
    /// The value, hex.
    pub value_hex: String,
    /// What the value means, where known (`mschapv2`, `username_password`, `certificate`…).
    pub meaning: Option<String>,
}

/// One EAP method a NAI realm accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RealmEap {
    /// IANA EAP method type (13 TLS, 21 TTLS, 25 PEAP, …).
    pub method: u8,
    /// Its name (`tls`, `ttls`, `peap`, …; `eap-N` otherwise).
    pub name: String,
    /// The method's auth parameters.
    pub auth_params: Vec<AuthParam>,
}

/// One NAI realm entry (ANQP NAI Realm, info ID 263).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct NaiRealm {
    /// The realms of the entry (the element may list several, `;`-separated).
    pub realms: Vec<String>,
    /// `rfc4282` (NAI) or `utf8`.
    pub encoding: String,
    /// The EAP methods accepted for these realms.
    pub eap_methods: Vec<RealmEap>,
}

/// HS 2.0 WAN metrics (subtype 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct WanMetrics {
    /// Link status: `up`, `down`, `test` (or `reserved`).
    pub link_status: String,
    /// The WAN is symmetric.
    pub symmetric: bool,
    /// At capacity.
    pub at_capacity: bool,
    /// Downlink speed, kbit/s.
    pub downlink_kbps: u32,
    /// Uplink speed, kbit/s.
    pub uplink_kbps: u32,
    /// Downlink load (0-255, of 255).
    pub downlink_load: u8,
    /// Uplink load (0-255, of 255).
    pub uplink_load: u8,
    /// Load measurement duration, 1/10 s.
    pub load_measurement_duration: u16,
}

/// A network authentication type (ANQP info ID 260).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct NetworkAuthType {
    /// `terms_and_conditions`, `online_enrollment`, `http_redirection`, `dns_redirection`,
    /// `reserved-N`.
    pub kind: String,
    /// The redirect URL, if any (cleaned).
    pub url: Option<String>,
}

/// What the ANQP answers of one BSS say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AnqpInfo {
    /// The venue, if answered.
    pub venue: Option<Venue>,
    /// Network authentication types (an empty answer: none needed).
    pub network_auth_types: Vec<NetworkAuthType>,
    /// Roaming consortium OIs, hex.
    pub roaming_consortium: Vec<String>,
    /// NAI realms and their EAP methods.
    pub nai_realms: Vec<NaiRealm>,
    /// Domain names of the operator.
    pub domain_names: Vec<String>,
    /// HS 2.0 operator friendly names, one per language.
    pub operator_names: Vec<LangText>,
    /// HS 2.0 WAN metrics.
    pub wan_metrics: Option<WanMetrics>,
    /// The elements answered, by wpa_supplicant's name (`anqp_nai_realm`, `hs20_wan_metrics`…).
    pub elements: Vec<String>,
    /// What was malformed or cut short (parsing keeps what came before).
    pub problems: Vec<String>,
}

/// A bounds-checked reader over untrusted bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16le(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32le(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Printable text of at most [`MAX_TEXT`] bytes: control characters dropped, invalid UTF-8
/// replaced.
fn clean(raw: &[u8]) -> String {
    let raw = &raw[..raw.len().min(MAX_TEXT)];
    String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

/// Decode hex (as wpa_supplicant prints it); `None` for an odd length or a non-hex digit.
fn unhex(text: &str) -> Option<Vec<u8>> {
    let t = text.trim().as_bytes();
    if !t.len().is_multiple_of(2) {
        return None;
    }
    t.chunks(2)
        .map(|p| {
            let d = |c: u8| (c as char).to_digit(16);
            Some((d(p[0])? * 16 + d(p[1])?) as u8)
        })
        .collect()
}

/// Language + text duples (venue names, operator names): length (1), language (3), text.
fn duples(r: &mut Reader, what: &str, problems: &mut Vec<String>) -> Vec<LangText> {
    let mut out = Vec::new();
    while !r.is_empty() {
        if out.len() >= MAX_ITEMS {
            problems.push(format!(
                "{what}: more than {MAX_ITEMS} names, the rest dropped"
            ));
            break;
        }
        let Some(body) = r.u8().and_then(|n| r.take(n as usize)) else {
            problems.push(format!("{what}: a name runs past the element's end"));
            break;
        };
        if body.len() < 3 {
            problems.push(format!("{what}: a name shorter than its language code"));
            continue;
        }
        let language = clean(&body[..3]).trim_end_matches('\0').to_string();
        out.push(LangText {
            language: language
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect(),
            text: clean(&body[3..]),
        });
    }
    out
}

/// Length-prefixed items (domain names, roaming consortium OIs).
fn items<'a>(r: &mut Reader<'a>, what: &str, problems: &mut Vec<String>) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while !r.is_empty() {
        if out.len() >= MAX_ITEMS {
            problems.push(format!(
                "{what}: more than {MAX_ITEMS} entries, the rest dropped"
            ));
            break;
        }
        match r.u8().and_then(|n| r.take(n as usize)) {
            Some(item) => out.push(item),
            None => {
                problems.push(format!("{what}: an entry runs past the element's end"));
                break;
            }
        }
    }
    out
}

/// The ANQP Venue Name payload: venue info (group, type), then names.
pub fn parse_venue(raw: &[u8], problems: &mut Vec<String>) -> Option<Venue> {
    let mut r = Reader::new(raw);
    let (Some(group), Some(venue_type)) = (r.u8(), r.u8()) else {
        problems.push("venue name: shorter than its venue info".into());
        return None;
    };
    Some(Venue {
        group,
        venue_type,
        names: duples(&mut r, "venue name", problems),
    })
}

/// The ANQP Domain Name payload.
pub fn parse_domains(raw: &[u8], problems: &mut Vec<String>) -> Vec<String> {
    items(&mut Reader::new(raw), "domain name", problems)
        .into_iter()
        .map(clean)
        .collect()
}

/// The ANQP Roaming Consortium payload: OIs, hex.
pub fn parse_roaming_consortium(raw: &[u8], problems: &mut Vec<String>) -> Vec<String> {
    items(&mut Reader::new(raw), "roaming consortium", problems)
        .into_iter()
        .map(|oi| hex::encode(&oi[..oi.len().min(15)]))
        .collect()
}

/// The HS 2.0 Operator Friendly Name payload (after the subtype header).
pub fn parse_operator_names(raw: &[u8], problems: &mut Vec<String>) -> Vec<LangText> {
    duples(&mut Reader::new(raw), "operator friendly name", problems)
}

/// The HS 2.0 WAN Metrics payload (13 bytes).
pub fn parse_wan_metrics(raw: &[u8], problems: &mut Vec<String>) -> Option<WanMetrics> {
    let mut r = Reader::new(raw);
    let parsed = (|| {
        let info = r.u8()?;
        Some(WanMetrics {
            link_status: match info & 0x03 {
                1 => "up",
                2 => "down",
                3 => "test",
                _ => "reserved",
            }
            .into(),
            symmetric: info & 0x04 != 0,
            at_capacity: info & 0x08 != 0,
            downlink_kbps: r.u32le()?,
            uplink_kbps: r.u32le()?,
            downlink_load: r.u8()?,
            uplink_load: r.u8()?,
            load_measurement_duration: r.u16le()?,
        })
    })();
    if parsed.is_none() {
        problems.push(format!("wan metrics: {} bytes, 13 expected", raw.len()));
    }
    parsed
}

/// The ANQP Network Authentication Type payload: type (1), URL length (2), URL.
pub fn parse_network_auth_types(raw: &[u8], problems: &mut Vec<String>) -> Vec<NetworkAuthType> {
    let mut r = Reader::new(raw);
    let mut out = Vec::new();
    while !r.is_empty() {
        if out.len() >= MAX_ITEMS {
            problems.push(format!(
                "network auth type: more than {MAX_ITEMS}, the rest dropped"
            ));
            break;
        }
        let Some((kind, url)) = (|| {
            let kind = r.u8()?;
            let n = r.u16le()?;
            Some((kind, r.take(n as usize)?))
        })() else {
            problems.push("network auth type: an entry runs past the element's end".into());
            break;
        };
        out.push(NetworkAuthType {
            kind: match kind {
                0 => "terms_and_conditions".into(),
                1 => "online_enrollment".into(),
                2 => "http_redirection".into(),
                3 => "dns_redirection".into(),
                n => format!("reserved-{n}"),
            },
            url: (!url.is_empty()).then(|| clean(url)),
        });
    }
    out
}

/// The name of an IANA EAP method type.
pub fn eap_name(method: u8) -> String {
    match method {
        4 => "md5".into(),
        6 => "gtc".into(),
        13 => "tls".into(),
        17 => "leap".into(),
        18 => "sim".into(),
        21 => "ttls".into(),
        23 => "aka".into(),
        25 => "peap".into(),
        26 => "mschapv2".into(),
        43 => "fast".into(),
        50 => "aka'".into(),
        52 => "pwd".into(),
        n => format!("eap-{n}"),
    }
}

fn auth_param(id: u8, value: &[u8]) -> AuthParam {
    let first = value.first().copied();
    let (kind, meaning) = match id {
        1 => ("expanded_eap_method", None),
        2 => (
            "non_eap_inner_auth",
            first.map(|v| {
                match v {
                    1 => "pap",
                    2 => "chap",
                    3 => "mschap",
                    4 => "mschapv2",
                    _ => "reserved",
                }
                .to_string()
            }),
        ),
        3 => ("inner_eap_method", first.map(eap_name)),
        4 => ("expanded_inner_eap_method", None),
        5 | 6 => (
            if id == 5 {
                "credential_type"
            } else {
                "tunneled_eap_credential_type"
            },
            first.map(|v| {
                match v {
                    1 => "sim",
                    2 => "usim",
                    3 => "nfc_secure_element",
                    4 => "hardware_token",
                    5 => "softoken",
                    6 => "certificate",
                    7 => "username_password",
                    8 => "none",
                    10 => "vendor_specific",
                    _ => "reserved",
                }
                .to_string()
            }),
        ),
        221 => ("vendor", None),
        _ => ("unknown", None),
    };
    AuthParam {
        id,
        kind: kind.into(),
        value_hex: hex::encode(value),
        meaning,
    }
}

/// One EAP method of a realm entry: method (1), param count (1), params (id, len, value).
fn realm_eap(body: &[u8], problems: &mut Vec<String>) -> Option<RealmEap> {
    let mut r = Reader::new(body);
    let method = r.u8()?;
    let count = r.u8()?;
    let mut auth_params = Vec::new();
    for _ in 0..count {
        if auth_params.len() >= MAX_ITEMS {
            problems.push(format!(
                "nai realm: more than {MAX_ITEMS} auth params, the rest dropped"
            ));
            break;
        }
        let Some((id, value)) = (|| {
            let id = r.u8()?;
            let n = r.u8()?;
            Some((id, r.take(n as usize)?))
        })() else {
            problems.push("nai realm: an auth param runs past its EAP method's end".into());
            break;
        };
        auth_params.push(auth_param(id, value));
    }
    Some(RealmEap {
        method,
        name: eap_name(method),
        auth_params,
    })
}

/// One NAI realm data field (after its 2-byte length).
fn realm_entry(body: &[u8], problems: &mut Vec<String>) -> Option<NaiRealm> {
    let mut r = Reader::new(body);
    let encoding = r.u8()?;
    let realm = r.u8().and_then(|n| r.take(n as usize))?;
    let realms = clean(realm)
        .split(';')
        .filter(|s| !s.is_empty())
        .take(MAX_ITEMS)
        .map(str::to_owned)
        .collect();
    let mut eap_methods = Vec::new();
    // A realm without the EAP method count is legal (no methods listed).
    let count = r.u8().unwrap_or(0);
    for _ in 0..count {
        if eap_methods.len() >= MAX_ITEMS {
            problems.push(format!(
                "nai realm: more than {MAX_ITEMS} EAP methods, the rest dropped"
            ));
            break;
        }
        let Some(m) = r.u8().and_then(|n| r.take(n as usize)) else {
            problems.push("nai realm: an EAP method runs past its realm entry's end".into());
            break;
        };
        match realm_eap(m, problems) {
            Some(m) => eap_methods.push(m),
            None => problems.push("nai realm: an EAP method shorter than 2 bytes".into()),
        }
    }
    Some(NaiRealm {
        realms,
        encoding: if encoding & 0x01 != 0 {
            "utf8"
        } else {
            "rfc4282"
        }
        .into(),
        eap_methods,
    })
}

/// The ANQP NAI Realm payload: count (2), then entries of length (2) + data.
pub fn parse_nai_realms(raw: &[u8], problems: &mut Vec<String>) -> Vec<NaiRealm> {
    let mut r = Reader::new(raw);
    let Some(count) = r.u16le() else {
        problems.push("nai realm: shorter than its realm count".into());
        return Vec::new();
    };
    let mut out = Vec::new();
    for _ in 0..count {
        if out.len() >= MAX_ITEMS {
            problems.push(format!(
                "nai realm: more than {MAX_ITEMS} realms, the rest dropped"
            ));
            break;
        }
        let Some(body) = r.u16le().and_then(|n| r.take(n as usize)) else {
            problems.push(format!(
                "nai realm: {} of {count} realm entries before the element ended",
                out.len()
            ));
            break;
        };
        match realm_entry(body, problems) {
            Some(e) => out.push(e),
            None => problems.push("nai realm: a realm entry shorter than its realm".into()),
        }
    }
    out
}

/// The `anqp_*` / `hs20_*` lines of a `BSS` reply, parsed. Unknown keys are ignored; a value
/// that is not hex is a problem, not an error.
pub fn from_bss_reply(reply: &str) -> AnqpInfo {
    let mut info = AnqpInfo::default();
    for line in reply.lines().take(4096) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let known = matches!(
            key,
            "anqp_venue_name"
                | "anqp_network_auth_type"
                | "anqp_roaming_consortium"
                | "anqp_nai_realm"
                | "anqp_domain_name"
                | "hs20_operator_friendly_name"
                | "hs20_wan_metrics"
        );
        if !(key.starts_with("anqp_") || key.starts_with("hs20_")) {
            continue;
        }
        if info.elements.len() < MAX_ITEMS && key.len() <= 64 {
            info.elements.push(clean(key.as_bytes()));
        }
        if !known {
            continue;
        }
        let Some(raw) = unhex(value) else {
            info.problems.push(format!("{key}: not hex"));
            continue;
        };
        let p = &mut info.problems;
        match key {
            "anqp_venue_name" => info.venue = parse_venue(&raw, p),
            "anqp_network_auth_type" => info.network_auth_types = parse_network_auth_types(&raw, p),
            "anqp_roaming_consortium" => {
                info.roaming_consortium = parse_roaming_consortium(&raw, p)
            }
            "anqp_nai_realm" => info.nai_realms = parse_nai_realms(&raw, p),
            "anqp_domain_name" => info.domain_names = parse_domains(&raw, p),
            "hs20_operator_friendly_name" => info.operator_names = parse_operator_names(&raw, p),
            "hs20_wan_metrics" => info.wan_metrics = parse_wan_metrics(&raw, p),
            _ => {}
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What hostapd answers for `nai_realm=0,lab.test,21[2:4][5:7]`.
    fn realm_lab() -> Vec<u8> {
        let realm = b"lab.test";
        let eap = [21u8, 2, 2, 1, 4, 5, 1, 7];
        let mut entry = vec![0u8, realm.len() as u8];
        entry.extend_from_slice(realm);
        entry.push(1);
        entry.push(eap.len() as u8);
        entry.extend_from_slice(&eap);
        let mut out = vec![1u8, 0];
        out.extend_from_slice(&(entry.len() as u16).to_le_bytes());
        out.extend_from_slice(&entry);
        out
    }

    fn venue_lab() -> Vec<u8> {
        let mut v = vec![2u8, 8, 3 + 9];
        v.extend_from_slice(b"eng");
        v.extend_from_slice(b"Lab Venue");
        v
    }

    #[test]
    fn a_realm_with_ttls_mschapv2_by_password() {
        let mut p = Vec::new();
        let realms = parse_nai_realms(&realm_lab(), &mut p);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(realms.len(), 1);
        let r = &realms[0];
        assert_eq!(r.realms, vec!["lab.test"]);
        assert_eq!(r.encoding, "rfc4282");
        assert_eq!(r.eap_methods.len(), 1);
        let m = &r.eap_methods[0];
        assert_eq!((m.method, m.name.as_str()), (21, "ttls"));
        let got: Vec<_> = m
            .auth_params
            .iter()
            .map(|a| (a.id, a.kind.as_str(), a.meaning.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, "non_eap_inner_auth", Some("mschapv2")),
                (5, "credential_type", Some("username_password")),
            ]
        );
    }

    #[test]
    fn every_truncation_of_a_realm_list_parses_what_it_can_and_says_so() {
        let full = realm_lab();
        for n in 0..full.len() {
            let mut p = Vec::new();
            let realms = parse_nai_realms(&full[..n], &mut p);
            assert!(!p.is_empty(), "cut at {n}: no problem reported");
            assert!(realms.len() <= 1);
        }
        // A realm entry whose own length lies (longer than its body) is cut at its end.
        let mut lying = full.clone();
        lying[2] = 200;
        let mut p = Vec::new();
        assert!(parse_nai_realms(&lying, &mut p).is_empty());
        assert!(!p.is_empty());
    }

    #[test]
    fn a_realm_list_naming_many_realms_is_bounded() {
        let entry = [0u8, 1, b'a', 0];
        let mut raw = vec![0xff, 0xff];
        for _ in 0..100 {
            raw.extend_from_slice(&(entry.len() as u16).to_le_bytes());
            raw.extend_from_slice(&entry);
        }
        let mut p = Vec::new();
        let realms = parse_nai_realms(&raw, &mut p);
        assert_eq!(realms.len(), MAX_ITEMS);
        assert!(p.iter().any(|x| x.contains("dropped")), "{p:?}");
        // EAP methods and auth params too: a count of 255 with garbage after it.
        let mut e = vec![0u8, 1, b'a', 255];
        for _ in 0..60 {
            e.extend_from_slice(&[2, 13, 0]);
        }
        let mut raw = vec![1, 0];
        raw.extend_from_slice(&(e.len() as u16).to_le_bytes());
        raw.extend_from_slice(&e);
        let mut p = Vec::new();
        let r = parse_nai_realms(&raw, &mut p);
        assert_eq!(r[0].eap_methods.len(), MAX_ITEMS);
    }

    #[test]
    fn several_realms_in_one_entry_and_hostile_text() {
        let realm = b"a.test;b.test\x07;;\n";
        let mut entry = vec![1u8, realm.len() as u8];
        entry.extend_from_slice(realm);
        let mut raw = vec![1u8, 0];
        raw.extend_from_slice(&(entry.len() as u16).to_le_bytes());
        raw.extend_from_slice(&entry);
        let mut p = Vec::new();
        let r = parse_nai_realms(&raw, &mut p);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(r[0].realms, vec!["a.test", "b.test"]);
        assert_eq!(r[0].encoding, "utf8");
        assert!(r[0].eap_methods.is_empty());
    }

    #[test]
    fn venue_names_and_their_truncations() {
        let mut p = Vec::new();
        let v = parse_venue(&venue_lab(), &mut p).unwrap();
        assert!(p.is_empty());
        assert_eq!((v.group, v.venue_type), (2, 8));
        assert_eq!(
            v.names,
            vec![LangText {
                language: "eng".into(),
                text: "Lab Venue".into()
            }]
        );
        let full = venue_lab();
        for n in 0..full.len() {
            let mut p = Vec::new();
            let v = parse_venue(&full[..n], &mut p);
            if n == 2 {
                assert!(p.is_empty() && v.unwrap().names.is_empty());
            } else {
                assert!(!p.is_empty(), "cut at {n}");
            }
        }
        // A two-letter code padded with a NUL, as 802.11 allows.
        let mut p = Vec::new();
        let v = parse_venue(&[1, 1, 5, b'd', b'e', 0, b'H', b'i'], &mut p).unwrap();
        assert_eq!(v.names[0].language, "de");
        assert_eq!(v.names[0].text, "Hi");
    }

    #[test]
    fn domains_oi_operator_names_and_wan_metrics() {
        let mut p = Vec::new();
        assert_eq!(
            parse_domains(b"\x0bhs.lab.test\x08lab.test", &mut p),
            vec!["hs.lab.test", "lab.test"]
        );
        assert_eq!(
            parse_roaming_consortium(&[3, 0x50, 0x6f, 0x9a, 5, 0, 0x1b, 0xc5, 0x04, 0xbd], &mut p),
            vec!["506f9a", "001bc504bd"]
        );
        let mut op = vec![3 + 12];
        op.extend_from_slice(b"engLab Operator");
        assert_eq!(parse_operator_names(&op, &mut p)[0].text, "Lab Operator");
        assert!(p.is_empty(), "{p:?}");
        // hs20_wan_metrics=01:8000:1000:80:240:3000
        let mut w = vec![1u8];
        w.extend_from_slice(&8000u32.to_le_bytes());
        w.extend_from_slice(&1000u32.to_le_bytes());
        w.extend_from_slice(&[80, 240]);
        w.extend_from_slice(&3000u16.to_le_bytes());
        let m = parse_wan_metrics(&w, &mut p).unwrap();
        assert_eq!(
            (m.link_status.as_str(), m.downlink_kbps, m.uplink_kbps),
            ("up", 8000, 1000)
        );
        assert_eq!(
            (m.downlink_load, m.uplink_load, m.load_measurement_duration),
            (80, 240, 3000)
        );
        for n in 0..w.len() {
            let mut p = Vec::new();
            assert!(parse_wan_metrics(&w[..n], &mut p).is_none());
            assert_eq!(p.len(), 1);
        }
        // Truncated items.
        let mut p = Vec::new();
        assert_eq!(parse_domains(b"\x0bhs.lab", &mut p), Vec::<String>::new());
        assert_eq!(p.len(), 1);
        let mut p = Vec::new();
        assert!(parse_operator_names(&[2, b'e', b'n'], &mut p).is_empty());
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn network_auth_types() {
        let mut raw = vec![2u8, 5, 0];
        raw.extend_from_slice(b"http:");
        raw.extend_from_slice(&[0, 0, 0]);
        let mut p = Vec::new();
        let t = parse_network_auth_types(&raw, &mut p);
        assert!(p.is_empty());
        assert_eq!(t[0].kind, "http_redirection");
        assert_eq!(t[0].url.as_deref(), Some("http:"));
        assert_eq!(t[1].kind, "terms_and_conditions");
        assert_eq!(t[1].url, None);
        for n in 1..raw.len() {
            let mut p = Vec::new();
            let _ = parse_network_auth_types(&raw[..n], &mut p);
            if n != 8 {
                assert!(!p.is_empty(), "cut at {n}");
            }
        }
    }

    #[test]
    fn a_bss_reply_becomes_the_report() {
        let reply = format!(
            "bssid=02:00:00:00:0d:00\nanqp_venue_name={}\nanqp_nai_realm={}\n\
             anqp_domain_name={}\nhs20_operator_friendly_name={}\nanqp_capability_list=0101\n\
             anqp_roaming_consortium=zz\nie=dd05\n",
            hex::encode(venue_lab()),
            hex::encode(realm_lab()),
            hex::encode(b"\x08lab.test"),
            hex::encode(b"\x0fengLab Operator"),
        );
        let info = from_bss_reply(&reply);
        assert_eq!(info.venue.unwrap().names[0].text, "Lab Venue");
        assert_eq!(info.nai_realms[0].realms, vec!["lab.test"]);
        assert_eq!(info.domain_names, vec!["lab.test"]);
        assert_eq!(info.operator_names[0].text, "Lab Operator");
        assert!(info.elements.contains(&"anqp_capability_list".to_string()));
        assert_eq!(info.problems, vec!["anqp_roaming_consortium: not hex"]);
        assert_eq!(from_bss_reply(""), AnqpInfo::default());
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic sweep: every prefix of a few pseudo-random buffers, through each parser.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..200 {
            let buf: Vec<u8> = (0..64)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x & 0xff) as u8
                })
                .collect();
            for n in 0..buf.len() {
                let b = &buf[..n];
                let mut p = Vec::new();
                let _ = parse_nai_realms(b, &mut p);
                let _ = parse_venue(b, &mut p);
                let _ = parse_domains(b, &mut p);
                let _ = parse_roaming_consortium(b, &mut p);
                let _ = parse_operator_names(b, &mut p);
                let _ = parse_wan_metrics(b, &mut p);
                let _ = parse_network_auth_types(b, &mut p);
                let _ = from_bss_reply(&format!("anqp_nai_realm={}", hex::encode(b)));
            }
        }
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(""), Some(vec![]));
    }
}
