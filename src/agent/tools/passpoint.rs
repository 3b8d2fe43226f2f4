//! The Hotspot 2.0 / Passpoint tools ([`crate::agent::passpoint`]): `wifi_anqp` (what an AP
//! answers over ANQP) and `wifi_connect_passpoint` (join by a credential: realm + username and
//! password, or a client certificate) — their arguments, checked by [`cred_spec`] before
//! anything reaches wpa_supplicant, and a router of their own.

use std::time::Duration;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::err;
use super::progress::Progress;
use super::router::WifiTools;
use super::schema::{EapKind, SecretArg};
use crate::agent::ConnectResult;
use crate::agent::certs::Certs;
use crate::agent::failure::Failure;
use crate::agent::passpoint::{AnqpReport, CredSpec};
use crate::validate::{self, Bssid, Hostname};
use crate::wpa::{CredField, EapMethod, Phase2};

/// `wifi_anqp` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnqpArgs {
    /// The access point, as wifi_scan lists it (it must offer interworking).
    pub bssid: String,
    /// Give up after this many seconds (default 10, max 60).
    pub timeout_secs: Option<u64>,
}

/// `wifi_connect_passpoint` arguments.
// No Debug: it holds a password.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectPasspointArgs {
    /// The credential's home realm (a domain name such as example.com), matched against the
    /// NAI realms the access points answer over ANQP.
    pub realm: String,
    /// ttls (default) or peap, with MSCHAPv2 inside and a password; or tls, with a client
    /// certificate and key.
    #[serde(default = "ttls")]
    pub eap: EapKind,
    /// The user name (the inner identity; the outer one is anonymous@realm), e.g.
    /// user@example.com.
    pub username: String,
    /// The password (ttls, peap). May be refused by the host's policy.
    pub password: Option<SecretArg>,
    /// Client certificate (tls): PEM text or a file in the box's certificates directory.
    pub client_cert: Option<String>,
    /// Client private key (tls): PEM text or a file in the certificates directory.
    pub private_key: Option<SecretArg>,
    /// Password of the private key, if it is encrypted.
    pub private_key_password: Option<SecretArg>,
    /// CA certificate to verify the server: PEM text or a file in the certificates directory.
    pub ca_cert: Option<String>,
    /// The home operator's domain (an AP whose ANQP domain list has it is "home", else
    /// "roaming").
    pub domain: Option<String>,
    /// Accept only a server certificate for this domain (or a subdomain).
    pub domain_suffix_match: Option<String>,
    /// A roaming consortium OI the AP must list: 6 or 10 hex digits (3 or 5 bytes), up to 30.
    pub roaming_consortium: Option<String>,
    /// Give up after this many seconds (default 45, max 300): a scan, ANQP with every
    /// interworking AP, then the association.
    pub timeout_secs: Option<u64>,
}

fn ttls() -> EapKind {
    EapKind::Ttls
}

/// The inline secrets of `wifi_connect_passpoint` arguments, by name (for `inline_secrets =
/// false`, as `wifi_connect_eap` honours it).
pub fn inline_passpoint_secrets(a: &ConnectPasspointArgs) -> Vec<&'static str> {
    super::translate::inline_credential_secrets(
        a.password.as_ref(),
        a.private_key.as_ref(),
        a.private_key_password.as_ref(),
    )
}

/// A realm: a domain name (letters, digits, `-`, `.`), at most 253 characters.
fn realm(text: &str) -> Result<Hostname, String> {
    Hostname::parse(text).map_err(|e| format!("realm: {e}"))
}

/// A roaming consortium OI: 3 to 15 bytes as hex.
fn oi(text: &str) -> Result<Vec<u8>, String> {
    let bad = || {
        format!(
            "roaming_consortium {:?} is not an OI: 6 to 30 hex digits (3 to 15 bytes), e.g. 506f9a",
            validate::shorten(text)
        )
    };
    if !(6..=30).contains(&text.len()) || !text.len().is_multiple_of(2) {
        return Err(bad());
    }
    hex::decode(text).map_err(|_| bad())
}

/// Build the credential for `wifi_connect_passpoint`; validation only, nothing is sent. PEM text
/// goes to the box-private upload dir ([`Certs::resolve`]); on a refused argument nothing stays
/// behind.
pub fn cred_spec(certs: &Certs, a: &ConnectPasspointArgs) -> Result<CredSpec, String> {
    let mut uploads = Vec::new();
    let spec = cred_fields(certs, a, &mut uploads);
    if spec.is_err() {
        certs.discard(&uploads);
    }
    spec.map(|(fields, secrets)| CredSpec {
        realm: a.realm.clone(),
        fields,
        secrets,
        uploads,
    })
}

fn cred_fields(
    certs: &Certs,
    a: &ConnectPasspointArgs,
    uploads: &mut Vec<std::path::PathBuf>,
) -> Result<(Vec<CredField>, Vec<String>), String> {
    let mut fields = vec![
        CredField::Realm(realm(&a.realm)?),
        CredField::Username(validate::EapIdentity::parse(&a.username).map_err(err)?),
    ];
    let mut secrets = Vec::new();
    let tls_args = a.client_cert.is_some() || a.private_key.is_some();
    match a.eap {
        EapKind::Ttls | EapKind::Peap => {
            if tls_args || a.private_key_password.is_some() {
                return Err(format!(
                    "eap {} takes a password, not client_cert/private_key (those are for \
                     eap tls): drop one of them",
                    if a.eap == EapKind::Ttls {
                        "ttls"
                    } else {
                        "peap"
                    }
                ));
            }
            let pw = a
                .password
                .as_ref()
                .map(SecretArg::expose)
                .ok_or("eap ttls and peap need a password")?;
            secrets.push(pw.to_owned());
            fields.push(CredField::Password(
                validate::EapPassword::parse(pw).map_err(err)?,
            ));
            fields.push(CredField::Eap(if a.eap == EapKind::Ttls {
                EapMethod::Ttls
            } else {
                EapMethod::Peap
            }));
            fields.push(CredField::Phase2(Phase2::Mschapv2));
        }
        EapKind::Tls => {
            if a.password.is_some() {
                return Err(
                    "eap tls takes client_cert and private_key, not a password: drop one of them"
                        .into(),
                );
            }
            let t = super::translate::tls_client(
                certs,
                "eap tls",
                a.client_cert.as_deref(),
                a.private_key.as_ref(),
                a.private_key_password.as_ref(),
                uploads,
                &mut secrets,
            )?;
            fields.push(CredField::Eap(EapMethod::Tls));
            fields.push(CredField::ClientCert(t.cert));
            fields.push(CredField::PrivateKey(t.key));
            if let Some(p) = t.key_password {
                fields.push(CredField::PrivateKeyPasswd(p));
            }
        }
    }
    if let Some(d) = &a.domain {
        fields.push(CredField::Domain(
            Hostname::parse(d).map_err(|e| format!("domain: {e}"))?,
        ));
    }
    if let Some(d) = &a.domain_suffix_match {
        fields.push(CredField::DomainSuffixMatch(
            Hostname::parse(d).map_err(|e| format!("domain_suffix_match: {e}"))?,
        ));
    }
    if let Some(o) = &a.roaming_consortium {
        fields.push(CredField::RoamingConsortium(oi(o)?));
    }
    // Last: a PEM upload only once everything else is known to be good.
    if let Some(ca) = &a.ca_cert {
        fields.push(CredField::CaCert(certs.resolve("ca_cert", ca, uploads)?));
    }
    Ok((fields, secrets))
}

#[tool_router(router = passpoint_router, vis = "pub(super)")]
impl WifiTools {
    #[tool(
        description = "Ask an access point (bssid, from wifi_scan; it must offer 802.11u \
                       interworking) over ANQP, before joining, what it offers: venue (group, \
                       type, names by language), NAI realms with their EAP methods and auth \
                       parameters (e.g. ttls + non_eap_inner_auth mschapv2 + credential_type \
                       username_password), the operator's domain names, roaming consortium \
                       OIs, network authentication types and, for Hotspot 2.0 APs, the \
                       operator's friendly names and WAN metrics. problems lists answers that \
                       were malformed or cut short.",
        annotations(title = "ANQP query", read_only_hint = true, open_world_hint = true)
    )]
    async fn wifi_anqp(
        &self,
        Parameters(a): Parameters<AnqpArgs>,
    ) -> Result<Json<AnqpReport>, Failure> {
        let bssid = Bssid::parse(&a.bssid).map_err(Failure::invalid)?;
        let timeout = match a.timeout_secs {
            None => Duration::from_secs(10),
            Some(s) if (1..=60).contains(&s) => Duration::from_secs(s),
            Some(s) => {
                return Err(Failure::invalid(format!(
                    "timeout_secs must be 1-60, got {s}"
                )));
            }
        };
        Ok(Json(self.agent.anqp(bssid, timeout).await?))
    }

    #[tool(
        description = "Connect to a Hotspot 2.0 / Passpoint network by credential instead of \
                       SSID: realm + username + password (eap ttls or peap, MSCHAPv2 inside) \
                       or a client certificate (eap tls), optional ca_cert, domain, \
                       roaming_consortium. wpa_supplicant scans, asks each interworking AP \
                       for its NAI realms over ANQP and joins the best match; then DHCP, as \
                       wifi_connect. Returns ip, gateway, dns, the ssid and bssid joined. No \
                       matching AP: not_found naming the interworking APs and realms seen. \
                       The credential is removed on failure and by wifi_disconnect.",
        annotations(
            title = "Connect by Passpoint credential",
            destructive_hint = true,
            open_world_hint = true
        )
    )]
    async fn wifi_connect_passpoint(
        &self,
        Parameters(a): Parameters<ConnectPasspointArgs>,
        meta: rmcp::model::RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<ConnectResult>, Failure> {
        let t = super::router::timeout_of(a.timeout_secs, 45)?;
        let inline = inline_passpoint_secrets(&a);
        if !inline.is_empty() && !self.agent.options().inline_secrets {
            return Err(super::router::inline_refused(&inline.join(", ")));
        }
        let spec = cred_spec(self.agent.certs(), &a).map_err(Failure::invalid)?;
        let progress = Progress::new(peer, &meta);
        let result = self
            .agent
            .connect_passpoint(spec, t, &progress.sink())
            .await;
        progress.flush().await;
        Ok(Json(result?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wpa::Command;
    use serde_json::{Value, json};

    const PW: &str = "passpoint secret";

    struct Lab {
        _tmp: tempfile::TempDir,
        certs: Certs,
    }

    fn lab() -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let allowed = tmp.path().join("certs");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::write(
            allowed.join("ca.pem"),
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let certs = Certs::new(&allowed, tmp.path().join("private/certs"));
        Lab { _tmp: tmp, certs }
    }

    fn lines(lab: &Lab, args: Value) -> Result<Vec<String>, String> {
        let a: ConnectPasspointArgs = serde_json::from_value(args).expect("valid arguments");
        cred_spec(&lab.certs, &a).map(|s| {
            s.fields
                .into_iter()
                .map(|field| Command::SetCred { id: 0, field }.encode())
                .collect()
        })
    }

    fn hex(t: &str) -> String {
        hex::encode(t.as_bytes())
    }

    #[test]
    fn a_realm_credential_becomes_its_set_cred_lines() {
        let lab = lab();
        let got = lines(
            &lab,
            json!({"realm": "Lab.Test", "username": "user@lab.test", "password": PW,
                   "domain": "hs.lab.test", "roaming_consortium": "506F9A",
                   "ca_cert": "ca.pem"}),
        )
        .unwrap();
        let ca = lab.certs.check_path("ca_cert", "ca.pem").unwrap();
        assert_eq!(
            got,
            vec![
                format!("SET_CRED 0 realm {}", hex("lab.test")),
                format!("SET_CRED 0 username {}", hex("user@lab.test")),
                format!("SET_CRED 0 password {}", hex(PW)),
                "SET_CRED 0 eap TTLS".to_string(),
                format!("SET_CRED 0 phase2 {}", hex("auth=MSCHAPV2")),
                format!("SET_CRED 0 domain {}", hex("hs.lab.test")),
                "SET_CRED 0 roaming_consortium 506f9a".to_string(),
                format!("SET_CRED 0 ca_cert {}", hex(ca.as_str())),
            ]
        );
        let peap = lines(
            &lab,
            json!({"realm": "lab.test", "username": "u", "password": PW, "eap": "peap"}),
        )
        .unwrap();
        assert_eq!(peap[3], "SET_CRED 0 eap PEAP");
    }

    #[test]
    fn the_password_is_redacted_in_what_is_logged() {
        let f = CredField::Password(validate::EapPassword::parse(PW).unwrap());
        let c = Command::SetCred { id: 2, field: f };
        assert!(c.is_sensitive());
        assert_eq!(c.to_string(), "SET_CRED 2 password <redacted>");
        assert!(!format!("{c:?}").contains(PW));
    }

    #[test]
    fn bad_credentials_are_refused_with_their_reason() {
        let lab = lab();
        let long = format!("{}.test", "a".repeat(300));
        #[rustfmt::skip]
        let table: Vec<(Value, &str)> = vec![
            (json!({"realm": "", "username": "u", "password": PW}), "realm"),
            (json!({"realm": "lab test", "username": "u", "password": PW}), "realm"),
            (json!({"realm": long, "username": "u", "password": PW}), "realm"),
            (json!({"realm": "lab.test", "username": "", "password": PW}), "identity"),
            (json!({"realm": "lab.test", "username": "u"}), "need a password"),
            (json!({"realm": "lab.test", "username": "u", "password": PW,
                    "client_cert": "client.pem"}), "drop one"),
            (json!({"realm": "lab.test", "username": "u", "password": PW, "eap": "tls",
                    "client_cert": "c.pem", "private_key": "k.pem"}), "drop one"),
            (json!({"realm": "lab.test", "username": "u", "eap": "tls"}), "client_cert"),
            (json!({"realm": "lab.test", "username": "u", "password": PW,
                    "roaming_consortium": "50"}), "OI"),
            (json!({"realm": "lab.test", "username": "u", "password": PW,
                    "roaming_consortium": "zz6f9a"}), "OI"),
            (json!({"realm": "lab.test", "username": "u", "password": PW,
                    "domain": "a b"}), "domain"),
            (json!({"realm": "lab.test", "username": "u", "password": PW,
                    "ca_cert": "../etc/passwd"}), "ca_cert"),
        ];
        for (args, want) in table {
            let e = lines(&lab, args.clone()).unwrap_err();
            assert!(e.contains(want), "{args}: {e}");
        }
        // Unknown fields and unknown methods: refused by the schema.
        for bad in [
            json!({"realm": "lab.test", "username": "u", "password": PW, "ssid": "x"}),
            json!({"realm": "lab.test", "username": "u", "password": PW, "eap": "md5"}),
        ] {
            assert!(serde_json::from_value::<ConnectPasspointArgs>(bad).is_err());
        }
        assert!(serde_json::from_value::<AnqpArgs>(json!({"bssid": "x", "y": 1})).is_err());
    }

    #[test]
    fn a_refused_credential_leaves_no_upload_behind() {
        let lab = lab();
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let a: ConnectPasspointArgs = serde_json::from_value(json!({
            "realm": "lab.test", "username": "u", "eap": "tls", "client_cert": pem,
            "private_key": "missing.key"
        }))
        .unwrap();
        assert!(cred_spec(&lab.certs, &a).is_err());
        let dir = lab._tmp.path().join("private/certs");
        let left = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0);
        assert_eq!(inline_passpoint_secrets(&a), Vec::<&str>::new());
    }
}
