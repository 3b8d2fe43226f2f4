//! `network_http_request`: one HTTP/1.1 exchange per hop over plain TCP or rustls, redirects
//! followed (or not) with the chain reported, cookies kept across calls (per agent: one box,
//! one WiFi) and cleared on disconnect, a bounded body excerpt, and the timing breakdown of the
//! last hop (DNS, TCP connect, TLS handshake, first byte) plus the total.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio_util::either::Either;

use super::conn::{connect_or_fail, resolve};
use super::ms_since;
use super::target::{Family, check_web_url, family_of, url_host};
use super::tls::{Client as TlsClient, TlsInfo, TlsOptions};
use crate::agent::failure::{Code, Failure};
use crate::agent::nettools::Dns;

/// The largest body excerpt a caller may ask for.
pub const MAX_BODY_EXCERPT: usize = 256 * 1024;
/// The largest request body.
pub const MAX_REQUEST_BODY: usize = 64 * 1024;
/// The most request headers.
pub const MAX_HEADERS: usize = 32;
/// The most redirects followed.
pub const MAX_REDIRECTS: u32 = 10;
/// Response headers reported (the rest are counted).
const MAX_RESPONSE_HEADERS: usize = 64;
/// Cookies kept in the jar.
const MAX_COOKIES: usize = 128;

/// Methods a caller may use.
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// Headers the tool sets itself and a caller may not.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
];

/// A validated request.
#[derive(Debug, Clone)]
pub struct Request {
    /// `http` or `https`, checked.
    pub url: url::Url,
    /// One of [`METHODS`].
    pub method: http::Method,
    /// Extra headers, checked.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Request body.
    pub body: Option<Bytes>,
    /// Body bytes returned at most.
    pub max_body: usize,
    /// Follow 301/302/303/307/308.
    pub follow_redirects: bool,
    /// At most this many redirects.
    pub max_redirects: u32,
    /// Trust for https.
    pub tls: TlsOptions,
    /// Address family.
    pub family: Family,
    /// Send and keep cookies.
    pub cookies: bool,
    /// Each connect's limit.
    pub connect_timeout: Duration,
}

/// Validate a method name.
pub fn method(m: &str) -> Result<http::Method, Failure> {
    let up = m.to_ascii_uppercase();
    if !METHODS.contains(&up.as_str()) {
        return Err(Failure::invalid(format!(
            "method {m:?} is not one of {}",
            METHODS.join(", ")
        )));
    }
    http::Method::from_bytes(up.as_bytes()).map_err(Failure::invalid)
}

/// Validate request headers: names and values HTTP allows (no CR/LF), none the tool sets.
pub fn headers(
    given: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, Failure> {
    if given.len() > MAX_HEADERS {
        return Err(Failure::invalid(format!(
            "at most {MAX_HEADERS} headers, got {}",
            given.len()
        )));
    }
    given
        .iter()
        .map(|(k, v)| {
            let name = http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| Failure::invalid(format!("{k:?} is not a valid header name")))?;
            if RESERVED.contains(&name.as_str()) {
                return Err(Failure::invalid(format!(
                    "the header {name} is set by the tool itself"
                )));
            }
            if v.len() > 8192 {
                return Err(Failure::invalid(format!(
                    "the header {name} is longer than 8192 bytes"
                )));
            }
            let value = http::HeaderValue::from_str(v).map_err(|_| {
                Failure::invalid(format!(
                    "the value of {name} has characters a header may not carry (CR, LF, controls)"
                ))
            })?;
            Ok((name, value))
        })
        .collect()
}

/// One response on the way (a redirect), or the last one.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Hop {
    /// The URL requested.
    pub url: String,
    /// The method used.
    pub method: String,
    /// The status answered.
    pub status: u16,
    /// Its `Location`, if any.
    pub location: Option<String>,
    /// The address connected to.
    pub peer: String,
    /// Time for this hop, ms.
    pub elapsed_ms: f64,
}

/// The timing breakdown of the last hop, and the total over all hops (ms).
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Timing {
    /// Name resolution (0 for an IP literal).
    pub dns_ms: f64,
    /// TCP connect.
    pub connect_ms: f64,
    /// TLS handshake (https only).
    pub tls_ms: Option<f64>,
    /// From the start of the hop to the response headers.
    pub first_byte_ms: f64,
    /// From the start of the hop to the end of the body excerpt.
    pub hop_ms: f64,
    /// The whole call, every redirect included.
    pub total_ms: f64,
}

/// Result of `network_http_request`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HttpResponse {
    /// The URL asked for.
    pub url: String,
    /// The URL of the last response (after redirects).
    pub final_url: String,
    /// The method of the last request.
    pub method: String,
    /// HTTP status of the last response.
    pub status: u16,
    /// Its reason phrase, when standard.
    pub reason: Option<String>,
    /// Response headers (name, value), in order; values cut at 1024 bytes.
    pub headers: Vec<(String, String)>,
    /// Headers not listed (beyond 64).
    pub headers_omitted: usize,
    /// The body excerpt: text when it is UTF-8, else base64.
    pub body: String,
    /// `text` or `base64`.
    pub body_encoding: String,
    /// Bytes in the excerpt.
    pub body_bytes: usize,
    /// Whether the body went on beyond the excerpt.
    pub truncated: bool,
    /// Every response before the last one (the redirect chain), in order.
    pub redirects: Vec<Hop>,
    /// The last response was a redirect not followed (follow_redirects false, the limit, or a
    /// target this tool does not fetch).
    pub redirect_not_followed: Option<String>,
    /// Address and port of the last peer.
    pub peer: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// Timings.
    pub timing: Timing,
    /// TLS facts of the last hop (https).
    pub tls: Option<TlsInfo>,
    /// Names of the cookies sent on the last request (values are not shown).
    pub cookies_sent: Vec<String>,
    /// Names of the cookies the responses set.
    pub cookies_set: Vec<String>,
}

/// A kept cookie: host-only, path-scoped, optionally https-only.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cookie {
    host: String,
    name: String,
    value: String,
    path: String,
    secure: bool,
}

/// The agent's cookie jar: one box, one WiFi, one jar; [`clear_cookies`] on disconnect.
static JAR: Mutex<Vec<Cookie>> = Mutex::new(Vec::new());

/// Forget every cookie (on disconnect, and before a connect to another network).
pub fn clear_cookies() {
    JAR.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

fn default_path(url: &url::Url) -> String {
    let p = url.path();
    match p.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => p[..i].to_string(),
    }
}

fn path_matches(cookie_path: &str, req_path: &str) -> bool {
    req_path == cookie_path
        || (req_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || req_path[cookie_path.len()..].starts_with('/')))
}

/// Parse one `Set-Cookie` value for `url` into the jar (a `Max-Age<=0` deletes).
fn store_cookie(jar: &mut Vec<Cookie>, url: &url::Url, header: &str) -> Option<String> {
    let mut parts = header.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() || name.len() > 256 || value.len() > 4096 {
        return None;
    }
    let mut path = default_path(url);
    let mut secure = false;
    let mut delete = false;
    for attr in parts {
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "path" if v.trim().starts_with('/') => path = v.trim().to_string(),
            "secure" => secure = true,
            "max-age" => delete = v.trim().parse::<i64>().is_ok_and(|n| n <= 0),
            _ => {}
        }
    }
    let host = url_host(url);
    jar.retain(|c| !(c.host == host && c.name == name && c.path == path));
    if !delete {
        if jar.len() >= MAX_COOKIES {
            jar.remove(0);
        }
        jar.push(Cookie {
            host,
            name: name.to_string(),
            value: value.to_string(),
            path,
            secure,
        });
    }
    Some(name.to_string())
}

/// The `Cookie` header for `url`, and the names in it.
fn cookie_header(jar: &[Cookie], url: &url::Url) -> (Option<String>, Vec<String>) {
    let host = url_host(url);
    let https = url.scheme() == "https";
    let found: Vec<&Cookie> = jar
        .iter()
        .filter(|c| c.host == host && (https || !c.secure) && path_matches(&c.path, url.path()))
        .collect();
    if found.is_empty() {
        return (None, vec![]);
    }
    let header = found
        .iter()
        .map(|c| format!("{}={}", c.name, c.value))
        .collect::<Vec<_>>()
        .join("; ");
    (Some(header), found.iter().map(|c| c.name.clone()).collect())
}

/// A body excerpt as text (valid UTF-8, possibly cut mid-character at the bound) or base64.
pub fn encode_body(body: &[u8], truncated: bool) -> (String, &'static str) {
    match std::str::from_utf8(body) {
        Ok(s) => (s.to_string(), "text"),
        Err(e) if truncated && e.error_len().is_none() => (
            String::from_utf8_lossy(&body[..e.valid_up_to()]).into_owned(),
            "text",
        ),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(body),
            "base64",
        ),
    }
}

struct HopResult {
    status: http::StatusCode,
    headers: http::HeaderMap,
    body: Vec<u8>,
    truncated: bool,
    peer: std::net::SocketAddr,
    timing: Timing,
    tls: Option<TlsInfo>,
    cookies_sent: Vec<String>,
}

/// An HTTP/1.1 connection, opened: the sender, its driver task, and what it took.
pub(crate) struct Opened {
    /// Send requests here.
    pub sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    /// The connection's task (abort it when done).
    pub driver: tokio::task::JoinHandle<Result<(), hyper::Error>>,
    /// The peer.
    pub peer: std::net::SocketAddr,
    /// DNS time, ms.
    pub dns_ms: f64,
    /// TCP connect time, ms.
    pub connect_ms: f64,
    /// TLS facts (https).
    pub tls: Option<TlsInfo>,
    /// TLS handshake time, ms.
    pub tls_ms: Option<f64>,
}

/// Resolve, connect, and for https handshake (offering `http/1.1`), then HTTP/1.1 over it.
pub(crate) async fn open(
    dns: &Dns,
    url: &url::Url,
    family: Family,
    tls_opts: &TlsOptions,
    connect_timeout: Duration,
) -> Result<Opened, Failure> {
    let host = url_host(url);
    let port = url.port_or_known_default().unwrap_or(80);
    let (ip, dns_ms) = resolve(dns, &host, family).await?;
    let peer = std::net::SocketAddr::new(ip, port);
    let (tcp, connect_ms) = connect_or_fail(peer, connect_timeout).await?;
    let (io, tls, tls_ms) = if url.scheme() == "https" {
        let client = TlsClient::new(tls_opts, &[b"http/1.1"])?;
        let (s, info, ms) = client.handshake(tcp, &host).await?;
        (Either::Right(s), Some(info), Some(ms))
    } else {
        (Either::Left(tcp), None, None)
    };
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| Failure::new(Code::Failed, format!("HTTP/1.1 with {peer}: {e}")))?;
    Ok(Opened {
        sender,
        driver: tokio::spawn(conn),
        peer,
        dns_ms,
        connect_ms,
        tls,
        tls_ms,
    })
}

/// The `Host` header and the request target (path and query) of `url`.
pub(crate) fn host_and_path(url: &url::Url) -> (String, String) {
    let host_header = match (url.host(), url.port()) {
        (Some(url::Host::Ipv6(ip)), Some(p)) => format!("[{ip}]:{p}"),
        (Some(url::Host::Ipv6(ip)), None) => format!("[{ip}]"),
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => String::new(),
    };
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    (host_header, path)
}

async fn one_hop(
    dns: &Dns,
    req: &Request,
    url: &url::Url,
    method: &http::Method,
    body: Option<&Bytes>,
    cookies_set: &mut Vec<String>,
) -> Result<HopResult, Failure> {
    let started = Instant::now();
    let Opened {
        mut sender,
        driver,
        peer,
        dns_ms,
        connect_ms,
        tls,
        tls_ms,
    } = open(dns, url, req.family, &req.tls, req.connect_timeout).await?;
    let (host_header, path) = host_and_path(url);
    let mut builder = http::Request::builder()
        .method(method.clone())
        .uri(path)
        .header(http::header::HOST, host_header)
        .header(http::header::USER_AGENT, "wifi-isolate-agent")
        .header(http::header::ACCEPT, "*/*");
    let (cookie, cookies_sent) = if req.cookies {
        cookie_header(&JAR.lock().unwrap_or_else(|p| p.into_inner()), url)
    } else {
        (None, vec![])
    };
    if let Some(c) = cookie {
        builder = builder.header(http::header::COOKIE, c);
    }
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    let request = builder
        .body(Full::new(body.cloned().unwrap_or_default()))
        .map_err(|e| Failure::invalid(format!("building the request: {e}")))?;
    let resp = sender
        .send_request(request)
        .await
        .map_err(|e| Failure::new(Code::Failed, format!("HTTP exchange with {peer}: {e}")))?;
    let first_byte_ms = ms_since(started);
    let status = resp.status();
    let headers = resp.headers().clone();
    if req.cookies {
        let mut jar = JAR.lock().unwrap_or_else(|p| p.into_inner());
        for v in headers.get_all(http::header::SET_COOKIE) {
            if let Some(n) = v.to_str().ok().and_then(|v| store_cookie(&mut jar, url, v))
                && !cookies_set.contains(&n)
            {
                cookies_set.push(n);
            }
        }
    }
    let mut out = Vec::new();
    let mut truncated = false;
    let mut b = resp.into_body();
    while let Some(frame) = b.frame().await {
        let frame = frame.map_err(|e| {
            Failure::new(Code::Failed, format!("reading the body from {peer}: {e}"))
        })?;
        if let Some(data) = frame.data_ref() {
            let room = req.max_body.saturating_sub(out.len());
            out.extend_from_slice(&data[..data.len().min(room)]);
            if data.len() > room {
                truncated = true;
                break;
            }
        }
    }
    drop(b);
    drop(sender);
    driver.abort();
    let hop_ms = ms_since(started);
    Ok(HopResult {
        status,
        headers,
        body: out,
        truncated,
        peer,
        timing: Timing {
            dns_ms,
            connect_ms,
            tls_ms,
            first_byte_ms,
            hop_ms,
            total_ms: 0.0,
        },
        tls,
        cookies_sent,
    })
}

/// Run `req`, following redirects as asked.
pub async fn request(dns: &Dns, req: &Request) -> Result<HttpResponse, Failure> {
    let started = Instant::now();
    let mut url = req.url.clone();
    let mut method = req.method.clone();
    let mut body = req.body.clone();
    let mut redirects = Vec::new();
    let mut cookies_set = Vec::new();
    loop {
        let hop = one_hop(dns, req, &url, &method, body.as_ref(), &mut cookies_set).await?;
        let location = hop
            .headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(2048).collect::<String>());
        let is_redirect = matches!(hop.status.as_u16(), 301 | 302 | 303 | 307 | 308);
        let mut not_followed = None;
        if is_redirect {
            match location.as_deref().map(|l| url.join(l)) {
                None => not_followed = Some("a redirect without a Location header".to_string()),
                Some(Err(e)) => not_followed = Some(format!("the Location is not a URL: {e}")),
                Some(Ok(next)) => {
                    if !req.follow_redirects {
                        not_followed = Some("follow_redirects is false".into());
                    } else if redirects.len() as u32 >= req.max_redirects {
                        not_followed = Some(format!(
                            "the redirect limit ({}) was reached",
                            req.max_redirects
                        ));
                    } else if let Err(f) = check_web_url(&next) {
                        not_followed = Some(format!("not followed: {}", f.text));
                    } else {
                        redirects.push(Hop {
                            url: url.to_string(),
                            method: method.to_string(),
                            status: hop.status.as_u16(),
                            location: location.clone(),
                            peer: hop.peer.to_string(),
                            elapsed_ms: hop.timing.hop_ms,
                        });
                        let code = hop.status.as_u16();
                        if code == 303
                            || ((code == 301 || code == 302) && method == http::Method::POST)
                        {
                            if method != http::Method::HEAD {
                                method = http::Method::GET;
                            }
                            body = None;
                        }
                        url = next;
                        continue;
                    }
                }
            }
        }
        let (text, enc) = encode_body(&hop.body, hop.truncated);
        let total = hop.headers.len();
        let mut timing = hop.timing;
        timing.total_ms = ms_since(started);
        return Ok(HttpResponse {
            url: req.url.to_string(),
            final_url: url.to_string(),
            method: method.to_string(),
            status: hop.status.as_u16(),
            reason: hop.status.canonical_reason().map(str::to_string),
            headers: hop
                .headers
                .iter()
                .take(MAX_RESPONSE_HEADERS)
                .map(|(k, v)| {
                    let v = String::from_utf8_lossy(v.as_bytes());
                    (k.to_string(), v.chars().take(1024).collect())
                })
                .collect(),
            headers_omitted: total.saturating_sub(MAX_RESPONSE_HEADERS),
            body: text,
            body_encoding: enc.into(),
            body_bytes: hop.body.len(),
            truncated: hop.truncated,
            redirects,
            redirect_not_followed: if is_redirect { not_followed } else { None },
            peer: hop.peer.to_string(),
            family: family_of(hop.peer.ip()).into(),
            timing,
            tls: hop.tls,
            cookies_sent: hop.cookies_sent,
            cookies_set,
        });
    }
}

#[cfg(test)]
mod tests;
