//! 802.11 capture on a monitor interface (issue 16): `wifi_capture_start {interface: monitor}`
//! → a WPA2 connect → `wifi_capture_stop`: the monitor interface exists in the box's netns
//! while it runs (`iw dev`), the summary shows the lab's beacons, probe responses and the
//! authentication + association exchange with the right BSSID, and the EAPOL frames on the
//! air; `tcpdump -r` reads the pcap as 802.11 radiotap and agrees on the counts; the monitor
//! interface is gone afterwards and the station still works. A short foreground capture with
//! `filter: mgmt` keeps management frames only; a station filter is refused for monitor.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::radio::iw_in_box;
use crate::{Run, env};

fn bssid(ap: &str) -> String {
    env(&format!("AP_{ap}_BSSID")).to_lowercase()
}

/// The interface names of `iw dev` in the box.
fn box_ifaces(pid: &str) -> Vec<String> {
    let mut v: Vec<String> = iw_in_box(pid, &["dev"])
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Interface "))
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// `tcpdump -r` of the capture's pcap: (stdout, stderr) or the failure.
fn tcpdump(report: &Value, name: &str) -> Result<(String, String), String> {
    let b64 = report["pcap_base64"].as_str().ok_or("no pcap_base64")?;
    let pcap = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("base64: {e}"))?;
    let dir = std::path::Path::new("/share/logs");
    let path = if dir.is_dir() {
        dir.join(name)
    } else {
        std::env::temp_dir().join(name)
    };
    std::fs::write(&path, &pcap).map_err(|e| format!("writing {}: {e}", path.display()))?;
    let out = std::process::Command::new("tcpdump")
        .args(["-Z", "root", "-nn", "-e", "-r"])
        .arg(&path)
        .output()
        .map_err(|e| format!("tcpdump: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "tcpdump failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn count(air: &Value, subtype: &str) -> u64 {
    air["subtypes"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["subtype"] == subtype))
        .and_then(|c| c["count"].as_u64())
        .unwrap_or(0)
}

pub(crate) async fn monitor_suite(r: &mut Run) {
    let pid = env("AGENT_BOX_PID");
    r.ok("monitor: disconnect first", "wifi_disconnect", json!({}))
        .await;
    let before = box_ifaces(&pid);
    let started = r
        .ok(
            "monitor: wifi_capture_start interface monitor",
            "wifi_capture_start",
            json!({"interface": "monitor", "seconds": 60, "max_packets": 20000, "max_bytes": 1048576}),
        )
        .await;
    let mon = started["interface"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let during = box_ifaces(&pid);
    let info = iw_in_box(&pid, &["dev", &mon, "info"]);
    r.check(
        "monitor: a monitor interface on the box's phy while it runs (iw dev in the box)",
        !mon.is_empty()
            && !before.contains(&mon)
            && during.contains(&mon)
            && info.contains("type monitor"),
        format!("before {before:?}, during {during:?}: {info}"),
    );
    let code = r
        .tool_err(
            "monitor: a second monitor capture meanwhile is busy",
            "wifi_capture",
            json!({"interface": "monitor", "seconds": 1}),
            "one at a time",
        )
        .await;
    r.check_code(
        "monitor: a second monitor capture meanwhile is busy",
        code,
        "busy",
    );
    let c = r
        .ok(
            "monitor: connect WPA2 while capturing",
            "wifi_connect",
            json!({"ssid": env("AP_WPA2_SSID"), "password": env("AP_WPA2_PSK"), "security": "wpa2-psk"}),
        )
        .await;
    let rep = r
        .ok("monitor: wifi_capture_stop", "wifi_capture_stop", json!({}))
        .await;
    let air = &rep["air"];
    let ap = bssid("WPA2");
    let freq = env("AP_WPA2_FREQ");
    let seen = air["bss_seen"].as_array().cloned().unwrap_or_default();
    let wpa2 = seen.iter().find(|b| b["bssid"] == ap.as_str());
    let lab: Vec<String> = crate::radio::lab_bssids();
    r.check(
        "monitor: beacons from the lab's BSSIDs, WPA2's with its SSID, channel and signal",
        rep["mode"] == "monitor"
            && count(air, "beacon") > 0
            && wpa2.is_some_and(|b| {
                b["ssid"] == env("AP_WPA2_SSID").as_str()
                    && b["beacons"].as_u64().is_some_and(|n| n > 0)
                    && b["freq_mhz"]
                        .as_u64()
                        .is_some_and(|f| f.to_string() == freq)
                    && b["max_signal_dbm"].is_i64()
            })
            && seen.iter().all(|b| {
                b["bssid"]
                    .as_str()
                    .is_some_and(|x| lab.iter().any(|l| l == x))
            }),
        format!("lab {lab:?}: {seen:?}"),
    );
    let ex = air["exchange"].as_array().cloned().unwrap_or_default();
    let sta = c["mac"]
        .as_str()
        .or(c["address"].as_str())
        .map(str::to_lowercase);
    let from_ap = |e: &&Value| e["from"] == ap.as_str() && e["bssid"] == ap.as_str();
    let to_ap = |e: &&Value| e["to"] == ap.as_str() && e["bssid"] == ap.as_str();
    let auth1 = ex
        .iter()
        .find(|e| e["subtype"] == "auth" && e["auth_seq"] == 1);
    let auth2 = ex
        .iter()
        .find(|e| e["subtype"] == "auth" && e["auth_seq"] == 2 && from_ap(e));
    let areq = ex.iter().find(|e| e["subtype"] == "assoc_req");
    let aresp = ex
        .iter()
        .find(|e| e["subtype"] == "assoc_resp" && from_ap(e));
    r.check(
        "monitor: probe responses, then auth (open, 1 and 2) and association with the WPA2 BSSID, status 0",
        count(air, "probe_resp") > 0
            && auth1.is_some_and(|e| to_ap(&e) && e["auth_algorithm"] == 0)
            && auth2.is_some_and(|e| e["status_code"] == 0)
            && areq.is_some_and(|e| to_ap(&e))
            && aresp.is_some_and(|e| e["status_code"] == 0)
            && auth2.and_then(|e| e["to"].as_str()) == areq.and_then(|e| e["from"].as_str()),
        format!("sta {sta:?}: {ex:?}"),
    );
    r.check(
        "monitor: the 4-way handshake's EAPOL frames on the air",
        air["eapol_frames"].as_u64().is_some_and(|n| n >= 4),
        air,
    );
    match tcpdump(&rep, "capture-monitor.pcap") {
        Ok((out, err)) => {
            let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
            let n = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count() as u64;
            let assoc_req = lines
                .iter()
                .filter(|l| l.contains("Assoc Request") && !l.contains("ReAssoc Request"))
                .count() as u64;
            let got = (
                lines.len() as u64,
                n("Beacon ("),
                n("Probe Response"),
                n("Authentication"),
                assoc_req,
            );
            let ours = (
                rep["packets"].as_u64().unwrap_or(0),
                count(air, "beacon"),
                count(air, "probe_resp"),
                count(air, "auth"),
                count(air, "assoc_req"),
            );
            r.check(
                "monitor: tcpdump -r reads it as 802.11 radiotap and agrees (packets, beacons, probe responses, auth, assoc requests)",
                err.contains("IEEE802_11_RADIO") && got == ours,
                format!("tcpdump {got:?} ours {ours:?}; {err}"),
            );
        }
        Err(e) => r.check("monitor: tcpdump -r reads it", false, e),
    }
    let after = box_ifaces(&pid);
    r.check(
        "monitor: the monitor interface is gone afterwards (iw dev as before)",
        after == before,
        format!("before {before:?}, after {after:?}"),
    );
    let st = r
        .ok("monitor: status after", "wifi_status", json!({}))
        .await;
    let ping = r
        .ok(
            "monitor: the station still works (ping the AP)",
            "network_ping",
            json!({"host": env("AP_WPA2_IP"), "count": 2}),
        )
        .await;
    r.check(
        "monitor: still connected to WPA2 with a working link",
        st["wpa_state"] == "COMPLETED"
            && st["bssid"] == ap.as_str()
            && ping["received"].as_u64().is_some_and(|n| n >= 1),
        format!("{st} {ping}"),
    );
    // Foreground, mgmt only, summary only.
    let fg = r
        .ok(
            "monitor: wifi_capture interface monitor, filter mgmt, 2 s",
            "wifi_capture",
            json!({"interface": "monitor", "filter": "mgmt", "seconds": 2, "pcap": false}),
        )
        .await;
    let mgmt = [
        "assoc_req",
        "assoc_resp",
        "reassoc_req",
        "reassoc_resp",
        "probe_req",
        "probe_resp",
        "timing_advertisement",
        "beacon",
        "atim",
        "disassoc",
        "auth",
        "deauth",
        "action",
        "action_no_ack",
        "mgmt_reserved",
    ];
    let subs = fg["air"]["subtypes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    r.check(
        "monitor: filter mgmt keeps management frames only (beacons of the connected AP), no pcap",
        fg["filter"] == "mgmt"
            && count(&fg["air"], "beacon") > 0
            && subs
                .iter()
                .all(|s| s["subtype"].as_str().is_some_and(|x| mgmt.contains(&x)))
            && fg["pcap_base64"].is_null()
            && box_ifaces(&pid) == before,
        &fg,
    );
    let code = r
        .tool_err(
            "monitor: a station filter refused for interface monitor",
            "wifi_capture",
            json!({"interface": "monitor", "filter": "dhcp"}),
            "mgmt or eapol",
        )
        .await;
    r.check_code(
        "monitor: a station filter refused for interface monitor",
        code,
        "invalid_argument",
    );
    r.ok("monitor: disconnect", "wifi_disconnect", json!({}))
        .await;
    r.check_host("after the monitor checks");
}
