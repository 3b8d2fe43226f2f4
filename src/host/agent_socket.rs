//! The one way the host reaches a box's agent socket: checked before use, never followed.
//!
//! The box can write its runtime directory (`<root>/box/INSTANCE`), so whatever sits at
//! `mcp.sock` is box-controlled. A hostile box could plant a symlink there pointing at a host
//! socket (D-Bus, systemd, the engine's API) and have the root daemon, `status` or the proxy talk
//! to it. [`AgentSocket`] is therefore the host's one agent client: the proxy's upstream
//! connections ([`AgentSocket::connect`]), the daemon's readiness and liveness probe
//! ([`AgentSocket::answers`]) and `status`'s MCP call ([`AgentSocket::wifi_status`]) all go
//! through it:
//!
//! 1. open the path with `O_PATH | O_NOFOLLOW` — a symlink is opened as itself, not followed;
//! 2. `fstat` that fd: it must be a socket (a symlink or anything else is refused, with what it
//!    was) owned by the box's uid;
//! 3. connect through `/proc/self/fd/N`, which reaches exactly the inode checked in 2 (no second
//!    path lookup an attacker could race);
//! 4. `SO_PEERCRED` of the connection: the process that listens must run as the box's uid —
//!    for a netns box an unprivileged host uid (its user namespace maps box root there), so
//!    the host's own root is refused; `0` only for a rootful container.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, SFlag, fstat};
use tokio::net::UnixStream;

/// Why an agent socket was not used.
#[derive(Debug, thiserror::Error)]
pub enum AgentSocketError {
    /// Nothing there (yet): the agent has not bound its socket.
    #[error("the agent socket {} does not exist (yet)", path.display())]
    Missing {
        /// The socket path.
        path: PathBuf,
    },
    /// A symlink: refused, whatever it points to.
    #[error(
        "refusing the agent socket {}: it is a symlink (to {target}), not a socket; the box may \
         not redirect the host",
        path.display()
    )]
    Symlink {
        /// The socket path.
        path: PathBuf,
        /// Where the link points (shortened, escaped: box-controlled text).
        target: String,
    },
    /// Something other than a socket.
    #[error("refusing the agent socket {}: it is a {kind}, not a socket", path.display())]
    NotSocket {
        /// The socket path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// A socket, but not the box's.
    #[error(
        "refusing the agent socket {}: it belongs to uid {found}, not to the box's uid {expected}",
        path.display()
    )]
    Owner {
        /// The socket path.
        path: PathBuf,
        /// Its owner.
        found: u32,
        /// The box's uid.
        expected: u32,
    },
    /// The process listening on it is not the box's.
    #[error(
        "refusing the agent socket {}: the process listening on it runs as uid {found}, not as \
         the box's uid {expected}",
        path.display()
    )]
    Peer {
        /// The socket path.
        path: PathBuf,
        /// The peer's uid (`SO_PEERCRED`).
        found: u32,
        /// The box's uid.
        expected: u32,
    },
    /// It passed the checks but no connection (or no HTTP answer) came.
    #[error("the agent socket {} does not answer: {cause}", path.display())]
    NoAnswer {
        /// The socket path.
        path: PathBuf,
        /// What failed.
        cause: String,
    },
}

impl AgentSocketError {
    /// A refusal (symlink, not a socket, wrong owner or peer): not something waiting cures.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Symlink { .. } | Self::NotSocket { .. } | Self::Owner { .. } | Self::Peer { .. }
        )
    }
}

/// A checked agent socket: an `O_PATH` handle on the socket inode that passed the checks.
#[derive(Debug)]
pub struct AgentSocket {
    fd: OwnedFd,
    path: PathBuf,
    uid: u32,
}

impl AgentSocket {
    /// Open `path` without following it and check it is a socket owned by `uid` (the box's
    /// host uid: `BoxHandle::uid`, persisted as `Isolation::box_uid`).
    pub fn open(path: &Path, uid: u32) -> Result<Self, AgentSocketError> {
        let fd = open(
            path,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            nix::errno::Errno::ENOENT => AgentSocketError::Missing { path: path.into() },
            e => AgentSocketError::NoAnswer {
                path: path.into(),
                cause: format!("open: {e}"),
            },
        })?;
        let st = fstat(&fd).map_err(|e| AgentSocketError::NoAnswer {
            path: path.into(),
            cause: format!("fstat: {e}"),
        })?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFLNK {
            let target = nix::fcntl::readlinkat(&fd, "")
                .map(|t| crate::validate::shorten(&format!("{t:?}")))
                .unwrap_or_else(|_| "?".into());
            return Err(AgentSocketError::Symlink {
                path: path.into(),
                target,
            });
        }
        if kind != SFlag::S_IFSOCK {
            let kind = match kind {
                SFlag::S_IFREG => "regular file",
                SFlag::S_IFDIR => "directory",
                SFlag::S_IFIFO => "FIFO",
                SFlag::S_IFCHR => "character device",
                SFlag::S_IFBLK => "block device",
                _ => "file of unknown type",
            };
            return Err(AgentSocketError::NotSocket {
                path: path.into(),
                kind,
            });
        }
        if st.st_uid != uid {
            return Err(AgentSocketError::Owner {
                path: path.into(),
                found: st.st_uid,
                expected: uid,
            });
        }
        Ok(Self {
            fd,
            path: path.into(),
            uid,
        })
    }

    /// The path to connect to that reaches exactly the checked socket (`/proc/self/fd/N`),
    /// valid while `self` lives. For clients that take a path (rmcp's Unix-socket client);
    /// check the peer first with [`AgentSocket::connect`].
    pub fn via(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// The socket's path as the caller gave it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Connect to the checked socket and check the listener's credentials.
    pub async fn connect(&self) -> Result<UnixStream, AgentSocketError> {
        let stream =
            UnixStream::connect(self.via())
                .await
                .map_err(|e| AgentSocketError::NoAnswer {
                    path: self.path.clone(),
                    cause: format!("connect: {e}"),
                })?;
        let cred = stream.peer_cred().map_err(|e| AgentSocketError::NoAnswer {
            path: self.path.clone(),
            cause: format!("SO_PEERCRED: {e}"),
        })?;
        if cred.uid() != self.uid {
            return Err(AgentSocketError::Peer {
                path: self.path.clone(),
                found: cred.uid(),
                expected: self.uid,
            });
        }
        Ok(stream)
    }

    /// The readiness probe: connect (checked) and see an HTTP answer to `GET /mcp`.
    pub async fn answers(&self) -> Result<(), AgentSocketError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let no = |cause: String| AgentSocketError::NoAnswer {
            path: self.path.clone(),
            cause,
        };
        let mut s = tokio::time::timeout(Duration::from_secs(2), self.connect())
            .await
            .map_err(|_| no("connect timed out".into()))??;
        let req = b"GET /mcp HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n";
        s.write_all(req)
            .await
            .map_err(|e| no(format!("write: {e}")))?;
        let mut buf = [0u8; 12];
        match tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf)).await {
            Ok(Ok(_)) if buf.starts_with(b"HTTP/1.1 ") => Ok(()),
            Ok(Ok(_)) => Err(no("not an HTTP/1.1 answer".into())),
            Ok(Err(e)) => Err(no(format!("read: {e}"))),
            Err(_) => Err(no("no answer within 2 s".into())),
        }
    }

    /// The agent's `wifi_status` (an MCP session through the pinned fd, so every connection the
    /// client makes reaches the checked socket), or `None` if it does not answer within 5 s.
    pub async fn wifi_status(&self) -> Option<serde_json::Value> {
        use rmcp::ServiceExt;
        use rmcp::model::CallToolRequestParams;
        use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
        use rmcp::transport::{StreamableHttpClientTransport, UnixSocketHttpClient};
        let http = UnixSocketHttpClient::new(&self.via().to_string_lossy(), "http://localhost/mcp");
        let transport = StreamableHttpClientTransport::with_client(
            http,
            StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp"),
        );
        let fut = async {
            let client = ().serve(transport).await.ok()?;
            let r = client
                .call_tool(CallToolRequestParams::new("wifi_status"))
                .await
                .ok()?;
            let _ = client.cancel().await;
            r.structured_content
        };
        tokio::time::timeout(Duration::from_secs(5), fut)
            .await
            .ok()
            .flatten()
    }
}

/// Open, check and connect in one go: what the proxy does for each new upstream connection.
pub async fn connect(path: &Path, uid: u32) -> Result<UnixStream, AgentSocketError> {
    AgentSocket::open(path, uid)?.connect().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> u32 {
        nix::unistd::getuid().as_raw()
    }

    /// A real listening socket that answers one HTTP request per connection.
    fn serve(path: &Path) -> tokio::task::JoinHandle<()> {
        let l = tokio::net::UnixListener::bind(path).unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut s, _)) = l.accept().await {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
            }
        })
    }

    #[tokio::test]
    async fn a_real_socket_of_the_box_uid_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("mcp.sock");
        let _srv = serve(&sock);
        let s = AgentSocket::open(&sock, me()).unwrap();
        s.answers().await.unwrap();
        connect(&sock, me()).await.unwrap();
        // A path-taking client reaches the same socket through the pinned fd.
        std::os::unix::net::UnixStream::connect(s.via()).unwrap();
    }

    /// The attack: the box replaces its agent socket with a symlink to another (host) socket.
    /// The host must refuse it — and say so — not connect to the target.
    #[tokio::test]
    async fn a_planted_symlink_to_another_socket_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let host_sock = dir.path().join("host-only.sock");
        let _srv = serve(&host_sock);
        let box_dir = dir.path().join("box").join("wlan0");
        std::fs::create_dir_all(&box_dir).unwrap();
        let planted = box_dir.join("mcp.sock");
        std::os::unix::fs::symlink(&host_sock, &planted).unwrap();
        // The target is a live socket of the right owner: following the link would "work".
        std::os::unix::net::UnixStream::connect(&planted).unwrap();

        let e = AgentSocket::open(&planted, me()).unwrap_err();
        assert!(matches!(e, AgentSocketError::Symlink { .. }), "{e:?}");
        assert!(e.is_refusal());
        let msg = e.to_string();
        assert!(
            msg.contains("symlink") && msg.contains("host-only.sock"),
            "{msg}"
        );
        assert!(matches!(
            connect(&planted, me()).await,
            Err(AgentSocketError::Symlink { .. })
        ));
        // A symlink to a symlink, and a dangling one, are refused the same way.
        let dangling = box_dir.join("dangling.sock");
        std::os::unix::fs::symlink("/nonexistent/x.sock", &dangling).unwrap();
        assert!(matches!(
            AgentSocket::open(&dangling, me()),
            Err(AgentSocketError::Symlink { .. })
        ));
    }

    #[tokio::test]
    async fn not_a_socket_missing_and_wrong_owner_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mcp.sock");
        std::fs::write(&file, b"").unwrap();
        let e = AgentSocket::open(&file, me()).unwrap_err();
        assert!(
            matches!(
                e,
                AgentSocketError::NotSocket {
                    kind: "regular file",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.is_refusal());
        let e = AgentSocket::open(dir.path(), me()).unwrap_err();
        assert!(matches!(
            e,
            AgentSocketError::NotSocket {
                kind: "directory",
                ..
            }
        ));

        let missing = dir.path().join("none.sock");
        let e = AgentSocket::open(&missing, me()).unwrap_err();
        assert!(matches!(e, AgentSocketError::Missing { .. }), "{e:?}");
        assert!(!e.is_refusal());

        let sock = dir.path().join("real.sock");
        let _srv = serve(&sock);
        let other = me().wrapping_add(1);
        let e = AgentSocket::open(&sock, other).unwrap_err();
        assert!(
            matches!(e, AgentSocketError::Owner { found, expected, .. } if found == me() && expected == other),
            "{e:?}"
        );
        assert!(e.is_refusal());
    }

    /// A socket file owned by the box's uid but listened on by someone else (here: us, as the
    /// file is chowned to the box uid afterwards) is refused by its peer credentials.
    #[tokio::test]
    async fn a_foreign_listener_is_refused_by_its_peer_credentials() {
        if !nix::unistd::getuid().is_root() {
            panic!("this test needs root (chown to a box uid)");
        }
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("mcp.sock");
        let _srv = serve(&sock);
        let box_uid = 1_878_982_656;
        nix::unistd::chown(&sock, Some(nix::unistd::Uid::from_raw(box_uid)), None).unwrap();
        let s = AgentSocket::open(&sock, box_uid).unwrap();
        let e = s.connect().await.unwrap_err();
        assert!(
            matches!(
                e,
                AgentSocketError::Peer {
                    found: 0,
                    expected: 1_878_982_656,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("runs as uid 0"), "{e}");
        assert!(matches!(
            s.answers().await,
            Err(AgentSocketError::Peer { .. })
        ));
    }

    /// The pinned path keeps reaching the checked inode even when the name is swapped for a
    /// symlink afterwards.
    #[tokio::test]
    async fn a_swap_after_the_check_does_not_redirect() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("mcp.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let other = dir.path().join("other.sock");
        let lo = std::os::unix::net::UnixListener::bind(&other).unwrap();
        lo.set_nonblocking(true).unwrap();
        let s = AgentSocket::open(&sock, me()).unwrap();
        std::fs::remove_file(&sock).unwrap();
        std::os::unix::fs::symlink(&other, &sock).unwrap();
        let _c = std::os::unix::net::UnixStream::connect(s.via()).unwrap();
        l.set_nonblocking(true).unwrap();
        assert!(l.accept().is_ok(), "the checked socket got the connection");
        assert!(lo.accept().is_err(), "the swapped-in target got nothing");
    }
}
