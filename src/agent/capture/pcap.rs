//! The classic pcap file format (what `tcpdump -r` reads), written by hand: a 24-byte file
//! header, then a 16-byte record header before each frame. Microsecond timestamps, little
//! endian (the magic number tells a reader the byte order), link type Ethernet — a WiFi
//! station's netdev hands its frames to packet sockets as Ethernet frames.

use std::time::{SystemTime, UNIX_EPOCH};

/// The longest frame kept whole; longer ones are cut (the record keeps their real length).
pub const SNAPLEN: u32 = 65535;
/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// `LINKTYPE_IEEE802_11_RADIOTAP`: 802.11 frames behind a radiotap header (monitor mode).
pub const LINKTYPE_IEEE802_11_RADIOTAP: u32 = 127;
/// Bytes of the file header.
pub const FILE_HEADER: usize = 24;
/// Bytes of each record's header.
pub const RECORD_HEADER: usize = 16;

/// A pcap file being written in memory.
#[derive(Debug, Clone)]
pub struct Writer {
    buf: Vec<u8>,
    records: u32,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    /// A file with its header and no records.
    pub fn new() -> Self {
        Self::with_linktype(LINKTYPE_ETHERNET)
    }

    /// A file of another link type.
    pub fn with_linktype(linktype: u32) -> Self {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic (microseconds)
        buf.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&0i32.to_le_bytes()); // thiszone: UTC
        buf.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        buf.extend_from_slice(&SNAPLEN.to_le_bytes());
        buf.extend_from_slice(&linktype.to_le_bytes());
        Writer { buf, records: 0 }
    }

    /// The file's size if `frame` were added (cut at [`SNAPLEN`]).
    pub fn len_with(&self, frame: &[u8]) -> usize {
        self.buf.len() + RECORD_HEADER + frame.len().min(SNAPLEN as usize)
    }

    /// Add one frame seen at `at`, `orig_len` bytes long on the wire (`frame` may be shorter).
    pub fn push(&mut self, at: SystemTime, frame: &[u8], orig_len: usize) {
        let kept = &frame[..frame.len().min(SNAPLEN as usize)];
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        self.buf
            .extend_from_slice(&(since.as_secs() as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&since.subsec_micros().to_le_bytes());
        self.buf
            .extend_from_slice(&(kept.len() as u32).to_le_bytes());
        let orig = orig_len.max(kept.len()).min(u32::MAX as usize) as u32;
        self.buf.extend_from_slice(&orig.to_le_bytes());
        self.buf.extend_from_slice(kept);
        self.records += 1;
    }

    /// The file so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// How many records it holds.
    pub fn records(&self) -> u32 {
        self.records
    }

    /// The file.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn header_and_records_are_laid_out_as_libpcap_reads_them() {
        let mut w = Writer::new();
        assert_eq!(w.bytes().len(), FILE_HEADER);
        assert_eq!(&w.bytes()[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&w.bytes()[20..24], &1u32.to_le_bytes());
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_000);
        let frame = [0xaau8; 60];
        assert_eq!(w.len_with(&frame), FILE_HEADER + RECORD_HEADER + 60);
        w.push(at, &frame, 1514);
        let b = w.bytes();
        assert_eq!(b.len(), FILE_HEADER + RECORD_HEADER + 60);
        assert_eq!(&b[24..28], &1_700_000_000u32.to_le_bytes());
        assert_eq!(&b[28..32], &123_456u32.to_le_bytes());
        assert_eq!(&b[32..36], &60u32.to_le_bytes());
        assert_eq!(&b[36..40], &1514u32.to_le_bytes());
        assert_eq!(w.records(), 1);
    }

    #[test]
    fn an_oversized_frame_is_cut_at_the_snaplen() {
        let mut w = Writer::new();
        let big = vec![0u8; SNAPLEN as usize + 100];
        w.push(SystemTime::now(), &big, big.len());
        assert_eq!(
            w.bytes().len(),
            FILE_HEADER + RECORD_HEADER + SNAPLEN as usize
        );
        assert_eq!(&w.bytes()[32..36], &SNAPLEN.to_le_bytes());
        assert_eq!(&w.bytes()[36..40], &(SNAPLEN + 100).to_le_bytes());
    }
}
