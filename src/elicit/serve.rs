//! The page's HTTP listener (hyper, 127.0.0.1 only) and what a submission writes: the one-time
//! profile in the box's `elicit/` dir, and a saved network on the host.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response};
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, fchmod, fstat, mkdirat};
use nix::unistd::{Gid, Uid, fchown};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{BoxTarget, Deliver, GRANT_FILE, MAX_BODY, Page, Reply, SUBDIR};
use crate::networks::{Name, Profile, Store};
use crate::validate::Ssid;

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Open (making it if missing) `<box_dir>/elicit` without following links, owned by `owner`,
/// 0700. A dir made now is given to `owner`; one that was there must be `owner`'s already.
pub fn open_box_subdir(box_dir: &Path, owner: u32) -> std::io::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let parent: OwnedFd = openat(nix::fcntl::AT_FDCWD, box_dir, flags, Mode::empty())?;
    let made = match mkdirat(parent.as_fd(), SUBDIR, Mode::from_bits_truncate(0o700)) {
        Ok(()) => true,
        Err(nix::errno::Errno::EEXIST) => false,
        Err(e) => return Err(e.into()),
    };
    let dir: OwnedFd = openat(parent.as_fd(), SUBDIR, flags, Mode::empty())?;
    if made {
        fchown(
            dir.as_fd(),
            Some(Uid::from_raw(owner)),
            Some(Gid::from_raw(owner)),
        )?;
    }
    let st = fstat(dir.as_fd())?;
    if st.st_uid != owner {
        return Err(std::io::Error::other(format!(
            "{}/{SUBDIR} belongs to uid {}, not the box's {owner}: refusing to write there",
            box_dir.display(),
            st.st_uid
        )));
    }
    fchmod(dir.as_fd(), Mode::from_bits_truncate(0o700))?;
    Ok(dir)
}

/// The real deliveries: the box's `elicit/` dir, and the host's saved networks.
pub struct BoxDelivery {
    /// The instance (the profile is for its box alone).
    pub instance: String,
    /// The host's profiles directory.
    pub networks_dir: PathBuf,
}

impl Deliver for BoxDelivery {
    fn save_profile(&self, name: &Name, p: &Profile) -> Result<(), String> {
        let store = Store::new(&self.networks_dir);
        let path = store.save(name, p, false).map_err(|e| e.to_string())?;
        info!(IFACE = %self.instance, network = %name, path = %path.display(), "saved network added from the elicitation page");
        Ok(())
    }

    fn one_time(&self, target: &BoxTarget, ssid: &Ssid, p: &Profile) -> Result<(), String> {
        let text = toml::to_string(p).map_err(|e| e.to_string())?;
        let dir = open_box_subdir(&target.dir, target.owner).map_err(|e| e.to_string())?;
        crate::host::files::write_owned_in(
            &dir,
            &super::one_time_file(ssid),
            target.owner,
            text.as_bytes(),
        )
        .map_err(|e| e.to_string())?;
        // A saved one reaches the box's networks/ too (as `network add` does it).
        let store = Store::new(&self.networks_dir);
        if let Ok((files, _)) = store.for_box(&self.instance) {
            let _ = crate::networks::install_in_box(&target.dir, target.owner, &files);
        }
        Ok(())
    }
}

/// The running daemon's page, if it serves one (one instance per process): the box start
/// hands the box its grant through it.
static ACTIVE: OnceLock<Arc<Page>> = OnceLock::new();

/// A box of `instance` started in `box_dir` (owner: the uid its root is): if this process
/// serves a page, a fresh key and the grant file for the box. Failures are logged: the box
/// works without (its clients get the `network add` error).
pub fn box_started(box_dir: &Path, owner: u32) {
    let Some(page) = ACTIVE.get() else {
        return;
    };
    let grant = page.box_started(BoxTarget {
        dir: box_dir.to_owned(),
        owner,
    });
    let done = serde_json::to_vec(&grant)
        .map_err(std::io::Error::other)
        .and_then(|json| {
            let dir = open_box_subdir(box_dir, owner)?;
            crate::host::files::write_owned_in(&dir, GRANT_FILE, owner, &json)
        });
    match done {
        Ok(()) => info!(base_url = %grant.base_url, "elicitation grant given to the box"),
        Err(e) => {
            page.box_gone();
            warn!(cause = %e, "no elicitation grant for the box: its clients get the `network add` error")
        }
    }
}

/// Bind 127.0.0.1:`port` (0: any free port) for `instance`'s page; the bound port is in the
/// page's base URL.
pub fn bind(
    instance: &str,
    port: u16,
    ttl_s: u64,
) -> std::io::Result<(Arc<Page>, std::net::TcpListener)> {
    let l = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port))?;
    l.set_nonblocking(true)?;
    let port = l.local_addr()?.port();
    Ok((Arc::new(Page::new(instance, port, ttl_s)), l))
}

/// Make `page` the one box starts hand out grants for (once per process).
pub fn activate(page: Arc<Page>) {
    let _ = ACTIVE.set(page);
}

/// The daemon's page: bound on 127.0.0.1 (`[elicitation]`), activated for box starts and served
/// until `ct` is cancelled. A port that cannot be bound is logged; the daemon runs without.
pub fn start(
    instance: &str,
    settings: &crate::host::config::ElicitationSettings,
    networks_dir: &Path,
    ct: &CancellationToken,
) {
    if !settings.enabled {
        info!(IFACE = %instance, "elicitation page off ([elicitation] enabled = false)");
        return;
    }
    let (page, listener) = match bind(instance, settings.port, settings.ttl_s) {
        Ok(p) => p,
        Err(e) => {
            warn!(IFACE = %instance, port = settings.port, cause = %e, "elicitation page not served: its clients get the `network add` error");
            return;
        }
    };
    info!(IFACE = %instance, base_url = %page.base_url(), "elicitation page on loopback");
    activate(page.clone());
    let deliver = Arc::new(BoxDelivery {
        instance: instance.to_owned(),
        networks_dir: networks_dir.to_owned(),
    });
    let ct = ct.clone();
    tokio::spawn(async move {
        if let Err(e) = serve(page, listener, deliver, ct).await {
            warn!(cause = %e, "elicitation page stopped");
        }
    });
}

/// Concurrent connections the page serves; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 16;

/// Serve `page` on `listener` until `ct` is cancelled.
pub async fn serve(
    page: Arc<Page>,
    listener: std::net::TcpListener,
    deliver: Arc<dyn Deliver>,
    ct: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.map_err(std::io::Error::other)?,
            _ = ct.cancelled() => return Ok(()),
        };
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    warn!(cause = %e, "elicitation page: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = ct.cancelled() => return Ok(()),
        };
        let (page, deliver) = (page.clone(), deliver.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let svc = hyper::service::service_fn(move |req| {
                let (page, deliver) = (page.clone(), deliver.clone());
                async move { Ok::<_, std::convert::Infallible>(handle(&page, &*deliver, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
        });
    }
}

async fn handle(
    page: &Page,
    deliver: &dyn Deliver,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (host, origin) = (header("host"), header("origin"));
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let reply = match *req.method() {
        hyper::Method::GET => page.get(host.as_deref(), &path, &query, now()),
        hyper::Method::POST => {
            let body = tokio::time::timeout(
                Duration::from_secs(30),
                Limited::new(req.into_body(), MAX_BODY).collect(),
            )
            .await;
            match body {
                Ok(Ok(b)) => page.post(
                    host.as_deref(),
                    origin.as_deref(),
                    &path,
                    &b.to_bytes(),
                    now(),
                    deliver,
                ),
                _ => Reply::refuse(413, "The form is too large or too slow."),
            }
        }
        _ => Reply::refuse(405, "Only GET and POST."),
    };
    Response::builder()
        .status(reply.status)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on the
        // form's POST (Chromium does), and the Origin check needs the real one.
        .header("referrer-policy", "same-origin")
        .header("x-frame-options", "DENY")
        .header("x-content-type-options", "nosniff")
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        )
        .body(Full::new(Bytes::from(reply.body)))
        .expect("a valid response")
}
