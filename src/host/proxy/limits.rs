//! What the endpoint holds under load and abuse: deadlines, connection caps, the byte budget for
//! buffered request bodies, and refusals counted into rate-limited log lines.
//!
//! # Connection caps
//!
//! A Unix-socket client is authenticated by the socket's mode and group before it can connect:
//! it takes a slot of [`ProxyConfig::max_connections`](super::ProxyConfig) when accepted, and
//! more such clients wait in the accept queue, as before.
//!
//! A TCP client is anybody on this machine until it presents the bearer token, so it must not be
//! able to take a slot an authenticated client needs:
//! - accepted at once into a small *pending* pool ([`Limits::max_tcp_pending`]); when the pool is
//!   full, the **oldest** pending connection is closed to make room (an attacker who fills the
//!   pool only evicts its own connections: a real client sends its request right after
//!   connecting and leaves the pool before anyone evicts it);
//! - a pending connection must send each request head within [`Limits::header_timeout`] — also
//!   while idle between requests: for it the idle deadline is the header deadline — or it is
//!   closed; its refused requests (401, 403) keep it pending (and keep-alive, so a client that
//!   pipelines is answered at full speed, yet holds nothing an authenticated client needs);
//! - its first request with a valid token moves it to the authenticated cap
//!   ([`Limits::max_tcp_connections`]): taken without waiting, or 503 + `Retry-After` when full.
//!
//! The Unix socket and TCP never share a cap: a TCP flood cannot starve the group's clients.

use std::fmt::Display;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::Peer;

/// Deadlines, caps and budgets of the endpoint (the `[proxy]` keys of the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// A request head must be complete within this long: counted from the accept for the first
    /// request, from its first byte for the next ones on a keep-alive connection.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in flight closes after this long.
    pub idle_timeout: Duration,
    /// A request body must have arrived this long after its head; else 408 and the connection
    /// closes.
    pub body_timeout: Duration,
    /// TCP connections that presented a valid token (their later requests are checked too).
    pub max_tcp_connections: usize,
    /// TCP connections that have not (yet) presented a valid token; the oldest is closed to
    /// make room for a new one.
    pub max_tcp_pending: usize,
    /// Request bodies buffered at once, across every connection, bytes; over it: 503 +
    /// `Retry-After`.
    pub body_budget_bytes: usize,
    /// One log line per kind of refusal per this long at most, with the count and the last peer.
    pub refusal_log_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self::from(&crate::host::config::ProxySettings::default())
    }
}

impl From<&crate::host::config::ProxySettings> for Limits {
    fn from(s: &crate::host::config::ProxySettings) -> Self {
        Self {
            header_timeout: Duration::from_millis(s.header_timeout_ms),
            idle_timeout: Duration::from_secs(s.idle_timeout_s),
            body_timeout: Duration::from_secs(s.body_timeout_s),
            max_tcp_connections: s.max_tcp_connections,
            max_tcp_pending: s.max_tcp_pending,
            body_budget_bytes: s.body_budget_bytes,
            refusal_log_interval: Duration::from_secs(10),
        }
    }
}

/// Why a request (or a connection) was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// TCP request without the right bearer token (401).
    BadToken,
    /// `Origin` present and not local (403).
    Origin,
    /// The authenticated TCP cap is full (503).
    TcpCap,
    /// A pending (unauthenticated) TCP connection closed to make room for a new one.
    TcpPendingEvicted,
    /// A request head not complete in time: connection closed.
    HeaderTimeout,
    /// A request body not complete in time (408).
    BodyTimeout,
    /// A request body over the size limit (413).
    TooLarge,
    /// The byte budget for buffered bodies is spent (503).
    Budget,
    /// The agent did not become ready in time (503).
    NotReady,
    /// The instance is held by a user's stop (503).
    Held,
    /// The instance is stopping (503).
    Stopping,
    /// The agent could not be reached (502).
    Unreachable,
}

impl Refusal {
    const ALL: [Refusal; 12] = [
        Refusal::BadToken,
        Refusal::Origin,
        Refusal::TcpCap,
        Refusal::TcpPendingEvicted,
        Refusal::HeaderTimeout,
        Refusal::BodyTimeout,
        Refusal::TooLarge,
        Refusal::Budget,
        Refusal::NotReady,
        Refusal::Held,
        Refusal::Stopping,
        Refusal::Unreachable,
    ];

    /// The `kind=` field of the log line.
    pub fn kind(self) -> &'static str {
        match self {
            Refusal::BadToken => "bad-token",
            Refusal::Origin => "non-local-origin",
            Refusal::TcpCap => "tcp-cap",
            Refusal::TcpPendingEvicted => "tcp-pending-evicted",
            Refusal::HeaderTimeout => "header-timeout",
            Refusal::BodyTimeout => "body-timeout",
            Refusal::TooLarge => "body-too-large",
            Refusal::Budget => "body-budget",
            Refusal::NotReady => "not-ready",
            Refusal::Held => "held",
            Refusal::Stopping => "stopping",
            Refusal::Unreachable => "agent-unreachable",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Default)]
struct Tally {
    /// Refusals not yet in a log line.
    pending: u64,
    last_peer: Option<Peer>,
    last_cause: Option<String>,
    /// When the last line was written (`None`: never).
    logged: Option<Instant>,
}

/// Refusals, counted per kind and logged as summaries: the first of a kind at once, then at most
/// one line per interval with the count since the previous line and the last peer. A flood of
/// refused requests therefore costs a handful of journal lines, and journald's rate limit is
/// left for the per-call audit records (which are never counted here).
pub struct Refusals {
    interval: Duration,
    instance: String,
    tallies: [Mutex<Tally>; Refusal::ALL.len()],
    total: AtomicU64,
}

impl Refusals {
    /// Counters for `instance`, at most one line per kind per `interval`.
    pub fn new(instance: &str, interval: Duration) -> Self {
        Self {
            interval,
            instance: instance.to_owned(),
            tallies: Default::default(),
            total: AtomicU64::new(0),
        }
    }

    /// Count one refusal of `kind` from `peer` (`cause`: a detail for the line, e.g. an error).
    pub fn count(&self, kind: Refusal, peer: &Peer, cause: Option<&dyn Display>) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut t = self.tallies[kind.index()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        t.pending += 1;
        t.last_peer = Some(peer.clone());
        if let Some(c) = cause {
            // Often the client's own words (an Origin): bounded.
            t.last_cause = Some(c.to_string().chars().take(128).collect());
        }
        if t.logged.is_none_or(|at| at.elapsed() >= self.interval) {
            self.log(kind, &mut t);
        }
    }

    /// Every refusal counted so far.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Write the lines that are due (`all`: every pending count, due or not — at the end).
    pub fn flush(&self, all: bool) {
        for kind in Refusal::ALL {
            let mut t = self.tallies[kind.index()]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if t.pending > 0 && (all || t.logged.is_none_or(|at| at.elapsed() >= self.interval)) {
                self.log(kind, &mut t);
            }
        }
    }

    fn log(&self, kind: Refusal, t: &mut Tally) {
        let peer = t
            .last_peer
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let cause = t.last_cause.take().unwrap_or_default();
        warn!(
            IFACE = %self.instance,
            kind = kind.kind(),
            count = t.pending,
            last_peer = %peer,
            cause = %cause,
            "refused MCP requests"
        );
        t.pending = 0;
        t.logged = Some(Instant::now());
    }
}

/// The byte budget for request bodies buffered at once, across every connection.
pub struct Budget {
    cap: usize,
    used: AtomicUsize,
}

impl Budget {
    /// A budget of `cap` bytes.
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes taken now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// Bytes taken from a [`Budget`]; given back on drop.
pub struct Reserved {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Reserved {
    /// Nothing taken yet.
    pub fn new(budget: &Arc<Budget>) -> Self {
        Self {
            budget: budget.clone(),
            bytes: 0,
        }
    }

    /// Take `n` more bytes; `false` (nothing taken) if that would overspend the budget.
    pub fn grow(&mut self, n: usize) -> bool {
        let cap = self.budget.cap;
        let ok = self
            .budget
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|&v| v <= cap)
            })
            .is_ok();
        if ok {
            self.bytes += n;
        }
        ok
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// The pool of TCP connections that have not presented a valid token yet (see the module doc).
pub struct PendingTcp {
    cap: usize,
    next: AtomicU64,
    queue: Mutex<std::collections::VecDeque<(u64, CancellationToken)>>,
}

impl PendingTcp {
    /// A pool of `cap` connections.
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            next: AtomicU64::new(0),
            queue: Mutex::default(),
        })
    }

    /// Admit a new connection: its id and the token cancelled when it is evicted, and whether
    /// an older one was evicted for it.
    pub fn admit(&self) -> (u64, CancellationToken, bool) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let mut evicted = false;
        while q.len() >= self.cap {
            if let Some((_, old)) = q.pop_front() {
                old.cancel();
                evicted = true;
            }
        }
        q.push_back((id, token.clone()));
        (id, token, evicted)
    }

    /// The connection `id` leaves the pool (authenticated, or closed).
    pub fn leave(&self, id: u64) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = q.iter().position(|(k, _)| *k == id) {
            q.remove(i);
        }
    }

    /// Connections in the pool now.
    pub fn len(&self) -> usize {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Is the pool empty?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One connection's activity, for its deadlines: requests in flight, when it went idle, when
/// the next request's first byte arrived. Times are milliseconds since the connection began.
pub struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    idle_since: AtomicU64,
    /// First byte read while idle, +1 (0: none since the connection went idle).
    pending_since: AtomicU64,
    /// Not authenticated yet (TCP): idle no longer than a header deadline.
    strict: std::sync::atomic::AtomicBool,
}

/// What a connection's deadline watch decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Deadline {
    /// Not due: look again after this long.
    Wait(Duration),
    /// A request head did not complete in time.
    HeaderTimeout,
    /// Idle (no request in flight) too long.
    Idle,
}

impl Activity {
    /// A connection accepted now; `strict` (an unauthenticated TCP connection): its idle
    /// deadline is the header deadline, until [`Activity::relax`].
    pub fn new(strict: bool) -> Arc<Self> {
        Arc::new(Self {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            pending_since: AtomicU64::new(0),
            strict: strict.into(),
        })
    }

    /// The connection authenticated: the idle deadline applies from now on.
    pub fn relax(&self) {
        self.strict.store(false, Ordering::Relaxed);
    }

    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    /// Bytes arrived from the client.
    pub fn read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.pending_since.load(Ordering::Relaxed) == 0
        {
            self.pending_since
                .store(self.now_ms() + 1, Ordering::Relaxed);
        }
    }

    /// A request's head was read: it is in flight until the guard is dropped (its response
    /// body sent, or the request given up).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.pending_since.store(0, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Is the connection due to close, given these limits?
    pub fn deadline(&self, l: &Limits) -> Deadline {
        let now = self.now_ms();
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Deadline::Wait(l.header_timeout.min(l.idle_timeout));
        }
        let header = l.header_timeout.as_millis() as u64;
        let pending = self.pending_since.load(Ordering::Relaxed);
        let (due, why) = if self.requests.load(Ordering::Relaxed) == 0 {
            (header, Deadline::HeaderTimeout)
        } else if pending != 0 {
            (pending - 1 + header, Deadline::HeaderTimeout)
        } else if self.strict.load(Ordering::Relaxed) {
            (
                self.idle_since.load(Ordering::Relaxed) + header,
                Deadline::HeaderTimeout,
            )
        } else {
            (
                self.idle_since.load(Ordering::Relaxed) + l.idle_timeout.as_millis() as u64,
                Deadline::Idle,
            )
        };
        if now >= due {
            why
        } else {
            // Never past a header deadline that a byte arriving meanwhile would start.
            Deadline::Wait(Duration::from_millis(due - now).min(l.header_timeout))
        }
    }
}

/// A request in flight on a connection (see [`Activity::begin`]).
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now_ms(), Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_shared_and_given_back() {
        let b = Budget::new(100);
        let mut one = Reserved::new(&b);
        assert!(one.grow(60));
        let mut two = Reserved::new(&b);
        assert!(!two.grow(41), "overspent");
        assert!(two.grow(40));
        drop(one);
        assert_eq!(b.used(), 40);
        drop(two);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn the_oldest_pending_connection_is_evicted() {
        let p = PendingTcp::new(2);
        let (a, ta, e) = p.admit();
        assert!(!e);
        let (_, tb, _) = p.admit();
        let (_, tc, e) = p.admit();
        assert!(e && ta.is_cancelled() && !tb.is_cancelled() && !tc.is_cancelled());
        p.leave(a);
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn deadlines() {
        let l = Limits {
            header_timeout: Duration::from_millis(50),
            idle_timeout: Duration::from_millis(200),
            ..Limits::default()
        };
        let a = Activity::new(false);
        assert!(matches!(a.deadline(&l), Deadline::Wait(_)));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(a.deadline(&l), Deadline::HeaderTimeout, "first head late");
        let g = a.begin();
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(a.deadline(&l), Deadline::Wait(_)), "in flight");
        drop(g);
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(a.deadline(&l), Deadline::Wait(_)), "idle, not yet");
        a.read();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(a.deadline(&l), Deadline::HeaderTimeout, "next head late");
        let g = a.begin();
        drop(g);
        std::thread::sleep(Duration::from_millis(210));
        assert_eq!(a.deadline(&l), Deadline::Idle);
        // Unauthenticated: idle only as long as a head may take.
        let s = Activity::new(true);
        drop(s.begin());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(s.deadline(&l), Deadline::HeaderTimeout);
        s.relax();
        assert!(matches!(s.deadline(&l), Deadline::Wait(_)));
    }
}
