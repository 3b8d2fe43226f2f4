//! A saved network through the REAL agent (its MCP server on a Unix socket, rmcp's client) to a
//! REAL `wpa_supplicant -D wired` on a veth pair in a fresh network namespace: the box's copy
//! of a profile becomes network blocks wpa_supplicant accepts and connects with, the secret
//! reads back only as `*`, and no log line, tool result or debug-log entry carries it.
//!
//! The agent runs in-process on a thread that entered the namespace; its wpa_supplicant is a
//! wrapper that swaps `-D nl80211` for `-D wired` (and `ap_scan=1` for 0). There is no DHCP
//! server on the wire, so an open profile ends "associated … but DHCP gave no address" — that
//! is wpa_supplicant's CTRL-EVENT-CONNECTED for the profile's network. The lease itself is
//! checked on real radios by tests/vm/fullsys-networks-guest.sh.
//!
//! Needs root, iproute2 and wpa_supplicant; without them this FAILS, it never skips.

use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{Value, json};
use wifi_isolate::agent::iface::WirelessIface;
use wifi_isolate::agent::tools::profile_spec;
use wifi_isolate::agent::{Agent, AgentOptions};
use wifi_isolate::networks::Profile;
use wifi_isolate::wpa::{CtrlClient, NetworkFieldName};
use wifi_isolate_tests::logs::Captured;
use wifi_isolate_tests::netns::Netns;

const PSK: &str = "wired-office-passphrase";
const IFACE: &str = "wi0";

#[test]
fn a_saved_network_reaches_a_real_wpa_supplicant_and_its_secret_no_log() {
    wifi_isolate_tests::env::require_root("this test (netns, veth)");
    wifi_isolate_tests::env::require_tool("wpa_supplicant", "apt install wpasupplicant");
    let ns = Netns::with_veth("wi-net", IFACE, "wi1");
    let log = Captured::everything();
    let netns = ns.file();
    // setns only on a dedicated thread (DESIGN.md): the agent, its sockets and its
    // wpa_supplicant child all live in the namespace.
    std::thread::spawn(move || {
        nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(body())
    })
    .join()
    .expect("the test body");
    let text = log.text();
    assert!(
        text.contains("tool=wifi_connect"),
        "capture is live:\n{text}"
    );
    assert!(!text.contains(PSK), "the passphrase is in the log:\n{text}");
}

async fn body() {
    let tmp = tempfile::tempdir().unwrap();
    let wrapper = tmp.path().join("wpa_supplicant-wired");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\n\
         prev=\n\
         for a do\n\
           shift\n\
           [ \"$a\" = nl80211 ] && a=wired\n\
           if [ \"$prev\" = -c ]; then sed 's/^ap_scan=1$/ap_scan=0/' \"$a\" > \"$a.wired\"; a=\"$a.wired\"; fi\n\
           set -- \"$@\" \"$a\"\n\
           prev=$a\n\
         done\n\
         exec wpa_supplicant \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let networks = tmp.path().join("networks");
    std::fs::create_dir(&networks).unwrap();
    std::fs::write(
        networks.join("wired.toml"),
        "ssid = \"wired\"\nsecurity = \"open\"\n",
    )
    .unwrap();
    let office = format!(
        "ssid = \"Office\"\nsecurity = \"wpa2-psk\"\npsk = \"{PSK}\"\nhidden = true\n\
         bssid = \"02:00:00:00:01:00\"\n"
    );
    std::fs::write(networks.join("office.toml"), &office).unwrap();
    let runtime = tmp.path().join("rt");
    let opts = AgentOptions {
        interface: Some(IFACE.into()),
        wait_interface: Duration::from_secs(1),
        runtime_dir: runtime.clone(),
        resolv_conf: tmp.path().join("resolv.conf"),
        wpa_supplicant: wrapper,
        udhcpc: vec!["/bin/true".into()],
        country: None,
        check_url: "http://127.0.0.1:9/generate_204".into(),
        certs_dir: tmp.path().join("certs"),
        upload_dir: runtime.join("certs"),
        networks_dir: networks,
        inline_secrets: false,
        wired: false,
    };
    let index = nix::net::if_::if_nametoindex(IFACE).expect("wi0 in this netns");
    let wi = WirelessIface {
        name: IFACE.into(),
        index,
        wiphy: 0,
    };
    let agent = Agent::start_on(opts, wi).await.expect("agent on wi0");
    agent
        .client()
        .await
        .expect("wpa_supplicant -D wired answers");

    // The exact lines: the profile's network block, field by field, into the real
    // wpa_supplicant; each accepted, the secret write-only.
    let p = Profile::parse(&office, "office").unwrap();
    let spec = profile_spec(None, agent.certs(), &p).unwrap();
    let client_dir = tmp.path().join("client");
    std::fs::create_dir(&client_dir).unwrap();
    let mine = CtrlClient::connect(&runtime.join("wpa_supplicant"), IFACE, &client_dir)
        .await
        .unwrap();
    let id = mine.add_network().await.unwrap();
    for f in &spec.fields {
        mine.set_network(id, f)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    for (field, want) in [
        (NetworkFieldName::Ssid, "\"Office\""),
        (NetworkFieldName::KeyMgmt, "WPA-PSK"),
        (NetworkFieldName::Psk, "*"),
        (NetworkFieldName::ScanSsid, "1"),
        (NetworkFieldName::Bssid, "02:00:00:00:01:00"),
    ] {
        assert_eq!(
            mine.get_network(id, field).await.unwrap(),
            want,
            "{field:?}"
        );
    }
    mine.remove_network(id).await.unwrap();

    let served = wifi_isolate_tests::agent::serve(agent.clone(), tmp.path()).await;
    let call = |tool: &'static str, args: Value| served.call(tool, args, Duration::from_secs(30));

    // The open profile: wpa_supplicant connects (wired: at once); no DHCP server here.
    let (ok, r) = call(
        "wifi_connect",
        json!({"network": "wired", "timeout_secs": 4}),
    )
    .await;
    assert!(!ok, "{r}");
    assert!(
        r.contains("associated with wired but DHCP gave no address"),
        "the profile's network connected: {r}"
    );
    assert!(r.contains(r#""wifi-isolate/error-code":"no_dhcp""#), "{r}");
    // The PSK profile: accepted by wpa_supplicant, then no 4-way handshake on a wire.
    let (ok, r) = call(
        "wifi_connect",
        json!({"network": "office", "timeout_secs": 3}),
    )
    .await;
    assert!(!ok && !r.contains(PSK), "{r}");
    assert!(r.contains("timed out"), "{r}");
    assert!(r.contains(r#""wifi-isolate/error-code":"timeout""#), "{r}");
    let (ok, r) = call("wifi_debug_logs", json!({"lines": 500})).await;
    assert!(ok && r.contains("connecting to Office"), "{r}");
    assert!(!r.contains(PSK), "{r}");
    let (ok, r) = call("wifi_saved_networks", json!({})).await;
    assert!(ok && r.contains("\"office\"") && r.contains("\"wired\"") && !r.contains(PSK));

    served.close().await;
    agent.shutdown().await;
}
