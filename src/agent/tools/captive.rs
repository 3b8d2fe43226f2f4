//! The captive-portal tools ([`crate::agent::net::captive`]): `network_check_captive` (the
//! check, the redirect chain, the portal page's forms) and `network_captive_login` (submit one
//! of them, then check again) — their arguments, bounds and results. A router of their own,
//! added to [`WifiTools`]'s.

use std::collections::BTreeMap;
use std::time::Duration;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::progress::Progress;
use super::router::WifiTools;
use crate::agent::failure::{Code, Failure};
use crate::agent::net::captive::{self, CaptiveCheck, CaptiveLogin, Fetch, Login};
use crate::agent::net::portal::{self, FieldValue};
use crate::agent::net::target::{self, Family};
use crate::agent::net::tls::TlsOptions;

/// The most fields a caller sets.
pub const MAX_GIVEN_FIELDS: usize = 64;
/// The longest field value a caller sets.
pub const MAX_GIVEN_VALUE: usize = 4096;

/// `network_check_captive` arguments.
#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CaptiveCheckArgs {
    /// Connectivity-check URL answering 204 (default: the agent's configured one); http:// or
    /// https://.
    pub url: Option<String>,
    /// For an https portal: also trust this CA (PEM text).
    pub ca_pem: Option<String>,
    /// For an https portal: read it whatever its certificate (default false).
    pub insecure: Option<bool>,
    /// Address family: auto (default: IPv4 when the box has an IPv4 address and the name an A
    /// record, else IPv6), ipv4 or ipv6; the result's `family` says which was used. ipv6 on a
    /// network that gave the box no IPv6 address fails with family_unavailable, nothing sent.
    pub family: Option<Family>,
}

/// `network_captive_login` arguments.
#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CaptiveLoginArgs {
    /// Which form of the portal page to submit: its index in network_check_captive's
    /// portal.forms (default: the first that can be submitted; at most 15).
    pub form: Option<usize>,
    /// Values to set, by field name: text for text, hidden and select fields (and a radio
    /// group's choice), true/false for checkboxes (true: checked, sending its value). Fields not
    /// named keep what the page set (hidden tokens included). At most 64; values up to 4096
    /// characters.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldValue>,
    /// Which submit button of the form (its index in the form's submits; default: the first).
    pub submit: Option<usize>,
    /// The portal page to read the form from (http:// or https://; default: where the check URL
    /// leads).
    pub url: Option<String>,
    /// Connectivity-check URL answering 204, checked before and after (default: the agent's
    /// configured one).
    pub check_url: Option<String>,
    /// For an https portal: also trust this CA (PEM text).
    pub ca_pem: Option<String>,
    /// For an https portal: talk to it whatever its certificate (default false).
    pub insecure: Option<bool>,
    /// Address family: auto (default: IPv4 when the box has an IPv4 address and the name an A
    /// record, else IPv6), ipv4 or ipv6; the result's `family` says which was used. ipv6 on a
    /// network that gave the box no IPv6 address fails with family_unavailable, nothing sent.
    pub family: Option<Family>,
    /// Give up after this many seconds, every step included (default 30, max 120).
    pub timeout_secs: Option<u64>,
}

/// Before anything is sent: `family` against the box's, and a literal host of `url` against it.
pub(super) fn check_family(
    dns: &crate::agent::nettools::Dns,
    url: &url::Url,
    family: Family,
) -> Result<(), Failure> {
    crate::agent::net::conn::check_family(dns, &target::url_host(url), family)
}

fn tls_of(ca_pem: Option<String>, insecure: Option<bool>) -> Result<TlsOptions, Failure> {
    if let Some(p) = &ca_pem {
        crate::agent::net::tls::parse_ca_pem(p)?;
    }
    Ok(TlsOptions {
        ca_pem,
        insecure: insecure.unwrap_or(false),
    })
}

/// Validate `network_captive_login`'s arguments (nothing is sent). `default_check` is the
/// agent's configured check URL.
pub fn login_of(a: CaptiveLoginArgs, default_check: &str) -> Result<(Login, Duration), Failure> {
    if let Some(i) = a.form
        && i >= portal::MAX_FORMS
    {
        return Err(Failure::invalid(format!(
            "form {i} is out of range: a page's forms are numbered 0-{} (network_check_captive \
             lists them); nothing was sent",
            portal::MAX_FORMS - 1
        )));
    }
    if let Some(i) = a.submit
        && i >= portal::MAX_SUBMITS
    {
        return Err(Failure::invalid(format!(
            "submit {i} is out of range: a form's submit buttons are numbered 0-{}",
            portal::MAX_SUBMITS - 1
        )));
    }
    if a.fields.len() > MAX_GIVEN_FIELDS {
        return Err(Failure::invalid(format!(
            "at most {MAX_GIVEN_FIELDS} fields, got {}",
            a.fields.len()
        )));
    }
    for (k, v) in &a.fields {
        if k.is_empty() || k.len() > 256 {
            return Err(Failure::invalid(format!(
                "a field name must be 1-256 bytes, got {} bytes",
                k.len()
            )));
        }
        if let FieldValue::Text(s) = v
            && s.len() > MAX_GIVEN_VALUE
        {
            return Err(Failure::invalid(format!(
                "the value of {k:?} is longer than {MAX_GIVEN_VALUE} bytes"
            )));
        }
    }
    let page_url = a.url.as_deref().map(target::web_url).transpose()?;
    let check_url = target::web_url(a.check_url.as_deref().unwrap_or(default_check))?;
    let timeout = match a.timeout_secs {
        None => Duration::from_secs(30),
        Some(s) if (1..=120).contains(&s) => Duration::from_secs(s),
        Some(s) => {
            return Err(Failure::invalid(format!(
                "timeout_secs must be 1-120, got {s}"
            )));
        }
    };
    Ok((
        Login {
            page_url,
            check_url,
            form: a.form,
            submit: a.submit,
            fields: a.fields,
            fetch: Fetch {
                tls: tls_of(a.ca_pem, a.insecure)?,
                connect_timeout: Duration::from_secs(10).min(timeout),
                family: a.family.unwrap_or_default(),
            },
        },
        timeout,
    ))
}

#[tool_router(router = captive_router, vis = "pub(super)")]
impl WifiTools {
    #[tool(
        description = "Detect a captive portal on the WiFi and read it: fetch the \
                       connectivity-check URL (answers 204 when the way is open). connectivity \
                       is full, captive (a portal intercepts) or none; portal_url is where it \
                       redirects. When captive: the redirect chain to the portal page and the \
                       page itself as data — its forms (index, action resolved, method, fields \
                       with type, value, checked, required, label, hidden ones included; submit \
                       buttons), scripts, a text excerpt — and needs_browser when it has no form \
                       to submit but relies on JavaScript. Cookies the portal sets are kept for \
                       network_captive_login. No script is run.",
        annotations(
            title = "Check captive portal",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn network_check_captive(
        &self,
        Parameters(a): Parameters<CaptiveCheckArgs>,
    ) -> Result<Json<CaptiveCheck>, Failure> {
        let url = target::web_url(a.url.as_deref().unwrap_or(&self.agent.options().check_url))?;
        let fetch = Fetch {
            tls: tls_of(a.ca_pem, a.insecure)?,
            connect_timeout: Duration::from_secs(10),
            family: a.family.unwrap_or_default(),
        };
        let dns = self.agent.dns().await;
        check_family(&dns, &url, fetch.family)?;
        match tokio::time::timeout(Duration::from_secs(30), captive::check(&dns, &url, &fetch))
            .await
        {
            Ok((report, _)) => Ok(Json(report)),
            Err(_) => Err(Failure::new(
                Code::Timeout,
                format!("network_check_captive: no complete answer from {url} within 30 s"),
            )),
        }
    }

    #[tool(
        description = "Get through a captive portal: read its page (url, or where the check URL \
                       leads), fill one of its forms (form: its index from \
                       network_check_captive) as a browser would — hidden fields and defaults \
                       kept, your fields set (text values; true/false for checkboxes such as \
                       accept-terms) — submit it with this WiFi's cookies, follow the answer, \
                       then fetch the check URL again. Returns the submission's status, redirect \
                       chain, cookies set (names only), the answer page's text, and \
                       connectivity before and after (logged_in: after is full). Refuses a page \
                       without a form (needs_browser for JavaScript-only portals), a form index \
                       out of range, unknown field names, and forms whose action is not \
                       http(s) or points at the box's own loopback; nothing is sent then.",
        annotations(
            title = "Captive portal login",
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn network_captive_login(
        &self,
        Parameters(a): Parameters<CaptiveLoginArgs>,
        meta: rmcp::model::RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<CaptiveLogin>, Failure> {
        let (login, limit) = login_of(a, &self.agent.options().check_url)?;
        let progress = Progress::new(peer, &meta);
        let dns = self.agent.dns().await;
        check_family(&dns, &login.check_url, login.fetch.family)?;
        if let Some(u) = &login.page_url {
            check_family(&dns, u, login.fetch.family)?;
        }
        let r = tokio::time::timeout(
            limit,
            captive::login(&dns, &login, |n, msg| progress.send(n, 4, msg)),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Failure::new(
                Code::Timeout,
                format!(
                    "network_captive_login: not done within {} s (timeout_secs)",
                    limit.as_secs()
                ),
            ))
        });
        if let Ok(l) = &r {
            progress.send(
                4,
                4,
                if l.logged_in {
                    "logged in"
                } else {
                    "still captive"
                }
                .into(),
            );
            tracing::info!(
                form = l.submitted.as_ref().map(|s| s.form as i64).unwrap_or(-1),
                status = l.submitted.as_ref().map(|s| s.status as i64).unwrap_or(-1),
                logged_in = l.logged_in,
                "captive portal login"
            );
        }
        progress.flush().await;
        Ok(Json(r?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: serde_json::Value) -> CaptiveLoginArgs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn login_arguments_refused_with_a_clear_text_and_nothing_sent() {
        let check = "http://connectivitycheck.gstatic.com/generate_204";
        for (v, why) in [
            (serde_json::json!({"form": 99}), "form 99 is out of range"),
            (
                serde_json::json!({"url": "file:///etc/passwd"}),
                "unsupported URL scheme file",
            ),
            (
                serde_json::json!({"url": "/run/wifi-isolate/mcp.sock"}),
                "is a path",
            ),
            (
                serde_json::json!({"check_url": "ftp://x/"}),
                "unsupported URL scheme ftp",
            ),
            (serde_json::json!({"submit": 400}), "submit 400"),
            (serde_json::json!({"timeout_secs": 0}), "timeout_secs"),
            (serde_json::json!({"timeout_secs": 600}), "timeout_secs"),
            (
                serde_json::json!({"fields": {"room": "x".repeat(5000)}}),
                "longer than 4096",
            ),
            (serde_json::json!({"fields": {"": "x"}}), "1-256 bytes"),
            (serde_json::json!({"ca_pem": "nope"}), "ca_pem"),
        ] {
            let e = login_of(args(v.clone()), check).expect_err(why);
            assert_eq!(e.code, Code::InvalidArgument, "{v}");
            assert!(e.text.contains(why), "{why}: {}", e.text);
        }
        let many: serde_json::Map<String, serde_json::Value> = (0..65)
            .map(|i| (format!("f{i}"), serde_json::Value::from("x")))
            .collect();
        let e = login_of(args(serde_json::json!({"fields": many})), check).unwrap_err();
        assert!(e.text.contains("at most 64 fields"), "{}", e.text);
        let (l, t) = login_of(
            args(serde_json::json!({"form": 1, "fields": {"accept": true, "room": "12"}})),
            check,
        )
        .unwrap();
        assert_eq!((l.form, t), (Some(1), Duration::from_secs(30)));
        assert_eq!(l.check_url.as_str(), check);
        assert_eq!(l.fields["accept"], FieldValue::Flag(true));
        assert_eq!(l.fields["room"], FieldValue::Text("12".into()));
        // A number is neither a flag nor text: the schema's deserializer refuses it.
        assert!(
            serde_json::from_value::<CaptiveLoginArgs>(serde_json::json!({"fields": {"a": 1}}))
                .is_err()
        );
    }

    #[test]
    fn both_captive_tools_have_output_schemas() {
        let tools = WifiTools::captive_router().list_all();
        let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        for t in tools {
            assert!(t.output_schema.is_some(), "{} has no outputSchema", t.name);
            assert_eq!(
                t.output_schema.as_ref().unwrap().get("type"),
                Some(&serde_json::Value::from("object")),
                "{}",
                t.name
            );
        }
    }
}
