//! Argument validation shared by every tool: SSIDs, passphrases, BSSIDs, EAP credentials,
//! certificate paths and host names.
//!
//! Every type here can only be built through a checking constructor, so code that holds one
//! knows the value is in range. The error messages say what is wrong *and* what is allowed:
//! they are shown verbatim to MCP clients as tool errors. They never repeat a secret.
//!
//! Secrets ([`Passphrase`], [`SaePassword`], [`EapPassword`], [`Secret`]) print as
//! `<redacted>` in `Debug` and `Display`; the value is only reachable through an explicit
//! `expose()`.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

/// Why a value was refused. `Display` is a complete sentence for a tool error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The SSID is empty or longer than 32 bytes.
    #[error(
        "SSID must be 1 to 32 bytes long (UTF-8 counts bytes, not characters); got {len} bytes"
    )]
    SsidLength {
        /// Length in bytes of the refused SSID.
        len: usize,
    },
    /// An `ssid_hex` value is not valid hex.
    #[error("SSID hex must be an even number of hex digits (0-9, a-f) encoding 1 to 32 bytes")]
    SsidHex,
    /// The passphrase has the wrong length.
    #[error(
        "passphrase must be 8 to 63 printable ASCII characters, or exactly 64 hex digits for a raw PSK; got {len} characters"
    )]
    PassphraseLength {
        /// Length in characters of the refused passphrase.
        len: usize,
    },
    /// The passphrase contains a character outside printable ASCII.
    #[error(
        "passphrase character {position} is not printable ASCII; a WPA passphrase may only use the characters from space (0x20) to '~' (0x7e)"
    )]
    PassphraseCharacter {
        /// 1-based position of the first refused character.
        position: usize,
    },
    /// The SAE (WPA3) password has the wrong length.
    #[error("SAE password must be 1 to 255 bytes long; got {len} bytes")]
    SaePasswordLength {
        /// Length in bytes of the refused password.
        len: usize,
    },
    /// The SAE password contains a control character.
    #[error(
        "SAE password character {position} is a control character (NUL, newline, tab, ...); only printable characters are allowed"
    )]
    SaePasswordCharacter {
        /// 1-based position of the first refused character.
        position: usize,
    },
    /// The BSSID / MAC address is not six hex octets.
    #[error(
        "BSSID {input:?} is not a MAC address; expected six two-digit hex octets separated by ':' or '-', like aa:bb:cc:dd:ee:ff"
    )]
    Bssid {
        /// The refused input (shortened).
        input: String,
    },
    /// An EAP identity has the wrong length or a control character.
    #[error(
        "EAP {what} must be 1 to 255 bytes without control characters (NUL, newline, tab, ...); {problem}"
    )]
    EapIdentity {
        /// `identity` or `anonymous identity`.
        what: &'static str,
        /// What exactly was wrong.
        problem: String,
    },
    /// An EAP or key password has the wrong length or a control character.
    #[error(
        "{what} must be 1 to 255 bytes without control characters (NUL, newline, tab, ...); {problem}"
    )]
    Password {
        /// Which password (`EAP password`, `private key password`).
        what: &'static str,
        /// What exactly was wrong (never the password itself).
        problem: String,
    },
    /// A host name or IP literal is not acceptable.
    #[error(
        "host {input:?} is not valid: {problem}; expected an IPv4/IPv6 address or a DNS name of letters, digits, '-' and '.' (labels of 1 to 63 characters, not starting or ending with '-', 253 characters at most)"
    )]
    Host {
        /// The refused input (shortened).
        input: String,
        /// What exactly was wrong.
        problem: &'static str,
    },
    /// A certificate or key path is not acceptable.
    #[error(
        "path {input:?} is not valid: {problem}; expected an absolute path without '..' components or control characters, at most 4096 bytes"
    )]
    FilePath {
        /// The refused input (shortened).
        input: String,
        /// What exactly was wrong.
        problem: &'static str,
    },
    /// A country code is not two upper-case letters.
    #[error(
        "country code {input:?} is not valid; expected two upper-case ISO 3166-1 letters like DE or US, or 00 for world"
    )]
    Country {
        /// The refused input (shortened).
        input: String,
    },
    /// Not a possible network interface (or phy) name.
    #[error(
        "{input:?} is not an interface name; expected 1 to 15 characters without '/', ':', whitespace or quotes, like wlp6s0 or phy0"
    )]
    IfaceName {
        /// The refused input (shortened).
        input: String,
    },
}

/// Shorten user input for an error message so a hostile megabyte does not end up in logs.
pub(crate) fn shorten(input: &str) -> String {
    const MAX: usize = 64;
    if input.len() <= MAX {
        return input.to_owned();
    }
    let mut end = MAX;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &input[..end])
}

/// Position (1-based) of the first control character (C0, DEL or C1), if any.
fn first_control(s: &str) -> Option<usize> {
    s.chars()
        .position(|c| c.is_control())
        .map(|index| index + 1)
}

// ---------------------------------------------------------------------------------------------
// Secret
// ---------------------------------------------------------------------------------------------

/// A string that must never be logged. `Debug` and `Display` print `<redacted>`; read the value
/// with [`Secret::expose`], which is easy to grep for in review.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Only pass it to the encoder that sends it to wpa_supplicant.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: overwrite the heap buffer before it is freed. Not a guarantee (earlier
        // copies may exist), but it keeps the value out of freed memory in the common case.
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}

// ---------------------------------------------------------------------------------------------
// SSID
// ---------------------------------------------------------------------------------------------

/// An SSID: 1 to 32 arbitrary bytes (not necessarily UTF-8).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssid(Vec<u8>);

impl Ssid {
    /// Longest SSID allowed by IEEE 802.11.
    pub const MAX_LEN: usize = 32;

    /// An SSID from text (its UTF-8 bytes).
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        Self::from_bytes(text.as_bytes())
    }

    /// An SSID from raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ValidationError> {
        if bytes.is_empty() || bytes.len() > Self::MAX_LEN {
            return Err(ValidationError::SsidLength { len: bytes.len() });
        }
        Ok(Self(bytes.to_vec()))
    }

    /// An SSID from hex digits (as reported in `ssid_hex`).
    pub fn from_hex(hex_digits: &str) -> Result<Self, ValidationError> {
        let bytes = hex::decode(hex_digits.trim()).map_err(|_| ValidationError::SsidHex)?;
        Self::from_bytes(&bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex of the bytes; what the encoder sends to wpa_supplicant.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// The SSID as text, with invalid UTF-8 replaced by U+FFFD.
    pub fn to_string_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl fmt::Display for Ssid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl fmt::Debug for Ssid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ssid({:?})", self.to_string_lossy())
    }
}

// ---------------------------------------------------------------------------------------------
// Passphrase / SAE password / EAP
// ---------------------------------------------------------------------------------------------

/// A WPA-PSK credential: an 8–63 character printable-ASCII passphrase, or a raw 256-bit PSK as
/// exactly 64 hex digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase {
    secret: Secret,
    raw_psk: bool,
}

impl Passphrase {
    /// Validate a passphrase or a 64-hex-digit raw PSK.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        if input.len() == 64 && input.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Self {
                secret: Secret::new(input.to_ascii_lowercase()),
                raw_psk: true,
            });
        }
        if let Some(position) = input
            .chars()
            .position(|c| !(' '..='~').contains(&c))
            .map(|index| index + 1)
        {
            return Err(ValidationError::PassphraseCharacter { position });
        }
        if !(8..=63).contains(&input.len()) {
            return Err(ValidationError::PassphraseLength { len: input.len() });
        }
        Ok(Self {
            secret: Secret::new(input),
            raw_psk: false,
        })
    }

    /// `true` for a 64-hex-digit raw PSK, `false` for a passphrase.
    pub fn is_raw_psk(&self) -> bool {
        self.raw_psk
    }

    /// The passphrase or the raw PSK hex (lower case).
    pub fn expose(&self) -> &str {
        self.secret.expose()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A password checked as "1 to 255 bytes, no control characters" (the shared rule of
/// [`SaePassword`] and [`EapPassword`]).
fn check_password(input: &str, what: &'static str) -> Result<(), ValidationError> {
    if input.is_empty() || input.len() > 255 {
        return Err(ValidationError::Password {
            what,
            problem: format!("got {} bytes", input.len()),
        });
    }
    if let Some(position) = first_control(input) {
        return Err(ValidationError::Password {
            what,
            problem: format!("character {position} is a control character"),
        });
    }
    Ok(())
}

/// A WPA3 SAE password: 1 to 255 bytes, no control characters. Sent to wpa_supplicant as hex.
#[derive(Clone, PartialEq, Eq)]
pub struct SaePassword(Secret);

impl SaePassword {
    /// Validate an SAE password.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        if input.is_empty() || input.len() > 255 {
            return Err(ValidationError::SaePasswordLength { len: input.len() });
        }
        if let Some(position) = first_control(input) {
            return Err(ValidationError::SaePasswordCharacter { position });
        }
        Ok(Self(Secret::new(input)))
    }

    /// The password.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for SaePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An EAP identity or anonymous identity (outer identity): 1 to 255 bytes, no control
/// characters. Not secret, but sent as hex like every other user string.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EapIdentity(String);

impl EapIdentity {
    /// Validate an identity (`user@example.org`).
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        Self::parse_as(input, "identity")
    }

    /// Validate an anonymous (outer) identity (`anonymous@example.org`).
    pub fn parse_anonymous(input: &str) -> Result<Self, ValidationError> {
        Self::parse_as(input, "anonymous identity")
    }

    fn parse_as(input: &str, what: &'static str) -> Result<Self, ValidationError> {
        if input.is_empty() || input.len() > 255 {
            return Err(ValidationError::EapIdentity {
                what,
                problem: format!("got {} bytes", input.len()),
            });
        }
        if let Some(position) = first_control(input) {
            return Err(ValidationError::EapIdentity {
                what,
                problem: format!("character {position} is a control character"),
            });
        }
        Ok(Self(input.to_owned()))
    }

    /// The identity.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EapIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An EAP password or a private-key password: 1 to 255 bytes, no control characters.
#[derive(Clone, PartialEq, Eq)]
pub struct EapPassword(Secret);

impl EapPassword {
    /// Validate an EAP (phase 2) password.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        check_password(input, "EAP password")?;
        Ok(Self(Secret::new(input)))
    }

    /// Validate the password of an encrypted private key file.
    pub fn parse_key_password(input: &str) -> Result<Self, ValidationError> {
        check_password(input, "private key password")?;
        Ok(Self(Secret::new(input)))
    }

    /// The password.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for EapPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

// ---------------------------------------------------------------------------------------------
// BSSID
// ---------------------------------------------------------------------------------------------

/// A BSSID or any other 48-bit MAC address. Parses `aa:bb:cc:dd:ee:ff` or `AA-BB-CC-DD-EE-FF`;
/// displays (and serializes) as lower-case colon form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bssid(pub [u8; 6]);

impl Bssid {
    /// Parse six two-digit hex octets separated by all `:` or all `-`.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let error = || ValidationError::Bssid {
            input: shorten(input),
        };
        let bytes = input.as_bytes();
        if bytes.len() != 17 {
            return Err(error());
        }
        let separator = bytes[2];
        if separator != b':' && separator != b'-' {
            return Err(error());
        }
        let mut octets = [0u8; 6];
        for (index, octet) in octets.iter_mut().enumerate() {
            let start = index * 3;
            if index < 5 && bytes[start + 2] != separator {
                return Err(error());
            }
            let pair = &input[start..start + 2];
            if !pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(error());
            }
            *octet = u8::from_str_radix(pair, 16).map_err(|_| error())?;
        }
        Ok(Self(octets))
    }

    /// The six octets.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl From<[u8; 6]> for Bssid {
    fn from(octets: [u8; 6]) -> Self {
        Self(octets)
    }
}

impl FromStr for Bssid {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Bssid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for Bssid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bssid({self})")
    }
}

impl serde::Serialize for Bssid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Bssid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Bssid {
    fn schema_name() -> Cow<'static, str> {
        "Bssid".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "MAC address, six hex octets: aa:bb:cc:dd:ee:ff",
            "pattern": "^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$"
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Hosts, paths, country
// ---------------------------------------------------------------------------------------------

/// A DNS host name: letters, digits, `-` and `.`; labels of 1–63 characters that neither start
/// nor end with `-`; at most 253 characters. A single trailing dot is accepted and dropped.
/// It can never start with `-`, so it is safe as an argument to `ping` and friends.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Hostname(String);

impl Hostname {
    /// Validate a DNS name (not an IP literal).
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let error = |problem| ValidationError::Host {
            input: shorten(input),
            problem,
        };
        let name = input.strip_suffix('.').unwrap_or(input);
        if name.is_empty() {
            return Err(error("it is empty"));
        }
        if name.len() > 253 {
            return Err(error("it is longer than 253 characters"));
        }
        for label in name.split('.') {
            if label.is_empty() {
                return Err(error(
                    "it has an empty label (two dots in a row or a leading dot)",
                ));
            }
            if label.len() > 63 {
                return Err(error("a label is longer than 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(error(
                    "it contains a character other than a-z, 0-9, '-' and '.'",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(error("a label starts or ends with '-'"));
            }
        }
        Ok(Self(name.to_ascii_lowercase()))
    }

    /// The name, lower case, without a trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A target for DNS, ping or HTTP checks: an IP literal or a DNS name.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Host {
    /// An IPv4 or IPv6 address (`[::1]` brackets are accepted on input).
    Ip(IpAddr),
    /// A DNS name.
    Name(Hostname),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => write!(f, "{name}"),
        }
    }
}

/// Validate a host for DNS/ping targets: an IP literal or a DNS name (see [`Hostname`]).
pub fn host(input: &str) -> Result<Host, ValidationError> {
    let unbracketed = input
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(input);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    Hostname::parse(input).map(Host::Name)
}

/// An absolute path to a certificate or key file: no `..`, no control characters, ≤ 4096 bytes,
/// valid UTF-8. Sent to wpa_supplicant as hex.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FilePath(PathBuf);

impl FilePath {
    /// Validate a path.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let error = |problem| ValidationError::FilePath {
            input: shorten(input),
            problem,
        };
        if input.len() > 4096 {
            return Err(error("it is longer than 4096 bytes"));
        }
        if first_control(input).is_some() {
            return Err(error("it contains a control character"));
        }
        let path = Path::new(input);
        if !path.is_absolute() {
            return Err(error("it is not absolute"));
        }
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(error("it contains a '..' component"));
        }
        Ok(Self(path.to_path_buf()))
    }

    /// The path.
    pub fn as_path(&self) -> &Path {
        &self.0
    }

    /// The path as text (always valid UTF-8 by construction).
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

/// A regulatory country code: two upper-case ASCII letters, or `00` (world).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Validate a country code (`DE`, `US`, `00`).
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let bytes = input.as_bytes();
        let ok =
            bytes.len() == 2 && (bytes.iter().all(|b| b.is_ascii_uppercase()) || bytes == b"00");
        if !ok {
            return Err(ValidationError::Country {
                input: shorten(input),
            });
        }
        Ok(Self([bytes[0], bytes[1]]))
    }

    /// The two letters.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("00")
    }
}

/// A network interface name as the kernel allows it (IFNAMSIZ - 1 bytes, no `/`, `:` or
/// whitespace, not `.` or `..`), and also free of quotes, `*?[` and `$` so it is safe in a file
/// name, a systemd instance name and a udev rule. Phy names (`phy0`) pass too.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct IfaceName(String);

impl IfaceName {
    /// Validate an interface name.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let ok = (1..=15).contains(&input.len())
            && input != "."
            && input != ".."
            && input
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"/:\"'`*?[]$%\\{}".contains(&b));
        if !ok {
            return Err(ValidationError::IfaceName {
                input: shorten(input),
            });
        }
        Ok(Self(input.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for IfaceName {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Why a password is not an SAE-PK password ([`sae_pk_password`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaePkPasswordError {
    /// Not groups of four base32 characters joined by `-`, at least three groups.
    Format,
    /// The last character is not the checksum of the others.
    Checksum,
    /// The first characters of the groups disagree in the Sec bit (bit 4).
    SecBit,
}

impl fmt::Display for SaePkPasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SaePkPasswordError::Format => {
                "an SAE-PK password is groups of four lowercase base32 characters (a-z, 2-7) \
                 joined by '-', at least three groups (like abcd-efgh-ijkl)"
            }
            SaePkPasswordError::Checksum => {
                "its last character is not the checksum of the others (a typo?)"
            }
            SaePkPasswordError::SecBit => {
                "its groups' first characters disagree in the Sec bit, so it was not made by an \
                 SAE-PK key generator"
            }
        })
    }
}

/// The SAE-PK password alphabet: RFC 4648 base32, lowercase.
const SAE_PK_BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The permutation of the SAE-PK checksum (IEEE 802.11, the Verhoeff-style check character of
/// an SAE-PK password, as hostap's src/common/sae_pk.c uses it).
const SAE_PK_PERM: [u8; 32] = [
    7, 2, 1, 30, 16, 20, 27, 11, 31, 6, 8, 13, 29, 5, 10, 21, 22, 3, 24, 0, 23, 25, 12, 9, 28, 14,
    4, 15, 17, 18, 19, 26,
];

/// Product in the dihedral group D16: 0-15 are the rotations, 16-31 the reflections.
fn d16_mul(a: u8, b: u8) -> u8 {
    let (i, j) = (a % 16, b % 16);
    match (a < 16, b < 16) {
        (true, true) => (i + j) % 16,
        (true, false) => 16 + (i + j) % 16,
        (false, true) => 16 + (i + 16 - j) % 16,
        (false, false) => (i + 16 - j) % 16,
    }
}

/// The check character of `body` (base32 characters and separators, last one first).
fn sae_pk_check_char(body: &[u8]) -> u8 {
    let mut val = 0u8;
    let mut iter = 1;
    for &c in body.iter().rev() {
        let Some(mut p) = SAE_PK_BASE32.iter().position(|&x| x == c).map(|p| p as u8) else {
            continue;
        };
        for _ in 0..iter {
            p = SAE_PK_PERM[p as usize];
        }
        iter += 1;
        val = d16_mul(val, p);
    }
    let inv = if val > 0 && val < 16 { 16 - val } else { val };
    SAE_PK_BASE32[inv as usize]
}

/// Whether `input` is an SAE-PK password (the fingerprint of an AP's public key, IEEE 802.11
/// 12.4.7.x): groups of four base32 characters joined by `-`, at least three, the last
/// character a checksum of the others, each group's first character carrying the same Sec bit.
/// The same test as wpa_supplicant's `sae_pk_valid_password`, which decides whether
/// `sae_pk=0` (automatic) tries SAE-PK with an AP that offers it.
pub fn sae_pk_password(input: &str) -> Result<(), SaePkPasswordError> {
    let pw = input.as_bytes();
    if pw.len() < 14 || pw.len() % 5 != 4 {
        return Err(SaePkPasswordError::Format);
    }
    let value = |c: u8| SAE_PK_BASE32.iter().position(|&x| x == c).map(|p| p as u8);
    for (pos, &c) in pw.iter().enumerate() {
        let ok = if pos % 5 == 4 {
            c == b'-'
        } else {
            value(c).is_some()
        };
        if !ok {
            return Err(SaePkPasswordError::Format);
        }
    }
    if pw[pw.len() - 1] != sae_pk_check_char(&pw[..pw.len() - 1]) {
        return Err(SaePkPasswordError::Checksum);
    }
    let sec = |i: usize| value(pw[i]).unwrap_or(0) & 0x10;
    if (5..pw.len()).step_by(5).any(|i| sec(i) != sec(0)) {
        return Err(SaePkPasswordError::SecBit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sae_pk_passwords_are_recognised_by_format_checksum_and_sec_bit() {
        // hostap's test vectors (src/common/common_module_tests.c, tests/hwsim/test_sae_pk.py)
        // and the lab's saepk AP's password
        for pw in [
            "a2bc-de3f-ghim",
            "aaaa-aaaa-aaaj",
            "7777-7777-777f",
            "r6cr-6ksa-56og",
            "r6cr-6ksa-56oo-5557",
            "r6cr-6ksa-56oo-555p-wi44",
            "r6cr-6ksa-56oo-555p-wi4b-vghv-vwrp-taq5-4zfa-ye35-4rny-5yqz",
            "4zsy-uspe-xbfr-3ifo",
            "vluk-umpa-3mbw-zrhe-s2n2",
            "hbbi-f4xq-b457-jjew-muei",
            "7hda-6lh3-3x5h",
        ] {
            assert_eq!(sae_pk_password(pw), Ok(()), "{pw}");
        }
        use SaePkPasswordError::*;
        for (pw, why) in [
            ("a2bc-de3f-ghim-", Format),
            ("a2bcde3fghim", Format),
            ("", Format),
            ("correct horse 5", Format),
            ("abcd-efgh", Format),
            ("A2BC-DE3F-GHIM", Format),
            ("a2bc-de3f-gh1m", Format),
            ("a2bc_de3f-ghim", Format),
            // one character changed: the checksum catches it
            ("7hda-6lh3-3x5g", Checksum),
            ("7hda-6lh4-3x5h", Checksum),
        ] {
            assert_eq!(sae_pk_password(pw), Err(why), "{pw}");
        }
        // The Sec bit: 'a' (0) and 'q' (16) differ in bit 4; a matching checksum is made here.
        let body = "aaaa-qaaa-aaa";
        let pw = format!("{body}{}", sae_pk_check_char(body.as_bytes()) as char);
        assert_eq!(sae_pk_password(&pw), Err(SecBit), "{pw}");
    }

    #[test]
    fn iface_names_are_what_the_kernel_and_udev_can_carry() {
        for ok in ["wlp6s0", "wlan0", "phy12", "wlx001122334455", "a"] {
            assert_eq!(IfaceName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            ".",
            "..",
            "wl/an0",
            "wl an0",
            "wlan0:1",
            "sixteen-chars-xx",
            "w\"x",
            "w$x",
            "w*",
            "w\nx",
            "wé",
        ] {
            let e = IfaceName::parse(bad).unwrap_err();
            assert!(
                e.to_string().contains("not an interface name"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn ssid_lengths() {
        assert!(Ssid::parse("").is_err());
        assert!(Ssid::parse("a").is_ok());
        assert!(Ssid::from_bytes(&[0xff; 32]).is_ok());
        let err = Ssid::from_bytes(&[0; 33]).unwrap_err();
        assert_eq!(err, ValidationError::SsidLength { len: 33 });
        assert!(err.to_string().contains("1 to 32 bytes"));
        // 11 three-byte characters = 33 bytes.
        assert!(Ssid::parse(&"€".repeat(11)).is_err());
        assert!(Ssid::parse(&"€".repeat(10)).is_ok());
    }

    #[test]
    fn ssid_hostile_bytes_are_kept_exactly() {
        let raw = b"a\"b\nc\0d \\e";
        let ssid = Ssid::from_bytes(raw).unwrap();
        assert_eq!(ssid.as_bytes(), raw);
        assert_eq!(ssid.to_hex(), hex::encode(raw));
        assert_eq!(Ssid::from_hex(&ssid.to_hex()).unwrap(), ssid);
        assert!(Ssid::from_hex("abc").is_err());
        assert!(Ssid::from_hex("zz").is_err());
        assert!(Ssid::from_hex("").is_err());
        let binary = Ssid::from_bytes(&[0x80; 32]).unwrap();
        assert_eq!(binary.to_string().chars().count(), 32);
    }

    #[test]
    fn passphrase_lengths() {
        assert!(matches!(
            Passphrase::parse("1234567"),
            Err(ValidationError::PassphraseLength { len: 7 })
        ));
        assert!(Passphrase::parse("12345678").is_ok());
        assert!(Passphrase::parse(&"x".repeat(63)).is_ok());
        assert!(matches!(
            Passphrase::parse(&"x".repeat(64)),
            Err(ValidationError::PassphraseLength { len: 64 })
        ));
        let raw = Passphrase::parse(&"aB".repeat(32)).unwrap();
        assert!(raw.is_raw_psk());
        assert_eq!(raw.expose(), "ab".repeat(32));
        assert!(Passphrase::parse(&"a".repeat(65)).is_err());
        assert!(Passphrase::parse(&"0".repeat(65)).is_err());
        assert!(!Passphrase::parse("pass\"word 1").unwrap().is_raw_psk());
    }

    #[test]
    fn passphrase_characters() {
        assert!(matches!(
            Passphrase::parse("pässword1"),
            Err(ValidationError::PassphraseCharacter { position: 2 })
        ));
        assert!(Passphrase::parse("password\n").is_err());
        assert!(Passphrase::parse("pass\0word").is_err());
        assert!(Passphrase::parse("pass\tword").is_err());
        assert!(Passphrase::parse(" ~!\"#$%&'()*+,-./").is_ok());
    }

    #[test]
    fn secrets_are_redacted() {
        let pass = Passphrase::parse("hunter2hunter2").unwrap();
        assert_eq!(format!("{pass:?}"), "<redacted>");
        assert_eq!(format!("{pass}"), "<redacted>");
        let sae = SaePassword::parse("hunter2").unwrap();
        assert_eq!(format!("{sae:?}"), "<redacted>");
        let eap = EapPassword::parse("hunter2").unwrap();
        assert_eq!(format!("{eap:?}"), "<redacted>");
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "<redacted> <redacted>");
        assert_eq!(secret.expose(), "hunter2");
        // Errors never include the value.
        let err = Passphrase::parse("hunter2").unwrap_err().to_string();
        assert!(!err.contains("hunter2"));
        let err = EapPassword::parse("hunter\n2").unwrap_err().to_string();
        assert!(!err.contains("hunter"));
    }

    #[test]
    fn sae_password_rules() {
        assert!(SaePassword::parse("").is_err());
        assert!(SaePassword::parse("x").is_ok());
        assert!(SaePassword::parse("ünïcødé \"quoted\"").is_ok());
        assert!(SaePassword::parse(&"x".repeat(255)).is_ok());
        assert!(SaePassword::parse(&"x".repeat(256)).is_err());
        assert!(matches!(
            SaePassword::parse("ab\ncd"),
            Err(ValidationError::SaePasswordCharacter { position: 3 })
        ));
        assert!(SaePassword::parse("ab\0").is_err());
    }

    #[test]
    fn bssid_forms() {
        let b = Bssid::parse("AA:bb:0C:dd:EE:ff").unwrap();
        assert_eq!(b.to_string(), "aa:bb:0c:dd:ee:ff");
        assert_eq!(Bssid::parse("aa-bb-0c-dd-ee-ff").unwrap(), b);
        assert_eq!(Bssid::from([0xaa, 0xbb, 0x0c, 0xdd, 0xee, 0xff]), b);
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb-cc:dd:ee:ff",
            "aa:bb:cc:dd:ee:gg",
            "aabb.ccdd.eeff00",
            "+a:bb:cc:dd:ee:ff",
            "aa:bb:cc:dd:ee:f\u{e9}",
        ] {
            assert!(Bssid::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"aa:bb:0c:dd:ee:ff\"");
        let back: Bssid = serde_json::from_str("\"AA-BB-0C-DD-EE-FF\"").unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn hosts() {
        assert_eq!(
            host("1.1.1.1").unwrap(),
            Host::Ip("1.1.1.1".parse().unwrap())
        );
        assert_eq!(host("[::1]").unwrap(), Host::Ip("::1".parse().unwrap()));
        assert_eq!(host("Example.COM.").unwrap().to_string(), "example.com");
        assert!(host("a-b.c").is_ok());
        assert!(host(&format!("{}.com", "a".repeat(63))).is_ok());
        for bad in [
            "",
            ".",
            "-rf",
            "a..b",
            ".a",
            "a-.b",
            "exa mple.com",
            "a;b",
            "a\nb",
            "under_score.com",
            "ü.de",
        ] {
            assert!(host(bad).is_err(), "{bad:?} accepted");
        }
        assert!(host(&format!("{}.com", "a".repeat(64))).is_err());
        let long = ["abcdefghi"; 26].join(".");
        assert!(long.len() > 253);
        assert!(host(&long).is_err());
    }

    #[test]
    fn eap_values() {
        assert!(EapIdentity::parse("user@example.org").is_ok());
        assert!(EapIdentity::parse("").is_err());
        assert!(EapIdentity::parse("a\nb").is_err());
        assert!(EapIdentity::parse_anonymous("anonymous@x").is_ok());
        assert!(EapPassword::parse_key_password("k").is_ok());
        assert!(EapPassword::parse(&"x".repeat(256)).is_err());
    }

    #[test]
    fn file_paths() {
        assert!(FilePath::parse("/etc/ssl/ca.pem").is_ok());
        assert!(FilePath::parse("ca.pem").is_err());
        assert!(FilePath::parse("/etc/../root/key").is_err());
        assert!(FilePath::parse("/etc/a\nb").is_err());
        assert_eq!(
            FilePath::parse("/a b/\"c\"").unwrap().as_str(),
            "/a b/\"c\""
        );
    }

    #[test]
    fn countries() {
        assert_eq!(CountryCode::parse("DE").unwrap().as_str(), "DE");
        assert!(CountryCode::parse("00").is_ok());
        assert!(CountryCode::parse("de").is_err());
        assert!(CountryCode::parse("DEU").is_err());
        assert!(CountryCode::parse("D\n").is_err());
    }
}
