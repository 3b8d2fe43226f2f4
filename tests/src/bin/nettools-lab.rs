//! The servers the agent suite's network-tool checks talk to, run by tests/vm/agent/guest.sh in
//! the WPA2 AP's netns (never anywhere else):
//!
//! - HTTPS on :8443 with a throwaway chain made here (rcgen): CA → intermediate → leaf for the
//!   names given (`--names ap.test,10.0.2.1`), the leaf valid for 30 days; the CA's PEM goes to
//!   `DIR/ca.pem`, the leaf's not-after (Unix seconds) to `DIR/leaf-not-after`;
//! - HTTP on :8080: `/r1` → 302 `/r2` → 302 `https://HOST:8443/hello` (a redirect chain across
//!   schemes), `/cookie` sets `lab=1`, `/echo` answers the request's method, cookie and body;
//! - TCP :8081 accepts and closes (an open port; :8082 is the one the guest firewalls, :8083
//!   has nothing);
//! - TCP :8084 answers any request with an endless 200 body (the throughput source);
//! - UDP :5300 answers every DNS question with SERVFAIL;
//! - `/peer` (HTTP and HTTPS) answers the address the request came from (the box's, as the
//!   server saw it);
//! - an IPv6-only captive portal under `/v6portal/` (any request over IPv4 gets 403): `check`
//!   answers 302 → `page` until the `v6portal=ok` cookie comes back, then 204; `page` has a
//!   form (a hidden token, an accept checkbox) posting to `login`, which sets the cookie only
//!   when both come.
//!
//! Every listener is dual-stack (`[::]`, `IPV6_V6ONLY` off): the same servers answer over IPv4
//! and over the AP's IPv6 addresses (`--names` may list them, for the leaf's IP SANs).
//!
//! Writes `DIR/ready` when all listen. Usage: `nettools-lab DIR NAME[,NAME...]`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// The host part of a `Host` header: `name`, `name:port`, `[v6]` or `[v6]:port` (brackets
/// kept, so it goes back into a URL as it is).
fn host_part(h: &str) -> &str {
    match h.strip_prefix('[') {
        Some(rest) => rest.find(']').map_or(h, |i| &h[..i + 2]),
        None => h.split(':').next().unwrap_or(h),
    }
}

/// The client's address as text: an IPv4 peer of the dual-stack socket without its `::ffff:`.
fn peer_text(peer: std::net::SocketAddr) -> String {
    match peer.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        ip => ip.to_string(),
    }
}

async fn handle(
    r: hyper::Request<hyper::body::Incoming>,
    peer: std::net::SocketAddr,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let b = hyper::Response::builder();
    let host = host_part(
        r.headers()
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("ap.test"),
    )
    .to_string();
    let method = r.method().to_string();
    let cookie = r
        .headers()
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let path = r.uri().path().to_string();
    let body = r
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let over_v6 = peer_text(peer).contains(':');
    let resp = match path.as_str() {
        p if p.starts_with("/v6portal/") && !over_v6 => b.status(403).body(Full::new(
            Bytes::from_static(b"this portal answers over IPv6 only"),
        )),
        "/v6portal/check" if cookie.split("; ").any(|c| c == "v6portal=ok") => {
            b.status(204).body(Full::default())
        }
        "/v6portal/check" => b
            .status(302)
            .header("location", "/v6portal/page")
            .body(Full::default()),
        "/v6portal/page" => b
            .status(200)
            .header("content-type", "text/html")
            .body(Full::new(Bytes::from_static(
                b"<html><body><h1>IPv6 lab portal</h1><form action=\"/v6portal/login\" \
                  method=\"post\"><input type=\"hidden\" name=\"t\" value=\"v6tok\">\
                  <label><input type=\"checkbox\" name=\"accept\" value=\"yes\"> I accept\
                  </label><button type=\"submit\">Go</button></form></body></html>",
            ))),
        "/v6portal/login" => {
            let form = String::from_utf8_lossy(&body);
            let given: Vec<&str> = form.split('&').collect();
            if method == "POST" && given.contains(&"t=v6tok") && given.contains(&"accept=yes") {
                b.status(302)
                    .header("set-cookie", "v6portal=ok; Path=/")
                    .header("location", "/v6portal/welcome")
                    .body(Full::default())
            } else {
                b.status(200)
                    .body(Full::new(Bytes::from_static(b"accept the terms first")))
            }
        }
        "/v6portal/welcome" => b
            .status(200)
            .body(Full::new(Bytes::from_static(b"welcome over IPv6"))),
        "/hello" => b
            .status(200)
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from_static(b"hello over the lab"))),
        "/r1" => b
            .status(302)
            .header("location", "/r2")
            .body(Full::default()),
        "/r2" => b
            .status(302)
            .header("location", format!("https://{host}:8443/hello"))
            .body(Full::default()),
        "/cookie" => b
            .status(200)
            .header("set-cookie", "lab=1; Path=/")
            .body(Full::new(Bytes::from_static(b"cookie set"))),
        "/peer" => b.status(200).body(Full::new(Bytes::from(peer_text(peer)))),
        "/echo" => b.status(200).body(Full::new(Bytes::from(format!(
            "{method} cookie=[{cookie}] body=[{}]",
            String::from_utf8_lossy(&body)
        )))),
        _ => b.status(404).body(Full::default()),
    };
    Ok(resp.expect("response"))
}

fn pki(names: &[String]) -> (String, i64, rustls::ServerConfig) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(vec![]).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "nettools lab CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let ca_issuer = Issuer::new(ca, &ca_key);
    let int_key = KeyPair::generate().expect("key");
    let mut int = CertificateParams::new(vec![]).expect("params");
    int.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    int.distinguished_name
        .push(DnType::CommonName, "nettools lab intermediate");
    let int_cert = int.signed_by(&int_key, &ca_issuer).expect("intermediate");
    let int_issuer = Issuer::new(int, &int_key);
    let leaf_key = KeyPair::generate().expect("key");
    let mut leaf = CertificateParams::new(names.to_vec()).expect("params");
    leaf.distinguished_name.push(DnType::CommonName, &names[0]);
    let now = time::OffsetDateTime::now_utc();
    leaf.not_before = now - time::Duration::days(1);
    leaf.not_after = now + time::Duration::days(30);
    let not_after = leaf.not_after.unix_timestamp();
    let leaf_cert = leaf.signed_by(&leaf_key, &int_issuer).expect("leaf");
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).expect("key der");
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![leaf_cert.der().clone(), int_cert.der().clone()], key)
    .expect("server config");
    (ca_cert.pem(), not_after, cfg)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(names)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: nettools-lab DIR NAME[,NAME...]");
        std::process::exit(2);
    };
    let dir = std::path::PathBuf::from(dir);
    let names: Vec<String> = names.split(',').map(str::to_string).collect();
    let (ca_pem, not_after, cfg) = pki(&names);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("ca.pem"), ca_pem).expect("ca.pem");
    std::fs::write(dir.join("leaf-not-after"), not_after.to_string()).expect("not-after");

    let https = tokio::net::TcpListener::bind("[::]:8443")
        .await
        .expect(":8443");
    let http = tokio::net::TcpListener::bind("[::]:8080")
        .await
        .expect(":8080");
    let open = tokio::net::TcpListener::bind("[::]:8081")
        .await
        .expect(":8081");
    let firewalled = tokio::net::TcpListener::bind("[::]:8082")
        .await
        .expect(":8082");
    let servfail = tokio::net::UdpSocket::bind("[::]:5300")
        .await
        .expect(":5300");

    let source = tokio::net::TcpListener::bind("[::]:8084")
        .await
        .expect(":8084");
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = source.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut req = [0u8; 2048];
                let _ = s.read(&mut req).await;
                let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n\
                             content-length: 100000000000\r\n\r\n";
                if s.write_all(head).await.is_err() {
                    return;
                }
                let chunk = vec![0u8; 16384];
                while s.write_all(&chunk).await.is_ok() {}
            });
        }
    });
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    tokio::spawn(async move {
        loop {
            let Ok((s, peer)) = https.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(t) = acceptor.accept(s).await {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(t), service_fn(move |r| handle(r, peer)))
                        .await;
                }
            });
        }
    });
    tokio::spawn(async move {
        loop {
            let Ok((s, peer)) = http.accept().await else {
                continue;
            };
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), service_fn(move |r| handle(r, peer))),
            );
        }
    });
    for l in [open, firewalled] {
        tokio::spawn(async move {
            loop {
                let _ = l.accept().await;
            }
        });
    }
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, from)) = servfail.recv_from(&mut buf).await else {
                continue;
            };
            if n < 12 {
                continue;
            }
            // The question back, as a response (QR), recursion available, RCODE 2; no records.
            let mut r = buf[..n].to_vec();
            r[2] |= 0x80;
            r[3] = (r[3] & 0x70) | 0x80 | 2;
            r[6..12].fill(0);
            let _ = servfail.send_to(&r, from).await;
        }
    });
    std::fs::write(dir.join("ready"), "").expect("ready");
    eprintln!(
        "nettools-lab: listening on [::] (IPv4 and IPv6): https 8443, http 8080, tcp 8081/8082, source 8084, dns servfail udp 5300"
    );
    std::future::pending::<()>().await;
}
