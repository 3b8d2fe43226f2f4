//! The control-socket clients: [`CtrlClient`] for request/reply and [`EventMonitor`] for
//! `ATTACH`ed events. Both bind their own datagram socket (mode 0600) in a client directory
//! and remove it on drop.

use std::collections::{HashSet, VecDeque};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UnixDatagram;
use tokio::sync::Mutex;

use super::WpaError;
use super::event::{EventMessage, parse_event};
use super::parse::{Bss, ConfiguredNetwork, SignalPoll, Status};
use super::proto::{
    BssSelector, Command, GlobalSetting, NetworkField, NetworkFieldName, NetworkSel,
};

/// Receive buffer size; wpa_supplicant caps replies near 4 KiB.
const RECV_BUFFER: usize = 16 * 1024;
/// Default time to wait for a reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound on `BSS NEXT-` iterations, in case the table changes under us.
const MAX_BSS: usize = 4096;
/// `sun_path` is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

static NEXT_CLIENT: AtomicU64 = AtomicU64::new(0);

/// A bound client socket whose file is removed on drop.
#[derive(Debug)]
struct ClientSocket {
    socket: UnixDatagram,
    path: PathBuf,
    ctrl_path: PathBuf,
}

impl ClientSocket {
    fn open(ctrl_dir: &Path, ifname: &str, client_dir: &Path) -> Result<Self, WpaError> {
        if ifname.is_empty()
            || ifname.len() > 15
            || ifname == "."
            || ifname == ".."
            || ifname
                .chars()
                .any(|c| c == '/' || c == '\0' || c.is_whitespace() || c.is_control())
        {
            return Err(WpaError::InvalidIfname(ifname.to_owned()));
        }
        let ctrl_path = ctrl_dir.join(ifname);
        let n = NEXT_CLIENT.fetch_add(1, Ordering::Relaxed);
        let path = client_dir.join(format!("wi-{}-{n}", std::process::id()));
        let too_long = |p: &Path| p.as_os_str().len() > MAX_SOCKET_PATH;
        if too_long(&path) || too_long(&ctrl_path) {
            let long = if too_long(&path) { &path } else { &ctrl_path };
            return Err(WpaError::ClientSocket {
                path: long.clone(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("socket path longer than {MAX_SOCKET_PATH} bytes"),
                ),
            });
        }
        // A file left by an earlier process with the same pid: it cannot be in use.
        if let Ok(meta) = std::fs::symlink_metadata(&path)
            && std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type())
        {
            let _ = std::fs::remove_file(&path);
        }
        let socket = UnixDatagram::bind(&path).map_err(|source| WpaError::ClientSocket {
            path: path.clone(),
            source,
        })?;
        // From here on the file exists: build the guard first so every error path removes it.
        let guard = Self {
            socket,
            path,
            ctrl_path,
        };
        std::fs::set_permissions(&guard.path, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| WpaError::ClientSocket {
                path: guard.path.clone(),
                source,
            },
        )?;
        guard
            .socket
            .connect(&guard.ctrl_path)
            .map_err(|source| WpaError::NotRunning {
                path: guard.ctrl_path.clone(),
                source,
            })?;
        Ok(guard)
    }

    /// Drop datagrams that arrived unasked (a late reply to a command that timed out).
    fn drain(&self) {
        let mut buf = [0u8; 256];
        while self.socket.try_recv(&mut buf).is_ok() {}
    }

    async fn send(&self, text: &str) -> Result<(), WpaError> {
        match self.socket.send(text.as_bytes()).await {
            Ok(_) => Ok(()),
            Err(source)
                if matches!(
                    source.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                ) =>
            {
                Err(WpaError::NotRunning {
                    path: self.ctrl_path.clone(),
                    source,
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn recv(&self) -> Result<String, WpaError> {
        let mut buf = vec![0u8; RECV_BUFFER];
        let n = match self.socket.recv(&mut buf).await {
            Ok(n) => n,
            Err(source) if source.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(WpaError::NotRunning {
                    path: self.ctrl_path.clone(),
                    source,
                });
            }
            Err(err) => return Err(err.into()),
        };
        buf.truncate(n);
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

impl Drop for ClientSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Result of [`CtrlClient::scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanRequest {
    /// A new scan was started; wait for `CTRL-EVENT-SCAN-RESULTS`.
    Started,
    /// A scan is already running (`FAIL-BUSY`); its results will come the same way.
    AlreadyRunning,
}

/// A request/reply client of one interface's control socket.
///
/// Requests are serialized internally, so a `CtrlClient` can be shared (`Arc`) between tasks.
#[derive(Debug)]
pub struct CtrlClient {
    socket: Mutex<ClientSocket>,
    timeout: Duration,
}

impl CtrlClient {
    /// Bind a fresh client socket in `client_dir` and connect it to `<ctrl_dir>/<ifname>`.
    pub async fn connect(
        ctrl_dir: &Path,
        ifname: &str,
        client_dir: &Path,
    ) -> Result<Self, WpaError> {
        Ok(Self {
            socket: Mutex::new(ClientSocket::open(ctrl_dir, ifname, client_dir)?),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Change the reply timeout (default [`DEFAULT_TIMEOUT`]).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The reply timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The path of our own client socket (removed on drop).
    pub async fn client_path(&self) -> PathBuf {
        self.socket.lock().await.path.clone()
    }

    /// Send one command and return the raw reply. Only `UNKNOWN COMMAND` is turned into an
    /// error here; use [`CtrlClient::request_ok`] for commands that answer `OK`.
    pub async fn request(&self, command: &Command) -> Result<String, WpaError> {
        let socket = self.socket.lock().await;
        socket.drain();
        let text = command.encode();
        let exchange = async {
            socket.send(&text).await?;
            socket.recv().await
        };
        let reply = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| WpaError::Timeout {
                command: command.redacted(),
                timeout: self.timeout,
            })??;
        tracing::trace!(command = %command, reply = %reply.trim_end(), "wpa_supplicant request");
        if reply.trim_end() == "UNKNOWN COMMAND" {
            return Err(rejected(command, &reply));
        }
        Ok(reply)
    }

    /// Send a command whose success reply is `OK`; anything else is [`WpaError::Rejected`].
    pub async fn request_ok(&self, command: &Command) -> Result<(), WpaError> {
        let reply = self.request(command).await?;
        if reply.trim_end() == "OK" {
            Ok(())
        } else {
            Err(rejected(command, &reply))
        }
    }

    /// `PING` → `PONG`.
    pub async fn ping(&self) -> Result<(), WpaError> {
        let reply = self.request(&Command::Ping).await?;
        if reply.trim_end() == "PONG" {
            Ok(())
        } else {
            Err(rejected(&Command::Ping, &reply))
        }
    }

    /// `SCAN`. `FAIL-BUSY` (a scan is already running) is not an error.
    pub async fn scan(&self) -> Result<ScanRequest, WpaError> {
        let reply = self.request(&Command::Scan).await?;
        match reply.trim_end() {
            "OK" => Ok(ScanRequest::Started),
            "FAIL-BUSY" => Ok(ScanRequest::AlreadyRunning),
            _ => Err(rejected(&Command::Scan, &reply)),
        }
    }

    /// One `BSS` entry (summary fields), `None` when there is no such entry.
    pub async fn bss(&self, selector: BssSelector) -> Result<Option<Bss>, WpaError> {
        let command = Command::bss_summary(selector);
        let reply = self.request(&command).await?;
        if reply.trim().is_empty() {
            return Ok(None);
        }
        if reply.starts_with("FAIL") {
            return Err(rejected(&command, &reply));
        }
        Bss::parse(&reply)
            .map(Some)
            .map_err(|e| parse_error(&command, e))
    }

    /// The whole BSS table, one `BSS FIRST` / `BSS NEXT-<id>` request per entry (a reply is
    /// capped near 4 KiB, so asking for all at once would truncate). An entry that expires
    /// between two requests ends the walk early; callers scan again for a fresh view.
    pub async fn bss_all(&self) -> Result<Vec<Bss>, WpaError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut next = self.bss(BssSelector::First).await?;
        while let Some(bss) = next {
            let Some(id) = bss.id else {
                out.push(bss);
                break;
            };
            if !seen.insert(id) || out.len() >= MAX_BSS {
                break;
            }
            let mut bss = bss;
            if let Some((modes, detail)) = self.bss_elements(id).await {
                bss.modes = Some(modes);
                bss.detail = Some(detail);
            }
            if bss
                .modes
                .as_ref()
                .is_some_and(|m| m.transition == Some(super::modes::Transition::OweOpen))
            {
                bss.security = super::Security::OweTransition;
            }
            out.push(bss);
            next = self.bss(BssSelector::Next(id)).await?;
        }
        Ok(out)
    }

    /// The security modes and the detail of BSS `id` from its information elements; `None`
    /// when the entry is gone or the reply has no `ie=`.
    pub async fn bss_elements(
        &self,
        id: u32,
    ) -> Option<(super::modes::Modes, super::detail::Detail)> {
        let reply = self.request(&Command::bss_ies(id)).await.ok()?;
        let ies = reply
            .lines()
            .find_map(|l| l.strip_prefix("ie="))
            .map(super::modes::hex_prefix)?;
        Some((
            super::modes::Modes::from_ies(&ies),
            super::detail::Detail::from_ies(&ies),
        ))
    }

    /// `STATUS`.
    pub async fn status(&self) -> Result<Status, WpaError> {
        let reply = self.request(&Command::Status).await?;
        if reply.starts_with("FAIL") {
            return Err(rejected(&Command::Status, &reply));
        }
        Ok(Status::parse(&reply))
    }

    /// `SIGNAL_POLL`; `None` when not associated (wpa_supplicant answers `FAIL`).
    pub async fn signal_poll(&self) -> Result<Option<SignalPoll>, WpaError> {
        let reply = self.request(&Command::SignalPoll).await?;
        if reply.starts_with("FAIL") {
            return Ok(None);
        }
        SignalPoll::parse(&reply)
            .map(Some)
            .map_err(|e| parse_error(&Command::SignalPoll, e))
    }

    /// `ADD_NETWORK` → the new network id.
    pub async fn add_network(&self) -> Result<u32, WpaError> {
        let reply = self.request(&Command::AddNetwork).await?;
        reply
            .trim_end()
            .parse()
            .map_err(|_| rejected(&Command::AddNetwork, &reply))
    }

    /// `SET_NETWORK <id> <field> <value>`.
    pub async fn set_network(&self, id: u32, field: &NetworkField) -> Result<(), WpaError> {
        let field = field.clone();
        self.request_ok(&Command::SetNetwork { id, field }).await
    }

    /// `GET_NETWORK <id> <field>`: the raw value (quoted string, hex, number or `*` for
    /// secrets; see [`super::escape::decode_config_string`]). `FAIL` (unset field or unknown
    /// network) is [`WpaError::Rejected`].
    pub async fn get_network(&self, id: u32, field: NetworkFieldName) -> Result<String, WpaError> {
        let command = Command::GetNetwork { id, field };
        let reply = self.request(&command).await?;
        if reply == "FAIL\n" {
            return Err(rejected(&command, &reply));
        }
        Ok(reply)
    }

    /// `SELECT_NETWORK <id>`.
    pub async fn select_network(&self, id: u32) -> Result<(), WpaError> {
        self.request_ok(&Command::SelectNetwork(id)).await
    }

    /// `ENABLE_NETWORK <id|all>` (pass a `u32` id or [`NetworkSel::All`]).
    pub async fn enable_network(&self, sel: impl Into<NetworkSel>) -> Result<(), WpaError> {
        self.request_ok(&Command::EnableNetwork(sel.into())).await
    }

    /// `DISABLE_NETWORK <id|all>`.
    pub async fn disable_network(&self, sel: impl Into<NetworkSel>) -> Result<(), WpaError> {
        self.request_ok(&Command::DisableNetwork(sel.into())).await
    }

    /// `REMOVE_NETWORK <id|all>`.
    pub async fn remove_network(&self, sel: impl Into<NetworkSel>) -> Result<(), WpaError> {
        self.request_ok(&Command::RemoveNetwork(sel.into())).await
    }

    /// `LIST_NETWORKS`, continued with `LAST_ID=` until a page adds nothing new.
    pub async fn list_networks(&self) -> Result<Vec<ConfiguredNetwork>, WpaError> {
        let mut out: Vec<ConfiguredNetwork> = Vec::new();
        let mut seen = HashSet::new();
        let mut last_id = None;
        loop {
            let command = Command::ListNetworks { last_id };
            let reply = self.request(&command).await?;
            let page =
                ConfiguredNetwork::parse_list(&reply).map_err(|e| parse_error(&command, e))?;
            let before = out.len();
            for network in page {
                if seen.insert(network.id) {
                    out.push(network);
                }
            }
            if out.len() == before {
                return Ok(out);
            }
            last_id = out.last().map(|n| n.id);
        }
    }

    /// `DISCONNECT`.
    pub async fn disconnect(&self) -> Result<(), WpaError> {
        self.request_ok(&Command::Disconnect).await
    }

    /// `ROAM <bssid>`.
    pub async fn roam(&self, bssid: crate::validate::Bssid) -> Result<(), WpaError> {
        self.request_ok(&Command::Roam(bssid)).await
    }

    /// `RECONNECT`.
    pub async fn reconnect(&self) -> Result<(), WpaError> {
        self.request_ok(&Command::Reconnect).await
    }

    /// `REASSOCIATE`.
    pub async fn reassociate(&self) -> Result<(), WpaError> {
        self.request_ok(&Command::Reassociate).await
    }

    /// `SET <key> <value>` for a whitelisted global setting.
    pub async fn set(&self, setting: GlobalSetting) -> Result<(), WpaError> {
        self.request_ok(&Command::Set(setting)).await
    }

    /// `ANQP_GET <bssid> <ids>[,hs20:<subtypes>]`: the query goes out; the answer is the
    /// `ANQP-QUERY-DONE` event.
    pub async fn anqp_get(
        &self,
        bssid: crate::validate::Bssid,
        ids: &[u16],
        hs20: &[u8],
    ) -> Result<(), WpaError> {
        self.request_ok(&Command::AnqpGet {
            bssid,
            ids: ids.to_vec(),
            hs20: hs20.to_vec(),
        })
        .await
    }

    /// The ANQP answers wpa_supplicant holds for `bssid` (`BSS <bssid>` with the interworking
    /// mask), parsed ([`super::anqp`]); `None` when there is no such entry.
    pub async fn bss_anqp(
        &self,
        bssid: crate::validate::Bssid,
    ) -> Result<Option<super::anqp::AnqpInfo>, WpaError> {
        let command = Command::Bss {
            selector: BssSelector::Bssid(bssid),
            mask: Some(super::proto::BSS_MASK_ANQP),
        };
        let reply = self.request(&command).await?;
        if reply.trim().is_empty() {
            return Ok(None);
        }
        if reply.starts_with("FAIL") {
            return Err(rejected(&command, &reply));
        }
        Ok(Some(super::anqp::from_bss_reply(&reply)))
    }

    /// `ADD_CRED` → the new credential's id.
    pub async fn add_cred(&self) -> Result<u32, WpaError> {
        let reply = self.request(&Command::AddCred).await?;
        reply
            .trim_end()
            .parse()
            .map_err(|_| rejected(&Command::AddCred, &reply))
    }

    /// `SET_CRED <id> <field> <value>`.
    pub async fn set_cred(&self, id: u32, field: &super::CredField) -> Result<(), WpaError> {
        let field = field.clone();
        self.request_ok(&Command::SetCred { id, field }).await
    }

    /// `REMOVE_CRED <id|all>`.
    pub async fn remove_cred(&self, sel: impl Into<NetworkSel>) -> Result<(), WpaError> {
        self.request_ok(&Command::RemoveCred(sel.into())).await
    }

    /// `INTERWORKING_SELECT [auto]`.
    pub async fn interworking_select(&self, auto: bool) -> Result<(), WpaError> {
        self.request_ok(&Command::InterworkingSelect { auto }).await
    }
}

fn rejected(command: &Command, reply: &str) -> WpaError {
    WpaError::Rejected {
        command: command.redacted(),
        reply: reply.trim_end().chars().take(200).collect(),
    }
}

fn parse_error(command: &Command, error: super::parse::ParseError) -> WpaError {
    WpaError::Parse {
        command: command.redacted(),
        reason: error.0,
    }
}

/// An `ATTACH`ed monitor socket: receives wpa_supplicant's events.
///
/// wpa_supplicant forgets a monitor when it restarts (and after repeated send failures when
/// our receive queue is full), without telling us: call [`EventMonitor::ping`] now and then
/// (e.g. every 10 s in a `select!`) and re-create the monitor when it fails.
/// [`EventMonitor::next_event`] is cancel-safe.
#[derive(Debug)]
pub struct EventMonitor {
    socket: ClientSocket,
    timeout: Duration,
    pending: VecDeque<EventMessage>,
    attached: bool,
}

impl EventMonitor {
    /// Bind a fresh client socket, connect it to `<ctrl_dir>/<ifname>` and `ATTACH`.
    pub async fn attach(
        ctrl_dir: &Path,
        ifname: &str,
        client_dir: &Path,
    ) -> Result<Self, WpaError> {
        let mut monitor = Self {
            socket: ClientSocket::open(ctrl_dir, ifname, client_dir)?,
            timeout: DEFAULT_TIMEOUT,
            pending: VecDeque::new(),
            attached: false,
        };
        monitor.expect_reply(&Command::Attach, "OK").await?;
        monitor.attached = true;
        Ok(monitor)
    }

    /// The path of our own client socket (removed on drop).
    pub fn client_path(&self) -> &Path {
        &self.socket.path
    }

    /// Send `PING` and wait for `PONG`, keeping events that arrive meanwhile.
    pub async fn ping(&mut self) -> Result<(), WpaError> {
        self.expect_reply(&Command::Ping, "PONG").await
    }

    /// `DETACH` and wait for `OK`, then drop the socket.
    pub async fn detach(mut self) -> Result<(), WpaError> {
        self.attached = false;
        self.expect_reply(&Command::Detach, "OK").await
    }

    /// Wait for the next event. Non-event datagrams (stray replies) are skipped.
    pub async fn next_event(&mut self) -> Result<EventMessage, WpaError> {
        if let Some(event) = self.pending.pop_front() {
            return Ok(event);
        }
        loop {
            let datagram = self.socket.recv().await?;
            if let Some(event) = parse_event(&datagram) {
                return Ok(event);
            }
            tracing::debug!(reply = %datagram.trim_end(), "ignoring non-event on monitor socket");
        }
    }

    async fn expect_reply(&mut self, command: &Command, expected: &str) -> Result<(), WpaError> {
        let socket = &self.socket;
        let pending = &mut self.pending;
        let exchange = async {
            socket.send(&command.encode()).await?;
            loop {
                let datagram = socket.recv().await?;
                if let Some(event) = parse_event(&datagram) {
                    pending.push_back(event);
                    continue;
                }
                return Ok::<_, WpaError>(datagram);
            }
        };
        let reply = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| WpaError::Timeout {
                command: command.redacted(),
                timeout: self.timeout,
            })??;
        if reply.trim_end() == expected {
            Ok(())
        } else {
            Err(rejected(command, &reply))
        }
    }
}

impl Drop for EventMonitor {
    fn drop(&mut self) {
        // Best effort; the socket file is removed by `ClientSocket`'s drop right after.
        if !self.attached {
            return;
        }
        let _ = self
            .socket
            .socket
            .try_send(Command::Detach.encode().as_bytes());
    }
}
