//! The packet-capture tools ([`crate::agent::capture`]): `wifi_capture` (capture now, for up to
//! `seconds`), and `wifi_capture_start` / `wifi_capture_stop` for a capture that spans another
//! call (a connect). Their arguments, bounds and results; a router of their own, added to
//! [`WifiTools`]'s.
//!
//! Why start/stop rather than a `during: "connect"` argument: the model drives the connect it
//! wants (any network, saved or inline, EAP, a roam, a reconnect) with the tool it already
//! knows, and nothing races — `wifi_capture_start` answers only once the socket is bound, so
//! every frame after its answer is in the capture.
//!
//! Why base64 in the result rather than an MCP resource: the capture is bounded (1 MiB at
//! most), comes back in the one call that collects it, and needs no store of past captures with
//! URIs and a lifetime in the box.

use std::time::Duration;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::progress::Progress;
use super::router::WifiTools;
use crate::agent::capture::monitor::MonitorIface;
use crate::agent::capture::{self, CaptureReport, Filter, Limits, PacketSocket};
use crate::agent::failure::Failure;

/// The most seconds a capture may run.
pub const MAX_SECONDS: u64 = 300;
/// The most frames a capture may keep.
pub const MAX_PACKETS: u64 = 100_000;
/// The largest pcap file a capture may return.
pub const MAX_BYTES: u64 = 1 << 20;
/// The smallest byte cap (the file header and a few frames).
pub const MIN_BYTES: u64 = 1024;

/// `wifi_capture` and `wifi_capture_start` arguments.
#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CaptureArgs {
    /// Capture for at most this many seconds (1-300; default 10 for wifi_capture, 60 for
    /// wifi_capture_start).
    pub seconds: Option<u64>,
    /// Stop after this many packets (1-100000, default 1000); only packets the filter keeps
    /// count.
    pub max_packets: Option<u64>,
    /// Stop before the pcap file would grow past this many bytes (1024-1048576, default
    /// 262144).
    pub max_bytes: Option<u64>,
    /// Keep only one protocol: eapol (802.1X: the 4-way handshake, EAP), dhcp, dns, arp, icmp
    /// (and ICMPv6), or tcp:PORT. Omit for every frame.
    pub filter: Option<String>,
    /// Where to capture: station (default: the box's WiFi interface, Ethernet frames) or
    /// monitor (a monitor interface the agent creates on the same phy and deletes afterwards:
    /// 802.11 frames with radiotap — beacons, probes, authentication, association, EAPOL on
    /// the air; filter mgmt or eapol). unsupported when the driver refuses a monitor interface.
    pub interface: Option<CaptureInterface>,
    /// Return the pcap file as base64 (default true). false: the summary only, a much smaller
    /// result (the pcap is also copied into the text content, where it fills a model's
    /// context).
    pub pcap: Option<bool>,
}

/// Where a capture listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum CaptureInterface {
    /// The box's WiFi interface (Ethernet frames).
    #[default]
    Station,
    /// A monitor interface on the same phy (802.11 frames with radiotap).
    Monitor,
}

/// What `wifi_capture_start` answers.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CaptureStarted {
    /// The interface being captured.
    pub interface: String,
    /// The filter (`all` for none).
    pub filter: String,
    /// It stops by itself after this many seconds …
    pub seconds: u64,
    /// … or this many packets …
    pub max_packets: u64,
    /// … or before the file passes this many bytes.
    pub max_bytes: u64,
    /// What to do next.
    pub message: String,
}

/// Validate the arguments (nothing is opened before they are).
pub(super) fn limits(a: &CaptureArgs, default_secs: u64) -> Result<(Filter, Limits), Failure> {
    let seconds = a.seconds.unwrap_or(default_secs);
    if !(1..=MAX_SECONDS).contains(&seconds) {
        return Err(Failure::invalid(format!(
            "seconds must be 1-{MAX_SECONDS}, got {seconds}"
        )));
    }
    let max_packets = a.max_packets.unwrap_or(1000);
    if !(1..=MAX_PACKETS).contains(&max_packets) {
        return Err(Failure::invalid(format!(
            "max_packets must be 1-{MAX_PACKETS}, got {max_packets}"
        )));
    }
    let max_bytes = a.max_bytes.unwrap_or(256 * 1024);
    if !(MIN_BYTES..=MAX_BYTES).contains(&max_bytes) {
        return Err(Failure::invalid(format!(
            "max_bytes must be {MIN_BYTES}-{MAX_BYTES}, got {max_bytes}"
        )));
    }
    let filter = match a.interface.unwrap_or_default() {
        CaptureInterface::Station => Filter::parse(a.filter.as_deref())?,
        CaptureInterface::Monitor => Filter::parse_monitor(a.filter.as_deref())?,
    };
    Ok((
        filter,
        Limits {
            duration: Duration::from_secs(seconds),
            max_packets: max_packets as u32,
            max_bytes: max_bytes as usize,
        },
    ))
}

impl WifiTools {
    /// A packet socket on the box's WiFi interface.
    async fn capture_socket(&self) -> Result<PacketSocket, Failure> {
        let iface = self.agent.iface();
        let index = self.iface_index().await?;
        PacketSocket::open(index)
            .map_err(|e| Failure::from(format!("opening a packet socket on {iface}: {e}")))
    }

    /// A packet socket on the box's WiFi interface, or on a new monitor interface of its phy
    /// (returned too: the caller deletes it; dropping it deletes it as well).
    async fn capture_on(
        &self,
        a: &CaptureArgs,
    ) -> Result<(PacketSocket, String, Option<MonitorIface>), Failure> {
        if a.interface.unwrap_or_default() == CaptureInterface::Station {
            return Ok((
                self.capture_socket().await?,
                self.agent.iface().to_string(),
                None,
            ));
        }
        let index = self.iface_index().await?;
        let mon = MonitorIface::create(index, self.agent.net()).await?;
        match PacketSocket::open(mon.index) {
            Ok(sock) => Ok((sock, mon.name.clone(), Some(mon))),
            Err(e) => {
                let name = mon.name.clone();
                let _ = mon.remove().await;
                Err(Failure::from(format!(
                    "opening a packet socket on {name}: {e}"
                )))
            }
        }
    }
}

#[tool_router(router = capture_router, vis = "pub(super)")]
impl WifiTools {
    #[tool(
        description = "Capture packets on the box's WiFi interface now, for up to seconds \
                       (default 10, max 300), max_packets (default 1000) or max_bytes of pcap \
                       (default 256 KiB, max 1 MiB), whichever comes first; filter: eapol, \
                       dhcp, dns, arp, icmp or tcp:PORT. Returns a summary (per protocol count \
                       and first/last ms; the EAPOL 4-way handshake messages 1/4..4/4 seen, \
                       the DHCP exchange, DNS query names) and the pcap file as base64 (Ethernet \
                       frames; tcpdump -r reads it) unless pcap: false. Progress once a \
                       second (packets and bytes so far). To capture a connect, use \
                       wifi_capture_start, then wifi_connect, then wifi_capture_stop. \
                       interface: monitor captures 802.11 frames with radiotap on a monitor \
                       interface of the same phy (created and deleted by the call; filter mgmt \
                       or eapol): the summary's air part counts frames per management/control \
                       subtype and lists the BSSs heard (SSID, channel, signal), the \
                       authentication/association exchange and deauth/disassoc reason codes; \
                       unsupported when the driver refuses a monitor interface.",
        annotations(title = "Capture packets", read_only_hint = true)
    )]
    async fn wifi_capture(
        &self,
        Parameters(a): Parameters<CaptureArgs>,
        meta: rmcp::model::RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<CaptureReport>, Failure> {
        let (filter, limits) = limits(&a, 10)?;
        let (sock, interface, mon) = self.capture_on(&a).await?;
        let progress = Progress::new(peer, &meta);
        let total = limits.duration.as_secs() as usize;
        progress.send(
            0,
            total,
            format!("capturing {} for {total} s", filter.name()),
        );
        let mut r = capture::run_mode(
            sock,
            interface,
            filter,
            limits,
            mon.is_some(),
            Default::default(),
            |t| {
                progress.send(
                    t.elapsed_s as usize,
                    total,
                    format!(
                        "{} of {total} s: {} packets, {} bytes",
                        t.elapsed_s, t.packets, t.bytes
                    ),
                )
            },
        )
        .await;
        if let Some(m) = mon
            && let Err(e) = m.remove().await
        {
            r.note = Some(format!("deleting the monitor interface failed: {e:#}"));
        }
        progress.send(total, total, format!("done: stopped by {}", r.stopped_by));
        progress.flush().await;
        Ok(Json(if a.pcap.unwrap_or(true) {
            r
        } else {
            r.summary_only()
        }))
    }

    #[tool(
        description = "Start capturing packets on the box's WiFi interface in the background \
                       (same arguments as wifi_capture; seconds default 60, max 300). Answers \
                       once the capture is running: every packet after this answer is \
                       captured. Then do what is to be captured (wifi_connect: its EAPOL 4-way \
                       handshake and DHCP exchange are seen) and call wifi_capture_stop for the \
                       summary and the pcap. One background capture at a time (busy otherwise).",
        annotations(title = "Start a packet capture", read_only_hint = true)
    )]
    async fn wifi_capture_start(
        &self,
        Parameters(a): Parameters<CaptureArgs>,
    ) -> Result<Json<CaptureStarted>, Failure> {
        let (filter, limits) = limits(&a, 60)?;
        let (sock, interface, mon) = self.capture_on(&a).await?;
        // On busy, the monitor interface is deleted as `mon` drops inside.
        capture::start_background(
            sock,
            interface.clone(),
            filter,
            limits,
            a.pcap.unwrap_or(true),
            mon,
        )?;
        Ok(Json(CaptureStarted {
            interface,
            filter: filter.name(),
            seconds: limits.duration.as_secs(),
            max_packets: limits.max_packets as u64,
            max_bytes: limits.max_bytes as u64,
            message: "capturing; call wifi_capture_stop to collect it".into(),
        }))
    }

    #[tool(
        description = "Stop the capture wifi_capture_start began (or collect it, when its own \
                       limits stopped it) and return it as wifi_capture does: the summary and \
                       the pcap as base64 (unless the start said pcap: false). not_found when \
                       none was started.",
        annotations(title = "Stop the packet capture", read_only_hint = true)
    )]
    async fn wifi_capture_stop(&self) -> Result<Json<CaptureReport>, Failure> {
        Ok(Json(capture::stop_background().await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::failure::Code;

    fn args(v: serde_json::Value) -> CaptureArgs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn bounds_are_checked_before_anything_opens() {
        let (f, l) = limits(&args(serde_json::json!({})), 10).unwrap();
        assert_eq!(f, Filter::All);
        assert_eq!(
            l,
            Limits {
                duration: Duration::from_secs(10),
                max_packets: 1000,
                max_bytes: 256 * 1024
            }
        );
        let (f, l) = limits(
            &args(serde_json::json!({"seconds": 300, "max_packets": 3, "max_bytes": 1024, "filter": "tcp:443"})),
            10,
        )
        .unwrap();
        assert_eq!((f, l.max_packets, l.max_bytes), (Filter::Tcp(443), 3, 1024));
        for bad in [
            serde_json::json!({"seconds": 0}),
            serde_json::json!({"seconds": 10000}),
            serde_json::json!({"max_packets": 0}),
            serde_json::json!({"max_packets": 100001}),
            serde_json::json!({"max_bytes": 100}),
            serde_json::json!({"max_bytes": 2_000_000}),
            serde_json::json!({"filter": "bogus"}),
            serde_json::json!({"filter": "tcp:0"}),
        ] {
            let e = limits(&args(bad.clone()), 10).unwrap_err();
            assert_eq!(e.code, Code::InvalidArgument, "{bad}");
        }
        let (f, _) = limits(
            &args(serde_json::json!({"interface": "monitor", "filter": "mgmt"})),
            10,
        )
        .unwrap();
        assert_eq!(f, Filter::Mgmt);
        for bad in [
            serde_json::json!({"interface": "monitor", "filter": "dhcp"}),
            serde_json::json!({"filter": "mgmt"}),
        ] {
            let e = limits(&args(bad.clone()), 10).unwrap_err();
            assert_eq!(e.code, Code::InvalidArgument, "{bad}");
        }
        assert!(
            serde_json::from_value::<CaptureArgs>(serde_json::json!({"interface": "wlan0"}))
                .is_err()
        );
        assert!(serde_json::from_value::<CaptureArgs>(serde_json::json!({"secs": 1})).is_err());
        assert!(serde_json::from_value::<CaptureArgs>(serde_json::json!({"seconds": -1})).is_err());
    }
}
