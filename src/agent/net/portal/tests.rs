use std::time::{Duration, Instant};

use super::*;

fn page(html: &str) -> PortalPage {
    parse(
        html,
        &url::Url::parse("http://portal.test/login/page?x=1").unwrap(),
        false,
    )
}

fn field<'a>(f: &'a Form, name: &str) -> &'a Field {
    f.fields
        .iter()
        .find(|x| x.name == name)
        .unwrap_or_else(|| panic!("no field {name} in {:?}", f.fields))
}

fn given(pairs: &[(&str, FieldValue)]) -> BTreeMap<String, FieldValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn body(s: &Submission) -> Vec<(String, String)> {
    form_urlencoded::parse(s.body.as_deref().unwrap_or_default())
        .into_owned()
        .collect()
}

/// The lab's portal, as a real one writes it: a language form first, then the login form with
/// a hidden token, a room, an accept checkbox, a select, a textarea and a named button.
const PORTAL: &str = r#"<!doctype html><html><head><title>Hotel WiFi</title>
<base href="/base/"><script src="js/app.js"></script></head><body>
<form action="/lang" method="get"><select name="lang"><option value="en">English
<option value="de" selected>Deutsch</select><input type=submit value=Go></form>
<h1>Welcome</h1><p>Accept the   terms to continue.</p>
<form id="login" action="login" method="POST">
 <input type="hidden" name="token" value="t0k3n">
 <label for="room">Room number</label><input id="room" name="room" required placeholder="e.g. 12">
 <label><input type="checkbox" name="accept" value="yes" required> I accept the terms</label>
 <input type=checkbox name=news checked>
 <select name="plan"><option>free</option><option value="paid">Paid (5 EUR)</option></select>
 <textarea name="note">
hello</textarea>
 <input name="ignored" disabled value="x"><input value="no name">
 <input type="radio" name="speed" value="slow" checked><input type="radio" name="speed" value="fast">
 <button name="action" value="connect">Connect <b>now</b></button>
 <button type="button" onclick="help()">Help</button>
</form></body></html>"#;

#[test]
fn a_portal_page_reads_as_a_browser_sees_it() {
    let p = page(PORTAL);
    assert_eq!(p.title.as_deref(), Some("Hotel WiFi"));
    assert_eq!(p.forms.len(), 2);
    assert!(!p.needs_browser, "usable forms: {p:?}");
    assert_eq!(p.scripts, vec!["http://portal.test/base/js/app.js"]);
    assert!(
        p.text_excerpt
            .contains("Welcome Accept the terms to continue."),
        "{}",
        p.text_excerpt
    );
    assert!(!p.text_excerpt.contains("app.js"));

    let lang = &p.forms[0];
    assert_eq!(
        (lang.method.as_str(), lang.action.as_str()),
        ("GET", "http://portal.test/lang")
    );
    assert_eq!(field(lang, "lang").value, "de");
    assert_eq!(field(lang, "lang").options, vec!["en", "de"]);
    assert_eq!(lang.submits[0].label, "Go");

    let f = &p.forms[1];
    assert_eq!(f.index, 1);
    assert_eq!(f.id.as_deref(), Some("login"));
    // Relative to <base href="/base/">.
    assert_eq!(f.action, "http://portal.test/base/login");
    assert_eq!(f.method, "POST");
    assert_eq!(f.enctype, "application/x-www-form-urlencoded");
    let names: Vec<&str> = f.fields.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "token", "room", "accept", "news", "plan", "note", "speed", "speed"
        ],
        "disabled and unnamed inputs are never submitted"
    );
    assert_eq!(
        (
            field(f, "token").kind.as_str(),
            field(f, "token").value.as_str()
        ),
        ("hidden", "t0k3n")
    );
    let room = field(f, "room");
    assert!(room.required);
    assert_eq!(room.label.as_deref(), Some("Room number"));
    assert_eq!(room.placeholder.as_deref(), Some("e.g. 12"));
    let accept = field(f, "accept");
    assert_eq!(
        (accept.kind.as_str(), accept.value.as_str(), accept.checked),
        ("checkbox", "yes", Some(false))
    );
    assert_eq!(accept.label.as_deref(), Some("I accept the terms"));
    assert_eq!(
        (field(f, "news").value.as_str(), field(f, "news").checked),
        ("on", Some(true))
    );
    assert_eq!(
        field(f, "plan").value,
        "free",
        "no selected option: the first"
    );
    assert_eq!(field(f, "plan").options, vec!["free", "paid"]);
    assert_eq!(
        field(f, "note").value,
        "hello",
        "the parser drops the first newline"
    );
    assert_eq!(f.submits.len(), 1, "a type=button is no submit");
    assert_eq!(f.submits[0].name.as_deref(), Some("action"));
    assert_eq!(f.submits[0].label, "Connect now");
    assert!(f.scripted, "a control with onclick");
    assert_eq!(p.event_handlers, 1);
}

#[test]
fn filling_keeps_hidden_fields_and_the_callers_values_win() {
    let p = page(PORTAL);
    let f = &p.forms[1];
    let s = fill(
        f,
        &given(&[
            ("room", FieldValue::Text("12".into())),
            ("accept", FieldValue::Flag(true)),
            ("news", FieldValue::Flag(false)),
            ("speed", FieldValue::Text("fast".into())),
        ]),
        None,
    )
    .unwrap();
    assert_eq!(s.method, http::Method::POST);
    assert_eq!(s.url.as_str(), "http://portal.test/base/login");
    assert_eq!(
        s.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let b = body(&s);
    let want: Vec<(String, String)> = [
        ("token", "t0k3n"),
        ("room", "12"),
        ("accept", "yes"),
        ("plan", "free"),
        ("note", "hello"),
        ("speed", "fast"),
        ("action", "connect"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(b, want);
    assert_eq!(s.from_caller, ["accept", "news", "room", "speed"]);
    assert!(s.notes.is_empty(), "{:?}", s.notes);
    assert_eq!(s.submit.as_deref(), Some("Connect now"));

    // Nothing set: the required room and checkbox are reported, the form is still sent as is.
    let s = fill(f, &BTreeMap::new(), None).unwrap();
    let b = body(&s);
    assert!(!b.iter().any(|(k, _)| k == "accept"));
    assert!(b.contains(&("news".into(), "on".into())));
    assert!(b.contains(&("speed".into(), "slow".into())));
    assert!(
        s.notes.iter().any(|n| n.contains("room is required")),
        "{:?}",
        s.notes
    );
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("accept is required") && n.contains("not checked"))
    );

    // A GET form puts its fields in the query (replacing the action's).
    let s = fill(
        &p.forms[0],
        &given(&[("lang", FieldValue::Text("en".into()))]),
        None,
    )
    .unwrap();
    assert_eq!(s.method, http::Method::GET);
    assert_eq!(s.url.as_str(), "http://portal.test/lang?lang=en");
    assert!(s.body.is_none());
}

#[test]
fn filling_refuses_what_it_cannot_do_and_says_why() {
    let p = page(PORTAL);
    let f = &p.forms[1];
    let e = fill(f, &given(&[("rooom", FieldValue::Text("1".into()))]), None).unwrap_err();
    assert_eq!(e.code, crate::agent::failure::Code::InvalidArgument);
    assert!(
        e.text.contains("no field named \"rooom\"") && e.text.contains("token, room, accept"),
        "{}",
        e.text
    );
    let e = fill(f, &given(&[("room", FieldValue::Flag(true))]), None).unwrap_err();
    assert!(e.text.contains("room is a text field"), "{}", e.text);
    let e = fill(f, &given(&[("speed", FieldValue::Flag(true))]), None).unwrap_err();
    assert!(
        e.text.contains("group of 2 radios") && e.text.contains("slow, fast"),
        "{}",
        e.text
    );
    let e = fill(f, &BTreeMap::new(), Some(3)).unwrap_err();
    assert!(e.text.contains("submit 3 is out of range"), "{}", e.text);
    let e = fill(
        f,
        &given(&[("note", FieldValue::Text("x".repeat(70_000)))]),
        None,
    )
    .unwrap_err();
    assert!(e.text.contains("more than 65536"), "{}", e.text);
}

#[test]
fn hostile_actions_are_unusable_and_said_so() {
    let p = page(
        r#"<form action="file:///etc/passwd" method=post><input name=a></form>
           <form action="javascript:go()"><input name=b></form>
           <form action="data:text/html,hi"><input name=c></form>
           <form action="http://[::1"><input name=d></form>
           <form method=dialog><input name=e></form>
           <form action="https://auth.example/x?y=1"><input name=f></form>"#,
    );
    let why: Vec<Option<&str>> = p.forms.iter().map(|f| f.unusable.as_deref()).collect();
    assert!(
        why[0].unwrap().contains("file: URL, not http(s)"),
        "{why:?}"
    );
    assert!(
        why[1].unwrap().contains("javascript: URL") && why[1].unwrap().contains("needs a browser")
    );
    assert!(why[2].unwrap().contains("data: URL"));
    assert!(why[3].unwrap().contains("not a URL"));
    assert!(why[4].unwrap().contains("dialog"));
    assert_eq!(why[5], None);
    assert_eq!(p.forms[5].action, "https://auth.example/x?y=1");
    for f in &p.forms[..5] {
        let e = fill(f, &BTreeMap::new(), None).unwrap_err();
        assert!(
            e.text.contains("cannot be submitted") && e.text.contains("nothing was sent"),
            "{}",
            e.text
        );
    }
    // A javascript: action with no other form: the page needs a browser.
    assert!(!p.needs_browser, "form 5 is usable");
    let js = page(r#"<form action="javascript:go()"><input name=b></form>"#);
    assert!(js.needs_browser);
    assert!(
        js.script_signs
            .iter()
            .any(|s| s.contains("javascript: action")),
        "{:?}",
        js.script_signs
    );
}

#[test]
fn a_javascript_only_portal_needs_a_browser_and_says_what_it_found() {
    let p = page(
        r#"<html><head><title>Connecting…</title><script src="https://cdn.portal.test/app.js"></script>
           <script>window.location = '/go?' + Date.now();</script></head>
           <body onload="start()"><div id=app>Loading the portal</div>
           <a href="javascript:accept()">Accept</a><button onclick="accept()">Accept</button>
           <noscript>Please enable JavaScript to use this WiFi.</noscript></body></html>"#,
    );
    assert!(p.needs_browser);
    assert!(p.forms.is_empty());
    assert_eq!(p.scripts, vec!["https://cdn.portal.test/app.js"]);
    assert_eq!(p.inline_scripts, 1);
    assert_eq!(p.event_handlers, 2);
    assert_eq!(
        p.noscript.as_deref(),
        Some("Please enable JavaScript to use this WiFi.")
    );
    let signs = p.script_signs.join("; ");
    for s in [
        "2 script(s) (1 with src, 1 inline)",
        "2 event handler",
        "1 javascript: link",
        "<noscript>",
    ] {
        assert!(signs.contains(s), "{s}: {signs}");
    }
    assert!(p.text_excerpt.contains("Loading the portal"));
    assert!(
        !p.text_excerpt.contains("window.location"),
        "script text is not visible text"
    );
    // A page with neither forms nor scripts does not need a browser: it has nothing to submit.
    let plain = page(
        r#"<meta http-equiv="refresh" content="3; URL='/welcome'"><a href="/terms">terms</a>"#,
    );
    assert!(!plain.needs_browser);
    assert_eq!(
        plain.meta_refresh.as_deref(),
        Some("http://portal.test/welcome")
    );
    assert_eq!(plain.links, vec!["http://portal.test/terms"]);
}

#[test]
fn nested_forms_and_forms_in_tables_are_owned_as_a_browser_owns_them() {
    // A <form> inside a form is ignored by the HTML parser: its inputs belong to the outer one.
    let p = page(
        r#"<form action="/outer"><input name=a><form action="/inner"><input name=b></form>
           <input name=c></form>"#,
    );
    assert_eq!(p.forms.len(), 1, "{:?}", p.forms);
    let names: Vec<&str> = p.forms[0].fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a", "b"], "the inner </form> closes the outer form");
    // A form opened inside a table: the inputs in its cells are not inside the form element but
    // belong to it (the parser's form element pointer).
    let t = page(
        r#"<table><form action="/t" method=post><tr><td><input name=user><td><input type=password name=pw>
           <tr><td><input type=submit value=Login></form></table><input name=outside>"#,
    );
    assert_eq!(t.forms.len(), 1);
    let names: Vec<&str> = t.forms[0].fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["user", "pw"]);
    assert_eq!(t.forms[0].submits.len(), 1);
    // form=ID reaches a form anywhere on the page, before or after.
    let a = page(
        r#"<input name=early form=f2><form id=f1></form><form id=f2 action=/two></form>
           <input name=late form=f2><input name=lost form=nope>"#,
    );
    let names: Vec<&str> = a.forms[1].fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["early", "late"]);
    assert!(a.forms[0].fields.is_empty());
    // A form inside <template> is inert.
    let tpl = page(r#"<template><form><input name=x></form></template>"#);
    assert!(tpl.forms.is_empty());
}

#[test]
fn broken_markup_still_yields_its_forms() {
    let p = page(
        "<form action=/a method=post><input name=a value=\"runs on><input name=b>\" name=z>\
         <select name=s><option value=1>one<option value=2 selected>two<select name=t>\
         <p><input name='c' value='<b>'></p></div></span><input name=d value=&amp;&lt;x>",
    );
    assert_eq!(p.forms.len(), 1);
    let f = &p.forms[0];
    let got: Vec<(&str, &str)> = f
        .fields
        .iter()
        .map(|x| (x.name.as_str(), x.value.as_str()))
        .collect();
    assert!(got.contains(&("a", "runs on><input name=b>")), "{got:?}");
    assert!(got.contains(&("s", "2")), "{got:?}");
    assert!(got.contains(&("c", "<b>")), "{got:?}");
    assert!(got.contains(&("d", "&<x")), "{got:?}");
    // Nothing at all, binary junk, a lone '<': no forms, no panic.
    for junk in [
        "",
        "<",
        "\u{0}\u{1}<<<>>>",
        "<form",
        "</form></form>",
        "<input name=a>",
    ] {
        let p = page(junk);
        assert!(p.forms.len() <= 1, "{junk:?}");
    }
}

#[test]
fn huge_attributes_are_cut_in_the_report_but_submitted_whole() {
    let token = "T".repeat(100_000);
    let label = "L".repeat(20_000);
    let html = format!(
        r#"<form action="/{long}" method=post><label for=r>{label}</label>
           <input type=hidden name=token value="{token}"><input id=r name="{long}" placeholder="{long}"></form>"#,
        long = "a".repeat(30_000)
    );
    let started = Instant::now();
    let p = page(&html);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let f = &p.forms[0];
    let t = &f.fields[0];
    assert_eq!(t.value.chars().count(), MAX_VALUE);
    assert!(t.value_cut);
    assert_eq!(
        t.full_value().len(),
        100_000,
        "the submission gets the whole token"
    );
    assert!(f.action.len() <= MAX_VALUE);
    assert!(f.fields[1].name.len() <= MAX_VALUE);
    assert!(f.fields[1].placeholder.as_ref().unwrap().chars().count() <= MAX_LABEL);
    assert!(f.fields[1].label.as_ref().unwrap().chars().count() <= MAX_LABEL);
    let json = serde_json::to_string(&p).unwrap();
    assert!(
        json.len() < 8 * 1024,
        "the report stays small: {} bytes",
        json.len()
    );
    // Submitted whole it is more than 64 KiB: refused, not cut.
    let e = fill(f, &BTreeMap::new(), None).unwrap_err();
    assert!(e.text.contains("more than 65536"), "{}", e.text);
}

#[test]
fn ten_thousand_inputs_are_bounded() {
    let mut html = String::from("<form action=/many method=post>");
    for i in 0..10_000 {
        html.push_str(&format!("<input name=f{i}>"));
    }
    html.push_str("</form>");
    for i in 0..100 {
        html.push_str(&format!("<form action=/x{i}></form>"));
    }
    let started = Instant::now();
    let p = page(&html);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(p.forms.len(), MAX_FORMS);
    assert_eq!(p.forms_omitted, 101 - MAX_FORMS);
    assert_eq!(p.forms[0].fields.len(), MAX_FIELDS);
    assert_eq!(p.forms[0].fields_omitted, 10_000 - MAX_FIELDS);
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.len() < 64 * 1024, "{} bytes", json.len());
    let s = fill(&p.forms[0], &BTreeMap::new(), None).unwrap();
    assert_eq!(s.names.len(), MAX_FIELDS);
}

#[test]
fn pathological_pages_parse_in_bounded_time() {
    let cases: Vec<(&str, String)> = vec![
        (
            "deep nesting",
            "<div>".repeat(60_000) + "<form><input name=a></form>",
        ),
        (
            "unclosed formatting elements",
            "<a><b><i><u>".repeat(15_000),
        ),
        ("a tag with 100 000 attributes", {
            let mut s = String::from("<form><input name=x ");
            for i in 0..100_000 {
                s.push_str(&format!("a{i} "));
            }
            s.push_str("></form>");
            s
        }),
        ("a 10 MB page", "<p>x</p>".repeat(1_300_000)),
        ("options without end", {
            let mut s = String::from("<form><select name=s>");
            for i in 0..30_000 {
                s.push_str(&format!("<option value={i}>{i}"));
            }
            s
        }),
        ("tables in tables", "<table><tr><td>".repeat(20_000)),
    ];
    for (what, html) in cases {
        let started = Instant::now();
        let p = page(&html);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "{what}: {took:?}");
        assert!(
            serde_json::to_string(&p).unwrap().len() < 64 * 1024,
            "{what}"
        );
        eprintln!("{what}: {took:?}, truncated {}", p.truncated);
    }
    let p = page(&"<p>x</p>".repeat(1_300_000));
    assert!(p.truncated, "cut at MAX_PAGE");
    let opts = page(&{
        let mut s = String::from("<form><select name=s>");
        for i in 0..30_000 {
            s.push_str(&format!("<option value={i}>{i}"));
        }
        s
    });
    assert_eq!(opts.forms[0].fields[0].options.len(), MAX_OPTIONS);
    assert_eq!(opts.forms[0].fields[0].value, "0");
}

#[test]
fn multipart_and_text_plain_and_image_buttons() {
    let p = page(
        r#"<form action=/m method=post enctype="multipart/form-data"><input name=a value=1>
           <input type=image name=go src=go.png alt=Go></form>
           <form action=/t method=post enctype=text/plain><input name=b value=2>
           <button formaction="/other" formmethod="get" name=x value=y>Other</button></form>"#,
    );
    let s = fill(&p.forms[0], &BTreeMap::new(), None).unwrap();
    let ct = s.content_type.clone().unwrap();
    assert!(ct.starts_with("multipart/form-data; boundary="), "{ct}");
    let b = String::from_utf8(s.body.unwrap().to_vec()).unwrap();
    assert!(
        b.contains("name=\"a\"\r\n\r\n1\r\n") && b.contains("name=\"go.x\"\r\n\r\n0"),
        "{b}"
    );
    assert_eq!(s.names, ["a", "go.x", "go.y"]);
    let s = fill(&p.forms[1], &BTreeMap::new(), None).unwrap();
    assert_eq!(s.method, http::Method::GET, "formmethod");
    assert_eq!(
        s.url.as_str(),
        "http://portal.test/other?b=2&x=y",
        "formaction"
    );
}
