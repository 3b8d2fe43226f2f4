//! Packet capture on real radios (issue 16): `wifi_capture_start` → a WPA2 connect →
//! `wifi_capture_stop` shows the 4-way handshake (EAPOL 1/4..4/4) and the DHCP exchange in the
//! summary, and `tcpdump -r` (staged in the VM) reads the returned pcap and agrees; `filter:
//! dns` keeps DNS only; the packet and byte caps hold; progress comes once a second and `pcap:
//! false` leaves the file out; bad input is refused with `invalid_argument`.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::{Run, env};

/// `tcpdump -r` of a capture's pcap (written to the shared logs, named `name`): its stdout,
/// or the failure. `-Z root`: the initramfs has no `tcpdump` user to drop to.
fn tcpdump(report: &Value, name: &str, verbose: bool) -> Result<String, String> {
    let b64 = report["pcap_base64"].as_str().ok_or("no pcap_base64")?;
    let pcap = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("base64: {e}"))?;
    if Some(pcap.len() as u64) != report["pcap_bytes"].as_u64() {
        return Err(format!(
            "{} bytes decoded, pcap_bytes {}",
            pcap.len(),
            report["pcap_bytes"]
        ));
    }
    let dir = std::path::Path::new("/share/logs");
    let path = if dir.is_dir() {
        dir.join(name)
    } else {
        std::env::temp_dir().join(name)
    };
    std::fs::write(&path, &pcap).map_err(|e| format!("writing {}: {e}", path.display()))?;
    let out = std::process::Command::new("tcpdump")
        .args(["-Z", "root", "-nn", "-e"])
        .args(verbose.then_some("-v"))
        .arg("-r")
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
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// tcpdump's packet lines (with `-v`, a packet's further lines are indented).
fn packet_lines(dump: &str) -> Vec<&str> {
    dump.lines()
        .filter(|l| !l.is_empty() && !l.starts_with([' ', '\t']))
        .collect()
}

/// The DHCP message types tcpdump decoded, in order (`DHCP-Message (53), length 1: Discover`).
fn tcpdump_dhcp(dump: &str) -> Vec<String> {
    dump.lines()
        .filter_map(|l| l.trim().strip_prefix("DHCP-Message (53), length 1: "))
        .map(|k| k.trim().to_uppercase())
        .collect()
}

/// `want` appears in `got` in order (other entries may come between).
fn in_order(got: &[String], want: &[&str]) -> bool {
    let mut it = got.iter();
    want.iter().all(|w| it.any(|g| g == w))
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn capture_suite(r: &mut Run) {
    let tools = r.svc.list_all_tools().await.unwrap_or_default();
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    let listed = ["wifi_capture", "wifi_capture_start", "wifi_capture_stop"]
        .iter()
        .all(|t| {
            tools
                .iter()
                .any(|x| x.name == *t && x.output_schema.is_some())
        });
    r.check(
        "capture: wifi_capture, _start and _stop listed with output schemas",
        listed,
        format!("{names:?}"),
    );

    // Bad input: refused before anything opens.
    for (name, args, needle) in [
        (
            "capture: seconds 0 refused",
            json!({"seconds": 0}),
            "seconds",
        ),
        (
            "capture: seconds 10000 refused",
            json!({"seconds": 10000}),
            "seconds",
        ),
        (
            "capture: an unknown filter refused",
            json!({"filter": "bogus"}),
            "filter",
        ),
        (
            "capture: max_packets 0 refused",
            json!({"max_packets": 0}),
            "max_packets",
        ),
        (
            "capture: max_bytes 2 MB refused",
            json!({"max_bytes": 2_000_000}),
            "max_bytes",
        ),
    ] {
        let code = r.tool_err(name, "wifi_capture", args, needle).await;
        r.check_code(name, code, "invalid_argument");
    }
    let code = r
        .tool_err(
            "capture: start with tcp:0 refused",
            "wifi_capture_start",
            json!({"filter": "tcp:0"}),
            "filter",
        )
        .await;
    r.check_code(
        "capture: start with tcp:0 refused",
        code,
        "invalid_argument",
    );
    let code = r
        .tool_err(
            "capture: stop without a capture",
            "wifi_capture_stop",
            json!({}),
            "no capture",
        )
        .await;
    r.check_code("capture: stop without a capture", code, "not_found");

    // 1. A WPA2 connect, captured from before its first frame to after its lease.
    r.ok("capture: disconnect first", "wifi_disconnect", json!({}))
        .await;
    let started = r
        .ok(
            "capture: wifi_capture_start",
            "wifi_capture_start",
            json!({"seconds": 120, "max_bytes": 1048576}),
        )
        .await;
    r.check(
        "capture: started on the WiFi interface, every frame",
        started["filter"] == "all" && started["interface"].is_string(),
        &started,
    );
    let code = r
        .tool_err(
            "capture: a second wifi_capture_start is busy",
            "wifi_capture_start",
            json!({}),
            "wifi_capture_stop",
        )
        .await;
    r.check_code("capture: a second wifi_capture_start", code, "busy");
    let gw = env("AP_WPA2_IP");
    let c = r
        .ok(
            "capture: connect WPA2 while capturing",
            "wifi_connect",
            json!({"ssid": env("AP_WPA2_SSID"), "password": env("AP_WPA2_PSK"), "security": "wpa2-psk"}),
        )
        .await;
    // the lease's ARP and a ping, so the capture holds some of each
    let _ = r
        .call_raw("network_ping", json!({"host": gw, "count": 1}))
        .await;
    let rep = r
        .ok("capture: wifi_capture_stop", "wifi_capture_stop", json!({}))
        .await;
    let s = &rep["summary"];
    let hs = strs(&s["handshake_messages"]);
    r.check(
        "capture: the WPA2 connect's EAPOL 1/4, 2/4, 3/4 and 4/4 in the summary",
        hs == ["1/4", "2/4", "3/4", "4/4"] && s["handshake_complete"] == true,
        format!("handshake {hs:?}; eapol {}", s["eapol"]),
    );
    let eapol = s["eapol"].as_array().cloned().unwrap_or_default();
    let dir_of = |m: &str| {
        eapol
            .iter()
            .find(|e| e["message"] == m)
            .map(|e| e["direction"].as_str().unwrap_or_default().to_string())
    };
    let dirs: Vec<_> = ["1/4", "2/4", "3/4", "4/4"]
        .iter()
        .map(|m| dir_of(m))
        .collect();
    r.check(
        "capture: 1/4 and 3/4 came from the AP, 2/4 and 4/4 went out, in that order",
        dirs == [
            Some("in".to_string()),
            Some("out".into()),
            Some("in".into()),
            Some("out".into()),
        ] && in_order(
            &eapol
                .iter()
                .filter_map(|e| e["message"].as_str().map(str::to_owned))
                .collect::<Vec<_>>(),
            &["1/4", "2/4", "3/4", "4/4"],
        ),
        format!("{dirs:?}; {}", s["eapol"]),
    );
    let dhcp: Vec<String> = s["dhcp"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["message"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    r.check(
        "capture: the DHCP exchange DISCOVER, OFFER, REQUEST, ACK in the summary",
        in_order(&dhcp, &["DISCOVER", "OFFER", "REQUEST", "ACK"]),
        format!("{}; {}", s["dhcp_exchange"], s["dhcp"]),
    );
    let acked = s["dhcp"].as_array().and_then(|a| {
        a.iter()
            .rev()
            .find(|d| d["message"] == "ACK")
            .and_then(|d| d["your_ip"].as_str().map(str::to_owned))
    });
    r.check(
        "capture: the ACK's address is the connect's lease",
        acked.is_some() && acked.as_deref() == c["ip"].as_str(),
        format!("ACK {acked:?}, connect {}", c["ip"]),
    );
    let protos: Vec<String> = s["protocols"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["protocol"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    r.check(
        "capture: per-protocol counts with first/last times (eapol, dhcp, icmp at least)",
        ["eapol", "dhcp", "icmp"]
            .iter()
            .all(|p| protos.iter().any(|x| x == p))
            && s["protocols"].as_array().is_some_and(|a| {
                a.iter().all(|p| {
                    p["count"].as_u64().unwrap_or(0) >= 1
                        && p["first_ms"].as_u64() <= p["last_ms"].as_u64()
                })
            }),
        &s["protocols"],
    );
    match tcpdump(&rep, "capture-wpa2-connect.pcap", true) {
        Ok(dump) => {
            let lines = packet_lines(&dump);
            let keys = lines.iter().filter(|l| l.contains("EAPOL key")).count();
            let key_msgs = eapol
                .iter()
                .filter(|e| {
                    e["message"]
                        .as_str()
                        .is_some_and(|m| m.ends_with("/4") || m.starts_with("group"))
                })
                .count();
            r.check(
                "capture: tcpdump -r reads the pcap: as many packets as the report",
                lines.len() as u64 == rep["packets"].as_u64().unwrap_or(0) && !lines.is_empty(),
                format!("tcpdump {} packets, report {}", lines.len(), rep["packets"]),
            );
            r.check(
                "capture: tcpdump sees the same EAPOL key frames (at least the four)",
                keys == key_msgs && keys >= 4,
                format!(
                    "tcpdump {keys} EAPOL key frames, summary {key_msgs}: {:?}",
                    lines
                        .iter()
                        .filter(|l| l.contains("EAPOL"))
                        .collect::<Vec<_>>()
                ),
            );
            let td = tcpdump_dhcp(&dump);
            r.check(
                "capture: tcpdump decodes the same DHCP exchange",
                td == dhcp && in_order(&td, &["DISCOVER", "OFFER", "REQUEST", "ACK"]),
                format!("tcpdump {td:?}, summary {dhcp:?}"),
            );
        }
        Err(e) => {
            r.check("capture: tcpdump -r reads the pcap", false, e);
        }
    }

    // 2. filter dns: a lookup and a ping, only the lookup kept.
    r.ok(
        "capture: start with filter dns",
        "wifi_capture_start",
        json!({"filter": "dns", "seconds": 60}),
    )
    .await;
    r.ok(
        "capture: a DNS lookup while capturing",
        "network_dns_lookup",
        json!({"name": "ap.test"}),
    )
    .await;
    let _ = r
        .call_raw("network_ping", json!({"host": gw, "count": 2}))
        .await;
    let dns = r
        .ok(
            "capture: stop the dns capture",
            "wifi_capture_stop",
            json!({}),
        )
        .await;
    let ds = &dns["summary"];
    let only_dns = ds["protocols"]
        .as_array()
        .is_some_and(|a| !a.is_empty() && a.iter().all(|p| p["protocol"] == "dns"));
    let asked = ds["dns_queries"].as_array().is_some_and(|q| {
        q.iter().any(|q| {
            q["name"] == "ap.test"
                && q["queries"].as_u64().unwrap_or(0) >= 1
                && q["responses"].as_u64().unwrap_or(0) >= 1
        })
    });
    r.check(
        "capture: filter dns keeps only DNS, with the query for ap.test and its answer",
        only_dns && asked && dns["filter"] == "dns",
        format!(
            "protocols {}; queries {}; frames seen {}",
            ds["protocols"], ds["dns_queries"], dns["frames_seen"]
        ),
    );
    r.check(
        "capture: the filter dropped the ping (frames seen > frames kept)",
        dns["frames_seen"].as_u64().unwrap_or(0) > dns["packets"].as_u64().unwrap_or(u64::MAX),
        format!("seen {}, kept {}", dns["frames_seen"], dns["packets"]),
    );
    match tcpdump(&dns, "capture-dns.pcap", false) {
        Ok(dump) => {
            let lines = packet_lines(&dump);
            let all53 = lines
                .iter()
                .all(|l| l.contains(".53:") || l.contains(".53 >"));
            r.check(
                "capture: tcpdump shows only port-53 traffic in the dns capture",
                !lines.is_empty() && all53 && dump.contains("ap.test"),
                dump.chars().take(2000).collect::<String>(),
            );
        }
        Err(e) => r.check("capture: tcpdump shows only port-53 traffic", false, e),
    }

    // 3. the caps: max_packets 3 → 3; max_bytes 1024 → stopped before the file passed it.
    let ((ok3, three, t3), (okb, bytes, tb), _) = tokio::join!(
        r.call_raw(
            "wifi_capture",
            json!({"seconds": 30, "max_packets": 3, "filter": "icmp"})
        ),
        r.call_raw(
            "wifi_capture",
            json!({"seconds": 30, "max_bytes": 1024, "filter": "icmp"})
        ),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            r.call_raw("network_ping", json!({"host": gw, "count": 10}))
                .await
        }
    );
    r.check(
        "capture: max_packets 3 → 3 packets",
        ok3 && three["packets"] == 3 && three["stopped_by"] == "max_packets",
        t3.chars().take(1500).collect::<String>(),
    );
    match tcpdump(&three, "capture-3.pcap", false) {
        Ok(dump) => {
            let n = packet_lines(&dump).len();
            r.check("capture: tcpdump reads 3 packets", n == 3, dump);
        }
        Err(e) => r.check("capture: tcpdump reads 3 packets", false, e),
    }
    r.check(
        "capture: max_bytes 1024 → stopped with the file within 1024 bytes",
        okb && bytes["stopped_by"] == "max_bytes"
            && bytes["pcap_bytes"].as_u64().is_some_and(|b| b <= 1024)
            && bytes["packets"].as_u64().unwrap_or(0) >= 1,
        tb.chars().take(1500).collect::<String>(),
    );
    // 4. progress once a second, and pcap: false → the summary without the file.
    r.progress.lock().unwrap().clear();
    let ((okp, p, tp), _) = tokio::join!(
        r.call_raw(
            "wifi_capture",
            json!({"seconds": 3, "filter": "icmp", "pcap": false})
        ),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            r.call_raw("network_ping", json!({"host": gw, "count": 4}))
                .await
        }
    );
    let progress = r
        .progress_when(|p| p.iter().any(|m| m.starts_with("done: stopped by")))
        .await;
    let mine: Vec<&String> = progress
        .iter()
        .filter(|m| m.starts_with("capturing") || m.contains(" of 3 s: ") || m.starts_with("done:"))
        .collect();
    r.check(
        "capture: progress — capturing, 1 and 2 of 3 s with packet counts, done: stopped by time",
        mine.first()
            .is_some_and(|m| m.as_str() == "capturing icmp for 3 s")
            && mine.iter().any(|m| m.starts_with("1 of 3 s: "))
            && mine.iter().any(|m| m.starts_with("2 of 3 s: "))
            && mine
                .last()
                .is_some_and(|m| m.as_str() == "done: stopped by time"),
        format!("{mine:?}"),
    );
    r.check(
        "capture: pcap: false → a summary (the pings' ICMP) and no pcap in the result",
        okp && p.get("pcap_base64").is_none()
            && p["pcap_bytes"].as_u64().is_some_and(|b| b > 24)
            && p["packets"].as_u64().is_some_and(|n| n >= 2)
            && !tp.contains("pcap_base64"),
        tp.chars().take(1500).collect::<String>(),
    );
    r.ok("capture: disconnect", "wifi_disconnect", json!({}))
        .await;
    r.check_host("after the capture checks");
}
