//! Tool arguments to a wpa_supplicant network block: the security mode of `wifi_connect` (or
//! the EAP method of `wifi_connect_eap`) becomes `key_mgmt`, `psk`/`sae_password`,
//! `ieee80211w`, `eap`, `phase2`… Validation only: nothing is sent to wpa_supplicant here.

use super::err;
use super::schema::{
    ConnectArgs, ConnectEapArgs, EapKind, EapSecurity, MacMode, SaePkMode, SecretArg, SecurityMode,
};
use crate::agent::certs::Certs;
use crate::agent::{Agent, NetworkSpec};
use crate::networks::{Profile, Security};
use crate::validate::{self, Bssid, Passphrase, SaePassword, Ssid};
use crate::wpa::{Cipher, EapMethod, KeyMgmt, MgmtCipher, NetworkField, Phase2, TlsCiphers};

/// Build the network fields for `wifi_connect`; validation only, nothing is sent.
pub fn psk_spec(agent_perm_mac: Option<[u8; 6]>, a: &ConnectArgs) -> Result<NetworkSpec, String> {
    let ssid = Ssid::parse(
        a.ssid
            .as_deref()
            .ok_or("give ssid, or network (a saved network: see wifi_saved_networks)")?,
    )
    .map_err(err)?;
    let mut fields = vec![NetworkField::Ssid(ssid.clone())];
    let mut secrets = Vec::new();
    if let Some(b) = &a.bssid {
        fields.push(NetworkField::Bssid(Bssid::parse(b).map_err(err)?));
    }
    if a.hidden {
        fields.push(NetworkField::ScanSsid(true));
    }
    let password = a.password.as_ref().map(SecretArg::expose);
    let security = match (a.security, password, a.sae_pk) {
        (SecurityMode::Auto, None, _) => SecurityMode::Open,
        // SAE-PK is SAE only: auto with sae_pk required means WPA3-SAE
        (SecurityMode::Auto, Some(_), SaePkMode::Required) => SecurityMode::Wpa3Sae,
        (s, _, _) => s,
    };
    sae_pk_check(security, password, a.sae_pk)?;
    match (security, password) {
        (SecurityMode::Open, Some(_)) => {
            return Err("security is open but a password was given; drop one of them".into());
        }
        (SecurityMode::Open, None) => fields.push(NetworkField::KeyMgmt(vec![KeyMgmt::None])),
        (SecurityMode::Owe, Some(_)) => {
            return Err(
                "security is owe (no password) but a password was given; drop one of them".into(),
            );
        }
        (SecurityMode::Owe, None) => {
            fields.push(NetworkField::KeyMgmt(vec![KeyMgmt::Owe]));
            fields.push(NetworkField::Ieee80211w(2));
        }
        (_, None) => {
            return Err(format!(
                "security {security:?} needs a password (8-63 printable ASCII characters)"
            ));
        }
        (SecurityMode::Wpa2Psk, Some(p)) => {
            let pass = Passphrase::parse(p).map_err(err)?;
            secrets.push(p.to_owned());
            fields.push(NetworkField::KeyMgmt(vec![KeyMgmt::WpaPsk]));
            fields.push(NetworkField::Psk(pass));
        }
        (SecurityMode::Wpa3Sae, Some(p)) => {
            let sae = SaePassword::parse(p).map_err(err)?;
            secrets.push(p.to_owned());
            fields.push(NetworkField::KeyMgmt(vec![KeyMgmt::Sae]));
            fields.push(NetworkField::SaePassword(sae));
            // SAE-PK needs PMF: required here anyway
            fields.push(NetworkField::Ieee80211w(2));
            fields.extend(sae_pk_field(a.sae_pk));
        }
        (SecurityMode::Auto | SecurityMode::Wpa2Wpa3, Some(p)) => {
            let pass = Passphrase::parse(p).map_err(err)?;
            if security == SecurityMode::Wpa2Wpa3 && pass.is_raw_psk() {
                return Err(
                    "security wpa2-psk/wpa3-sae needs the passphrase: SAE cannot use a \
                            64-hex-digit PSK (give wpa2-psk for a raw PSK)"
                        .into(),
                );
            }
            secrets.push(p.to_owned());
            // FT-PSK too: 802.11r fast transition (wifi_roam) where the AP offers it; SAE is
            // still preferred over it, and it over plain PSK (wpa_supplicant's AKM order).
            if pass.is_raw_psk() {
                fields.push(NetworkField::KeyMgmt(vec![KeyMgmt::WpaPsk, KeyMgmt::FtPsk]));
            } else {
                fields.push(NetworkField::KeyMgmt(vec![
                    KeyMgmt::WpaPsk,
                    KeyMgmt::FtPsk,
                    KeyMgmt::Sae,
                ]));
                fields.push(NetworkField::SaePassword(
                    SaePassword::parse(p).map_err(err)?,
                ));
                fields.push(NetworkField::Ieee80211w(1));
                fields.extend(sae_pk_field(a.sae_pk));
            }
            fields.push(NetworkField::Psk(pass));
        }
    }
    let mac = match a.mac_address {
        MacMode::Permanent => {
            fields.push(NetworkField::MacAddr(0));
            None
        }
        MacMode::Random => {
            fields.push(NetworkField::MacAddr(1));
            None
        }
        MacMode::PerNetwork => {
            fields.push(NetworkField::MacAddr(0));
            let perm = agent_perm_mac.ok_or("the adapter's permanent MAC is unknown")?;
            Some(crate::agent::per_network_mac(perm, ssid.as_bytes()))
        }
    };
    Ok(NetworkSpec {
        ssid,
        fields,
        secrets,
        mac,
        uploads: Vec::new(),
    })
}

/// `sae_pk` with the security it goes with: required needs SAE and an SAE-PK password (its
/// format and checksum), off needs SAE; neither is for a network without SAE. The password is
/// never quoted.
fn sae_pk_check(
    security: SecurityMode,
    password: Option<&str>,
    mode: SaePkMode,
) -> Result<(), String> {
    let sae = match security {
        SecurityMode::Wpa3Sae | SecurityMode::Wpa2Wpa3 => true,
        // auto with a passphrase offers SAE too (not with a raw 64-hex-digit PSK)
        SecurityMode::Auto => {
            password.is_some_and(|p| Passphrase::parse(p).is_ok_and(|pass| !pass.is_raw_psk()))
        }
        SecurityMode::Open | SecurityMode::Owe | SecurityMode::Wpa2Psk => false,
    };
    let name = match mode {
        SaePkMode::Auto => return Ok(()),
        SaePkMode::Required => "required",
        SaePkMode::Off => "off",
    };
    if !sae {
        return Err(format!(
            "sae_pk {name} is for SAE (WPA3-Personal) networks, and security {} has no SAE: \
             drop sae_pk or give security wpa3-sae",
            security_name(security)
        ));
    }
    if mode == SaePkMode::Required
        && let Err(why) = validate::sae_pk_password(password.unwrap_or_default())
    {
        return Err(format!(
            "sae_pk required needs an SAE-PK password, and this one is not: {why}"
        ));
    }
    Ok(())
}

/// The network's `sae_pk` field: nothing for auto (wpa_supplicant's default, 0).
fn sae_pk_field(mode: SaePkMode) -> Option<NetworkField> {
    match mode {
        SaePkMode::Auto => None,
        SaePkMode::Required => Some(NetworkField::SaePk(1)),
        SaePkMode::Off => Some(NetworkField::SaePk(2)),
    }
}

fn security_name(s: SecurityMode) -> &'static str {
    match s {
        SecurityMode::Auto => "auto",
        SecurityMode::Open => "open",
        SecurityMode::Wpa2Psk => "wpa2-psk",
        SecurityMode::Wpa3Sae => "wpa3-sae",
        SecurityMode::Wpa2Wpa3 => "wpa2-psk/wpa3-sae",
        SecurityMode::Owe => "owe",
    }
}

/// Build the network fields for `wifi_connect_eap`. Certificates and keys: PEM text is stored
/// in the box-private upload dir, paths only from the certs dir ([`crate::agent::certs`]); on a
/// refused argument nothing stays behind.
pub fn eap_spec(agent: &Agent, a: &ConnectEapArgs) -> Result<NetworkSpec, String> {
    eap_spec_with(agent.certs(), a)
}

fn eap_spec_with(certs: &Certs, a: &ConnectEapArgs) -> Result<NetworkSpec, String> {
    let mut uploads = Vec::new();
    let spec = eap_fields(certs, a, &mut uploads);
    if spec.is_err() {
        certs.discard(&uploads);
    }
    spec.map(|(ssid, fields, secrets)| NetworkSpec {
        ssid,
        fields,
        secrets,
        mac: None,
        uploads,
    })
}

/// Build the network fields for a saved network (the box's copy of a host profile): the profile
/// becomes the arguments a client would have sent inline, so it takes the very same path
/// ([`psk_spec`], or `eap_spec`'s) and gives the same network block. PEM text in the profile
/// goes to the box-private upload dir, as inline PEM does.
pub fn profile_spec(
    agent_perm_mac: Option<[u8; 6]>,
    certs: &Certs,
    p: &Profile,
) -> Result<NetworkSpec, String> {
    p.validate()?;
    let secret = |s: &Option<String>| s.as_deref().map(SecretArg::new);
    if let (Security::Eap, Some(e)) = (p.security, &p.eap) {
        return eap_spec_with(
            certs,
            &ConnectEapArgs {
                ssid: p.ssid.clone(),
                security: EapSecurity::Auto,
                method: e.method,
                identity: e.identity.clone(),
                anonymous_identity: e.anonymous_identity.clone(),
                password: secret(&e.password),
                ca_cert: e.ca_cert.clone(),
                client_cert: e.client_cert.clone(),
                private_key: secret(&e.private_key),
                private_key_password: secret(&e.private_key_password),
                domain_suffix_match: e.domain_suffix_match.clone(),
                bssid: p.bssid.clone(),
                hidden: p.hidden,
                timeout_secs: None,
            },
        );
    }
    let (security, password) = match p.security {
        Security::Open | Security::Eap => (SecurityMode::Open, None),
        Security::Wpa2Psk => (SecurityMode::Wpa2Psk, secret(&p.psk)),
        Security::Transition => (SecurityMode::Auto, secret(&p.psk)),
        Security::Wpa3Sae => (SecurityMode::Wpa3Sae, secret(&p.sae_password)),
    };
    psk_spec(
        agent_perm_mac,
        &ConnectArgs {
            network: None,
            ssid: Some(p.ssid.clone()),
            password,
            bssid: p.bssid.clone(),
            hidden: p.hidden,
            security,
            mac_address: p.mac_address,
            sae_pk: SaePkMode::Auto,
            timeout_secs: None,
        },
    )
}

/// The inline secrets of `wifi_connect_eap` arguments, by name (for `inline_secrets = false`).
pub fn inline_eap_secrets(a: &ConnectEapArgs) -> Vec<&'static str> {
    inline_credential_secrets(
        a.password.as_ref(),
        a.private_key.as_ref(),
        a.private_key_password.as_ref(),
    )
}

/// The inline secrets of an EAP credential (`wifi_connect_eap`, `wifi_connect_passpoint`), by
/// name: a password, a private key given as PEM text (a file name is not a secret), its password.
pub(super) fn inline_credential_secrets(
    password: Option<&SecretArg>,
    private_key: Option<&SecretArg>,
    private_key_password: Option<&SecretArg>,
) -> Vec<&'static str> {
    let mut v = Vec::new();
    if password.is_some() {
        v.push("password");
    }
    if private_key.is_some_and(|k| k.expose().contains("-----BEGIN")) {
        v.push("private_key (PEM text)");
    }
    if private_key_password.is_some() {
        v.push("private_key_password");
    }
    v
}

type EapFields = (Ssid, Vec<NetworkField>, Vec<String>);

/// An EAP-TLS client's certificate, key and key password, as wpa_supplicant reads them.
pub(super) struct TlsClient {
    pub cert: crate::validate::FilePath,
    pub key: crate::validate::FilePath,
    pub key_password: Option<validate::EapPassword>,
}

/// Resolve an EAP-TLS client's certificate and key (PEM text goes to the box-private upload
/// dir, a name must be a file of the certificates directory) and check its key password; the
/// key's PEM text and the password join `secrets`. `what` names the method in the errors.
pub(super) fn tls_client(
    certs: &Certs,
    what: &str,
    cert: Option<&str>,
    key: Option<&SecretArg>,
    key_password: Option<&SecretArg>,
    uploads: &mut Vec<std::path::PathBuf>,
    secrets: &mut Vec<String>,
) -> Result<TlsClient, String> {
    let cert = cert.ok_or_else(|| format!("{what} needs client_cert"))?;
    let key = key
        .map(SecretArg::expose)
        .ok_or_else(|| format!("{what} needs private_key"))?;
    if key.contains("-----BEGIN") {
        secrets.push(key.to_owned());
    }
    let cert = certs.resolve("client_cert", cert, uploads)?;
    let key = certs.resolve("private_key", key, uploads)?;
    let key_password = match key_password.map(SecretArg::expose) {
        Some(p) => {
            secrets.push(p.to_owned());
            Some(validate::EapPassword::parse_key_password(p).map_err(err)?)
        }
        None => None,
    };
    Ok(TlsClient {
        cert,
        key,
        key_password,
    })
}

/// The key management, PMF and cipher fields of an enterprise network block.
fn eap_security_fields(sec: EapSecurity, method: EapKind) -> Result<Vec<NetworkField>, String> {
    Ok(match sec {
        EapSecurity::Auto => vec![
            NetworkField::KeyMgmt(vec![KeyMgmt::WpaEap, KeyMgmt::WpaEapSha256]),
            NetworkField::Ieee80211w(1),
        ],
        EapSecurity::Wpa2Eap => vec![NetworkField::KeyMgmt(vec![KeyMgmt::WpaEap])],
        EapSecurity::Wpa3Eap => vec![
            NetworkField::KeyMgmt(vec![KeyMgmt::WpaEapSha256]),
            NetworkField::Ieee80211w(2),
        ],
        EapSecurity::Wpa3Eap192 if method != EapKind::Tls => {
            return Err(
                "security wpa3-eap-192 (WPA3-Enterprise 192-bit) needs method tls: suite B \
                 allows EAP-TLS only"
                    .into(),
            );
        }
        EapSecurity::Wpa3Eap192 => vec![
            NetworkField::KeyMgmt(vec![KeyMgmt::WpaEapSuiteB192]),
            NetworkField::Ieee80211w(2),
            NetworkField::Pairwise(vec![Cipher::Gcmp256]),
            NetworkField::Group(vec![Cipher::Gcmp256]),
            NetworkField::GroupMgmt(MgmtCipher::BipGmac256),
            NetworkField::OpensslCiphers(TlsCiphers::SuiteB192),
        ],
    })
}

fn eap_fields(
    certs: &crate::agent::certs::Certs,
    a: &ConnectEapArgs,
    uploads: &mut Vec<std::path::PathBuf>,
) -> Result<EapFields, String> {
    let ssid = Ssid::parse(&a.ssid).map_err(err)?;
    let mut fields = vec![NetworkField::Ssid(ssid.clone())];
    fields.extend(eap_security_fields(a.security, a.method)?);
    let mut secrets = Vec::new();
    if let Some(b) = &a.bssid {
        fields.push(NetworkField::Bssid(Bssid::parse(b).map_err(err)?));
    }
    if a.hidden {
        fields.push(NetworkField::ScanSsid(true));
    }
    fields.push(NetworkField::Identity(
        validate::EapIdentity::parse(&a.identity).map_err(err)?,
    ));
    match a.method {
        EapKind::Peap | EapKind::Ttls => {
            fields.push(NetworkField::Eap(if a.method == EapKind::Peap {
                EapMethod::Peap
            } else {
                EapMethod::Ttls
            }));
            fields.push(NetworkField::Phase2(Phase2::Mschapv2));
            let pw = a
                .password
                .as_ref()
                .map(SecretArg::expose)
                .ok_or("PEAP and TTLS need a password")?;
            secrets.push(pw.to_string());
            fields.push(NetworkField::Password(
                validate::EapPassword::parse(pw).map_err(err)?,
            ));
            if let Some(anon) = &a.anonymous_identity {
                fields.push(NetworkField::AnonymousIdentity(
                    validate::EapIdentity::parse_anonymous(anon).map_err(err)?,
                ));
            }
        }
        EapKind::Tls => {
            fields.push(NetworkField::Eap(EapMethod::Tls));
            let t = tls_client(
                certs,
                "EAP-TLS",
                a.client_cert.as_deref(),
                a.private_key.as_ref(),
                a.private_key_password.as_ref(),
                uploads,
                &mut secrets,
            )?;
            fields.push(NetworkField::ClientCert(t.cert));
            fields.push(NetworkField::PrivateKey(t.key));
            if let Some(p) = t.key_password {
                fields.push(NetworkField::PrivateKeyPasswd(p));
            }
        }
    }
    if let Some(ca) = &a.ca_cert {
        fields.push(NetworkField::CaCert(certs.resolve("ca_cert", ca, uploads)?));
    }
    if let Some(d) = &a.domain_suffix_match {
        fields.push(NetworkField::DomainSuffixMatch(
            validate::Hostname::parse(d).map_err(err)?,
        ));
    }
    Ok((ssid, fields, secrets))
}

#[cfg(test)]
mod tests {
    //! Table tests: each security mode (and EAP method) a client can ask for, and the exact
    //! network-block lines wpa_supplicant receives (`SET_NETWORK 0 <field> <value>`, prefix
    //! dropped); each bad input refused with its reason.

    use super::*;
    use crate::agent::certs::Certs;
    use crate::wpa::Command;
    use serde_json::{Value, json};

    const PASS: &str = "correct horse";
    const RAW_PSK: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const PEM_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const PEM_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

    /// The lines wpa_supplicant is sent for these fields, in order.
    fn lines(fields: &[NetworkField]) -> Vec<String> {
        fields
            .iter()
            .map(|field| {
                let text = Command::SetNetwork {
                    id: 0,
                    field: field.clone(),
                }
                .encode();
                text.strip_prefix("SET_NETWORK 0 ").unwrap().to_owned()
            })
            .collect()
    }

    fn hex(text: &str) -> String {
        hex::encode(text.as_bytes())
    }

    /// `wifi_connect` arguments as a client sends them (so the schema's names are tested too).
    fn connect(args: Value) -> ConnectArgs {
        serde_json::from_value(args).expect("valid wifi_connect arguments")
    }

    fn psk_lines(args: Value) -> Result<Vec<String>, String> {
        psk_spec(None, &connect(args)).map(|spec| lines(&spec.fields))
    }

    #[test]
    fn each_security_mode_becomes_its_network_block() {
        let ssid = format!("ssid {}", hex("lab"));
        let quoted = format!("psk \"{PASS}\"");
        let sae = format!("sae_password {}", hex(PASS));
        let raw = format!("psk {RAW_PSK}");
        #[rustfmt::skip]
        let table: Vec<(Value, Vec<&str>)> = vec![
            // auto without a password is open
            (json!({"ssid": "lab"}),
             vec![&ssid, "key_mgmt NONE", "mac_addr 0"]),
            (json!({"ssid": "lab", "security": "open"}),
             vec![&ssid, "key_mgmt NONE", "mac_addr 0"]),
            (json!({"ssid": "lab", "security": "wpa2-psk", "password": PASS}),
             vec![&ssid, "key_mgmt WPA-PSK", &quoted, "mac_addr 0"]),
            (json!({"ssid": "lab", "security": "wpa2-psk", "password": RAW_PSK}),
             vec![&ssid, "key_mgmt WPA-PSK", &raw, "mac_addr 0"]),
            // WPA3: SAE only, management frame protection required
            (json!({"ssid": "lab", "security": "wpa3-sae", "password": PASS}),
             vec![&ssid, "key_mgmt SAE", &sae, "ieee80211w 2", "mac_addr 0"]),
            // auto with a passphrase: WPA2 or WPA3, whichever the AP offers (PMF optional)
            (json!({"ssid": "lab", "password": PASS}),
             vec![&ssid, "key_mgmt WPA-PSK FT-PSK SAE", &sae, "ieee80211w 1", &quoted, "mac_addr 0"]),
            (json!({"ssid": "lab", "security": "auto", "password": PASS}),
             vec![&ssid, "key_mgmt WPA-PSK FT-PSK SAE", &sae, "ieee80211w 1", &quoted, "mac_addr 0"]),
            // auto with a raw PSK: SAE has no raw-PSK form, so WPA2 (with FT) only
            (json!({"ssid": "lab", "password": RAW_PSK}),
             vec![&ssid, "key_mgmt WPA-PSK FT-PSK", &raw, "mac_addr 0"]),
            // hidden: probe for the SSID; bssid: lock to one AP
            (json!({"ssid": "lab", "hidden": true}),
             vec![&ssid, "scan_ssid 1", "key_mgmt NONE", "mac_addr 0"]),
            (json!({"ssid": "lab", "hidden": true, "bssid": "02:00:00:00:01:00",
                    "security": "wpa3-sae", "password": PASS}),
             vec![&ssid, "bssid 02:00:00:00:01:00", "scan_ssid 1", "key_mgmt SAE", &sae,
                  "ieee80211w 2", "mac_addr 0"]),
            (json!({"ssid": "lab", "mac_address": "random"}),
             vec![&ssid, "key_mgmt NONE", "mac_addr 1"]),
            // OWE: no password, PMF required
            (json!({"ssid": "lab", "security": "owe"}),
             vec![&ssid, "key_mgmt OWE", "ieee80211w 2", "mac_addr 0"]),
            (json!({"ssid": "lab", "mac_address": "permanent"}),
             vec![&ssid, "key_mgmt NONE", "mac_addr 0"]),
        ];
        for (args, want) in table {
            let got = psk_lines(args.clone()).unwrap_or_else(|e| panic!("{args}: {e}"));
            assert_eq!(got, want, "{args}");
        }
    }

    #[test]
    fn explicit_transition_is_auto_with_a_password_and_owe_takes_none() {
        let auto = psk_lines(json!({"ssid": "lab", "password": PASS})).unwrap();
        let mixed =
            psk_lines(json!({"ssid": "lab", "password": PASS, "security": "wpa2-psk/wpa3-sae"}))
                .unwrap();
        assert_eq!(auto, mixed);
        let e =
            psk_lines(json!({"ssid": "lab", "password": RAW_PSK, "security": "wpa2-psk/wpa3-sae"}))
                .unwrap_err();
        assert!(e.contains("passphrase"), "{e}");
        let e = psk_lines(json!({"ssid": "lab", "password": PASS, "security": "owe"})).unwrap_err();
        assert!(e.contains("owe"), "{e}");
        assert!(
            serde_json::from_value::<ConnectArgs>(json!({"ssid": "x", "security": "owe-ish"}))
                .is_err()
        );
    }

    #[test]
    fn secrets_are_listed_for_redaction_and_never_in_the_clear_for_sae() {
        let spec = psk_spec(None, &connect(json!({"ssid": "lab", "password": PASS}))).unwrap();
        assert_eq!(spec.secrets, vec![PASS.to_owned()]);
        assert_eq!(spec.ssid.as_bytes(), b"lab");
        assert_eq!((spec.mac, spec.uploads.len()), (None, 0));
        let sae = psk_spec(
            None,
            &connect(json!({"ssid": "lab", "security": "wpa3-sae", "password": "a b\"c"})),
        )
        .unwrap();
        assert_eq!(sae.secrets, vec!["a b\"c".to_owned()]);
        // Hex: a quote or a space in an SAE password cannot end the value.
        assert!(lines(&sae.fields).contains(&format!("sae_password {}", hex("a b\"c"))));
        let open = psk_spec(None, &connect(json!({"ssid": "lab"}))).unwrap();
        assert!(open.secrets.is_empty());
    }

    #[test]
    fn per_network_mac_is_derived_from_the_permanent_mac_and_the_ssid() {
        let perm = [0x02, 0, 0, 0, 1, 0];
        let args = connect(json!({"ssid": "lab", "mac_address": "per-network"}));
        let spec = psk_spec(Some(perm), &args).unwrap();
        assert_eq!(spec.mac, Some(crate::agent::per_network_mac(perm, b"lab")));
        // The MAC is set on the interface, so the network block keeps the permanent one.
        assert_eq!(lines(&spec.fields).last().unwrap(), "mac_addr 0");
        let e = psk_spec(None, &args).err().unwrap();
        assert_eq!(e, "the adapter's permanent MAC is unknown");
    }

    #[test]
    fn sae_pk_sets_the_network_block_and_refuses_what_cannot_be_sae_pk() {
        const PK: &str = "7hda-6lh3-3x5h";
        let ssid = format!("ssid {}", hex("lab"));
        let sae = format!("sae_password {}", hex(PK));
        #[rustfmt::skip]
        let table: Vec<(Value, Vec<&str>)> = vec![
            // required: SAE-PK only (sae_pk 1), PMF required
            (json!({"ssid": "lab", "security": "wpa3-sae", "password": PK, "sae_pk": "required"}),
             vec![&ssid, "key_mgmt SAE", &sae, "ieee80211w 2", "sae_pk 1", "mac_addr 0"]),
            // auto security with sae_pk required is WPA3-SAE: SAE-PK has no WPA2 half
            (json!({"ssid": "lab", "password": PK, "sae_pk": "required"}),
             vec![&ssid, "key_mgmt SAE", &sae, "ieee80211w 2", "sae_pk 1", "mac_addr 0"]),
            // auto (the default) leaves wpa_supplicant's automatic mode (0): no field
            (json!({"ssid": "lab", "security": "wpa3-sae", "password": PK}),
             vec![&ssid, "key_mgmt SAE", &sae, "ieee80211w 2", "mac_addr 0"]),
            // off: plain SAE even with an SAE-PK password
            (json!({"ssid": "lab", "security": "wpa3-sae", "password": PK, "sae_pk": "off"}),
             vec![&ssid, "key_mgmt SAE", &sae, "ieee80211w 2", "sae_pk 2", "mac_addr 0"]),
        ];
        for (args, want) in table {
            assert_eq!(psk_lines(args.clone()).unwrap(), want, "{args}");
        }
        #[rustfmt::skip]
        let bad: Vec<(Value, &str)> = vec![
            (json!({"ssid": "lab", "security": "wpa3-sae", "password": "correct horse 5",
                    "sae_pk": "required"}),
             "sae_pk required needs an SAE-PK password, and this one is not: an SAE-PK password \
              is groups of four"),
            (json!({"ssid": "lab", "security": "wpa3-sae", "password": "7hda-6lh3-3x5g",
                    "sae_pk": "required"}),
             "sae_pk required needs an SAE-PK password, and this one is not: its last character \
              is not the checksum of the others (a typo?)"),
            (json!({"ssid": "lab", "security": "wpa2-psk", "password": PK, "sae_pk": "required"}),
             "sae_pk required is for SAE (WPA3-Personal) networks, and security wpa2-psk has no \
              SAE: drop sae_pk or give security wpa3-sae"),
            (json!({"ssid": "lab", "sae_pk": "required"}),
             "sae_pk required is for SAE (WPA3-Personal) networks, and security open has no SAE"),
            (json!({"ssid": "lab", "security": "owe", "sae_pk": "off"}),
             "sae_pk off is for SAE (WPA3-Personal) networks, and security owe has no SAE"),
            (json!({"ssid": "lab", "password": RAW_PSK, "sae_pk": "off"}),
             "sae_pk off is for SAE (WPA3-Personal) networks, and security auto has no SAE"),
        ];
        for (args, want) in bad {
            let e = psk_lines(args.clone()).unwrap_err();
            assert!(e.starts_with(want), "{args}: {e}");
            // the password is never quoted back
            assert!(!e.contains("7hda") && !e.contains("correct horse"), "{e}");
        }
        assert!(
            serde_json::from_value::<ConnectArgs>(json!({"ssid": "lab", "sae_pk": "yes"})).is_err()
        );
    }

    #[test]
    fn bad_connect_input_is_refused_with_its_reason() {
        let long = "x".repeat(33);
        #[rustfmt::skip]
        let table: Vec<(Value, &str)> = vec![
            (json!({"ssid": "lab", "security": "open", "password": PASS}),
             "security is open but a password was given; drop one of them"),
            (json!({"ssid": "lab", "security": "wpa2-psk"}),
             "security Wpa2Psk needs a password (8-63 printable ASCII characters)"),
            (json!({"ssid": "lab", "security": "wpa3-sae"}),
             "security Wpa3Sae needs a password (8-63 printable ASCII characters)"),
            (json!({"ssid": ""}), "SSID must be 1 to 32 bytes long"),
            (json!({"ssid": long}), "SSID must be 1 to 32 bytes long"),
            (json!({"ssid": "lab", "password": "short"}),
             "passphrase must be 8 to 63 printable ASCII characters"),
            (json!({"ssid": "lab", "security": "wpa2-psk", "password": "x".repeat(64)}),
             "passphrase must be 8 to 63 printable ASCII characters"),
            (json!({"ssid": "lab", "security": "wpa2-psk", "password": "new\nline!"}),
             "is not printable ASCII"),
            (json!({"ssid": "lab", "password": "tab\there!"}), "is not printable ASCII"),
            (json!({"ssid": "lab", "security": "wpa3-sae", "password": "nul\0here"}),
             "SAE password character 4 is a control character"),
            (json!({"ssid": "lab", "security": "wpa3-sae", "password": ""}),
             "SAE password must be 1 to 255 bytes long"),
            (json!({"ssid": "lab", "bssid": "02:00:00:00:01"}), "is not a MAC address"),
        ];
        for (args, want) in table {
            let e = psk_lines(args.clone()).expect_err(&args.to_string());
            assert!(e.contains(want), "{args}: {e}");
        }
    }

    #[test]
    fn without_ssid_or_network_the_call_says_which_to_give() {
        let e = psk_lines(json!({"security": "open"})).unwrap_err();
        assert!(e.contains("give ssid, or network"), "{e}");
    }

    /// A secret of the wrong JSON type is refused with a fixed text: serde's own would quote
    /// it (`invalid type: integer `12345678``), and rmcp puts that text in a reply and a log.
    #[test]
    fn a_secret_of_the_wrong_type_is_never_quoted() {
        for bad in [
            json!(12345678),
            json!(-12345678),
            json!(1234.5678),
            json!(true),
            json!(["12345678"]),
            json!({"x": "12345678"}),
        ] {
            let e = serde_json::from_value::<ConnectArgs>(json!({"ssid": "lab", "password": bad}))
                .err()
                .unwrap()
                .to_string();
            assert_eq!(e, super::super::schema::SECRET_NOT_A_STRING, "{bad}");
            for field in ["password", "private_key", "private_key_password"] {
                let mut args = json!({"ssid": "c", "method": "tls", "identity": "u"});
                args[field] = bad.clone();
                let e = serde_json::from_value::<ConnectEapArgs>(args)
                    .err()
                    .unwrap();
                assert!(!e.to_string().contains("1234"), "{field}: {e}");
            }
        }
        // null is "absent", as for any optional argument.
        let a = connect(json!({"ssid": "lab", "password": null}));
        assert!(a.password.is_none());
    }

    fn profile(text: &str) -> Profile {
        Profile::parse(text, "t").unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// A saved network gives the same network block as the same values sent inline.
    #[test]
    fn a_profile_becomes_the_block_its_inline_twin_does() {
        let l = lab();
        #[rustfmt::skip]
        let table: Vec<(String, Value)> = vec![
            ("ssid = \"lab\"\nsecurity = \"open\"\n".into(),
             json!({"ssid": "lab", "security": "open"})),
            (format!("ssid = \"lab\"\nsecurity = \"wpa2-psk\"\npsk = \"{PASS}\"\nhidden = true\n"),
             json!({"ssid": "lab", "security": "wpa2-psk", "password": PASS, "hidden": true})),
            (format!("ssid = \"lab\"\nsecurity = \"wpa3-sae\"\nsae_password = \"{PASS}\"\n\
                      bssid = \"02:00:00:00:01:00\"\nmac_address = \"random\"\n"),
             json!({"ssid": "lab", "security": "wpa3-sae", "password": PASS,
                    "bssid": "02:00:00:00:01:00", "mac_address": "random"})),
            (format!("ssid = \"lab\"\nsecurity = \"wpa2-psk/wpa3-sae\"\npsk = \"{PASS}\"\n"),
             json!({"ssid": "lab", "password": PASS})),
        ];
        for (text, inline) in table {
            let p = profile(&text);
            let got = profile_spec(None, &l.certs, &p).unwrap();
            assert_eq!(
                lines(&got.fields),
                psk_lines(inline.clone()).unwrap(),
                "{text}"
            );
            assert_eq!(
                got.secrets,
                psk_spec(None, &connect(inline)).unwrap().secrets
            );
        }
        let ca = l.tmp.path().join("certs/ca.pem").display().to_string();
        let eap = profile(&format!(
            "ssid = \"corp\"\nsecurity = \"eap\"\n[eap]\nmethod = \"peap\"\nidentity = \"alice\"\n\
             password = \"s3cret pw\"\nca_cert = {ca:?}\n",
        ));
        let got = profile_spec(None, &l.certs, &eap).unwrap();
        let want = eap_lines(
            &l,
            json!({"ssid": "corp", "method": "peap", "identity": "alice",
                   "password": "s3cret pw", "ca_cert": ca}),
        )
        .unwrap();
        assert_eq!(lines(&got.fields), want);
        assert_eq!(got.secrets, vec!["s3cret pw".to_owned()]);
        // PEM text in the box copy goes to the upload dir, like inline PEM.
        let tls = profile(&format!(
            "ssid = \"corp\"\nsecurity = \"eap\"\n[eap]\nmethod = \"tls\"\nidentity = \"d\"\n\
             client_cert = {PEM_CERT:?}\nprivate_key = {PEM_KEY:?}\n"
        ));
        let got = profile_spec(None, &l.certs, &tls).unwrap();
        assert_eq!(got.uploads.len(), 2);
        assert_eq!(got.secrets, vec![PEM_KEY.to_owned()]);
        l.certs.discard(&got.uploads);
    }

    #[test]
    fn unknown_security_and_mac_modes_are_refused_by_the_schema() {
        for args in [
            json!({"ssid": "lab", "security": "wep"}),
            json!({"ssid": "lab", "security": "WPA2-PSK"}),
            json!({"ssid": "lab", "security": "wpa2_psk"}),
            json!({"ssid": "lab", "mac_address": "spoofed"}),
            json!({"ssid": "lab", "hidden": "yes"}),
        ] {
            assert!(
                serde_json::from_value::<ConnectArgs>(args.clone()).is_err(),
                "{args}"
            );
        }
        let e = serde_json::from_value::<ConnectEapArgs>(
            json!({"ssid": "lab", "method": "md5", "identity": "u"}),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("md5"), "{e}");
    }

    /// A certificates directory with `ca.pem`, a file outside it, and a [`Certs`] over both.
    struct Lab {
        tmp: tempfile::TempDir,
        certs: Certs,
    }

    fn lab() -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let allowed = tmp.path().join("certs");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::write(allowed.join("ca.pem"), PEM_CERT).unwrap();
        std::fs::write(tmp.path().join("outside.pem"), PEM_CERT).unwrap();
        let certs = Certs::new(&allowed, tmp.path().join("private/certs"));
        Lab { tmp, certs }
    }

    fn eap(lab: &Lab, args: Value) -> (Result<EapFields, String>, Vec<std::path::PathBuf>) {
        let args: ConnectEapArgs = serde_json::from_value(args).expect("valid arguments");
        let mut uploads = Vec::new();
        let got = eap_fields(&lab.certs, &args, &mut uploads);
        (got, uploads)
    }

    fn eap_lines(lab: &Lab, args: Value) -> Result<Vec<String>, String> {
        let (got, uploads) = eap(lab, args);
        lab.certs.discard(&uploads);
        got.map(|(_, fields, _)| lines(&fields))
    }

    #[test]
    fn each_eap_method_becomes_its_network_block() {
        const AUTO: &str = "key_mgmt WPA-EAP WPA-EAP-SHA256";
        let l = lab();
        let ca = l.tmp.path().join("certs/ca.pem").display().to_string();
        let ssid = format!("ssid {}", hex("corp"));
        let identity = format!("identity {}", hex("alice"));
        let mschapv2 = format!("phase2 {}", hex("auth=MSCHAPV2"));
        let password = format!("password {}", hex("s3cret pw"));
        let anonymous = format!("anonymous_identity {}", hex("anonymous"));
        let ca_line = format!("ca_cert {}", hex(&ca));
        let domain = format!("domain_suffix_match {}", hex("radius.example.org"));
        #[rustfmt::skip]
        let table: Vec<(Value, Vec<&str>)> = vec![
            (json!({"ssid": "corp", "method": "peap", "identity": "alice",
                    "password": "s3cret pw"}),
             vec![&ssid, AUTO, "ieee80211w 1", &identity, "eap PEAP", &mschapv2, &password]),
            (json!({"ssid": "corp", "method": "ttls", "identity": "alice",
                    "password": "s3cret pw", "anonymous_identity": "anonymous"}),
             vec![&ssid, AUTO, "ieee80211w 1", &identity, "eap TTLS", &mschapv2, &password,
                  &anonymous]),
            (json!({"ssid": "corp", "method": "peap", "identity": "alice",
                    "password": "s3cret pw", "security": "wpa2-eap"}),
             vec![&ssid, "key_mgmt WPA-EAP", &identity, "eap PEAP", &mschapv2, &password]),
            (json!({"ssid": "corp", "method": "ttls", "identity": "alice",
                    "password": "s3cret pw", "security": "wpa3-eap"}),
             vec![&ssid, "key_mgmt WPA-EAP-SHA256", "ieee80211w 2", &identity, "eap TTLS",
                  &mschapv2, &password]),
            (json!({"ssid": "corp", "method": "peap", "identity": "alice",
                    "password": "s3cret pw", "ca_cert": "ca.pem",
                    "domain_suffix_match": "radius.example.org",
                    "bssid": "02:00:00:00:02:00", "hidden": true}),
             vec![&ssid, AUTO, "ieee80211w 1", "bssid 02:00:00:00:02:00", "scan_ssid 1",
                  &identity, "eap PEAP", &mschapv2, &password, &ca_line, &domain]),
        ];
        for (args, want) in table {
            let got = eap_lines(&l, args.clone()).unwrap_or_else(|e| panic!("{args}: {e}"));
            assert_eq!(got, want, "{args}");
        }
    }

    #[test]
    fn eap_tls_uploads_pem_and_lists_the_key_and_its_password_as_secrets() {
        let l = lab();
        let (got, uploads) = eap(
            &l,
            json!({"ssid": "corp", "method": "tls", "identity": "dev1",
                   "client_cert": PEM_CERT, "private_key": PEM_KEY,
                   "private_key_password": "keypw", "ca_cert": "ca.pem"}),
        );
        let (ssid, fields, secrets) = got.unwrap();
        assert_eq!(ssid.as_bytes(), b"corp");
        assert_eq!(uploads.len(), 2, "client_cert and private_key stored");
        for up in &uploads {
            assert!(up.starts_with(l.certs.upload_dir()), "{}", up.display());
        }
        let path = |p: &std::path::PathBuf| hex(&p.display().to_string());
        let ca = l.tmp.path().join("certs/ca.pem").display().to_string();
        assert_eq!(
            lines(&fields),
            vec![
                format!("ssid {}", hex("corp")),
                "key_mgmt WPA-EAP WPA-EAP-SHA256".to_owned(),
                "ieee80211w 1".to_owned(),
                format!("identity {}", hex("dev1")),
                "eap TLS".to_owned(),
                format!("client_cert {}", path(&uploads[0])),
                format!("private_key {}", path(&uploads[1])),
                format!("private_key_passwd {}", hex("keypw")),
                format!("ca_cert {}", hex(&ca)),
            ]
        );
        assert_eq!(secrets, vec![PEM_KEY.to_owned(), "keypw".to_owned()]);
        l.certs.discard(&uploads);
    }

    #[test]
    fn eap_192_bit_mode_is_suite_b_and_needs_eap_tls() {
        let l = lab();
        let (got, _) = eap(
            &l,
            json!({"ssid": "corp", "method": "tls", "identity": "dev1",
                   "client_cert": PEM_CERT, "private_key": PEM_KEY,
                   "security": "wpa3-eap-192"}),
        );
        let (_, fields, _) = got.unwrap();
        let got = lines(&fields);
        assert_eq!(
            got[1..7],
            [
                "key_mgmt WPA-EAP-SUITE-B-192",
                "ieee80211w 2",
                "pairwise GCMP-256",
                "group GCMP-256",
                "group_mgmt BIP-GMAC-256",
                "openssl_ciphers \"SUITEB192\"",
            ]
        );
        for method in ["peap", "ttls"] {
            let (got, uploads) = eap(
                &l,
                json!({"ssid": "corp", "method": method, "identity": "alice",
                       "password": "pw", "security": "wpa3-eap-192"}),
            );
            let e = got.unwrap_err();
            assert!(e.contains("needs method tls"), "{method}: {e}");
            assert!(uploads.is_empty());
        }
    }

    #[test]
    fn bad_eap_input_is_refused_with_its_reason() {
        let l = lab();
        let outside = l.tmp.path().join("outside.pem").display().to_string();
        #[rustfmt::skip]
        let table: Vec<(Value, &str)> = vec![
            (json!({"ssid": "corp", "method": "peap", "identity": "alice"}),
             "PEAP and TTLS need a password"),
            (json!({"ssid": "corp", "method": "ttls", "identity": "alice"}),
             "PEAP and TTLS need a password"),
            (json!({"ssid": "corp", "method": "tls", "identity": "dev1",
                    "private_key": PEM_KEY}),
             "EAP-TLS needs client_cert"),
            (json!({"ssid": "corp", "method": "tls", "identity": "dev1",
                    "client_cert": PEM_CERT}),
             "EAP-TLS needs private_key"),
            (json!({"ssid": "corp", "method": "peap", "identity": "", "password": "pw"}),
             "EAP identity must be 1 to 255 bytes"),
            (json!({"ssid": "corp", "method": "peap", "identity": "a\nb", "password": "pw"}),
             "EAP identity must be 1 to 255 bytes"),
            (json!({"ssid": "corp", "method": "peap", "identity": "alice", "password": ""}),
             "EAP password must be 1 to 255 bytes"),
            (json!({"ssid": "corp", "method": "ttls", "identity": "alice", "password": "pw",
                    "anonymous_identity": "anon\u{0}"}),
             "EAP anonymous identity must be 1 to 255 bytes"),
            (json!({"ssid": "corp", "method": "peap", "identity": "alice", "password": "pw",
                    "ca_cert": outside}),
             "certificates and keys are read only from"),
            (json!({"ssid": "corp", "method": "peap", "identity": "alice", "password": "pw",
                    "ca_cert": "../outside.pem"}),
             "contains a '..' component"),
            (json!({"ssid": "corp", "method": "peap", "identity": "alice", "password": "pw",
                    "domain_suffix_match": "bad domain"}),
             "is not valid"),
            (json!({"ssid": "", "method": "peap", "identity": "alice", "password": "pw"}),
             "SSID must be 1 to 32 bytes long"),
            (json!({"ssid": "corp", "method": "tls", "identity": "dev1",
                    "client_cert": PEM_CERT, "private_key": PEM_KEY,
                    "private_key_password": "pw\n"}),
             "private key password must be 1 to 255 bytes"),
        ];
        for (args, want) in table {
            let e = eap_lines(&l, args.clone()).expect_err(&args.to_string());
            assert!(e.contains(want), "{args}: {e}");
        }
    }
}
