//! `network_port_check`: TCP connects to a bounded list of `host:port` targets, at once, each
//! within its own limit, optionally followed by a TLS handshake. A target is `open` (connected),
//! `closed` (RST), `filtered` (no answer: dropped on the way), `unreachable` (ICMP unreachable or
//! no route) or `dns_failed`.

use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;

use super::conn::{Refusal, connect, resolve};
use super::target::{Family, family_of};
use super::tls::{Client as TlsClient, TlsInfo, TlsOptions};
use crate::agent::nettools::Dns;

/// The most targets per call.
pub const MAX_TARGETS: usize = 32;

/// One target, validated.
#[derive(Debug, Clone)]
pub struct Target {
    /// A name or an IP literal.
    pub host: String,
    /// 1-65535.
    pub port: u16,
}

/// The state of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PortState {
    /// The TCP connect completed.
    Open,
    /// Refused (RST): reachable, nothing listens.
    Closed,
    /// No answer within the limit: a firewall dropped it, or nothing is there.
    Filtered,
    /// ICMP unreachable, or no route from the box.
    Unreachable,
    /// The name did not resolve.
    DnsFailed,
    /// Another error (see `error`).
    Error,
}

/// A TLS handshake after the connect.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TlsProbe {
    /// The handshake completed.
    pub ok: bool,
    /// Handshake time, ms.
    pub handshake_ms: Option<f64>,
    /// What it negotiated.
    pub info: Option<TlsInfo>,
    /// Why it failed.
    pub error: Option<String>,
    /// The failure's stable code (`tls_untrusted`, `tls_failed`, `timeout`).
    pub code: Option<String>,
}

/// One target's outcome.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PortResult {
    /// The host asked for.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The address tried.
    pub address: Option<String>,
    /// `ipv4` / `ipv6`.
    pub family: Option<String>,
    /// The outcome.
    pub state: PortState,
    /// Time to the outcome of the connect, ms (the limit, for filtered).
    pub connect_ms: f64,
    /// DNS time, ms.
    pub dns_ms: f64,
    /// Error text for anything but open.
    pub error: Option<String>,
    /// With tls: the handshake.
    pub tls: Option<TlsProbe>,
}

async fn one(
    dns: &Dns,
    t: &Target,
    family: Family,
    limit: Duration,
    tls: Option<&TlsOptions>,
) -> PortResult {
    let mut r = PortResult {
        host: t.host.clone(),
        port: t.port,
        address: None,
        family: None,
        state: PortState::Error,
        connect_ms: 0.0,
        dns_ms: 0.0,
        error: None,
        tls: None,
    };
    let (ip, dns_ms) = match resolve(dns, &t.host, family).await {
        Ok(x) => x,
        Err(f) => {
            r.state = PortState::DnsFailed;
            r.error = Some(f.text);
            return r;
        }
    };
    r.dns_ms = dns_ms;
    r.address = Some(ip.to_string());
    r.family = Some(family_of(ip).into());
    let addr = std::net::SocketAddr::new(ip, t.port);
    match connect(addr, limit).await {
        Ok((stream, ms)) => {
            r.state = PortState::Open;
            r.connect_ms = ms;
            if let Some(opts) = tls {
                r.tls = Some(match TlsClient::new(opts, &[]) {
                    Err(f) => TlsProbe {
                        ok: false,
                        handshake_ms: None,
                        info: None,
                        error: Some(f.text),
                        code: Some(f.code.as_str().into()),
                    },
                    Ok(client) => {
                        match tokio::time::timeout(limit, client.handshake(stream, &t.host)).await {
                            Ok(Ok((_s, info, ms))) => TlsProbe {
                                ok: true,
                                handshake_ms: Some(ms),
                                info: Some(info),
                                error: None,
                                code: None,
                            },
                            Ok(Err(f)) => TlsProbe {
                                ok: false,
                                handshake_ms: None,
                                info: None,
                                error: Some(f.text),
                                code: Some(f.code.as_str().into()),
                            },
                            Err(_) => TlsProbe {
                                ok: false,
                                handshake_ms: None,
                                info: None,
                                error: Some(format!(
                                    "no TLS handshake within {} ms",
                                    limit.as_millis()
                                )),
                                code: Some("timeout".into()),
                            },
                        }
                    }
                });
            }
        }
        Err((why, text, ms)) => {
            r.connect_ms = ms;
            r.state = match why {
                Some(Refusal::Closed) => PortState::Closed,
                Some(Refusal::Filtered) => PortState::Filtered,
                Some(Refusal::Unreachable) => PortState::Unreachable,
                None => PortState::Error,
            };
            r.error = Some(text);
        }
    }
    r
}

/// Check every target at once; `done(n)` after each finishes. Results in the targets' order.
pub async fn check(
    dns: &Dns,
    targets: &[Target],
    family: Family,
    limit: Duration,
    tls: Option<&TlsOptions>,
    done: impl Fn(usize),
) -> Vec<PortResult> {
    let mut pending: futures::stream::FuturesUnordered<_> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| async move { (i, one(dns, t, family, limit, tls).await) })
        .collect();
    let mut out: Vec<Option<PortResult>> = vec![None; targets.len()];
    let mut n = 0;
    while let Some((i, r)) = pending.next().await {
        out[i] = Some(r);
        n += 1;
        done(n);
    }
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_and_closed_ports_on_loopback_in_order() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = l.local_addr().unwrap().port();
        let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = gone.local_addr().unwrap().port();
        drop(gone);
        let dns = Dns::new(vec![], std::path::Path::new("/nonexistent"));
        let targets = [
            Target {
                host: "127.0.0.1".into(),
                port: closed,
            },
            Target {
                host: "127.0.0.1".into(),
                port: open,
            },
        ];
        let seen = std::sync::atomic::AtomicUsize::new(0);
        let r = check(
            &dns,
            &targets,
            Family::Auto,
            Duration::from_secs(2),
            None,
            |_| {
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            },
        )
        .await;
        assert_eq!(r[0].state, PortState::Closed, "{r:?}");
        assert_eq!(r[1].state, PortState::Open, "{r:?}");
        assert_eq!(r[1].family.as_deref(), Some("ipv4"));
        assert_eq!(seen.into_inner(), 2);
    }

    #[tokio::test]
    async fn no_dns_server_is_dns_failed() {
        let dns = Dns::new(vec![], std::path::Path::new("/nonexistent"));
        let r = check(
            &dns,
            &[Target {
                host: "nowhere.test".into(),
                port: 80,
            }],
            Family::Auto,
            Duration::from_secs(1),
            None,
            |_| {},
        )
        .await;
        assert_eq!(r[0].state, PortState::DnsFailed);
    }
}
