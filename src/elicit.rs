//! URL-mode elicitation of WiFi secrets: the box asks, the person types the passphrase into a
//! page the HOST serves, and the secret never passes through the MCP client or the AI model.
//!
//! ```text
//! box start       daemon: a fresh 256-bit key (getrandom) → <box dir>/elicit/grant.json
//!                         {"base_url": "http://127.0.0.1:PORT", "key": HEX}, 0600 the box's root
//! wifi_connect    agent: no password, the network needs one, no one-time profile →
//!  {ssid}           link = BASE/e/ID?ssid=HEX&security=S&t=UNIX&mac=HMAC-SHA256(key, v1|ID|HEX|S|t)
//!                   (ID: 128 random bits) → JSON-RPC error -32042 (URLElicitationRequired) when
//!                   the client declares `elicitation.url`, else a tool error naming
//!                   `wifi-isolate network add`
//! GET  BASE/e/ID  daemon: Host is ours, the MAC holds, t is within ttl_s, ID unused → the form
//!                   (SSID HTML-escaped, a per-form CSRF token); no-store, CSP, no framing
//! POST BASE/e/ID  daemon: Host + Origin ours, the CSRF token of a live form for this ID, the
//!                   passphrase valid (crate::validate, as `network add`) → the one-time profile
//!                   <box dir>/elicit/SSIDHEX.toml (0600 the box's root); "save" also writes
//!                   /etc/wifi-isolate/networks/NAME.toml (never over an existing one); the ID is
//!                   spent (a replay gets 410)
//! wifi_connect    agent: finds SSIDHEX.toml, removes it (consumed), connects with it
//! ```
//!
//! **Why a key and not a token channel.** The box needs to make links without a new box→host
//! channel. With the key it can mint links on its own; the host checks the MAC. A hostile box
//! gains nothing it lacked: a link only lets it ASK the person for a passphrase for an SSID it
//! names (which it could do in the chat anyway); the page says so, shows the SSID escaped, and
//! the passphrase ends only where the box could read it anyway: its own `elicit/` dir (one
//! fixed file name per SSID, hex, written through an `O_NOFOLLOW` dir fd, a fresh `O_EXCL`
//! temporary and a rename inside it — never outside it). "Save as profile" needs the person's
//! tick and a name the person types; it never replaces a profile, and the profile is for this
//! adapter alone. The key is per box start (a restarted box gets a new one; old links die), it
//! never leaves the host except into the box, and it is never in a URL. Other local users can
//! reach the loopback port but not forge a link; a leaked link (the client's transcript holds
//! it) is good once, for ttl_s, to hand the box a passphrase for that SSID — nothing to read.
//!
//! The rooms: this file is the pure logic (links, MACs, the page's state machine, HTML); the
//! `serve` module is the HTTP listener and the writes into the box.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

use crate::networks::{Name, Profile, Security};
use crate::validate::{Passphrase, SaePassword, Ssid};

pub mod serve;

/// The directory under the box's runtime dir (`/run/wifi-isolate/elicit` in the box).
pub const SUBDIR: &str = "elicit";
/// The grant file in [`SUBDIR`]: the base URL and the key.
pub const GRANT_FILE: &str = "grant.json";
/// The link path prefix.
const PATH_PREFIX: &str = "/e/";
/// Forms open at once (each GET makes one): a local flood drops the oldest.
const MAX_FORMS: usize = 64;
/// Largest form body accepted, bytes.
pub const MAX_BODY: usize = 8192;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// What the box gets: where the page is and the key that signs its links.
#[derive(Clone, Serialize, Deserialize)]
pub struct Grant {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// 32 bytes, hex.
    pub key: String,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Random bytes from the kernel.
pub fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("getrandom");
    b
}

fn mac(key: &[u8], id: &str, ssid_hex: &str, security: &str, t: u64) -> HmacSha256 {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("any key length");
    m.update(format!("wifi-isolate-elicit-v1\n{id}\n{ssid_hex}\n{security}\n{t}").as_bytes());
    m
}

/// The securities a page can ask a passphrase for (EAP needs more than a passphrase: a saved
/// network, `wifi-isolate network add`).
pub fn askable(s: Security) -> bool {
    matches!(
        s,
        Security::Wpa2Psk | Security::Wpa3Sae | Security::Transition
    )
}

/// A link the agent made, for the MCP error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The elicitation id (128 random bits, hex).
    pub id: String,
    /// The URL.
    pub url: String,
}

impl Grant {
    /// A link asking for the passphrase of `ssid`, made at `now` (unix seconds).
    pub fn link(&self, ssid: &Ssid, security: Security, now: u64) -> Result<Link, String> {
        let key = hex::decode(&self.key).map_err(|_| "the elicitation grant's key is not hex")?;
        let id = hex::encode(random::<16>());
        let ssid_hex = ssid.to_hex();
        let sec = security.as_str();
        let tag = hex::encode(mac(&key, &id, &ssid_hex, sec, now).finalize().into_bytes());
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("ssid", &ssid_hex)
            .append_pair("security", sec)
            .append_pair("t", &now.to_string())
            .append_pair("mac", &tag)
            .finish();
        Ok(Link {
            url: format!(
                "{}{PATH_PREFIX}{id}?{query}",
                self.base_url.trim_end_matches('/')
            ),
            id,
        })
    }

    /// Read the grant the daemon put in `dir` ([`SUBDIR`] of the box's runtime dir); `None`
    /// when there is none (no page on this host, or an older daemon).
    pub fn load(dir: &Path) -> Option<Grant> {
        let text = std::fs::read_to_string(dir.join(GRANT_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// The one-time profile's file name for `ssid` in [`SUBDIR`].
pub fn one_time_file(ssid: &Ssid) -> String {
    format!("{}.toml", ssid.to_hex())
}

/// Escape text for HTML (element content and quoted attribute values).
pub fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

/// An HTTP answer of the page (the `serve` module sends it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The HTML.
    pub body: String,
}

impl Reply {
    fn page(status: u16, title: &str, inner: &str) -> Reply {
        Reply {
            status,
            body: format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <meta name=\"viewport\" content=\"width=device-width\">\
                 <title>{t}</title><style>body{{font:16px system-ui,sans-serif;max-width:36em;\
                 margin:2em auto;padding:0 1em}}code,.ssid{{font-family:monospace;\
                 background:#eee;padding:0 .2em}}label{{display:block;margin:.8em 0}}\
                 .err{{color:#a00}}</style></head><body><h1>{t}</h1>{inner}</body></html>",
                t = html_escape(title)
            ),
        }
    }

    fn refuse(status: u16, why: &str) -> Reply {
        Reply::page(
            status,
            "Link not usable",
            &format!(
                "<p class=\"err\" id=\"error\">{}</p><p>Ask the MCP client for a fresh link \
                 (call wifi_connect again).</p>",
                html_escape(why)
            ),
        )
    }
}

/// What the person submitted.
struct Submitted {
    csrf: String,
    passphrase: Option<String>,
    save: bool,
    name: String,
}

/// A form handed out: its CSRF token is the key of [`Inner::forms`].
#[derive(Clone)]
struct Form {
    id: String,
    ssid: Ssid,
    security: Security,
    expires: u64,
    made: u64,
}

/// Where the box is: its runtime dir on the host and the uid its root is.
#[derive(Debug, Clone)]
pub struct BoxTarget {
    /// The box dir (`/run/wifi-isolate/box/IFACE`).
    pub dir: PathBuf,
    /// The owner of its files (the box uid for netns, 0 for podman/docker).
    pub owner: u32,
}

#[derive(Default)]
struct Inner {
    key: Option<Vec<u8>>,
    target: Option<BoxTarget>,
    /// Spent link ids, until their links expire.
    used: HashMap<String, u64>,
    forms: HashMap<String, Form>,
}

/// What a successful submission does, outside the page's state (the `serve` module does it
/// for real; the tests record it).
pub trait Deliver: Send + Sync {
    /// Save `p` as the host's profile `name` (refused if it exists) and refresh the box's copy.
    fn save_profile(&self, name: &Name, p: &Profile) -> Result<(), String>;
    /// Write the one-time profile into the box.
    fn one_time(&self, target: &BoxTarget, ssid: &Ssid, p: &Profile) -> Result<(), String>;
}

/// The page: the logic of one instance's links and forms.
pub struct Page {
    instance: String,
    /// The authorities the page answers to: `127.0.0.1:PORT`, `localhost:PORT`.
    hosts: [String; 2],
    ttl: u64,
    inner: Mutex<Inner>,
}

impl Page {
    /// The page of `instance` on 127.0.0.1:`port`; links live `ttl_s` seconds.
    pub fn new(instance: &str, port: u16, ttl_s: u64) -> Page {
        Page {
            instance: instance.to_owned(),
            hosts: [format!("127.0.0.1:{port}"), format!("localhost:{port}")],
            ttl: ttl_s,
            inner: Mutex::default(),
        }
    }

    /// The base URL links start with.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.hosts[0])
    }

    /// A box started: a fresh key (earlier links die, as do open forms); returns the grant to
    /// put in the box.
    pub fn box_started(&self, target: BoxTarget) -> Grant {
        let key = random::<32>();
        let mut g = self.inner.lock().unwrap();
        g.key = Some(key.to_vec());
        g.target = Some(target);
        g.forms.clear();
        Grant {
            base_url: self.base_url(),
            key: hex::encode(key),
        }
    }

    /// The box is gone: no link works until the next one starts.
    pub fn box_gone(&self) {
        let mut g = self.inner.lock().unwrap();
        g.key = None;
        g.target = None;
        g.forms.clear();
    }

    fn host_ok(&self, host: Option<&str>) -> bool {
        host.is_some_and(|h| self.hosts.iter().any(|o| o == h))
    }

    fn origin_ok(&self, origin: Option<&str>) -> bool {
        origin.is_some_and(|o| {
            o.strip_prefix("http://")
                .is_some_and(|h| self.hosts.iter().any(|x| x == h))
        })
    }

    fn prune(g: &mut Inner, now: u64) {
        g.used.retain(|_, exp| *exp > now);
        g.forms.retain(|_, f| f.expires > now);
    }

    /// `GET /e/ID?…`: the form, or why not.
    pub fn get(&self, host: Option<&str>, path: &str, query: &str, now: u64) -> Reply {
        if !self.host_ok(host) {
            return Reply::refuse(421, "This page answers only on 127.0.0.1 or localhost.");
        }
        let Some(id) = path.strip_prefix(PATH_PREFIX) else {
            return Reply::refuse(404, "No such page.");
        };
        let q: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let field = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
        let mut g = self.inner.lock().unwrap();
        Self::prune(&mut g, now);
        let Some(key) = g.key.clone() else {
            return Reply::refuse(410, "The adapter's box is not running.");
        };
        let t: u64 = match field("t").parse() {
            Ok(t) => t,
            Err(_) => return Reply::refuse(400, "The link is incomplete."),
        };
        let Ok(tag) = hex::decode(field("mac")) else {
            return Reply::refuse(403, "The link is not valid.");
        };
        let (ssid_hex, sec) = (field("ssid"), field("security"));
        if id.len() != 32
            || !id.bytes().all(|b| b.is_ascii_hexdigit())
            || mac(&key, id, ssid_hex, sec, t).verify_slice(&tag).is_err()
        {
            return Reply::refuse(403, "The link is not valid (or from an earlier box).");
        }
        // Links are made by the box: the same clock (one kernel), a little slack for skew.
        if t > now + 60 || now >= t + self.ttl {
            return Reply::refuse(410, "The link has expired.");
        }
        if g.used.contains_key(id) {
            return Reply::refuse(410, "The link was used already: each link works once.");
        }
        let (Ok(ssid), Ok(security)) = (Ssid::from_hex(ssid_hex), sec.parse::<Security>()) else {
            return Reply::refuse(400, "The link names no valid network.");
        };
        if !askable(security) {
            return Reply::refuse(400, "This page asks only for WPA2/WPA3 passphrases.");
        }
        let form = Form {
            id: id.to_owned(),
            ssid,
            security,
            expires: t + self.ttl,
            made: now,
        };
        let csrf = Self::open_form(&mut g, form.clone());
        self.form_reply(&form, &csrf, None)
    }

    fn open_form(g: &mut Inner, form: Form) -> String {
        if g.forms.len() >= MAX_FORMS
            && let Some(oldest) = g
                .forms
                .iter()
                .min_by_key(|(_, f)| f.made)
                .map(|(k, _)| k.clone())
        {
            g.forms.remove(&oldest);
        }
        let csrf = hex::encode(random::<16>());
        g.forms.insert(csrf.clone(), form);
        csrf
    }

    fn form_reply(&self, f: &Form, csrf: &str, error: Option<&str>) -> Reply {
        let ssid = f.ssid.to_string_lossy();
        let what = match f.security {
            Security::Wpa3Sae => "WPA3 password",
            _ => "WPA passphrase",
        };
        let suggest: String = ssid
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .trim_matches('-')
            .chars()
            .take(32)
            .collect();
        let err = error
            .map(|e| format!("<p class=\"err\" id=\"error\">{}</p>", html_escape(e)))
            .unwrap_or_default();
        Reply::page(
            200,
            "WiFi passphrase",
            &format!(
                "<p>The box of adapter <code>{iface}</code> asks for the {what} of the network \
                 <span class=\"ssid\" id=\"ssid\">{ssid}</span> ({sec}). What you type here goes \
                 to that box only, for one connection; the AI model and the MCP client never \
                 see it. Only continue if you asked to join this network.</p>{err}\
                 <form method=\"post\" action=\"{PATH_PREFIX}{id}\" autocomplete=\"off\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <label>{what} <input type=\"password\" name=\"passphrase\" id=\"passphrase\" \
                 required minlength=\"{min}\" maxlength=\"{max}\" autofocus></label>\
                 <label><input type=\"checkbox\" name=\"save\" id=\"save\" value=\"1\"> also save \
                 it on this host as a saved network (root-only, for this adapter)</label>\
                 <label>saved network name <input name=\"name\" id=\"name\" value=\"{suggest}\" \
                 pattern=\"[a-z0-9][a-z0-9_-]{{0,31}}\"></label>\
                 <button type=\"submit\" id=\"submit\">Connect</button></form>",
                iface = html_escape(&self.instance),
                ssid = html_escape(&ssid),
                sec = html_escape(f.security.as_str()),
                id = html_escape(&f.id),
                csrf = html_escape(csrf),
                min = if f.security == Security::Wpa3Sae {
                    1
                } else {
                    8
                },
                max = if f.security == Security::Wpa3Sae {
                    128
                } else {
                    64
                },
                suggest = html_escape(&suggest),
            ),
        )
    }

    /// `POST /e/ID` with a form body: hand the passphrase to the box (and maybe save it).
    pub fn post(
        &self,
        host: Option<&str>,
        origin: Option<&str>,
        path: &str,
        body: &[u8],
        now: u64,
        deliver: &dyn Deliver,
    ) -> Reply {
        if !self.host_ok(host) {
            return Reply::refuse(421, "This page answers only on 127.0.0.1 or localhost.");
        }
        if !self.origin_ok(origin) {
            return Reply::refuse(403, "The form must be sent from this page.");
        }
        let Some(id) = path.strip_prefix(PATH_PREFIX) else {
            return Reply::refuse(404, "No such page.");
        };
        let mut s = Submitted {
            csrf: String::new(),
            passphrase: None,
            save: false,
            name: String::new(),
        };
        for (k, v) in form_urlencoded::parse(body) {
            match k.as_ref() {
                "csrf" => s.csrf = v.into_owned(),
                "passphrase" => s.passphrase = Some(v.into_owned()),
                "save" => s.save = !v.is_empty(),
                "name" => s.name = v.into_owned(),
                _ => {}
            }
        }
        let mut g = self.inner.lock().unwrap();
        Self::prune(&mut g, now);
        if g.used.contains_key(id) {
            return Reply::refuse(410, "The link was used already: each link works once.");
        }
        let Some(form) = g.forms.remove(&s.csrf).filter(|f| f.id == id) else {
            return Reply::refuse(
                403,
                "The form is not valid any more (expired, sent twice, or not from this page).",
            );
        };
        let Some(target) = g.target.clone() else {
            return Reply::refuse(410, "The adapter's box is not running.");
        };
        let again = |g: &mut Inner, why: &str| {
            let csrf = Self::open_form(g, form.clone());
            let mut r = self.form_reply(&form, &csrf, Some(why));
            r.status = 400;
            r
        };
        let pass = s.passphrase.unwrap_or_default();
        let profile = match Self::profile(&self.instance, &form, &pass) {
            Ok(p) => p,
            Err(e) => return again(&mut g, &e),
        };
        if s.save {
            let name = match Name::parse(s.name.trim()) {
                Ok(n) => n,
                Err(e) => return again(&mut g, &e.to_string()),
            };
            if let Err(e) = deliver.save_profile(&name, &profile) {
                return again(&mut g, &e);
            }
        }
        if let Err(e) = deliver.one_time(&target, &form.ssid, &profile) {
            return again(&mut g, &format!("could not hand it to the box: {e}"));
        }
        g.used.insert(form.id.clone(), form.expires);
        tracing::info!(
            IFACE = %self.instance,
            ssid = %form.ssid,
            security = form.security.as_str(),
            saved = s.save,
            "a passphrase typed into the elicitation page went to the box"
        );
        Reply::page(
            200,
            "Done",
            &format!(
                "<p id=\"done\">The box of <code>{}</code> has it. Go back to your MCP client: \
                 the retried wifi_connect to <span class=\"ssid\">{}</span> uses it once.</p>",
                html_escape(&self.instance),
                html_escape(&form.ssid.to_string_lossy())
            ),
        )
    }

    /// The profile a submission makes, validated as `network add` validates.
    fn profile(instance: &str, f: &Form, pass: &str) -> Result<Profile, String> {
        let ssid = std::str::from_utf8(f.ssid.as_bytes())
            .map_err(|_| "this SSID is not UTF-8 text: add it with `wifi-isolate network add`")?
            .to_owned();
        // The typed checks first: their messages never quote the value.
        match f.security {
            Security::Wpa3Sae => SaePassword::parse(pass).map(|_| ()),
            _ => Passphrase::parse(pass).map(|_| ()),
        }
        .map_err(|e| e.to_string())?;
        let (psk, sae_password) = match f.security {
            Security::Wpa3Sae => (None, Some(pass.to_owned())),
            _ => (Some(pass.to_owned()), None),
        };
        let p = Profile {
            ssid,
            security: f.security,
            psk,
            sae_password,
            hidden: false,
            bssid: None,
            mac_address: Default::default(),
            interfaces: vec![instance.to_owned()],
            eap: None,
        };
        p.validate()?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests;
