//! wpa_supplicant's text escaping.
//!
//! SSIDs in `STATUS`, `BSS`, `LIST_NETWORKS` and events are printed with `printf_encode`:
//! `\\`, `\"`, `\e`, `\n`, `\r`, `\t` for those bytes, the byte itself for printable ASCII
//! (0x20–0x7e) and `\xNN` for everything else (including every non-ASCII UTF-8 byte).
//! [`printf_decode`] turns that back into bytes; [`printf_encode`] is the same escaping in
//! Rust, used by tests to prove the round trip.
//!
//! String fields read with `GET_NETWORK` come either quoted (`"text"`, printable) or as bare
//! hex; [`decode_config_string`] handles both.

/// Escape bytes exactly as wpa_supplicant's `printf_encode` does.
pub fn printf_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x1b => out.push_str("\\e"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out
}

/// Decode `printf_encode` output (also accepts octal `\NNN`, like wpa_supplicant's own
/// `printf_decode`). Unknown escapes are kept literally; never panics.
pub fn printf_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte != b'\\' || i + 1 >= bytes.len() {
            out.push(byte);
            i += 1;
            continue;
        }
        let escape = bytes[i + 1];
        i += 2;
        match escape {
            b'\\' => out.push(b'\\'),
            b'"' => out.push(b'"'),
            b'\'' => out.push(b'\''),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'e' => out.push(0x1b),
            b'x' => {
                let digits = bytes[i..]
                    .iter()
                    .take(2)
                    .take_while(|b| b.is_ascii_hexdigit())
                    .count();
                if digits == 0 {
                    out.extend_from_slice(b"\\x");
                } else {
                    let value = bytes[i..i + digits]
                        .iter()
                        .fold(0u8, |acc, &d| acc * 16 + hex_value(d));
                    out.push(value);
                    i += digits;
                }
            }
            b'0'..=b'7' => {
                let mut value = u32::from(escape - b'0');
                let mut taken = 0;
                while taken < 2 && i < bytes.len() && (b'0'..=b'7').contains(&bytes[i]) {
                    value = value * 8 + u32::from(bytes[i] - b'0');
                    i += 1;
                    taken += 1;
                }
                out.push((value & 0xff) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    out
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// Decode a `GET_NETWORK` string value: `"text"` (taken verbatim between the first and the
/// last quote, as wpa_supplicant writes it) or an even number of hex digits.
/// Returns `None` for anything else (`FAIL`, `*`, odd hex).
pub fn decode_config_string(reply: &str) -> Option<Vec<u8>> {
    let reply = reply.strip_suffix('\n').unwrap_or(reply);
    if let Some(inner) = reply
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        return Some(inner.as_bytes().to_vec());
    }
    if reply.is_empty() || !reply.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    hex::decode(reply).ok()
}

/// Read a double-quoted, printf-escaped string at the start of `text` (which must start with
/// `"`). Returns the decoded bytes and the rest after the closing quote. If the closing quote
/// is missing, everything after the opening quote is taken.
pub fn take_quoted(text: &str) -> Option<(Vec<u8>, &str)> {
    let body = text.strip_prefix('"')?;
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some((printf_decode(&body[..i]), &body[i + 1..])),
            _ => i += 1,
        }
    }
    Some((printf_decode(body), ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_matches_wpa_supplicant() {
        assert_eq!(printf_encode(b"plain"), "plain");
        assert_eq!(
            printf_encode(b"a\"b\\c\x1bd\ne\rf\tg\0h\x7f"),
            "a\\\"b\\\\c\\ed\\ne\\rf\\tg\\x00h\\x7f"
        );
        assert_eq!(printf_encode("é".as_bytes()), "\\xc3\\xa9");
    }

    #[test]
    fn decode_all_escapes() {
        assert_eq!(
            printf_decode("a\\\"b\\\\c\\ed\\ne\\rf\\tg\\x00h\\x7f"),
            b"a\"b\\c\x1bd\ne\rf\tg\0h\x7f"
        );
        assert_eq!(printf_decode("\\xc3\\xa9"), "é".as_bytes());
        assert_eq!(printf_decode("\\101\\0"), b"A\0");
        assert_eq!(printf_decode("\\xA"), b"\n");
        // Malformed input: kept, no panic.
        assert_eq!(printf_decode("\\"), b"\\");
        assert_eq!(printf_decode("\\x"), b"\\x");
        assert_eq!(printf_decode("\\xg"), b"\\xg");
        assert_eq!(printf_decode("\\q"), b"\\q");
        assert_eq!(printf_decode("\\777"), [0xff]);
    }

    #[test]
    fn config_strings() {
        assert_eq!(decode_config_string("\"a\"b\"").unwrap(), b"a\"b");
        assert_eq!(decode_config_string("2220410a").unwrap(), b"\" A\n");
        assert_eq!(decode_config_string("\"\"").unwrap(), b"");
        assert_eq!(decode_config_string("FAIL\n"), None);
        assert_eq!(decode_config_string("*"), None);
        assert_eq!(decode_config_string("abc"), None);
        assert_eq!(decode_config_string("\""), None);
    }

    #[test]
    fn quoted() {
        let (value, rest) = take_quoted("\"a\\\"b\" auth_failures=1").unwrap();
        assert_eq!(value, b"a\"b");
        assert_eq!(rest, " auth_failures=1");
        let (value, rest) = take_quoted("\"unterminated\\").unwrap();
        assert_eq!(value, b"unterminated\\");
        assert_eq!(rest, "");
        assert!(take_quoted("noquote").is_none());
    }
}
