//! `network_throughput`: download from a URL for a bounded time and byte count and measure what
//! arrives — goodput (body bytes over the time from the first body byte to the last), time to
//! first byte, per-second samples, and stalls (gaps between body data longer than a threshold).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::Serialize;

use super::http::{Opened, host_and_path, open};
use super::ms_since;
use super::target::{Family, family_of};
use super::tls::{TlsInfo, TlsOptions};
use crate::agent::failure::{Code, Failure};
use crate::agent::nettools::Dns;

/// The longest a download may run.
pub const MAX_SECONDS: u64 = 60;
/// The most bytes a download may read.
pub const MAX_BYTES: u64 = 1 << 30;

/// A validated download.
#[derive(Debug, Clone)]
pub struct Download {
    /// http or https, checked.
    pub url: url::Url,
    /// Stop after this long.
    pub duration: Duration,
    /// Stop after this many body bytes.
    pub max_bytes: u64,
    /// A gap between body data longer than this is a stall.
    pub stall: Duration,
    /// Trust for https.
    pub tls: TlsOptions,
    /// Address family.
    pub family: Family,
}

/// Result of `network_throughput`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ThroughputReport {
    /// The URL.
    pub url: String,
    /// HTTP status.
    pub status: u16,
    /// The peer, address:port.
    pub peer: String,
    /// `ipv4` / `ipv6`.
    pub family: String,
    /// Body bytes received.
    pub bytes: u64,
    /// Body bytes over the time from the first body byte to the last, megabits per second.
    pub goodput_mbps: f64,
    /// From the request to the response headers, ms.
    pub first_byte_ms: f64,
    /// DNS, connect and TLS times, ms.
    pub dns_ms: f64,
    /// TCP connect, ms.
    pub connect_ms: f64,
    /// TLS handshake, ms (https).
    pub tls_ms: Option<f64>,
    /// The download's own time (first body byte to the last), ms.
    pub transfer_ms: f64,
    /// Megabits per second in each whole second of the transfer.
    pub per_second_mbps: Vec<f64>,
    /// Gaps between body data longer than the stall threshold.
    pub stalls: u32,
    /// The longest gap, ms.
    pub longest_gap_ms: f64,
    /// Why it stopped: `end` (the body ended), `time` or `bytes`.
    pub stopped_by: String,
    /// TLS facts (https).
    pub tls: Option<TlsInfo>,
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        return 0.0;
    }
    ((bytes as f64 * 8.0 / secs / 1e6) * 1000.0).round() / 1000.0
}

/// Run `d`; `tick(seconds, bytes)` about once a second.
pub async fn download(
    dns: &Dns,
    d: &Download,
    tick: impl Fn(u64, u64),
) -> Result<ThroughputReport, Failure> {
    let Opened {
        mut sender,
        driver,
        peer,
        dns_ms,
        connect_ms,
        tls,
        tls_ms,
    } = open(dns, &d.url, d.family, &d.tls, d.duration).await?;
    let (host, path) = host_and_path(&d.url);
    let req = http::Request::get(path)
        .header(http::header::HOST, host)
        .header(http::header::USER_AGENT, "wifi-isolate-agent")
        .body(Full::<Bytes>::default())
        .map_err(|e| Failure::invalid(format!("building the request: {e}")))?;
    let asked = Instant::now();
    let resp = tokio::time::timeout(d.duration, sender.send_request(req))
        .await
        .map_err(|_| {
            Failure::new(
                Code::Timeout,
                format!("no response headers within {} s", d.duration.as_secs()),
            )
        })?
        .map_err(|e| Failure::new(Code::Failed, format!("HTTP exchange with {peer}: {e}")))?;
    let first_byte_ms = ms_since(asked);
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let deadline = tokio::time::Instant::now() + d.duration;
    let mut bytes = 0u64;
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let mut per_second: Vec<u64> = Vec::new();
    let (mut stalls, mut longest) = (0u32, Duration::ZERO);
    let mut stopped_by = "end";
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                stopped_by = "time";
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(Failure::new(
                    Code::Failed,
                    format!("reading from {peer}: {e}"),
                ));
            }
            Ok(Some(Ok(f))) => f,
        };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        let now = Instant::now();
        let start = *first.get_or_insert(now);
        let gap = now.duration_since(last);
        if bytes > 0 && gap > d.stall {
            stalls += 1;
        }
        if bytes > 0 {
            longest = longest.max(gap);
        }
        last = now;
        bytes += data.len() as u64;
        let sec = now.duration_since(start).as_secs() as usize;
        if per_second.len() <= sec {
            per_second.resize(sec + 1, 0);
            tick(sec as u64, bytes);
        }
        per_second[sec] += data.len() as u64;
        if bytes >= d.max_bytes {
            stopped_by = "bytes";
            break;
        }
    }
    drop(body);
    drop(sender);
    driver.abort();
    let transfer = first.map(|f| last.duration_since(f)).unwrap_or_default();
    // The last second is partial: keep whole seconds only.
    let whole = transfer.as_secs() as usize;
    Ok(ThroughputReport {
        url: d.url.to_string(),
        status,
        peer: peer.to_string(),
        family: family_of(peer.ip()).into(),
        bytes,
        goodput_mbps: mbps(bytes, transfer.as_secs_f64()),
        first_byte_ms,
        dns_ms,
        connect_ms,
        tls_ms,
        transfer_ms: (transfer.as_secs_f64() * 1e6).round() / 1e3,
        per_second_mbps: per_second
            .iter()
            .take(whole)
            .map(|b| mbps(*b, 1.0))
            .collect(),
        stalls,
        longest_gap_ms: (longest.as_secs_f64() * 1e6).round() / 1e3,
        stopped_by: stopped_by.into(),
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn megabits() {
        assert_eq!(mbps(1_000_000, 1.0), 8.0);
        assert_eq!(mbps(250_000, 2.0), 1.0);
        assert_eq!(mbps(5, 0.0), 0.0);
    }

    /// A paced loopback server (64 KiB every 50 ms ≈ 10.5 Mbit/s): goodput near that, stops
    /// on bytes or time as asked.
    #[tokio::test]
    async fn paced_download_is_measured() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000000\r\n\r\n")
                        .await;
                    let chunk = vec![0u8; 65536];
                    loop {
                        if s.write_all(&chunk).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                });
            }
        });
        let dns = Dns::new(vec![], std::path::Path::new("/nonexistent"));
        let d = Download {
            url: super::super::target::web_url(&format!("http://127.0.0.1:{port}/")).unwrap(),
            duration: Duration::from_millis(1500),
            max_bytes: MAX_BYTES,
            stall: Duration::from_millis(500),
            tls: TlsOptions::default(),
            family: Family::Auto,
        };
        let r = download(&dns, &d, |_, _| {}).await.unwrap();
        assert_eq!(
            (r.status, r.stopped_by.as_str(), r.stalls),
            (200, "time", 0),
            "{r:?}"
        );
        assert!((7.0..=12.0).contains(&r.goodput_mbps), "{r:?}");
        let r = download(
            &dns,
            &Download {
                max_bytes: 200_000,
                ..d
            },
            |_, _| {},
        )
        .await
        .unwrap();
        assert_eq!(r.stopped_by, "bytes");
        assert!(r.bytes >= 200_000);
    }
}
