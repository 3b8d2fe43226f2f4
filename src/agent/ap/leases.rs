//! busybox udhcpd's lease file, read defensively: it is written by a box process from what a
//! (possibly hostile) client sent in its DHCP request, so every field is bounded, addresses
//! outside the pool are dropped and host names are cleaned.
//!
//! The format (busybox `networking/udhcp/dhcpd.c`, `write_leases`): an 8-byte big-endian Unix
//! time (when the file was written), then one 36-byte `struct dyn_lease` per lease — `expires`
//! (u32, big-endian: seconds left when written), `lease_nip` (the address, network order),
//! `lease_mac[6]`, `hostname[20]` (NUL-padded, not necessarily terminated), 2 bytes of padding.

use std::net::Ipv4Addr;

use schemars::JsonSchema;
use serde::Serialize;

use crate::validate::Bssid;

/// One record's size.
pub const RECORD: usize = 36;
/// The header (the time the file was written).
pub const HEADER: usize = 8;
/// The most of the file read ([`HEADER`] + 256 records, more than udhcpd's `max_leases`).
pub const MAX_FILE: usize = HEADER + 256 * RECORD;

/// A lease udhcpd granted (or offered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DhcpLease {
    /// The client's MAC address.
    pub mac: String,
    /// The address it was given.
    pub ip: String,
    /// The host name it sent (cleaned: letters, digits, `-`, `_`, `.`; others become `_`).
    pub hostname: Option<String>,
    /// Seconds left on the lease when udhcpd last wrote its file.
    pub remaining_s: u32,
}

/// The leases in `bytes` (at most [`MAX_FILE`] of them are looked at) whose address lies in
/// `start..=end`; a record cut short at the end is ignored.
pub fn parse(bytes: &[u8], start: Ipv4Addr, end: Ipv4Addr) -> Vec<DhcpLease> {
    let bytes = &bytes[..bytes.len().min(MAX_FILE)];
    let Some(body) = bytes.get(HEADER..) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for r in body.chunks_exact(RECORD) {
        let remaining_s = u32::from_be_bytes([r[0], r[1], r[2], r[3]]);
        let ip = Ipv4Addr::new(r[4], r[5], r[6], r[7]);
        if ip.is_unspecified() || ip < start || ip > end {
            continue;
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&r[8..14]);
        let name = &r[14..34];
        let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
        let hostname: String = name
            .iter()
            .map(|&b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                    b as char
                } else {
                    '_'
                }
            })
            .collect();
        out.push(DhcpLease {
            mac: Bssid::from(mac).to_string(),
            ip: ip.to_string(),
            hostname: (!hostname.is_empty()).then_some(hostname),
            remaining_s,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 100);
    const E: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 199);

    fn record(left: u32, ip: [u8; 4], mac: [u8; 6], name: &[u8]) -> Vec<u8> {
        let mut r = left.to_be_bytes().to_vec();
        r.extend(ip);
        r.extend(mac);
        let mut n = [0u8; 20];
        n[..name.len().min(20)].copy_from_slice(&name[..name.len().min(20)]);
        r.extend(n);
        r.extend([0, 0]);
        assert_eq!(r.len(), RECORD);
        r
    }

    #[test]
    fn reads_records_and_cleans_what_a_client_sent() {
        let mut f = 1_700_000_000u64.to_be_bytes().to_vec();
        f.extend(record(
            3599,
            [192, 168, 77, 100],
            [2, 0, 0, 0, 2, 0],
            b"phone",
        ));
        f.extend(record(
            10,
            [192, 168, 77, 150],
            [2, 0, 0, 0, 3, 0],
            b"a\nb;rm -rf /\x1b[31m",
        ));
        f.extend(record(10, [10, 0, 0, 1], [2, 0, 0, 0, 4, 0], b"outside"));
        f.extend(record(10, [0, 0, 0, 0], [2, 0, 0, 0, 5, 0], b"none"));
        f.extend(record(
            10,
            [192, 168, 77, 101],
            [2, 0, 0, 0, 6, 0],
            &[b'x'; 20],
        ));
        f.extend(record(10, [192, 168, 77, 102], [2, 0, 0, 0, 7, 0], b""));
        f.extend(&record(1, [192, 168, 77, 103], [2, 0, 0, 0, 8, 0], b"cut")[..20]);
        let l = parse(&f, S, E);
        assert_eq!(l.len(), 4, "{l:?}");
        assert_eq!(l[0].mac, "02:00:00:00:02:00");
        assert_eq!(l[0].ip, "192.168.77.100");
        assert_eq!(l[0].hostname.as_deref(), Some("phone"));
        assert_eq!(l[0].remaining_s, 3599);
        assert_eq!(l[1].hostname.as_deref(), Some("a_b_rm_-rf____31m"));
        assert_eq!(l[2].hostname.as_deref(), Some("xxxxxxxxxxxxxxxxxxxx"));
        assert_eq!(l[3].hostname, None);
    }

    #[test]
    fn short_empty_random_and_huge_files_are_harmless() {
        assert!(parse(&[], S, E).is_empty());
        assert!(parse(&[1, 2, 3], S, E).is_empty());
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..400 {
            let v: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            for l in parse(&v, S, E) {
                assert!(l.hostname.is_none_or(|h| h.len() <= 20 && h.is_ascii()));
            }
        }
        let mut big = vec![0u8; HEADER];
        for _ in 0..10_000 {
            big.extend(record(5, [192, 168, 77, 120], [2; 6], b"h"));
        }
        assert_eq!(parse(&big, S, E).len(), 256);
    }
}
