//! WPA3-SAE with SAE-PK (issue 16): the lab's `saepk` AP (hostapd built with SAE-PK, the
//! password the fingerprint of its key) and `saepkrogue`, its evil twin (same SSID, password and
//! public key, but it signs with another private key).
//!
//! Two halves. [`debian_suite`] runs in the daemon's box with Debian's wpa_supplicant, which is
//! built without SAE-PK: the scan names saepk's modes exactly (the AP side needs no station
//! support), `sae_pk: required` is refused as unsupported before anything changes, bad input is
//! refused, and `sae_pk: auto` joins as plain SAE (saying so). [`saepk_suite`] drives an agent
//! whose wpa_supplicant is the same Debian source built with SAE-PK
//! (tests/vm/lab/saepk-build.sh; guest.sh starts it): required joins saepk and reports SAE-PK;
//! the twin and an ordinary SAE AP are refused with their reasons.

use serde_json::{Value, json};

use super::{Run, env};

fn bssid(ap: &str) -> String {
    env(&format!("AP_{ap}_BSSID"))
}

/// A connect result that names `ap`'s BSS and a lease in its subnet.
fn joined(c: &Value, ap: &str) -> bool {
    let subnet = |ip: &str| ip.rsplit_once('.').map(|(a, _)| a.to_owned());
    c["ip"].as_str().and_then(subnet) == subnet(&env(&format!("AP_{ap}_IP")))
        && c["bssid"].as_str() == Some(bssid(ap).as_str())
}

/// The connection as wifi_status reports it (state, SSID, BSSID), to show a refusal changed
/// nothing.
async fn connection(r: &Run) -> Value {
    let (_, s, _) = r.call_raw("wifi_status", json!({})).await;
    json!([s["wpa_state"], s["ssid"], s["bssid"]])
}

pub(crate) async fn debian_suite(r: &mut Run) {
    let pw = env("AP_SAEPK_PSK");
    let scan = r
        .ok("sae-pk: scan", "wifi_scan", json!({"timeout_secs": 60}))
        .await;
    let nets = scan["networks"].as_array().cloned().unwrap_or_default();
    let find = |ap: &str| {
        let b = bssid(ap);
        nets.iter()
            .find(|n| n["bssid"] == b.as_str())
            .cloned()
            .unwrap_or_default()
    };
    let exact = |n: &Value| {
        n["security"] == "wpa3-sae"
            && n["modes"]
                == json!({
                    "akms": ["SAE"], "pairwise": ["CCMP"], "group": "CCMP",
                    "group_mgmt": "BIP-CMAC-128", "pmf": "required",
                    "sae_h2e": true, "sae_pk": true, "wpa1_akms": [],
                    "transition": null, "owe_companion_bssid": null,
                    "owe_companion_ssid": null, "wps": false
                })
    };
    let real = find("SAEPK");
    r.check(
        "sae-pk: scan names saepk's modes exactly: SAE, CCMP, PMF required, H2E and SAE-PK",
        exact(&real),
        &real,
    );
    let twin = find("SAEPKROGUE");
    r.check(
        "sae-pk: the rogue twin looks the same in the scan (same SSID, SAE-PK offered)",
        exact(&twin) && twin["ssid"] == real["ssid"],
        &twin,
    );
    let sae = |extra: Value| {
        let mut a = json!({"ssid": env("AP_SAEPK_SSID"), "password": pw, "security": "wpa3-sae",
                           "bssid": bssid("SAEPK")});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            a[k] = v;
        }
        a
    };

    // Refusals before anything changes.
    let before = connection(r).await;
    let code = r
        .tool_err(
            "sae-pk: required with Debian's wpa_supplicant (built without SAE-PK) is refused",
            "wifi_connect",
            sae(json!({"sae_pk": "required"})),
            "built without SAE-PK",
        )
        .await;
    r.check_code(
        "sae-pk: required without SAE-PK support",
        code,
        "unsupported",
    );
    let mut typo = pw.clone().into_bytes();
    let last = typo.len() - 1;
    typo[last] = if typo[last] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap_or_default();
    let code = r
        .tool_err(
            "sae-pk: required with a password whose checksum fails is refused, naming the checksum",
            "wifi_connect",
            sae(json!({"sae_pk": "required", "password": typo})),
            "not the checksum",
        )
        .await;
    r.check_code("sae-pk: bad checksum", code, "invalid_argument");
    let code = r
        .tool_err(
            "sae-pk: sae_pk on a network without SAE (wpa2-psk) is refused",
            "wifi_connect",
            json!({"ssid": env("AP_WPA2_SSID"), "password": env("AP_WPA2_PSK"),
                   "security": "wpa2-psk", "sae_pk": "required"}),
            "has no SAE",
        )
        .await;
    r.check_code("sae-pk: sae_pk without SAE", code, "invalid_argument");
    let after = connection(r).await;
    r.check(
        "sae-pk: the refusals changed nothing (wifi_status the same)",
        before == after,
        format!("before {before}, after {after}"),
    );

    // auto with Debian's wpa_supplicant: plain SAE (H2E), and it says SAE-PK was not used.
    let c = r
        .ok(
            "sae-pk: auto with Debian's wpa_supplicant connects",
            "wifi_connect",
            sae(json!({})),
        )
        .await;
    r.check(
        "sae-pk: auto without SAE-PK support joins saepk as plain SAE: link_security.sae_pk false, H2E",
        joined(&c, "SAEPK")
            && c["key_mgmt"] == "SAE"
            && c["link_security"]["sae_pk"] == false
            && c["link_security"]["sae_h2e"] == true,
        &c,
    );
    r.ok("sae-pk: disconnect", "wifi_disconnect", json!({}))
        .await;
}

pub(crate) async fn saepk_suite(r: &mut Run) {
    let pw = env("AP_SAEPK_PSK");
    let scan = r
        .ok(
            "sae-pk (SAE-PK wpa_supplicant): scan",
            "wifi_scan",
            json!({"timeout_secs": 60}),
        )
        .await;
    let seen = |ap: &str| {
        scan["networks"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n["bssid"] == bssid(ap).as_str()))
    };
    r.check(
        "sae-pk (SAE-PK wpa_supplicant): the scan sees saepk and its twin",
        seen("SAEPK") && seen("SAEPKROGUE"),
        &scan,
    );
    let c = r
        .ok(
            "sae-pk (SAE-PK wpa_supplicant): connect with sae_pk required",
            "wifi_connect",
            json!({"ssid": env("AP_SAEPK_SSID"), "password": pw, "sae_pk": "required",
                   "bssid": bssid("SAEPK")}),
        )
        .await;
    r.check(
        "sae-pk (SAE-PK wpa_supplicant): required joins saepk and reports SAE-PK used (link_security.sae_pk, H2E, PMF required)",
        joined(&c, "SAEPK")
            && c["key_mgmt"] == "SAE"
            && c["link_security"]["sae_pk"] == true
            && c["link_security"]["sae_h2e"] == true
            && c["link_security"]["pmf"] == "required",
        &c,
    );
    let (_, st, _) = r.call_raw("wifi_status", json!({})).await;
    r.check(
        "sae-pk (SAE-PK wpa_supplicant): wifi_status reports SAE-PK in use",
        st["link_security"]["sae_pk"] == true,
        &st,
    );
    r.ok(
        "sae-pk (SAE-PK wpa_supplicant): disconnect",
        "wifi_disconnect",
        json!({}),
    )
    .await;

    // The evil twin: it knows the password and shows the real public key, but cannot sign.
    let code = r
        .tool_err(
            "sae-pk (SAE-PK wpa_supplicant): the rogue twin (same SSID and password, wrong key) is refused, naming the bad signature",
            "wifi_connect",
            json!({"ssid": env("AP_SAEPK_SSID"), "password": pw, "sae_pk": "required",
                   "bssid": bssid("SAEPKROGUE"), "timeout_secs": 40}),
            "Invalid or incorrect signature",
        )
        .await;
    r.check_code(
        "sae-pk (SAE-PK wpa_supplicant): rogue twin",
        code,
        "auth_failed",
    );
    // An ordinary WPA3-SAE AP (no SAE-PK) is not even tried with sae_pk required.
    let code = r
        .tool_err(
            "sae-pk (SAE-PK wpa_supplicant): an ordinary SAE AP with sae_pk required is refused",
            "wifi_connect",
            json!({"ssid": env("AP_SAE_SSID"), "password": pw, "sae_pk": "required",
                   "timeout_secs": 40}),
            "proves SAE-PK",
        )
        .await;
    r.check_code(
        "sae-pk (SAE-PK wpa_supplicant): ordinary SAE AP",
        code,
        "not_found",
    );
    // (a failed connect re-enables the networks that were enabled before it: the box may be
    // back on saepk, never on the twin or the ordinary AP)
    let (_, st, _) = r.call_raw("wifi_status", json!({})).await;
    r.check(
        "sae-pk (SAE-PK wpa_supplicant): after the refusals the box is on neither refused AP",
        st["bssid"] != bssid("SAEPKROGUE").as_str() && st["bssid"] != bssid("SAE").as_str(),
        &st,
    );
}
