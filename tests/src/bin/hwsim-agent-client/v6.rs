//! IPv6 in the network tools, on real radios (issue 15). Connected to the WPA2 AP, whose router
//! advertisements give the box a SLAAC address in fd00:77::/64 (tests/vm/agent/guest.sh): the
//! box's address in `wifi_status`; HTTP and HTTPS by name with `family: "ipv6"` (the AAAA
//! address; the server saw the box's SLAAC address) and with `auto` (IPv4 chosen: both exist); an
//! IPv6 literal URL (the leaf names fd00:77::1 in its IP SANs: verified) and one the certificate
//! does not name (`tls_untrusted`, saying so); a redirect chain between IPv6 literals; AAAA from
//! the lease's DNS, asked over IPv4 and over IPv6, and from the lab's authoritative dnsmasq over
//! IPv6 (AAAA and an ip6.arpa PTR); open / closed / filtered ports and a TLS handshake over IPv6
//! (the nft rule is `table inet`: one rule for both families); throughput over IPv6 under the
//! same tc limit; traceroute over IPv6 through the two-hop path (hop limit, ICMPv6 time exceeded
//! from the AP, port unreachable from the far host). Then, connected to the open AP (no router
//! advertisement): `family: "ipv6"` in every tool fails with `family_unavailable` before
//! anything is sent (the AP's DNS log has a control query and none of theirs), and `auto` uses
//! IPv4. The host's routes and addresses stay unchanged throughout.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Run, env};

fn has(v: &Value, needle: &str) -> bool {
    v.as_array()
        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(needle)))
}

/// The box's global IPv6 addresses on `wifi`, from a `wifi_status` result, with their prefix
/// lengths.
fn global_v6(st: &Value, wifi: &str) -> Vec<(Ipv6Addr, u8)> {
    st["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["family"] == "ipv6" && a["scope"] == "global" && a["dev"] == wifi)
        .filter_map(|a| {
            let (ip, len) = a["cidr"].as_str()?.split_once('/')?;
            Some((ip.parse().ok()?, len.parse().ok()?))
        })
        .collect()
}

/// Connected to the WPA2 AP (IPv4 lease and SLAAC).
pub(crate) async fn v6_suite(r: &mut Run) {
    let gw = env("AP_WPA2_IP");
    let gw6 = env("AP_WPA2_IPV6");
    let nosan = env("AP_WPA2_IPV6_NOSAN");
    let far6 = env("NETTOOLS_FAR_IPV6");
    let ca = std::fs::read_to_string(format!("{}/ca.pem", env("NETTOOLS_DIR"))).unwrap_or_default();

    // --- the box's SLAAC address ----------------------------------------------------------------
    let st = r.ok("v6: wifi_status", "wifi_status", json!({})).await;
    let wifi = st["interface"].as_str().unwrap_or_default().to_string();
    let mine = global_v6(&st, &wifi);
    r.check(
        "v6: the box's SLAAC address on the WiFi interface is in fd00:77::/64 (wifi_status)",
        !mine.is_empty()
            && mine
                .iter()
                .all(|(a, len)| a.segments()[..4] == [0xfd00, 0x77, 0, 0] && *len == 64),
        format!("{wifi}: {mine:?} in {}", st["addresses"]),
    );
    let is_mine = |s: &str| {
        s.parse::<Ipv6Addr>()
            .is_ok_and(|ip| mine.iter().any(|(a, _)| *a == ip))
    };

    // --- HTTP and HTTPS ---------------------------------------------------------------------------
    let h = r
        .ok(
            "v6: http by name, family ipv6",
            "network_http_request",
            json!({"url": "http://ap.test:8080/peer", "family": "ipv6"}),
        )
        .await;
    r.check(
        "v6: http by name with family ipv6 goes to the AAAA address; the server saw the box's SLAAC address",
        h["status"] == 200
            && h["peer"] == format!("[{gw6}]:8080")
            && h["family"] == "ipv6"
            && h["body"].as_str().is_some_and(is_mine)
            && h["timing"]["dns_ms"].as_f64().is_some_and(|x| x > 0.0),
        &h,
    );
    let url = "https://ap.test:8443/hello";
    let h = r
        .ok(
            "v6: https by name, family ipv6",
            "network_http_request",
            json!({"url": url, "ca_pem": ca, "family": "ipv6"}),
        )
        .await;
    let tls = &h["tls"];
    let leaf = &tls["chain"][0];
    r.check(
        "v6: https over IPv6: 200, verified with the lab's CA, the same chain (leaf ← intermediate, SANs with the IPv6 address), TLS 1.3",
        h["status"] == 200
            && h["body"] == "hello over the lab"
            && h["peer"] == format!("[{gw6}]:8443")
            && h["family"] == "ipv6"
            && tls["verified"] == true
            && tls["version"] == "TLS 1.3"
            && tls["chain"].as_array().is_some_and(|c| c.len() == 2)
            && has(&leaf["sans"], "DNS:ap.test")
            && has(&leaf["sans"], &format!("IP:{gw}"))
            && has(&leaf["sans"], &format!("IP:{gw6}"))
            && tls["chain"][1]["is_ca"] == true,
        &h,
    );
    let h = r
        .ok(
            "v6: https by name, family auto",
            "network_http_request",
            json!({"url": url, "ca_pem": ca}),
        )
        .await;
    r.check(
        "v6: auto chose IPv4 for a name with both an A and an AAAA record (family reported)",
        h["status"] == 200 && h["family"] == "ipv4" && h["peer"] == format!("{gw}:8443"),
        &h,
    );
    let h = r
        .ok(
            "v6: https to an IPv6 literal",
            "network_http_request",
            json!({"url": format!("https://[{gw6}]:8443/hello"), "ca_pem": ca}),
        )
        .await;
    r.check(
        "v6: https://[fd00:77::1]:8443/ verifies (the leaf lists the address as an IP SAN); no DNS",
        h["status"] == 200
            && h["family"] == "ipv6"
            && h["peer"] == format!("[{gw6}]:8443")
            && h["tls"]["verified"] == true
            && h["tls"]["server_name"] == gw6.as_str()
            && h["timing"]["dns_ms"].as_f64() == Some(0.0),
        &h,
    );
    let name = "v6: https to an IPv6 address the certificate does not name";
    let code = r
        .tool_err(
            name,
            "network_http_request",
            json!({"url": format!("https://[{nosan}]:8443/hello"), "ca_pem": ca}),
            &format!("does not name {nosan}"),
        )
        .await;
    r.check_code(name, code, "tls_untrusted");
    let h = r
        .ok(
            "v6: redirects between IPv6 literals",
            "network_http_request",
            json!({"url": format!("http://[{gw6}]:8080/r1"), "ca_pem": ca}),
        )
        .await;
    let hops = h["redirects"].as_array().cloned().unwrap_or_default();
    let https6 = format!("https://[{gw6}]:8443/hello");
    r.check(
        "v6: the chain http://[v6]/r1 → /r2 → https://[v6]:8443/hello followed and verified",
        hops.len() == 2
            && hops[1]["url"] == format!("http://[{gw6}]:8080/r2")
            && hops[1]["location"] == https6.as_str()
            && h["final_url"] == https6.as_str()
            && h["status"] == 200
            && h["family"] == "ipv6"
            && h["tls"]["verified"] == true,
        &h,
    );

    // --- DNS --------------------------------------------------------------------------------------
    let aaaa = |d: &Value, want: &str| {
        d["lookups"][0]["answers"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["type"] == "AAAA" && x["data"] == want && x["ttl"].as_u64().is_some())
        })
    };
    let d = r
        .ok(
            "v6: AAAA from the lease's server",
            "network_dns_lookup",
            json!({"name": "ap.test", "type": "AAAA"}),
        )
        .await;
    r.check(
        "v6: AAAA ap.test from the lease's DNS server (asked over IPv4)",
        d["outcome"] == "answer"
            && aaaa(&d, &gw6)
            && d["lookups"][0]["server"] == format!("{gw}:53"),
        &d,
    );
    let d = r
        .ok(
            "v6: A and AAAA from the lease's server over IPv6",
            "network_dns_lookup",
            json!({"name": "ap.test", "server": gw6}),
        )
        .await;
    r.check(
        "v6: the lease's DNS server asked over IPv6 answers A and AAAA",
        d["outcome"] == "answer"
            && has(&d["addresses"], &gw)
            && has(&d["addresses"], &gw6)
            && d["lookups"][0]["server"] == format!("[{gw6}]:53")
            && d["lookups"][1]["server"] == format!("[{gw6}]:53"),
        &d,
    );
    let server6 = format!("[{gw6}]:5353");
    let d = r
        .ok(
            "v6: AAAA from the authoritative server over IPv6",
            "network_dns_lookup",
            json!({"name": "rec.lab.test", "type": "AAAA", "server": server6}),
        )
        .await;
    r.check(
        "v6: AAAA rec.lab.test from dnsmasq's lab.test zone, asked over IPv6, with its TTL",
        d["outcome"] == "answer"
            && aaaa(&d, "fd00:77::80")
            && d["lookups"][0]["server"] == server6.as_str()
            && d["lookups"][0]["rcode"] == "NOERROR",
        &d,
    );
    let d = r
        .ok(
            "v6: PTR of an IPv6 address",
            "network_dns_lookup",
            json!({"name": "fd00:77::80", "type": "PTR", "server": server6}),
        )
        .await;
    r.check(
        "v6: PTR of fd00:77::80 (ip6.arpa) is rec.lab.test",
        d["outcome"] == "answer"
            && d["lookups"][0]["answers"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["type"] == "PTR" && x["data"] == "rec.lab.test.")
            }),
        &d,
    );

    // --- ports ------------------------------------------------------------------------------------
    let p = r
        .ok(
            "v6: port check",
            "network_port_check",
            json!({"targets": [{"host": gw6, "port": 8081}, {"host": gw6, "port": 8083},
                               {"host": gw6, "port": 8082}, {"host": "ap.test", "port": 8081}],
                   "family": "ipv6", "connect_timeout_ms": 1500}),
        )
        .await;
    let res = p["results"].as_array().cloned().unwrap_or_default();
    let at = |i: usize, k: &str| res.get(i).map(|x| x[k].clone()).unwrap_or_default();
    r.check(
        "v6: ports over IPv6: 8081 open, 8083 closed, 8082 filtered (the inet nft rule) after the 1.5 s limit; the name's AAAA open",
        res.len() == 4
            && at(0, "state") == "open"
            && at(1, "state") == "closed"
            && at(2, "state") == "filtered"
            && at(2, "connect_ms").as_f64().is_some_and(|x| x >= 1400.0)
            && at(3, "state") == "open"
            && res
                .iter()
                .all(|x| x["family"] == "ipv6" && x["address"] == gw6.as_str()),
        &p,
    );
    let p = r
        .ok(
            "v6: port check with TLS",
            "network_port_check",
            json!({"targets": [{"host": "ap.test", "port": 8443}], "tls": true, "ca_pem": ca,
                   "family": "ipv6"}),
        )
        .await;
    let t = &p["results"][0];
    r.check(
        "v6: TLS handshake on 8443 over IPv6, verified with ca_pem",
        t["state"] == "open"
            && t["family"] == "ipv6"
            && t["tls"]["ok"] == true
            && t["tls"]["info"]["verified"] == true,
        &p,
    );
    let p = r
        .ok(
            "v6: port check, family auto",
            "network_port_check",
            json!({"targets": [{"host": "ap.test", "port": 8081}]}),
        )
        .await;
    r.check(
        "v6: port check with auto chose IPv4 for the name with both",
        p["results"][0]["state"] == "open"
            && p["results"][0]["family"] == "ipv4"
            && p["results"][0]["address"] == gw.as_str(),
        &p,
    );

    // --- throughput under the same tc limit --------------------------------------------------------
    let added = crate::nettools::tbf_2mbit(true);
    let t = r
        .ok(
            "v6: throughput download",
            "network_throughput",
            json!({"url": "http://ap.test:8084/", "family": "ipv6", "seconds": 4}),
        )
        .await;
    let removed = crate::nettools::tbf_2mbit(false);
    let g = t["goodput_mbps"].as_f64().unwrap_or(0.0);
    r.check(
        "v6: throughput over IPv6 within 20 % of the 2 Mbit/s tbf limit",
        added.as_ref().is_ok_and(|o| o.status.success())
            && (1.6..=2.4).contains(&g)
            && t["peer"] == format!("[{gw6}]:8084")
            && t["family"] == "ipv6"
            && t["stopped_by"] == "time",
        format!(
            "{g} Mbit/s; tc add {:?}, del {:?}; {t}",
            added.map(|o| o.status),
            removed.map(|o| o.status)
        ),
    );

    // --- traceroute -------------------------------------------------------------------------------
    // The AP answers hop 1 from the source address its kernel picks for the box: fd00:77::1, or
    // the SLAAC address its own interface took from its own router advertisements (it hears
    // them too), which shares more bits with the box's. Either is the AP: one of its addresses.
    let (ns, dev) = (env("AP_WPA2_NETNS"), env("AP_WPA2_IFACE"));
    let ap_v6: Vec<String> = std::process::Command::new("/usr/bin/ip")
        .args([
            "-n", &ns, "-6", "-o", "addr", "show", "dev", &dev, "scope", "global",
        ])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|w| w.split_once('/').map(|(a, _)| a.to_string()))
                .filter(|a| a.parse::<Ipv6Addr>().is_ok())
                .collect()
        })
        .unwrap_or_default();
    r.progress.lock().unwrap().clear();
    let t = r
        .ok(
            "v6: traceroute to the far host",
            "network_traceroute",
            json!({"host": far6, "family": "ipv6", "max_hops": 8, "probes": 2, "wait_ms": 1000}),
        )
        .await;
    let hops = t["hops"].as_array().cloned().unwrap_or_default();
    let progress = r.progress_when(|p| p.iter().any(|m| m == "hop 2")).await;
    r.check(
        "v6: traceroute over IPv6: hop 1 the AP (ICMPv6 time exceeded, from one of its addresses), hop 2 the far host (port unreachable: reached)",
        hops.len() == 2
            && hops[0]["address"]
                .as_str()
                .is_some_and(|a| ap_v6.iter().any(|x| x == a))
            && hops[0]["answer"] == "time_exceeded"
            && hops[1]["address"] == far6.as_str()
            && hops[1]["answer"] == "reached"
            && t["reached"] == true
            && t["family"] == "ipv6"
            && t["last_hop"] == far6.as_str()
            && hops.iter().all(|h| {
                h["rtt_ms"]
                    .as_array()
                    .is_some_and(|a| a.len() == 2 && a.iter().any(|x| x.as_f64().is_some()))
            })
            && progress.iter().any(|p| p == "hop 2"),
        format!("{t} {progress:?}; the AP's addresses {ap_v6:?}"),
    );
    let t = r
        .ok(
            "v6: traceroute by name, family ipv6",
            "network_traceroute",
            json!({"host": "ap.test", "family": "ipv6", "max_hops": 4, "probes": 1}),
        )
        .await;
    let t4 = r
        .ok(
            "v6: traceroute by name, family auto",
            "network_traceroute",
            json!({"host": "ap.test", "max_hops": 4, "probes": 1}),
        )
        .await;
    r.check(
        "v6: traceroute to ap.test: family ipv6 reaches its AAAA at hop 1; auto chose IPv4",
        t["target"] == gw6.as_str()
            && t["family"] == "ipv6"
            && t["reached"] == true
            && t["hops"].as_array().is_some_and(|h| h.len() == 1)
            && t4["target"] == gw.as_str()
            && t4["family"] == "ipv4"
            && t4["reached"] == true,
        format!("{t}\n{t4}"),
    );
    // --- ping, the connectivity check and a captive portal over IPv6 ---------------------------
    let received = |p: &Value| p["received"].as_u64().is_some_and(|n| n >= 1);
    let p = r
        .ok(
            "v6: ping by name, family ipv6",
            "network_ping",
            json!({"host": "ap.test", "family": "ipv6", "count": 2}),
        )
        .await;
    r.check(
        "v6: ping ap.test with family ipv6 pings its AAAA address, with replies (family reported)",
        p["target"] == gw6.as_str() && p["family"] == "ipv6" && received(&p),
        &p,
    );
    let p = r
        .ok(
            "v6: ping the IPv6 default router",
            "network_ping",
            json!({"family": "ipv6", "count": 2}),
        )
        .await;
    r.check(
        "v6: ping without a host, family ipv6: the router advertisement's default router (link-local), with replies",
        p["target"].as_str().is_some_and(|t| t.starts_with("fe80:"))
            && p["family"] == "ipv6"
            && received(&p),
        &p,
    );
    let p = r
        .ok(
            "v6: ping by name, family auto",
            "network_ping",
            json!({"host": "ap.test", "count": 1}),
        )
        .await;
    r.check(
        "v6: ping by name with auto uses the A record (family ipv4 reported)",
        p["target"] == gw.as_str() && p["family"] == "ipv4" && received(&p),
        &p,
    );
    // nettools-lab's /v6portal/ answers over IPv6 only (403 over IPv4): 302 to its page until
    // the page's form (hidden token + accept checkbox) is posted, then 204.
    let check = "http://ap.test:8080/v6portal/check";
    let c = r
        .ok(
            "v6: check_internet family auto at the IPv6-only portal",
            "network_check_internet",
            json!({"url": check}),
        )
        .await;
    r.check(
        "v6: check_internet with auto goes over IPv4 (family reported; the IPv6-only portal answers 403)",
        c["family"] == "ipv4" && c["status"] == 403,
        &c,
    );
    let c = r
        .ok(
            "v6: check_captive family ipv6",
            "network_check_captive",
            json!({"url": check, "family": "ipv6"}),
        )
        .await;
    let form = &c["portal"]["forms"][0];
    let field = |name: &str| {
        form["fields"]
            .as_array()
            .and_then(|f| f.iter().find(|x| x["name"] == name).cloned())
            .unwrap_or_default()
    };
    r.check(
        "v6: check_captive over IPv6: captive, the redirect to the page, its form (hidden token, accept checkbox)",
        c["connectivity"] == "captive"
            && c["family"] == "ipv6"
            && c["status"] == 302
            && c["redirects"][0]["location"] == "/v6portal/page"
            && c["portal"]["url"] == "http://ap.test:8080/v6portal/page"
            && form["action"] == "http://ap.test:8080/v6portal/login"
            && form["method"] == "POST"
            && field("t")["type"] == "hidden"
            && field("t")["value"] == "v6tok"
            && field("accept")["type"] == "checkbox",
        &c,
    );
    let l = r
        .ok(
            "v6: captive_login family ipv6",
            "network_captive_login",
            json!({"check_url": check, "fields": {"accept": true}, "family": "ipv6"}),
        )
        .await;
    r.check(
        "v6: captive_login over IPv6 gets through: captive before, full after (204), the portal's cookie set",
        l["connectivity_before"] == "captive"
            && l["connectivity_after"] == "full"
            && l["logged_in"] == true
            && l["check_status"] == 204
            && has(&l["submitted"]["cookies_set"], "v6portal"),
        &l,
    );
    let c = r
        .ok(
            "v6: check_internet family ipv6 after the login",
            "network_check_internet",
            json!({"url": check, "family": "ipv6"}),
        )
        .await;
    r.check(
        "v6: check_internet family ipv6 after the login: full (204 over IPv6, the session's cookie)",
        c["connectivity"] == "full" && c["family"] == "ipv6" && c["status"] == 204,
        &c,
    );
    r.check_host("after the IPv6 network tools");
}

/// Connected to the open AP, which sends no router advertisement.
pub(crate) async fn no_v6_suite(r: &mut Run) {
    let st = r
        .ok("v6: wifi_status on the open AP", "wifi_status", json!({}))
        .await;
    let wifi = st["interface"].as_str().unwrap_or_default().to_string();
    r.check(
        "v6: on the open AP (no router advertisement) the box has no global IPv6 address",
        st["ip"].is_string() && global_v6(&st, &wifi).is_empty(),
        &st["addresses"],
    );
    let gw6 = env("AP_WPA2_IPV6");
    for (name, tool, args, needle) in [
        (
            "v6 unavailable: network_http_request family ipv6",
            "network_http_request",
            json!({"url": "http://v6-nothing-sent-http.test/", "family": "ipv6"}),
            "no IPv6 address",
        ),
        (
            "v6 unavailable: network_http_request to an IPv6 literal",
            "network_http_request",
            json!({"url": format!("http://[{gw6}]:8080/")}),
            "is an IPv6 address",
        ),
        (
            "v6 unavailable: network_port_check family ipv6",
            "network_port_check",
            json!({"targets": [{"host": "v6-nothing-sent-ports.test", "port": 80}], "family": "ipv6"}),
            "no IPv6 address",
        ),
        (
            "v6 unavailable: network_throughput family ipv6",
            "network_throughput",
            json!({"url": "http://v6-nothing-sent-tp.test/", "family": "ipv6", "seconds": 1}),
            "no IPv6 address",
        ),
        (
            "v6 unavailable: network_traceroute family ipv6",
            "network_traceroute",
            json!({"host": "v6-nothing-sent-trace.test", "family": "ipv6"}),
            "no IPv6 address",
        ),
        (
            "v6 unavailable: network_ping family ipv6",
            "network_ping",
            json!({"host": "v6-nothing-sent-ping.test", "family": "ipv6"}),
            "no IPv6 address",
        ),
        (
            "v6 unavailable: network_ping family ipv6 to the default router",
            "network_ping",
            json!({"family": "ipv6"}),
            "no IPv6 address",
        ),
        (
            "v6 unavailable: network_check_internet family ipv6",
            "network_check_internet",
            json!({"url": "http://v6-nothing-sent-check.test/", "family": "ipv6"}),
            "no IPv6 address",
        ),
        (
            "v6 unavailable: network_check_captive family ipv6",
            "network_check_captive",
            json!({"url": "http://v6-nothing-sent-captive.test/", "family": "ipv6"}),
            "no IPv6 address",
        ),
        (
            "v6 unavailable: network_captive_login family ipv6",
            "network_captive_login",
            json!({"check_url": "http://v6-nothing-sent-login.test/", "family": "ipv6"}),
            "no IPv6 address",
        ),
        (
            "v6 unavailable: network_dns_lookup asking an IPv6 server",
            "network_dns_lookup",
            json!({"name": "v6-nothing-sent-dns.test", "server": gw6}),
            "no IPv6 address",
        ),
    ] {
        let code = r.tool_err(name, tool, args, needle).await;
        r.check_code(name, code, "family_unavailable");
    }
    // A control query that does go out, then the open AP's DNS log: the control is there, none
    // of the refused calls' names are.
    let d = r
        .ok(
            "v6: a control query on the open AP",
            "network_dns_lookup",
            json!({"name": "v6-control.test", "type": "A"}),
        )
        .await;
    let log_path = "/run/hwsim/logs/dnsmasq-open.log";
    let t = Instant::now();
    let mut log = String::new();
    while t.elapsed() < Duration::from_secs(5) {
        log = std::fs::read_to_string(log_path).unwrap_or_default();
        if log.contains("v6-control.test") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let leaked: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("v6-nothing-sent"))
        .collect();
    r.check(
        "v6 unavailable: nothing was sent (the open AP's DNS log has the control query, none of the refused calls')",
        d["outcome"] == "nxdomain" && log.contains("v6-control.test") && leaked.is_empty(),
        format!("control {}; {} log bytes; leaked {leaked:?}", d["outcome"], log.len()),
    );
    let h = r
        .ok(
            "v6: http on the open AP, family auto",
            "network_http_request",
            json!({"url": "http://ap.test/", "follow_redirects": false}),
        )
        .await;
    r.check(
        "v6: auto uses IPv4 on a network without IPv6",
        h["family"] == "ipv4" && h["status"].as_u64().is_some(),
        &h,
    );
    r.check_host("after the IPv6 refusals");
}
