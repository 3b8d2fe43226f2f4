//! Captive portals on real radios: joined to the lab's open AP, against the portal of our own
//! that tests/vm/agent/guest.sh runs in the AP's netns (`captive-lab`, :8090 — the check URL
//! redirects until a cookie the portal issued comes back). `network_check_captive` reports the
//! redirect chain and the login form (hidden token, room, accept checkbox); a submission without
//! the checkbox and one with a forged token stay captive with the portal's reason;
//! `network_captive_login` with the room and the checkbox gets through (captive before, full
//! after, the portal granted once); a JavaScript-only portal is `needs_browser`; bad input
//! (form 99, a `file:` url, an unknown field) and hostile forms (a `file:` action, one on the
//! box's loopback) are refused with `invalid_argument` and nothing sent. No secret the portal
//! issued (session, token, auth cookie) shows in any result.

use serde_json::{Value, json};

use crate::{Run, env};

const BASE: &str = "http://ap.test:8090";

fn has(v: &Value, needle: &str) -> bool {
    v.as_array()
        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(needle)))
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn granted(dir: &str) -> String {
    std::fs::read_to_string(format!("{dir}/granted"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

pub(crate) async fn captive_suite(r: &mut Run) {
    let dir = env("CAPTIVE_DIR");
    let check = format!("{BASE}/generate_204");
    let c = r
        .ok(
            "captive: connect to the open AP",
            "wifi_connect",
            json!({"ssid": env("AP_OPEN_SSID")}),
        )
        .await;
    r.check(
        "captive: the open AP gave a lease, the portal server is up",
        c["ip"].is_string() && std::path::Path::new(&format!("{dir}/ready")).exists(),
        &c,
    );
    let tools = r.svc.list_all_tools().await.expect("tools/list");
    r.check(
        "captive: network_captive_login listed with an output schema",
        tools
            .iter()
            .any(|t| t.name == "network_captive_login" && t.output_schema.is_some()),
        "",
    );

    // --- the check: chain and forms ------------------------------------------------------------
    let cap = r
        .ok(
            "captive: check",
            "network_check_captive",
            json!({"url": check}),
        )
        .await;
    let hops = cap["redirects"].as_array().cloned().unwrap_or_default();
    r.check(
        "captive: check: captive, 302, the old fields kept (portal_url), the chain 302 → 302 → the portal page",
        cap["connectivity"] == "captive"
            && cap["status"] == 302
            && cap["portal_url"] == "/welcome?from=check"
            && hops.len() == 2
            && hops[0]["url"] == check
            && hops[0]["location"] == "/welcome?from=check"
            && hops[1]["url"] == format!("{BASE}/welcome?from=check")
            && hops[1]["location"] == "/portal"
            && cap["portal"]["url"] == format!("{BASE}/portal")
            && cap["needs_browser"] == false
            && has(&cap["cookies_set"], "sid"),
        &cap,
    );
    let forms = cap["portal"]["forms"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let login = forms.get(1).cloned().unwrap_or_default();
    let field = |name: &str| {
        login["fields"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["name"] == name).cloned())
            .unwrap_or_default()
    };
    r.check(
        "captive: check: the login form — action resolved, POST, hidden token, required room, accept checkbox, select, submit button",
        forms.len() == 2
            && login["index"] == 1
            && login["action"] == format!("{BASE}/login")
            && login["method"] == "POST"
            && field("token")["type"] == "hidden"
            && !text(&field("token")["value"]).is_empty()
            && field("room")["required"] == true
            && field("room")["label"] == "Room number"
            && field("accept")["type"] == "checkbox"
            && field("accept")["value"] == "yes"
            && field("accept")["checked"] == false
            && field("accept")["required"] == true
            && field("plan")["options"] == json!(["free", "fast"])
            && login["submits"][0]["label"] == "Connect"
            && forms[0]["method"] == "GET",
        &cap["portal"],
    );
    r.check(
        "captive: check: the page's script is listed but a form is there (no browser needed)",
        has(
            &cap["portal"]["scripts"],
            &format!("{BASE}/static/analytics.js"),
        ) && cap["portal"]["needs_browser"] == false
            && text(&cap["portal"]["text_excerpt"]).contains("Welcome to the Lab Hotel"),
        &cap["portal"],
    );

    // --- refused submissions: still captive, and why ---------------------------------------------
    let l = r
        .ok(
            "captive: login without the checkbox",
            "network_captive_login",
            json!({"check_url": check, "form": 1, "fields": {"room": "101"}}),
        )
        .await;
    r.check(
        "captive: without the accept checkbox: submitted (200), still captive, the portal's reason and the unmet required field reported",
        l["connectivity_before"] == "captive"
            && l["connectivity_after"] == "captive"
            && l["logged_in"] == false
            && l["submitted"]["status"] == 200
            && text(&l["submitted"]["response_excerpt"]).contains("you must accept the terms")
            && l["notes"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| text(n).contains("accept is required")))
            && !has(&l["submitted"]["fields_sent"], "accept"),
        &l,
    );
    let l = r
        .ok(
            "captive: login with a forged token",
            "network_captive_login",
            json!({"check_url": check, "form": 1,
                   "fields": {"room": "101", "accept": true, "token": "forged"}}),
        )
        .await;
    r.check(
        "captive: a forged hidden token: still captive, 'invalid token' reported",
        l["connectivity_after"] == "captive"
            && l["logged_in"] == false
            && text(&l["submitted"]["response_excerpt"]).contains("invalid token"),
        &l,
    );
    r.check(
        "captive: the portal granted nothing so far",
        granted(&dir) == "0",
        granted(&dir),
    );

    // --- bad input and hostile forms: invalid_argument, nothing sent -----------------------------
    for (name, args, needle) in [
        (
            "captive: refused: form 99",
            json!({"check_url": check, "form": 99}),
            "form 99 is out of range",
        ),
        (
            "captive: refused: a file: url",
            json!({"check_url": check, "url": "file:///etc/passwd"}),
            "unsupported URL scheme file",
        ),
        (
            "captive: refused: form 5 of a page with 2",
            json!({"check_url": check, "form": 5}),
            "2 form(s) (0-1)",
        ),
        (
            "captive: refused: a field the form does not have",
            json!({"check_url": check, "form": 1, "fields": {"rooom": "1"}}),
            "no field named \"rooom\"",
        ),
        (
            "captive: refused: a hostile form with a file: action",
            json!({"check_url": format!("{BASE}/hostile/generate_204"), "form": 0}),
            "file: URL, not http(s)",
        ),
        (
            "captive: refused: a hostile form posting to the box's loopback",
            json!({"check_url": format!("{BASE}/hostile/generate_204"), "form": 2}),
            "the box's own loopback",
        ),
    ] {
        let code = r
            .tool_err(name, "network_captive_login", args, needle)
            .await;
        r.check_code(name, code, "invalid_argument");
    }
    let log = std::fs::read_to_string(format!("{dir}/requests.log")).unwrap_or_default();
    r.check(
        "captive: the refusals sent nothing (two POSTs so far)",
        log.matches("POST /login").count() == 2,
        &log,
    );

    // --- JavaScript only --------------------------------------------------------------------------
    let js = r
        .ok(
            "captive: check the JavaScript-only portal",
            "network_check_captive",
            json!({"url": format!("{BASE}/js/generate_204")}),
        )
        .await;
    r.check(
        "captive: a JavaScript-only portal: needs_browser, with its scripts, handlers and text",
        js["connectivity"] == "captive"
            && js["needs_browser"] == true
            && js["portal"]["forms"] == json!([])
            && has(&js["portal"]["scripts"], &format!("{BASE}/js/app.js"))
            && js["portal"]["inline_scripts"] == 1
            && js["portal"]["event_handlers"] == 1
            && !js["portal"]["script_signs"]
                .as_array()
                .is_none_or(|s| s.is_empty())
            && text(&js["portal"]["text_excerpt"]).contains("Loading the portal")
            && text(&js["portal"]["noscript"]).contains("needs JavaScript"),
        &js,
    );
    let code = r
        .tool_err(
            "captive: login on the JavaScript-only portal is refused: needs a browser",
            "network_captive_login",
            json!({"check_url": format!("{BASE}/js/generate_204")}),
            "needs a browser",
        )
        .await;
    r.check_code(
        "captive: login on the JavaScript-only portal",
        code,
        "needs_browser",
    );

    // --- through -----------------------------------------------------------------------------------
    r.progress.lock().unwrap().clear();
    let l = r
        .ok(
            "captive: login",
            "network_captive_login",
            json!({"check_url": check, "form": 1, "fields": {"room": "101", "accept": true}}),
        )
        .await;
    let s = &l["submitted"];
    r.check(
        "captive: login: captive before, full after (the check URL answers 204)",
        l["connectivity_before"] == "captive"
            && l["connectivity_after"] == "full"
            && l["logged_in"] == true
            && l["check_status"] == 204,
        &l,
    );
    r.check(
        "captive: login: the submission — POST to the resolved action, hidden token kept, 303 → /online, the auth cookie set (name only) and sent to the check",
        s["method"] == "POST"
            && s["action"] == format!("{BASE}/login")
            && s["fields_sent"] == json!(["token", "room", "accept", "plan", "action"])
            && s["fields_from_caller"] == json!(["accept", "room"])
            && s["submit"] == "Connect"
            && s["redirects"][0]["status"] == 303
            && s["final_url"] == format!("{BASE}/online")
            && s["status"] == 200
            && text(&s["response_excerpt"]).contains("You are online.")
            && has(&s["cookies_sent"], "sid")
            && has(&s["cookies_set"], "auth")
            && has(&l["check_cookies_sent"], "auth"),
        &l,
    );
    r.check(
        "captive: login: the portal granted exactly once",
        granted(&dir) == "1",
        granted(&dir),
    );
    let progress = r
        .progress_when(|p| p.iter().any(|m| m == "logged in"))
        .await;
    r.check(
        "captive: login: progress (check, submit, check again, logged in)",
        progress.iter().any(|m| m.starts_with("checking"))
            && progress
                .iter()
                .any(|m| m.starts_with("submitting form 1 (POST"))
            && progress.iter().any(|m| m.ends_with("again"))
            && progress.last().is_some_and(|m| m == "logged in"),
        format!("{progress:?}"),
    );
    let after = r
        .ok(
            "captive: check after the login",
            "network_check_captive",
            json!({"url": check}),
        )
        .await;
    r.check(
        "captive: check after the login: full (204), no portal",
        after["connectivity"] == "full" && after["status"] == 204 && after["portal"].is_null(),
        &after,
    );
    let internet = r
        .ok(
            "captive: network_check_internet after the login",
            "network_check_internet",
            json!({"url": check}),
        )
        .await;
    r.check(
        "captive: network_check_internet after the login: full too (the same request, the session's cookies)",
        internet["connectivity"] == "full" && internet["status"] == 204,
        &internet,
    );
    let issued = std::fs::read_to_string(format!("{dir}/issued")).unwrap_or_default();
    let shown: Vec<&str> = issued
        .lines()
        .filter(|v| {
            [&cap, &l, &after, &js]
                .iter()
                .any(|x| x.to_string().contains(v))
                && !text(&field("token")["value"]).contains(v)
        })
        .collect();
    r.check(
        "captive: no session id or auth cookie value the portal issued appears in a result",
        !issued.is_empty() && shown.is_empty(),
        format!("{} issued, shown: {shown:?}", issued.lines().count()),
    );
    r.ok("captive: disconnect", "wifi_disconnect", json!({}))
        .await;
    r.check_host("after the captive-portal checks");
}
