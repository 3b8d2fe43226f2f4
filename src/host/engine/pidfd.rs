//! Processes by pidfd: never a recycled PID. The netns engine's reaper and stop, and the
//! release of a rootful box (ended at once, before its phy leaves it) go through here.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

/// Fields after `comm` in `/proc/PID/stat` (comm may hold spaces and parentheses).
pub(crate) fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Field 22 of `/proc/PID/stat`: the start time in clock ticks after boot.
pub(crate) fn proc_starttime(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

pub(crate) fn proc_state(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the returned fd is owned by us.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A pidfd for `pid` if that PID still is the process that started at `starttime`.
pub(crate) fn open_verified(pid: u32, starttime: u64) -> Option<OwnedFd> {
    let fd = pidfd_open(pid).ok()?;
    // Opened first, checked second: if the check passes, the fd is that process.
    (proc_starttime(pid) == Some(starttime) && proc_state(pid).is_some_and(|s| s != 'Z'))
        .then_some(fd)
}

pub(crate) fn pidfd_signal(fd: &OwnedFd, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall on a valid fd.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A pidfd polls readable once its process has exited (also for non-children).
pub(crate) async fn pidfd_exited(fd: &Arc<OwnedFd>) {
    // AsyncFd wants ownership: give it a duplicate.
    let Ok(dup) = fd.try_clone() else {
        return;
    };
    // SAFETY: `dup` is an open fd owned by the AsyncFd until it is dropped.
    let registered = unsafe { AsyncFd::register_with_interest(dup, tokio::io::Interest::READABLE) };
    let Ok(afd) = registered else {
        // Not pollable (should not happen): fall back to /proc polling.
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if pidfd_signal(fd, 0).is_err() {
                return;
            }
        }
    };
    let _ = afd.readable().await;
}

/// The inode of the network namespace behind `path` (`/proc/PID/ns/net`, `/proc/self/fd/N`).
fn netns_ino(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// End a box's processes now: SIGKILL to `pid` — the init of the box's PID namespace, which
/// takes every process of that namespace with it — if, and only if, `pid` still lives in the
/// network namespace `netns` (our handle on the box's) and that namespace is not our own. Waits
/// (bounded by `within`) until it has exited. `false`: not done (gone already, recycled, not the
/// box's, or it outlived the bound); the caller then keeps the slower, always-safe order.
pub(crate) async fn kill_box_init(pid: u32, netns: &std::path::Path, within: Duration) -> bool {
    if pid == std::process::id() || pid <= 1 {
        return false;
    }
    let Ok(fd) = pidfd_open(pid) else {
        return false;
    };
    // Opened first, checked second: if the check passes, the fd is a process in the box.
    let box_ns = netns_ino(netns);
    let ours = netns_ino(std::path::Path::new("/proc/thread-self/ns/net"));
    let theirs = netns_ino(std::path::Path::new(&format!("/proc/{pid}/ns/net")));
    if box_ns.is_none() || box_ns != theirs || box_ns == ours {
        return false;
    }
    if pidfd_signal(&fd, libc::SIGKILL).is_err() {
        return false;
    }
    let fd = Arc::new(fd);
    tokio::time::timeout(within, pidfd_exited(&fd))
        .await
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a process in the box's own netns is killed; ours, and one in our netns, never.
    #[tokio::test]
    async fn kills_the_box_init_and_nothing_else() {
        let me = std::process::id();
        let own = std::path::Path::new("/proc/self/ns/net");
        assert!(
            !kill_box_init(me, own, Duration::from_secs(1)).await,
            "never ourselves"
        );
        let mut host_sleep = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(
            !kill_box_init(host_sleep.id(), own, Duration::from_secs(1)).await,
            "not a box: in our own netns"
        );
        assert!(host_sleep.try_wait().unwrap().is_none(), "left alone");
        host_sleep.kill().unwrap();
        let _ = host_sleep.wait();
        // A box: a process in a netns of its own (needs root, as the daemon does).
        let mut boxed = std::process::Command::new("unshare")
            .args(["--net", "sleep", "30"])
            .spawn()
            .expect("unshare (util-linux)");
        let pid = boxed.id();
        let ns = format!("/proc/{pid}/ns/net");
        for _ in 0..100 {
            if netns_ino(std::path::Path::new(&ns)) != netns_ino(own) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let handle = std::fs::File::open(&ns).unwrap();
        let via = format!("/proc/self/fd/{}", handle.as_raw_fd());
        let other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(
            !kill_box_init(
                other.id(),
                std::path::Path::new(&via),
                Duration::from_secs(1)
            )
            .await,
            "a process outside that netns"
        );
        assert!(kill_box_init(pid, std::path::Path::new(&via), Duration::from_secs(5)).await);
        let status = boxed.wait().unwrap();
        assert!(!status.success(), "killed: {status:?}");
        let mut other = other;
        other.kill().unwrap();
        let _ = other.wait();
    }
}
