//! The hwsim VM's MCP client for `wifi-isolate-agent`: drives the agent as a real MCP client would
//! (rmcp over the agent's Unix socket, or over stdio by spawning the agent) and asserts outcomes
//! against the lab's access points. Runs inside the VM; the AP facts come from the harness's env
//! file (`AP_<NAME>_SSID`, `_PSK`, `_BSSID`, `_IP`, ...).
//!
//! Usage: `hwsim-agent-client unix SOCKET` or `hwsim-agent-client stdio -- AGENT-COMMAND...` (or
//! `saepk -- AGENT-COMMAND...`: the SAE-PK checks only, for an agent whose wpa_supplicant has SAE-PK).
//! Prints one line per check and closes with `N passed, N failed`; exit status 1 if any failed.

use shared::host_view;
use wifi_isolate_tests::guest as shared;

mod ap;
mod captive;
mod capture;
mod elicit;
mod monitor;
mod nettools;
mod passpoint;
mod protocol;
mod radio;
mod saepk;
mod v6;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, ClientRequest, ProgressNotificationParam, Request};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess, UnixSocketHttpClient};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Client {
    progress: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Client {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        self.progress
            .lock()
            .unwrap()
            .push(params.message.unwrap_or_default());
    }
}

struct Run {
    svc: RunningService<RoleClient, Client>,
    progress: Arc<Mutex<Vec<String>>>,
    tally: wifi_isolate_tests::tally::Tally,
    baseline: String,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} missing from the lab env"))
}

impl Run {
    /// The progress messages so far, once `settled` holds for them or 2 s have passed. The
    /// client (rmcp's service loop) runs each notification's handler in a task of its own while
    /// a response goes straight to its caller, so the last notifications can land just after
    /// the result even though the agent sent them before it.
    async fn progress_when(&self, settled: impl Fn(&[String]) -> bool) -> Vec<String> {
        let until = Instant::now() + Duration::from_secs(2);
        loop {
            let got = self.progress.lock().unwrap().clone();
            if settled(&got) || Instant::now() >= until {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `wifi_connect` to the lab's WPA2 AP (its SSID and passphrase from the lab's env).
    async fn connect_lab_wpa2(&self) -> (bool, Value, String) {
        self.call_raw(
            "wifi_connect",
            json!({"ssid": env("AP_WPA2_SSID"), "password": env("AP_WPA2_PSK")}),
        )
        .await
    }

    async fn call_raw(&self, tool: &str, args: Value) -> (bool, Value, String) {
        let params = CallToolRequestParams::new(tool.to_string())
            .with_arguments(args.as_object().cloned().unwrap_or_default());
        let handle = self
            .svc
            .send_cancellable_request(
                ClientRequest::CallToolRequest(Request::new(params)),
                PeerRequestOptions::no_options(),
            )
            .await
            .expect("sending request");
        shared::tool_outcome(handle.await_response().await)
    }

    #[track_caller]
    fn check(&mut self, name: &str, ok: bool, detail: impl std::fmt::Display) {
        self.tally.check(name, ok, detail);
    }

    fn check_host(&mut self, when: &str) {
        let now = host_view();
        let same = now == self.baseline;
        let detail = format!("before:\n{}\nnow:\n{}", self.baseline, now);
        self.check(
            &format!("host routes/addresses unchanged {when}"),
            same,
            detail,
        );
    }

    async fn ok(&mut self, name: &str, tool: &str, args: Value) -> Value {
        let (ok, v, text) = self.call_raw(tool, args).await;
        self.check(name, ok, &text);
        v
    }

    /// A call that must fail with `needle` in its text; returns the error's stable code
    /// (`_meta` "wifi-isolate/error-code").
    async fn tool_err(
        &mut self,
        name: &str,
        tool: &str,
        args: Value,
        needle: &str,
    ) -> Option<String> {
        let params = CallToolRequestParams::new(tool.to_string())
            .with_arguments(args.as_object().cloned().unwrap_or_default());
        let r = self
            .svc
            .send_cancellable_request(
                ClientRequest::CallToolRequest(Request::new(params)),
                PeerRequestOptions::no_options(),
            )
            .await
            .expect("sending request")
            .await_response()
            .await;
        let code = match &r {
            Ok(rmcp::model::ServerResult::CallToolResult(c)) => c
                .meta
                .as_ref()
                .and_then(|m| m.0.get("wifi-isolate/error-code"))
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            _ => None,
        };
        let (ok, _, text) = shared::tool_outcome(r);
        self.check(
            name,
            !ok && text.to_lowercase().contains(&needle.to_lowercase()),
            format!("expected a tool error containing {needle:?}, got ok={ok}: {text}"),
        );
        code
    }

    /// The stable code of a tool error is `want`.
    #[track_caller]
    fn check_code(&mut self, name: &str, got: Option<String>, want: &str) {
        let ok = got.as_deref() == Some(want);
        self.check(&format!("{name}: code {want}"), ok, format!("got {got:?}"));
    }
}

fn subnet_of(ip: &str) -> String {
    ip.rsplit_once('.')
        .map(|(a, _)| a.to_string())
        .unwrap_or_default()
}

async fn full_suite(r: &mut Run) {
    let tools = r.svc.list_all_tools().await.expect("tools/list");
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    let expected = [
        "wifi_scan",
        "wifi_connect",
        "wifi_connect_eap",
        "wifi_disconnect",
        "wifi_status",
        "wifi_list_networks",
        "wifi_forget",
        "wifi_reconnect",
        "network_ping",
        "network_dns_lookup",
        "network_check_internet",
        "network_check_captive",
        "network_http_get",
        "wifi_debug_logs",
    ];
    let missing: Vec<_> = expected
        .iter()
        .filter(|e| !names.iter().any(|n| n == *e))
        .collect();
    r.check(
        "all 14 tools listed",
        missing.is_empty(),
        format!("missing {missing:?}"),
    );
    let annotated = tools
        .iter()
        .all(|t| t.annotations.is_some() && t.input_schema.get("type").is_some());
    r.check(
        "every tool has annotations and a schema",
        annotated,
        "some lack them",
    );

    // Scan.
    let scan = r.ok("wifi_scan", "wifi_scan", json!({})).await;
    let nets = scan["networks"].as_array().cloned().unwrap_or_default();
    let find = |ssid: &str| nets.iter().find(|n| n["ssid"] == ssid).cloned();
    for (ap, sec) in [
        ("OPEN", "open"),
        ("WPA2", "wpa2-psk"),
        ("SAE", "wpa3-sae"),
        ("WPA2B", "wpa2-psk"),
        ("EAP", "wpa2-eap"),
    ] {
        let ssid = env(&format!("AP_{ap}_SSID"));
        let seen = find(&ssid);
        let detail = format!("{ssid:?} in {nets:?}");
        r.check(
            &format!("scan sees {ap} as {sec}"),
            seen.as_ref().is_some_and(|n| n["security"] == sec),
            detail,
        );
    }
    let hidden = env("AP_HIDDEN_SSID");
    r.check(
        "scan does not reveal the hidden SSID",
        find(&hidden).is_none(),
        "hidden SSID shown in the scan",
    );
    let b2 = find(&env("AP_WPA2B_SSID"));
    r.check(
        "scan reports bssid/frequency/channel/signal",
        b2.as_ref().is_some_and(|n| {
            n["bssid"] == env("AP_WPA2B_BSSID").to_lowercase()
                && n["freq_mhz"].as_u64() == env("AP_WPA2B_FREQ").parse().ok()
                && n["channel"].as_u64().is_some()
                && n["signal_dbm"].as_i64().is_some()
        }),
        format!("{b2:?}"),
    );
    r.check_host("after scan");

    // Bad input: clear errors, nothing applied.
    let code = r
        .tool_err(
            "33-byte SSID refused",
            "wifi_connect",
            json!({"ssid": "a".repeat(33), "password": "12345678"}),
            "ssid",
        )
        .await;
    r.check_code("33-byte SSID refused", code, "invalid_argument");
    r.tool_err(
        "7-char passphrase refused",
        "wifi_connect",
        json!({"ssid": "x", "password": "1234567"}),
        "8",
    )
    .await;
    r.tool_err(
        "non-ASCII passphrase refused",
        "wifi_connect",
        json!({"ssid": "x", "password": "pässwörd1"}),
        "ascii",
    )
    .await;
    r.tool_err(
        "malformed BSSID refused",
        "wifi_connect",
        json!({"ssid": "x", "bssid": "02:00:zz:00:00:00"}),
        "bssid",
    )
    .await;
    r.tool_err(
        "empty SSID refused",
        "wifi_connect",
        json!({"ssid": ""}),
        "ssid",
    )
    .await;
    r.tool_err(
        "injection in passphrase refused",
        "wifi_connect",
        json!({"ssid": "x", "password": "abcdefgh\nSET_NETWORK 0 ssid \"p\""}),
        "printable",
    )
    .await;
    let listed = r
        .ok("list after bad input", "wifi_list_networks", json!({}))
        .await;
    let count = listed["networks"].as_array().map(|a| a.len()).unwrap_or(99);
    r.check(
        "bad input applied nothing",
        count == 0,
        format!("networks: {listed}"),
    );

    // Wrong password: fast and clear.
    let t = Instant::now();
    let code = r
        .tool_err(
            "wrong WPA2 password → authentication failed",
            "wifi_connect",
            json!({"ssid": env("AP_WPA2_SSID"), "password": "wrong-password-1", "timeout_secs": 60}),
            "authentication failed",
        )
        .await;
    r.check_code("wrong WPA2 password", code, "auth_failed");
    let took = t.elapsed();
    r.check(
        "wrong password fails well before the timeout",
        took < Duration::from_secs(30),
        format!("{took:?}"),
    );
    let listed = r
        .ok("list after failed connect", "wifi_list_networks", json!({}))
        .await;
    r.check(
        "failed connect left no network behind",
        listed["networks"].as_array().is_some_and(|a| a.is_empty()),
        &listed,
    );

    // WPA2 with progress.
    r.progress.lock().unwrap().clear();
    let c = r
        .ok(
            "connect WPA2",
            "wifi_connect",
            json!({"ssid": env("AP_WPA2_SSID"), "password": env("AP_WPA2_PSK"), "security": "wpa2-psk"}),
        )
        .await;
    let gw = env("AP_WPA2_IP");
    r.check(
        "WPA2 lease in the AP's subnet with its gateway and DNS",
        c["ip"]
            .as_str()
            .is_some_and(|ip| subnet_of(ip) == subnet_of(&gw))
            && c["gateway"] == gw
            && c["dns"]
                .as_array()
                .is_some_and(|d| d.iter().any(|x| x == &gw)),
        &c,
    );
    let progress = r
        .progress_when(|p| p.last().is_some_and(|m| m == "done"))
        .await;
    r.check(
        "progress: associating → handshake → DHCP → done",
        progress.first().is_some_and(|p| p == "associating")
            && progress.iter().any(|p| p == "DHCP")
            && progress.last().is_some_and(|p| p == "done"),
        format!("{progress:?}"),
    );
    let st = r.ok("wifi_status", "wifi_status", json!({})).await;
    r.check(
        "status COMPLETED with ssid, signal, default route",
        st["wpa_state"] == "COMPLETED"
            && st["ssid"] == env("AP_WPA2_SSID")
            && st["signal_dbm"].as_i64().is_some()
            && st["routes"].as_array().is_some_and(|rs| {
                rs.iter()
                    .any(|r| r["destination"] == "default" && r["gateway"] == gw)
            }),
        &st,
    );
    r.check_host("while connected");

    // IPv6, on purpose: the AP's router adverts autoconfigure the box's WiFi interface (and only
    // it); wifi_status reports the SLAAC address and the RA default route; ping goes over ICMPv6.
    let wifi = st["interface"].as_str().unwrap_or_default().to_string();
    let v6_prefix = "fd00:77:";
    let has_v6 = |st: &Value| {
        st["addresses"].as_array().is_some_and(|a| {
            a.iter().any(|a| {
                a["family"] == "ipv6"
                    && a["scope"] == "global"
                    && a["dev"] == wifi.as_str()
                    && a["cidr"].as_str().is_some_and(|c| c.starts_with(v6_prefix))
            })
        }) && st["routes"].as_array().is_some_and(|rs| {
            rs.iter().any(|r| {
                r["family"] == "ipv6" && r["destination"] == "default" && r["protocol"] == "ra"
            })
        })
    };
    let t = Instant::now();
    let mut st6 = st.clone();
    while !has_v6(&st6) && t.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        st6 = r.call_raw("wifi_status", json!({})).await.1;
    }
    r.check(
        "IPv6: a SLAAC address on the WiFi interface and an RA default route, in wifi_status",
        has_v6(&st6),
        format!("after {:?}: {st6}", t.elapsed()),
    );
    let p6 = r
        .ok(
            "ping the AP over IPv6",
            "network_ping",
            json!({"host": env("AP_WPA2_IPV6"), "count": 2}),
        )
        .await;
    r.check(
        "ICMPv6 echo answered",
        p6["received"].as_u64().unwrap_or(0) >= 1,
        &p6,
    );
    r.check_host("with IPv6 in the box");
    let p = r
        .ok(
            "ping the AP",
            "network_ping",
            json!({"host": gw, "count": 2}),
        )
        .await;
    r.check(
        "ping answered",
        p["received"].as_u64().unwrap_or(0) >= 1,
        &p,
    );
    let d = r
        .ok(
            "DNS via the AP",
            "network_dns_lookup",
            json!({"name": "ap.test"}),
        )
        .await;
    r.check(
        "ap.test resolves to the AP",
        d["addresses"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == &gw)),
        &d,
    );
    let h = r
        .ok(
            "http get",
            "network_http_get",
            json!({"url": "http://ap.test/"}),
        )
        .await;
    r.check("http 200 from the AP", h["status"] == 200, &h);
    let i = r
        .ok(
            "internet check",
            "network_check_internet",
            json!({"url": "http://www.example.test/generate_204"}),
        )
        .await;
    r.check(
        "full connectivity behind the WPA2 AP",
        i["connectivity"] == "full",
        &i,
    );
    nettools::nettools_suite(r).await;
    v6::v6_suite(r).await;

    // Disconnect removes the routes; reconnect brings them back.
    r.ok("disconnect", "wifi_disconnect", json!({})).await;
    let st = r
        .ok("status after disconnect", "wifi_status", json!({}))
        .await;
    r.check(
        "disconnect removed addresses and routes, IPv4 and IPv6 (the link-local stays)",
        st["ip"].is_null()
            && st["routes"]
                .as_array()
                .is_some_and(|a| a.iter().all(|r| r["destination"] == "fe80::/64"))
            && st["addresses"]
                .as_array()
                .is_some_and(|a| a.iter().all(|a| a["scope"] != "global")),
        &st,
    );
    let rc = r.ok("reconnect", "wifi_reconnect", json!({})).await;
    r.check("reconnect got a lease", rc["ip"].is_string(), &rc);

    // WPA3-SAE.
    let c = r
        .ok(
            "connect WPA3-SAE",
            "wifi_connect",
            json!({"ssid": env("AP_SAE_SSID"), "password": env("AP_SAE_PSK"), "security": "wpa3-sae"}),
        )
        .await;
    r.check(
        "SAE in use",
        c["key_mgmt"].as_str().is_some_and(|k| k.contains("SAE")) && c["ip"].is_string(),
        &c,
    );
    // Auto security picks SAE or PSK as offered.
    let c = r
        .ok(
            "connect SAE with security auto",
            "wifi_connect",
            json!({"ssid": env("AP_SAE_SSID"), "password": env("AP_SAE_PSK")}),
        )
        .await;
    r.check("auto security connected", c["ip"].is_string(), &c);

    // Hidden SSID.
    let c = r
        .ok(
            "connect hidden",
            "wifi_connect",
            json!({"ssid": env("AP_HIDDEN_SSID"), "password": env("AP_HIDDEN_PSK"), "hidden": true}),
        )
        .await;
    r.check("hidden network connected", c["ip"].is_string(), &c);

    // By BSSID, to the AP whose SSID has quotes and spaces.
    let c = r
        .ok(
            "connect by BSSID",
            "wifi_connect",
            json!({"ssid": env("AP_WPA2B_SSID"), "password": env("AP_WPA2B_PSK"), "bssid": env("AP_WPA2B_BSSID"), "mac_address": "per-network"}),
        )
        .await;
    r.check(
        "connected to the requested BSSID",
        c["bssid"]
            .as_str()
            .is_some_and(|b| b.eq_ignore_ascii_case(&env("AP_WPA2B_BSSID"))),
        &c,
    );

    // Open network behind a captive portal.
    let c = r
        .ok(
            "connect open",
            "wifi_connect",
            json!({"ssid": env("AP_OPEN_SSID")}),
        )
        .await;
    r.check("open network connected", c["ip"].is_string(), &c);
    let cap = r
        .ok(
            "captive check",
            "network_check_captive",
            json!({"url": "http://www.example.test/generate_204"}),
        )
        .await;
    r.check(
        "captive portal detected with its URL",
        cap["connectivity"] == "captive"
            && cap["portal_url"]
                .as_str()
                .is_some_and(|u| u.contains("portal")),
        &cap,
    );
    v6::no_v6_suite(r).await;

    // Enterprise.
    let ca = std::fs::read_to_string(env("AP_EAP_CA_CERT")).unwrap_or_default();
    let c = r
        .ok(
            "connect EAP-PEAP",
            "wifi_connect_eap",
            json!({
                "ssid": env("AP_EAP_SSID"),
                "method": "peap",
                "identity": env("AP_EAP_PEAP_IDENTITY"),
                "password": env("AP_EAP_PEAP_PASSWORD"),
                "ca_cert": ca,
            }),
        )
        .await;
    r.check("EAP-PEAP connected", c["ip"].is_string(), &c);
    // Certificate and key paths come only from the box's certificates directory (the guest
    // copied the lab's certs there): the lab's own /share/eap path is refused, and so is a
    // symlink inside the directory.
    let certs = env("AP_EAP_CERTS_DIR");
    let c = r
        .ok(
            "connect EAP-TTLS",
            "wifi_connect_eap",
            json!({
                "ssid": env("AP_EAP_SSID"),
                "method": "ttls",
                "identity": env("AP_EAP_TTLS_IDENTITY"),
                "anonymous_identity": "anonymous",
                "password": env("AP_EAP_TTLS_PASSWORD"),
                "ca_cert": format!("{certs}/ca.pem"),
                "domain_suffix_match": "lab.test",
            }),
        )
        .await;
    r.check(
        "EAP-TTLS connected (CA by path from the certs dir, domain match)",
        c["ip"].is_string(),
        &c,
    );
    let eap_args = |ca: &str| {
        json!({
            "ssid": env("AP_EAP_SSID"),
            "method": "ttls",
            "identity": env("AP_EAP_TTLS_IDENTITY"),
            "password": env("AP_EAP_TTLS_PASSWORD"),
            "ca_cert": ca,
        })
    };
    r.tool_err(
        "a CA path outside the certs dir is refused, naming the dir",
        "wifi_connect_eap",
        eap_args(&env("AP_EAP_CA_CERT")),
        &format!("read only from {certs}"),
    )
    .await;
    let link = format!("{certs}/link-to-ca.pem");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env("AP_EAP_CA_CERT"), &link).expect("symlink in the certs dir");
    r.tool_err(
        "a symlink in the certs dir is refused",
        "wifi_connect_eap",
        eap_args(&link),
        "symlink",
    )
    .await;
    r.tool_err(
        "a '..' path is refused",
        "wifi_connect_eap",
        eap_args(&format!("{certs}/../../../share/eap/ca.pem")),
        "'..'",
    )
    .await;
    let c = r
        .ok(
            "connect EAP-TLS (certs dir)",
            "wifi_connect_eap",
            json!({
                "ssid": env("AP_EAP_SSID"),
                "method": "tls",
                "identity": env("AP_EAP_TLS_IDENTITY"),
                "client_cert": format!("{certs}/client.pem"),
                "private_key": format!("{certs}/client.key"),
                "ca_cert": "ca.pem",
            }),
        )
        .await;
    r.check(
        "EAP-TLS connected (client cert, key and CA from the certs dir)",
        c["ip"].is_string(),
        &c,
    );
    let key = std::fs::read_to_string(env("AP_EAP_CLIENT_KEY")).unwrap_or_default();
    let cert = std::fs::read_to_string(env("AP_EAP_CLIENT_CERT")).unwrap_or_default();
    let c = r
        .ok(
            "connect EAP-TLS",
            "wifi_connect_eap",
            json!({
                "ssid": env("AP_EAP_SSID"),
                "method": "tls",
                "identity": env("AP_EAP_TLS_IDENTITY"),
                "client_cert": cert,
                "private_key": key.clone(),
                "ca_cert": ca,
            }),
        )
        .await;
    r.check("EAP-TLS connected (PEM content)", c["ip"].is_string(), &c);
    // The PEM text went to the box-private upload dir (0700, files 0600, a name per call),
    // not to the runtime dir the host shares; a disconnect removes the files, a reconnect
    // writes them again.
    let uploads = env("AGENT_UPLOAD_DIR");
    let pems = || -> Vec<(String, u32)> {
        use std::os::unix::fs::PermissionsExt;
        let mut v: Vec<(String, u32)> = std::fs::read_dir(&uploads)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                let mode = e.metadata().map(|m| m.permissions().mode() & 0o777);
                (
                    e.file_name().to_string_lossy().into_owned(),
                    mode.unwrap_or(0),
                )
            })
            .collect();
        v.sort();
        v
    };
    let up = pems();
    let dir_mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&uploads).map(|m| m.permissions().mode() & 0o777)
    };
    r.check(
        "PEM uploads: 3 private files (0600, dir 0700), one name per call",
        up.len() == 3
            && up.iter().all(|(n, m)| *m == 0o600 && n.ends_with(".pem"))
            && ["ca_cert-", "client_cert-", "private_key-"]
                .iter()
                .all(|p| up.iter().any(|(n, _)| n.starts_with(p)))
            && dir_mode.as_ref().is_ok_and(|m| *m == 0o700),
        format!("{up:?} dir {dir_mode:?}"),
    );
    let shared: Vec<String> = std::fs::read_dir(env("AGENT_SHARED_DIR"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pem") || n == "certs")
        .collect();
    r.check(
        "no PEM in the runtime dir the host shares",
        shared.is_empty(),
        format!("{shared:?}"),
    );
    r.ok("disconnect (EAP-TLS)", "wifi_disconnect", json!({}))
        .await;
    r.check(
        "disconnect removed the uploaded PEM files",
        pems().is_empty(),
        format!("{:?}", pems()),
    );
    let c = r
        .ok(
            "reconnect EAP-TLS",
            "wifi_reconnect",
            json!({"timeout_secs": 60}),
        )
        .await;
    r.check(
        "EAP-TLS reconnected with the PEM files written again",
        c["ip"].is_string() && pems() == up,
        format!("{c} files {:?}", pems()),
    );
    let logs = r
        .ok("logs after TLS", "wifi_debug_logs", json!({"lines": 500}))
        .await;
    let key_body: String = key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .take(1)
        .collect();
    r.check(
        "the private key never appears in the debug log",
        key_body.len() > 10 && !logs.to_string().contains(&key_body),
        "key material found in logs",
    );
    let code = r
        .tool_err(
            "EAP with a wrong password fails clearly",
            "wifi_connect_eap",
            json!({
                "ssid": env("AP_EAP_SSID"),
                "method": "peap",
                "identity": env("AP_EAP_PEAP_IDENTITY"),
                "password": "not-the-password",
                "timeout_secs": 40,
            }),
            "authentication failed",
        )
        .await;
    r.check_code("EAP with a wrong password", code, "auth_failed");

    // WPA3-Enterprise: EAP-SHA256 with PMF required, found by auto; the 192-bit mode (suite B,
    // the P-384 chain), auto too (the scan saw only that), and refused for a method suite B
    // does not allow.
    let tls_args = |ssid: &str, ca: &str, cert: &str, key: &str| {
        json!({
            "ssid": env(ssid),
            "method": "tls",
            "identity": env("AP_EAP_TLS_IDENTITY"),
            "client_cert": std::fs::read_to_string(env(cert)).unwrap_or_default(),
            "private_key": std::fs::read_to_string(env(key)).unwrap_or_default(),
            "ca_cert": std::fs::read_to_string(env(ca)).unwrap_or_default(),
        })
    };
    let c = r
        .ok(
            "connect WPA3-Enterprise (EAP-TLS, security auto)",
            "wifi_connect_eap",
            tls_args(
                "AP_EAP3_SSID",
                "AP_EAP_CA_CERT",
                "AP_EAP_CLIENT_CERT",
                "AP_EAP_CLIENT_KEY",
            ),
        )
        .await;
    let link = r
        .ok("wifi_link on WPA3-Enterprise", "wifi_link", json!({}))
        .await;
    r.check(
        "WPA3-Enterprise connected with auto: key management WPA2-EAP-SHA256, CCMP, PMF required (wifi_link)",
        c["ip"].is_string()
            && link["security"]["key_mgmt"] == "WPA2-EAP-SHA256"
            && link["security"]["pairwise_cipher"] == "CCMP"
            && link["security"]["pmf"] == "required",
        &link["security"],
    );
    let code = r
        .tool_err(
            "WPA3-Enterprise 192-bit with PEAP refused",
            "wifi_connect_eap",
            json!({
                "ssid": env("AP_EAP192_SSID"),
                "method": "peap",
                "identity": env("AP_EAP_PEAP_IDENTITY"),
                "password": env("AP_EAP_PEAP_PASSWORD"),
                "security": "wpa3-eap-192",
            }),
            "needs method tls",
        )
        .await;
    r.check_code(
        "WPA3-Enterprise 192-bit with PEAP",
        code,
        "invalid_argument",
    );
    let c = r
        .ok(
            "connect WPA3-Enterprise 192-bit (EAP-TLS on P-384, security auto)",
            "wifi_connect_eap",
            tls_args(
                "AP_EAP192_SSID",
                "AP_EAP_EC_CA_CERT",
                "AP_EAP_EC_CLIENT_CERT",
                "AP_EAP_EC_CLIENT_KEY",
            ),
        )
        .await;
    let link = r
        .ok(
            "wifi_link on WPA3-Enterprise 192-bit",
            "wifi_link",
            json!({}),
        )
        .await;
    r.check(
        "WPA3-Enterprise 192-bit connected with auto: WPA2-EAP-SUITE-B-192, GCMP-256, BIP-GMAC-256, PMF required (wifi_link)",
        c["ip"].is_string()
            && link["security"]["key_mgmt"] == "WPA2-EAP-SUITE-B-192"
            && link["security"]["pairwise_cipher"] == "GCMP-256"
            && link["security"]["group_cipher"] == "GCMP-256"
            && link["security"]["mgmt_group_cipher"] == "BIP-GMAC-256"
            && link["security"]["pmf"] == "required",
        &link["security"],
    );
    let code = r
        .tool_err(
            "WPA3-Enterprise 192-bit with the RSA (not suite B) certificate fails",
            "wifi_connect_eap",
            {
                let mut a = tls_args(
                    "AP_EAP192_SSID",
                    "AP_EAP_EC_CA_CERT",
                    "AP_EAP_CLIENT_CERT",
                    "AP_EAP_CLIENT_KEY",
                );
                a["timeout_secs"] = json!(30);
                a
            },
            "authentication failed",
        )
        .await;
    r.check_code(
        "WPA3-Enterprise 192-bit with the RSA certificate",
        code,
        "auth_failed",
    );

    // wpa_supplicant dies: the agent restarts it and restores the configured networks.
    let killed = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .is_ok_and(|c| c.trim() == "wpa_supplicant")
        })
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            )
            .is_ok()
        })
        .count();
    r.check("wpa_supplicant killed (SIGKILL)", killed == 1, killed);
    let t = Instant::now();
    let mut restarted = Value::Null;
    while t.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (ok, st, _) = r.call_raw("wifi_status", json!({})).await;
        if ok && st["supplicant_restarts"].as_u64().unwrap_or(0) >= 1 {
            restarted = st;
            break;
        }
    }
    r.check(
        "the agent restarted wpa_supplicant",
        !restarted.is_null(),
        "no restart within 20 s",
    );
    let l = r
        .ok(
            "networks after the restart",
            "wifi_list_networks",
            json!({}),
        )
        .await;
    r.check(
        "configured networks restored after the restart",
        l["networks"].as_array().is_some_and(|a| a.len() >= 4),
        &l,
    );
    let c = r
        .ok(
            "connect WPA2 after the restart",
            "wifi_connect",
            json!({"ssid": env("AP_WPA2_SSID"), "password": env("AP_WPA2_PSK")}),
        )
        .await;
    r.check("lease after the restart", c["ip"].is_string(), &c);

    // Networks, forget, logs.
    let l = r.ok("list networks", "wifi_list_networks", json!({})).await;
    let n = l["networks"].as_array().map(|a| a.len()).unwrap_or(0);
    r.check("configured networks listed", n >= 4, &l);
    let f = r
        .ok(
            "forget",
            "wifi_forget",
            json!({"ssid": env("AP_HIDDEN_SSID")}),
        )
        .await;
    r.check(
        "forget removed one",
        f["network_ids"].as_array().is_some_and(|a| a.len() == 1),
        &f,
    );
    r.tool_err(
        "forget unknown",
        "wifi_forget",
        json!({"ssid": "no-such-net"}),
        "no configured network",
    )
    .await;
    let logs = r
        .ok("debug logs", "wifi_debug_logs", json!({"lines": 500}))
        .await;
    let text = logs.to_string();
    let leaked: Vec<String> = [
        "AP_WPA2_PSK",
        "AP_SAE_PSK",
        "AP_HIDDEN_PSK",
        "AP_WPA2B_PSK",
        "AP_EAP_PEAP_PASSWORD",
        "AP_EAP_TTLS_PASSWORD",
    ]
    .iter()
    .map(|k| env(k))
    .filter(|s| text.contains(s.as_str()) || text.contains(&hex::encode(s)))
    .collect();
    r.check(
        "debug logs hold events but no secret",
        leaked.is_empty() && text.contains("CTRL-EVENT-CONNECTED"),
        format!("leaked {} secrets", leaked.len()),
    );
    r.ok("final disconnect", "wifi_disconnect", json!({})).await;
    r.check_host("at the end");
}

/// The WiFi state the agent reports.
async fn wpa_state(r: &Run) -> String {
    let (_, st, _) = r.call_raw("wifi_status", json!({})).await;
    st["wpa_state"].as_str().unwrap_or("?").to_string()
}

/// After a cancelled connect: wifi_disconnect answers within 2 s (the operation lock was
/// released) and the radio is not associated.
async fn after_cancel(r: &mut Run, how: &str) {
    let t = Instant::now();
    let (ok, _, text) = r.call_raw("wifi_disconnect", json!({})).await;
    let took = t.elapsed();
    r.check(
        &format!("cancellation ({how}): wifi_disconnect answers within 2 s"),
        ok && took < Duration::from_secs(2),
        format!("{} ms: {text}", took.as_millis()),
    );
    let st = wpa_state(r).await;
    r.check(
        &format!("cancellation ({how}): the radio ends disconnected"),
        st == "DISCONNECTED" || st == "INACTIVE",
        format!("wpa_state {st}"),
    );
}

/// One raw HTTP/1.1 request on the agent's socket; returns the head and the stream (still open).
async fn raw_post(
    sock: &str,
    session: Option<&str>,
    body: &Value,
) -> (String, tokio::net::UnixStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::UnixStream::connect(sock)
        .await
        .expect("connect");
    let body = body.to_string();
    let sid = session
        .map(|v| format!("Mcp-Session-Id: {v}\r\nMCP-Protocol-Version: 2025-11-25\r\n"))
        .unwrap_or_default();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\n{sid}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        if s.read(&mut b).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(b[0]);
    }
    (String::from_utf8_lossy(&head).into_owned(), s)
}

/// Read from `s` until `needle` shows up (bounded: 10 s, 64 KiB).
async fn read_until(s: &mut tokio::net::UnixStream, needle: &str) -> bool {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 65536 {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut b)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&b[..n]),
            _ => return false,
        }
        if String::from_utf8_lossy(&got).contains(needle) {
            return true;
        }
    }
    false
}

/// A connect that cannot finish (the AP's DHCP server stopped, timeout 300 s), cancelled after
/// 2 s, first with notifications/cancelled, then by closing the HTTP response stream.
async fn cancellation_suite(r: &mut Run, sock: &str) {
    let pid = std::fs::read_to_string("/run/hwsim/dnsmasq-wpa2b.pid").unwrap_or_default();
    let stopped = pid.trim().parse::<i32>().is_ok_and(|p| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        )
        .is_ok()
    });
    r.check(
        "cancellation: the wpa2b AP's DHCP server stopped",
        stopped,
        pid.trim(),
    );
    let connect =
        json!({"ssid": env("AP_WPA2B_SSID"), "password": env("AP_WPA2B_PSK"), "timeout_secs": 300});
    // 1. notifications/cancelled
    let params = CallToolRequestParams::new("wifi_connect")
        .with_arguments(connect.as_object().cloned().unwrap_or_default());
    let handle = r
        .svc
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("sending request");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = handle.cancel(Some("the test gave up".into())).await;
    r.check(
        "cancellation (notifications/cancelled): sent",
        sent.is_ok(),
        format!("{sent:?}"),
    );
    after_cancel(r, "notifications/cancelled").await;
    // 2. the HTTP response stream closed: a session of its own, raw, so the test owns the stream.
    let (head, mut s) = raw_post(
        sock,
        None,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw-cancel", "version": "0"}}}),
    )
    .await;
    let sid = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("mcp-session-id: ")
                .or_else(|| l.strip_prefix("Mcp-Session-Id: "))
        })
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    let inited = read_until(&mut s, "\"result\"").await;
    drop(s);
    r.check(
        "cancellation (stream closed): a raw session",
        !sid.is_empty() && inited,
        &head,
    );
    let (_, s2) = raw_post(
        sock,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    drop(s2);
    let (head, s3) = raw_post(
        sock,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "wifi_connect", "arguments": connect}}),
    )
    .await;
    r.check(
        "cancellation (stream closed): the connect's response stream opened",
        head.starts_with("HTTP/1.1 200"),
        &head,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(s3);
    after_cancel(r, "stream closed").await;
}

async fn stdio_suite(r: &mut Run) {
    let tools = r.svc.list_all_tools().await.expect("tools/list");
    r.check("stdio: tools listed", tools.len() >= 14, tools.len());
    let scan = r.ok("stdio: scan", "wifi_scan", json!({})).await;
    r.check(
        "stdio: scan sees the WPA2 AP",
        scan["networks"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n["ssid"] == env("AP_WPA2_SSID"))),
        "",
    );
    let c = r
        .ok(
            "stdio: connect WPA2",
            "wifi_connect",
            json!({"ssid": env("AP_WPA2_SSID"), "password": env("AP_WPA2_PSK")}),
        )
        .await;
    r.check("stdio: lease", c["ip"].is_string(), &c);
    let h = r
        .ok(
            "stdio: https with the box's CA store",
            "network_http_request",
            json!({"url": "https://ap.test:8443/hello"}),
        )
        .await;
    r.check(
        "stdio: https to the lab verifies against the box's CA store (its /etc/ssl/certs holds the lab's CA; no ca_pem given)",
        h["status"] == 200
            && h["tls"]["verified"] == true
            && h["tls"]["custom_ca"] == false
            && h["tls"]["insecure"] == false,
        &h["tls"],
    );
    r.check_host("(stdio) while connected");
    r.ok("stdio: disconnect", "wifi_disconnect", json!({}))
        .await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let baseline = std::env::var("HOST_BASELINE")
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_else(host_view);
    let client = Client::default();
    let progress = client.progress.clone();
    let (svc, stdio) = match args.get(1).map(String::as_str) {
        Some("unix") => {
            let sock = &args[2];
            let http = UnixSocketHttpClient::new(sock, "http://localhost/mcp");
            let transport = StreamableHttpClientTransport::with_client(
                http,
                StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp"),
            );
            (
                client
                    .serve(transport)
                    .await
                    .expect("MCP initialize over the unix socket"),
                false,
            )
        }
        Some("stdio" | "saepk") => {
            let cmd_args = &args[3..];
            let mut cmd = tokio::process::Command::new(&cmd_args[0]);
            cmd.args(&cmd_args[1..]);
            let transport = TokioChildProcess::new(cmd).expect("spawning the agent");
            (
                client
                    .serve(transport)
                    .await
                    .expect("MCP initialize over stdio"),
                true,
            )
        }
        _ => {
            eprintln!("usage: hwsim-agent-client unix SOCKET | stdio -- CMD... | saepk -- CMD...");
            std::process::exit(2);
        }
    };
    let mut run = Run {
        svc,
        progress,
        tally: wifi_isolate_tests::tally::Tally::default(),
        baseline,
    };
    if args.get(1).map(String::as_str) == Some("saepk") {
        // an agent whose wpa_supplicant has SAE-PK (guest.sh: --wpa-supplicant)
        saepk::saepk_suite(&mut run).await;
    } else if stdio {
        stdio_suite(&mut run).await;
    } else {
        full_suite(&mut run).await;
        radio::radio_suite(&mut run).await;
        saepk::debian_suite(&mut run).await;
        capture::capture_suite(&mut run).await;
        monitor::monitor_suite(&mut run).await;
        cancellation_suite(&mut run, &args[2]).await;
        protocol::discover_suite(&mut run, &args[2]).await;
        elicit::elicit_suite(&mut run, &args[2]).await;
        captive::captive_suite(&mut run).await;
        passpoint::passpoint_suite(&mut run).await;
        // Last: it leaves an access point running for guest.sh's release checks.
        ap::ap_suite(&mut run).await;
    }
    let (passed, failed) = (run.tally.passed, run.tally.failed);
    let _ = run.svc.cancel().await;
    println!("{passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
