//! `hostile-probe`: a stand-in for a compromised agent. The engine starts it IN PLACE OF the
//! agent (`[agent] path = ".../hostile-probe"`), with the agent's arguments. It attacks the host
//! from inside the box — every attempt bounded in time — writes a JSON report to
//! `/run/wifi-isolate/hostile-report.json` (the per-box runtime dir the host sees; write + fsync +
//! rename, mode 0644, rewritten after every section with `"complete": false` until the end), prints
//! a one-line summary on stderr, then `execve`s the real agent with its own `argv[1..]` so the daemon
//! goes on to READY. `hostile-probe --probe-only` exits 0 after the report instead.
//!
//! The contract (shared by the hwsim suite `tests/src/bin/hwsim-hostile-host.rs` and the container
//! suites) fixes the targets, the report and the outcomes:
//! - `refused`: the kernel (or the sandbox) said no; `errno` names why;
//! - `contained`: the call succeeded but its effect provably stayed inside the box (a file on a
//!   tmpfs of the box's own, a link or a wiphy "moved" into the box's own netns, a hostname in the
//!   box's own UTS namespace, a `kill(-1)` that hit only the probe's own children);
//! - `escaped`: it worked on something outside the box — a read reports the first ≤ 64 bytes in
//!   hex (never more), so the host can match its canary;
//! - `skipped`: only the wiphy attacks, when no wiphy arrived in the box (or it already left).
//!
//! `all_refused` is true when nothing escaped and nothing was skipped except for want of a wiphy.
//! The probe never prints or stores more than 64 bytes of anything it read. It is single-threaded
//! (so it may fork): risky calls (`unshare`, `setns`, `clone`) run in a forked child.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const REPORT: &str = "/run/wifi-isolate/hostile-report.json";
const AGENTS: [&str; 4] = [
    "/usr/local/bin/wifi-isolate-agent",
    "/usr/bin/wifi-isolate-agent",
    "/usr/lib/wifi-isolate/wifi-isolate-agent",
    "/wifi-isolate-agent",
];
/// Root-only files of the host the probe tries to read (globs expanded by hand).
const READ_TARGETS: [&str; 6] = [
    "/root/wi-canary",
    "/etc/wifi-isolate/canary",
    "/etc/wifi-isolate/token",
    "/etc/shadow",
    "/etc/NetworkManager/system-connections/*",
    "/etc/ssh/ssh_host_*_key",
];
const WRITE_DIRS: [&str; 10] = [
    "/",
    "/etc",
    "/usr",
    "/var/tmp",
    "/root",
    "/run",
    "/proc/1/root",
    "/proc/1/root/run",
    "/proc/1/root/root",
    "/proc/1/root/tmp",
];
const HOST_SOCKETS: [(&str, i32); 5] = [
    ("/run/dbus/system_bus_socket", libc::SOCK_STREAM),
    ("/run/systemd/private", libc::SOCK_STREAM),
    ("/run/systemd/notify", libc::SOCK_DGRAM),
    ("/run/podman/podman.sock", libc::SOCK_STREAM),
    ("/run/docker.sock", libc::SOCK_STREAM),
];
const NS_TYPES: [&str; 7] = ["net", "mnt", "pid", "user", "uts", "ipc", "cgroup"];
/// Init namespaces' fixed inode numbers (`PROC_*_INIT_INO`).
const PROC_UTS_INIT_INO: u64 = 0xEFFF_FFFE;
const TMPFS_MAGIC: i64 = 0x0102_1994;
const MAX_PID: i32 = 32768;
/// Pid targets (beyond pid 1) for the link and wiphy moves.
const MAX_PID_TARGETS: usize = 16;
const WIPHY_WAIT: Duration = Duration::from_secs(20);

// ---- small helpers --------------------------------------------------------------------------

fn errno_name(e: i32) -> String {
    if e == libc::ETIMEDOUT {
        return "ETIMEDOUT".into();
    }
    format!("{:?}", nix::errno::Errno::from_raw(e))
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn io_errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

fn cstr(p: &str) -> CString {
    CString::new(p).expect("no NUL in paths")
}

/// First ≤ 64 bytes, hex: all the probe ever keeps of what it read.
fn hex64(b: &[u8]) -> String {
    hex::encode(&b[..b.len().min(64)])
}

/// Errno tally, e.g. "EACCES×12 ENOENT×2".
fn tally(errs: &[i32]) -> String {
    let mut m: BTreeMap<String, usize> = BTreeMap::new();
    for e in errs {
        *m.entry(errno_name(*e)).or_default() += 1;
    }
    m.iter()
        .map(|(k, v)| format!("{k}×{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The most common errno of a list (the attempt's `errno`).
fn main_errno(errs: &[i32]) -> String {
    let mut m: BTreeMap<i32, usize> = BTreeMap::new();
    for e in errs {
        *m.entry(*e).or_default() += 1;
    }
    m.iter()
        .max_by_key(|(_, n)| **n)
        .map(|(e, _)| errno_name(*e))
        .unwrap_or_default()
}

fn ns_inode(path: &str) -> Result<u64, i32> {
    fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|e| io_errno(&e))
}

fn dev_of(path: &str) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.dev())
}

fn is_tmpfs(path: &str) -> bool {
    let c = cstr(path);
    // SAFETY: statfs(2) into a zeroed struct.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut s) == 0 && s.f_type as i64 == TMPFS_MAGIC
    }
}

/// Is `/proc/1/root` the probe's own root (pid 1 of its /proc lives in the box)?
fn pid1_is_in_box() -> bool {
    match (fs::metadata("/proc/1/root"), fs::metadata("/")) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().chars().take(16).collect())
        .unwrap_or_else(|_| "?".into())
}

fn ppid(pid: i32) -> Option<i32> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn proc_state(pid: i32) -> Option<char> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().next()?.chars().next()
}

/// Every pid in this /proc.
fn visible_pids() -> Vec<i32> {
    let mut v: Vec<i32> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

/// Visible pids that are neither the probe nor one of its descendants.
fn foreign_pids(me: i32) -> Vec<i32> {
    let pids = visible_pids();
    let parent: BTreeMap<i32, i32> = pids.iter().filter_map(|p| Some((*p, ppid(*p)?))).collect();
    pids.into_iter()
        .filter(|p| {
            let mut cur = *p;
            for _ in 0..64 {
                if cur == me {
                    return false;
                }
                match parent.get(&cur) {
                    Some(pp) if *pp > 0 => cur = *pp,
                    _ => break,
                }
            }
            true
        })
        .collect()
}

/// 0 for a libc call that returned 0, else its errno.
fn errno_of(r: libc::c_int) -> i32 {
    if r == 0 { 0 } else { last_errno() }
}

/// The detail of an attempt that worked in a forked child.
const FORKED: &str = "succeeded (in a forked child)";

/// Run `f` in a forked child (the probe is single-threaded), bounded: its result (0 or an
/// errno), or `Err` on timeout (the child is then killed).
fn in_child(timeout: Duration, f: impl FnOnce() -> i32) -> Result<i32, String> {
    let mut p = [0 as RawFd; 2];
    // SAFETY: pipe2 into a 2-int array.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2: {}", errno_name(last_errno())));
    }
    // SAFETY: the probe is single-threaded; the child only runs `f` and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = last_errno();
        // SAFETY: closing our own pipe fds.
        unsafe {
            libc::close(p[0]);
            libc::close(p[1]);
        }
        return Err(format!("fork: {}", errno_name(e)));
    }
    if pid == 0 {
        let r = f();
        // SAFETY: write the 4-byte result and leave without running destructors.
        unsafe {
            libc::write(p[1], (&r as *const i32).cast(), 4);
            libc::_exit(0);
        }
    }
    // SAFETY: plain fd and process syscalls on fds/pids we own.
    unsafe {
        libc::close(p[1]);
        let mut pfd = libc::pollfd {
            fd: p[0],
            events: libc::POLLIN,
            revents: 0,
        };
        let n = libc::poll(&mut pfd, 1, timeout.as_millis() as i32);
        let mut r: i32 = -1;
        let got = n == 1 && libc::read(p[0], (&mut r as *mut i32).cast(), 4) == 4;
        libc::close(p[0]);
        if !got {
            libc::kill(pid, libc::SIGKILL);
        }
        let mut st = 0;
        libc::waitpid(pid, &mut st, 0);
        if got {
            Ok(r)
        } else {
            Err(format!("no answer within {} ms", timeout.as_millis()))
        }
    }
}

// ---- netlink --------------------------------------------------------------------------------

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWNSID: u16 = 88;
const RTM_GETNSID: u16 = 90;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const RTM_SETLINK: u16 = 19;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_TARGET_NETNSID: u16 = 46;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const NETNSA_NSID: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NL80211_CMD_GET_WIPHY: u8 = 1;
const NL80211_CMD_SET_WIPHY_NETNS: u8 = 49;
const NL80211_ATTR_WIPHY: u16 = 1;
const NL80211_ATTR_WIPHY_NAME: u16 = 2;
const NL80211_ATTR_PID: u16 = 82;
const NL80211_ATTR_SPLIT_WIPHY_DUMP: u16 = 174;
const NL80211_ATTR_NETNS_FD: u16 = 219;
const NL80211_CMD_NEW_INTERFACE: u8 = 7;
const NL80211_CMD_GET_INTERFACE: u8 = 5;
const NL80211_ATTR_IFINDEX: u16 = 3;
/// The address the probe gives the box's own WiFi interface (locally administered): the host
/// must get the interface back with the one it left with.
const HOSTILE_MAC: [u8; 6] = [0x02, 0x6b, 0x0d, 0x57, 0x11, 0xe5];
const NL80211_ATTR_IFNAME: u16 = 4;
const NL80211_ATTR_IFTYPE: u16 = 5;
/// The interfaces the probe makes on its wiphy and leaves there (`NL80211_IFTYPE_*`): they must
/// not come home with the phy (the host checks, `hwsim-hostile-host`).
const LEFT_IFACES: [(&str, u32); 3] = [
    ("wihostile0", 6),  // monitor
    ("wihostile1", 2),  // station
    ("wihostile2", 10), // P2P device (no netdev)
];

fn nla(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    buf.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

fn nla_str(buf: &mut Vec<u8>, kind: u16, s: &str) {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    nla(buf, kind, &b);
}

/// Attributes of a message after `skip` bytes of family header: (type without flags, payload).
fn attrs(m: &[u8], skip: usize) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut off = 16 + skip;
    while off + 4 <= m.len() {
        let len = u16::from_ne_bytes([m[off], m[off + 1]]) as usize;
        let kind = u16::from_ne_bytes([m[off + 2], m[off + 3]]) & 0x3fff;
        if len < 4 || off + len > m.len() {
            break;
        }
        out.push((kind, m[off + 4..off + len].to_vec()));
        off += (len + 3) & !3;
    }
    out
}

fn u32_of(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

struct Nl {
    fd: OwnedFd,
    seq: u32,
}

impl Nl {
    fn open(proto: i32) -> Result<Nl, i32> {
        // SAFETY: a fresh socket fd, owned below.
        let raw =
            unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
        if raw < 0 {
            return Err(last_errno());
        }
        // SAFETY: raw is a valid fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let tv = libc::timeval {
            tv_sec: 3,
            tv_usec: 0,
        };
        // SAFETY: setsockopt with a timeval of the right size.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
        }
        Ok(Nl { fd, seq: 1 })
    }

    /// Send one request; collect the replies until the ack / error / end of dump (≤ 5 s).
    fn request(&mut self, kind: u16, flags: u16, body: &[u8]) -> Result<Vec<Vec<u8>>, i32> {
        self.seq += 1;
        let seq = self.seq;
        let len = 16 + body.len();
        let mut m = Vec::with_capacity(len);
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&(flags | libc::NLM_F_REQUEST as u16).to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        // SAFETY: sendto(2) the kernel (zeroed sockaddr_nl) a valid buffer.
        let r = unsafe {
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as u16;
            libc::sendto(
                self.fd.as_raw_fd(),
                m.as_ptr().cast(),
                m.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if r < 0 {
            return Err(last_errno());
        }
        let dump = flags & libc::NLM_F_DUMP as u16 != 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            if Instant::now() > deadline {
                return Err(libc::ETIMEDOUT);
            }
            // SAFETY: recv(2) into a valid buffer.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = last_errno();
                if e == libc::EINTR {
                    continue;
                }
                return Err(if e == libc::EAGAIN {
                    libc::ETIMEDOUT
                } else {
                    e
                });
            }
            let b = &buf[..n as usize];
            let mut off = 0;
            while off + 16 <= b.len() {
                let mlen = u32::from_ne_bytes(b[off..off + 4].try_into().unwrap()) as usize;
                let mkind = u16::from_ne_bytes([b[off + 4], b[off + 5]]);
                let mseq = u32::from_ne_bytes(b[off + 8..off + 12].try_into().unwrap());
                if mlen < 16 || off + mlen > b.len() {
                    break;
                }
                let msg = &b[off..off + mlen];
                off += (mlen + 3) & !3;
                if mseq != seq {
                    continue;
                }
                match mkind {
                    NLMSG_ERROR => {
                        let e = i32::from_ne_bytes(msg[16..20].try_into().unwrap());
                        return if e == 0 { Ok(out) } else { Err(-e) };
                    }
                    NLMSG_DONE => {
                        let e = msg
                            .get(16..20)
                            .map(|x| i32::from_ne_bytes(x.try_into().unwrap()))
                            .unwrap_or(0);
                        return if e < 0 { Err(-e) } else { Ok(out) };
                    }
                    _ => {
                        out.push(msg.to_vec());
                        if !dump && flags & libc::NLM_F_ACK as u16 == 0 {
                            return Ok(out);
                        }
                    }
                }
            }
        }
    }
}

const IFINFOMSG: [u8; 16] = [0; 16];

enum Target {
    Pid(u32),
    Fd(RawFd),
    NsId(i32),
}

fn newlink_veth(nl: &mut Nl, name: &str, peer: &str, target: Option<&Target>) -> Result<(), i32> {
    let mut b = IFINFOMSG.to_vec();
    nla_str(&mut b, IFLA_IFNAME, name);
    match target {
        Some(Target::Pid(p)) => nla(&mut b, IFLA_NET_NS_PID, &p.to_ne_bytes()),
        Some(Target::Fd(fd)) => nla(&mut b, IFLA_NET_NS_FD, &(*fd as u32).to_ne_bytes()),
        Some(Target::NsId(id)) => nla(&mut b, IFLA_TARGET_NETNSID, &id.to_ne_bytes()),
        None => {}
    }
    let mut peer_b = IFINFOMSG.to_vec();
    nla_str(&mut peer_b, IFLA_IFNAME, peer);
    let mut data = Vec::new();
    nla(&mut data, VETH_INFO_PEER, &peer_b);
    let mut info = Vec::new();
    nla(&mut info, IFLA_INFO_KIND, b"veth");
    nla(&mut info, IFLA_INFO_DATA | NLA_F_NESTED, &data);
    nla(&mut b, IFLA_LINKINFO | NLA_F_NESTED, &info);
    let flags = libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL;
    nl.request(RTM_NEWLINK, flags as u16, &b).map(|_| ())
}

fn link_here(nl: &mut Nl, name: &str) -> bool {
    let mut b = IFINFOMSG.to_vec();
    nla_str(&mut b, IFLA_IFNAME, name);
    nl.request(RTM_GETLINK, libc::NLM_F_ACK as u16, &b)
        .is_ok_and(|v| !v.is_empty())
}

fn dellink(nl: &mut Nl, name: &str) -> Result<(), i32> {
    let mut b = IFINFOMSG.to_vec();
    nla_str(&mut b, IFLA_IFNAME, name);
    nl.request(RTM_DELLINK, libc::NLM_F_ACK as u16, &b)
        .map(|_| ())
}

fn nsid_dump(nl: &mut Nl) -> Result<Vec<i32>, i32> {
    let msgs = nl.request(RTM_GETNSID, libc::NLM_F_DUMP as u16, &[0, 0, 0, 0])?;
    Ok(msgs
        .iter()
        .filter(|m| u16::from_ne_bytes([m[4], m[5]]) == RTM_NEWNSID)
        .flat_map(|m| attrs(m, 4))
        .filter(|(k, _)| *k == NETNSA_NSID)
        .filter_map(|(_, v)| u32_of(&v).map(|x| x as i32))
        .collect())
}

fn genl_body(cmd: u8, attrs: &[u8]) -> Vec<u8> {
    let mut b = vec![cmd, 1, 0, 0];
    b.extend_from_slice(attrs);
    b
}

fn genl_family(nl: &mut Nl, name: &str) -> Result<u16, i32> {
    let mut a = Vec::new();
    nla_str(&mut a, CTRL_ATTR_FAMILY_NAME, name);
    let msgs = nl.request(
        GENL_ID_CTRL,
        libc::NLM_F_ACK as u16,
        &genl_body(CTRL_CMD_GETFAMILY, &a),
    )?;
    msgs.iter()
        .flat_map(|m| attrs(m, 4))
        .find(|(k, v)| *k == CTRL_ATTR_FAMILY_ID && v.len() >= 2)
        .map(|(_, v)| u16::from_ne_bytes([v[0], v[1]]))
        .ok_or(libc::ENOENT)
}

/// Wiphys in the probe's netns: index -> name.
fn wiphys(nl: &mut Nl, family: u16) -> Result<BTreeMap<u32, String>, i32> {
    let mut a = Vec::new();
    nla(&mut a, NL80211_ATTR_SPLIT_WIPHY_DUMP, &[]);
    let msgs = nl.request(
        family,
        libc::NLM_F_DUMP as u16,
        &genl_body(NL80211_CMD_GET_WIPHY, &a),
    )?;
    let mut out = BTreeMap::new();
    for m in &msgs {
        let at = attrs(m, 4);
        if let Some(idx) = at
            .iter()
            .find(|(k, _)| *k == NL80211_ATTR_WIPHY)
            .and_then(|(_, v)| u32_of(v))
        {
            let name = at
                .iter()
                .find(|(k, _)| *k == NL80211_ATTR_WIPHY_NAME)
                .map(|(_, v)| {
                    String::from_utf8_lossy(v)
                        .trim_end_matches('\0')
                        .to_string()
                })
                .unwrap_or_default();
            let e = out.entry(idx).or_insert_with(String::new);
            if e.is_empty() {
                *e = name;
            }
        }
    }
    Ok(out)
}

fn new_interface(nl: &mut Nl, family: u16, idx: u32, name: &str, iftype: u32) -> Result<(), i32> {
    let mut a = Vec::new();
    nla(&mut a, NL80211_ATTR_WIPHY, &idx.to_ne_bytes());
    nla_str(&mut a, NL80211_ATTR_IFNAME, name);
    nla(&mut a, NL80211_ATTR_IFTYPE, &iftype.to_ne_bytes());
    nl.request(
        family,
        libc::NLM_F_ACK as u16,
        &genl_body(NL80211_CMD_NEW_INTERFACE, &a),
    )
    .map(|_| ())
}

/// The network interfaces (index, name) of wiphy `idx` in the probe's netns.
fn phy_netdevs(nl: &mut Nl, family: u16, idx: u32) -> Result<Vec<(u32, String)>, i32> {
    let msgs = nl.request(
        family,
        libc::NLM_F_DUMP as u16,
        &genl_body(NL80211_CMD_GET_INTERFACE, &[]),
    )?;
    let mut out = Vec::new();
    for m in &msgs {
        let at = attrs(m, 4);
        let get = |k: u16| at.iter().find(|(a, _)| *a == k).map(|(_, v)| v.clone());
        if get(NL80211_ATTR_WIPHY).and_then(|v| u32_of(&v)) != Some(idx) {
            continue;
        }
        if let (Some(i), Some(n)) = (
            get(NL80211_ATTR_IFINDEX).and_then(|v| u32_of(&v)),
            get(NL80211_ATTR_IFNAME),
        ) {
            let name = String::from_utf8_lossy(&n)
                .trim_end_matches('\0')
                .to_string();
            out.push((i, name));
        }
    }
    Ok(out)
}

/// RTM_SETLINK: interface `index` (down) gets MAC address `mac`.
fn set_link_mac(nl: &mut Nl, index: u32, mac: [u8; 6]) -> Result<(), i32> {
    let mut b = IFINFOMSG.to_vec();
    b[4..8].copy_from_slice(&(index as i32).to_ne_bytes());
    nla(&mut b, IFLA_ADDRESS, &mac);
    nl.request(RTM_SETLINK, libc::NLM_F_ACK as u16, &b)
        .map(|_| ())
}

fn set_wiphy_netns(nl: &mut Nl, family: u16, idx: u32, target: &Target) -> Result<(), i32> {
    let mut a = Vec::new();
    nla(&mut a, NL80211_ATTR_WIPHY, &idx.to_ne_bytes());
    match target {
        Target::Pid(p) => nla(&mut a, NL80211_ATTR_PID, &p.to_ne_bytes()),
        Target::Fd(fd) => nla(&mut a, NL80211_ATTR_NETNS_FD, &(*fd as u32).to_ne_bytes()),
        Target::NsId(_) => return Err(libc::EINVAL),
    }
    nl.request(
        family,
        libc::NLM_F_ACK as u16,
        &genl_body(NL80211_CMD_SET_WIPHY_NETNS, &a),
    )
    .map(|_| ())
}

// ---- the probe ------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Refused,
    Contained,
    Escaped,
    Skipped,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Refused => "refused",
            Outcome::Contained => "contained",
            Outcome::Escaped => "escaped",
            Outcome::Skipped => "skipped",
        }
    }
}

struct Attempt {
    name: String,
    class: &'static str,
    outcome: Outcome,
    errno: String,
    detail: String,
}

struct Probe {
    nonce: String,
    me: i32,
    started: Instant,
    attempts: Vec<Attempt>,
    positive: Vec<(String, bool, String)>,
    own_ns: BTreeMap<&'static str, u64>,
    /// st_dev of filesystems that are the host's (or the image's): a write that lands on one of
    /// them is not contained.
    anchors: Vec<(String, u64)>,
    /// Foreign namespace fds that could be opened: (type, label, fd).
    ns_fds: Vec<(&'static str, String, OwnedFd)>,
    links: u32,
    /// Observations that are not attempts (what the probe saw).
    info: Vec<(String, String)>,
    complete: bool,
}

impl Probe {
    fn new() -> Probe {
        let mut seed = [0u8; 8];
        // SAFETY: getrandom into an 8-byte buffer.
        let n = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), 8, 0) };
        if n != 8 {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0) as u64;
            seed = (t ^ (std::process::id() as u64) << 32).to_ne_bytes();
        }
        let own_ns = NS_TYPES
            .iter()
            .filter_map(|t| Some((*t, ns_inode(&format!("/proc/self/ns/{t}")).ok()?)))
            .collect();
        let anchors = [
            "/usr",
            "/run/wifi-isolate",
            "/etc/wifi-isolate/certs",
            "/usr/bin",
        ]
        .iter()
        .filter_map(|p| Some((p.to_string(), dev_of(p)?)))
        .collect();
        Probe {
            nonce: hex::encode(seed),
            me: std::process::id() as i32,
            started: Instant::now(),
            attempts: Vec::new(),
            positive: Vec::new(),
            own_ns,
            anchors,
            ns_fds: Vec::new(),
            links: 0,
            info: Vec::new(),
            complete: false,
        }
    }

    fn record(
        &mut self,
        name: impl Into<String>,
        class: &'static str,
        outcome: Outcome,
        errno: impl Into<String>,
        detail: impl Into<String>,
    ) {
        let mut detail: String = detail.into();
        if detail.len() > 400 {
            let mut cut = 400;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
            detail.push('…');
        }
        self.attempts.push(Attempt {
            name: name.into(),
            class,
            outcome,
            errno: errno.into(),
            detail,
        });
    }

    fn refused(
        &mut self,
        name: impl Into<String>,
        class: &'static str,
        e: i32,
        detail: impl Into<String>,
    ) {
        self.record(name, class, Outcome::Refused, errno_name(e), detail);
    }

    /// An attempt that worked where it must not have.
    fn escaped(&mut self, name: impl Into<String>, class: &'static str, detail: impl Into<String>) {
        self.record(name, class, Outcome::Escaped, "", detail);
    }

    /// An attempt that worked, but only on what is the box's own.
    fn contained(
        &mut self,
        name: impl Into<String>,
        class: &'static str,
        detail: impl Into<String>,
    ) {
        self.record(name, class, Outcome::Contained, "", detail);
    }

    /// An attempt on other processes when the box shows none.
    fn none_visible(&mut self, name: impl Into<String>, class: &'static str) {
        self.refused(
            name,
            class,
            libc::ESRCH,
            "no process outside the probe is visible",
        );
    }

    /// The wiphy attacks cannot be made (no radio, no nl80211): skipped, with why.
    fn no_wiphy(&mut self, errno: impl Into<String>, detail: impl Into<String>) {
        self.record("SET_WIPHY_NETNS", "wiphy", Outcome::Skipped, errno, detail);
    }

    /// An attempt made several times (one per target), refused every time with `errs`.
    fn refused_all(&mut self, name: impl Into<String>, class: &'static str, errs: &[i32]) {
        self.record(name, class, Outcome::Refused, main_errno(errs), tally(errs));
    }

    /// Run `f` (0 or an errno) in a forked child, bounded by `t`: escaped (with `worked` as the
    /// detail) on 0, refused with its errno otherwise, or with ETIMEDOUT if it never answered.
    fn attempt_in_child(
        &mut self,
        name: impl Into<String>,
        class: &'static str,
        t: Duration,
        worked: &str,
        f: impl FnOnce() -> i32,
    ) {
        let name = name.into();
        match in_child(t, f) {
            Ok(0) => self.escaped(name, class, worked),
            Ok(e) => self.refused(name, class, e, ""),
            Err(m) => self.refused(name, class, libc::ETIMEDOUT, m),
        }
    }

    fn positive(&mut self, name: &str, ok: bool, detail: impl Into<String>) {
        self.positive.push((name.to_string(), ok, detail.into()));
    }

    fn next_link(&mut self) -> (String, String) {
        self.links += 1;
        (
            format!("wihost{}", self.links),
            format!("wihost{}p", self.links),
        )
    }

    /// Is a file just created in `dir` on a tmpfs of the box's own (not the host's, not the
    /// image's)?
    fn private_tmpfs(&self, dir: &str) -> bool {
        let Some(dev) = dev_of(dir) else { return false };
        is_tmpfs(dir) && !self.anchors.iter().any(|(_, d)| *d == dev)
    }

    fn report(&self) -> Value {
        let escaped: Vec<&str> = self
            .attempts
            .iter()
            .filter(|a| a.outcome == Outcome::Escaped)
            .map(|a| a.name.as_str())
            .collect();
        let contained: Vec<&str> = self
            .attempts
            .iter()
            .filter(|a| a.outcome == Outcome::Contained)
            .map(|a| a.name.as_str())
            .collect();
        let bad_skip = self
            .attempts
            .iter()
            .any(|a| a.outcome == Outcome::Skipped && a.class != "wiphy");
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let caps = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .unwrap_or("")
            .trim()
            .to_string();
        let uid_map = fs::read_to_string("/proc/self/uid_map")
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        json!({
            "version": 1,
            "nonce": self.nonce,
            "complete": self.complete,
            "uid_map": uid_map,
            "caps": caps,
            "pid_in_box": self.me,
            "elapsed_ms": self.started.elapsed().as_millis() as u64,
            "attempts": self.attempts.iter().map(|a| json!({
                "name": a.name, "class": a.class, "outcome": a.outcome.as_str(),
                "errno": a.errno, "detail": a.detail,
            })).collect::<Vec<_>>(),
            "positive": self.positive.iter().map(|(n, ok, d)| json!({"name": n, "ok": ok, "detail": d})).collect::<Vec<_>>(),
            "info": self.info.iter().map(|(k, v)| json!({"name": k, "detail": v})).collect::<Vec<_>>(),
            "escaped": escaped,
            "contained": contained,
            "all_refused": escaped.is_empty() && !bad_skip,
            "positive_ok": !self.positive.is_empty() && self.positive.iter().all(|p| p.1),
        })
    }

    /// Write the report: tmp file, fsync, rename, 0644.
    fn save(&self) {
        let text = serde_json::to_string_pretty(&self.report()).expect("report serializes");
        let tmp = format!("{REPORT}.tmp");
        let r = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(text.as_bytes())?;
                f.sync_all()
            })
            .and_then(|()| {
                fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            })
            .and_then(|()| fs::rename(&tmp, REPORT));
        if let Err(e) = r {
            eprintln!("hostile-probe: cannot write {REPORT}: {e}");
        }
    }

    fn summary(&self) -> String {
        let count = |o: Outcome| self.attempts.iter().filter(|a| a.outcome == o).count();
        let esc: Vec<&str> = self
            .attempts
            .iter()
            .filter(|a| a.outcome == Outcome::Escaped)
            .map(|a| a.name.as_str())
            .collect();
        let pos_ok = self.positive.iter().filter(|p| p.1).count();
        format!(
            "hostile-probe: nonce {} — {} attempts: {} refused, {} contained, {} escaped, {} skipped; positive controls {}/{} ok; {} ms{}",
            self.nonce,
            self.attempts.len(),
            count(Outcome::Refused),
            count(Outcome::Contained),
            count(Outcome::Escaped),
            count(Outcome::Skipped),
            pos_ok,
            self.positive.len(),
            self.started.elapsed().as_millis(),
            if esc.is_empty() {
                String::new()
            } else {
                format!("; ESCAPED: {}", esc.join(", "))
            }
        )
    }

    // ---- reads ------------------------------------------------------------------------------

    /// Expand one read target under `prefix` ("" or "/proc/N/root").
    fn expand(prefix: &str, target: &str) -> Result<Vec<String>, (String, i32)> {
        let Some(star) = target.find('*') else {
            return Ok(vec![format!("{prefix}{target}")]);
        };
        let slash = target[..star].rfind('/').unwrap_or(0);
        let dir = format!("{prefix}{}", &target[..slash]);
        let (pre, post) = (&target[slash + 1..star], &target[star + 1..]);
        match fs::read_dir(&dir) {
            Ok(rd) => {
                let mut v: Vec<String> = rd
                    .flatten()
                    .filter_map(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        (n.starts_with(pre)
                            && n.ends_with(post)
                            && n.len() >= pre.len() + post.len())
                        .then(|| format!("{dir}/{n}"))
                    })
                    .collect();
                v.sort();
                Ok(v)
            }
            Err(e) => Err((dir, io_errno(&e))),
        }
    }

    /// Read ≤ 64 bytes of `path`: Ok(hex) or the errno.
    fn read_head(path: &str) -> Result<String, i32> {
        let c = cstr(path);
        // SAFETY: open(2) a path, read into a buffer, close.
        unsafe {
            let fd = libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return Err(last_errno());
            }
            let mut buf = [0u8; 64];
            let n = libc::read(fd, buf.as_mut_ptr().cast(), 64);
            let e = last_errno();
            libc::close(fd);
            if n < 0 {
                return Err(e);
            }
            Ok(hex64(&buf[..n as usize]))
        }
    }

    fn read_one(&mut self, name: String, path: &str) {
        match Self::read_head(path) {
            Ok(h) => self.escaped(
                name,
                "read-host-file",
                format!("read {path}: first bytes (hex) {h}"),
            ),
            Err(e) => self.refused(name, "read-host-file", e, path.to_string()),
        }
    }

    fn reads(&mut self, foreign: &[i32]) {
        for prefix in ["", "/proc/1/root"] {
            for t in READ_TARGETS {
                match Self::expand(prefix, t) {
                    Ok(paths) if paths.is_empty() => self.refused(
                        format!("read {prefix}{t}"),
                        "read-host-file",
                        libc::ENOENT,
                        "no match",
                    ),
                    Ok(paths) => {
                        for p in paths {
                            self.read_one(format!("read {p}"), &p);
                        }
                    }
                    Err((dir, e)) => self.refused(
                        format!("read {prefix}{t}"),
                        "read-host-file",
                        e,
                        format!("listing {dir}"),
                    ),
                }
            }
        }
        // The same through every other visible process's root, and their cwd.
        let others: Vec<i32> = foreign.iter().copied().filter(|p| *p != 1).collect();
        for t in READ_TARGETS {
            let name = format!(
                "read /proc/<pid>/root{t} ({} other visible pids)",
                others.len()
            );
            if others.is_empty() {
                self.none_visible(name, "read-host-file");
                continue;
            }
            let mut errs = Vec::new();
            let mut hit = None;
            for p in &others {
                match Self::expand(&format!("/proc/{p}/root"), t) {
                    Ok(paths) if paths.is_empty() => errs.push(libc::ENOENT),
                    Ok(paths) => {
                        for path in paths {
                            match Self::read_head(&path) {
                                Ok(h) => {
                                    hit.get_or_insert((path, h));
                                }
                                Err(e) => errs.push(e),
                            }
                        }
                    }
                    Err((_, e)) => errs.push(e),
                }
                if hit.is_some() {
                    break;
                }
            }
            match hit {
                Some((path, h)) => self.escaped(
                    name,
                    "read-host-file",
                    format!("read {path}: first bytes (hex) {h}"),
                ),
                None => self.refused_all(name, "read-host-file", &errs),
            }
        }
        let name = format!(
            "open /proc/<pid>/cwd ({} other visible pids)",
            foreign.len()
        );
        if foreign.is_empty() {
            self.none_visible(name, "read-host-file");
        } else {
            let mut errs = Vec::new();
            let mut hit = None;
            for p in foreign {
                match fs::read_dir(format!("/proc/{p}/cwd")) {
                    Ok(rd) => {
                        hit = Some(format!("pid {p} ({}): {} entries", comm(*p), rd.count()));
                        break;
                    }
                    Err(e) => errs.push(io_errno(&e)),
                }
            }
            match hit {
                Some(d) => self.escaped(name, "read-host-file", d),
                None => self.refused_all(name, "read-host-file", &errs),
            }
        }
    }

    // ---- writes -----------------------------------------------------------------------------

    fn writes(&mut self) {
        for dir in WRITE_DIRS {
            let path = format!("{}/wi-hostile-{}", dir.trim_end_matches('/'), self.nonce);
            let name = format!("create {path}");
            let c = cstr(&path);
            // SAFETY: open(2) O_CREAT|O_EXCL, write a line, close.
            let fd = unsafe {
                libc::open(
                    c.as_ptr(),
                    libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    0o644,
                )
            };
            if fd < 0 {
                let e = last_errno();
                self.refused(name, "write-host-file", e, dir);
                continue;
            }
            let line = format!("wi-hostile {}\n", self.nonce);
            // SAFETY: fd is ours.
            unsafe {
                libc::write(fd, line.as_ptr().cast(), line.len());
                libc::close(fd);
            }
            if self.private_tmpfs(dir) {
                let _ = fs::remove_file(&path);
                self.contained(
                    name,
                    "write-host-file",
                    format!("{dir} is a tmpfs of the box's own (removed again)"),
                );
            } else {
                let dev = dev_of(dir)
                    .map(|d| format!("{}:{}", libc::major(d), libc::minor(d)))
                    .unwrap_or_default();
                self.escaped(
                    name,
                    "write-host-file",
                    format!(
                        "created (left in place); {dir} on dev {dev}, tmpfs={}",
                        is_tmpfs(dir)
                    ),
                );
            }
        }
    }

    // ---- host /run --------------------------------------------------------------------------

    fn connect_unix(path: &str, ty: i32) -> Result<(), i32> {
        let b = path.as_bytes();
        // SAFETY: socket + connect with a sockaddr_un we fill in; fd closed after.
        unsafe {
            let mut a: libc::sockaddr_un = std::mem::zeroed();
            if b.len() >= a.sun_path.len() {
                return Err(libc::ENAMETOOLONG);
            }
            a.sun_family = libc::AF_UNIX as u16;
            for (i, c) in b.iter().enumerate() {
                a.sun_path[i] = *c as libc::c_char;
            }
            let fd = libc::socket(
                libc::AF_UNIX,
                ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            );
            if fd < 0 {
                return Err(last_errno());
            }
            let r = libc::connect(
                fd,
                (&a as *const libc::sockaddr_un).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as u32,
            );
            let e = last_errno();
            libc::close(fd);
            if r == 0 || e == libc::EAGAIN || e == libc::EINPROGRESS {
                Ok(())
            } else {
                Err(e)
            }
        }
    }

    fn host_run(&mut self) {
        for dir in ["/proc/1/root/run", "/proc/1/root/run/wifi-isolate"] {
            match fs::read_dir(dir) {
                Ok(rd) => {
                    let n = rd.count();
                    if pid1_is_in_box() {
                        self.contained(
                            format!("list {dir}"),
                            "host-run",
                            format!("{n} entries: pid 1's root is the box's own root, so this is the box's own {}", dir.trim_start_matches("/proc/1/root")),
                        );
                    } else {
                        self.escaped(format!("list {dir}"), "host-run", format!("{n} entries"));
                    }
                }
                Err(e) => self.refused(format!("list {dir}"), "host-run", io_errno(&e), dir),
            }
        }
        let mut targets: Vec<(String, i32)> = Vec::new();
        for (p, ty) in HOST_SOCKETS {
            targets.push((p.to_string(), ty));
            targets.push((format!("/proc/1/root{p}"), ty));
        }
        for base in ["/run/wifi-isolate", "/proc/1/root/run/wifi-isolate"] {
            let socks: Vec<String> = fs::read_dir(base)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".sock"))
                .map(|e| e.path().display().to_string())
                .collect();
            if socks.is_empty() {
                targets.push((format!("{base}/*.sock"), libc::SOCK_STREAM));
            }
            targets.extend(socks.into_iter().map(|s| (s, libc::SOCK_STREAM)));
        }
        for (p, ty) in targets {
            let name = format!("connect {p}");
            if p.ends_with("/*.sock") {
                self.refused(name, "host-run", libc::ENOENT, "no socket there");
                continue;
            }
            match Self::connect_unix(&p, ty) {
                Ok(()) => self.escaped(name, "host-run", "connected"),
                Err(e) => self.refused(name, "host-run", e, ""),
            }
        }
    }

    // ---- devices ----------------------------------------------------------------------------

    fn open_dev(path: &str, flags: i32) -> Result<(), i32> {
        let c = cstr(path);
        // SAFETY: open + close, nothing read or written.
        unsafe {
            let fd = libc::open(
                c.as_ptr(),
                flags | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return Err(last_errno());
            }
            libc::close(fd);
        }
        Ok(())
    }

    fn devices(&mut self) {
        for (p, fl, how) in [
            ("/dev/console", libc::O_RDWR, "rw"),
            ("/dev/tty0", libc::O_RDWR, "rw"),
            ("/dev/kmsg", libc::O_WRONLY, "w"),
            ("/dev/mem", libc::O_RDONLY, "r"),
            ("/dev/sda", libc::O_RDONLY, "r"),
            ("/dev/vda", libc::O_RDONLY, "r"),
            ("/dev/nvme0n1", libc::O_RDONLY, "r"),
            ("/dev/rfkill", libc::O_WRONLY, "w"),
        ] {
            let name = format!("open {p} ({how})");
            match Self::open_dev(p, fl) {
                Ok(()) => self.escaped(name, "device", "opened (nothing read or written)"),
                Err(e) => self.refused(name, "device", e, ""),
            }
        }
        for (kind, mode, maj, min, what) in [
            ("block", libc::S_IFBLK, 8u32, 0u32, "8:0 (sda)"),
            ("char", libc::S_IFCHR, 1, 1, "1:1 (mem)"),
        ] {
            let name = format!("mknod a {kind} device {what} and open it");
            let mut last = libc::ENOENT;
            let mut made = None;
            for dir in ["/tmp", "/run", "/run/wifi-isolate"] {
                let path = format!("{dir}/wi-mknod-{kind}-{}", self.nonce);
                let c = cstr(&path);
                // SAFETY: mknod(2) with a path and a device number.
                let r = unsafe { libc::mknod(c.as_ptr(), mode | 0o600, libc::makedev(maj, min)) };
                if r == 0 {
                    made = Some(path);
                    break;
                }
                last = last_errno();
                if last == libc::EPERM {
                    break;
                }
            }
            match made {
                None => self.refused(name, "device", last, ""),
                Some(path) => {
                    let opened = Self::open_dev(&path, libc::O_RDONLY);
                    let _ = fs::remove_file(&path);
                    match opened {
                        Ok(()) => {
                            self.escaped(name, "device", format!("mknod {path} and open worked"))
                        }
                        Err(e) => self.record(
                            name,
                            "device",
                            Outcome::Contained,
                            errno_name(e),
                            format!(
                                "mknod {path} worked (CAP_MKNOD), open refused: {}",
                                errno_name(e)
                            ),
                        ),
                    }
                }
            }
        }
    }

    // ---- syscalls ---------------------------------------------------------------------------

    /// A privilege-checked call with harmless arguments: refused on EPERM/EACCES/ENOSYS (what a
    /// missing capability or a seccomp filter returns); any other error means the privilege check
    /// passed.
    fn privileged(&mut self, name: &str, class: &'static str, r: i64, detail: &str) {
        let e = last_errno();
        if r >= 0 {
            self.escaped(name, class, format!("succeeded ({detail})"));
        } else if matches!(e, libc::EPERM | libc::EACCES | libc::ENOSYS) {
            self.refused(name, class, e, detail);
        } else {
            self.record(
                name,
                class,
                Outcome::Escaped,
                errno_name(e),
                format!("the privilege check passed: {} ({detail})", errno_name(e)),
            );
        }
    }

    fn syscalls(&mut self, foreign: &[i32]) {
        // ptrace every visible process that is not ours.
        let name = format!(
            "ptrace(PTRACE_ATTACH) ({} other visible pids)",
            foreign.len()
        );
        if foreign.is_empty() {
            self.none_visible(name, "syscall");
        } else {
            let mut errs = Vec::new();
            let mut hits = Vec::new();
            for p in foreign {
                // SAFETY: ptrace attach; on success wait (bounded) for the stop and detach.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_ptrace,
                        libc::PTRACE_ATTACH as libc::c_long,
                        *p as libc::c_long,
                        0 as libc::c_long,
                        0 as libc::c_long,
                    )
                };
                if r == 0 {
                    hits.push(format!("{p} ({})", comm(*p)));
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_secs(1) {
                        let mut st = 0;
                        // SAFETY: waitpid on the tracee.
                        if unsafe { libc::waitpid(*p, &mut st, libc::WNOHANG | libc::__WALL) } == *p
                        {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    // SAFETY: detach, resuming the tracee.
                    unsafe {
                        libc::syscall(
                            libc::SYS_ptrace,
                            libc::PTRACE_DETACH as libc::c_long,
                            *p as libc::c_long,
                            0 as libc::c_long,
                            0 as libc::c_long,
                        )
                    };
                } else {
                    errs.push(last_errno());
                }
            }
            if hits.is_empty() {
                self.refused_all(name, "syscall", &errs);
            } else {
                self.escaped(name, "syscall", format!("attached to {}", hits.join(", ")));
            }
        }
        // mount a tmpfs
        let dir = format!("/tmp/wi-mnt-{}", self.nonce);
        let _ = fs::create_dir(&dir);
        let (src, fstype, target) = (cstr("tmpfs"), cstr("tmpfs"), cstr(&dir));
        // SAFETY: mount(2) a tmpfs on our own directory; unmounted at once if it worked.
        let r = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        let e = last_errno();
        if r == 0 {
            // SAFETY: undo the mount.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
            self.escaped(
                "mount tmpfs",
                "syscall",
                format!("mounted on {dir} (unmounted again)"),
            );
        } else {
            self.refused("mount tmpfs", "syscall", e, dir.clone());
        }
        let _ = fs::remove_dir(&dir);
        // bpf(BPF_PROG_LOAD): a socket filter "r0 = 0; exit".
        let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
        let license = cstr("GPL");
        let mut attr = [0u8; 128];
        attr[0..4].copy_from_slice(&1u32.to_ne_bytes()); // BPF_PROG_TYPE_SOCKET_FILTER
        attr[4..8].copy_from_slice(&2u32.to_ne_bytes()); // insn_cnt
        attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
        attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
        // SAFETY: bpf(2) BPF_PROG_LOAD (5) with a filled bpf_attr; a returned fd is closed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                5 as libc::c_long,
                attr.as_mut_ptr() as libc::c_long,
                attr.len() as libc::c_long,
            )
        };
        self.privileged(
            "bpf(BPF_PROG_LOAD socket filter)",
            "syscall",
            r,
            "2-instruction socket filter",
        );
        if r >= 0 {
            // SAFETY: our fd.
            unsafe { libc::close(r as i32) };
        }
        // perf_event_open: a software clock on ourselves.
        let mut pattr = [0u8; 128];
        pattr[0..4].copy_from_slice(&1u32.to_ne_bytes()); // PERF_TYPE_SOFTWARE
        pattr[4..8].copy_from_slice(&128u32.to_ne_bytes()); // size
        pattr[8..16].copy_from_slice(&0u64.to_ne_bytes()); // PERF_COUNT_SW_CPU_CLOCK
        pattr[40..48].copy_from_slice(&(1u64/* disabled */).to_ne_bytes());
        // SAFETY: perf_event_open(2) with a filled perf_event_attr; a returned fd is closed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                pattr.as_mut_ptr() as libc::c_long,
                0 as libc::c_long,
                -1 as libc::c_long,
                -1 as libc::c_long,
                0 as libc::c_long,
            )
        };
        self.privileged(
            "perf_event_open(software clock, self)",
            "syscall",
            r,
            "PERF_COUNT_SW_CPU_CLOCK",
        );
        if r >= 0 {
            // SAFETY: our fd.
            unsafe { libc::close(r as i32) };
        }
        // kexec_load with no segments (with CAP_SYS_BOOT this would only unload: harmless).
        // SAFETY: kexec_load(2) with zero segments.
        let r = unsafe {
            libc::syscall(
                libc::SYS_kexec_load,
                0 as libc::c_long,
                0 as libc::c_long,
                0 as libc::c_long,
                0 as libc::c_long,
            )
        };
        self.privileged("kexec_load", "syscall", r, "no segments");
        // init_module with an empty image, finit_module on an invalid fd.
        let empty = cstr("");
        // SAFETY: init_module(2) with a NULL image of length 0.
        let r = unsafe {
            libc::syscall(
                libc::SYS_init_module,
                0 as libc::c_long,
                0 as libc::c_long,
                empty.as_ptr() as libc::c_long,
            )
        };
        self.privileged("init_module", "syscall", r, "empty image");
        // SAFETY: finit_module(2) on fd -1.
        let r = unsafe {
            libc::syscall(
                libc::SYS_finit_module,
                -1 as libc::c_long,
                empty.as_ptr() as libc::c_long,
                0 as libc::c_long,
            )
        };
        self.privileged("finit_module", "syscall", r, "fd -1");
        // keyctl: the user keyring of our uid (for a uid-0 box that is host root's).
        // SAFETY: keyctl(2) KEYCTL_GET_KEYRING_ID (0), KEY_SPEC_USER_KEYRING (-4), no create.
        let r = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                0 as libc::c_long,
                -4 as libc::c_long,
                0 as libc::c_long,
            )
        };
        let e = last_errno();
        if r >= 0 {
            self.escaped(
                "keyctl(KEYCTL_GET_KEYRING_ID, user keyring)",
                "syscall",
                "got the uid's user keyring",
            );
        } else {
            self.refused(
                "keyctl(KEYCTL_GET_KEYRING_ID, user keyring)",
                "syscall",
                e,
                "",
            );
        }
        // sethostname: fine in a UTS namespace of the box's own.
        let mut old = [0u8; 65];
        // SAFETY: gethostname into a buffer.
        unsafe { libc::gethostname(old.as_mut_ptr().cast(), 64) };
        let old_len = old.iter().position(|b| *b == 0).unwrap_or(64);
        let new = format!("wi-hostile-{}", &self.nonce[..6]);
        // SAFETY: sethostname(2); restored at once if it worked.
        let r = unsafe { libc::sethostname(new.as_ptr().cast(), new.len()) };
        let e = last_errno();
        if r == 0 {
            // SAFETY: restore.
            unsafe { libc::sethostname(old.as_ptr().cast(), old_len) };
            let own = self.own_ns.get("uts").copied().unwrap_or(0);
            if own != 0 && own != PROC_UTS_INIT_INO {
                self.contained("sethostname", "syscall", "own UTS namespace (restored)");
            } else {
                self.escaped(
                    "sethostname",
                    "syscall",
                    "the host's UTS namespace (restored)",
                );
            }
        } else {
            self.refused("sethostname", "syscall", e, "");
        }
    }

    // ---- namespaces -------------------------------------------------------------------------

    fn namespaces(&mut self, foreign: &[i32]) {
        let t = Duration::from_secs(3);
        for (name, flags) in [
            ("unshare(CLONE_NEWUSER)", libc::CLONE_NEWUSER),
            (
                "unshare(CLONE_NEWNET|CLONE_NEWNS)",
                libc::CLONE_NEWNET | libc::CLONE_NEWNS,
            ),
        ] {
            // SAFETY (in the child): unshare(2).
            let f = || errno_of(unsafe { libc::unshare(flags) });
            self.attempt_in_child(name, "namespace", t, FORKED, f);
        }
        let clone_newuser = || {
            // SAFETY: raw clone(2) without CLONE_VM (fork-like); the new child exits at once.
            let pid = unsafe {
                libc::syscall(
                    libc::SYS_clone,
                    (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_long,
                    0 as libc::c_long,
                    0 as libc::c_long,
                    0 as libc::c_long,
                    0 as libc::c_long,
                )
            };
            if pid == 0 {
                // SAFETY: leave at once.
                unsafe { libc::_exit(0) };
            }
            if pid < 0 {
                return last_errno();
            }
            let mut st = 0;
            // SAFETY: reap it.
            unsafe { libc::waitpid(pid as i32, &mut st, 0) };
            0
        };
        self.attempt_in_child(
            "clone(CLONE_NEWUSER)",
            "namespace",
            t,
            "a child in a new user namespace",
            clone_newuser,
        );
        // Foreign namespace fds: pid 1 and every other visible process.
        let mut pids = vec![1];
        pids.extend(foreign.iter().copied().filter(|p| *p != 1 && *p != self.me));
        for ty in NS_TYPES {
            let own = self.own_ns.get(ty).copied();
            let mut errs = Vec::new();
            let mut seen = BTreeSet::new();
            for p in &pids {
                if *p == self.me {
                    continue;
                }
                let path = format!("/proc/{p}/ns/{ty}");
                match fs::File::open(&path) {
                    Ok(f) => {
                        let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                        if Some(ino) != own && seen.insert(ino) {
                            self.ns_fds.push((
                                ty,
                                format!("pid {p} ({})", comm(*p)),
                                OwnedFd::from(f),
                            ));
                        }
                    }
                    Err(e) => errs.push(io_errno(&e)),
                }
            }
            let got: Vec<String> = self
                .ns_fds
                .iter()
                .filter(|(t, _, _)| *t == ty)
                .map(|(_, l, _)| l.clone())
                .collect();
            let name = format!("open a foreign /proc/<pid>/ns/{ty}");
            if !got.is_empty() {
                self.escaped(name, "namespace", format!("opened {}", got.join(", ")));
            } else if errs.is_empty() {
                let d = if pids.len() <= 1 {
                    "pid 1 is the probe; nothing else visible"
                } else {
                    "every visible process shares the box's namespace"
                };
                self.refused(name, "namespace", libc::ESRCH, d);
            } else {
                self.record(
                    name,
                    "namespace",
                    Outcome::Refused,
                    main_errno(&errs),
                    format!("{} (same-namespace pids not counted)", tally(&errs)),
                );
            }
        }
        // setns into each foreign namespace fd that could be opened.
        let fds: Vec<(&'static str, String, RawFd)> = self
            .ns_fds
            .iter()
            .map(|(t, l, f)| (*t, l.clone(), f.as_raw_fd()))
            .collect();
        if fds.is_empty() {
            self.refused(
                "setns into a foreign namespace",
                "namespace",
                libc::EBADF,
                "no foreign namespace fd could be opened",
            );
        }
        for (ty, label, fd) in fds {
            let name = format!("setns into {label}'s {ty} ns");
            // SAFETY (in the child): setns(2) on an fd we hold.
            let f = || errno_of(unsafe { libc::setns(fd, 0) });
            self.attempt_in_child(name, "namespace", t, FORKED, f);
        }
    }

    // ---- links ------------------------------------------------------------------------------

    /// Pid targets for moves: pid 1, then one per distinct (or unreadable) netns among the other
    /// visible processes.
    fn pid_targets(&self, foreign: &[i32]) -> Vec<(u32, String)> {
        let own = self.own_ns.get("net").copied();
        let mut out = vec![(1u32, format!("pid 1 ({})", comm(1)))];
        let mut seen = BTreeSet::new();
        if let Ok(i) = ns_inode("/proc/1/ns/net") {
            seen.insert(i);
        }
        // User processes first (a kernel thread has an empty cmdline): they are the interesting
        // targets (the daemon, an AP's hostapd in its own netns).
        let kthread = |p: &i32| {
            fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| c.is_empty())
                .unwrap_or(true)
        };
        let mut order: Vec<i32> = foreign.iter().copied().filter(|p| !kthread(p)).collect();
        order.extend(foreign.iter().copied().filter(kthread));
        for p in &order {
            if *p == 1 || out.len() > MAX_PID_TARGETS {
                continue;
            }
            match ns_inode(&format!("/proc/{p}/ns/net")) {
                Ok(i) if Some(i) == own || !seen.insert(i) => continue,
                _ => out.push((*p as u32, format!("pid {p} ({})", comm(*p)))),
            }
        }
        out
    }

    fn link_attempt(&mut self, nl: &mut Nl, name: String, target: Target) {
        let (l, peer) = self.next_link();
        match newlink_veth(nl, &l, &peer, Some(&target)) {
            Err(e) => self.refused(name, "link", e, format!("veth {l}")),
            Ok(()) => {
                if link_here(nl, &l) {
                    let _ = dellink(nl, &l);
                    self.contained(
                        name,
                        "link",
                        format!("veth {l} landed in the box's own netns (deleted)"),
                    );
                } else {
                    self.escaped(
                        name,
                        "link",
                        format!("veth {l} created outside the box (peer {peer} left in the box)"),
                    );
                }
            }
        }
    }

    fn links(&mut self, foreign: &[i32]) {
        let mut nl = match Nl::open(libc::NETLINK_ROUTE) {
            Ok(n) => n,
            Err(e) => {
                self.refused("rtnetlink socket", "link", e, "no attack possible");
                return;
            }
        };
        for (pid, label) in self.pid_targets(foreign) {
            self.link_attempt(
                &mut nl,
                format!("RTM_NEWLINK veth IFLA_NET_NS_PID={pid} [{label}]"),
                Target::Pid(pid),
            );
        }
        let fds: Vec<(String, RawFd)> = self
            .ns_fds
            .iter()
            .filter(|(t, _, _)| *t == "net")
            .map(|(_, l, f)| (l.clone(), f.as_raw_fd()))
            .collect();
        if fds.is_empty() {
            // /proc/1/ns/net as such (the box's own when the probe is pid 1).
            match fs::File::open("/proc/1/ns/net") {
                Ok(f) => {
                    let fd = OwnedFd::from(f);
                    self.link_attempt(
                        &mut nl,
                        "RTM_NEWLINK veth IFLA_NET_NS_FD=/proc/1/ns/net".into(),
                        Target::Fd(fd.as_raw_fd()),
                    );
                }
                Err(e) => self.refused(
                    "RTM_NEWLINK veth IFLA_NET_NS_FD=/proc/1/ns/net",
                    "link",
                    io_errno(&e),
                    "cannot open /proc/1/ns/net",
                ),
            }
        }
        for (label, fd) in fds {
            self.link_attempt(
                &mut nl,
                format!("RTM_NEWLINK veth IFLA_NET_NS_FD [{label}]"),
                Target::Fd(fd),
            );
        }
        let mut ids: BTreeSet<i32> = (0..=15).collect();
        match nsid_dump(&mut nl) {
            Ok(v) => {
                let listed = v
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                ids.extend(v);
                self.info
                    .push(("RTM_GETNSID dump".into(), format!("ids listed: [{listed}]")));
            }
            Err(e) => self.info.push(("RTM_GETNSID dump".into(), errno_name(e))),
        }
        let mut errs = Vec::new();
        for id in ids {
            let (l, peer) = self.next_link();
            match newlink_veth(&mut nl, &l, &peer, Some(&Target::NsId(id))) {
                Err(e) => errs.push(e),
                Ok(()) => {
                    if link_here(&mut nl, &l) {
                        let _ = dellink(&mut nl, &l);
                        self.contained(
                            format!("RTM_NEWLINK veth IFLA_TARGET_NETNSID={id}"),
                            "link",
                            format!("{l} in own netns (deleted)"),
                        );
                    } else {
                        self.escaped(
                            format!("RTM_NEWLINK veth IFLA_TARGET_NETNSID={id}"),
                            "link",
                            format!("veth {l} created outside the box"),
                        );
                    }
                }
            }
        }
        if !errs.is_empty() {
            self.refused_all(
                format!(
                    "RTM_NEWLINK veth IFLA_TARGET_NETNSID (the {} other ids)",
                    errs.len()
                ),
                "link",
                &errs,
            );
        }
    }

    // ---- signals ----------------------------------------------------------------------------

    fn signals(&mut self) {
        let view: BTreeSet<i32> = visible_pids().into_iter().collect();
        let mut errs = Vec::new();
        let mut found = Vec::new();
        for pid in 1..=MAX_PID {
            if view.contains(&pid) {
                continue;
            }
            // SAFETY: kill(2) probe with signal 0.
            let r = unsafe { libc::kill(pid, 0) };
            let e = last_errno();
            if r == 0 || e == libc::EPERM {
                // SAFETY: the attack itself.
                let k = unsafe { libc::kill(pid, libc::SIGKILL) };
                let ke = last_errno();
                found.push((
                    pid,
                    if k == 0 {
                        "killed".to_string()
                    } else {
                        errno_name(ke)
                    },
                ));
            } else {
                errs.push(e);
            }
        }
        let name = format!(
            "kill(pid, 0 / SIGKILL) for the {} pids 1..={MAX_PID} outside the box's /proc",
            MAX_PID as usize - view.len().min(MAX_PID as usize)
        );
        let killed: Vec<String> = found
            .iter()
            .filter(|(_, r)| r == "killed")
            .map(|(p, _)| p.to_string())
            .collect();
        if !killed.is_empty() {
            self.escaped(
                name,
                "signal",
                format!(
                    "SIGKILLed pids that were not in the box's /proc when the scan began: {}",
                    killed.join(",")
                ),
            );
        } else if !found.is_empty() {
            // They exist but could not be killed: an information leak, still refused.
            let d: Vec<String> = found
                .iter()
                .take(10)
                .map(|(p, r)| format!("{p}:{r}"))
                .collect();
            self.record(
                name,
                "signal",
                Outcome::Refused,
                "EPERM",
                format!("hidden pids exist (kill 0 said EPERM): {}", d.join(" ")),
            );
        } else {
            self.refused_all(name, "signal", &errs);
        }
        // kill(-1, SIGKILL): the probe itself is spared by the kernel.
        let before: Vec<(i32, String)> = foreign_pids(self.me)
            .into_iter()
            .map(|p| (p, comm(p)))
            .collect();
        // SAFETY: the attack itself.
        let r = unsafe { libc::kill(-1, libc::SIGKILL) };
        let e = last_errno();
        std::thread::sleep(Duration::from_millis(300));
        // Reap our own children, if any were hit.
        // SAFETY: non-blocking waitpid loop.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
        let died: Vec<String> = before
            .iter()
            .filter(|(p, _)| matches!(proc_state(*p), None | Some('Z') | Some('X')))
            .map(|(p, c)| format!("{c}({p})"))
            .collect();
        let name = "kill(-1, SIGKILL)";
        if !died.is_empty() {
            self.escaped(
                name,
                "signal",
                format!(
                    "killed {} of {} outside processes: {}",
                    died.len(),
                    before.len(),
                    died.join(" ")
                ),
            );
        } else if r == 0 {
            self.contained(
                name,
                "signal",
                format!(
                    "only the probe's own processes were hit ({} others visible, all alive)",
                    before.len()
                ),
            );
        } else {
            self.refused(
                name,
                "signal",
                e,
                format!("{} other processes visible", before.len()),
            );
        }
    }

    // ---- wiphy ------------------------------------------------------------------------------

    fn wiphy(&mut self, foreign: &[i32]) {
        let mut nl = match Nl::open(libc::NETLINK_GENERIC) {
            Ok(n) => n,
            Err(e) => {
                self.no_wiphy(errno_name(e), "no generic netlink socket");
                return;
            }
        };
        let family = match genl_family(&mut nl, "nl80211") {
            Ok(f) => f,
            Err(e) => {
                self.no_wiphy(errno_name(e), "skipped: no wiphy (no nl80211 family)");
                return;
            }
        };
        let t = Instant::now();
        let mut phys = BTreeMap::new();
        while t.elapsed() < WIPHY_WAIT {
            phys = wiphys(&mut nl, family).unwrap_or_default();
            if !phys.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let Some((idx, phy)) = phys.iter().next().map(|(i, n)| (*i, n.clone())) else {
            self.no_wiphy(
                "",
                format!(
                    "skipped: no wiphy arrived within {} s",
                    WIPHY_WAIT.as_secs()
                ),
            );
            return;
        };
        let waited = t.elapsed().as_millis();
        let mut targets: Vec<(String, Target)> = self
            .pid_targets(foreign)
            .into_iter()
            .map(|(p, l)| {
                (
                    format!("SET_WIPHY_NETNS {phy} NL80211_ATTR_PID={p} [{l}]"),
                    Target::Pid(p),
                )
            })
            .collect();
        let fds: Vec<(String, RawFd)> = self
            .ns_fds
            .iter()
            .filter(|(ty, _, _)| *ty == "net")
            .map(|(_, l, f)| (l.clone(), f.as_raw_fd()))
            .collect();
        let _pid1_fd;
        if fds.is_empty() {
            match fs::File::open("/proc/1/ns/net") {
                Ok(f) => {
                    let fd = OwnedFd::from(f);
                    targets.push((
                        format!("SET_WIPHY_NETNS {phy} NL80211_ATTR_NETNS_FD=/proc/1/ns/net"),
                        Target::Fd(fd.as_raw_fd()),
                    ));
                    _pid1_fd = fd;
                }
                Err(e) => self.refused(
                    format!("SET_WIPHY_NETNS {phy} NL80211_ATTR_NETNS_FD=/proc/1/ns/net"),
                    "wiphy",
                    io_errno(&e),
                    "cannot open /proc/1/ns/net",
                ),
            }
        }
        for (l, fd) in fds {
            targets.push((
                format!("SET_WIPHY_NETNS {phy} NL80211_ATTR_NETNS_FD [{l}]"),
                Target::Fd(fd),
            ));
        }
        let mut gone = false;
        let mut after_gone = Vec::new();
        for (name, target) in targets {
            if gone {
                after_gone.push(name);
                continue;
            }
            match set_wiphy_netns(&mut nl, family, idx, &target) {
                Err(e) => self.refused(
                    name,
                    "wiphy",
                    e,
                    format!("{phy} (arrived after {waited} ms)"),
                ),
                Ok(()) => {
                    let still = wiphys(&mut nl, family)
                        .map(|m| m.contains_key(&idx))
                        .unwrap_or(false);
                    if still {
                        self.contained(
                            name,
                            "wiphy",
                            format!("{phy} stayed in the box's own netns"),
                        );
                    } else {
                        gone = true;
                        self.escaped(name, "wiphy", format!("{phy} left the box"));
                    }
                }
            }
        }
        // Interfaces made on the phy in the box are the box's own — as long as they stay there:
        // the daemon deletes them before the phy goes home (the host checks after release).
        if !gone {
            let mut rt = Nl::open(libc::NETLINK_ROUTE).ok();
            // The box's own interface, given an address of the probe's choosing (the agent's
            // wpa_supplicant may randomise its own as well): it must come home with its old one.
            let own = phy_netdevs(&mut nl, family, idx).unwrap_or_default();
            match (own.first(), rt.as_mut()) {
                (Some((index, name)), Some(rt)) => {
                    let what = format!("RTM_SETLINK {name} address 02:6b:0d:57:11:e5");
                    match set_link_mac(rt, *index, HOSTILE_MAC) {
                        Ok(()) => self.contained(
                            what,
                            "wiphy",
                            "the box's own interface; must not come home with this address",
                        ),
                        Err(e) => self.refused(what, "wiphy", e, ""),
                    }
                }
                _ => self.record(
                    "RTM_SETLINK address of the phy's interface",
                    "wiphy",
                    Outcome::Skipped,
                    "",
                    format!("no interface of {phy} seen ({} found)", own.len()),
                ),
            }
            for (name, iftype) in LEFT_IFACES {
                let what = format!("NEW_INTERFACE {name} (type {iftype}) on {phy}, left there");
                match new_interface(&mut nl, family, idx, name, iftype) {
                    Err(e) => self.refused(what, "wiphy", e, ""),
                    Ok(()) => {
                        let netdev = iftype != 10;
                        let here = !netdev || rt.as_mut().is_some_and(|rt| link_here(rt, name));
                        self.contained(
                            what,
                            "wiphy",
                            if here {
                                "made in the box's own netns; must not come home with the phy"
                            } else {
                                "made, but not seen as a link in the box"
                            },
                        );
                    }
                }
            }
        }
        if !after_gone.is_empty() {
            self.record(
                format!(
                    "SET_WIPHY_NETNS {phy}: the {} other targets",
                    after_gone.len()
                ),
                "wiphy",
                Outcome::Skipped,
                "",
                format!(
                    "skipped: no wiphy (it already left the box): {}",
                    after_gone.join("; ")
                ),
            );
        }
    }

    // ---- positive controls ------------------------------------------------------------------

    fn positives(&mut self) {
        match Nl::open(libc::NETLINK_ROUTE) {
            Ok(mut nl) => {
                let (a, b) = (
                    format!("wibox{}", &self.nonce[..4]),
                    format!("wiboxp{}", &self.nonce[..4]),
                );
                let made = newlink_veth(&mut nl, &a, &b, None);
                let here = made.is_ok() && link_here(&mut nl, &a) && link_here(&mut nl, &b);
                let del = if made.is_ok() {
                    dellink(&mut nl, &a)
                } else {
                    Err(libc::ENOENT)
                };
                let gone = !link_here(&mut nl, &a) && !link_here(&mut nl, &b);
                self.positive(
                    "veth in own netns",
                    made.is_ok() && here && del.is_ok() && gone,
                    format!(
                        "create {a}/{b}: {}; both listed: {here}; delete: {}; both gone: {gone}",
                        made.map(|()| "ok".to_string()).unwrap_or_else(errno_name),
                        del.map(|()| "ok".to_string()).unwrap_or_else(errno_name)
                    ),
                );
            }
            Err(e) => self.positive(
                "veth in own netns",
                false,
                format!("rtnetlink socket: {}", errno_name(e)),
            ),
        }
        for (name, dom, ty, proto) in [
            (
                "raw ICMP socket",
                libc::AF_INET,
                libc::SOCK_RAW,
                libc::IPPROTO_ICMP,
            ),
            (
                "AF_PACKET socket",
                libc::AF_PACKET,
                libc::SOCK_RAW,
                (libc::ETH_P_ALL as u16).to_be() as i32,
            ),
        ] {
            // SAFETY: socket(2), closed at once.
            let fd = unsafe { libc::socket(dom, ty | libc::SOCK_CLOEXEC, proto) };
            let e = last_errno();
            if fd >= 0 {
                // SAFETY: our fd.
                unsafe { libc::close(fd) };
            }
            self.positive(
                name,
                fd >= 0,
                if fd >= 0 {
                    "opened".to_string()
                } else {
                    errno_name(e)
                },
            );
        }
        let r = Nl::open(libc::NETLINK_GENERIC).and_then(|mut nl| genl_family(&mut nl, "nl80211"));
        self.positive(
            "nl80211 generic netlink family",
            r.is_ok(),
            match r {
                Ok(id) => format!("family id {id}"),
                Err(e) => errno_name(e),
            },
        );
    }
}

fn exec_agent(args: &[String]) -> ! {
    // Signals ignored during the attacks stay ignored across execve: restore them.
    // SAFETY: plain signal disposition changes.
    unsafe {
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::signal(s, libc::SIG_DFL);
        }
    }
    let Some(agent) = AGENTS.iter().find(|p| Path::new(p).is_file()) else {
        eprintln!("hostile-probe: no agent found in {AGENTS:?}");
        std::process::exit(127);
    };
    let argv: Vec<CString> = std::iter::once(agent.to_string())
        .chain(args.iter().cloned())
        .map(|a| CString::new(a).expect("no NUL in arguments"))
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let path = cstr(agent);
    // SAFETY: execv(2) with a NULL-terminated argv of live CStrings; the environment is kept.
    unsafe { libc::execv(path.as_ptr(), ptrs.as_ptr()) };
    eprintln!(
        "hostile-probe: execv {agent}: {}",
        std::io::Error::last_os_error()
    );
    std::process::exit(127);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let probe_only = args.first().is_some_and(|a| a == "--probe-only");
    // A hostile agent does not go quietly: survive the daemon's SIGTERM while attacking (its
    // SIGKILL after the grace period still ends us).
    // SAFETY: plain signal disposition changes.
    unsafe {
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::signal(s, libc::SIG_IGN);
        }
    }
    let mut p = Probe::new();
    eprintln!(
        "hostile-probe: pid {} nonce {} args {:?}",
        p.me, p.nonce, args
    );
    let anchors: Vec<String> = p
        .anchors
        .iter()
        .map(|(a, d)| format!("{a}={}:{}", libc::major(*d), libc::minor(*d)))
        .collect();
    p.info.push((
        "host filesystem anchors".into(),
        format!(
            "st_dev of {} (a successful write on one of these is not contained)",
            anchors.join(" ")
        ),
    ));
    p.save();
    let foreign = foreign_pids(p.me);
    p.info.push((
        "visible processes".into(),
        format!(
            "{} outside the probe: {}",
            foreign.len(),
            foreign
                .iter()
                .take(12)
                .map(|x| format!("{x}:{}", comm(*x)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    ));
    type Section = fn(&mut Probe, &[i32]);
    let sections: [(&str, Section); 8] = [
        ("reads", |p, f| p.reads(f)),
        ("writes", |p, _| p.writes()),
        ("host /run", |p, _| p.host_run()),
        ("devices", |p, _| p.devices()),
        ("syscalls", |p, f| p.syscalls(f)),
        ("namespaces", |p, f| p.namespaces(f)),
        ("links", |p, f| p.links(f)),
        ("signals", |p, _| p.signals()),
    ];
    for (label, section) in sections {
        let t = Instant::now();
        section(&mut p, &foreign);
        eprintln!(
            "hostile-probe: {label} done in {} ms",
            t.elapsed().as_millis()
        );
        p.save();
    }
    // After kill(-1) the outside view may have changed: recompute for the wiphy targets.
    let foreign = foreign_pids(p.me);
    let t = Instant::now();
    p.wiphy(&foreign);
    eprintln!(
        "hostile-probe: wiphy done in {} ms",
        t.elapsed().as_millis()
    );
    p.positives();
    p.complete = true;
    p.save();
    eprintln!("{}", p.summary());
    drop(p);
    if probe_only {
        std::process::exit(0);
    }
    exec_agent(&args);
}
