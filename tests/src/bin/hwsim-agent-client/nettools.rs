//! The network tester's tools on real radios, connected to the WPA2 AP: HTTPS against the lab's
//! own CA chain (untrusted without it, trusted with `ca_pem`, `insecure` reported), a redirect
//! chain across schemes, cookies, open / closed / filtered ports (an nft drop rule in the AP's
//! netns), DNS records of every type from dnsmasq plus NXDOMAIN / SERVFAIL / timeout, and the
//! refusals of bad input. The servers are started by tests/vm/agent/guest.sh in the AP's netns
//! (tests/src/bin/nettools-lab.rs).

use serde_json::{Value, json};

use crate::{Run, env};

/// Add (`on`) or remove the 2 Mbit/s tbf limit on the WPA2 AP's interface (tc in its netns),
/// for the throughput checks.
pub(crate) fn tbf_2mbit(on: bool) -> std::io::Result<std::process::Output> {
    let (ns, dev) = (env("AP_WPA2_NETNS"), env("AP_WPA2_IFACE"));
    let mut tc = std::process::Command::new("/usr/bin/ip");
    tc.args(["netns", "exec", &ns, "/usr/sbin/tc", "qdisc"]);
    if on {
        tc.args([
            "add", "dev", &dev, "root", "tbf", "rate", "2mbit", "burst", "16kb",
        ])
        .args(["latency", "300ms"]);
    } else {
        tc.args(["del", "dev", &dev, "root"]);
    }
    tc.output()
}

fn has(v: &Value, needle: &str) -> bool {
    v.as_array()
        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(needle)))
}

pub(crate) async fn nettools_suite(r: &mut Run) {
    let gw = env("AP_WPA2_IP");
    let dir = env("NETTOOLS_DIR");
    let ca = std::fs::read_to_string(format!("{dir}/ca.pem")).unwrap_or_default();
    r.check(
        "nettools: the lab's servers are up (CA written)",
        ca.contains("BEGIN CERTIFICATE"),
        format!("{dir}/ca.pem: {} bytes", ca.len()),
    );
    let not_after: i64 = std::fs::read_to_string(format!("{dir}/leaf-not-after"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let tools = r.svc.list_all_tools().await.expect("tools/list");
    let listed = |n: &str| {
        tools
            .iter()
            .any(|t| t.name == n && t.output_schema.is_some())
    };
    r.check(
        "nettools: network_http_request, network_port_check, network_dns_lookup listed with output schemas",
        listed("network_http_request") && listed("network_port_check") && listed("network_dns_lookup"),
        "",
    );

    // --- HTTPS -------------------------------------------------------------------------------
    let url = "https://ap.test:8443/hello";
    let code = r
        .tool_err(
            "https: untrusted without the lab's CA",
            "network_http_request",
            json!({"url": url}),
            "not trusted",
        )
        .await;
    r.check_code(
        "https: untrusted without the lab's CA",
        code,
        "tls_untrusted",
    );
    let h = r
        .ok(
            "https: trusted with ca_pem",
            "network_http_request",
            json!({"url": url, "ca_pem": ca}),
        )
        .await;
    let tls = &h["tls"];
    r.check(
        "https: 200 and the body, verified against the given CA",
        h["status"] == 200
            && h["body"] == "hello over the lab"
            && tls["verified"] == true
            && tls["insecure"] == false
            && tls["custom_ca"] == true,
        &h,
    );
    let chain = tls["chain"].as_array().cloned().unwrap_or_default();
    let want_days = (not_after - now()).div_euclid(86_400);
    let leaf = chain.first().cloned().unwrap_or_default();
    r.check(
        "https: chain leaf ← intermediate, with subject, issuer, SANs",
        chain.len() == 2
            && leaf["subject"]
                .as_str()
                .is_some_and(|s| s.contains("CN=ap.test"))
            && leaf["issuer"]
                .as_str()
                .is_some_and(|s| s.contains("nettools lab intermediate"))
            && has(&leaf["sans"], "DNS:ap.test")
            && has(&leaf["sans"], &format!("IP:{gw}"))
            && chain[1]["is_ca"] == true
            && chain[1]["issuer"]
                .as_str()
                .is_some_and(|s| s.contains("nettools lab CA")),
        &tls["chain"],
    );
    r.check(
        "https: expiry and days left (the leaf is valid 30 days)",
        leaf["days_left"].as_i64() == Some(want_days)
            && (29..=30).contains(&want_days)
            && leaf["not_after"].as_str().is_some_and(|s| s.ends_with('Z')),
        format!("want {want_days} days: {leaf}"),
    );
    let t = &h["timing"];
    let f = |k: &str| t[k].as_f64().unwrap_or(-1.0);
    r.check(
        "https: TLS 1.3, cipher, peer and the timing breakdown (dns, connect, tls, first byte, total)",
        tls["version"] == "TLS 1.3"
            && tls["cipher"].as_str().is_some_and(|c| c.starts_with("TLS13_"))
            && h["peer"] == format!("{gw}:8443")
            && h["family"] == "ipv4"
            && f("dns_ms") > 0.0
            && f("connect_ms") > 0.0
            && f("tls_ms") > 0.0
            && f("first_byte_ms") >= f("tls_ms")
            && f("total_ms") >= f("first_byte_ms"),
        &h,
    );
    let h = r
        .ok(
            "https: insecure",
            "network_http_request",
            json!({"url": url, "insecure": true}),
        )
        .await;
    r.check(
        "https: insecure completes, and says it did not verify and why",
        h["status"] == 200
            && h["tls"]["insecure"] == true
            && h["tls"]["verified"] == false
            && h["tls"]["verify_error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
        &h["tls"],
    );

    // --- redirects, cookies, a POST ----------------------------------------------------------
    let h = r
        .ok(
            "redirects: followed",
            "network_http_request",
            json!({"url": "http://ap.test:8080/r1", "ca_pem": ca}),
        )
        .await;
    let hops = h["redirects"].as_array().cloned().unwrap_or_default();
    r.check(
        "redirects: the chain http /r1 → /r2 → https /hello reported",
        hops.len() == 2
            && hops[0]["status"] == 302
            && hops[0]["location"] == "/r2"
            && hops[1]["url"] == "http://ap.test:8080/r2"
            && hops[1]["location"] == "https://ap.test:8443/hello"
            && h["final_url"] == "https://ap.test:8443/hello"
            && h["status"] == 200
            && h["tls"]["verified"] == true,
        &h,
    );
    let h = r
        .ok(
            "redirects: not followed",
            "network_http_request",
            json!({"url": "http://ap.test:8080/r1", "follow_redirects": false}),
        )
        .await;
    r.check(
        "redirects: not followed when asked (302 and its Location reported)",
        h["status"] == 302
            && h["redirect_not_followed"].is_string()
            && h["headers"]
                .as_array()
                .is_some_and(|hs| hs.iter().any(|kv| kv[0] == "location" && kv[1] == "/r2")),
        &h,
    );
    let c = r
        .ok(
            "cookies: set",
            "network_http_request",
            json!({"url": "http://ap.test:8080/cookie"}),
        )
        .await;
    let e = r
        .ok(
            "cookies: sent back, with a POST body and a header",
            "network_http_request",
            json!({"url": "http://ap.test:8080/echo", "method": "POST", "body": "x=1",
                   "headers": {"X-Lab": "1"}}),
        )
        .await;
    r.check(
        "cookies: one response sets lab=1, the next request sends it; POST body arrives",
        has(&c["cookies_set"], "lab")
            && has(&e["cookies_sent"], "lab")
            && e["body"] == "POST cookie=[lab=1] body=[x=1]",
        format!("{c}\n{e}"),
    );

    // --- ports -------------------------------------------------------------------------------
    let p = r
        .ok(
            "ports: check",
            "network_port_check",
            json!({"targets": [{"host": gw, "port": 8081}, {"host": gw, "port": 8083},
                               {"host": gw, "port": 8082}],
                   "connect_timeout_ms": 1500}),
        )
        .await;
    let res = p["results"].as_array().cloned().unwrap_or_default();
    let state = |i: usize| res.get(i).map(|x| x["state"].clone()).unwrap_or_default();
    let ms = |i: usize| {
        res.get(i)
            .and_then(|x| x["connect_ms"].as_f64())
            .unwrap_or(-1.0)
    };
    r.check(
        "ports: 8081 open, 8083 closed (refused), fast",
        state(0) == "open" && state(1) == "closed" && ms(0) < 1000.0 && ms(1) < 1000.0,
        &p,
    );
    r.check(
        "ports: 8082 filtered (the nft drop rule in the AP's netns), after the 1.5 s limit",
        state(2) == "filtered" && ms(2) >= 1400.0 && p["filtered"] == 1,
        &p,
    );
    let p = r
        .ok(
            "ports: TLS",
            "network_port_check",
            json!({"targets": [{"host": "ap.test", "port": 8443}], "tls": true, "ca_pem": ca}),
        )
        .await;
    let t = &p["results"][0]["tls"];
    r.check(
        "ports: TLS handshake on 8443 (TLS 1.3, verified with ca_pem, chain)",
        p["results"][0]["state"] == "open"
            && t["ok"] == true
            && t["info"]["version"] == "TLS 1.3"
            && t["info"]["verified"] == true
            && t["info"]["chain"].as_array().is_some_and(|c| c.len() == 2),
        &p,
    );

    // --- DNS ---------------------------------------------------------------------------------
    let rec_ip = env("NETTOOLS_REC_IP");
    let server = format!("{gw}:5353");
    for (ty, name, want) in [
        ("A", "rec.lab.test", rec_ip.clone()),
        ("AAAA", "rec.lab.test", "fd00:77::80".to_string()),
        ("CNAME", "alias.lab.test", "rec.lab.test.".to_string()),
        ("MX", "lab.test", "10 mail.lab.test.".to_string()),
        ("TXT", "lab.test", "v=lab1 nettools".to_string()),
        ("NS", "lab.test", "ns.lab.test.".to_string()),
        (
            "SRV",
            "_sip._tcp.lab.test",
            "0 5 5060 sip.lab.test.".to_string(),
        ),
        ("PTR", rec_ip.as_str(), "rec.lab.test.".to_string()),
    ] {
        let d = r
            .ok(
                &format!("dns: {ty} lookup"),
                "network_dns_lookup",
                json!({"name": name, "type": ty, "server": server}),
            )
            .await;
        let l = &d["lookups"][0];
        let found = l["answers"].as_array().is_some_and(|a| {
            a.iter().any(|x| {
                x["type"] == ty
                    && x["data"].as_str().is_some_and(|s| s.contains(&want))
                    && x["ttl"].as_u64().is_some()
            })
        });
        r.check(
            &format!("dns: {ty} record from dnsmasq, with its TTL and the answering server"),
            d["outcome"] == "answer"
                && found
                && l["server"] == server
                && l["rcode"] == "NOERROR"
                && l["elapsed_ms"].as_f64().is_some_and(|x| x > 0.0),
            &d,
        );
    }
    let d = r
        .ok(
            "dns: NXDOMAIN lookup",
            "network_dns_lookup",
            json!({"name": "nope.lab.test", "type": "A", "server": server}),
        )
        .await;
    r.check(
        "dns: NXDOMAIN told apart (authoritative, SOA in authority)",
        d["outcome"] == "nxdomain" && d["lookups"][0]["rcode"] == "NXDOMAIN",
        &d,
    );
    let d = r
        .ok(
            "dns: SERVFAIL lookup",
            "network_dns_lookup",
            json!({"name": "x.lab.test", "type": "A", "server": format!("{gw}:5300")}),
        )
        .await;
    r.check(
        "dns: SERVFAIL told apart",
        d["outcome"] == "servfail" && d["lookups"][0]["rcode"] == "SERVFAIL",
        &d,
    );
    let d = r
        .ok(
            "dns: timeout lookup",
            "network_dns_lookup",
            json!({"name": "x.lab.test", "type": "A", "server": format!("{gw}:5301"),
                   "try_timeout_ms": 500, "attempts": 1}),
        )
        .await;
    r.check(
        "dns: timeout told apart (udp 5301 dropped in the AP's netns)",
        d["outcome"] == "timeout" && d["lookups"][0]["rcode"].is_null(),
        &d,
    );
    let d = r
        .ok(
            "dns: the lease's server by default",
            "network_dns_lookup",
            json!({"name": "ap.test", "type": "A"}),
        )
        .await;
    r.check(
        "dns: the lease's server answers by default",
        d["outcome"] == "answer"
            && d["lookups"][0]["server"] == format!("{gw}:53")
            && has(&d["addresses"], &gw),
        &d,
    );

    // --- throughput under a tc limit ------------------------------------------------------------
    let added = tbf_2mbit(true);
    r.check(
        "throughput: a 2 Mbit/s tbf limit on the AP's interface (tc in its netns)",
        added.as_ref().is_ok_and(|o| o.status.success()),
        format!("{added:?}"),
    );
    r.progress.lock().unwrap().clear();
    let t = r
        .ok(
            "throughput: download",
            "network_throughput",
            json!({"url": format!("http://{gw}:8084/"), "seconds": 4}),
        )
        .await;
    let removed = tbf_2mbit(false);
    let progress = r
        .progress_when(|p| p.iter().filter(|m| m.contains(" s: ")).count() >= 3)
        .await;
    let g = t["goodput_mbps"].as_f64().unwrap_or(0.0);
    r.check(
        "throughput: goodput within 20 % of the 2 Mbit/s limit",
        (1.6..=2.4).contains(&g),
        format!(
            "{g} Mbit/s; limit removed: {:?}; {t}",
            removed.map(|o| o.status)
        ),
    );
    r.check(
        "throughput: first byte, per-second samples, stopped by time",
        t["first_byte_ms"].as_f64().is_some_and(|x| x > 0.0)
            && t["per_second_mbps"]
                .as_array()
                .is_some_and(|a| a.len() >= 3)
            && t["stopped_by"] == "time"
            && t["stalls"].as_u64().is_some()
            && t["status"] == 200,
        &t,
    );
    r.check(
        "throughput: progress each second",
        progress.iter().filter(|p| p.contains(" s: ")).count() >= 3,
        format!("{progress:?}"),
    );

    // --- traceroute through the two-hop path ------------------------------------------------------
    let far = env("NETTOOLS_FAR_IP");
    r.progress.lock().unwrap().clear();
    let t = r
        .ok(
            "traceroute: run",
            "network_traceroute",
            json!({"host": far, "max_hops": 8, "probes": 2, "wait_ms": 1000}),
        )
        .await;
    let hops = t["hops"].as_array().cloned().unwrap_or_default();
    let progress = r.progress_when(|p| p.iter().any(|m| m == "hop 2")).await;
    r.check(
        "traceroute: hop 1 the AP (time exceeded), hop 2 the far host (reached)",
        hops.len() == 2
            && hops[0]["address"] == gw
            && hops[0]["answer"] == "time_exceeded"
            && hops[1]["address"] == far
            && hops[1]["answer"] == "reached"
            && t["reached"] == true
            && t["last_hop"] == far,
        &t,
    );
    r.check(
        "traceroute: round trips per probe, progress per hop",
        hops.iter().all(|h| {
            h["rtt_ms"]
                .as_array()
                .is_some_and(|a| a.len() == 2 && a.iter().any(|x| x.as_f64().is_some()))
        }) && progress.iter().any(|p| p == "hop 2"),
        format!("{t} {progress:?}"),
    );

    // --- refusals ------------------------------------------------------------------------------
    for (name, tool, args, needle) in [
        (
            "refused: a file: URL",
            "network_http_request",
            json!({"url": "file:///etc/passwd"}),
            "unsupported URL scheme file",
        ),
        (
            "refused: a Unix path as URL",
            "network_http_request",
            json!({"url": "/run/wifi-isolate/mcp.sock"}),
            "not a URL",
        ),
        (
            "refused: URL port 0",
            "network_http_request",
            json!({"url": "http://ap.test:0/"}),
            "1-65535",
        ),
        (
            "refused: URL port 70000",
            "network_http_request",
            json!({"url": "http://ap.test:70000/"}),
            "1-65535",
        ),
        (
            "refused: an oversized body",
            "network_http_request",
            json!({"url": "http://ap.test:8080/echo", "method": "POST", "body": "x".repeat(70_000)}),
            "body is larger",
        ),
        (
            "refused: an oversized body excerpt",
            "network_http_request",
            json!({"url": "http://ap.test/", "max_body_bytes": 100_000_000u64}),
            "max_body_bytes",
        ),
        (
            "refused: 300 redirects",
            "network_http_request",
            json!({"url": "http://ap.test/", "max_redirects": 300}),
            "max_redirects",
        ),
        (
            "refused: port check port 0",
            "network_port_check",
            json!({"targets": [{"host": gw, "port": 0}]}),
            "1-65535",
        ),
        (
            "refused: port check port 70000",
            "network_port_check",
            json!({"targets": [{"host": gw, "port": 70000}]}),
            "1-65535",
        ),
        (
            "refused: 33 port targets",
            "network_port_check",
            json!({"targets": (0..33).map(|i| json!({"host": gw, "port": 1000 + i})).collect::<Vec<_>>()}),
            "1-32",
        ),
        (
            "refused: a DNS server that is a name",
            "network_dns_lookup",
            json!({"name": "ap.test", "server": "dns.example"}),
            "IP address",
        ),
        (
            "refused: network_http_get with ftp:",
            "network_http_get",
            json!({"url": "ftp://ap.test/"}),
            "unsupported URL scheme ftp",
        ),
    ] {
        let code = r.tool_err(name, tool, args, needle).await;
        r.check_code(name, code, "invalid_argument");
    }
    r.check_host("after the network tools");
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
