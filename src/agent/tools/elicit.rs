//! `wifi_connect {ssid}` without a password to a network that needs one: the one-time profile
//! the host's page left in the box ([`crate::elicit`]), else the MCP URL request (-32042,
//! URLElicitationRequired) for clients that declare `elicitation.url`, else a tool error
//! (`secret_required`) naming `wifi-isolate network add`.

use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, ErrorCode};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

use super::schema::{ConnectArgs, SecurityMode};
use super::translate::profile_spec;
use crate::agent::failure::{Code, Failure};
use crate::agent::{Agent, NetworkSpec};
use crate::elicit::{self, Grant};
use crate::networks::{Profile, Security};
use crate::validate::{Bssid, Ssid};

/// JSON-RPC error code of URLElicitationRequiredError (MCP 2025-11-25).
pub const URL_ELICITATION_REQUIRED: i32 = -32042;

/// A `wifi_connect` failure: a tool error, or a JSON-RPC error (the URL request).
pub enum ConnectError {
    /// A tool error with its stable code.
    Tool(Failure),
    /// A JSON-RPC error answer.
    Protocol(ErrorData),
}

impl From<Failure> for ConnectError {
    fn from(f: Failure) -> Self {
        ConnectError::Tool(f)
    }
}

impl IntoCallToolResult for ConnectError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        match self {
            ConnectError::Tool(f) => f.into_call_tool_result(),
            ConnectError::Protocol(e) => Err(e),
        }
    }
}

/// The box's `elicit/` dir: beside its copy of the saved networks (both in the box dir the
/// daemon shares, `/run/wifi-isolate`).
pub fn elicit_dir(agent: &Agent) -> std::path::PathBuf {
    agent.options().networks_dir.with_file_name(elicit::SUBDIR)
}

/// What a scanned access point's security asks for.
fn wanted(s: crate::wpa::Security) -> Option<Security> {
    use crate::wpa::Security as W;
    match s {
        W::WpaPsk | W::Wpa2Psk => Some(Security::Wpa2Psk),
        W::Wpa2Wpa3 => Some(Security::Transition),
        W::Wpa3Sae => Some(Security::Wpa3Sae),
        W::WpaEap | W::Wpa2Eap | W::Wpa3Eap | W::Wpa3Eap192 => Some(Security::Eap),
        W::Open | W::Owe | W::OweTransition | W::Wep | W::Unknown => None,
    }
}

/// The security `ssid` needs a secret for, if it does: the explicit mode, else what the access
/// points of that SSID offer (wpa_supplicant's scan results; a fresh scan when it has none).
async fn needs_secret(agent: &Agent, a: &ConnectArgs, ssid: &Ssid) -> Option<Security> {
    match a.security {
        SecurityMode::Wpa2Psk => return Some(Security::Wpa2Psk),
        SecurityMode::Wpa3Sae => return Some(Security::Wpa3Sae),
        SecurityMode::Wpa2Wpa3 => return Some(Security::Transition),
        SecurityMode::Open | SecurityMode::Owe => return None,
        // A hidden network is in no scan result: as before, auto without a password is open.
        SecurityMode::Auto if a.hidden => return None,
        SecurityMode::Auto => {}
    }
    let hex = ssid.to_hex();
    let pick = |bss: Vec<crate::wpa::Bss>| {
        bss.into_iter()
            .filter(|b| b.ssid_hex == hex)
            .find_map(|b| wanted(b.security))
    };
    let cached = match agent.client().await {
        Ok(c) => c.bss_all().await.ok().and_then(pick),
        Err(_) => None,
    };
    if cached.is_some() {
        return cached;
    }
    agent
        .scan(std::time::Duration::from_secs(10))
        .await
        .ok()
        .and_then(pick)
}

/// For an inline `wifi_connect` without a password: `Ok(Some(spec))` from the one-time profile
/// the page left (removed: it serves one call); `Ok(None)` when no secret is needed (or one was
/// given: the caller goes on as before); else the URL request or the `secret_required` error.
pub async fn without_secret(
    agent: &Agent,
    a: &ConnectArgs,
    ctx: &RequestContext<RoleServer>,
) -> Result<Option<NetworkSpec>, ConnectError> {
    if a.password.is_some() {
        return Ok(None);
    }
    let Some(ssid) = a.ssid.as_deref().and_then(|s| Ssid::parse(s).ok()) else {
        return Ok(None);
    };
    if let Some(b) = &a.bssid {
        Bssid::parse(b).map_err(Failure::invalid)?;
    }
    let dir = elicit_dir(agent);
    let file = dir.join(elicit::one_time_file(&ssid));
    if let Ok(text) = std::fs::read_to_string(&file) {
        // Consumed whatever happens next: a wrong passphrase needs a fresh link.
        let _ = std::fs::remove_file(&file);
        let mut p = Profile::parse(&text, "the one-time profile from the elicitation page")
            .map_err(|e| Failure::from(e.to_string()))?;
        if a.bssid.is_some() {
            p.bssid = a.bssid.clone();
        }
        p.hidden |= a.hidden;
        p.mac_address = a.mac_address;
        tracing::info!(ssid = %ssid, "using the one-time profile from the elicitation page");
        let spec = profile_spec(agent.perm_mac, agent.certs(), &p).map_err(Failure::invalid)?;
        return Ok(Some(spec));
    }
    let Some(security) = needs_secret(agent, a, &ssid).await else {
        return Ok(None);
    };
    let shown = ssid.to_string_lossy();
    if security == Security::Eap {
        return Err(Failure::new(
            Code::SecretRequired,
            format!(
                "{shown:?} is a WPA-Enterprise (802.1X) network: use wifi_connect_eap, or a saved \
                 network an administrator adds on the host: `wifi-isolate network add NAME --ssid \
                 {shown:?} --security eap …`, then wifi_connect {{\"network\": NAME}}"
            ),
        )
        .into());
    }
    let url_capable = ctx
        .client_capabilities()
        .and_then(|c| c.elicitation)
        .and_then(|e| e.url)
        .is_some();
    let grant = Grant::load(&dir);
    if url_capable && let Some(g) = &grant {
        let link = g
            .link(&ssid, security, crate::elicit::serve::now())
            .map_err(Failure::from)?;
        let message = format!(
            "The WiFi network {shown:?} ({}) needs its passphrase. Open this one-time page on \
             this computer and type it there (it goes to the adapter's box, never through this \
             conversation), then call wifi_connect again with the same ssid.",
            security.as_str()
        );
        tracing::info!(ssid = %ssid, elicitation_id = %link.id, "asked for a passphrase by URL elicitation");
        return Err(ConnectError::Protocol(ErrorData::new(
            ErrorCode(URL_ELICITATION_REQUIRED),
            "URL elicitation required: the passphrase is typed into a page on this host",
            Some(serde_json::json!({
                "elicitations": [{
                    "mode": "url",
                    "elicitationId": link.id,
                    "url": link.url,
                    "message": message,
                }]
            })),
        )));
    }
    let why = match (url_capable, grant.is_some()) {
        (true, false) => " (this host serves no passphrase page: [elicitation] enabled = false)",
        (false, _) => {
            " (MCP clients that support URL elicitation get a link to a one-time page on the \
             host instead)"
        }
        (true, true) => "",
    };
    Err(Failure::new(
        Code::SecretRequired,
        format!(
            "the network {shown:?} ({sec}) needs a passphrase and this adapter has no saved \
             network for it{why}. An administrator adds one on the host: `wifi-isolate network \
             add NAME --ssid {shown:?} --security {sec}` (the passphrase is read from a prompt or \
             stdin), then wifi_connect {{\"network\": NAME}}.",
            sec = security.as_str()
        ),
    )
    .into())
}

/// The key of the one input request of the 2026-07-28 (MRTR) form of the URL request.
pub const INPUT_KEY: &str = "wifi_passphrase_page";

/// The URL request in the form the peer's protocol has: -32042 (URLElicitationRequired) for
/// 2025-11-25 and older; for 2026-07-28 and newer (no `initialize`, no -32042) the same link as
/// an `InputRequiredResult` with one `elicitation/create` (mode url) input request — the client
/// retries the call with `inputResponses` once the person is done.
pub fn for_era(
    result: Result<CallToolResponse, ErrorData>,
    version: Option<rmcp::model::ProtocolVersion>,
) -> Result<CallToolResponse, ErrorData> {
    let modern = version.is_some_and(|v| !v.has_initialize());
    match result {
        Err(e) if modern && e.code.0 == URL_ELICITATION_REQUIRED => {
            let el = e
                .data
                .as_ref()
                .map(|d| d["elicitations"][0].clone())
                .unwrap_or_default();
            let text = |k: &str| el[k].as_str().unwrap_or_default().to_owned();
            let params = rmcp::model::ElicitRequestParams::UrlElicitationParams {
                meta: None,
                message: text("message"),
                url: text("url"),
                elicitation_id: text("elicitationId"),
            };
            let mut requests = rmcp::model::InputRequests::new();
            requests.insert(
                INPUT_KEY.to_owned(),
                rmcp::model::InputRequest::Elicitation(rmcp::model::ElicitRequest::new(params)),
            );
            Ok(CallToolResponse::InputRequired(
                rmcp::model::InputRequiredResult::from_input_requests(requests),
            ))
        }
        other => other,
    }
}

/// A retried call whose person declined or cancelled the page (MRTR `inputResponses`): the
/// failure to answer with, instead of asking again.
pub fn declined(request: &rmcp::model::CallToolRequestParams) -> Option<Failure> {
    let r = request.input_responses.as_ref()?.get(INPUT_KEY)?;
    let action = r["action"].as_str().unwrap_or("cancel");
    (action != "accept").then(|| {
        Failure::new(
            Code::Cancelled,
            format!("the passphrase page was not completed ({action}); nothing was changed"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ProtocolVersion;

    fn url_error() -> ErrorData {
        ErrorData::new(
            ErrorCode(URL_ELICITATION_REQUIRED),
            "URL elicitation required",
            Some(serde_json::json!({"elicitations": [{
                "mode": "url", "elicitationId": "abc", "url": "http://127.0.0.1:1/e/abc?x",
                "message": "open it",
            }]})),
        )
    }

    #[test]
    fn legacy_peers_get_32042_and_2026_peers_an_input_required_result() {
        for v in [
            None,
            Some(ProtocolVersion::V_2025_11_25),
            Some(ProtocolVersion::V_2025_06_18),
        ] {
            let e = for_era(Err(url_error()), v.clone()).expect_err("-32042 stays");
            assert_eq!(e.code.0, -32042, "{v:?}");
        }
        let Ok(CallToolResponse::InputRequired(r)) =
            for_era(Err(url_error()), Some(ProtocolVersion::V_2026_07_28))
        else {
            panic!("an InputRequiredResult")
        };
        let wire = serde_json::to_value(&r).unwrap();
        assert_eq!(wire["resultType"], "input_required");
        let req = &wire["inputRequests"][INPUT_KEY];
        assert_eq!(req["method"], "elicitation/create", "{wire}");
        assert_eq!(req["params"]["mode"], "url");
        assert_eq!(req["params"]["url"], "http://127.0.0.1:1/e/abc?x");
        // Other errors pass unchanged.
        let other = ErrorData::invalid_params("x", None);
        let e = for_era(Err(other), Some(ProtocolVersion::V_2026_07_28)).unwrap_err();
        assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    }

    #[test]
    fn a_declined_page_is_a_cancelled_call_and_accept_goes_on() {
        let mut p = rmcp::model::CallToolRequestParams::new("wifi_connect");
        assert!(declined(&p).is_none());
        for (action, stop) in [("accept", false), ("decline", true), ("cancel", true)] {
            let mut m = rmcp::model::InputResponses::new();
            m.insert(INPUT_KEY.into(), serde_json::json!({"action": action}));
            p.input_responses = Some(m);
            let f = declined(&p);
            assert_eq!(f.is_some(), stop, "{action}");
            if let Some(f) = f {
                assert_eq!(f.code, Code::Cancelled);
            }
        }
    }
}
