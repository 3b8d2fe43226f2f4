//! The built-in `netns` engine against the real kernel: fresh network + mount namespaces, the
//! mounts, the capabilities, stop/wait, and adoption through the state file. Needs root.

use std::time::{Duration, Instant};

use wifi_isolate::host::engine::{BoxExit, Engine, EngineKind, NetnsEngine};
use wifi_isolate_tests::engine::*;
use wifi_isolate_tests::env::require_root;

/// A netns engine with its own state dir (the daemon's default is /run/wifi-isolate/.netns).
fn engine() -> (NetnsEngine, tempfile::TempDir) {
    require_root("the engine tests");
    let state = tempfile::Builder::new()
        .prefix("wi-netns-state-")
        .tempdir_in("/tmp")
        .unwrap();
    (NetnsEngine::new(state.path()), state)
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
        .unwrap_or(false)
}

/// Live (non-zombie) processes in process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let f: Vec<&str> = s[s.rfind(')')? + 1..].split_whitespace().collect();
                    // zombies (killed, waiting for init to reap them) do not count
                    (f.first() != Some(&"Z")).then(|| f.get(2)?.parse::<u32>().ok())?
                })
                == Some(pgid)
        })
        .collect()
}

/// SIGKILL is delivered asynchronously: give the group a moment to die.
fn assert_group_gone(pgid: u32) {
    let t = Instant::now();
    while !group_members(pgid).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "processes left in the box's group: {:?}",
            group_members(pgid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_box_is_isolated_and_stops() {
    let (engine, _state) = engine();
    let rt = runtime_dir();
    let spec = spec(&unique_instance("nn"), "", rt.path());
    let h = timed_start(&engine, &spec).await;
    assert_box_locked_down(&h, rt.path(), EngineKind::Netns);
    assert_eq!(
        h.netns_path,
        std::path::PathBuf::from(format!("/proc/{}/ns/net", h.pid))
    );
    // The box's mount namespace is its own; ours is untouched.
    assert_ne!(
        std::fs::read_link("/proc/self/ns/mnt").unwrap(),
        std::fs::read_link(format!("/proc/{}/ns/mnt", h.pid)).unwrap()
    );
    let ours = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !ours.contains(" /run/wifi-isolate "),
        "a box mount leaked into the host"
    );
    assert!(engine.is_running(&h).await);

    let found = engine.find_existing(&spec.instance).await.unwrap();
    assert_eq!(found, vec![h.clone()], "find_existing by the state file");

    let t = Instant::now();
    engine.stop_remove(&h).await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "graceful stop took {:?}",
        t.elapsed()
    );
    assert_eq!(
        std::fs::read_to_string(rt.path().join("term"))
            .unwrap()
            .trim(),
        "term"
    );
    assert!(!alive(h.pid));
    assert!(!engine.is_running(&h).await);
    assert_eq!(engine.wait(&h).await.unwrap(), BoxExit::Exited { code: 0 });
    engine
        .stop_remove(&h)
        .await
        .expect("stop_remove is idempotent");
    assert!(
        engine
            .find_existing(&spec.instance)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !engine
            .state_dir()
            .join(format!("{}.json", spec.instance))
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_wait_reports_exit_code_and_signal() {
    let (engine, _state) = engine();

    let rt = runtime_dir();
    let mut s = spec(&unique_instance("nw"), "", rt.path());
    s.env.push(("EXIT_WITH".into(), "3".into()));
    let h = engine.start(&s).await.unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(5), engine.wait(&h))
        .await
        .unwrap();
    assert_eq!(exit.unwrap(), BoxExit::Exited { code: 3 });
    assert!(!engine.is_running(&h).await);
    assert!(engine.find_existing(&s.instance).await.unwrap().is_empty());
    engine.stop_remove(&h).await.unwrap();

    let rt = runtime_dir();
    let s = spec(&unique_instance("nk"), "", rt.path());
    let h = engine.start(&s).await.unwrap();
    wait_file(&rt.path().join("ready"), Duration::from_secs(5));
    let pid = h.pid;
    let exit = assert_wait_after(&engine, &h, Duration::from_secs(5), || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::SIGKILL,
        )
        .unwrap();
    })
    .await;
    assert_eq!(exit, BoxExit::Signaled { signal: 9 });
    engine.stop_remove(&h).await.unwrap();
    // The killed shell's `sleep` (same process group) was swept when the agent was reaped.
    assert_group_gone(h.pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_stop_escalates_to_sigkill() {
    let (engine, _state) = engine();
    let rt = runtime_dir();
    let mut s = spec(&unique_instance("ne"), "", rt.path());
    s.env.push(("IGNORE_TERM".into(), "1".into()));
    let h = engine.start(&s).await.unwrap();
    wait_file(&rt.path().join("ready"), Duration::from_secs(5));
    let t = Instant::now();
    engine.stop_remove(&h).await.unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(9),
        "{took:?}"
    );
    assert!(!alive(h.pid));
    assert_eq!(
        engine.wait(&h).await.unwrap(),
        BoxExit::Signaled { signal: 9 }
    );
    // The whole process group went: no `sleep` of the box is left.
    assert_group_gone(h.pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_restarted_daemon_adopts_and_kills() {
    let (first, state) = engine();
    let rt = runtime_dir();
    let s = spec(&unique_instance("na"), "", rt.path());
    let h = first.start(&s).await.unwrap();
    wait_file(&rt.path().join("ready"), Duration::from_secs(5));

    // A second engine on the same state dir: what a restarted daemon sees.
    let second = NetnsEngine::new(state.path());
    let found = second.find_existing(&s.instance).await.unwrap();
    assert_eq!(found.len(), 1);
    let adopted = &found[0];
    assert_eq!(adopted.pid, h.pid);
    assert_eq!(adopted.id, h.id);
    assert!(second.is_running(adopted).await);
    // A start for the same instance refuses while the old box lives.
    assert!(second.start(&s).await.is_err());

    let waiter = {
        let adopted = adopted.clone();
        let second = NetnsEngine::new(state.path());
        tokio::spawn(async move { second.wait(&adopted).await })
    };
    second.stop_remove(adopted).await.unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        exit.unwrap(),
        BoxExit::Vanished,
        "a non-child's status is unknown"
    );
    assert!(!alive(h.pid));
    assert!(second.find_existing(&s.instance).await.unwrap().is_empty());
    // The first engine's reaper saw its child go.
    assert_eq!(first.wait(&h).await.unwrap(), BoxExit::Exited { code: 0 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_stale_state_file_is_ignored() {
    let (engine, state) = engine();
    let instance = unique_instance("ns");
    // Our own PID with a wrong start time: a recycled PID must never be adopted or killed.
    let me = std::process::id();
    let path = state.path().join(format!("{instance}.json"));
    std::fs::write(
        &path,
        format!(r#"{{"instance":"{instance}","pid":{me},"starttime":1,"agent":"/x"}}"#),
    )
    .unwrap();
    assert!(engine.find_existing(&instance).await.unwrap().is_empty());
    assert!(!path.exists(), "stale state file not removed");
    let fake = wifi_isolate::host::engine::BoxHandle {
        engine: EngineKind::Netns,
        id: format!("{me}:1"),
        name: format!("wifi-isolate-{instance}"),
        pid: me,
        netns_path: format!("/proc/{me}/ns/net").into(),
        uid: 0,
    };
    assert!(!engine.is_running(&fake).await);
    engine.stop_remove(&fake).await.unwrap(); // must not signal us
    assert_eq!(engine.wait(&fake).await.unwrap(), BoxExit::Vanished);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_bad_agent_fails_cleanly() {
    let (engine, state) = engine();
    let rt = runtime_dir();
    let mut s = spec(&unique_instance("nb"), "", rt.path());
    s.agent_path = "/nonexistent/wifi-isolate-agent".into();
    let e = engine.start(&s).await.unwrap_err();
    assert!(
        e.to_string().contains("/nonexistent/wifi-isolate-agent"),
        "{e}"
    );
    assert!(engine.find_existing(&s.instance).await.unwrap().is_empty());
    assert!(
        std::fs::read_dir(state.path()).unwrap().next().is_none(),
        "state left behind"
    );
}

/// Under the unit, `/proc` is covered (ProtectKernelTunables= binds /proc/sys read-only,
/// ProtectKernelLogs= masks /proc/kmsg), and newer kernels then refuse bwrap's fresh /proc in its
/// user namespace ("Can't mount proc") unless the engine gives it a fully visible one: the
/// isolation test again, in a mount namespace whose /proc is covered that way.
#[test]
fn netns_box_starts_under_a_covered_proc_like_the_units() {
    require_root("the engine tests");
    let me = std::env::current_exe().unwrap();
    let script = format!(
        "mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && \
         mount --bind /dev/null /proc/kmsg && exec {} --exact netns_box_is_isolated_and_stops \
         --test-threads=1",
        me.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "slave", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux) runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "the box did not start under a covered /proc:\n{text}"
    );
}
