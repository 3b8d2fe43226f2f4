//! Shared harness of the engine tests (`tests/host/engine_*.rs`): a stand-in agent, private engine
//! daemons (podman system service, dockerd) with their own storage, and the checks every engine
//! must pass. Real engines only; a missing tool FAILS the test and names the apt package.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::env::{repo, require_tool};
use wifi_isolate::host::engine::{BoxExit, BoxHandle, BoxSpec, Engine, EngineError, EngineKind};

/// A short instance name unique to this process and call (interface names have ≤ 15 chars).
pub fn unique_instance(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}x{n}", std::process::id() % 100_000)
}

/// The stand-in agent: reports what the box looks like into the runtime dir, then waits.
/// `IGNORE_TERM=1` makes it ignore SIGTERM; `EXIT_WITH=N` makes it exit with N at once.
pub const STAND_IN_AGENT: &str = r#"#!/bin/sh
# Stand-in for wifi-isolate-agent in the engine tests.
out=/run/wifi-isolate
[ -n "$EXIT_WITH" ] && exit "$EXIT_WITH"
echo "$*" > $out/args
grep '^Cap' /proc/self/status > $out/caps
(touch /wi-probe 2>/dev/null && rm -f /wi-probe && echo rw || echo ro) > $out/rootfs
(echo "nameserver 192.0.2.53" > /etc/resolv.conf && echo rw || echo ro) > $out/resolv 2>/dev/null
ls -A /run > $out/run-listing
ls -A /sys/class/net > $out/sys-class-net
cat /proc/self/mountinfo > $out/mountinfo
if [ "$IGNORE_TERM" = 1 ]; then trap '' TERM; else trap 'kill $s 2>/dev/null; echo term > $out/term; exit 0' TERM; fi
echo ready > $out/ready
while :; do sleep 3600 & s=$!; wait $s; done
"#;

/// Write the stand-in agent to a stable path (once per test binary) and return it.
pub fn stand_in_agent() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        // Not under /tmp or /run: the netns box has tmpfs of its own there.
        let mut dir = repo().join("target").join("engine-tests");
        if dir.starts_with("/tmp") || dir.starts_with("/run") {
            dir = PathBuf::from("/var/tmp/wifi-isolate-engine-tests");
        }
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("stand-in-agent.sh");
        if std::fs::read_to_string(&p).ok().as_deref() != Some(STAND_IN_AGENT) {
            // Other test binaries may run at the same time: write aside, rename into place.
            let tmp = dir.join(format!("stand-in-agent.{}.tmp", std::process::id()));
            std::fs::write(&tmp, STAND_IN_AGENT).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::rename(&tmp, &p).unwrap();
        }
        p
    })
    .clone()
}

/// A spec for the stand-in agent.
pub fn spec(instance: &str, image: &str, runtime_dir: &Path) -> BoxSpec {
    BoxSpec {
        instance: instance.to_string(),
        image: image.to_string(),
        runtime_dir: runtime_dir.to_path_buf(),
        agent_args: vec!["--listen".into(), "unix:/run/wifi-isolate/mcp.sock".into()],
        agent_path: stand_in_agent(),
        memory_bytes: 64 << 20,
        pids_limit: 64,
        env: vec![("WI_TEST".into(), "1".into())],
        certs_dir: None,
        box_uid: wifi_isolate::host::engine::DEFAULT_BOX_UID,
    }
}

/// Wait for `path` to exist (the stand-in agent writes `ready` last).
pub fn wait_file(path: &Path, within: Duration) -> String {
    let t = Instant::now();
    while t.elapsed() < within {
        if let Ok(s) = std::fs::read_to_string(path) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} did not appear within {within:?}", path.display());
}

/// `ip -o link` inside the box's netns (iproute2 by absolute path, never busybox's applet).
pub fn links_in(netns: &Path) -> String {
    require_tool("nsenter", "apt-get install util-linux");
    let ip = require_tool("ip", "apt-get install iproute2");
    let out = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .arg(ip)
        .args(["-o", "link"])
        .output()
        .expect("nsenter");
    assert!(
        out.status.success(),
        "nsenter: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The box checks every engine must pass on a freshly started stand-in agent.
pub fn assert_box_locked_down(h: &BoxHandle, runtime_dir: &Path, expect_kind: EngineKind) {
    assert_eq!(h.engine, expect_kind);
    assert!(h.pid > 0, "pid {}", h.pid);
    assert!(h.name.starts_with("wifi-isolate-"), "{}", h.name);
    wait_file(&runtime_dir.join("ready"), Duration::from_secs(10));

    // A netns of its own holding only lo, which is up.
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    let theirs = std::fs::read_link(format!("/proc/{}/ns/net", h.pid)).unwrap();
    assert_ne!(ours, theirs, "the box shares our netns");
    assert!(h.netns_path.exists(), "{}", h.netns_path.display());
    let links = links_in(&h.netns_path);
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap())
        .collect();
    assert_eq!(names, vec!["lo"], "links in the box:\n{links}");
    assert!(links.contains("<LOOPBACK,UP"), "lo is not up:\n{links}");
    let sysnet = std::fs::read_to_string(runtime_dir.join("sys-class-net")).unwrap();
    // Containers get a sysfs of their netns; the netns box gets no /sys at all.
    let want_sys: Vec<&str> = match expect_kind {
        EngineKind::Netns => vec![],
        _ => vec!["lo"],
    };
    assert_eq!(
        sysnet.split_whitespace().collect::<Vec<_>>(),
        want_sys,
        "/sys/class/net: {sysnet}"
    );

    // Exactly NET_ADMIN (12) + NET_RAW (13) + NET_BIND_SERVICE (10: the access point's DHCP
    // and DNS ports, in the box's own netns).
    let status = std::fs::read_to_string(format!("/proc/{}/status", h.pid)).unwrap();
    let capeff = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    assert_eq!(
        capeff.split_whitespace().nth(1),
        Some("0000000000003400"),
        "{capeff}"
    );
    let capbnd = status.lines().find(|l| l.starts_with("CapBnd:")).unwrap();
    assert_eq!(
        capbnd.split_whitespace().nth(1),
        Some("0000000000003400"),
        "{capbnd}"
    );
    let nnp = status
        .lines()
        .find(|l| l.starts_with("NoNewPrivs:"))
        .unwrap();
    assert!(nnp.ends_with('1'), "{nnp}");

    // Read-only root; writable resolv.conf backed by the runtime dir; the args came through.
    let rootfs = std::fs::read_to_string(runtime_dir.join("rootfs")).unwrap();
    assert_eq!(rootfs.trim(), "ro", "the box can write its root filesystem");
    let resolv = std::fs::read_to_string(runtime_dir.join("resolv")).unwrap();
    assert_eq!(resolv.trim(), "rw", "the box cannot write /etc/resolv.conf");
    let backing = std::fs::read_to_string(runtime_dir.join("resolv.conf")).unwrap();
    assert!(
        backing.contains("192.0.2.53"),
        "resolv.conf backing file: {backing}"
    );
    let args = std::fs::read_to_string(runtime_dir.join("args")).unwrap();
    assert_eq!(args.trim(), "--listen unix:/run/wifi-isolate/mcp.sock");

    // /run is a tmpfs of the box's own with the runtime dir in it.
    let mountinfo = std::fs::read_to_string(runtime_dir.join("mountinfo")).unwrap();
    assert!(
        mountinfo
            .lines()
            .any(|l| l.split(' ').nth(4) == Some("/run") && l.contains(" - tmpfs ")),
        "no tmpfs on /run:\n{mountinfo}"
    );
    assert!(
        mountinfo
            .lines()
            .any(|l| l.split(' ').nth(4) == Some("/run/wifi-isolate")),
        "runtime dir not mounted:\n{mountinfo}"
    );
    let run = std::fs::read_to_string(runtime_dir.join("run-listing")).unwrap();
    assert!(run.lines().any(|l| l == "wifi-isolate"), "/run: {run}");
    // Nothing of the host's /run shows through (except where a resolv.conf symlink points).
    let resolv_dir = std::fs::canonicalize("/etc/resolv.conf")
        .ok()
        .and_then(|p| {
            p.strip_prefix("/run")
                .ok()
                .and_then(|r| r.iter().next())
                .map(|c| c.to_string_lossy().into_owned())
        });
    let host: Vec<String> = std::fs::read_dir("/run")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for l in run.lines() {
        if l == "wifi-isolate" || Some(l) == resolv_dir.as_deref() {
            continue;
        }
        assert!(
            !host.iter().any(|h| h == l),
            "host's /run/{l} is visible in the box: {run}"
        );
    }
}

/// Time a start and print it (the report quotes these).
pub async fn timed_start<E: Engine>(engine: &E, spec: &BoxSpec) -> BoxHandle {
    let t = Instant::now();
    let h = engine
        .start(spec)
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    eprintln!(
        "TIMING {} start→pid: {} ms (pid {})",
        engine.kind(),
        t.elapsed().as_millis(),
        h.pid
    );
    h
}

/// Assert `wait()` resolves within `within` after `kill` ran.
pub async fn assert_wait_after<E: Engine>(
    engine: &E,
    h: &BoxHandle,
    within: Duration,
    kill: impl FnOnce(),
) -> BoxExit {
    let waiting = engine.wait(h);
    tokio::pin!(waiting);
    // Nothing yet: the box is running.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut waiting)
            .await
            .is_err(),
        "wait() resolved while the box was running"
    );
    kill();
    tokio::time::timeout(within, waiting)
        .await
        .expect("wait() did not resolve after the kill")
        .expect("wait() failed")
}

/// An unused socket path: a socket file nobody listens on.
pub fn dead_socket(dir: &Path) -> PathBuf {
    let p = dir.join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&p).unwrap());
    p
}

/// `e` is `Unavailable` for `kind`.
pub fn assert_unavailable(e: &EngineError, kind: EngineKind) {
    match e {
        EngineError::Unavailable { engine, hint, .. } => {
            assert_eq!(*engine, kind);
            assert!(hint.contains("systemctl start"), "{hint}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// A child process killed (by its PID, which we own) and reaped on drop.
pub struct Daemon {
    pub name: &'static str,
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    /// The engine's CLI with the options that point it at this daemon.
    pub cli: Vec<String>,
}

impl Daemon {
    pub fn cli(&self) -> Command {
        let mut c = Command::new(&self.cli[0]);
        c.args(&self.cli[1..]);
        if self.name == "podman" {
            c.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"));
        }
        c
    }

    /// Run the CLI, return stdout, panic with stderr on failure.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.cli().args(args).output().expect("engine CLI");
        assert!(
            out.status.success(),
            "{} {args:?}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Containers (any state) labelled for `instance`.
    pub fn containers_for(&self, instance: &str) -> Vec<String> {
        self.run(&[
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=io.wifi-isolate.instance={instance}"),
        ])
        .split_whitespace()
        .map(str::to_string)
        .collect()
    }

    /// Import the stand-in agent image with tests/host/image.sh.
    pub fn import_image(&self, tag: &str) {
        let script = repo().join("tests/host/image.sh");
        let mut c = Command::new("bash");
        c.arg(&script)
            .arg(self.name)
            .arg(tag)
            .arg(stand_in_agent())
            .env("ENGINE_CMD", self.cli.join(" "));
        if self.name == "podman" {
            c.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"));
        }
        let t = Instant::now();
        let out = c.output().expect("image.sh");
        assert!(
            out.status.success(),
            "image.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "TIMING {} image.sh: {} ms",
            self.name,
            t.elapsed().as_millis()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One daemon shared by the tests of a binary that run at the same time; the last user's drop
/// stops it (a static would never be dropped and would leak the daemon).
pub fn shared(slot: &'static Mutex<Weak<Daemon>>, start: fn() -> Daemon) -> Arc<Daemon> {
    let mut g = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = g.upgrade() {
        return d;
    }
    let d = Arc::new(start());
    *g = Arc::downgrade(&d);
    d
}

/// Wait until `socket` answers `/_ping` (over a raw HTTP/1.0 request).
pub fn wait_ping(socket: &Path, child: &mut Child, what: &str, log: &Path) {
    use std::io::{Read, Write};
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "{what} exited ({st}):\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Ok(mut s) = std::os::unix::net::UnixStream::connect(socket) {
            let _ = s.write_all(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n");
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if buf.starts_with("HTTP/1.") && buf.contains(" 200 ") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not answer within 30 s:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A podman API service with private storage and a private `containers.conf` (runc, explicit
/// ulimits, no network by default), so the host's podman state is not touched.
pub fn start_podman() -> Daemon {
    crate::env::require_root("the engine tests");
    let podman = require_tool("podman", "apt-get install podman");
    require_tool("runc", "apt-get install runc");
    require_tool("newuidmap", "apt-get install uidmap");
    let dir = tempfile::Builder::new()
        .prefix("wi-podman-")
        .tempdir_in("/tmp")
        .unwrap();
    // The image store is shared by the runs (a cache), the API service is per daemon.
    let store = repo().join("target").join("engine-tests").join("podman");
    std::fs::create_dir_all(&store).unwrap();
    let conf = dir.path().join("containers.conf");
    std::fs::write(
        &conf,
        "[containers]\n\
         default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
         netns = \"none\"\n\
         log_driver = \"k8s-file\"\n\
         [engine]\n\
         runtime = \"runc\"\n\
         cgroup_manager = \"cgroupfs\"\n\
         events_logger = \"file\"\n",
    )
    .unwrap();
    let cli: Vec<String> = vec![
        podman.display().to_string(),
        "--root".into(),
        store.join("root").display().to_string(),
        // podman refuses a runroot longer than 50 characters: a short, fixed one.
        "--runroot".into(),
        "/tmp/wifi-isolate-podman-test/runroot".into(),
        "--tmpdir".into(),
        "/tmp/wifi-isolate-podman-test/tmp".into(),
    ];
    let socket = dir.path().join("podman.sock");
    let log = dir.path().join("service.log");
    let mut child = Command::new(&cli[0])
        .args(&cli[1..])
        .args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", socket.display()))
        .env("CONTAINERS_CONF", &conf)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("podman system service");
    wait_ping(&socket, &mut child, "podman system service", &log);
    Daemon {
        name: "podman",
        child,
        dir,
        socket,
        cli,
    }
}

/// A dockerd of its own: private data-root and exec-root, no iptables, no bridge.
pub fn start_docker() -> Daemon {
    crate::env::require_root("the engine tests");
    let dockerd = require_tool("dockerd", "apt-get install docker.io");
    require_tool(
        "containerd",
        "apt-get install containerd (a dependency of docker.io)",
    );
    require_tool("runc", "apt-get install runc");
    // Debian's client (docker.io); another `docker` earlier in PATH may be a different version.
    let client = ["/usr/bin/docker"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| require_tool("docker", "apt-get install docker.io"));
    let dir = tempfile::Builder::new()
        .prefix("wi-dk-")
        .tempdir_in("/tmp")
        .unwrap();
    let d = dir.path();
    let socket = d.join("docker.sock");
    let log = d.join("dockerd.log");
    let ns = format!("wi-test-{}", d.file_name().unwrap().to_string_lossy());
    let mut child = Command::new(dockerd)
        .arg("--data-root")
        .arg(d.join("data"))
        .arg("--exec-root")
        .arg(d.join("exec"))
        .arg("--pidfile")
        .arg(d.join("docker.pid"))
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
        .args(["--containerd-namespace", &ns])
        .args(["--containerd-plugins-namespace", &format!("{ns}-plugins")])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("dockerd");
    wait_ping(&socket, &mut child, "dockerd", &log);
    let cli = vec![
        client.display().to_string(),
        "-H".into(),
        format!("unix://{}", socket.display()),
    ];
    Daemon {
        name: "docker",
        child,
        dir,
        socket,
        cli,
    }
}

/// Runtime dir for one box (a temp dir, removed on drop).
pub fn runtime_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("wi-rt-")
        .tempdir_in("/tmp")
        .unwrap()
}

/// The stand-in agent's image tag in the private engines.
pub const TEST_IMAGE: &str = "localhost/wifi-isolate-test-agent:engine";

/// A private podman service with the stand-in image imported.
pub fn podman_with_image() -> Daemon {
    let d = start_podman();
    d.import_image(TEST_IMAGE);
    d
}

/// A private dockerd with the stand-in image imported.
pub fn docker_with_image() -> Daemon {
    let d = start_docker();
    d.import_image(TEST_IMAGE);
    d
}

/// The scenarios every Engine-API engine (podman, docker) must pass.
pub mod api {
    use super::*;
    use wifi_isolate::host::engine::ApiEngine;

    /// Connect to the private daemon.
    pub async fn connect(d: &Daemon, kind: EngineKind) -> ApiEngine {
        ApiEngine::connect(kind, &d.socket)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"))
    }

    /// Nothing labelled for `instance` exists any more.
    pub fn assert_nothing_left(d: &Daemon, instance: &str) {
        let left = d.containers_for(instance);
        assert!(
            left.is_empty(),
            "containers left behind for {instance}: {left:?}"
        );
    }

    /// Start → locked down; labels; find_existing; stop_remove (graceful, idempotent).
    pub async fn box_is_locked_down(d: &Daemon, kind: EngineKind) {
        let engine = connect(d, kind).await;
        let rt = runtime_dir();
        let s = spec(
            &unique_instance(&kind.to_string()[..1]),
            TEST_IMAGE,
            rt.path(),
        );
        let h = timed_start(&engine, &s).await;
        let guard = Cleanup::new(d, &h.id);
        assert_box_locked_down(&h, rt.path(), kind);
        assert_eq!(h.name, format!("wifi-isolate-{}", s.instance));
        match kind {
            // Podman 4.3 reports an empty SandboxKey for NetworkMode=none.
            EngineKind::Podman => assert_eq!(
                h.netns_path,
                PathBuf::from(format!("/proc/{}/ns/net", h.pid))
            ),
            _ => assert!(h.netns_path.exists(), "{}", h.netns_path.display()),
        }

        // What the engine recorded.
        let fmt = "{{json .Config.Labels}}|{{.HostConfig.NetworkMode}}|{{.HostConfig.ReadonlyRootfs}}|{{json .HostConfig.SecurityOpt}}|{{.HostConfig.Memory}}|{{json .HostConfig.CapAdd}}";
        let info = d.run(&["inspect", "--format", fmt, &h.id]);
        let labels = format!("\"io.wifi-isolate.instance\":\"{}\"", s.instance);
        assert!(info.contains(&labels), "{info}");
        assert!(
            info.contains("\"io.wifi-isolate.managed\":\"true\""),
            "{info}"
        );
        assert!(info.contains("|none|true|"), "{info}");
        assert!(info.contains("no-new-privileges"), "{info}");
        assert!(
            info.contains("seccomp="),
            "no seccomp profile of ours: {info}"
        );
        assert!(!info.contains("unconfined"), "{info}");
        // Our profile is the one in force: unshare(CLONE_NEWUSER) is refused.
        let status = std::fs::read_to_string(format!("/proc/{}/status", h.pid)).unwrap();
        assert!(
            status.contains("Seccomp:\t2"),
            "no seccomp filter:\n{status}"
        );
        let unshare = d.run(&[
            "exec",
            &h.id,
            "sh",
            "-c",
            "unshare -U true 2>&1; echo rc=$?",
        ]);
        assert!(
            unshare.contains("Operation not permitted") && unshare.contains("rc=1"),
            "a user namespace in the box: {unshare}"
        );
        if kind == EngineKind::Podman {
            // The profile file podman read is gone again.
            assert!(!wifi_isolate::host::engine::api::seccomp_file(&s).exists());
        }
        assert!(info.contains(&format!("|{}|", 64u64 << 20)), "{info}");

        assert!(engine.is_running(&h).await);
        let found = engine.find_existing(&s.instance).await.unwrap();
        assert_eq!(found, vec![h.clone()]);
        assert!(
            engine
                .find_existing("nosuchiface0")
                .await
                .unwrap()
                .is_empty()
        );

        let t = Instant::now();
        engine.stop_remove(&h).await.unwrap();
        eprintln!("TIMING {kind} stop_remove: {} ms", t.elapsed().as_millis());
        assert_eq!(
            std::fs::read_to_string(rt.path().join("term"))
                .unwrap_or_default()
                .trim(),
            "term",
            "no graceful SIGTERM"
        );
        assert!(!engine.is_running(&h).await);
        engine
            .stop_remove(&h)
            .await
            .expect("stop_remove is idempotent");
        assert!(engine.find_existing(&s.instance).await.unwrap().is_empty());
        assert_nothing_left(d, &s.instance);
        drop(guard);
    }

    /// wait() resolves when the container is killed behind our back.
    pub async fn wait_sees_kill(d: &Daemon, kind: EngineKind) {
        let engine = connect(d, kind).await;
        let rt = runtime_dir();
        let s = spec(
            &unique_instance(&kind.to_string()[..1]),
            TEST_IMAGE,
            rt.path(),
        );
        let h = engine.start(&s).await.unwrap();
        let guard = Cleanup::new(d, &h.id);
        wait_file(&rt.path().join("ready"), Duration::from_secs(10));
        let exit = assert_wait_after(&engine, &h, Duration::from_secs(15), || {
            d.run(&["kill", &h.name]);
        })
        .await;
        assert_eq!(exit, BoxExit::Exited { code: 137 }, "SIGKILL = 128 + 9");
        assert!(!engine.is_running(&h).await);
        // A stopped box is still found (for cleanup), with no pid.
        let found = engine.find_existing(&s.instance).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pid, 0);
        engine.stop_remove(&h).await.unwrap();
        engine.stop_remove(&h).await.unwrap();
        // wait() on a removed box: vanished.
        assert_eq!(engine.wait(&h).await.unwrap(), BoxExit::Vanished);
        assert_nothing_left(d, &s.instance);
        drop(guard);
    }

    /// A leftover box of ours for the instance (a crashed daemon's) is replaced by start().
    pub async fn leftover_is_replaced(d: &Daemon, kind: EngineKind) {
        let engine = connect(d, kind).await;
        let rt = runtime_dir();
        let s = spec(
            &unique_instance(&kind.to_string()[..1]),
            TEST_IMAGE,
            rt.path(),
        );
        let old = engine.start(&s).await.unwrap();
        let g1 = Cleanup::new(d, &old.id);
        let new = engine.start(&s).await.unwrap();
        let g2 = Cleanup::new(d, &new.id);
        assert_ne!(old.id, new.id);
        assert!(!engine.is_running(&old).await);
        assert_eq!(
            engine.find_existing(&s.instance).await.unwrap(),
            vec![new.clone()]
        );
        engine.stop_remove(&new).await.unwrap();
        assert_nothing_left(d, &s.instance);
        drop((g1, g2));
    }

    /// A box that dies at once is a Spawn error with its output, and is removed.
    pub async fn early_death_is_reported(d: &Daemon, kind: EngineKind) {
        let engine = connect(d, kind).await;
        let rt = runtime_dir();
        let mut s = spec(
            &unique_instance(&kind.to_string()[..1]),
            TEST_IMAGE,
            rt.path(),
        );
        s.env.push(("EXIT_WITH".into(), "7".into()));
        // The container may exit before or after the inspect; both must end clean.
        match engine.start(&s).await {
            Err(EngineError::Spawn(msg)) => assert!(msg.contains("status 7"), "{msg}"),
            Ok(h) => {
                let _g = Cleanup::new(d, &h.id);
                let exit = tokio::time::timeout(Duration::from_secs(10), engine.wait(&h))
                    .await
                    .unwrap();
                assert_eq!(exit.unwrap(), BoxExit::Exited { code: 7 });
                engine.stop_remove(&h).await.unwrap();
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
        assert_nothing_left(d, &s.instance);
    }

    /// A missing image is ImageMissing with a how-to, and nothing is created.
    pub async fn missing_image(d: &Daemon, kind: EngineKind) {
        let engine = connect(d, kind).await;
        let rt = runtime_dir();
        let s = spec(
            &unique_instance(&kind.to_string()[..1]),
            "localhost/wifi-isolate-nope:missing",
            rt.path(),
        );
        match engine.start(&s).await {
            Err(EngineError::ImageMissing { image, hint }) => {
                assert_eq!(image, s.image);
                assert!(
                    hint.contains("build -t localhost/wifi-isolate-nope:missing"),
                    "{hint}"
                );
                assert!(hint.contains("image.sh"), "{hint}");
            }
            other => panic!("expected ImageMissing, got {other:?}"),
        }
        assert_nothing_left(d, &s.instance);
    }

    /// A socket nobody serves, and no socket at all: Unavailable with a hint.
    pub async fn dead_socket_is_unavailable(kind: EngineKind) {
        let dir = runtime_dir();
        let dead = super::dead_socket(dir.path());
        let e = ApiEngine::connect(kind, &dead).await.unwrap_err();
        assert_unavailable(&e, kind);
        let e = ApiEngine::connect(kind, &dir.path().join("none.sock"))
            .await
            .unwrap_err();
        assert_unavailable(&e, kind);
        // select() with an explicit engine does not fall back; auto falls back to netns.
        let e = wifi_isolate::host::engine::select(&kind.to_string(), &dead, &dead)
            .await
            .unwrap_err();
        assert_unavailable(&e, kind);
        let any = wifi_isolate::host::engine::select("auto", &dead, &dead)
            .await
            .unwrap();
        assert_eq!(any.kind(), EngineKind::Netns);
    }

    /// `select("auto")` prefers a live socket.
    pub async fn auto_selects(d: &Daemon, kind: EngineKind) {
        let dir = runtime_dir();
        let dead = super::dead_socket(dir.path());
        let any = match kind {
            EngineKind::Podman => {
                wifi_isolate::host::engine::select("auto", &d.socket, &dead).await
            }
            _ => wifi_isolate::host::engine::select("auto", &dead, &d.socket).await,
        }
        .unwrap();
        assert_eq!(any.kind(), kind);
    }

    /// Force-removes a container by id on drop (a failing test leaves nothing behind).
    pub struct Cleanup<'a> {
        d: &'a Daemon,
        id: String,
    }

    impl<'a> Cleanup<'a> {
        pub fn new(d: &'a Daemon, id: &str) -> Self {
            Cleanup {
                d,
                id: id.to_string(),
            }
        }
    }

    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = self
                .d
                .cli()
                .args(["rm", "-f", &self.id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The hostile-agent probe (`tests/src/bin/hostile-probe.rs`, example `hostile-probe`) as the box's
/// entrypoint, and the host-side checks around it. The probe runs its attacks, writes
/// `hostile-report.json` into the runtime dir and execs the stand-in agent, which writes `ready`.
pub mod hostile {
    use super::*;
    use wifi_isolate::host::engine::ApiEngine;

    /// The probe image's tag in the private engines.
    pub const PROBE_IMAGE: &str = "localhost/wifi-isolate-test-hostile:engine";
    /// The host's root-only canary the probe goes after (the contract's first target).
    pub const CANARY: &str = "/root/wi-canary";
    /// Where the probe's `wi-hostile-<nonce>` files would land if a write escaped, and where the
    /// host looks (the contract's list and /tmp).
    pub const WRITE_DIRS: [&str; 7] = ["/", "/etc", "/usr", "/var/tmp", "/root", "/run", "/tmp"];

    /// The probe binary (a bin of this crate, built before the tests run).
    pub fn probe_binary() -> PathBuf {
        crate::env::bin("hostile-probe")
    }

    /// Import the probe image (stand-in agent + probe as the entrypoint).
    pub fn import(d: &Daemon) {
        let mut c = Command::new("bash");
        c.arg(repo().join("tests/host/image.sh"))
            .arg(d.name)
            .arg(PROBE_IMAGE)
            .arg(stand_in_agent())
            .arg(probe_binary())
            .env("ENGINE_CMD", d.cli.join(" "));
        if d.name == "podman" {
            c.env("CONTAINERS_CONF", d.dir.path().join("containers.conf"));
        }
        let out = c.output().expect("image.sh");
        assert!(
            out.status.success(),
            "image.sh (probe image) failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ip(args: &[&str]) -> String {
        let out = Command::new(require_tool("ip", "apt-get install iproute2"))
            .args(args)
            .output()
            .expect("ip");
        assert!(out.status.success(), "ip {args:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// This host netns's links (names), addresses and routes, IPv4 and IPv6, without the counters
    /// that change on their own.
    pub fn host_view() -> (Vec<String>, String) {
        let mut links: Vec<String> = ip(&["-o", "link"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap().to_string())
            .collect();
        links.sort();
        let mut net = String::new();
        for args in [
            &["-4", "-o", "addr"][..],
            &["-6", "-o", "addr"],
            &["-4", "route", "show", "table", "all"],
            &["-6", "route", "show", "table", "all"],
        ] {
            for l in ip(args).lines() {
                let mut words: Vec<&str> = Vec::new();
                let mut it = l.split_whitespace();
                while let Some(w) = it.next() {
                    if matches!(w, "valid_lft" | "preferred_lft" | "expires") {
                        it.next();
                    } else if w != "\\" {
                        words.push(w);
                    }
                }
                net.push_str(&words.join(" "));
                net.push('\n');
            }
        }
        (links, net)
    }

    /// The canary file's content (made once, root-only, if missing) and its atime, pushed into the
    /// past so that any read moves it (relatime updates an atime older than a day).
    pub fn canary_file() -> Vec<u8> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new();
        f.write(true).create_new(true).mode(0o600);
        if let Ok(mut file) = f.open(CANARY) {
            use std::io::Write;
            let secret = format!(
                "wi-canary {} {:?}\n",
                std::process::id(),
                std::time::SystemTime::now()
            );
            file.write_all(secret.as_bytes()).unwrap();
        }
        let st = Command::new("touch")
            .args(["-a", "-d", "3 days ago", CANARY])
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::read(CANARY).unwrap()
    }

    fn atime(path: &str) -> i64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).unwrap().atime()
    }

    /// One attempt of the report.
    #[derive(Debug, serde::Deserialize)]
    pub struct Attempt {
        pub name: String,
        #[serde(default)]
        pub class: String,
        pub outcome: String,
        #[serde(default)]
        pub errno: String,
        #[serde(default)]
        pub detail: String,
    }

    /// One positive control.
    #[derive(Debug, serde::Deserialize)]
    pub struct Positive {
        pub name: String,
        pub ok: bool,
        #[serde(default)]
        pub detail: String,
    }

    /// The probe's report (`"version": 1`).
    #[derive(Debug, serde::Deserialize)]
    pub struct Report {
        pub version: u32,
        pub nonce: String,
        /// False while the probe is still at it (it rewrites the report after every section).
        #[serde(default)]
        pub complete: bool,
        #[serde(default)]
        pub elapsed_ms: u64,
        #[serde(default)]
        pub contained: Vec<String>,
        #[serde(default)]
        pub uid_map: String,
        #[serde(default)]
        pub caps: String,
        #[serde(default)]
        pub pid_in_box: i64,
        pub attempts: Vec<Attempt>,
        pub positive: Vec<Positive>,
        pub escaped: Vec<String>,
        pub all_refused: bool,
        pub positive_ok: bool,
    }

    /// Wait for the probe's complete report; its text and parse.
    pub fn wait_report(path: &Path, within: Duration) -> (String, Report) {
        let t = Instant::now();
        let mut last = String::new();
        while t.elapsed() < within {
            if let Ok(text) = std::fs::read_to_string(path) {
                match serde_json::from_str::<Report>(&text) {
                    Ok(r) if r.complete => return (text, r),
                    Ok(_) => last = text,
                    Err(e) => last = format!("{e}: {text}"),
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "no complete report in {} within {within:?}; last: {last}",
            path.display()
        );
    }

    /// Start the probe in a box of `kind`, check the report and the host, stop the box.
    /// No radio here: the wiphy attempts are expected "skipped: no wiphy", nothing else skipped.
    pub async fn probe_holds(d: &Daemon, kind: EngineKind) {
        import(d);
        let engine: ApiEngine = api::connect(d, kind).await;
        let rt = runtime_dir();
        let s = spec(
            &unique_instance(&kind.to_string()[..1]),
            PROBE_IMAGE,
            rt.path(),
        );

        // The host before: a canary file, a canary process, links/addresses/routes.
        let canary = canary_file();
        let atime0 = atime(CANARY);
        let mut canary_proc = Command::new("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .spawn()
            .expect("sleep");
        let canary_pid = nix::unistd::Pid::from_raw(canary_proc.id() as i32);
        let (links0, net0) = host_view();

        let t = Instant::now();
        let h = timed_start(&engine, &s).await;
        let guard = api::Cleanup::new(d, &h.id);
        let report_path = rt.path().join("hostile-report.json");
        let (text, r) = wait_report(&report_path, Duration::from_secs(120));
        eprintln!(
            "TIMING {kind} probe: complete report {} ms after the start ({} ms in the probe)",
            t.elapsed().as_millis(),
            r.elapsed_ms
        );
        // The probe execs the agent (the stand-in), so the box goes on to work.
        wait_file(&rt.path().join("ready"), Duration::from_secs(30));
        assert!(engine.is_running(&h).await, "the box died after the probe");

        eprintln!(
            "PROBE {kind}: uid_map {:?} caps {} pid_in_box {}",
            r.uid_map.trim(),
            r.caps,
            r.pid_in_box
        );
        for a in &r.attempts {
            eprintln!(
                "PROBE {kind} | {:<8} | {:<8} | {:<18} | {} | {}",
                a.outcome, a.errno, a.class, a.name, a.detail
            );
        }
        for p in &r.positive {
            eprintln!(
                "PROBE {kind} | positive {} | {} | {}",
                p.ok, p.name, p.detail
            );
        }
        assert_eq!(r.version, 1);
        assert!(r.escaped.is_empty(), "escaped: {:?}", r.escaped);
        assert!(r.all_refused, "all_refused is false");
        // This host's kernel may have no cfg80211 at all (no nl80211 family to resolve, in the
        // box or out): that control says so and is not the box's fault.
        let host_nl80211 = Path::new("/sys/module/cfg80211").exists();
        assert!(!r.positive.is_empty(), "no positive controls");
        for p in &r.positive {
            let exempt = !host_nl80211 && p.name.contains("nl80211") && p.detail == "ENOENT";
            assert!(p.ok || exempt, "a positive control failed: {p:?}");
        }
        assert!(r.positive_ok || !host_nl80211, "positive_ok is false");
        assert!(r.attempts.len() >= 20, "only {} attempts", r.attempts.len());
        for a in &r.attempts {
            match a.outcome.as_str() {
                "refused" => assert!(!a.errno.is_empty(), "refused without an errno: {a:?}"),
                // Done, provably inside the box (own tmpfs, own netns, own UTS namespace).
                "contained" => {}
                // No radio on this host: only the wiphy move can have nothing to try.
                "skipped" => assert!(
                    a.class == "wiphy",
                    "skipped (only the wiphy attempts may be): {a:?}"
                ),
                _ => panic!("not refused: {a:?}"),
            }
        }
        let wiphy = r
            .attempts
            .iter()
            .filter(|a| a.class == "wiphy")
            .collect::<Vec<_>>();
        assert!(!wiphy.is_empty(), "no wiphy attempt in the report");
        assert!(
            wiphy.iter().all(|a| a.outcome == "skipped"),
            "a wiphy attempt without a radio: {wiphy:?}"
        );

        // The host after, checked on its own side.
        assert!(
            nix::sys::signal::kill(canary_pid, None).is_ok()
                && canary_proc.try_wait().unwrap().is_none(),
            "the canary process died"
        );
        assert!(
            d.child.id() > 0
                && nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.child.id() as i32), None)
                    .is_ok(),
            "the engine daemon died"
        );
        assert_eq!(std::fs::read(CANARY).unwrap(), canary, "canary changed");
        assert_eq!(atime(CANARY), atime0, "the canary file was read");
        let hex = hex::encode(&canary[..canary.len().min(16)]);
        assert!(!text.contains(&hex), "the canary's bytes are in the report");
        let (links1, net1) = host_view();
        assert!(
            !links1.iter().any(|l| l.starts_with("wihost")),
            "a probe link in the host: {links1:?}"
        );
        assert_eq!(links1, links0, "host links changed");
        assert_eq!(net1, net0, "host addresses/routes changed");
        assert!(!r.nonce.is_empty());
        for dir in WRITE_DIRS {
            let leaked = Command::new("find")
                .args([dir, "-maxdepth", "2", "-xdev", "-name"])
                .arg(format!("wi-hostile-{}*", r.nonce))
                .output()
                .unwrap();
            let leaked = String::from_utf8_lossy(&leaked.stdout).into_owned();
            let leaked: Vec<&str> = leaked
                .lines()
                .filter(|l| !Path::new(l).starts_with(rt.path()))
                .collect();
            assert!(leaked.is_empty(), "probe files on the host: {leaked:?}");
        }

        engine.stop_remove(&h).await.unwrap();
        api::assert_nothing_left(d, &s.instance);
        let _ = canary_proc.kill();
        let _ = canary_proc.wait();
        drop(guard);
    }
}
