//! Captive portals: `network_check_captive` (the check URL's answer, the redirect chain to the
//! portal, the portal page read by [`portal`](super::portal)) and `network_captive_login` (one
//! of the page's forms filled and submitted, the answer followed, the check run again).
//!
//! Every request goes through `network_http_request`'s client ([`super::http::request`]): the
//! same TLS options, redirect bounds and the one cookie jar of the box, so a portal's session
//! cookie set on the page reaches the submission, and the cookie the submission sets reaches the
//! second check. Results name cookies, never their values (they are session secrets), and name
//! the fields submitted, never their values (an access code, a room number).
//!
//! Choices on hostile pages: a form whose action is not http(s) (`file:`, `javascript:`,
//! `data:`) is refused; so is one whose action points at the box's own loopback when the page
//! itself does not come from there (the network choosing a local target). An action on another
//! host than the page's is allowed and reported: real portals post to an authentication host of
//! their own, and the network controls every host the box can reach anyway.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Serialize;

use super::http::{self, Hop, HttpResponse};
use super::portal::{self, FieldValue, PortalPage};
use super::target::{Family, check_web_url};
use super::tls::TlsOptions;
use crate::agent::failure::{Code, Failure};
use crate::agent::nettools::{Connectivity, Dns, classify};

/// The most redirects followed to the portal page, and after a submission.
pub const MAX_REDIRECTS: u32 = 5;

/// `network_check_internet` result (`network_check_captive` returns these fields and more).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CheckResult {
    /// full, captive or none.
    pub connectivity: Connectivity,
    /// The check URL.
    pub url: String,
    /// HTTP status, if an answer came.
    pub status: Option<u16>,
    /// Where a captive portal redirects to.
    pub portal_url: Option<String>,
    /// What went wrong, when there was no answer.
    pub error: Option<String>,
    /// The address family the check URL was reached over (ipv4 or ipv6), when it answered.
    pub family: Option<String>,
    /// Time taken in milliseconds.
    pub elapsed_ms: u64,
}

/// Result of `network_check_captive`: the check's fields (`elapsed_ms` with the portal page
/// included), then the portal.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CaptiveCheck {
    /// The check URL's answer, as network_check_internet reports it.
    #[serde(flatten)]
    pub check: CheckResult,
    /// Every response from the check URL to the portal page (the redirect chain), in order.
    pub redirects: Vec<Hop>,
    /// The portal page: its forms (action, method, fields, submit buttons), scripts, text.
    pub portal: Option<PortalPage>,
    /// Why the portal page could not be read (an untrusted certificate, a redirect not followed).
    pub portal_error: Option<String>,
    /// The portal has no form to submit but scripts: it works in a browser only (the page's
    /// script_signs say what was found).
    pub needs_browser: bool,
    /// Names of the cookies the check URL and the portal set (values are not shown).
    pub cookies_set: Vec<String>,
    /// Names of the cookies sent to the check URL (the session's, from earlier answers).
    pub cookies_sent: Vec<String>,
}

/// How the check and the login fetch: TLS trust and each connect's bound.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// Trust for https (a portal on a self-signed certificate needs `insecure` or its CA).
    pub tls: TlsOptions,
    /// Each connect's limit.
    pub connect_timeout: Duration,
    /// The address family of every request.
    pub family: Family,
}

fn get(url: url::Url, f: &Fetch, follow: bool) -> http::Request {
    http::Request {
        url,
        method: ::http::Method::GET,
        headers: vec![],
        body: None,
        max_body: portal::MAX_PAGE,
        follow_redirects: follow,
        max_redirects: MAX_REDIRECTS,
        tls: f.tls.clone(),
        family: f.family,
        cookies: true,
        connect_timeout: f.connect_timeout,
    }
}

/// The body of a response as text (an excerpt that was not UTF-8 came back as base64).
fn body_text(r: &HttpResponse) -> String {
    if r.body_encoding == "base64" {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&r.body)
            .unwrap_or_default();
        String::from_utf8_lossy(&raw).into_owned()
    } else {
        r.body.clone()
    }
}

/// The first value of response header `name` (lower case).
pub fn header<'a>(r: &'a HttpResponse, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A last response as one hop of a chain.
fn hop_of(r: &HttpResponse) -> Hop {
    Hop {
        url: r.final_url.clone(),
        method: r.method.clone(),
        status: r.status,
        location: header(r, "location").map(str::to_string),
        peer: r.peer.clone(),
        elapsed_ms: r.timing.hop_ms,
    }
}

fn page_of(r: &HttpResponse) -> PortalPage {
    let url = url::Url::parse(&r.final_url)
        .unwrap_or_else(|_| url::Url::parse("http://invalid.invalid/").expect("a constant URL"));
    portal::parse(&body_text(r), &url, r.truncated)
}

/// One GET of the check URL, not following redirects, with the session's cookies, classified:
/// `network_check_internet`'s result and the first step of [`check`] (with the answer, if one
/// came).
pub async fn probe(
    dns: &Dns,
    url: &url::Url,
    f: &Fetch,
) -> (CheckResult, Result<HttpResponse, Failure>) {
    let started = Instant::now();
    let got = http::request(dns, &get(url.clone(), f, false)).await;
    let mut c = CheckResult {
        connectivity: Connectivity::None,
        url: url.to_string(),
        status: None,
        portal_url: None,
        error: None,
        family: None,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    match &got {
        Ok(r) => {
            c.status = Some(r.status);
            c.family = Some(r.family.clone());
            c.connectivity = classify(Some(r.status), r.body_bytes);
            c.portal_url = header(r, "location").map(str::to_string);
        }
        Err(e) => c.error = Some(e.text.clone()),
    }
    (c, got)
}

/// The check and, when captive, the portal page. The failure is the check URL's own, when it
/// did not answer.
pub async fn check(dns: &Dns, url: &url::Url, f: &Fetch) -> (CaptiveCheck, Option<Failure>) {
    let started = Instant::now();
    let (check, first) = probe(dns, url, f).await;
    let mut out = CaptiveCheck {
        check,
        redirects: vec![],
        portal: None,
        portal_error: None,
        needs_browser: false,
        cookies_set: vec![],
        cookies_sent: vec![],
    };
    let first = match first {
        Ok(r) => r,
        Err(e) => return (out, Some(e)),
    };
    out.cookies_set = first.cookies_set.clone();
    out.cookies_sent = first.cookies_sent.clone();
    if out.check.connectivity == Connectivity::Captive {
        let redirect = matches!(first.status, 301 | 302 | 303 | 307 | 308);
        match (redirect, out.check.portal_url.clone()) {
            (true, Some(loc)) => {
                out.redirects.push(hop_of(&first));
                match url.join(&loc).map_err(|e| e.to_string()).and_then(|next| {
                    check_web_url(&next).map_err(|e| e.text)?;
                    Ok(next)
                }) {
                    Err(why) => {
                        out.portal_error = Some(format!("the portal's address {loc:?}: {why}"))
                    }
                    Ok(next) => match http::request(dns, &get(next, f, true)).await {
                        Ok(r) => {
                            out.redirects.extend(r.redirects.iter().cloned());
                            for c in &r.cookies_set {
                                if !out.cookies_set.contains(c) {
                                    out.cookies_set.push(c.clone());
                                }
                            }
                            if let Some(why) = &r.redirect_not_followed {
                                out.portal_error =
                                    Some(format!("the chain stops at {}: {why}", r.final_url));
                            }
                            let page = page_of(&r);
                            out.needs_browser = page.needs_browser;
                            out.portal = Some(page);
                        }
                        Err(e) => {
                            out.portal_error = Some(format!(
                                "fetching the portal page: {} ({})",
                                e.text,
                                e.code.as_str()
                            ))
                        }
                    },
                }
            }
            (true, None) => out.portal_error = Some("a redirect without a Location".into()),
            (false, _) => {
                // The portal answered the check URL itself (a page instead of 204).
                let page = page_of(&first);
                out.needs_browser = page.needs_browser;
                out.portal = Some(page);
            }
        }
    }
    out.check.elapsed_ms = started.elapsed().as_millis() as u64;
    (out, None)
}

/// What `network_captive_login` does.
#[derive(Debug, Clone)]
pub struct Login {
    /// The portal page to read the form from (default: where the check URL leads).
    pub page_url: Option<url::Url>,
    /// The check URL (before and after).
    pub check_url: url::Url,
    /// The form's index on the page (default: the first that can be submitted).
    pub form: Option<usize>,
    /// The submit button's index in the form (default: its first).
    pub submit: Option<usize>,
    /// The caller's values.
    pub fields: BTreeMap<String, FieldValue>,
    /// TLS trust and connect bound.
    pub fetch: Fetch,
}

/// The submission, as sent and as answered.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Submitted {
    /// The form's index on the page.
    pub form: usize,
    /// Where it went (a GET form's query not shown: it holds the values).
    pub action: String,
    /// GET or POST.
    pub method: String,
    /// The body's encoding (POST).
    pub enctype: Option<String>,
    /// The field names sent, in order (values are not shown).
    pub fields_sent: Vec<String>,
    /// The names whose values the caller set.
    pub fields_from_caller: Vec<String>,
    /// The submit button used, by its label.
    pub submit: Option<String>,
    /// HTTP status of the last answer (after redirects).
    pub status: u16,
    /// The URL of the last answer.
    pub final_url: String,
    /// The responses before the last one (the redirect chain after the submission).
    pub redirects: Vec<Hop>,
    /// Names of the cookies the answers set (values are not shown).
    pub cookies_set: Vec<String>,
    /// Names of the cookies sent with the submission.
    pub cookies_sent: Vec<String>,
    /// The answer page's title.
    pub response_title: Option<String>,
    /// The answer page's visible text (at most 600 characters): a portal says here why it
    /// refused.
    pub response_excerpt: String,
    /// Forms on the answer page (a login page again, often, after a refusal).
    pub response_forms: usize,
}

/// Result of `network_captive_login`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CaptiveLogin {
    /// Connectivity before the submission (the check URL's answer).
    pub connectivity_before: Connectivity,
    /// The portal page the form came from.
    pub portal_url: Option<String>,
    /// The submission; absent when there was nothing to do (already full).
    pub submitted: Option<Submitted>,
    /// Connectivity after it: full means the portal let the box through.
    pub connectivity_after: Connectivity,
    /// The check URL's status after the submission.
    pub check_status: Option<u16>,
    /// What went wrong with the check after the submission, if it got no answer.
    pub check_error: Option<String>,
    /// Names of the cookies sent with the second check.
    pub check_cookies_sent: Vec<String>,
    /// connectivity_after is full.
    pub logged_in: bool,
    /// The check URL.
    pub check_url: String,
    /// Warnings: required fields left unset, an action on another host, a downgrade to http.
    pub notes: Vec<String>,
    /// The whole call, ms.
    pub elapsed_ms: f64,
}

fn is_local(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    }
}

/// Check, read the portal page, submit the chosen form with the caller's values, follow the
/// answer, check again. `step` reports progress (0 check, 1 page, 2 submit, 3 check again).
pub async fn login(
    dns: &Dns,
    l: &Login,
    step: impl Fn(usize, String),
) -> Result<CaptiveLogin, Failure> {
    let started = Instant::now();
    step(0, format!("checking {}", l.check_url));
    let (before, failed) = check(dns, &l.check_url, &l.fetch).await;
    let mut notes = Vec::new();
    if before.check.connectivity == Connectivity::Full && l.page_url.is_none() {
        notes.push(format!(
            "the check URL answered {}: there is no portal in the way; nothing was submitted",
            before.check.status.unwrap_or(0)
        ));
        return Ok(CaptiveLogin {
            connectivity_before: Connectivity::Full,
            portal_url: None,
            submitted: None,
            connectivity_after: Connectivity::Full,
            check_status: before.check.status,
            check_error: None,
            check_cookies_sent: before.cookies_sent,
            logged_in: true,
            check_url: l.check_url.to_string(),
            notes,
            elapsed_ms: super::ms_since(started),
        });
    }
    let page = match &l.page_url {
        Some(u) => {
            step(1, format!("reading {u}"));
            let r = http::request(dns, &get(u.clone(), &l.fetch, true))
                .await
                .map_err(|e| {
                    Failure::new(e.code, format!("reading the portal page {u}: {}", e.text))
                })?;
            page_of(&r)
        }
        None => match (before.portal, failed) {
            (Some(p), _) => p,
            (None, Some(e)) => {
                return Err(Failure::new(
                    e.code,
                    format!("the check URL {} did not answer: {}", l.check_url, e.text),
                ));
            }
            (None, None) => {
                return Err(Failure::new(
                    Code::NotFound,
                    format!(
                        "no portal page to read: {}; give the portal page as url",
                        before.portal_error.unwrap_or_else(|| format!(
                            "the check URL answered {}",
                            before.check.status.unwrap_or(0)
                        ))
                    ),
                ));
            }
        },
    };
    let form = match l.form {
        Some(i) => page.forms.get(i).ok_or_else(|| {
            Failure::invalid(format!(
                "form {i} is out of range: {} has {} form(s){}; nothing was sent",
                page.url,
                page.forms.len(),
                if page.forms.is_empty() {
                    String::new()
                } else {
                    format!(" (0-{})", page.forms.len() - 1)
                }
            ))
        })?,
        None => match page.forms.iter().find(|f| f.unusable.is_none()) {
            Some(f) => f,
            None if page.needs_browser => {
                return Err(Failure::new(
                    Code::NeedsBrowser,
                    format!(
                        "the portal page {} needs a browser: no form to submit, but {}{}; nothing \
                         was sent",
                        page.url,
                        page.script_signs.join(", "),
                        if page.scripts.is_empty() {
                            String::new()
                        } else {
                            format!(" (scripts: {})", page.scripts.join(", "))
                        }
                    ),
                ));
            }
            None if page.forms.is_empty() => {
                return Err(Failure::new(
                    Code::NotFound,
                    format!(
                        "no form on the portal page {}{}{}; nothing was sent",
                        page.url,
                        page.meta_refresh
                            .as_ref()
                            .map(|m| format!("; it refreshes to {m}"))
                            .unwrap_or_default(),
                        if page.links.is_empty() {
                            String::new()
                        } else {
                            format!("; its links: {}", page.links.join(", "))
                        }
                    ),
                ));
            }
            None => {
                return Err(Failure::invalid(format!(
                    "no form on {} can be submitted: {}; nothing was sent",
                    page.url,
                    page.forms
                        .iter()
                        .map(|f| format!(
                            "form {}: {}",
                            f.index,
                            f.unusable.as_deref().unwrap_or("?")
                        ))
                        .collect::<Vec<_>>()
                        .join("; ")
                )));
            }
        },
    };
    let sub = portal::fill(form, &l.fields, l.submit)?;
    let page_url = url::Url::parse(&page.url).ok();
    if is_local(&sub.url) && !page_url.as_ref().is_some_and(is_local) {
        return Err(Failure::invalid(format!(
            "form {} submits to {}, the box's own loopback, from a page on the network: refused \
             (a hostile page choosing a local target); nothing was sent",
            form.index,
            sub.url.host_str().unwrap_or("")
        )));
    }
    if let Some(p) = &page_url {
        if p.host_str() != sub.url.host_str() {
            notes.push(format!(
                "the form submits to {}, another host than the portal page's ({})",
                sub.url.host_str().unwrap_or(""),
                p.host_str().unwrap_or("")
            ));
        }
        if p.scheme() == "https" && sub.url.scheme() == "http" {
            notes.push("the form submits over plain http from an https page".into());
        }
    }
    notes.extend(sub.notes.iter().cloned());
    let mut action = sub.url.clone();
    action.set_query(None);
    step(
        2,
        format!("submitting form {} ({} {})", form.index, sub.method, action),
    );
    let mut headers = vec![];
    if let Some(ct) = &sub.content_type
        && let Ok(v) = ::http::HeaderValue::from_str(ct)
    {
        headers.push((::http::header::CONTENT_TYPE, v));
    }
    if let Some(p) = &page_url {
        if let Ok(v) = ::http::HeaderValue::from_str(p.as_str()) {
            headers.push((::http::header::REFERER, v));
        }
        if let Ok(v) = ::http::HeaderValue::from_str(&p.origin().ascii_serialization()) {
            headers.push((::http::header::ORIGIN, v));
        }
    }
    let req = http::Request {
        url: sub.url.clone(),
        method: sub.method.clone(),
        headers,
        body: sub.body.clone(),
        max_body: portal::MAX_PAGE,
        follow_redirects: true,
        max_redirects: MAX_REDIRECTS,
        tls: l.fetch.tls.clone(),
        family: l.fetch.family,
        cookies: true,
        connect_timeout: l.fetch.connect_timeout,
    };
    let r = http::request(dns, &req).await.map_err(|e| {
        Failure::new(
            e.code,
            format!("submitting form {} to {action}: {}", form.index, e.text),
        )
    })?;
    let landing = page_of(&r);
    let mut final_url = url::Url::parse(&r.final_url).ok();
    if let Some(u) = final_url.as_mut()
        && sub.method == ::http::Method::GET
        && u.query().is_some()
        && u.path() == sub.url.path()
        && u.host_str() == sub.url.host_str()
    {
        // The submitted GET itself: its query holds the values.
        u.set_query(None);
    }
    if let Some(why) = &r.redirect_not_followed {
        notes.push(format!("the answer's redirect was not followed: {why}"));
    }
    let submitted = Submitted {
        form: form.index,
        action: action.to_string(),
        method: sub.method.to_string(),
        enctype: sub
            .content_type
            .as_ref()
            .map(|c| c.split(';').next().unwrap_or("").to_string()),
        fields_sent: sub.names.clone(),
        fields_from_caller: sub.from_caller.clone(),
        submit: sub.submit.clone(),
        status: r.status,
        final_url: final_url.map_or_else(|| r.final_url.clone(), |u| u.to_string()),
        redirects: r
            .redirects
            .iter()
            .map(|h| {
                let mut h = h.clone();
                if sub.method == ::http::Method::GET
                    && let Ok(mut u) = url::Url::parse(&h.url)
                    && u.path() == sub.url.path()
                {
                    u.set_query(None);
                    h.url = u.to_string();
                }
                h
            })
            .collect(),
        cookies_set: r.cookies_set.clone(),
        cookies_sent: r.cookies_sent.clone(),
        response_title: landing.title.clone(),
        response_excerpt: landing.text_excerpt.clone(),
        response_forms: landing.forms.len(),
    };
    step(3, format!("checking {} again", l.check_url));
    let after = http::request(dns, &get(l.check_url.clone(), &l.fetch, false)).await;
    let (connectivity_after, check_status, check_error, check_cookies_sent) = match after {
        Ok(a) => (
            classify(Some(a.status), a.body_bytes),
            Some(a.status),
            None,
            a.cookies_sent,
        ),
        Err(e) => (Connectivity::None, None, Some(e.text), vec![]),
    };
    Ok(CaptiveLogin {
        connectivity_before: before.check.connectivity,
        portal_url: Some(page.url.clone()),
        submitted: Some(submitted),
        logged_in: connectivity_after == Connectivity::Full,
        connectivity_after,
        check_status,
        check_error,
        check_cookies_sent,
        check_url: l.check_url.to_string(),
        notes,
        elapsed_ms: super::ms_since(started),
    })
}
