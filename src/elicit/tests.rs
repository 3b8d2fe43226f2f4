//! The page's logic: links and their MACs, expiry, escaping, CSRF, Host/Origin, replay.

use std::sync::Mutex;

use super::*;

const NOW: u64 = 1_800_000_000;
const HOST: Option<&str> = Some("127.0.0.1:4711");
const ORIGIN: Option<&str> = Some("http://127.0.0.1:4711");

#[derive(Default)]
struct Recorder {
    saved: Mutex<Vec<(String, String)>>,
    one_time: Mutex<Vec<(String, String)>>,
    refuse_save: bool,
}

impl Deliver for Recorder {
    fn save_profile(&self, name: &Name, p: &Profile) -> Result<(), String> {
        if self.refuse_save {
            return Err(format!("saved network {:?} exists", name.as_str()));
        }
        self.saved
            .lock()
            .unwrap()
            .push((name.to_string(), toml::to_string(p).unwrap()));
        Ok(())
    }
    fn one_time(&self, _t: &BoxTarget, ssid: &Ssid, p: &Profile) -> Result<(), String> {
        self.one_time
            .lock()
            .unwrap()
            .push((one_time_file(ssid), toml::to_string(p).unwrap()));
        Ok(())
    }
}

fn page() -> (Page, Grant) {
    let p = Page::new("wlan1", 4711, 600);
    let g = p.box_started(BoxTarget {
        dir: "/nonexistent".into(),
        owner: 1000,
    });
    (p, g)
}

fn split(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://127.0.0.1:4711").expect("base url");
    let (path, query) = rest.split_once('?').unwrap();
    (path.into(), query.into())
}

fn csrf_of(body: &str) -> String {
    let i = body.find("name=\"csrf\" value=\"").unwrap() + 19;
    body[i..i + 32].to_owned()
}

fn open(p: &Page, g: &Grant, ssid: &str, sec: Security) -> (String, String) {
    let link = g.link(&Ssid::parse(ssid).unwrap(), sec, NOW).unwrap();
    let (path, query) = split(&link.url);
    let r = p.get(HOST, &path, &query, NOW + 5);
    assert_eq!(r.status, 200, "{}", r.body);
    (path, csrf_of(&r.body))
}

fn form(csrf: &str, pass: &str, extra: &str) -> Vec<u8> {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("csrf", csrf).append_pair("passphrase", pass);
    let mut b = s.finish();
    b.push_str(extra);
    b.into_bytes()
}

#[test]
fn a_link_carries_no_key_and_its_id_is_random() {
    let (_, g) = page();
    let ssid = Ssid::parse("Lab").unwrap();
    let a = g.link(&ssid, Security::Wpa2Psk, NOW).unwrap();
    let b = g.link(&ssid, Security::Wpa2Psk, NOW).unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(a.id.len(), 32);
    assert!(a.url.starts_with("http://127.0.0.1:4711/e/"));
    assert!(!a.url.contains(&g.key), "the key is never in a link");
    assert!(a.url.contains("ssid=4c6162"));
    assert!(a.url.contains("security=wpa2-psk"));
}

#[test]
fn the_form_shows_the_ssid_escaped() {
    let (p, g) = page();
    let evil = "<script>x</script>\"'&";
    let link = g
        .link(&Ssid::parse(evil).unwrap(), Security::Wpa2Psk, NOW)
        .unwrap();
    let (path, query) = split(&link.url);
    let r = p.get(HOST, &path, &query, NOW);
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("<script>"), "{}", r.body);
    assert!(
        r.body
            .contains("&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;")
    );
    assert_eq!(html_escape("a\u{7}b"), "a\u{FFFD}b");
}

#[test]
fn a_forged_or_altered_link_is_refused() {
    let (p, g) = page();
    let link = g
        .link(&Ssid::parse("Lab").unwrap(), Security::Wpa2Psk, NOW)
        .unwrap();
    let (path, query) = split(&link.url);
    // Another SSID, security or time under the same MAC.
    for (from, to) in [
        ("ssid=4c6162", "ssid=4c6163"),
        ("security=wpa2-psk", "security=wpa3-sae"),
        (&format!("t={NOW}"), &format!("t={}", NOW + 1)),
    ] {
        let q = query.replace(from, to);
        assert_ne!(q, query);
        assert_eq!(p.get(HOST, &path, &q, NOW).status, 403, "{from} → {to}");
    }
    // Another id, and a key of an earlier box.
    let other = format!("/e/{}", "0".repeat(32));
    assert_eq!(p.get(HOST, &other, &query, NOW).status, 403);
    let old = g;
    let _new = p.box_started(BoxTarget {
        dir: "/nonexistent".into(),
        owner: 1000,
    });
    let link = old
        .link(&Ssid::parse("Lab").unwrap(), Security::Wpa2Psk, NOW)
        .unwrap();
    let (path, query) = split(&link.url);
    assert_eq!(p.get(HOST, &path, &query, NOW).status, 403);
    p.box_gone();
    assert_eq!(p.get(HOST, &path, &query, NOW).status, 410);
}

#[test]
fn links_expire() {
    let (p, g) = page();
    let link = g
        .link(&Ssid::parse("Lab").unwrap(), Security::Wpa2Psk, NOW)
        .unwrap();
    let (path, query) = split(&link.url);
    assert_eq!(p.get(HOST, &path, &query, NOW + 599).status, 200);
    assert_eq!(p.get(HOST, &path, &query, NOW + 600).status, 410);
    // From the future (beyond the slack).
    assert_eq!(p.get(HOST, &path, &query, NOW - 61).status, 410);
    // A form opened in time but sent after the link's life.
    let (path, csrf) = open(&p, &g, "Lab", Security::Wpa2Psk);
    let rec = Recorder::default();
    let r = p.post(
        HOST,
        ORIGIN,
        &path,
        &form(&csrf, "correct horse", ""),
        NOW + 601,
        &rec,
    );
    assert_eq!(r.status, 403);
    assert!(rec.one_time.lock().unwrap().is_empty());
}

#[test]
fn a_submission_goes_to_the_box_once_and_a_replay_is_refused() {
    let (p, g) = page();
    let (path, csrf) = open(&p, &g, "Lab", Security::Wpa2Psk);
    let rec = Recorder::default();
    let body = form(&csrf, "correct horse", "");
    let r = p.post(HOST, ORIGIN, &path, &body, NOW + 10, &rec);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("correct horse"));
    let written = rec.one_time.lock().unwrap().clone();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].0, "4c6162.toml");
    let prof = Profile::parse(&written[0].1, "t").unwrap();
    assert_eq!(prof.ssid, "Lab");
    assert_eq!(prof.security, Security::Wpa2Psk);
    assert_eq!(prof.psk.as_deref(), Some("correct horse"));
    assert_eq!(prof.interfaces, vec!["wlan1".to_string()]);
    assert!(
        rec.saved.lock().unwrap().is_empty(),
        "not saved unless asked"
    );
    // The same body again, and a fresh form for the spent link.
    assert_eq!(
        p.post(HOST, ORIGIN, &path, &body, NOW + 11, &rec).status,
        410
    );
    let q = split(
        &g.link(&Ssid::parse("Lab").unwrap(), Security::Wpa2Psk, NOW)
            .unwrap()
            .url,
    );
    assert_eq!(
        p.get(HOST, &q.0, &q.1, NOW).status,
        200,
        "another link works"
    );
    assert_eq!(rec.one_time.lock().unwrap().len(), 1);
}

#[test]
fn wpa3_goes_in_as_sae_password() {
    let (p, g) = page();
    let (path, csrf) = open(&p, &g, "Lab3", Security::Wpa3Sae);
    let rec = Recorder::default();
    let r = p.post(HOST, ORIGIN, &path, &form(&csrf, "short", ""), NOW, &rec);
    assert_eq!(r.status, 200, "{}", r.body);
    let prof = Profile::parse(&rec.one_time.lock().unwrap()[0].1, "t").unwrap();
    assert_eq!(prof.sae_password.as_deref(), Some("short"));
    assert!(prof.psk.is_none());
}

#[test]
fn csrf_host_and_origin_are_checked() {
    let (p, g) = page();
    let (path, csrf) = open(&p, &g, "Lab", Security::Wpa2Psk);
    let rec = Recorder::default();
    let body = form(&csrf, "correct horse", "");
    // DNS rebinding: another Host; another or no Origin; a made-up or missing CSRF token.
    assert_eq!(p.get(Some("evil.example:4711"), &path, "", NOW).status, 421);
    assert_eq!(
        p.post(Some("evil.example:4711"), ORIGIN, &path, &body, NOW, &rec)
            .status,
        421
    );
    assert_eq!(
        p.post(HOST, Some("http://evil.example"), &path, &body, NOW, &rec)
            .status,
        403
    );
    assert_eq!(p.post(HOST, None, &path, &body, NOW, &rec).status, 403);
    let forged = form(&"f".repeat(32), "correct horse", "");
    assert_eq!(p.post(HOST, ORIGIN, &path, &forged, NOW, &rec).status, 403);
    assert_eq!(
        p.post(HOST, ORIGIN, &path, b"passphrase=correct+horse", NOW, &rec)
            .status,
        403
    );
    // The token of this link's form on another link's path.
    let (other, _) = open(&p, &g, "Other", Security::Wpa2Psk);
    assert_eq!(p.post(HOST, ORIGIN, &other, &body, NOW, &rec).status, 403);
    assert!(rec.one_time.lock().unwrap().is_empty());
    // localhost is ours too.
    let (path, csrf) = open(&p, &g, "Lab", Security::Wpa2Psk);
    let r = p.post(
        Some("localhost:4711"),
        Some("http://localhost:4711"),
        &path,
        &form(&csrf, "correct horse", ""),
        NOW,
        &rec,
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn a_bad_passphrase_changes_nothing_and_is_never_quoted() {
    let (p, g) = page();
    let (path, csrf) = open(&p, &g, "Lab", Security::Wpa2Psk);
    let rec = Recorder::default();
    let r = p.post(HOST, ORIGIN, &path, &form(&csrf, "seven77", ""), NOW, &rec);
    assert_eq!(r.status, 400);
    assert!(!r.body.contains("seven77"), "{}", r.body);
    assert!(r.body.contains("id=\"error\""));
    assert!(rec.one_time.lock().unwrap().is_empty());
    // The answer is a fresh form: its token works, the old one does not.
    let fresh = csrf_of(&r.body);
    assert_ne!(fresh, csrf);
    let ok = form(&fresh, "correct horse", "");
    assert_eq!(
        p.post(
            HOST,
            ORIGIN,
            &path,
            &form(&csrf, "correct horse", ""),
            NOW,
            &rec
        )
        .status,
        403
    );
    assert_eq!(p.post(HOST, ORIGIN, &path, &ok, NOW, &rec).status, 200);
}

#[test]
fn save_as_profile_needs_a_valid_name_and_never_replaces() {
    let (p, g) = page();
    let (path, csrf) = open(&p, &g, "Lab", Security::Wpa2Psk);
    let rec = Recorder::default();
    let r = p.post(
        HOST,
        ORIGIN,
        &path,
        &form(&csrf, "correct horse", "&save=1&name=..%2Fetc"),
        NOW,
        &rec,
    );
    assert_eq!(r.status, 400);
    assert!(rec.saved.lock().unwrap().is_empty() && rec.one_time.lock().unwrap().is_empty());
    let r = p.post(
        HOST,
        ORIGIN,
        &path,
        &form(&csrf_of(&r.body), "correct horse", "&save=1&name=lab"),
        NOW,
        &rec,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(rec.saved.lock().unwrap()[0].0, "lab");
    assert_eq!(rec.one_time.lock().unwrap().len(), 1);
    // A save the store refuses (the name exists): nothing goes to the box either.
    let (path, csrf) = open(&p, &g, "Lab", Security::Wpa2Psk);
    let refusing = Recorder {
        refuse_save: true,
        ..Recorder::default()
    };
    let r = p.post(
        HOST,
        ORIGIN,
        &path,
        &form(&csrf, "correct horse", "&save=1&name=lab"),
        NOW,
        &refusing,
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("exists"));
    assert!(refusing.one_time.lock().unwrap().is_empty());
}

#[test]
fn open_and_eap_networks_get_no_form() {
    let (p, g) = page();
    for sec in [Security::Open, Security::Eap] {
        let link = g.link(&Ssid::parse("X").unwrap(), sec, NOW).unwrap();
        let (path, query) = split(&link.url);
        assert_eq!(p.get(HOST, &path, &query, NOW).status, 400);
    }
}

#[test]
fn the_grant_never_prints_its_key() {
    let (_, g) = page();
    assert!(!format!("{g:?}").contains(&g.key));
}

/// A hostile box owns its `elicit/` dir and may plant links in it or in place of it: the
/// daemon's write never follows one out of the box (a link as the dir is refused; a link as the
/// file is replaced, its target untouched).
#[test]
fn the_box_cannot_redirect_the_daemons_writes_with_links() {
    let me = nix::unistd::Uid::effective().as_raw();
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), "host file").unwrap();

    let box1 = tmp.path().join("box1");
    std::fs::create_dir(&box1).unwrap();
    std::os::unix::fs::symlink(&outside, box1.join(super::SUBDIR)).unwrap();
    assert!(super::serve::open_box_subdir(&box1, me).is_err());

    let box2 = tmp.path().join("box2");
    std::fs::create_dir(&box2).unwrap();
    let dir = super::serve::open_box_subdir(&box2, me).unwrap();
    let planted = box2.join(super::SUBDIR).join(super::GRANT_FILE);
    std::os::unix::fs::symlink(outside.join("victim"), &planted).unwrap();
    crate::host::files::write_owned_in(&dir, super::GRANT_FILE, me, b"{}").unwrap();
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).unwrap(),
        "host file"
    );
    assert!(!std::fs::symlink_metadata(&planted).unwrap().is_symlink());
    assert_eq!(std::fs::read(&planted).unwrap(), b"{}");
}
