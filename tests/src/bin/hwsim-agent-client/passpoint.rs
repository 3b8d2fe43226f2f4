//! Hotspot 2.0 / Passpoint (issue 16) against the lab's `hs20` AP (hostapd's internal EAP
//! server, interworking + HS 2.0, the ANQP answers of tests/vm/lab/boot-initramfs.sh): the scan
//! names its modes exactly; `wifi_anqp` answers what hostapd's config says (realm lab.test with
//! EAP-TTLS / MSCHAPv2 by username and password, the domains, venue, operator name, OI, WAN
//! metrics); `wifi_connect_passpoint` by the realm credential joins it with a lease (and
//! hostapd lists the station as authorized); a wrong password fails as auth_failed and leaves
//! no network behind; a realm nobody serves is not_found naming what was seen; bad input is
//! invalid_argument with nothing applied; wifi_disconnect removes the credential's network.

use serde_json::{Value, json};

use crate::{Run, env, subnet_of};

/// `hostapd_cli ARGS` against the hs20 AP's control socket.
fn hostapd_cli(args: &[&str]) -> String {
    let ifc = env("AP_HS20_IFACE");
    match std::process::Command::new("hostapd_cli")
        .args(["-p", "/run/hostapd", "-i", &ifc])
        .args(args)
        .output()
    {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("hostapd_cli failed (is it in the VM image?): {e}"),
    }
}

/// The configured networks whose SSID is the hs20 AP's.
async fn hs20_networks(r: &mut Run, name: &str) -> Vec<Value> {
    let listed = r.ok(name, "wifi_list_networks", json!({})).await;
    let ssid = env("AP_HS20_SSID");
    listed["networks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n["ssid"] == ssid.as_str())
        .collect()
}

fn cred(realm: &str, password: &str) -> Value {
    json!({
        "realm": realm,
        "username": env("AP_HS20_USER"),
        "password": password,
        "eap": "ttls",
        "ca_cert": "ca.pem",
        "domain_suffix_match": env("AP_EAP_SERVER_NAME"),
        "timeout_secs": 60,
    })
}

pub async fn passpoint_suite(r: &mut Run) {
    let bssid = env("AP_HS20_BSSID").to_lowercase();
    let realm = env("AP_HS20_REALM");
    let _ = r.call_raw("wifi_disconnect", json!({})).await;

    // --- the scan: modes exactly ------------------------------------------------------------
    let scan = r
        .ok("passpoint: scan", "wifi_scan", json!({"timeout_secs": 60}))
        .await;
    let net = scan["networks"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["bssid"] == bssid.as_str()).cloned())
        .unwrap_or_default();
    let (m, d) = (&net["modes"], &net["detail"]);
    r.check(
        "passpoint: the hs20 AP's modes: WPA2-EAP, CCMP, PMF optional, no transition",
        net["security"] == "wpa2-eap"
            && m["akms"] == json!(["EAP"])
            && m["pairwise"] == json!(["CCMP"])
            && m["pmf"] == "optional"
            && m["transition"].is_null(),
        &net,
    );
    r.check(
        "passpoint: its detail: interworking (chargeable public, internet), Hotspot 2.0 release 3",
        d["interworking"] == true
            && d["hotspot20"] == true
            && d["hotspot20_release"] == 3
            && d["access_network_type"] == "chargeable_public"
            && d["internet"] == true,
        d,
    );

    // --- ANQP -------------------------------------------------------------------------------
    let (ok, a, text) = r
        .call_raw("wifi_anqp", json!({"bssid": bssid, "timeout_secs": 20}))
        .await;
    r.check(
        "passpoint: wifi_anqp answers (SUCCESS)",
        ok && a["result"] == "SUCCESS" && a["hotspot20"] == true,
        &text,
    );
    let q = &a["anqp"];
    let realms = q["nai_realms"].as_array().cloned().unwrap_or_default();
    let lab = realms
        .iter()
        .find(|x| x["realms"] == json!([realm.as_str()]))
        .cloned()
        .unwrap_or_default();
    let method = |n: u64| {
        lab["eap_methods"]
            .as_array()
            .and_then(|m| m.iter().find(|x| x["method"] == n).cloned())
            .unwrap_or_default()
    };
    let params = |m: &Value| -> Vec<(Value, Value)> {
        m["auth_params"]
            .as_array()
            .map(|p| {
                p.iter()
                    .map(|x| (x["kind"].clone(), x["meaning"].clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (ttls, tls) = (method(21), method(13));
    r.check(
        "passpoint: ANQP realm lab.test: EAP-TTLS (non-EAP MSCHAPv2, username/password) and \
         EAP-TLS (certificate)",
        realms.len() == 1
            && lab["eap_methods"].as_array().map(Vec::len) == Some(2)
            && ttls["name"] == "ttls"
            && params(&ttls)
                == vec![
                    (json!("non_eap_inner_auth"), json!("mschapv2")),
                    (json!("credential_type"), json!("username_password")),
                ]
            && tls["name"] == "tls"
            && params(&tls) == vec![(json!("credential_type"), json!("certificate"))],
        &q["nai_realms"],
    );
    r.check(
        "passpoint: ANQP domain names as configured",
        q["domain_names"] == json!([env("AP_HS20_DOMAIN"), realm]),
        &q["domain_names"],
    );
    r.check(
        "passpoint: ANQP venue: group 2 type 8, eng name",
        q["venue"]["group"] == 2
            && q["venue"]["venue_type"] == 8
            && q["venue"]["names"] == json!([{"language": "eng", "text": env("AP_HS20_VENUE")}]),
        &q["venue"],
    );
    r.check(
        "passpoint: HS 2.0 operator friendly name, roaming consortium, WAN metrics",
        q["operator_names"] == json!([{"language": "eng", "text": env("AP_HS20_OPERATOR")}])
            && q["roaming_consortium"] == json!([env("AP_HS20_OI")])
            && q["wan_metrics"]["link_status"] == "up"
            && q["wan_metrics"]["downlink_kbps"] == 8000
            && q["wan_metrics"]["uplink_kbps"] == 1000,
        q,
    );
    r.check(
        "passpoint: the ANQP answers parsed without a problem",
        q["problems"] == json!([]),
        &q["problems"],
    );
    let code = r
        .tool_err(
            "passpoint: wifi_anqp of an AP without interworking",
            "wifi_anqp",
            json!({"bssid": env("AP_WPA2_BSSID").to_lowercase()}),
            "interworking",
        )
        .await;
    r.check_code(
        "passpoint: wifi_anqp without interworking",
        code,
        "not_found",
    );
    let code = r
        .tool_err(
            "passpoint: wifi_anqp of a malformed bssid",
            "wifi_anqp",
            json!({"bssid": "02:00:00:00:00"}),
            "bssid",
        )
        .await;
    r.check_code(
        "passpoint: wifi_anqp malformed bssid",
        code,
        "invalid_argument",
    );

    // --- bad input: refused, nothing applied ------------------------------------------------
    let pw = env("AP_HS20_PASSWORD");
    let user = env("AP_HS20_USER");
    let long = format!("{}.test", "a".repeat(295));
    let bad = [
        (
            "empty realm",
            json!({"realm": "", "username": user, "password": pw}),
            "realm",
        ),
        (
            "a realm with a space",
            json!({"realm": "lab test", "username": user, "password": pw}),
            "realm",
        ),
        (
            "a 300-byte realm",
            json!({"realm": long, "username": user, "password": pw}),
            "realm",
        ),
        (
            "an unknown eap method",
            json!({"realm": realm, "username": user, "password": pw, "eap": "md5"}),
            "eap",
        ),
        (
            "both password and client certificate",
            json!({"realm": realm, "username": user, "password": pw,
                   "client_cert": "client.pem", "private_key": "client.key"}),
            "drop one",
        ),
    ];
    for (what, args, needle) in bad {
        let code = r
            .tool_err(
                &format!("passpoint: {what} refused"),
                "wifi_connect_passpoint",
                args,
                needle,
            )
            .await;
        r.check_code(&format!("passpoint: {what}"), code, "invalid_argument");
    }
    let left = hs20_networks(r, "passpoint: list after bad input").await;
    r.check(
        "passpoint: bad input applied nothing",
        left.is_empty(),
        format!("{left:?}"),
    );

    // --- a realm nobody serves: not_found, naming the AP and the realm it answered ---------
    let seen = format!(
        "no passpoint access point matches the credential (interworking-no-match); \
         interworking aps seen: {bssid} {:?} realms [{realm}]",
        env("AP_HS20_SSID")
    );
    let code = r
        .tool_err(
            "passpoint: a realm no AP serves → no match, naming the AP and realm seen",
            "wifi_connect_passpoint",
            cred("nowhere.test", &pw),
            &seen,
        )
        .await;
    r.check_code("passpoint: no match", code, "not_found");

    // --- a wrong password: auth_failed, no credential behind --------------------------------
    let code = r
        .tool_err(
            "passpoint: wrong password → authentication failed",
            "wifi_connect_passpoint",
            cred(&realm, "wrong passpoint secret"),
            "authentication failed",
        )
        .await;
    r.check_code("passpoint: wrong password", code, "auth_failed");
    let left = hs20_networks(r, "passpoint: list after the wrong password").await;
    r.check(
        "passpoint: the failed connect left no credential network behind",
        left.is_empty(),
        format!("{left:?}"),
    );

    // --- connect by the realm credential -----------------------------------------------------
    let (ok, c, text) = r
        .call_raw("wifi_connect_passpoint", cred(&realm, &pw))
        .await;
    r.check("passpoint: connect by realm credential", ok, &text);
    r.check(
        "passpoint: joined the hs20 AP with EAP and a lease in its subnet",
        c["ssid"] == env("AP_HS20_SSID").as_str()
            && c["bssid"] == bssid.as_str()
            && c["key_mgmt"].as_str().is_some_and(|k| k.contains("EAP"))
            && c["ip"].as_str().map(subnet_of) == Some(subnet_of(&env("AP_HS20_IP"))),
        &c,
    );
    let sta = hostapd_cli(&["all_sta"]);
    r.check(
        "passpoint: hostapd lists one authorized station (all_sta)",
        sta.lines().filter(|l| l.contains("AUTHORIZED")).count() == 1,
        &sta,
    );
    let st = r.ok("passpoint: status", "wifi_status", json!({})).await;
    r.check(
        "passpoint: wifi_status: completed on the hs20 AP",
        st["wpa_state"] == "COMPLETED" && st["bssid"] == bssid.as_str(),
        &st,
    );
    r.ok("passpoint: disconnect", "wifi_disconnect", json!({}))
        .await;
    let left = hs20_networks(r, "passpoint: list after disconnect").await;
    r.check(
        "passpoint: wifi_disconnect removed the credential's network",
        left.is_empty(),
        format!("{left:?}"),
    );

    // --- a certificate credential: EAP-TLS by realm ------------------------------------------
    let (ok, c, text) = r
        .call_raw(
            "wifi_connect_passpoint",
            json!({
                "realm": realm,
                "username": env("AP_EAP_TLS_IDENTITY"),
                "eap": "tls",
                "client_cert": "client.pem",
                "private_key": "client.key",
                "ca_cert": "ca.pem",
                "timeout_secs": 60,
            }),
        )
        .await;
    r.check(
        "passpoint: connect by certificate credential (EAP-TLS)",
        ok,
        &text,
    );
    r.check(
        "passpoint: the certificate credential joined the hs20 AP with a lease",
        c["bssid"] == bssid.as_str()
            && c["key_mgmt"].as_str().is_some_and(|k| k.contains("EAP"))
            && c["ip"].as_str().map(subnet_of) == Some(subnet_of(&env("AP_HS20_IP"))),
        &c,
    );
    // A plain connect replaces it: the credential (its secrets) and its network leave
    // wpa_supplicant, not only the association.
    let (ok, c, text) = r.connect_lab_wpa2().await;
    r.check(
        "passpoint: a plain wifi_connect after it joins the WPA2 AP",
        ok && c["ssid"] == env("AP_WPA2_SSID").as_str(),
        &text,
    );
    let left = hs20_networks(r, "passpoint: list after the plain connect").await;
    r.check(
        "passpoint: the plain connect removed the credential's network",
        left.is_empty(),
        format!("{left:?}"),
    );
    r.ok(
        "passpoint: disconnect after the plain connect",
        "wifi_disconnect",
        json!({}),
    )
    .await;
    r.check_host("after passpoint");
}
