//! Where the endpoint listens: systemd's sockets or our own, and the checks they must pass.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::{TcpListener, UnixListener};

/// A listener to serve.
pub enum Listener {
    /// A Unix stream socket (trusted by its permissions).
    Unix(UnixListener),
    /// A TCP socket (bearer token required).
    Tcp(TcpListener),
}

/// Where listeners come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenSpec {
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `tcp:ADDR:PORT` (loopback only).
    Tcp(SocketAddr),
}

impl std::str::FromStr for ListenSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            if !p.starts_with('/') {
                return Err(format!("unix socket path must be absolute: {p:?}"));
            }
            return Ok(ListenSpec::Unix(p.into()));
        }
        if let Some(a) = s.strip_prefix("tcp:") {
            let addr: SocketAddr = a
                .parse()
                .map_err(|_| format!("tcp listener must be ADDR:PORT, got {a:?}"))?;
            if !addr.ip().is_loopback() {
                return Err(format!(
                    "tcp listener {addr} is not loopback: the MCP endpoint is never published beyond this machine"
                ));
            }
            return Ok(ListenSpec::Tcp(addr));
        }
        Err(format!(
            "listener must be unix:PATH or tcp:127.0.0.1:PORT, got {s:?}"
        ))
    }
}

/// Listeners passed by systemd (`LISTEN_FDS`), with their `FileDescriptorName=`s.
pub fn from_systemd() -> std::io::Result<Vec<(String, Listener)>> {
    use std::os::fd::FromRawFd;
    // Names first: listenfd clears the environment and does not read LISTEN_FDNAMES.
    let named: Vec<(i32, String)> = sd_notify::listen_fds_with_names()
        .map(|it| it.collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (fd, name) in named {
        let sock = unsafe { socket2::Socket::from_raw_fd(fd) };
        sock.set_nonblocking(true)?;
        if sock.local_addr()?.domain() == socket2::Domain::UNIX {
            let std_l: std::os::unix::net::UnixListener = sock.into();
            out.push((name, Listener::Unix(UnixListener::from_std(std_l)?)));
        } else {
            let std_l: std::net::TcpListener = sock.into();
            out.push((name, Listener::Tcp(TcpListener::from_std(std_l)?)));
        }
    }
    Ok(out)
}

/// Bind our own listener (manual runs and tests). Unix sockets get mode 0660 and, when the
/// `wifi-isolate` group exists, that group.
pub fn bind(spec: &ListenSpec) -> std::io::Result<Listener> {
    match spec {
        ListenSpec::Unix(p) => {
            let l = crate::unix_socket::bind_fresh(p, 0o660)?;
            if let Ok(Some(g)) = nix::unistd::Group::from_name("wifi-isolate") {
                let _ = nix::unistd::chown(p, None, Some(g.gid));
            }
            Ok(Listener::Unix(l))
        }
        ListenSpec::Tcp(a) => {
            let s = socket2::Socket::new(
                socket2::Domain::for_address(*a),
                socket2::Type::STREAM,
                None,
            )?;
            s.set_reuse_address(true)?;
            s.set_nonblocking(true)?;
            s.bind(&(*a).into())?;
            s.listen(1024)?;
            Ok(Listener::Tcp(TcpListener::from_std(s.into())?))
        }
    }
}

/// Read the bearer token: the systemd credential `token` wins, else `file` (which must not be
/// readable by group or others). Empty or missing → `None`.
pub fn load_token(file: &std::path::Path) -> Result<Option<Arc<str>>, String> {
    let cred = std::env::var_os("CREDENTIALS_DIRECTORY").map(|d| PathBuf::from(d).join("token"));
    let (path, check_mode) = match cred {
        Some(c) if c.is_file() => (c, false),
        _ => (file.to_path_buf(), true),
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if check_mode && (meta.permissions().mode() & 0o077 != 0 || meta.uid() != 0) {
        return Err(format!(
            "{} must be owned by root and not readable by others: chown root: {0} && chmod 600 {0}",
            path.display()
        ));
    }
    let t = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let t = t.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.len() < 16 {
        return Err(format!(
            "{}: the token must be at least 16 characters",
            path.display()
        ));
    }
    Ok(Some(Arc::from(t)))
}

/// Is `ip` this machine's loopback (`127.0.0.0/8`, `::1`, or `::ffff:127.x.y.z`)?
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Every TCP listener — ours or passed by systemd (`ListenStream=` in a drop-in) — must be bound
/// to a loopback address: the endpoint is never published beyond this machine. The error names
/// the first offending address; `run` exits 78 with it.
pub fn require_loopback(listeners: &[Listener]) -> Result<(), String> {
    for l in listeners {
        if let Listener::Tcp(t) = l {
            let addr = t
                .local_addr()
                .map_err(|e| format!("a TCP listener's address: {e}"))?;
            if !is_loopback(addr.ip()) {
                return Err(format!(
                    "TCP listener {addr} is not loopback: the MCP endpoint is never published beyond \
                     this machine (use ListenStream=127.0.0.1:PORT or [::1]:PORT)"
                ));
            }
        }
    }
    Ok(())
}

/// Unix sockets we bound ourselves are removed when we exit (systemd's are systemd's).
pub struct OwnSockets(Vec<PathBuf>);

impl Drop for OwnSockets {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The endpoint's listeners as `run` opened them.
pub struct Opened {
    /// Systemd's, or ours.
    pub listeners: Vec<Listener>,
    /// They came from systemd (socket activation or a socket unit).
    pub from_systemd: bool,
    /// A client was already waiting on one of systemd's: that connection is what started us
    /// (a `systemctl start` finds them empty).
    pub client_waiting: bool,
    /// The Unix sockets we bound ourselves; dropping it removes them.
    pub own: OwnSockets,
}

/// The listeners: systemd's if it passed any, else ours — `extra` if given, else `default`
/// (none when both are empty: `--no-listen`).
pub fn open_listeners(
    iface: &str,
    default: Option<PathBuf>,
    extra: &[ListenSpec],
) -> Result<Opened, String> {
    let mut own = OwnSockets(Vec::new());
    let from_systemd = from_systemd().map_err(|e| format!("listeners from systemd: {e}"))?;
    if !from_systemd.is_empty() {
        for (name, _) in &from_systemd {
            tracing::info!(IFACE = %iface, name = %name, "listener from systemd");
        }
        let listeners: Vec<Listener> = from_systemd.into_iter().map(|(_, l)| l).collect();
        return Ok(Opened {
            client_waiting: client_waiting(&listeners),
            listeners,
            from_systemd: true,
            own,
        });
    }
    let specs = if extra.is_empty() {
        default.map(ListenSpec::Unix).into_iter().collect()
    } else {
        extra.to_vec()
    };
    let listeners = specs
        .iter()
        .map(|s| {
            if let ListenSpec::Unix(p) = s {
                own.0.push(p.clone());
            }
            bind(s).map_err(|e| format!("binding {s:?}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Opened {
        listeners,
        from_systemd: false,
        client_waiting: false,
        own,
    })
}

/// Whether a client is waiting on one of the listeners systemd passed: that connection is what
/// started us (socket activation). A `systemctl start` finds them empty.
fn client_waiting(listeners: &[Listener]) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds: Vec<PollFd> = listeners
        .iter()
        .map(|l| match l {
            Listener::Unix(u) => PollFd::new(u.as_fd(), PollFlags::POLLIN),
            Listener::Tcp(t) => PollFd::new(t.as_fd(), PollFlags::POLLIN),
        })
        .collect();
    poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
}
