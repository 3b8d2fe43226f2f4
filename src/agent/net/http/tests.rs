//! `network_http_request` against real servers on loopback: plain HTTP with a redirect chain and
//! cookies, HTTPS with a throwaway CA → intermediate → leaf chain (rcgen): untrusted without the
//! CA, trusted with it as `ca_pem`, `insecure` reported.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::service::service_fn;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use super::*;
use crate::agent::net::target::web_url;

fn dns() -> Dns {
    Dns::new(vec![], std::path::Path::new("/nonexistent"))
}

fn req(url: &str) -> Request {
    Request {
        url: web_url(url).unwrap(),
        method: http::Method::GET,
        headers: vec![],
        body: None,
        max_body: 4096,
        follow_redirects: true,
        max_redirects: 5,
        tls: TlsOptions::default(),
        family: Family::Auto,
        cookies: true,
        connect_timeout: Duration::from_secs(5),
    }
}

async fn handle(
    r: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let b = hyper::Response::builder();
    let cookie = r
        .headers()
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Ok(match r.uri().path() {
        "/a" => b
            .status(302)
            .header("location", "/b")
            .header("set-cookie", "sid=s3cr3t; Path=/")
            .body(Full::default()),
        "/b" => b
            .status(301)
            .header("location", "http://127.0.0.1:1/never")
            .body(Full::default()),
        "/c" => b
            .status(307)
            .header("location", "/echo")
            .body(Full::default()),
        "/echo" => b.status(200).body(Full::new(Bytes::from(format!(
            "{} cookie=[{cookie}]",
            r.method()
        )))),
        "/bin" => b
            .status(200)
            .body(Full::new(Bytes::from_static(&[0xff, 0x00, 0xfe, 0x01]))),
        "/big" => b
            .status(200)
            .body(Full::new(Bytes::from(vec![b'x'; 10_000]))),
        _ => b.status(404).body(Full::default()),
    }
    .unwrap())
}

async fn serve_plain() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), service_fn(handle)),
            );
        }
    });
    port
}

/// A CA, an intermediate and a leaf for 127.0.0.1 / localhost; (CA PEM, server config).
fn pki() -> (String, rustls::ServerConfig) {
    pki_for(&["localhost", "127.0.0.1"])
}

/// [`pki`] with a leaf for `names` (DNS names or IP addresses).
fn pki_for(names: &[&str]) -> (String, rustls::ServerConfig) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(vec![]).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "unit CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let ca_issuer = Issuer::new(ca, &ca_key);
    let int_key = KeyPair::generate().unwrap();
    let mut int = CertificateParams::new(vec![]).unwrap();
    int.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    int.distinguished_name
        .push(DnType::CommonName, "unit intermediate");
    let int_cert = int.signed_by(&int_key, &ca_issuer).unwrap();
    let int_issuer = Issuer::new(int, &int_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.not_after = rcgen::date_time_ymd(2090, 1, 1);
    let leaf_cert = leaf.signed_by(&leaf_key, &int_issuer).unwrap();
    let chain = vec![leaf_cert.der().clone(), int_cert.der().clone()];
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    (ca_cert.pem(), cfg)
}

async fn serve_tls(cfg: rustls::ServerConfig) -> u16 {
    serve_tls_on(cfg, "127.0.0.1:0").await
}

async fn serve_tls_on(cfg: rustls::ServerConfig, addr: &str) -> u16 {
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    let port = l.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(t) = acceptor.accept(s).await {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(t), service_fn(handle))
                        .await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn redirects_are_followed_and_reported_and_cookies_kept() {
    clear_cookies();
    let port = serve_plain().await;
    let mut r = req(&format!("http://127.0.0.1:{port}/a"));
    r.max_redirects = 1;
    let got = request(&dns(), &r).await.unwrap();
    assert_eq!(got.redirects.len(), 1, "{got:?}");
    assert_eq!(
        (
            got.redirects[0].status,
            got.redirects[0].location.as_deref()
        ),
        (302, Some("/b"))
    );
    assert_eq!(got.status, 301);
    assert!(
        got.redirect_not_followed
            .as_deref()
            .unwrap()
            .contains("limit"),
        "{got:?}"
    );
    assert_eq!(got.cookies_set, vec!["sid".to_string()]);
    assert!(got.timing.total_ms >= got.timing.first_byte_ms && got.tls.is_none());

    // The cookie goes along on the next call; a 307 keeps the method and body.
    let mut r = req(&format!("http://127.0.0.1:{port}/c"));
    r.method = http::Method::POST;
    r.body = Some(Bytes::from_static(b"x=1"));
    let got = request(&dns(), &r).await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.body, "POST cookie=[sid=s3cr3t]");
    assert_eq!(got.cookies_sent, vec!["sid".to_string()]);
    assert_eq!(got.final_url, format!("http://127.0.0.1:{port}/echo"));
    clear_cookies();
    let got = request(&dns(), &req(&format!("http://127.0.0.1:{port}/echo")))
        .await
        .unwrap();
    assert_eq!(got.body, "GET cookie=[]", "the jar was cleared");

    let mut r = req(&format!("http://127.0.0.1:{port}/a"));
    r.follow_redirects = false;
    let got = request(&dns(), &r).await.unwrap();
    assert_eq!((got.status, got.redirects.len()), (302, 0));
    assert_eq!(
        got.redirect_not_followed.as_deref(),
        Some("follow_redirects is false")
    );
}

#[tokio::test]
async fn bodies_are_bounded_and_binary_is_base64() {
    let port = serve_plain().await;
    let got = request(&dns(), &req(&format!("http://127.0.0.1:{port}/bin")))
        .await
        .unwrap();
    assert_eq!(
        (got.body_encoding.as_str(), got.body.as_str()),
        ("base64", "/wD+AQ==")
    );
    let mut r = req(&format!("http://127.0.0.1:{port}/big"));
    r.max_body = 100;
    let got = request(&dns(), &r).await.unwrap();
    assert!(got.truncated && got.body_bytes == 100 && got.body_encoding == "text");
}

#[tokio::test]
async fn https_untrusted_then_trusted_with_ca_pem_then_insecure() {
    let (ca_pem, cfg) = pki();
    let port = serve_tls(cfg).await;
    let url = format!("https://127.0.0.1:{port}/echo");
    let e = request(&dns(), &req(&url)).await.unwrap_err();
    assert_eq!(e.code, Code::TlsUntrusted, "{e}");
    assert!(e.text.contains("ca_pem"), "{e}");

    let mut r = req(&url);
    r.tls.ca_pem = Some(ca_pem);
    let got = request(&dns(), &r).await.unwrap();
    let tls = got.tls.expect("tls facts");
    assert!(tls.verified && !tls.insecure && tls.custom_ca, "{tls:?}");
    assert_eq!(tls.version, "TLS 1.3");
    assert!(tls.cipher.starts_with("TLS13_"), "{}", tls.cipher);
    assert_eq!(tls.chain.len(), 2, "leaf + intermediate");
    assert!(tls.chain[0].subject.contains("CN=localhost"));
    assert!(tls.chain[0].issuer.contains("unit intermediate"));
    assert!(
        tls.chain[0].sans.contains(&"IP:127.0.0.1".to_string()),
        "{:?}",
        tls.chain[0].sans
    );
    assert!(tls.chain[0].not_after.starts_with("2090-01-01") && tls.chain[0].days_left > 20_000);
    assert!(tls.chain[1].is_ca);
    assert!(got.timing.tls_ms.is_some_and(|t| t > 0.0));

    let mut r = req(&url);
    r.tls.insecure = true;
    let got = request(&dns(), &r).await.unwrap();
    let tls = got.tls.unwrap();
    assert!(
        tls.insecure && !tls.verified && tls.verify_error.is_some(),
        "{tls:?}"
    );
}

/// HTTPS to an IPv6 literal: the address is checked against the leaf's IP SANs — a leaf that
/// does not list `::1` is `tls_untrusted` with a text that says so (even with the CA given), one
/// that does verifies; the peer and family are the IPv6 ones.
#[tokio::test]
async fn https_to_an_ipv6_literal_checks_the_address_against_the_sans() {
    let (ca_pem, cfg) = pki();
    let port = serve_tls_on(cfg, "[::1]:0").await;
    let mut r = req(&format!("https://[::1]:{port}/echo"));
    r.tls.ca_pem = Some(ca_pem);
    let e = request(&dns(), &r).await.unwrap_err();
    assert_eq!(e.code, Code::TlsUntrusted, "{e}");
    assert!(
        e.text.contains("does not name ::1") && e.text.contains("127.0.0.1"),
        "{e}"
    );
    let (ca_pem, cfg) = pki_for(&["localhost", "::1"]);
    let port = serve_tls_on(cfg, "[::1]:0").await;
    let mut r = req(&format!("https://[::1]:{port}/echo"));
    r.tls.ca_pem = Some(ca_pem);
    r.family = Family::Ipv6;
    let got = request(&dns(), &r).await.unwrap();
    let tls = got.tls.as_ref().expect("tls facts");
    assert!(tls.verified, "{tls:?}");
    assert!(
        tls.chain[0].sans.contains(&"IP:::1".to_string()),
        "{:?}",
        tls.chain[0].sans
    );
    assert_eq!(
        (got.peer.as_str(), got.family.as_str(), got.status),
        (format!("[::1]:{port}").as_str(), "ipv6", 200)
    );
}

#[test]
fn cookie_rules() {
    let mut jar = Vec::new();
    let u = web_url("http://ap.test/portal/login").unwrap();
    assert_eq!(store_cookie(&mut jar, &u, "a=1").as_deref(), Some("a"));
    assert_eq!(
        store_cookie(&mut jar, &u, "b=2; Path=/; Secure"),
        Some("b".into())
    );
    assert_eq!(jar[0].path, "/portal");
    let (h, names) = cookie_header(&jar, &web_url("http://ap.test/portal/x").unwrap());
    assert_eq!(
        (h.as_deref(), names.len()),
        (Some("a=1"), 1),
        "secure stays off http"
    );
    let (h, _) = cookie_header(&jar, &web_url("https://ap.test/portalx").unwrap());
    assert_eq!(
        h.as_deref(),
        Some("b=2"),
        "path prefix on a segment boundary"
    );
    assert_eq!(
        cookie_header(&jar, &web_url("http://other.test/portal/").unwrap()).0,
        None
    );
    store_cookie(&mut jar, &u, "a=; Max-Age=0");
    assert_eq!(jar.len(), 1);
    assert!(store_cookie(&mut jar, &u, "novalue").is_none());
}

#[tokio::test]
async fn a_box_without_a_ca_store_says_so_and_ca_pem_still_works() {
    use crate::agent::net::tls::Client;
    let (ca_pem, cfg) = pki();
    let port = serve_tls(cfg).await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let bare = Client::with_system_roots(&TlsOptions::default(), &[], &[]).unwrap();
    let e = bare.handshake(tcp, "127.0.0.1").await.err().unwrap();
    assert_eq!(e.code, Code::TlsUntrusted, "{e}");
    assert!(
        e.text.contains("not trusted") && e.text.contains("no CA certificates of its own"),
        "{e}"
    );
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let opts = TlsOptions {
        ca_pem: Some(ca_pem),
        insecure: false,
    };
    let with_ca = Client::with_system_roots(&opts, &[], &[]).unwrap();
    let (_s, info, _) = with_ca.handshake(tcp, "127.0.0.1").await.unwrap();
    assert!(info.verified);
}
