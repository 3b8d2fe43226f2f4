//! The wpa module against a REAL `wpa_supplicant -D wired` on a veth pair in a fresh network
//! namespace.
//!
//! Needs root, iproute2 and wpa_supplicant. Without them these tests FAIL with a message that
//! says what is missing — it never skips.
//! Every test makes its own namespace (`wi-test-<pid>-<n>`), so they run in parallel; a guard
//! kills wpa_supplicant and deletes the namespace (and the veth pair in it) on drop.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use wifi_isolate::validate::{
    Bssid, EapIdentity, EapPassword, FilePath, Hostname, Passphrase, SaePassword, Ssid,
};
use wifi_isolate::wpa::escape::decode_config_string;
use wifi_isolate::wpa::{
    CtrlClient, EapMethod, Event, EventMonitor, GlobalSetting, KeyMgmt, NetworkField,
    NetworkFieldName, NetworkSel, Phase2, WpaError, WpaState,
};

const IFACE: &str = "wi0";
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A netns with a veth pair and a wpa_supplicant on one end; torn down on drop.
struct Wired {
    netns: String,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Wired {
    /// Panics with a clear reason when the host cannot run the test (never skips).
    fn start() -> Option<Wired> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "this test needs root (network namespaces, veth, wpa_supplicant); run it as root"
        );
        for tool in ["ip", "wpa_supplicant"] {
            let found = Process::new(tool)
                .arg(if tool == "ip" { "-V" } else { "-v" })
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok();
            assert!(
                found,
                "`{tool}` is not installed or not in PATH; install iproute2 and wpasupplicant"
            );
        }

        let netns = format!(
            "wi-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::Builder::new().prefix("wi-wpa").tempdir().unwrap();
        // Build the guard first so a failure below still cleans up.
        let mut wired = Wired {
            netns,
            child: None,
            dir,
        };
        let ns = wired.netns.clone();
        run(&["ip", "netns", "add", &ns]);
        run(&[
            "ip", "-n", &ns, "link", "add", IFACE, "type", "veth", "peer", "name", "wi1",
        ]);
        run(&["ip", "-n", &ns, "link", "set", IFACE, "up"]);
        run(&["ip", "-n", &ns, "link", "set", "wi1", "up"]);

        std::fs::create_dir(wired.client_dir()).unwrap();
        std::fs::write(
            wired.conf(),
            format!(
                "ctrl_interface={}\nap_scan=0\nupdate_config=1\n",
                wired.ctrl_dir().display()
            ),
        )
        .unwrap();
        let child = Process::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "wpa_supplicant",
                "-D",
                "wired",
                "-i",
                IFACE,
                "-c",
            ])
            .arg(wired.conf())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn wpa_supplicant");
        wired.child = Some(child);

        let socket = wired.ctrl_dir().join(IFACE);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if let Some(status) = wired.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("wpa_supplicant exited early with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "wpa_supplicant did not create {} within 10 s",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(wired)
    }

    fn ctrl_dir(&self) -> PathBuf {
        self.dir.path().join("ctrl")
    }

    fn client_dir(&self) -> PathBuf {
        self.dir.path().join("client")
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("wpa.conf")
    }

    async fn client(&self) -> CtrlClient {
        CtrlClient::connect(&self.ctrl_dir(), IFACE, &self.client_dir())
            .await
            .expect("connect to wpa_supplicant")
    }

    async fn monitor(&self) -> EventMonitor {
        EventMonitor::attach(&self.ctrl_dir(), IFACE, &self.client_dir())
            .await
            .expect("ATTACH")
    }

    fn client_dir_entries(&self) -> usize {
        std::fs::read_dir(self.client_dir()).unwrap().count()
    }
}

impl Drop for Wired {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting the namespace also deletes the veth pair inside it.
        let _ = Process::new("ip")
            .args(["netns", "del", &self.netns])
            .stderr(Stdio::null())
            .status();
    }
}

fn run(args: &[&str]) {
    let status = Process::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(status.success(), "{args:?} failed with {status}");
}

/// SSIDs that would break a hand-quoted command.
fn hostile_ssids() -> Vec<Vec<u8>> {
    vec![
        b"plain".to_vec(),
        b"with space".to_vec(),
        b"q\"uo\"te\"".to_vec(),
        b"\"".to_vec(),
        b"new\nline".to_vec(),
        b"a\nSET_NETWORK 0 psk \"x\"".to_vec(),
        b"nul\0byte".to_vec(),
        b"back\\slash\\".to_vec(),
        b"tab\there".to_vec(),
        b" leading and trailing ".to_vec(),
        "caf\u{e9} \u{1f4f6}".as_bytes().to_vec(),
        (0u8..32).collect(),
        vec![0xff; 32],
        vec![b'"'; 32],
    ]
}

#[tokio::test]
async fn ping_and_hostile_ssids_round_trip() {
    let Some(wired) = Wired::start() else { return };
    let client = wired.client().await;
    client.ping().await.unwrap();
    let status = client.status().await.unwrap();
    assert_eq!(status.wpa_state, WpaState::Disconnected);
    assert!(status.address.is_some());

    let ssids = hostile_ssids();
    let mut ids = Vec::new();
    for raw in &ssids {
        let id = client.add_network().await.unwrap();
        let ssid = Ssid::from_bytes(raw).unwrap();
        client
            .set_network(id, &NetworkField::Ssid(ssid))
            .await
            .unwrap();
        let stored = client
            .get_network(id, NetworkFieldName::Ssid)
            .await
            .unwrap();
        assert_eq!(
            decode_config_string(&stored).as_deref(),
            Some(raw.as_slice()),
            "SSID {raw:?} stored as {stored:?}"
        );
        // Nothing else got set: psk was never written, key_mgmt is the default.
        let psk = client.get_network(id, NetworkFieldName::Psk).await;
        assert!(
            matches!(psk, Err(WpaError::Rejected { .. })),
            "psk of {raw:?}: {psk:?}"
        );
        let key_mgmt = client
            .get_network(id, NetworkFieldName::KeyMgmt)
            .await
            .unwrap();
        assert_eq!(key_mgmt, "WPA-PSK WPA-EAP");
        ids.push(id);
    }

    // Exactly one network per SSID, with the exact bytes, parsed from LIST_NETWORKS.
    let list = client.list_networks().await.unwrap();
    assert_eq!(list.len(), ssids.len(), "{list:#?}");
    for (network, raw) in list.iter().zip(&ssids) {
        assert_eq!(hex::decode(&network.ssid_hex).unwrap(), *raw);
        assert!(network.disabled);
        assert_eq!(network.bssid, None);
    }

    client.remove_network(NetworkSel::Id(ids[0])).await.unwrap();
    assert_eq!(client.list_networks().await.unwrap().len(), ssids.len() - 1);
    let err = client
        .remove_network(NetworkSel::Id(ids[0]))
        .await
        .unwrap_err();
    assert!(matches!(err, WpaError::Rejected { .. }), "{err}");
    client.remove_network(NetworkSel::All).await.unwrap();
    assert!(client.list_networks().await.unwrap().is_empty());
}

#[tokio::test]
async fn every_field_encoding_is_accepted_and_secrets_stored_verbatim() {
    let Some(wired) = Wired::start() else { return };
    let client = wired.client().await;
    let id = client.add_network().await.unwrap();
    let passphrase = "pa\"ss wo\"rd \"";
    let fields = vec![
        NetworkField::Ssid(Ssid::parse("lab").unwrap()),
        NetworkField::Psk(Passphrase::parse(passphrase).unwrap()),
        NetworkField::SaePassword(SaePassword::parse("s\"ae pass").unwrap()),
        NetworkField::KeyMgmt(vec![KeyMgmt::WpaPsk, KeyMgmt::Sae, KeyMgmt::WpaEap]),
        NetworkField::Bssid(Bssid::parse("02:00:00:00:01:00").unwrap()),
        NetworkField::ScanSsid(true),
        NetworkField::Ieee80211w(1),
        NetworkField::MacAddr(1),
        NetworkField::Eap(EapMethod::Peap),
        NetworkField::Phase2(Phase2::Mschapv2),
        NetworkField::Identity(EapIdentity::parse("user \"x\"@example.org").unwrap()),
        NetworkField::AnonymousIdentity(EapIdentity::parse_anonymous("anon@example.org").unwrap()),
        NetworkField::Password(EapPassword::parse("p\"w d").unwrap()),
        NetworkField::CaCert(FilePath::parse("/etc/ssl/my ca.pem").unwrap()),
        NetworkField::ClientCert(FilePath::parse("/etc/ssl/client.pem").unwrap()),
        NetworkField::PrivateKey(FilePath::parse("/etc/ssl/client.key").unwrap()),
        NetworkField::PrivateKeyPasswd(EapPassword::parse_key_password("k\"ey").unwrap()),
        NetworkField::DomainSuffixMatch(Hostname::parse("radius.example.org").unwrap()),
        NetworkField::Priority(7),
        NetworkField::Disabled(true),
    ];
    for field in fields {
        let name = field.name();
        client
            .set_network(id, &field)
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
    }
    let get = |field| client.get_network(id, field);
    assert_eq!(
        get(NetworkFieldName::Phase2).await.unwrap(),
        "\"auth=MSCHAPV2\""
    );
    assert_eq!(
        get(NetworkFieldName::Identity).await.unwrap(),
        "\"user \"x\"@example.org\""
    );
    assert_eq!(
        get(NetworkFieldName::CaCert).await.unwrap(),
        "\"/etc/ssl/my ca.pem\""
    );
    assert_eq!(
        get(NetworkFieldName::DomainSuffixMatch).await.unwrap(),
        "\"radius.example.org\""
    );
    assert_eq!(
        get(NetworkFieldName::KeyMgmt).await.unwrap(),
        "WPA-PSK WPA-EAP SAE"
    );
    assert_eq!(
        get(NetworkFieldName::Bssid).await.unwrap(),
        "02:00:00:00:01:00"
    );
    assert_eq!(get(NetworkFieldName::Priority).await.unwrap(), "7");
    assert_eq!(get(NetworkFieldName::Ieee80211w).await.unwrap(), "1");
    // Secrets are write-only over the control interface.
    assert_eq!(get(NetworkFieldName::Psk).await.unwrap(), "*");

    // The config file shows what wpa_supplicant really stored.
    client
        .request_ok(&wifi_isolate::wpa::Command::SaveConfig)
        .await
        .unwrap();
    let saved = std::fs::read_to_string(wired.conf()).unwrap();
    assert!(
        saved.contains(&format!("\tpsk=\"{passphrase}\"\n")),
        "passphrase with quotes not stored verbatim:\n{saved}"
    );
    assert!(saved.contains("\tpassword=\"p\"w d\"\n"), "{saved}");
    assert!(
        saved.contains("\tprivate_key_passwd=\"k\"ey\"\n"),
        "{saved}"
    );
    assert!(saved.contains("\tsae_password=\"s\"ae pass\"\n"), "{saved}");
    assert_eq!(saved.matches("network={").count(), 1, "{saved}");

    // A raw PSK is stored as hex, unquoted; clearing the BSSID lock works.
    let raw = "0123456789abcdef".repeat(4);
    client
        .set_network(id, &NetworkField::Psk(Passphrase::parse(&raw).unwrap()))
        .await
        .unwrap();
    client
        .set_network(id, &NetworkField::AnyBssid)
        .await
        .unwrap();
    assert!(matches!(
        get(NetworkFieldName::Bssid).await,
        Err(WpaError::Rejected { .. })
    ));
    client
        .request_ok(&wifi_isolate::wpa::Command::SaveConfig)
        .await
        .unwrap();
    let saved = std::fs::read_to_string(wired.conf()).unwrap();
    assert!(saved.contains(&format!("\tpsk={raw}\n")), "{saved}");

    // Whitelisted globals.
    for setting in [
        GlobalSetting::MacAddr(1),
        GlobalSetting::PreassocMacAddr(1),
        GlobalSetting::RandAddrLifetime(120),
    ] {
        client.set(setting).await.unwrap();
    }

    // Errors that wpa_supplicant reports.
    let err = client
        .set_network(999, &NetworkField::Priority(1))
        .await
        .unwrap_err();
    assert!(matches!(err, WpaError::Rejected { .. }), "{err}");
    for out_of_range in [NetworkField::Ieee80211w(3), NetworkField::MacAddr(9)] {
        let err = client.set_network(id, &out_of_range).await.unwrap_err();
        assert!(matches!(err, WpaError::Rejected { .. }), "{err}");
    }
    let err = client
        .set_network(id, &NetworkField::KeyMgmt(vec![]))
        .await
        .unwrap_err();
    assert!(matches!(err, WpaError::Rejected { .. }), "{err}");
    // A rejected secret is redacted in the error.
    let err = client
        .set_network(
            999,
            &NetworkField::Psk(Passphrase::parse("secret-passphrase").unwrap()),
        )
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("secret-passphrase"), "{err}");
    assert!(err.to_string().contains("<redacted>"), "{err}");
}

#[tokio::test]
async fn monitor_sees_connect_and_disconnect() {
    let Some(wired) = Wired::start() else { return };
    let client = wired.client().await;
    let mut monitor = wired.monitor().await;
    let monitor_path = monitor.client_path().to_path_buf();
    let mode = std::fs::metadata(&monitor_path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let id = client.add_network().await.unwrap();
    client
        .set_network(id, &NetworkField::Ssid(Ssid::parse("wired").unwrap()))
        .await
        .unwrap();
    client
        .set_network(id, &NetworkField::KeyMgmt(vec![KeyMgmt::None]))
        .await
        .unwrap();
    monitor.ping().await.unwrap();
    client.select_network(id).await.unwrap();

    let pae = Bssid::parse("01:80:c2:00:00:03").unwrap();
    let mut seen = Vec::new();
    let connected = wait_for(&mut monitor, &mut seen, |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    assert_eq!(
        connected,
        Event::Connected {
            bssid: Some(pae),
            network_id: Some(id)
        }
    );
    assert!(
        seen.contains(&Event::NetworkAdded { id: Some(id) }),
        "{seen:?}"
    );
    assert!(
        seen.contains(&Event::Associated { bssid: Some(pae) }),
        "{seen:?}"
    );

    let status = client.status().await.unwrap();
    assert_eq!(status.wpa_state, WpaState::Completed);
    assert_eq!(status.network_id, Some(id));
    assert_eq!(status.ssid.as_deref(), Some("wired"));
    assert_eq!(status.bssid, Some(pae));
    let list = client.list_networks().await.unwrap();
    assert!(list[0].current);
    // The wired driver has no signal and no scan results.
    assert_eq!(client.signal_poll().await.unwrap(), None);
    assert!(client.bss_all().await.unwrap().is_empty());

    client.disconnect().await.unwrap();
    let disconnected = wait_for(&mut monitor, &mut seen, |e| {
        matches!(e, Event::Disconnected { .. })
    })
    .await;
    assert_eq!(
        disconnected,
        Event::Disconnected {
            bssid: Some(pae),
            reason: Some(3),
            locally_generated: true
        }
    );
    client.reconnect().await.unwrap();
    wait_for(&mut monitor, &mut seen, |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    client.reassociate().await.unwrap();
    client.remove_network(NetworkSel::All).await.unwrap();
    wait_for(&mut monitor, &mut seen, |e| {
        matches!(e, Event::NetworkRemoved { .. })
    })
    .await;

    // Explicit DETACH answers OK; both socket files are gone after drop.
    monitor.detach().await.unwrap();
    assert!(!monitor_path.exists());
    let client_path = client.client_path().await;
    assert!(client_path.exists());
    drop(client);
    assert!(!client_path.exists());
    assert_eq!(wired.client_dir_entries(), 0);

    // Dropping an attached monitor removes its file too.
    let monitor = wired.monitor().await;
    assert_eq!(wired.client_dir_entries(), 1);
    drop(monitor);
    assert_eq!(wired.client_dir_entries(), 0);
}

async fn wait_for(
    monitor: &mut EventMonitor,
    seen: &mut Vec<Event>,
    want: impl Fn(&Event) -> bool,
) -> Event {
    let deadline = Duration::from_secs(10);
    let result = tokio::time::timeout(deadline, async {
        loop {
            let message = monitor.next_event().await.unwrap();
            seen.push(message.event.clone());
            if want(&message.event) {
                return message.event;
            }
        }
    })
    .await;
    result.unwrap_or_else(|_| panic!("event not seen within {deadline:?}; got {seen:?}"))
}

#[tokio::test]
async fn list_networks_longer_than_one_reply() {
    let Some(wired) = Wired::start() else { return };
    let client = wired.client().await;
    // 32 binary bytes print as 128 characters: 60 lines are about 8 KiB, two reply pages.
    let count = 60u8;
    for n in 0..count {
        let id = client.add_network().await.unwrap();
        let mut raw = vec![0x80u8; 32];
        raw[0] = n;
        client
            .set_network(id, &NetworkField::Ssid(Ssid::from_bytes(&raw).unwrap()))
            .await
            .unwrap();
    }
    // One reply does not hold them all ...
    let first = client
        .request(&wifi_isolate::wpa::Command::ListNetworks { last_id: None })
        .await
        .unwrap();
    let first = wifi_isolate::wpa::ConfiguredNetwork::parse_list(&first).unwrap();
    assert!(
        first.len() < usize::from(count),
        "{} in one reply",
        first.len()
    );
    // ... but list_networks continues with LAST_ID= until it has every one.
    let list = client.list_networks().await.unwrap();
    assert_eq!(list.len(), usize::from(count));
    for (n, network) in list.iter().enumerate() {
        assert_eq!(network.id as usize, n);
        assert_eq!(hex::decode(&network.ssid_hex).unwrap()[0] as usize, n);
    }
}

#[tokio::test]
async fn missing_socket_and_bad_names() {
    // No root needed: nothing listens here.
    let dir = tempfile::tempdir().unwrap();
    let err = CtrlClient::connect(dir.path(), "wlan0", dir.path())
        .await
        .unwrap_err();
    assert!(matches!(err, WpaError::NotRunning { .. }), "{err}");
    assert!(
        err.to_string().contains("is wpa_supplicant running"),
        "{err}"
    );
    // The client socket of the failed attempt is gone.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    for bad in ["", "../x", "a b", "wlan0\n", "sixteen-chars-xx"] {
        let err = CtrlClient::connect(dir.path(), bad, dir.path())
            .await
            .unwrap_err();
        assert!(matches!(err, WpaError::InvalidIfname(_)), "{bad:?}: {err}");
    }
    let long = dir.path().join("x".repeat(120));
    let err = CtrlClient::connect(dir.path(), "wlan0", &long)
        .await
        .unwrap_err();
    assert!(matches!(err, WpaError::ClientSocket { .. }), "{err}");
}

#[tokio::test]
async fn silent_server_times_out() {
    // A datagram socket that never answers stands in for a hung wpa_supplicant.
    let dir = tempfile::tempdir().unwrap();
    let _server = tokio::net::UnixDatagram::bind(dir.path().join("wlan0")).unwrap();
    let mut client = CtrlClient::connect(dir.path(), "wlan0", dir.path())
        .await
        .unwrap();
    client.set_timeout(Duration::from_millis(200));
    let err = client
        .set_network(
            0,
            &NetworkField::Psk(Passphrase::parse("secret-passphrase").unwrap()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, WpaError::Timeout { .. }), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
}

#[tokio::test]
async fn late_reply_is_not_taken_for_the_next_one() {
    // A fake server that answers the first request late and the second at once.
    let dir = tempfile::tempdir().unwrap();
    let server = tokio::net::UnixDatagram::bind(dir.path().join("wlan0")).unwrap();
    let mut client = CtrlClient::connect(dir.path(), "wlan0", dir.path())
        .await
        .unwrap();
    client.set_timeout(Duration::from_millis(200));
    let client_path: PathBuf = client.client_path().await;
    let server_task = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        let (n, _) = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"PING");
        tokio::time::sleep(Duration::from_millis(400)).await;
        server.send_to(b"PONG\n", &client_path).await.unwrap();
        let (n, _) = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ADD_NETWORK");
        server.send_to(b"5\n", &client_path).await.unwrap();
    });
    assert!(matches!(client.ping().await, Err(WpaError::Timeout { .. })));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(client.add_network().await.unwrap(), 5);
    server_task.await.unwrap();
    assert!(Path::new(&dir.path().join("wlan0")).exists());
}
