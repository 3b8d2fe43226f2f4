//! Secrets through the REAL MCP router and service (the agent's streamable HTTP server on a Unix
//! socket, rmcp's client over it — the production path the host's proxy forwards to), with the
//! log captured at the level production allows (ours at trace, the chatty libraries capped at
//! info — [`wifi_isolate::logging::capped`]): a password of the wrong JSON type, saved networks,
//! and `[security] inline_secrets = false`.
//!
//! The agent runs on `lo` of a network namespace of its own (this host has no radio; nothing
//! here reaches wpa_supplicant, which is a binary that does not exist): the agent owns its
//! interface's addresses and flushes them, and the host's `lo` must keep 127.0.0.1. Needs root
//! (the namespace, rtnetlink); without it the test FAILS, it never skips.

use std::time::Duration;

use serde_json::{Value, json};
use wifi_isolate::agent::iface::WirelessIface;
use wifi_isolate::agent::{Agent, AgentOptions};
use wifi_isolate_tests::logs::Captured;

const PSK: &str = "office-passphrase-42";

/// In a network namespace of its own (the agent flushes its interface's addresses).
#[test]
fn secrets_reach_no_log_line_no_reply_and_inline_ones_can_be_refused() {
    wifi_isolate_tests::agent::in_own_netns(body);
}

async fn body() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test needs root (the agent opens rtnetlink and sets its interface up)"
    );
    let log = Captured::everything();

    let tmp = tempfile::tempdir().unwrap();
    let networks = tmp.path().join("networks");
    std::fs::create_dir(&networks).unwrap();
    std::fs::write(
        networks.join("office.toml"),
        format!("ssid = \"Office\"\nsecurity = \"wpa2-psk\"\npsk = \"{PSK}\"\nhidden = true\n"),
    )
    .unwrap();
    std::fs::write(networks.join("broken.toml"), "ssid = 5\n").unwrap();
    let opts = AgentOptions {
        interface: Some("lo".into()),
        wait_interface: Duration::from_secs(1),
        runtime_dir: tmp.path().join("rt"),
        resolv_conf: tmp.path().join("resolv.conf"),
        wpa_supplicant: "/nonexistent/wpa_supplicant".into(),
        udhcpc: vec!["/bin/false".into()],
        country: None,
        check_url: "http://127.0.0.1:9/generate_204".into(),
        certs_dir: tmp.path().join("certs"),
        upload_dir: tmp.path().join("rt/certs"),
        networks_dir: networks,
        inline_secrets: false,
        wired: false,
    };
    let lo = WirelessIface {
        name: "lo".into(),
        index: 1,
        wiphy: 0,
    };
    let agent = Agent::start_on(opts, lo).await.expect("agent on lo");
    let served = wifi_isolate_tests::agent::serve(agent.clone(), tmp.path()).await;
    let call = |tool: &'static str, args: Value| served.call(tool, args, Duration::from_secs(20));

    // 1. A numeric password: refused without its digits, in the reply and in every log line.
    for args in [
        json!({"ssid": "lab", "password": 12345678}),
        json!({"ssid": "lab", "psk": 12345678, "password": 12345678}),
        json!({"ssid": "lab", "method": "peap", "identity": "u", "password": 12345678}),
        json!({"ssid": "lab", "method": "tls", "identity": "u", "private_key_password": 12345678}),
    ] {
        let tool = if args.get("method").is_some() {
            "wifi_connect_eap"
        } else {
            "wifi_connect"
        };
        let (ok, reply) = call(tool, args.clone()).await;
        assert!(!ok, "{args}: {reply}");
        assert!(
            !reply.contains("12345678"),
            "{args}: the reply quotes it: {reply}"
        );
        assert!(reply.contains("must be a JSON string"), "{args}: {reply}");
    }

    // 2. Saved networks: names, SSIDs, security, hidden — no secret, not even its length.
    let (ok, listed) = call("wifi_saved_networks", json!({})).await;
    assert!(ok, "{listed}");
    assert!(listed.contains("\"name\":\"office\"") && listed.contains("\"ssid\":\"Office\""));
    assert!(listed.contains("\"security\":\"wpa2-psk\"") && listed.contains("\"hidden\":true"));
    assert!(
        listed.contains("broken"),
        "an unreadable profile is named: {listed}"
    );
    assert!(
        !listed.contains(PSK) && !listed.contains(&PSK.len().to_string()),
        "{listed}"
    );

    // 3. An unknown saved network names the host's command; network and ssid exclude each other.
    let (ok, e) = call("wifi_connect", json!({"network": "nope"})).await;
    assert!(!ok && e.contains("wifi-isolate network add nope"), "{e}");
    let (ok, e) = call("wifi_connect", json!({"network": "office", "ssid": "x"})).await;
    assert!(!ok && e.contains("give network alone"), "{e}");
    let (ok, e) = call("wifi_connect", json!({"network": "../etc/passwd"})).await;
    assert!(!ok && e.contains("invalid network name"), "{e}");

    // 4. inline_secrets = false: a password argument is a tool error naming the way out.
    let (ok, e) = call(
        "wifi_connect",
        json!({"ssid": "lab", "password": "correct horse"}),
    )
    .await;
    assert!(
        !ok && e.contains("does not accept secrets") && e.contains("network add"),
        "{e}"
    );
    let (ok, e) = call(
        "wifi_connect_eap",
        json!({"ssid": "c", "method": "peap", "identity": "u", "password": "pw-inline"}),
    )
    .await;
    assert!(!ok && e.contains("as tool arguments (password)"), "{e}");

    served.close().await;
    agent.shutdown().await;
    let text = log.text();
    assert!(
        text.contains("tool call done") && text.contains("tool=wifi_connect_eap"),
        "the capture sees the audit lines:\n{text}"
    );
    for secret in ["12345678", PSK, "correct horse", "pw-inline"] {
        assert!(!text.contains(secret), "{secret:?} is in the log:\n{text}");
    }
}
