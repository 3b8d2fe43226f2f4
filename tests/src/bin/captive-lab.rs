//! The agent suite's captive portal, run by tests/vm/agent/guest.sh in the open AP's netns
//! (never anywhere else), on HTTP :8090 (dnsmasq answers ap.test with the AP's address):
//!
//! - `/generate_204` — the check URL: 204 once the request carries a cookie `auth` this portal
//!   issued, else 302 → `/welcome?from=check` → 302 → `/portal` (a chain of two);
//! - `/portal` — a new session (`sid` cookie) and a page with two forms: a language form (GET),
//!   then the login form (POST, relative action `login`) with a hidden `token` bound to the
//!   session, a required `room` field, a required accept checkbox (`accept=yes`), a select and a
//!   named submit button; plus a script the page does not need;
//! - `POST /login` — grants (a new `auth` cookie, 303 → `/online`) only with the session's cookie,
//!   its token, `accept=yes` and a room; otherwise 200 with the reason ("you must accept the
//!   terms", "invalid token", …) and the form again;
//! - `/js/generate_204` → 302 → `/js/portal`: a portal that works with JavaScript only (scripts,
//!   an onclick button, a `javascript:` link, `<noscript>`; no form);
//! - `/hostile/generate_204` → 302 → `/hostile/portal`: forms whose actions are `file:`,
//!   `javascript:` and the box's own loopback.
//!
//! Writes every secret it issues (session ids, tokens, auth values) to `DIR/issued`, one a line
//! (the client checks no tool result shows one), the number of granted logins to `DIR/granted`,
//! one line per request to `DIR/requests.log`, its port to `DIR/port` and `DIR/ready` when it
//! listens. Usage: `captive-lab DIR [ADDR]` (default 0.0.0.0:8090; the host test gives
//! 127.0.0.1:0).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

#[derive(Default)]
struct State {
    /// session id → its form token
    sessions: HashMap<String, String>,
    /// auth cookie values issued
    granted: HashSet<String>,
    dir: PathBuf,
}

impl State {
    fn issue(&self, what: &str) -> String {
        let mut b = [0u8; 12];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").expect("/dev/urandom"),
            &mut b,
        )
        .expect("/dev/urandom");
        let v: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("issued"))
            .expect("issued");
        let _ = writeln!(f, "{v}");
        let _ = what;
        v
    }
}

fn cookie(headers: &hyper::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn html(status: u16, body: String) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}

fn redirect(status: u16, to: &str) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("location", to)
        .body(Full::default())
        .expect("response")
}

fn portal_page(token: &str, message: &str) -> String {
    format!(
        r#"<!doctype html>
<html><head><title>Lab Hotel WiFi</title><script src="/static/analytics.js"></script></head>
<body>
<form action="/portal" method="get"><select name="lang"><option value="en" selected>English
<option value="de">Deutsch</select><input type="submit" value="Change language"></form>
<h1>Welcome to the Lab Hotel</h1>
<p class="message">{message}</p>
<form id="login" action="login" method="post">
  <input type="hidden" name="token" value="{token}">
  <label for="room">Room number</label> <input id="room" name="room" required>
  <label><input type="checkbox" name="accept" value="yes" required> I accept the terms of use</label>
  <select name="plan"><option value="free" selected>Free (1 Mbit/s)</option><option value="fast">Fast</option></select>
  <button type="submit" name="action" value="connect">Connect</button>
</form>
</body></html>
"#
    )
}

const JS_PORTAL: &str = r#"<!doctype html>
<html><head><title>Connecting</title><script src="/js/app.js"></script>
<script>document.addEventListener('DOMContentLoaded', function () { start('#app'); });</script></head>
<body><div id="app">Loading the portal, please wait</div>
<button onclick="accept()">Accept and connect</button> <a href="javascript:help()">Help</a>
<noscript>This WiFi needs JavaScript to log in.</noscript></body></html>
"#;

const HOSTILE_PORTAL: &str = r#"<!doctype html>
<html><head><title>Free WiFi</title></head><body>
<form action="file:///etc/passwd" method="post"><input name="email"><input type="submit"></form>
<form action="javascript:steal()"><input name="card"><input type="submit"></form>
<form action="http://127.0.0.1:8090/login" method="post"><input name="room"><input type="submit"></form>
</body></html>
"#;

async fn handle(
    state: Arc<Mutex<State>>,
    r: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let method = r.method().clone();
    let path = r.uri().path().to_string();
    let headers = r.headers().clone();
    let body = r
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    {
        let mut cookies: Vec<&str> = headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('=').map(|(k, _)| k))
            .collect();
        cookies.sort();
        let mut fields: Vec<&String> = form.keys().collect();
        fields.sort();
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(st.dir.join("requests.log"))
        {
            let _ = writeln!(f, "{method} {path} cookies={cookies:?} fields={fields:?}");
        }
    }
    let resp = match (method.as_str(), path.as_str()) {
        (_, "/generate_204") => {
            if cookie(&headers, "auth").is_some_and(|a| st.granted.contains(&a)) {
                hyper::Response::builder()
                    .status(204)
                    .body(Full::default())
                    .expect("response")
            } else {
                redirect(302, "/welcome?from=check")
            }
        }
        (_, "/welcome") => redirect(302, "/portal"),
        ("GET", "/portal") => {
            let sid = st.issue("sid");
            let token = st.issue("token");
            st.sessions.insert(sid.clone(), token.clone());
            let mut resp = html(200, portal_page(&token, "Please log in."));
            resp.headers_mut().insert(
                "set-cookie",
                format!("sid={sid}; Path=/; HttpOnly")
                    .parse()
                    .expect("header"),
            );
            resp
        }
        ("POST", "/login") => {
            let session = cookie(&headers, "sid").and_then(|s| st.sessions.get(&s).cloned());
            let refusal = match session {
                None => Some("Your session has expired: reload the page."),
                Some(t) if form.get("token") != Some(&t) => Some("Login failed: invalid token."),
                Some(_) if form.get("accept").map(String::as_str) != Some("yes") => {
                    Some("Login failed: you must accept the terms of use.")
                }
                Some(_) if form.get("room").is_none_or(|r| r.trim().is_empty()) => {
                    Some("Login failed: a room number is required.")
                }
                Some(_) => None,
            };
            match refusal {
                Some(why) => {
                    let token = cookie(&headers, "sid")
                        .and_then(|s| st.sessions.get(&s).cloned())
                        .unwrap_or_default();
                    html(200, portal_page(&token, why))
                }
                None => {
                    let auth = st.issue("auth");
                    st.granted.insert(auth.clone());
                    let _ = std::fs::write(st.dir.join("granted"), st.granted.len().to_string());
                    let mut resp = redirect(303, "/online");
                    resp.headers_mut().insert(
                        "set-cookie",
                        format!("auth={auth}; Path=/").parse().expect("header"),
                    );
                    resp
                }
            }
        }
        ("GET", "/online") => html(
            200,
            "<html><head><title>Online</title></head><body><h1>You are online.</h1>\
             <p>Enjoy your stay.</p></body></html>"
                .into(),
        ),
        (_, "/js/generate_204") => redirect(302, "/js/portal"),
        ("GET", "/js/portal") => html(200, JS_PORTAL.into()),
        (_, "/hostile/generate_204") => redirect(302, "/hostile/portal"),
        ("GET", "/hostile/portal") => html(200, HOSTILE_PORTAL.into()),
        _ => html(404, "<html><body>not here</body></html>".into()),
    };
    Ok(resp)
}

#[tokio::main]
async fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: captive-lab DIR [ADDR]");
        std::process::exit(2);
    };
    let addr = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "0.0.0.0:8090".into());
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let _ = std::fs::write(dir.join("granted"), "0");
    let state = Arc::new(Mutex::new(State {
        dir: dir.clone(),
        ..State::default()
    }));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .unwrap_or_else(|e| panic!("{addr}: {e}"));
    let port = listener.local_addr().expect("local addr").port();
    std::fs::write(dir.join("port"), port.to_string()).expect("port");
    std::fs::write(dir.join("ready"), "").expect("ready");
    eprintln!("captive-lab: listening on {addr} (port {port})");
    loop {
        let Ok((s, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(
            TokioIo::new(s),
            service_fn(move |r| handle(state.clone(), r)),
        ));
    }
}
