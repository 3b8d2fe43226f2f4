//! `wiphy-probe`: proves `host::wiphy` and `host::rfkill` against real mac80211_hwsim radios in
//! the hwsim VM (run by `tests/vm/run/wiphy.sh` in the run suite; needs root and a wireless kernel).
//!
//! `wiphy-probe IFACE OTHER_IFACE` — IFACE is moved around; OTHER_IFACE (a second station,
//! down, in the root netns) is used to occupy IFACE's name for the "name taken" case.
//! Prints one line per named check (`wifi_isolate_tests::tally`); exits 1 on any failure.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wifi_isolate::host::rfkill;
use wifi_isolate::host::wiphy::{Nl80211, WiphyError, Wiphys, current_netns, netns_fd_of_pid};

const IP: &str = "/usr/bin/ip";

use wifi_isolate_tests::tally::Tally;

/// `sleep 600` in a fresh, anonymous network namespace.
fn spawn_boxed_child() -> Child {
    let mut cmd = Command::new("sleep");
    cmd.arg("600").stdin(Stdio::null());
    // SAFETY: unshare(2) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
    cmd.spawn().expect("spawn sleep in a new netns")
}

/// Run `ip ARGS` inside the network namespace at `ns` (from a dedicated thread that `setns`es;
/// the forked `ip` inherits the thread's namespace).
fn ip_in(ns: &Path, args: &[&str]) -> (bool, String) {
    let ns = ns.to_owned();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    std::thread::spawn(move || {
        let file = fs::File::open(&ns).expect("open netns");
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        ip(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .join()
    .expect("ip thread")
}

fn ip(args: &[&str]) -> (bool, String) {
    let out = Command::new(IP).args(args).output().expect("run ip");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text.trim().to_owned())
}

fn link_is_up(iface: &str) -> Option<bool> {
    let flags = fs::read_to_string(format!("/sys/class/net/{iface}/flags")).ok()?;
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).ok()?;
    Some(flags & 1 == 1)
}

fn ms(since: Instant) -> u128 {
    since.elapsed().as_millis()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let iface = args.next().expect("usage: wiphy-probe IFACE OTHER_IFACE");
    let other = args.next().expect("usage: wiphy-probe IFACE OTHER_IFACE");
    let wiphys = Nl80211::new();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .without_time()
        .with_writer(std::io::stdout)
        .init();
    let mut t = Tally::default();
    let host_ns = current_netns().expect("own netns");

    // ---- resolve ----------------------------------------------------------------------------
    let start = Instant::now();
    let phy = wiphys.resolve(&iface).await.expect("resolve the station");
    let sysfs_index: Option<u32> =
        fs::read_to_string(format!("/sys/class/net/{iface}/phy80211/index"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
    t.check(
        "resolve iface",
        phy.ifaces.iter().any(|i| i.name == iface) && Some(phy.index) == sysfs_index,
        format!(
            "{iface} -> {} (index {}, sysfs {sysfs_index:?}) netns_ok={} driver={:?} device={:?} in {} ms",
            phy.name,
            phy.index,
            phy.netns_ok,
            phy.driver,
            phy.pci_path,
            ms(start)
        ),
    );
    t.check(
        "netns_ok",
        phy.netns_ok,
        "SET_WIPHY_NETNS listed among supported commands",
    );
    t.check(
        "driver",
        phy.driver.as_deref() == Some("mac80211_hwsim"),
        format!("{:?}", phy.driver),
    );
    let mac = phy
        .ifaces
        .iter()
        .find(|i| i.name == iface)
        .and_then(|i| i.mac);
    match wiphys.resolve(&phy.name).await {
        Ok(by_phy) => t.check(
            "resolve phy name",
            by_phy.index == phy.index,
            format!("{} -> index {}", phy.name, by_phy.index),
        ),
        Err(e) => t.check("resolve phy name", false, e),
    };
    match wiphys.resolve("lo").await {
        Err(e @ WiphyError::NotWireless { .. }) => t.check("resolve lo", true, e),
        other => t.check("resolve lo", false, format!("{other:?}")),
    };
    match wiphys.resolve("nosuch0").await {
        Err(e @ WiphyError::NoSuchDevice { .. }) => t.check("resolve nosuch0", true, e),
        other => t.check("resolve nosuch0", false, format!("{other:?}")),
    };

    // ---- rfkill -----------------------------------------------------------------------------
    let soft = fs::read_dir(format!("/sys/class/ieee80211/{}", phy.name))
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("rfkill"))
        })
        .map(|p| p.join("soft"));
    match soft {
        Some(soft) => {
            fs::write(&soft, "1").expect("soft-block");
            let blocked = rfkill::state(&phy.name);
            let was = rfkill::unblock_phy(&phy.name);
            let after = rfkill::state(&phy.name);
            t.check(
                "rfkill unblock",
                blocked == Some((true, false))
                    && matches!(was, Ok(true))
                    && after == Some((false, false)),
                format!("before {blocked:?}, unblock {was:?}, after {after:?}"),
            );
        }
        None => {
            t.check("rfkill unblock", false, "no rfkillN under the phy");
        }
    }

    // ---- move into a box -------------------------------------------------------------------
    ip(&["link", "set", &iface, "up"]);
    ip(&["addr", "add", "10.99.0.1/24", "dev", &iface]);
    let mut child = spawn_boxed_child();
    let box_path = PathBuf::from(format!("/proc/{}/ns/net", child.id()));
    let box_fd = netns_fd_of_pid(child.id()).expect("open child netns");

    let start = Instant::now();
    let moved = wiphys.move_to_netns(phy.index, box_fd.as_fd()).await;
    t.check(
        "move_to_netns (interface was up)",
        moved.is_ok(),
        format!("{moved:?} in {} ms", ms(start)),
    );
    let gone_from_host = fs::metadata(format!("/sys/class/net/{iface}")).is_err();
    t.check(
        "left the root netns",
        gone_from_host
            && matches!(
                wiphys.resolve(&iface).await,
                Err(WiphyError::NoSuchDevice { .. })
            )
            && !wiphys.exists(phy.index, None).await.unwrap_or(true),
        format!("/sys/class/net/{iface} gone: {gone_from_host}"),
    );
    t.check(
        "exists via box",
        wiphys
            .exists(phy.index, Some(&box_path))
            .await
            .unwrap_or(false),
        "found in the child's netns",
    );
    let start = Instant::now();
    match wiphys.locate(phy.index, &box_path).await {
        Ok(found) => t.check(
            "locate in box",
            found.iter().any(|i| i.name == iface && i.mac == mac),
            format!("{found:?} in {} ms", ms(start)),
        ),
        Err(e) => t.check("locate in box", false, e),
    };
    let (_, box_links) = ip_in(&box_path, &["-o", "link"]);
    t.check(
        "box holds only lo + the wifi",
        box_links.lines().count() == 2 && box_links.contains(&iface),
        box_links.replace('\n', " | "),
    );
    let moved_again = wiphys.move_to_netns(phy.index, box_fd.as_fd()).await;
    t.check(
        "move of a phy not in the caller's netns",
        matches!(moved_again, Err(WiphyError::PhyGone { .. })),
        format!("{moved_again:?}"),
    );

    // In the box: rename it and bring it up with an address, as an agent would.
    let (ok1, e1) = ip_in(&box_path, &["link", "set", &iface, "name", "boxwifi"]);
    let (ok2, e2) = ip_in(&box_path, &["link", "set", "boxwifi", "up"]);
    let (ok3, e3) = ip_in(
        &box_path,
        &["addr", "add", "10.98.0.2/24", "dev", "boxwifi"],
    );
    t.check(
        "box renames + ups it",
        ok1 && ok2 && ok3,
        format!("{e1} {e2} {e3}"),
    );

    // ---- move back (box still alive) --------------------------------------------------------
    let start = Instant::now();
    let back = wiphys
        .move_back(phy.index, &box_path, host_ns.as_fd(), Some(&iface), None)
        .await;
    let elapsed = ms(start);
    t.check(
        "move_back with restore_name",
        back.as_deref().ok() == Some(iface.as_str()),
        format!("{back:?} in {elapsed} ms"),
    );
    t.check(
        "move_back within 500 ms",
        elapsed < 500,
        format!("{elapsed} ms"),
    );
    let alive = child.try_wait().map(|s| s.is_none()).unwrap_or(false);
    t.check(
        "box process still alive",
        alive,
        "explicit move, not netns death",
    );
    let (_, addrs) = ip(&["-o", "addr", "show", "dev", &iface]);
    t.check(
        "back: down, no addresses, same MAC",
        link_is_up(&iface) == Some(false)
            && addrs.is_empty()
            && wiphys
                .resolve(&iface)
                .await
                .ok()
                .and_then(|w| w.ifaces.into_iter().find(|i| i.name == iface))
                .is_some_and(|i| i.mac == mac),
        format!("up={:?} addrs={addrs:?}", link_is_up(&iface)),
    );
    let (_, box_links) = ip_in(&box_path, &["-o", "link"]);
    t.check(
        "box left with lo only",
        box_links.lines().count() == 1,
        box_links.replace('\n', " | "),
    );
    match wiphys.locate(phy.index, &box_path).await {
        Err(WiphyError::PhyGone { .. }) => t.check("locate after return", true, "PhyGone"),
        other => t.check("locate after return", false, format!("{other:?}")),
    };

    // ---- name taken on return ---------------------------------------------------------------
    wiphys
        .move_to_netns(phy.index, box_fd.as_fd())
        .await
        .expect("second move");
    let (renamed, why) = ip(&["link", "set", &other, "name", &iface]);
    let back = wiphys
        .move_back(phy.index, &box_path, host_ns.as_fd(), Some(&iface), None)
        .await;
    let came_back_as = back.as_ref().ok().cloned().unwrap_or_default();
    t.check(
        "name taken: keeps another name, warns",
        renamed
            && !came_back_as.is_empty()
            && came_back_as != iface
            && fs::metadata(format!("/sys/class/net/{came_back_as}")).is_ok(),
        format!("{why} -> {back:?}"),
    );
    // Put the names back through a temporary name: OTHER (now called IFACE) -> tmp, the
    // returned phy -> IFACE, tmp -> OTHER. Then check which phy is behind each name.
    ip(&["link", "set", &iface, "name", "wpprobe-tmp"]);
    if !came_back_as.is_empty() {
        ip(&["link", "set", &came_back_as, "name", &iface]);
    }
    ip(&["link", "set", "wpprobe-tmp", "name", &other]);
    let behind = |name: String| {
        fs::read_to_string(format!("/sys/class/net/{name}/phy80211/name"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    t.check(
        "names restored for the next check",
        behind(iface.clone()) == phy.name
            && !behind(other.clone()).is_empty()
            && behind(other.clone()) != phy.name,
        format!(
            "{iface}={}, {other}={}",
            behind(iface.clone()),
            behind(other.clone())
        ),
    );

    // ---- box dies with the phy inside: it comes home on its own -----------------------------
    wiphys
        .move_to_netns(phy.index, box_fd.as_fd())
        .await
        .expect("third move");
    drop(box_fd);
    let _ = child.kill();
    let _ = child.wait();
    let start = Instant::now();
    let mut home = false;
    while start.elapsed() < Duration::from_secs(10) {
        if wiphys
            .exists(phy.index, Some(&box_path))
            .await
            .unwrap_or(false)
            && wiphys.exists(phy.index, None).await.unwrap_or(false)
        {
            home = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let name_now = wiphys
        .resolve(&phy.name)
        .await
        .ok()
        .and_then(|w| w.ifaces.first().map(|i| i.name.clone()));
    t.check(
        "box death returns the phy (exists with a dead box path)",
        home,
        format!("home after {} ms as {name_now:?}", ms(start)),
    );

    println!("{} passed, {} failed", t.passed, t.failed);
    std::process::exit(if t.failed == 0 { 0 } else { 1 });
}
