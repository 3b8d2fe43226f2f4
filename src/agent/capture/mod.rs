//! Packet capture on the box's WiFi interface (`wifi_capture`, `wifi_capture_start` /
//! `wifi_capture_stop`): an `AF_PACKET` socket bound to that one interface, bounded by time,
//! packets and bytes, written as a pcap file ([`pcap`]) with a summary ([`decode`]).
//!
//! No tcpdump or libpcap in the box: a packet socket is a `socket`/`bind`/`recvfrom`, and the
//! pcap format is 24 + 16 bytes of headers. The box already holds `CAP_NET_RAW` in its own
//! namespaces (udhcpc opens the same kind of socket): a capture sees only the box's own
//! interface, and gives the box nothing new on the host.
//!
//! EAPOL: with nl80211's control port (mac80211 has it, wpa_supplicant 2.10 uses it by default)
//! the 4-way handshake never passes the netdev, and a packet socket sees none of it. The
//! supervisor runs wpa_supplicant with `driver_param=control_port=0`
//! ([`crate::agent::supervisor`]), so EAPOL goes over the interface as before nl80211 had a
//! control port.
//!
//! Filters are applied in the agent (each frame is decoded anyway for the summary): the caps
//! count only the frames the filter keeps; `frames_seen` counts all.

pub mod decode;
pub mod dot11;
pub mod monitor;
pub mod pcap;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use schemars::JsonSchema;
use serde::Serialize;
use tokio::io::unix::AsyncFd;
use tokio_util::sync::CancellationToken;

use decode::{Decoded, Proto, Summarizer, Summary};

use super::failure::{Code, Failure};

/// Which frames a capture keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Every frame.
    All,
    /// 802.1X / EAPOL (EtherType 0x888e).
    Eapol,
    /// DHCP (UDP 67/68).
    Dhcp,
    /// DNS (UDP or TCP port 53).
    Dns,
    /// ARP.
    Arp,
    /// ICMP and ICMPv6.
    Icmp,
    /// TCP to or from this port.
    Tcp(u16),
    /// Management frames (monitor mode only).
    Mgmt,
}

impl Filter {
    /// `eapol`, `dhcp`, `dns`, `arp`, `icmp`, `tcp:PORT` (1-65535), or nothing for every frame.
    pub fn parse(s: Option<&str>) -> Result<Filter, Failure> {
        let Some(s) = s else { return Ok(Filter::All) };
        Ok(match s {
            "eapol" => Filter::Eapol,
            "dhcp" => Filter::Dhcp,
            "dns" => Filter::Dns,
            "arp" => Filter::Arp,
            "icmp" => Filter::Icmp,
            _ => match s.strip_prefix("tcp:").map(str::parse::<u16>) {
                Some(Ok(p)) if p > 0 => Filter::Tcp(p),
                _ => {
                    return Err(Failure::invalid(format!(
                        "filter must be eapol, dhcp, dns, arp, icmp or tcp:PORT (1-65535), got {:?}",
                        s.chars().take(40).collect::<String>()
                    )));
                }
            },
        })
    }

    /// The filter of a monitor capture: `mgmt`, `eapol`, or nothing for every frame.
    pub fn parse_monitor(s: Option<&str>) -> Result<Filter, Failure> {
        match s {
            None => Ok(Filter::All),
            Some("mgmt") => Ok(Filter::Mgmt),
            Some("eapol") => Ok(Filter::Eapol),
            Some(s) => Err(Failure::invalid(format!(
                "filter for interface monitor must be mgmt or eapol (or none), got {:?}",
                s.chars().take(40).collect::<String>()
            ))),
        }
    }

    /// Whether the filter keeps this 802.11 frame (monitor mode).
    pub fn keeps_air(&self, f: &dot11::Frame) -> bool {
        match self {
            Filter::All => true,
            Filter::Mgmt => f.is_mgmt(),
            Filter::Eapol => f.eapol,
            _ => false,
        }
    }

    /// The filter as given.
    pub fn name(&self) -> String {
        match self {
            Filter::All => "all".into(),
            Filter::Eapol => "eapol".into(),
            Filter::Dhcp => "dhcp".into(),
            Filter::Dns => "dns".into(),
            Filter::Arp => "arp".into(),
            Filter::Icmp => "icmp".into(),
            Filter::Tcp(p) => format!("tcp:{p}"),
            Filter::Mgmt => "mgmt".into(),
        }
    }

    /// Whether the filter keeps this frame.
    pub fn keeps(&self, d: &Decoded) -> bool {
        match self {
            Filter::All => true,
            Filter::Eapol => d.proto == Proto::Eapol,
            Filter::Dhcp => d.proto == Proto::Dhcp,
            Filter::Dns => d.proto == Proto::Dns,
            Filter::Arp => d.proto == Proto::Arp,
            Filter::Icmp => d.proto == Proto::Icmp,
            Filter::Tcp(p) => d.tcp_ports.is_some_and(|(s, t)| s == *p || t == *p),
            Filter::Mgmt => false,
        }
    }
}

/// A capture's bounds (validated by the tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Stop after this long.
    pub duration: Duration,
    /// Stop after this many frames kept.
    pub max_packets: u32,
    /// Stop before the pcap file would grow past this many bytes.
    pub max_bytes: usize,
}

/// Where a running capture stands, told once a second (the tools' MCP progress).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Whole seconds since it started.
    pub elapsed_s: u64,
    /// Frames kept so far.
    pub packets: u32,
    /// The pcap file's size so far.
    pub bytes: usize,
}

/// What a capture returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CaptureReport {
    /// The interface captured on.
    pub interface: String,
    /// `station` (the box's WiFi interface: Ethernet frames) or `monitor` (a monitor interface
    /// on the same phy: 802.11 frames with radiotap).
    pub mode: String,
    /// The filter (`all` for none).
    pub filter: String,
    /// When it started, ms since the Unix epoch (the summary's times count from here).
    pub started_unix_ms: u64,
    /// How long it ran, ms.
    pub duration_ms: u64,
    /// Frames kept (in the pcap and the summary).
    pub packets: u32,
    /// Frames seen on the interface, the filter's discards included.
    pub frames_seen: u64,
    /// Frames the kernel dropped because the agent read too slowly (`PACKET_STATISTICS`).
    pub kernel_drops: u32,
    /// Why it stopped: `time`, `max_packets`, `max_bytes`, `stopped` (wifi_capture_stop),
    /// `error` (see note).
    pub stopped_by: String,
    /// What the frames were (station mode; empty in monitor mode).
    pub summary: Summary,
    /// What went over the air (monitor mode only): per management/control subtype counts,
    /// the BSSs heard, the authentication/association exchange, deauth/disassoc reasons.
    pub air: Option<dot11::AirSummary>,
    /// The pcap file's size in bytes.
    pub pcap_bytes: usize,
    /// The pcap file (classic libpcap format, link type Ethernet — IEEE 802.11 radiotap (127)
    /// in monitor mode —, µs timestamps), base64:
    /// `base64 -d > f.pcap; tcpdump -r f.pcap`. Absent when the call asked for the summary
    /// only (`pcap: false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcap_base64: Option<String>,
    /// Anything to know about the result.
    pub note: Option<String>,
}

impl CaptureReport {
    /// The report without its pcap (`pcap: false`: the summary only).
    pub fn summary_only(mut self) -> Self {
        self.pcap_base64 = None;
        self
    }
}

/// An `AF_PACKET` socket on one interface.
pub struct PacketSocket {
    fd: AsyncFd<OwnedFd>,
}

/// `ETH_P_ALL` in network byte order, as packet sockets take it.
fn eth_p_all() -> u16 {
    (libc::ETH_P_ALL as u16).to_be()
}

impl PacketSocket {
    /// A packet socket that sees every frame in and out of interface `ifindex` (and only it).
    /// The socket is made with protocol 0 (it receives nothing) and gets `ETH_P_ALL` in
    /// `bind`, so no frame of another interface is queued before the bind.
    pub fn open(ifindex: u32) -> io::Result<Self> {
        // SAFETY: plain socket(2); the fd is owned at once.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh fd of ours.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let rcvbuf: libc::c_int = 2 << 20;
        // SAFETY: setsockopt with a c_int of the right size (a failure only keeps the default).
        unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&rcvbuf as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        // SAFETY: an all-zero sockaddr_ll is valid; the fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = eth_p_all();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: bind with a sockaddr_ll and its size.
        let r = unsafe {
            libc::bind(
                raw,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is an open socket owned by the AsyncFd until it is dropped.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)?;
        Ok(PacketSocket { fd })
    }

    /// The next frame into `buf`: its length on the wire (more than `buf` when cut) and whether
    /// the box sent it.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, bool)> {
        loop {
            let mut guard = self.fd.readable().await?;
            let r = guard.try_io(|fd| {
                // SAFETY: an all-zero sockaddr_ll is valid for recvfrom to fill.
                let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                // SAFETY: buf and from are valid for the lengths given.
                let n = unsafe {
                    libc::recvfrom(
                        fd.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_TRUNC,
                        (&mut from as *mut libc::sockaddr_ll).cast(),
                        &mut len,
                    )
                };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok((n as usize, from.sll_pkttype == libc::PACKET_OUTGOING))
            });
            match r {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Frames the kernel dropped for this socket since the last call (`PACKET_STATISTICS`).
    pub fn drops(&self) -> u32 {
        let mut st = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: getsockopt into a tpacket_stats of the right size.
        let r = unsafe {
            libc::getsockopt(
                self.fd.get_ref().as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if r == 0 { st.tp_drops } else { 0 }
    }
}

/// Capture on `sock` until a limit is reached or `stop` is cancelled; `tick` hears where it
/// stands once a second.
pub async fn run(
    sock: PacketSocket,
    interface: String,
    filter: Filter,
    limits: Limits,
    stop: CancellationToken,
    tick: impl Fn(Tick),
) -> CaptureReport {
    run_mode(sock, interface, filter, limits, false, stop, tick).await
}

/// [`run`], on a station interface (`monitor` false: Ethernet frames) or a monitor interface
/// (radiotap + 802.11 frames, decoded by [`dot11`]).
pub async fn run_mode(
    sock: PacketSocket,
    interface: String,
    filter: Filter,
    limits: Limits,
    monitor: bool,
    stop: CancellationToken,
    tick: impl Fn(Tick),
) -> CaptureReport {
    let started = Instant::now();
    let started_wall = SystemTime::now();
    let deadline = tokio::time::Instant::from_std(started + limits.duration);
    let mut pcap = if monitor {
        pcap::Writer::with_linktype(pcap::LINKTYPE_IEEE802_11_RADIOTAP)
    } else {
        pcap::Writer::new()
    };
    let mut summary = Summarizer::default();
    let mut air = dot11::AirSummarizer::default();
    let mut buf = vec![0u8; pcap::SNAPLEN as usize];
    let mut seen = 0u64;
    let mut note = None;
    let second = Duration::from_secs(1);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + second, second);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stopped_by = loop {
        let got = tokio::select! {
            biased;
            _ = stop.cancelled() => break "stopped",
            _ = tokio::time::sleep_until(deadline) => break "time",
            _ = ticks.tick() => {
                tick(Tick {
                    elapsed_s: started.elapsed().as_secs(),
                    packets: pcap.records(),
                    bytes: pcap.bytes().len(),
                });
                continue;
            }
            got = sock.recv(&mut buf) => got,
        };
        let (len, outgoing) = match got {
            Ok(g) => g,
            Err(e) => {
                note = Some(format!("reading the packet socket failed: {e}"));
                break "error";
            }
        };
        seen += 1;
        let frame = &buf[..len.min(buf.len())];
        let (d, f) = if monitor {
            (None, Some(dot11::decode(frame)))
        } else {
            (Some(decode::decode(frame)), None)
        };
        let keep = match (&d, &f) {
            (Some(d), _) => filter.keeps(d),
            (_, Some(f)) => filter.keeps_air(f),
            _ => false,
        };
        if !keep {
            continue;
        }
        if pcap.len_with(frame) > limits.max_bytes {
            break "max_bytes";
        }
        let at = SystemTime::now();
        pcap.push(at, frame, len);
        let ms = at
            .duration_since(started_wall)
            .unwrap_or_default()
            .as_millis() as u64;
        if let Some(d) = &d {
            summary.add(ms, outgoing, d);
        }
        if let Some(f) = &f {
            air.add(ms, f);
        }
        if pcap.records() >= limits.max_packets {
            break "max_packets";
        }
    };
    let kernel_drops = sock.drops();
    let packets = pcap.records();
    let bytes = pcap.into_bytes();
    if packets == 0 && note.is_none() {
        note = Some(match filter {
            Filter::All => "no frame passed the interface in that time".into(),
            f => format!(
                "{seen} frame(s) passed the interface, none of them {}",
                f.name()
            ),
        });
    }
    CaptureReport {
        interface,
        mode: if monitor { "monitor" } else { "station" }.into(),
        filter: filter.name(),
        started_unix_ms: started_wall
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64,
        duration_ms: started.elapsed().as_millis() as u64,
        packets,
        frames_seen: seen,
        kernel_drops,
        stopped_by: stopped_by.into(),
        summary: summary.finish(),
        air: monitor.then(|| air.finish()),
        pcap_bytes: bytes.len(),
        pcap_base64: Some(base64::engine::general_purpose::STANDARD.encode(&bytes)),
        note,
    }
}

/// The background capture of `wifi_capture_start`, until `wifi_capture_stop` collects it. One
/// per process (one agent per process; the tools are rebuilt per request by a sessionless
/// server, so the slot cannot live in them).
struct Background {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<CaptureReport>,
    /// Whether `wifi_capture_stop` returns the pcap (the start's `pcap`).
    pcap: bool,
}

static BACKGROUND: Mutex<Option<Background>> = Mutex::new(None);

/// Start a background capture; `busy` while one has not been collected.
pub fn start_background(
    sock: PacketSocket,
    interface: String,
    filter: Filter,
    limits: Limits,
    pcap: bool,
    monitor: Option<monitor::MonitorIface>,
) -> Result<(), Failure> {
    let mut slot = BACKGROUND.lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_some() {
        return Err(Failure::new(
            Code::Busy,
            "a capture started by wifi_capture_start is running or not yet collected: \
             wifi_capture_stop first",
        ));
    }
    let stop = CancellationToken::new();
    let is_monitor = monitor.is_some();
    let run = run_mode(
        sock,
        interface,
        filter,
        limits,
        is_monitor,
        stop.clone(),
        |_| {},
    );
    // The monitor interface goes as soon as the capture ends (its limits, or the stop).
    let task = tokio::spawn(async move {
        let mut r = run.await;
        if let Some(m) = monitor
            && let Err(e) = m.remove().await
        {
            r.note = Some(format!("deleting the monitor interface failed: {e:#}"));
        }
        r
    });
    *slot = Some(Background { stop, task, pcap });
    Ok(())
}

/// Stop the background capture (if its limits have not already) and return it; `not_found`
/// when none was started.
pub async fn stop_background() -> Result<CaptureReport, Failure> {
    let bg = BACKGROUND
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .ok_or_else(|| {
            Failure::new(
                Code::NotFound,
                "no capture is running: start one with wifi_capture_start",
            )
        })?;
    bg.stop.cancel();
    let r = bg
        .task
        .await
        .map_err(|e| Failure::from(format!("the capture task failed: {e}")))?;
    Ok(if bg.pcap { r } else { r.summary_only() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_refuse_what_they_do_not_know() {
        assert_eq!(Filter::parse(None).unwrap(), Filter::All);
        assert_eq!(Filter::parse(Some("dns")).unwrap(), Filter::Dns);
        assert_eq!(Filter::parse(Some("tcp:8080")).unwrap(), Filter::Tcp(8080));
        for bad in [
            "tcp:0",
            "tcp:70000",
            "tcp:",
            "udp:53",
            "DNS",
            "",
            "eapol ",
            "all",
        ] {
            let e = Filter::parse(Some(bad)).unwrap_err();
            assert_eq!(e.code, Code::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn filters_keep_their_protocol_only() {
        let [m1, ..] = decode::tests::handshake();
        let eapol = decode::decode(&m1);
        let dns = decode::decode(&decode::tests::dns_query("ap.test", false));
        let dhcp = decode::decode(&decode::tests::dhcp_msg(1, [0; 4]));
        assert!(Filter::Eapol.keeps(&eapol) && !Filter::Eapol.keeps(&dns));
        assert!(Filter::Dns.keeps(&dns) && !Filter::Dns.keeps(&dhcp));
        assert!(Filter::Dhcp.keeps(&dhcp) && !Filter::Dhcp.keeps(&eapol));
        assert!(Filter::All.keeps(&dhcp));
        assert!(!Filter::Tcp(53).keeps(&dns), "DNS over UDP is not tcp:53");
    }

    /// A packet socket on loopback (needs CAP_NET_RAW: root, as the tests run).
    fn lo_socket() -> PacketSocket {
        if nix::unistd::geteuid().as_raw() != 0 {
            panic!("this test opens a packet socket: run it as root");
        }
        PacketSocket::open(1).expect("packet socket on lo")
    }

    /// [`lo_socket`] and a task sending `n` UDP datagrams of `len` bytes to 127.0.0.1:9, one
    /// every `gap_ms`.
    fn lo_with_traffic(
        n: usize,
        len: usize,
        gap_ms: u64,
    ) -> (PacketSocket, tokio::task::JoinHandle<()>) {
        let sock = lo_socket();
        let send = tokio::spawn(async move {
            let u = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let payload = vec![0u8; len];
            for _ in 0..n {
                let _ = u.send_to(&payload, "127.0.0.1:9").await;
                tokio::time::sleep(Duration::from_millis(gap_ms)).await;
            }
        });
        (sock, send)
    }

    /// A real packet socket on loopback (needs CAP_NET_RAW: root, as the tests run): the caps
    /// hold and the pcap has what the summary says.
    #[tokio::test]
    async fn a_loopback_capture_respects_its_packet_cap() {
        let (sock, send) = lo_with_traffic(50, 5, 10);
        let r = run(
            sock,
            "lo".into(),
            Filter::All,
            Limits {
                duration: Duration::from_secs(5),
                max_packets: 3,
                max_bytes: 1 << 20,
            },
            CancellationToken::new(),
            |_| {},
        )
        .await;
        send.abort();
        assert_eq!(r.packets, 3, "{r:?}");
        assert_eq!(r.stopped_by, "max_packets");
        let pcap = base64::engine::general_purpose::STANDARD
            .decode(r.pcap_base64.as_deref().unwrap())
            .unwrap();
        assert_eq!(pcap.len(), r.pcap_bytes);
        assert!(pcap.len() > pcap::FILE_HEADER + 3 * pcap::RECORD_HEADER);
        let udp = r.summary.protocols.iter().map(|p| p.count).sum::<u32>();
        assert_eq!(udp, 3);
    }

    /// Once a second the caller hears where the capture stands, and what it hears adds up. Its
    /// own TCP connection on loopback, filtered by port: other tests' loopback traffic (run in
    /// parallel) must not fill the capture.
    #[tokio::test]
    async fn ticks_come_once_a_second_and_grow() {
        let sock = lo_socket();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let send = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut client = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while server.read(&mut buf).await.is_ok_and(|n| n > 0) {}
            });
            for _ in 0..40 {
                let _ = client.write_all(b"tick!").await;
                tokio::time::sleep(Duration::from_millis(80)).await;
            }
        });
        let ticks = std::sync::Mutex::new(Vec::new());
        let r = run(
            sock,
            "lo".into(),
            Filter::Tcp(port),
            Limits {
                duration: Duration::from_millis(2500),
                max_packets: 10_000,
                max_bytes: 1 << 20,
            },
            CancellationToken::new(),
            |t| ticks.lock().unwrap().push(t),
        )
        .await;
        send.abort();
        let ticks = ticks.into_inner().unwrap();
        assert_eq!(r.stopped_by, "time", "{r:?}");
        assert_eq!(
            ticks.iter().map(|t| t.elapsed_s).collect::<Vec<_>>(),
            [1, 2],
            "{ticks:?}"
        );
        assert!(ticks[0].packets >= 1, "{ticks:?}");
        assert!(ticks[0].packets <= ticks[1].packets && ticks[1].packets <= r.packets);
        assert!(ticks[0].bytes < ticks[1].bytes && ticks[1].bytes <= r.pcap_bytes);
    }

    #[tokio::test]
    async fn a_byte_cap_stops_before_the_file_outgrows_it() {
        let (sock, send) = lo_with_traffic(200, 500, 5);
        let r = run(
            sock,
            "lo".into(),
            Filter::All,
            Limits {
                duration: Duration::from_secs(5),
                max_packets: 10_000,
                max_bytes: 2048,
            },
            CancellationToken::new(),
            |_| {},
        )
        .await;
        send.abort();
        assert_eq!(r.stopped_by, "max_bytes", "{r:?}");
        assert!(r.pcap_bytes <= 2048 && r.packets >= 1, "{r:?}");
    }
}
