//! `network_check_captive` / `network_captive_login`'s flow (`wifi_isolate::agent::net::captive`)
//! against the lab's real portal server (`captive-lab`, the one the agent VM suite runs in the
//! open AP's netns) on 127.0.0.1: the redirect chain and the forms, a missing checkbox and a
//! forged token still captive with the portal's reason, the right submission logged in (the
//! session cookie carried from the page to the POST, the auth cookie to the second check), a
//! JavaScript-only portal refused as needs_browser, a `file:` action refused. A process of its
//! own: the agent's cookie jar is one per process. The real-radio proof is `agent::captive: …`.

use std::collections::BTreeMap;
use std::time::Duration;

use wifi_isolate::agent::failure::Code;
use wifi_isolate::agent::net::captive::{self, Fetch, Login};
use wifi_isolate::agent::net::portal::FieldValue;
use wifi_isolate::agent::net::tls::TlsOptions;
use wifi_isolate::agent::nettools::{Connectivity, Dns};

struct Lab {
    child: std::process::Child,
    dir: tempfile::TempDir,
    base: String,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(wifi_isolate_tests::env::bin("captive-lab"))
        .arg(dir.path())
        .arg("127.0.0.1:0")
        .spawn()
        .expect("captive-lab");
    for _ in 0..200 {
        if dir.path().join("ready").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let port = std::fs::read_to_string(dir.path().join("port")).expect("captive-lab's port");
    Lab {
        child,
        base: format!("http://127.0.0.1:{}", port.trim()),
        dir,
    }
}

fn url(s: &str) -> url::Url {
    url::Url::parse(s).unwrap()
}

fn fetch() -> Fetch {
    Fetch {
        tls: TlsOptions::default(),
        connect_timeout: Duration::from_secs(5),
        family: Default::default(),
    }
}

fn login(check: &str, form: Option<usize>, fields: &[(&str, FieldValue)]) -> Login {
    Login {
        page_url: None,
        check_url: url(check),
        form,
        submit: None,
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        fetch: fetch(),
    }
}

#[tokio::test]
async fn a_portal_of_our_own_is_read_refuses_bad_submissions_and_lets_the_right_one_through() {
    let lab = lab();
    let dns = Dns::new(vec![], std::path::Path::new("/nonexistent"));
    let check = format!("{}/generate_204", lab.base);

    let (c, _) = captive::check(&dns, &url(&check), &fetch()).await;
    assert_eq!(c.check.connectivity, Connectivity::Captive, "{c:?}");
    assert_eq!(c.check.status, Some(302));
    assert_eq!(c.check.portal_url.as_deref(), Some("/welcome?from=check"));
    let chain: Vec<(u16, &str)> = c
        .redirects
        .iter()
        .map(|h| (h.status, h.location.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(chain, [(302, "/welcome?from=check"), (302, "/portal")]);
    let p = c.portal.as_ref().expect("the portal page");
    assert_eq!(p.url, format!("{}/portal", lab.base));
    assert_eq!(p.title.as_deref(), Some("Lab Hotel WiFi"));
    assert_eq!(p.forms.len(), 2);
    assert!(!c.needs_browser && !p.needs_browser);
    let f = &p.forms[1];
    assert_eq!(f.action, format!("{}/login", lab.base));
    assert_eq!(f.method, "POST");
    let kinds: Vec<(&str, &str)> = f
        .fields
        .iter()
        .map(|x| (x.name.as_str(), x.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("token", "hidden"),
            ("room", "text"),
            ("accept", "checkbox"),
            ("plan", "select")
        ]
    );
    assert!(c.cookies_set.contains(&"sid".to_string()), "{c:?}");

    // The checkbox left unset: submitted, refused by the portal, still captive, and said why.
    let l = captive::login(
        &dns,
        &login(&check, Some(1), &[("room", FieldValue::Text("101".into()))]),
        |_, _| {},
    )
    .await
    .unwrap();
    let s = l.submitted.as_ref().unwrap();
    assert_eq!(l.connectivity_before, Connectivity::Captive);
    assert_eq!(l.connectivity_after, Connectivity::Captive);
    assert!(!l.logged_in);
    assert_eq!(s.status, 200);
    assert!(
        s.response_excerpt.contains("you must accept the terms"),
        "{s:?}"
    );
    assert!(
        l.notes.iter().any(|n| n.contains("accept is required")),
        "{l:?}"
    );
    assert!(s.cookies_sent.contains(&"sid".to_string()));

    // A forged token: still captive.
    let l = captive::login(
        &dns,
        &login(
            &check,
            Some(1),
            &[
                ("room", FieldValue::Text("101".into())),
                ("accept", FieldValue::Flag(true)),
                ("token", FieldValue::Text("forged".into())),
            ],
        ),
        |_, _| {},
    )
    .await
    .unwrap();
    assert!(!l.logged_in);
    assert!(
        l.submitted
            .as_ref()
            .unwrap()
            .response_excerpt
            .contains("invalid token"),
        "{l:?}"
    );

    // Form 7 of a page with 2, a field the form lacks: refused, nothing sent.
    let e = captive::login(&dns, &login(&check, Some(7), &[]), |_, _| {})
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(
        e.text.contains("form 7 is out of range") && e.text.contains("2 form(s) (0-1)"),
        "{e}"
    );
    let e = captive::login(
        &dns,
        &login(&check, Some(1), &[("rooom", FieldValue::Text("1".into()))]),
        |_, _| {},
    )
    .await
    .unwrap_err();
    assert!(e.text.contains("no field named \"rooom\""), "{e}");
    assert_eq!(
        std::fs::read_to_string(lab.dir.path().join("granted")).unwrap(),
        "0"
    );

    // Right: accepted, through.
    let mut steps = std::sync::Mutex::new(Vec::new());
    let l = captive::login(
        &dns,
        &login(
            &check,
            Some(1),
            &[
                ("room", FieldValue::Text("101".into())),
                ("accept", FieldValue::Flag(true)),
            ],
        ),
        |n, m| steps.lock().unwrap().push((n, m)),
    )
    .await
    .unwrap();
    let s = l.submitted.as_ref().unwrap();
    assert!(l.logged_in, "{l:?}");
    assert_eq!(l.connectivity_after, Connectivity::Full);
    assert_eq!(l.check_status, Some(204));
    assert_eq!(s.fields_sent, ["token", "room", "accept", "plan", "action"]);
    assert_eq!(s.redirects.len(), 1);
    assert_eq!(s.redirects[0].status, 303);
    assert_eq!(s.final_url, format!("{}/online", lab.base));
    assert!(s.response_excerpt.contains("You are online."));
    assert!(s.cookies_set.contains(&"auth".to_string()), "{s:?}");
    assert!(l.check_cookies_sent.contains(&"auth".to_string()), "{l:?}");
    assert_eq!(
        std::fs::read_to_string(lab.dir.path().join("granted")).unwrap(),
        "1"
    );
    let steps: Vec<usize> = steps.get_mut().unwrap().iter().map(|(n, _)| *n).collect();
    assert_eq!(steps, [0, 2, 3]);
    // No secret the portal issued (session, token, auth) appears in any result.
    let issued = std::fs::read_to_string(lab.dir.path().join("issued")).unwrap();
    let out = format!("{:?} {}", l, serde_json::to_string(&l).unwrap());
    for v in issued.lines() {
        assert!(!out.contains(v), "{v} shown");
    }
    let (after, _) = captive::check(&dns, &url(&check), &fetch()).await;
    assert_eq!(after.check.connectivity, Connectivity::Full);
    // Already through: nothing to do, nothing sent.
    let l = captive::login(&dns, &login(&check, None, &[]), |_, _| {})
        .await
        .unwrap();
    assert!(l.submitted.is_none() && l.logged_in, "{l:?}");

    // JavaScript only: a clear needs_browser, naming what it found.
    let js = format!("{}/js/generate_204", lab.base);
    let (c, _) = captive::check(&dns, &url(&js), &fetch()).await;
    assert!(c.needs_browser, "{c:?}");
    let p = c.portal.unwrap();
    assert_eq!(p.scripts, [format!("{}/js/app.js", lab.base)]);
    assert!(p.text_excerpt.contains("Loading the portal"));
    let e = captive::login(&dns, &login(&js, None, &[]), |_, _| {})
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::NeedsBrowser);
    assert!(
        e.text.contains("needs a browser") && e.text.contains("app.js"),
        "{e}"
    );

    // A file: action: refused, nothing sent.
    let hostile = format!("{}/hostile/generate_204", lab.base);
    let e = captive::login(&dns, &login(&hostile, Some(0), &[]), |_, _| {})
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.text.contains("file: URL"), "{e}");
    let log = std::fs::read_to_string(lab.dir.path().join("requests.log")).unwrap();
    assert_eq!(log.matches("POST /login").count(), 3, "{log}");
}
