//! Settings: TOML drop-ins read from `/usr/lib`, then `/run`, then `/etc`, merged key by key and
//! validated into one [`Settings`]. Every key has a default that works.
//!
//! Files, in order (later wins), for instance `IFACE`:
//! `DIR/wifi-isolate/config.toml`, `DIR/wifi-isolate/config.d/*.toml` (sorted), then
//! `DIR/wifi-isolate/instance.d/IFACE.toml`, for DIR in `/usr/lib`, `/run`, `/etc`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The base directories searched, lowest priority first.
pub const CONFIG_DIRS: &[&str] = &[
    "/usr/lib/wifi-isolate",
    "/run/wifi-isolate/config",
    "/etc/wifi-isolate",
];

/// Errors reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not valid TOML or has an unknown key / wrong type.
    #[error("{path}: {message}")]
    Invalid {
        /// The file (or "merged configuration").
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Which box runtime to use.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// Podman socket, then Docker socket, else the built-in netns runtime.
    #[default]
    Auto,
    /// Podman through its Docker-compatible API.
    Podman,
    /// Docker.
    Docker,
    /// The built-in network-namespace runtime (no engine needed).
    Netns,
}

impl std::fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Podman => "podman",
            Self::Docker => "docker",
            Self::Netns => "netns",
        })
    }
}

/// `[engine]`: the box.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// auto, podman, docker or netns.
    pub kind: EngineChoice,
    /// Agent image for podman/docker.
    pub image: String,
    /// Podman's API socket.
    pub podman_socket: PathBuf,
    /// Docker's API socket.
    pub docker_socket: PathBuf,
    /// Memory limit of the box, MiB.
    pub memory_mb: u64,
    /// Process limit of the box.
    pub pids_limit: i64,
    /// The netns engine: the unprivileged host uid (and gid) the box's root maps to.
    pub box_uid: u32,
    /// Host directory of EAP certificates for the box (`INSTANCE` is replaced by the instance
    /// name), mounted read-only at `/etc/wifi-isolate/certs` in the box when it exists.
    pub certs_dir: PathBuf,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            kind: EngineChoice::Auto,
            image: "localhost/wifi-isolate-agent:latest".into(),
            podman_socket: "/run/podman/podman.sock".into(),
            docker_socket: "/run/docker.sock".into(),
            memory_mb: 256,
            pids_limit: 128,
            box_uid: crate::host::engine::DEFAULT_BOX_UID,
            certs_dir: "/etc/wifi-isolate/certs/INSTANCE".into(),
        }
    }
}

/// `[agent]`: what runs in the box.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    /// The agent binary the netns runtime starts.
    pub path: PathBuf,
    /// Regulatory country (two letters). The kernel's regulatory domain is global: setting it
    /// changes it for the whole host.
    pub country: Option<String>,
    /// Connectivity-check URL (answers 204).
    pub check_url: Option<String>,
    /// Agent log filter (`info`, `debug`, ...).
    pub log: String,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            path: default_agent_path(),
            country: None,
            check_url: None,
            log: "info".into(),
        }
    }
}

fn default_agent_path() -> PathBuf {
    // Next to our own binary (packages install both in /usr/bin; cargo builds both in target/).
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("wifi-isolate-agent")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| "/usr/bin/wifi-isolate-agent".into())
}

/// `[timeouts]`, seconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// Box start (engine create + start).
    pub box_start: u64,
    /// Agent answering on its socket after the move.
    pub agent_ready: u64,
    /// Box stop before it is killed.
    pub box_stop: u64,
    /// While serving, the agent is probed this often, milliseconds.
    pub probe_interval_ms: u64,
    /// A probe the agent does not answer within this long has failed, milliseconds.
    pub probe_timeout_ms: u64,
    /// This many failed probes in a row: the agent is hung; release and exit 1 (the unit restarts).
    pub probe_failures: u32,
    /// A held instance (stopped by a user, started again by its socket) exits after this long
    /// without a client.
    pub held_idle: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            box_start: 60,
            agent_ready: 30,
            box_stop: 5,
            probe_interval_ms: 5000,
            probe_timeout_ms: 3000,
            probe_failures: 3,
            held_idle: 10,
        }
    }
}

/// `[proxy]`: the MCP endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProxySettings {
    /// How long a request that arrives before the agent is ready may wait, seconds.
    pub ready_wait: u64,
    /// Concurrent Unix-socket connections served; more wait in the accept queue.
    pub max_connections: usize,
    /// Largest request body accepted, bytes.
    pub max_body_bytes: usize,
    /// A request head must be complete within this long (from the accept, or from its first
    /// byte on a keep-alive connection), milliseconds.
    pub header_timeout_ms: u64,
    /// A keep-alive connection with no request in flight closes after this long, seconds.
    pub idle_timeout_s: u64,
    /// A request body must have arrived this long after its head, seconds (else 408).
    pub body_timeout_s: u64,
    /// TCP connections that presented a valid bearer token; more get 503.
    pub max_tcp_connections: usize,
    /// TCP connections that have not presented a token yet; the oldest is closed for a new one.
    pub max_tcp_pending: usize,
    /// Request bodies buffered at once across all connections, bytes (well inside the unit's
    /// `MemoryMax=512M`); over it: 503 + `Retry-After`.
    pub body_budget_bytes: usize,
    /// Bearer token file for TCP listeners (root-only). A systemd credential `token` wins.
    pub token_file: PathBuf,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            ready_wait: 30,
            max_connections: 256,
            max_body_bytes: 4 * 1024 * 1024,
            header_timeout_ms: 5000,
            idle_timeout_s: 60,
            body_timeout_s: 30,
            max_tcp_connections: 64,
            max_tcp_pending: 32,
            body_budget_bytes: 64 * 1024 * 1024,
            token_file: "/etc/wifi-isolate/token".into(),
        }
    }
}

/// `[security]`: what may carry a secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SecuritySettings {
    /// Whether tools accept passwords and keys as arguments (`wifi_connect` password,
    /// `wifi_connect_eap` password/private key). `false`: only saved networks carry secrets
    /// (`wifi-isolate network add`), so none passes through the AI model.
    pub inline_secrets: bool,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        Self {
            inline_secrets: true,
        }
    }
}

/// `[elicitation]`: the one-time loopback page where a person types a WiFi passphrase the box
/// asked for (MCP URL-mode elicitation, [`crate::elicit`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ElicitationSettings {
    /// Serve the page (and give the box the means to link to it).
    pub enabled: bool,
    /// The page's TCP port on 127.0.0.1; 0: a free port chosen at each start (the box learns
    /// it with its grant).
    pub port: u16,
    /// Seconds a link (and a form opened from it) stays valid.
    pub ttl_s: u64,
}

impl Default for ElicitationSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            port: 0,
            ttl_s: 600,
        }
    }
}

/// All settings of one instance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The box.
    pub engine: EngineSettings,
    /// The agent.
    pub agent: AgentSettings,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// The MCP endpoint.
    pub proxy: ProxySettings,
    /// Secrets.
    pub security: SecuritySettings,
    /// The passphrase page (URL-mode elicitation).
    pub elicitation: ElicitationSettings,
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// The files that apply to `instance`, in order, under the given base dirs.
pub fn files_for(dirs: &[PathBuf], instance: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in dirs {
        let main = d.join("config.toml");
        if main.is_file() {
            out.push(main);
        }
        if let Ok(rd) = std::fs::read_dir(d.join("config.d")) {
            let mut v: Vec<_> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            v.sort();
            out.extend(v);
        }
        let inst = d.join("instance.d").join(format!("{instance}.toml"));
        if inst.is_file() {
            out.push(inst);
        }
    }
    out
}

impl Settings {
    /// Load the settings of `instance` from the standard directories.
    pub fn load(instance: &str) -> Result<(Self, Vec<PathBuf>), ConfigError> {
        let dirs: Vec<PathBuf> = CONFIG_DIRS.iter().map(PathBuf::from).collect();
        Self::load_from(&dirs, instance)
    }

    /// Load from explicit base dirs (tests).
    pub fn load_from(
        dirs: &[PathBuf],
        instance: &str,
    ) -> Result<(Self, Vec<PathBuf>), ConfigError> {
        let files = files_for(dirs, instance);
        let mut table = toml::Table::new();
        for f in &files {
            let text = std::fs::read_to_string(f).map_err(|source| ConfigError::Read {
                path: f.clone(),
                source,
            })?;
            let t: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Invalid {
                        path: f.display().to_string(),
                        message: e.message().to_string(),
                    })?;
            // Check each file alone too, so an error names the file that has it.
            toml::Value::Table(t.clone())
                .try_into::<Settings>()
                .map_err(|e| ConfigError::Invalid {
                    path: f.display().to_string(),
                    message: e.message().to_string(),
                })?;
            merge(&mut table, t);
        }
        let s: Settings = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid {
                path: "merged configuration".into(),
                message: e.message().to_string(),
            })?;
        s.validate()?;
        Ok((s, files))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| {
            Err(ConfigError::Invalid {
                path: "configuration".into(),
                message: m,
            })
        };
        if let Some(c) = &self.agent.country
            && let Err(e) = crate::validate::CountryCode::parse(c)
        {
            return bad(format!("agent.country: {e}"));
        }
        if self.engine.memory_mb < 32 {
            return bad("engine.memory_mb must be at least 32".into());
        }
        if self.engine.box_uid == 0 || self.engine.box_uid == u32::MAX {
            return bad("engine.box_uid must be an unprivileged uid (not 0)".into());
        }
        if !(30..=86_400).contains(&self.elicitation.ttl_s) {
            return bad("elicitation.ttl_s must be 30-86400".into());
        }
        if self.engine.pids_limit < 16 {
            return bad("engine.pids_limit must be at least 16".into());
        }
        let t = &self.timeouts;
        if t.probe_interval_ms < 100 || t.probe_timeout_ms < 100 || t.probe_failures == 0 {
            return bad("timeouts.probe_interval_ms and probe_timeout_ms must be at least 100, probe_failures at least 1".into());
        }
        let noticed_ms = u64::from(t.probe_failures) * (t.probe_interval_ms + t.probe_timeout_ms);
        if noticed_ms >= 30_000 {
            // The unit's WatchdogSec=30s: a hung agent must be noticed by us before systemd
            // kills the daemon mid-release.
            return bad(format!(
                "timeouts.probe_failures × (probe_interval_ms + probe_timeout_ms) must stay under the unit's 30 s watchdog, got {noticed_ms} ms"
            ));
        }
        let p = &self.proxy;
        if p.max_connections == 0 || p.max_tcp_connections == 0 || p.max_tcp_pending == 0 {
            return bad(
                "proxy.max_connections, max_tcp_connections and max_tcp_pending must be at least 1"
                    .into(),
            );
        }
        if p.header_timeout_ms < 100 || p.idle_timeout_s == 0 || p.body_timeout_s == 0 {
            return bad(
                "proxy.header_timeout_ms must be at least 100, idle_timeout_s and body_timeout_s at least 1"
                    .into(),
            );
        }
        if p.body_budget_bytes < p.max_body_bytes || p.body_budget_bytes > 256 << 20 {
            return bad(format!(
                "proxy.body_budget_bytes must hold one max_body_bytes ({}) and stay well inside the unit's MemoryMax=512M (at most 268435456), got {}",
                p.max_body_bytes, p.body_budget_bytes
            ));
        }
        if self.engine.image.trim().is_empty() {
            return bad("engine.image must not be empty".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &std::path::Path, text: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn defaults_work_without_files() {
        let d = tempfile::tempdir().unwrap();
        let (s, files) = Settings::load_from(&[d.path().to_path_buf()], "wlan0").unwrap();
        assert!(files.is_empty());
        assert_eq!(s.engine.kind, EngineChoice::Auto);
        assert_eq!(s.timeouts.agent_ready, 30);
    }

    #[test]
    fn later_dirs_and_instance_files_win_key_by_key() {
        let d = tempfile::tempdir().unwrap();
        let (usr, etc) = (d.path().join("usr"), d.path().join("etc"));
        write(
            &usr.join("config.toml"),
            "[engine]\nkind = \"podman\"\nmemory_mb = 64\n",
        );
        write(
            &etc.join("config.d/10-x.toml"),
            "[engine]\nmemory_mb = 99\n",
        );
        write(
            &etc.join("instance.d/wlan1.toml"),
            "[engine]\nkind = \"netns\"\n",
        );
        let (s, files) = Settings::load_from(&[usr.clone(), etc.clone()], "wlan0").unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(
            (s.engine.kind, s.engine.memory_mb),
            (EngineChoice::Podman, 99)
        );
        let (s, _) = Settings::load_from(&[usr, etc], "wlan1").unwrap();
        assert_eq!(
            (s.engine.kind, s.engine.memory_mb),
            (EngineChoice::Netns, 99)
        );
    }

    /// The country rule is validate's (also `00`, the world domain); the watchdog bound holds.
    #[test]
    fn country_and_probe_bounds() {
        let d = tempfile::tempdir().unwrap();
        for (text, ok) in [
            ("[agent]\ncountry = \"00\"\n", true),
            ("[agent]\ncountry = \"DE\"\n", true),
            ("[agent]\ncountry = \"de\"\n", false),
            (
                "[timeouts]\nprobe_interval_ms = 9000\nprobe_timeout_ms = 2000\n",
                false,
            ),
            ("[timeouts]\nprobe_interval_ms = 50\n", false),
        ] {
            write(&d.path().join("config.toml"), text);
            let r = Settings::load_from(&[d.path().to_path_buf()], "wlan0");
            assert_eq!(r.is_ok(), ok, "{text}: {:?}", r.err());
        }
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let d = tempfile::tempdir().unwrap();
        write(
            &d.path().join("config.toml"),
            "[engine]\nkidn = \"podman\"\n",
        );
        let e = Settings::load_from(&[d.path().to_path_buf()], "w")
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.toml") && e.contains("kidn"), "{e}");
        write(
            &d.path().join("config.toml"),
            "[agent]\ncountry = \"germany\"\n",
        );
        let e = Settings::load_from(&[d.path().to_path_buf()], "w")
            .unwrap_err()
            .to_string();
        assert!(e.contains("two upper-case"), "{e}");
        write(&d.path().join("config.toml"), "not toml [");
        assert!(Settings::load_from(&[d.path().to_path_buf()], "w").is_err());
    }
    #[test]
    fn inline_secrets_default_on_and_can_be_turned_off() {
        let d = tempfile::tempdir().unwrap();
        let (s, _) = Settings::load_from(&[d.path().to_path_buf()], "w").unwrap();
        assert!(s.security.inline_secrets);
        write(
            &d.path().join("config.toml"),
            "[security]\ninline_secrets = false\n",
        );
        let (s, _) = Settings::load_from(&[d.path().to_path_buf()], "w").unwrap();
        assert!(!s.security.inline_secrets);
    }

    #[test]
    fn proxy_limits_have_defaults_and_are_validated() {
        let d = tempfile::tempdir().unwrap();
        let (s, _) = Settings::load_from(&[d.path().to_path_buf()], "w").unwrap();
        let p = &s.proxy;
        assert_eq!(
            (p.header_timeout_ms, p.idle_timeout_s, p.body_timeout_s),
            (5000, 60, 30)
        );
        assert!(p.body_budget_bytes >= p.max_body_bytes && p.body_budget_bytes <= 256 << 20);
        for (bad, says) in [
            ("max_tcp_pending = 0", "at least 1"),
            ("header_timeout_ms = 10", "header_timeout_ms"),
            ("body_budget_bytes = 1024", "body_budget_bytes"),
            ("body_budget_bytes = 1073741824", "MemoryMax"),
        ] {
            write(&d.path().join("config.toml"), &format!("[proxy]\n{bad}\n"));
            let e = Settings::load_from(&[d.path().to_path_buf()], "w")
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
