//! The netns box's sandbox: bubblewrap in a user namespace of our own, a seccomp filter, a cgroup.
//!
//! The built-in engine does not build a sandbox by hand: it runs bubblewrap (`bwrap`, Flatpak's
//! sandbox, a kept Debian/Fedora package) and gives it what bubblewrap cannot make for itself
//! when started by root:
//!
//! - **a user namespace** whose root is an unprivileged host uid ([`UserNs::create`]). A forked
//!   child unshares `CLONE_NEWUSER` and waits; the daemon writes `0 UID 1` into its `uid_map` and
//!   `gid_map` and keeps `/proc/CHILD/ns/user` open. bwrap, run by root with `--unshare-user`,
//!   would map box root to host root (its own real uid), so instead the spawned child joins
//!   this namespace (`setns`, `setgroups(0)`, `setresgid/setresuid(0)` in the `pre_exec` hook)
//!   *before* `execve(bwrap)`. Every namespace bwrap then creates (net, mount, pid, ipc, uts,
//!   cgroup) is owned by that user namespace: the box's `CAP_NET_ADMIN`/`CAP_NET_RAW` (and
//!   `CAP_NET_BIND_SERVICE`, for the access point's DHCP and DNS ports) reach only
//!   its own netns, its files are those of an unprivileged uid, and a PID namespace hides every
//!   host process. The daemon, as the namespace's owner, keeps full rights over it (moving the
//!   wiphy in and out, opening `/proc/PID/ns/net`, signalling).
//! - **a seccomp filter** ([`seccomp_programs`], compiled by `seccompiler`, handed to bwrap with
//!   `--add-seccomp-fd`, loaded just before the agent's `execve`): no namespaces, mounts,
//!   ptrace, kexec, bpf, perf, modules, keyrings, io_uring, clock or swap changes. It is the
//!   box's own, so it holds when the daemon runs by hand, outside the unit's `SystemCallFilter=`.
//! - **a cgroup** ([`BoxCgroup`]) with the configured `memory.max` and `pids.max`, when the
//!   daemon's cgroup is delegated to it (the unit's `Delegate=`); the child enters it before
//!   `execve`, so bwrap and everything below it are counted.
//!
//! bwrap itself makes the rest ([`bwrap_args`]): the agent as PID 1 of a new PID namespace
//! (`--as-pid-1`: its death takes every box process with it), a new session, a fresh `/proc`, a
//! private `/dev` (null, zero, full, random, urandom, tty), a read-only tmpfs root holding only
//! `/usr`, the `/lib*`, `/bin`, `/sbin` links or binds, a short allow-list of `/etc`, tmpfs
//! `/run` and `/tmp`, the runtime dir at `/run/wifi-isolate`, `<runtime_dir>/resolv.conf` at
//! `/etc/resolv.conf`, the certificates directory read-only, `no_new_privs`, and only
//! `CAP_NET_ADMIN` + `CAP_NET_RAW` + `CAP_NET_BIND_SERVICE` (in the box's user namespace). No `/sys`, `/home`, `/root`,
//! `/var`, no host `/etc` secrets.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use super::{BOX_CERTS_DIR, BOX_RUNTIME_DIR, EngineError, Result};

/// Where bubblewrap is looked for, in order.
const BWRAP_PATHS: &[&str] = &["/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"];

/// The only parts of the host's `/etc` a box sees (read-only; missing ones are skipped): the
/// dynamic loader's cache, name-service basics for the agent's resolver, the CA store, time zone.
const ETC_ALLOW: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/gai.conf",
    "/etc/protocols",
    "/etc/services",
    "/etc/localtime",
    "/etc/alternatives",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/ca-certificates",
    "/etc/pki/tls/certs",
    "/etc/pki/ca-trust/extracted",
];

/// Top-level entries of a usual root that hold programs and libraries.
const ROOT_PROGRAM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// The bwrap binary, or a clear error saying how to get it.
pub fn find_bwrap() -> Result<PathBuf> {
    BWRAP_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            EngineError::Spawn(
                "bubblewrap (bwrap) is not installed: the netns box runs in it \
                 (apt install bubblewrap / dnf install bubblewrap)"
                    .into(),
            )
        })
}

/// What the box gets to see.
#[derive(Debug, Clone)]
pub struct Layout<'a> {
    /// Host runtime dir, bound read-write at [`BOX_RUNTIME_DIR`].
    pub runtime_dir: &'a Path,
    /// Host file bound over the box's `/etc/resolv.conf`.
    pub resolv_conf: &'a Path,
    /// Host directory bound read-only at [`BOX_CERTS_DIR`].
    pub certs_dir: Option<&'a Path>,
    /// The agent binary (bound read-only at its own path when it is not under a program dir).
    pub agent: &'a Path,
    /// The fds bwrap reads its seccomp programs from.
    pub seccomp_fds: &'a [RawFd],
    /// The fd bwrap writes `{"child-pid": N}` to.
    pub info_fd: RawFd,
}

/// bubblewrap's arguments up to and including `--` (the agent and its arguments follow).
pub fn bwrap_args(l: &Layout<'_>) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |xs: &[&std::ffi::OsStr]| a.extend(xs.iter().map(|x| x.to_os_string()));
    for flag in [
        // A user namespace of bwrap's own below ours (0 -> 0): bwrap then drops the bounding
        // set to the two capabilities; the netns and the rest are owned by it.
        "--unshare-user",
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup",
        "--as-pid-1",
        "--new-session",
        // Not --die-with-parent: the box outlives a crashed daemon (a restarted one adopts it
        // through the state file, the unit's KillMode= ends it on stop); PDEATHSIG would also
        // fire when the spawning *thread* exits.
        "--cap-drop",
        "ALL",
        "--cap-add",
        "CAP_NET_ADMIN",
        "--cap-add",
        "CAP_NET_RAW",
        // Ports below 1024 in the box's own netns: the access point's DHCP server (udhcpd,
        // :67) and DNS answer (:53), and udhcpc's renewal socket (:68). The check is against
        // the netns's owner — the box's user namespace — so it reaches no other netns.
        "--cap-add",
        "CAP_NET_BIND_SERVICE",
    ] {
        push(&[flag.as_ref()]);
    }
    for dir in ROOT_PROGRAM_DIRS {
        let p = Path::new(dir);
        match std::fs::symlink_metadata(p) {
            Ok(md) if md.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(p) {
                    push(&["--symlink".as_ref(), target.as_os_str(), p.as_os_str()]);
                }
            }
            Ok(md) if md.is_dir() => push(&["--ro-bind".as_ref(), p.as_os_str(), p.as_os_str()]),
            _ => {}
        }
    }
    for e in ETC_ALLOW {
        push(&["--ro-bind-try".as_ref(), e.as_ref(), e.as_ref()]);
    }
    let agent_covered = ROOT_PROGRAM_DIRS
        .iter()
        .any(|d| l.agent.starts_with(d) && Path::new(d).is_dir());
    if !agent_covered {
        push(&[
            "--ro-bind".as_ref(),
            l.agent.as_os_str(),
            l.agent.as_os_str(),
        ]);
    }
    push(&["--proc".as_ref(), "/proc".as_ref()]);
    push(&["--dev".as_ref(), "/dev".as_ref()]);
    push(&["--tmpfs".as_ref(), "/run".as_ref()]);
    push(&["--tmpfs".as_ref(), "/tmp".as_ref()]);
    push(&[
        "--bind".as_ref(),
        l.runtime_dir.as_os_str(),
        BOX_RUNTIME_DIR.as_ref(),
    ]);
    push(&[
        "--bind".as_ref(),
        l.resolv_conf.as_os_str(),
        "/etc/resolv.conf".as_ref(),
    ]);
    if let Some(c) = l.certs_dir {
        push(&["--ro-bind".as_ref(), c.as_os_str(), BOX_CERTS_DIR.as_ref()]);
    }
    // Everything above is in place: the root tmpfs itself becomes read-only.
    push(&["--remount-ro".as_ref(), "/".as_ref()]);
    push(&["--chdir".as_ref(), "/".as_ref()]);
    let fds: Vec<String> = l.seccomp_fds.iter().map(|fd| fd.to_string()).collect();
    for fd in &fds {
        push(&["--add-seccomp-fd".as_ref(), fd.as_ref()]);
    }
    let info = l.info_fd.to_string();
    push(&["--info-fd".as_ref(), info.as_ref()]);
    push(&["--".as_ref()]);
    a
}

/// A user namespace whose root (uid and gid 0) is host uid/gid `uid`, held by an open fd.
#[derive(Debug)]
pub struct UserNs {
    fd: OwnedFd,
}

impl UserNs {
    /// Fork a child that unshares a user namespace, map its root to `uid`, keep a handle on it.
    /// Blocking (a few ms): call it from `spawn_blocking`.
    pub fn create(uid: u32) -> Result<UserNs> {
        let fail = |what: &str, e: io::Error| EngineError::io(format!("user namespace: {what}"), e);
        let (ready_r, ready_w) = pipe().map_err(|e| fail("pipe", e))?;
        let (go_r, go_w) = pipe().map_err(|e| fail("pipe", e))?;
        // SAFETY: the child only makes async-signal-safe system calls and `_exit`s.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(fail("fork", io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY (child): raw syscalls on fds inherited from the parent, then _exit.
            unsafe {
                libc::close(go_w.as_raw_fd());
                libc::close(ready_r.as_raw_fd());
                let ok: u8 = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                    b'1'
                } else {
                    b'0'
                };
                libc::write(ready_w.as_raw_fd(), (&ok as *const u8).cast(), 1);
                let mut b = 0u8;
                // Wait until the parent has mapped and opened the namespace (EOF).
                libc::read(go_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
                libc::_exit(0);
            }
        }
        drop(ready_w);
        drop(go_r);
        let result = (|| {
            let mut b = [0u8; 1];
            std::fs::File::from(ready_r)
                .read_exact(&mut b)
                .map_err(|e| fail("child", e))?;
            if b[0] != b'1' {
                return Err(EngineError::Spawn(
                    "cannot create a user namespace for the box (kernel without user namespaces, \
                     user.max_user_namespaces = 0, or the unit's RestrictNamespaces=)"
                        .into(),
                ));
            }
            let map = format!("0 {uid} 1\n");
            for f in ["uid_map", "gid_map"] {
                std::fs::write(format!("/proc/{pid}/{f}"), &map)
                    .map_err(|e| fail(&format!("writing {f} (needs CAP_SETUID/CAP_SETGID)"), e))?;
            }
            let fd = std::fs::File::open(format!("/proc/{pid}/ns/user"))
                .map_err(|e| fail("opening it", e))?;
            Ok(UserNs { fd: fd.into() })
        })();
        drop(go_w);
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        result
    }

    /// The namespace's fd.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Run in the spawned child before `execve(bwrap)`: enter the cgroup, then become root of the
/// user namespace `userns` (no supplementary groups), and let `keep` fds survive the `execve`.
/// Only raw system calls (async-signal-safe).
pub fn enter_in_child(
    userns: RawFd,
    cgroup_procs: Option<RawFd>,
    keep: &[RawFd],
) -> io::Result<()> {
    // SAFETY (whole function): system calls on fds and buffers owned by the caller.
    unsafe {
        if let Some(fd) = cgroup_procs {
            step(
                b"enter the box cgroup",
                libc::write(fd, b"0".as_ptr().cast(), 1) as i32,
            )?;
        }
        // bwrap mounts a fresh /proc from inside a user namespace, which the kernel allows only
        // while a fully visible proc is mounted in its mount namespace; the unit's /proc is not
        // (ProtectKernelTunables= and ProtectKernelLogs= cover parts of it, and newer kernels
        // then refuse: "Can't mount proc"). So, still root of the host here: a mount namespace
        // of this child's own, nothing propagating back, and a plain proc on /proc in it.
        // Best effort: where it fails, bwrap says so itself.
        if libc::unshare(libc::CLONE_NEWNS) == 0
            && libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_SLAVE,
                std::ptr::null(),
            ) == 0
        {
            libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            );
        }
        step(
            b"enter the user namespace",
            libc::setns(userns, libc::CLONE_NEWUSER),
        )?;
        step(
            b"drop supplementary groups",
            libc::setgroups(0, std::ptr::null()),
        )?;
        step(b"setresgid", libc::setresgid(0, 0, 0))?;
        step(b"setresuid", libc::setresuid(0, 0, 0))?;
        for &fd in keep {
            step(b"pass an fd to bwrap", libc::fcntl(fd, libc::F_SETFD, 0))?;
        }
    }
    Ok(())
}

/// On failure: name the step on stderr (async-signal-safe `write`) and return the errno.
fn step(what: &[u8], rc: libc::c_int) -> io::Result<()> {
    if rc >= 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    let prefix = b"wifi-isolate netns box: failed to ";
    // SAFETY: write(2) on stderr with valid buffers.
    unsafe {
        libc::write(2, prefix.as_ptr().cast(), prefix.len());
        libc::write(2, what.as_ptr().cast(), what.len());
        libc::write(2, b"\n".as_ptr().cast(), 1);
    }
    Err(err)
}

/// A pipe, both ends close-on-exec.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

/// System calls the box may never make: they fail with `EPERM`.
const DENIED: &[i64] = &[
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_kcmp,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_syslog,
    libc::SYS_mknod,
    libc::SYS_mknodat,
    libc::SYS_vhangup,
    libc::SYS_uselib,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
];

/// `clone(2)` flags that make a namespace: a `clone` with any of them fails with `EPERM`.
const CLONE_NS_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWCGROUP,
];

/// The box's seccomp programs, as bwrap reads them (`struct sock_filter` arrays): the deny
/// list above (`EPERM`, also `clone` with a namespace flag), and `clone3` → `ENOSYS` (its flags
/// live in memory a filter cannot read; the C library then falls back to `clone`). Compiled
/// once per process: every box start uses the same programs.
pub fn seccomp_programs() -> Result<&'static [Vec<u8>]> {
    static PROGRAMS: std::sync::OnceLock<std::result::Result<Vec<Vec<u8>>, String>> =
        std::sync::OnceLock::new();
    PROGRAMS
        .get_or_init(compile_seccomp)
        .as_deref()
        .map_err(|e| EngineError::Spawn(e.clone()))
}

fn compile_seccomp() -> std::result::Result<Vec<Vec<u8>>, String> {
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    let bad = |e: &dyn std::fmt::Display| format!("seccomp filter: {e}");
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| bad(&e))?;
    let mut rules: std::collections::BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&nr| (nr, Vec::new())).collect();
    let mut clone_rules = Vec::new();
    for &flag in CLONE_NS_FLAGS {
        let flag = flag as u64;
        let cond = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )
        .map_err(|e| bad(&e))?;
        clone_rules.push(SeccompRule::new(vec![cond]).map_err(|e| bad(&e))?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| bad(&e))?;
    let clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|e| bad(&e))?;
    [deny, clone3]
        .into_iter()
        .map(|f| {
            let prog: seccompiler::BpfProgram = f.try_into().map_err(|e| bad(&e))?;
            let mut bytes = Vec::with_capacity(prog.len() * 8);
            for ins in prog {
                bytes.extend_from_slice(&ins.code.to_ne_bytes());
                bytes.push(ins.jt);
                bytes.push(ins.jf);
                bytes.extend_from_slice(&ins.k.to_ne_bytes());
            }
            Ok(bytes)
        })
        .collect()
}

/// A sealed in-memory file holding `bytes`, positioned at its start (what bwrap reads).
pub fn memfd_with(name: &std::ffi::CStr, bytes: &[u8]) -> io::Result<OwnedFd> {
    // SAFETY: memfd_create with a valid name; we own the fd.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd from the kernel.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    f.write_all(bytes)?;
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0))?;
    Ok(f.into())
}

/// The box's cgroup: `<daemon's delegated cgroup>/box`, with the daemon itself moved to
/// `<…>/supervisor` (cgroup v2 lets only leaves hold processes).
#[derive(Debug)]
pub struct BoxCgroup {
    dir: PathBuf,
    procs: OwnedFd,
}

/// The cgroup2 mount.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

impl BoxCgroup {
    /// Set up the box cgroup with the limits, if the daemon's cgroup is delegated to it.
    /// `Ok(None)`: not delegated (run by hand, outside the unit): the caller says so.
    pub fn create(memory_bytes: u64, pids_limit: i64) -> Result<Option<BoxCgroup>> {
        let Some(base) = delegated_base() else {
            return Ok(None);
        };
        let io = |what: String, e: io::Error| EngineError::io(what, e);
        let sup = base.join("supervisor");
        std::fs::create_dir_all(&sup).map_err(|e| io(format!("creating {}", sup.display()), e))?;
        std::fs::write(sup.join("cgroup.procs"), std::process::id().to_string())
            .map_err(|e| io(format!("moving the daemon into {}", sup.display()), e))?;
        let ctl = base.join("cgroup.subtree_control");
        std::fs::write(&ctl, "+memory +pids")
            .map_err(|e| io(format!("enabling memory and pids in {}", ctl.display()), e))?;
        let dir = base.join("box");
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(format!("creating {}", dir.display()), e)),
        }
        for (file, value) in [
            ("memory.max", memory_bytes.to_string()),
            ("memory.swap.max", "0".to_string()),
            ("pids.max", pids_limit.to_string()),
        ] {
            let p = dir.join(file);
            if let Err(e) = std::fs::write(&p, &value) {
                // Swap accounting may be off; the two limits that matter may not fail.
                if file != "memory.swap.max" {
                    return Err(io(format!("writing {}", p.display()), e));
                }
            }
        }
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .map_err(|e| io(format!("opening {}/cgroup.procs", dir.display()), e))?;
        Ok(Some(BoxCgroup {
            dir,
            procs: procs.into(),
        }))
    }

    /// The `cgroup.procs` fd the child writes itself into.
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// The cgroup's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The daemon's own cgroup (or its parent, once the daemon moved into `supervisor`) if systemd
/// delegated it (`trusted.delegate` / `user.delegate` xattr, systemd ≥ 251).
fn delegated_base() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mut base = Path::new(CGROUP_ROOT).join(rel.trim_start_matches('/'));
    if base.file_name().is_some_and(|n| n == "supervisor") {
        base.pop();
    }
    let delegated = ["trusted.delegate", "user.delegate"]
        .iter()
        .any(|x| has_xattr(&base, x));
    delegated.then_some(base)
}

fn has_xattr(path: &Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(p), Ok(n)) = (
        std::ffi::CString::new(path.as_os_str().as_bytes()),
        std::ffi::CString::new(name),
    ) else {
        return false;
    };
    let mut buf = [0u8; 8];
    // SAFETY: getxattr with valid C strings and a buffer of the given size.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    r > 0 && buf[0] == b'1'
}

/// Parse bwrap's `--info-fd` JSON: the box's init (the agent) as the host sees it.
pub fn parse_child_pid(info: &str) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(info).ok()?;
    v.get("child-pid")?.as_u64()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_pid_from_bwrap_info() {
        let info = "{\n    \"child-pid\": 4242,\n    \"net-namespace\": 4026532281\n}\n";
        assert_eq!(parse_child_pid(info), Some(4242));
        assert_eq!(parse_child_pid(""), None);
        assert_eq!(parse_child_pid("{\"child-pid\": -1}"), None);
    }

    #[test]
    fn args_hide_the_host() {
        let fds = [7, 8];
        let l = Layout {
            runtime_dir: Path::new("/run/wifi-isolate/box/wlan0"),
            resolv_conf: Path::new("/run/wifi-isolate/box/wlan0/resolv.conf"),
            certs_dir: Some(Path::new("/etc/wifi-isolate/certs/wlan0")),
            agent: Path::new("/opt/x/wifi-isolate-agent"),
            seccomp_fds: &fds,
            info_fd: 9,
        };
        let a: Vec<String> = bwrap_args(&l)
            .into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        let joined = a.join(" ");
        for want in [
            "--unshare-net",
            "--unshare-pid",
            "--as-pid-1",
            "--cap-drop ALL",
            "--proc /proc",
            "--dev /dev",
            "--bind /run/wifi-isolate/box/wlan0 /run/wifi-isolate",
            "--ro-bind /etc/wifi-isolate/certs/wlan0 /etc/wifi-isolate/certs",
            "--ro-bind /opt/x/wifi-isolate-agent /opt/x/wifi-isolate-agent",
            "--add-seccomp-fd 7 --add-seccomp-fd 8",
            "--info-fd 9",
            "--remount-ro /",
        ] {
            assert!(joined.contains(want), "missing {want:?} in {joined}");
        }
        assert_eq!(a.last().map(String::as_str), Some("--"));
        // Nothing that holds host secrets or state.
        for never in [
            "/etc/shadow",
            "/home",
            "/root",
            "/var",
            "/sys",
            "/etc/wifi-isolate/token",
        ] {
            assert!(
                !a.iter().any(|x| x == never),
                "{never} must not be in the box: {joined}"
            );
        }
        assert!(!a.iter().any(|x| x == "/etc"), "no whole /etc: {joined}");
    }

    #[test]
    fn seccomp_programs_compile() {
        let progs = seccomp_programs().unwrap();
        assert_eq!(progs.len(), 2);
        for p in progs {
            assert!(!p.is_empty() && p.len() % 8 == 0);
        }
    }
}
