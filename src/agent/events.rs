//! The agent's recent-events ring (what `wifi_debug_logs` returns), with secrets scrubbed.
//!
//! Every line that enters the ring passes [`LogRing::push`], which removes any secret the agent
//! has handed to wpa_supplicant (in plain and hex form) and masks `key=value` pairs whose key names
//! a secret. Nothing reaches the ring, or `tracing`, without going through it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Keys whose values are always masked in log lines.
const SECRET_KEYS: &[&str] = &[
    "psk",
    "passphrase",
    "password",
    "sae_password",
    "private_key_passwd",
    "wep_key0",
    "wep_key1",
    "wep_key2",
    "wep_key3",
    "pin",
];

/// Mask `key=value` pairs whose key names a secret (up to the next whitespace).
pub fn mask_secret_pairs(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(eq) = rest.find('=') {
        let (head, tail) = rest.split_at(eq);
        let key_start = head
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map(|i| i + 1)
            .unwrap_or(0);
        let key = head[key_start..].to_ascii_lowercase();
        out.push_str(head);
        out.push('=');
        let tail = &tail[1..];
        if SECRET_KEYS.contains(&key.as_str()) {
            let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
            out.push_str("<redacted>");
            rest = &tail[end..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// One entry of the ring.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LogEntry {
    /// Seconds since the Unix epoch.
    pub time: f64,
    /// Where it came from: `wpa`, `event`, `dhcp`, `udhcpc`, `agent`.
    pub source: String,
    /// The scrubbed text.
    pub text: String,
}

#[derive(Default)]
struct Inner {
    entries: VecDeque<LogEntry>,
    secrets: Vec<String>,
}

/// A bounded, shared, secret-scrubbing log of recent events.
#[derive(Clone)]
pub struct LogRing {
    inner: Arc<Mutex<Inner>>,
    cap: usize,
}

impl LogRing {
    /// A ring holding the last `cap` entries.
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Arc::default(),
            cap,
        }
    }

    /// Remember a secret so it is scrubbed from every later line (plain and hex forms).
    pub fn register_secret(&self, secret: &str) {
        if secret.len() < 4 {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for form in [secret.to_string(), hex::encode(secret.as_bytes())] {
            if !g.secrets.contains(&form) {
                g.secrets.push(form);
            }
        }
    }

    /// Scrub a line: registered secrets and secret `key=value` pairs.
    pub fn scrub(&self, line: &str) -> String {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = line.to_string();
        for secret in &g.secrets {
            if s.contains(secret.as_str()) {
                s = s.replace(secret.as_str(), "<redacted>");
            }
        }
        mask_secret_pairs(&s)
    }

    /// Add a line (scrubbed) and mirror it to `tracing` at debug level.
    pub fn push(&self, source: &str, text: String) {
        let text = self.scrub(&text);
        tracing::debug!(source, "{text}");
        let time = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.entries.len() == self.cap {
            g.entries.pop_front();
        }
        g.entries.push_back(LogEntry {
            time,
            source: source.to_string(),
            text,
        });
    }

    /// The most recent `n` entries, oldest first, optionally only from `source`.
    pub fn recent(&self, n: usize, source: Option<&str>) -> Vec<LogEntry> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = g
            .entries
            .iter()
            .rev()
            .filter(|e| source.is_none_or(|s| e.source == s))
            .take(n)
            .cloned()
            .collect();
        v.reverse();
        v
    }
}

/// Copy a child's output into the ring line by line.
pub fn pipe_lines<R: AsyncRead + Unpin + Send + 'static>(
    pipe: Option<R>,
    ring: LogRing,
    source: &'static str,
) {
    if let Some(pipe) = pipe {
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                ring.push(source, line);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secret_pairs() {
        assert_eq!(
            mask_secret_pairs("ssid=lab psk=hunter22 id=0"),
            "ssid=lab psk=<redacted> id=0"
        );
        assert_eq!(mask_secret_pairs("PASSWORD=x"), "PASSWORD=<redacted>");
        assert_eq!(mask_secret_pairs("no pairs here"), "no pairs here");
        assert_eq!(mask_secret_pairs("a=b=c"), "a=b=c");
        assert_eq!(mask_secret_pairs("=psk="), "=psk=<redacted>");
    }

    #[test]
    fn scrubs_registered_secrets_in_both_forms() {
        let ring = LogRing::new(3);
        ring.register_secret("correct horse 1");
        ring.push("wpa", "sent correct horse 1 to it".into());
        ring.push("wpa", format!("hex {}", hex::encode("correct horse 1")));
        let all = ring.recent(10, None);
        assert!(all.iter().all(|e| !e.text.contains("correct horse")));
        assert!(
            all.iter()
                .all(|e| !e.text.contains(&hex::encode("correct horse 1")))
        );
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn ring_is_bounded_and_filters() {
        let ring = LogRing::new(2);
        ring.push("a", "1".into());
        ring.push("b", "2".into());
        ring.push("a", "3".into());
        let all = ring.recent(10, None);
        assert_eq!(
            all.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
            ["2", "3"]
        );
        assert_eq!(ring.recent(10, Some("a")).len(), 1);
    }
}
