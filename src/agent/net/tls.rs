//! TLS for the tools (rustls, with the *ring* provider): the trust the caller chose — the box's
//! CA store (`rustls-native-certs`: `SSL_CERT_FILE`/`SSL_CERT_DIR`, else `/etc/ssl/certs`),
//! plus an optional CA given as PEM text — or an explicit `insecure` that still reports whether
//! the chain would have verified. After the handshake: the version, the cipher suite and a
//! summary of each certificate in the peer's chain (x509-parser).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::ms_since;
use crate::agent::failure::{Code, Failure};

/// The largest `ca_pem` accepted.
pub const MAX_CA_PEM: usize = 64 * 1024;
/// Certificates summarised per chain.
const MAX_CHAIN: usize = 8;

/// What the caller trusts.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Extra trust anchors, PEM text (one or more `CERTIFICATE` blocks).
    pub ca_pem: Option<String>,
    /// Complete the handshake whatever the certificate (the result says so, and whether the
    /// chain would have verified).
    pub insecure: bool,
}

/// One certificate of the peer's chain.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CertSummary {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Subject alternative names (`DNS:…`, `IP:…`, `email:…`, `URI:…`).
    pub sans: Vec<String>,
    /// Serial number, hex.
    pub serial: String,
    /// Valid from (RFC 3339, UTC).
    pub not_before: String,
    /// Valid until (RFC 3339, UTC).
    pub not_after: String,
    /// Whole days from now until `not_after` (negative: expired).
    pub days_left: i64,
    /// Whether it is a CA certificate (basicConstraints CA:TRUE).
    pub is_ca: bool,
}

/// What a TLS handshake established.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TlsInfo {
    /// Negotiated protocol version (`TLS 1.3`, `TLS 1.2`).
    pub version: String,
    /// Negotiated cipher suite (IANA name, e.g. `TLS13_AES_256_GCM_SHA384`).
    pub cipher: String,
    /// Negotiated ALPN protocol, if any.
    pub alpn: Option<String>,
    /// The name the certificate was checked against (SNI for names).
    pub server_name: String,
    /// Whether the chain verified against the trusted CAs and the name.
    pub verified: bool,
    /// Why it did not verify (set with `insecure`, which completed the handshake anyway).
    pub verify_error: Option<String>,
    /// Whether `insecure` was asked for.
    pub insecure: bool,
    /// Whether a caller's CA (`ca_pem`) was among the trust anchors.
    pub custom_ca: bool,
    /// The peer's certificates, leaf first.
    pub chain: Vec<CertSummary>,
}

/// Record the real verdict, and pass anything when insecure.
#[derive(Debug)]
struct Verifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    insecure: bool,
    verdict: Mutex<Option<Result<(), String>>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = match &self.inner {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
            // No trust anchor at all: the issuer is unknown, whoever it is.
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        };
        *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(got.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        if self.insecure {
            Ok(ServerCertVerified::assertion())
        } else {
            got
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The box's CA store, read once (`SSL_CERT_FILE` / `SSL_CERT_DIR`, else the system's).
fn native_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let r = rustls_native_certs::load_native_certs();
        if !r.errors.is_empty() {
            tracing::debug!(
                errors = r.errors.len(),
                "some CA certificates of the box were unreadable"
            );
        }
        r.certs
    })
}

/// Parse `ca_pem`: one or more PEM certificates, bounded; a clear `invalid_argument` otherwise.
pub fn parse_ca_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, Failure> {
    if pem.len() > MAX_CA_PEM {
        return Err(Failure::invalid(format!(
            "ca_pem is larger than {MAX_CA_PEM} bytes"
        )));
    }
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::invalid(format!("ca_pem is not PEM certificate text: {e}")))?;
    if certs.is_empty() {
        return Err(Failure::invalid(
            "ca_pem holds no -----BEGIN CERTIFICATE----- block",
        ));
    }
    for c in &certs {
        x509_parser::parse_x509_certificate(c).map_err(|e| {
            Failure::invalid(format!(
                "ca_pem holds a certificate that does not parse: {e}"
            ))
        })?;
    }
    Ok(certs)
}

/// A prepared client side: the config and its verdict recorder.
pub struct Client {
    config: Arc<rustls::ClientConfig>,
    verifier: Arc<Verifier>,
    opts: TlsOptions,
}

impl Client {
    /// A client for `opts`, offering `alpn` (e.g. `http/1.1`; empty for none).
    pub fn new(opts: &TlsOptions, alpn: &[&[u8]]) -> Result<Self, Failure> {
        Self::with_system_roots(opts, alpn, native_roots())
    }

    /// [`Client::new`] with `system` as the box's CA store (tests: an empty one).
    pub(crate) fn with_system_roots(
        opts: &TlsOptions,
        alpn: &[&[u8]],
        system: &[CertificateDer<'static>],
    ) -> Result<Self, Failure> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(system.iter().cloned());
        if let Some(pem) = &opts.ca_pem {
            for c in parse_ca_pem(pem)? {
                roots.add(c).map_err(|e| {
                    Failure::invalid(format!("ca_pem: not a usable CA certificate: {e}"))
                })?;
            }
        }
        let inner = if roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| Failure::new(Code::Failed, format!("TLS verifier: {e}")))?,
            )
        };
        let verifier = Arc::new(Verifier {
            inner,
            provider: provider.clone(),
            insecure: opts.insecure,
            verdict: Mutex::new(None),
        });
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Failure::new(Code::Failed, format!("TLS config: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Self {
            config: Arc::new(config),
            verifier,
            opts: opts.clone(),
        })
    }

    /// Handshake over `tcp` with `host` (a name: SNI and the name checked; an IP literal: the
    /// address checked). Returns the stream, what was negotiated, and the time it took.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        host: &str,
    ) -> Result<(TlsStream<TcpStream>, TlsInfo, f64), Failure> {
        let started = Instant::now();
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| Failure::invalid(format!("{host:?} is not a TLS server name: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let stream = connector.connect(name, tcp).await.map_err(|e| {
            let tls = e
                .get_ref()
                .and_then(|i| i.downcast_ref::<rustls::Error>())
                .cloned();
            match tls {
                Some(
                    t @ rustls::Error::InvalidCertificate(
                        rustls::CertificateError::NotValidForName
                        | rustls::CertificateError::NotValidForNameContext { .. },
                    ),
                ) => Failure::new(
                    Code::TlsUntrusted,
                    format!(
                        "TLS handshake with {host}: the server's certificate does not name {host}; \
                         ask for a name or address it lists, or insecure: true to look anyway \
                         ({})",
                        bounded(t.to_string())
                    ),
                ),
                Some(t @ rustls::Error::InvalidCertificate(_)) => Failure::new(
                    Code::TlsUntrusted,
                    format!(
                        "TLS handshake with {host}: the server's certificate is not trusted ({t}){}; \
                         give its CA as ca_pem, or insecure: true to look anyway",
                        if self.verifier.inner.is_none() {
                            ", and the box has no CA certificates of its own"
                        } else {
                            ""
                        }
                    ),
                ),
                Some(t) => Failure::new(
                    Code::TlsFailed,
                    format!("TLS handshake with {host} failed: {t}"),
                ),
                None => Failure::new(
                    Code::TlsFailed,
                    format!("TLS handshake with {host} failed: {e}"),
                ),
            }
        })?;
        let ms = ms_since(started);
        let (_, conn) = stream.get_ref();
        let verdict = self
            .verifier
            .verdict
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let info = TlsInfo {
            version: conn
                .protocol_version()
                .map(version_name)
                .unwrap_or_else(|| "unknown".into()),
            cipher: conn
                .negotiated_cipher_suite()
                .and_then(|s| s.suite().as_str().map(str::to_string))
                .unwrap_or_else(|| "unknown".into()),
            alpn: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            server_name: host.to_string(),
            verified: matches!(verdict, Some(Ok(()))),
            verify_error: match verdict {
                Some(Err(e)) => Some(e),
                Some(Ok(())) => None,
                None => Some("the certificate was not checked".into()),
            },
            insecure: self.opts.insecure,
            custom_ca: self.opts.ca_pem.is_some(),
            chain: conn
                .peer_certificates()
                .unwrap_or_default()
                .iter()
                .take(MAX_CHAIN)
                .map(|c| summarize(c, now_unix()))
                .collect(),
        };
        Ok((stream, info, ms))
    }
}

fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".into(),
        other => format!("{other:?}"),
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Cut a peer-provided string to a bound (untrusted input).
fn bounded(s: String) -> String {
    if s.len() <= 512 {
        return s;
    }
    let mut end = 512;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Summarise one DER certificate (`now`: Unix seconds, for `days_left`).
pub fn summarize(der: &[u8], now: i64) -> CertSummary {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return CertSummary {
            subject: "(unparsable certificate)".into(),
            issuer: String::new(),
            sans: vec![],
            serial: String::new(),
            not_before: String::new(),
            not_after: String::new(),
            days_left: 0,
            is_ca: false,
        };
    };
    let sans = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .take(64)
                .map(|n| match n {
                    GeneralName::DNSName(d) => format!("DNS:{d}"),
                    GeneralName::RFC822Name(m) => format!("email:{m}"),
                    GeneralName::URI(u) => format!("URI:{u}"),
                    GeneralName::IPAddress(b) => match b.len() {
                        4 => format!(
                            "IP:{}",
                            std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())
                        ),
                        16 => format!(
                            "IP:{}",
                            std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())
                        ),
                        _ => "IP:(malformed)".into(),
                    },
                    other => format!("{other:?}"),
                })
                .map(bounded)
                .collect()
        })
        .unwrap_or_default();
    let nb = cert.validity().not_before.timestamp();
    let na = cert.validity().not_after.timestamp();
    CertSummary {
        subject: bounded(cert.subject().to_string()),
        issuer: bounded(cert.issuer().to_string()),
        sans,
        serial: bounded(cert.raw_serial_as_string().replace(':', "")),
        not_before: rfc3339(nb),
        not_after: rfc3339(na),
        days_left: (na - now).div_euclid(86_400),
        is_ca: cert.is_ca(),
    }
}

/// Unix seconds as RFC 3339 UTC (`2026-12-01T17:41:59Z`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_147_519), "2026-12-01T17:51:59Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn ca_pem_refusals() {
        assert!(
            parse_ca_pem("hello")
                .unwrap_err()
                .text
                .contains("no -----BEGIN CERTIFICATE")
        );
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(parse_ca_pem(junk).unwrap_err().code, Code::InvalidArgument);
        assert!(
            parse_ca_pem(&"x".repeat(MAX_CA_PEM + 1))
                .unwrap_err()
                .text
                .contains("larger")
        );
    }

    #[test]
    fn a_garbage_certificate_summarises_without_panicking() {
        let s = summarize(b"\x30\x03\x02\x01\x00", 0);
        assert!(s.subject.contains("unparsable"));
    }
}
