//! Screening on every signup surface, against local fakes of what it calls: a before-signup
//! hook (signed per Standard Webhooks, checked with the `standardwebhooks` library), a CAPTCHA
//! provider's siteverify, and a Pwned Passwords range API; disposable and denied domains.

use crate::helpers::*;
use axum::body::Bytes;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use onramp::config::{
    BeforeSignupHookConfig, BreachCheckConfig, CaptchaConfig, Config, FailurePolicy, Secret,
};
use onramp_core::clock::Clock;
use onramp_core::screening::CaptchaProvider;
use rstest::rstest;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub(crate) const CAPTCHA_SECRET: &str = "0x4AAAAAAA-test-secret";
pub(crate) const GOOD_TOKEN: &str = "XXXX.DUMMY.TOKEN.XXXX";
/// A password the fake range API lists as breached (42 times), and one it lists only as padding.
const BREACHED: &str = "correct horse battery staple 1";
const PADDED_ONLY: &str = "correct horse battery staple 2";

/// The fakes of everything screening calls, recording what they get.
#[derive(Clone, Default)]
pub(crate) struct Outside {
    hook_calls: Arc<Mutex<Vec<(HeaderMap, Value, String)>>>,
    pub(crate) siteverify_calls: Arc<Mutex<Vec<HashMap<String, String>>>>,
    range_calls: Arc<Mutex<Vec<String>>>,
    /// The hook answers after 2 s (past any timeout the tests set).
    hook_slow: Arc<AtomicBool>,
    range_down: Arc<AtomicBool>,
}

fn sha1_hex(password: &str) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(password.as_bytes()).iter().map(|b| format!("{b:02X}")).collect()
}

async fn hook(State(o): State<Outside>, headers: HeaderMap, body: Bytes) -> (StatusCode, axum::Json<Value>) {
    let text = String::from_utf8(body.to_vec()).unwrap();
    o.hook_calls.lock().unwrap().push((headers, serde_json::from_str(&text).unwrap(), text.clone()));
    if o.hook_slow.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    let event: Value = serde_json::from_str(&text).unwrap();
    let data = &event["data"];
    if data["email"].as_str().is_some_and(|e| e.ends_with("@blocked.example")) {
        let answer = json!({"decision": "deny", "code": "blocked_domain", "message": "Sign-ups from blocked.example are closed."});
        return (StatusCode::OK, axum::Json(answer));
    }
    (
        StatusCode::OK,
        axum::Json(json!({"decision": "allow", "metadata": {"plan": "trial", "via": data["surface"]}})),
    )
}

async fn siteverify(
    State(o): State<Outside>,
    Form(form): Form<HashMap<String, String>>,
) -> axum::Json<Value> {
    let success = form.get("secret").map(String::as_str) == Some(CAPTCHA_SECRET)
        && form.get("response").map(String::as_str) == Some(GOOD_TOKEN);
    o.siteverify_calls.lock().unwrap().push(form);
    axum::Json(
        json!({"success": success, "error-codes": if success { json!([]) } else { json!(["invalid-input-response"]) }}),
    )
}

async fn range(
    State(o): State<Outside>,
    Path(prefix): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    o.range_calls.lock().unwrap().push(prefix.clone());
    assert_eq!(headers["add-padding"], "true");
    if o.range_down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, String::new());
    }
    let mut lines = vec!["0018A45C4D1DEF81644B54AB7F969B88D65:1".to_owned()];
    for (password, count) in [(BREACHED, 42), (PADDED_ONLY, 0)] {
        let hash = sha1_hex(password);
        if hash[..5] == prefix {
            lines.push(format!("{}:{count}", &hash[5..]));
        }
    }
    lines.push("FFFFF00000000000000000000000000000A:0".into());
    (StatusCode::OK, lines.join("\r\n"))
}

impl Outside {
    pub(crate) async fn start(&self) -> SocketAddr {
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .route("/siteverify", axum::routing::post(siteverify))
            .route("/range/{prefix}", axum::routing::get(range))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        addr
    }

    fn hook_surfaces(&self) -> Vec<String> {
        self.hook_calls
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v, _)| v["data"]["surface"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Every surface on the default instance's first app (and FastTrack on the platform).
fn every_surface(c: &mut Config) {
    crate::dreamfactory::open(false)(c);
    crate::contracts::contracts(c);
    crate::fast_track::enable(c);
    c.instances[0].apps[0].api_keys = vec![
        Secret(crate::dreamfactory::KEY.into()),
        Secret(crate::partner::KEY.into()),
        Secret(crate::contracts::KEY.into()),
    ];
    c.rate_limits.enabled = false;
}

/// One signup per surface: its name, status and body.
struct Attempt {
    surface: &'static str,
    status: u16,
    body: Value,
}

/// A signup of `email` with `password` on `surface`, sending `captcha` in the surface's usual
/// place.
async fn sign_up(
    app: &TestApp,
    surface: &'static str,
    email: &str,
    password: &str,
    captcha: Option<&str>,
) -> Attempt {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let request = match surface {
        "v1" => {
            let mut body = with(signup_body(email), json!({"username": null, "password": password}));
            if let Some(t) = captcha {
                body["captcha_token"] = json!(t);
            }
            client.post(app.url("/v1/auth/signup")).json(&body)
        }
        "dreamfactory" => {
            let mut body = json!({"email": email, "password": password, "first_name": "Dee"});
            if let Some(t) = captcha {
                body["captcha_token"] = json!(t);
            }
            client
                .post(app.url("/api/v2/user/register"))
                .header("X-DreamFactory-API-Key", crate::dreamfactory::KEY)
                .json(&body)
        }
        "fasteditor" => client
            .post(app.url("/partner/fasteditor/signup"))
            .header("X-Api-Key", crate::partner::KEY)
            .json(&json!({"userName": email, "password": password, "firstName": "Fe", "lastName": "Partner", "language": "en"})),
        "dialogportal" => client
            .post(app.url("/user"))
            .header("X-Api-Key", crate::contracts::KEY)
            .json(&json!({"name": "Dia Portal", "email": email, "password": password})),
        "fast_track" => {
            let mut body = crate::fast_track::payload(email);
            body["password"] = json!(password);
            client.post(app.url("/fast-track")).json(&body)
        }
        other => panic!("no surface {other}"),
    };
    let request = match (surface, captcha) {
        ("fasteditor" | "dialogportal" | "fast_track", Some(t)) => request.header("X-Captcha-Token", t),
        _ => request,
    };
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    Attempt { surface, status, body: r.json().await.unwrap_or(Value::Null) }
}

const SURFACES: [&str; 5] = ["v1", "dreamfactory", "fasteditor", "dialogportal", "fast_track"];
const PASSWORD: &str = "a quiet harbour at dawn 7";

/// The surface's success status.
fn succeeded(a: &Attempt) -> bool {
    match a.surface {
        "fasteditor" | "dialogportal" => a.status == 201,
        _ => a.status == 200,
    }
}

/// `a` is refused with `status` in its surface's own error format, its code `code` where the
/// surface shows one.
fn assert_refused(a: &Attempt, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}: {}", a.surface, a.body);
    match a.surface {
        "v1" => assert_eq!(a.body["error"]["code"], code, "{}", a.body),
        "dreamfactory" => assert_eq!(a.body["error"]["code"], status, "{}", a.body),
        "fasteditor" => assert!(
            a.body["code"].as_str().is_some_and(|c| c.chars().all(|c| c.is_ascii_uppercase() || c == '_')),
            "{}",
            a.body
        ),
        "dialogportal" => assert!(a.body["code"].is_string() || a.body["message"].is_string(), "{}", a.body),
        "fast_track" => assert_eq!(a.body["error"]["code"], status, "{}", a.body),
        _ => unreachable!(),
    }
}

fn before_signup(addr: SocketAddr, timeout_ms: u64, on_failure: FailurePolicy) -> BeforeSignupHookConfig {
    BeforeSignupHookConfig {
        url: format!("http://{addr}/hook"),
        secret: Secret(HOOK_SECRET.into()),
        timeout_ms,
        on_failure,
    }
}

async fn users(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM users").await
}

#[rstest]
#[tokio::test]
async fn the_before_signup_hook_denies_on_every_surface_and_its_metadata_is_kept(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let outside = Outside::default();
    let addr = outside.start().await;
    let app = TestApp::spawn_with(db, |c| {
        every_surface(c);
        c.hooks.before_signup = Some(before_signup(addr, 2000, FailurePolicy::Reject));
    })
    .await;
    let before = users(&app).await;
    for surface in SURFACES {
        let a = sign_up(&app, surface, &format!("{surface}@blocked.example"), PASSWORD, None).await;
        assert_refused(&a, 403, "blocked_domain");
        match surface {
            "v1" => assert_eq!(a.body["error"]["message"], "Sign-ups from blocked.example are closed."),
            "dreamfactory" => {
                assert_eq!(a.body["error"]["message"], "Sign-ups from blocked.example are closed.")
            }
            "fasteditor" => {
                assert_eq!(a.body["code"], "SIGNUP_DENIED");
                assert_eq!(a.body["message"], "Sign-ups from blocked.example are closed.");
            }
            _ => {}
        }
    }
    assert_eq!(users(&app).await, before, "a denied signup writes nothing");
    for surface in SURFACES {
        let a = sign_up(&app, surface, &format!("{surface}@fine.example"), PASSWORD, None).await;
        assert!(succeeded(&a), "{surface}: {} {}", a.status, a.body);
    }
    assert_eq!(outside.hook_surfaces(), [SURFACES, SURFACES].concat());
    // Every call is signed per Standard Webhooks (checked with its library) and carries no password.
    let verifier = standardwebhooks::Webhook::new(HOOK_SECRET).unwrap();
    for (headers, event, text) in outside.hook_calls.lock().unwrap().iter() {
        let id = headers["webhook-id"].to_str().unwrap();
        let timestamp: i64 = headers["webhook-timestamp"].to_str().unwrap().parse().unwrap();
        assert_eq!(timestamp, app.clock.now().unix_timestamp());
        let expected = verifier.sign(id, timestamp, text.as_bytes()).unwrap();
        assert!(headers["webhook-signature"].to_str().unwrap().split(' ').any(|s| s == expected));
        assert_eq!(event["type"], "signup.before");
        assert!(!text.contains(PASSWORD), "the hook never sees the password");
        assert!(event["data"]["instance"].is_string() && event["data"]["client_address"] == "127.0.0.1");
    }
    // What the hook handed back is kept on each user.
    for surface in SURFACES {
        let metadata = app
            .text(&format!("SELECT metadata FROM users WHERE email = '{surface}@fine.example' LIMIT 1"))
            .await;
        let metadata: Value = serde_json::from_str(&metadata).unwrap();
        assert_eq!(metadata, json!({"plan": "trial", "via": surface}), "{surface}");
    }
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_hook_that_times_out_refuses_or_lets_through_as_configured(
    #[values(SQLITE, POSTGRES)] db: Db,
    #[values(FailurePolicy::Reject, FailurePolicy::Allow)] on_failure: FailurePolicy,
) {
    let outside = Outside::default();
    outside.hook_slow.store(true, Ordering::SeqCst);
    let addr = outside.start().await;
    let app = TestApp::spawn_with(db, |c| {
        every_surface(c);
        c.hooks.before_signup = Some(before_signup(addr, 300, on_failure));
    })
    .await;
    let before = users(&app).await;
    for surface in SURFACES {
        let a = sign_up(&app, surface, &format!("slow-{surface}@fine.example"), PASSWORD, None).await;
        match on_failure {
            FailurePolicy::Reject => {
                assert_refused(&a, 503, "service_unavailable");
                assert!(a.body.to_string().len() < 2000);
            }
            FailurePolicy::Allow => assert!(succeeded(&a), "{surface}: {} {}", a.status, a.body),
        }
    }
    let created = users(&app).await - before;
    match on_failure {
        FailurePolicy::Reject => assert_eq!(created, 0),
        // FastTrack makes two users (the dashboard's and the instance's admin).
        FailurePolicy::Allow => assert_eq!(created, 6),
    }
    assert_eq!(outside.hook_surfaces().len(), 5, "each surface asked once");
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_captcha_is_required_checked_and_passed_against_siteverify(#[values(SQLITE, POSTGRES)] db: Db) {
    let outside = Outside::default();
    let addr = outside.start().await;
    let app = TestApp::spawn_with(db, |c| {
        every_surface(c);
        let captcha = CaptchaConfig {
            provider: CaptchaProvider::Turnstile,
            secret: Secret(CAPTCHA_SECRET.into()),
            site_key: Some("1x00000000000000000000AA".into()),
            verify_url: Some(format!("http://{addr}/siteverify")),
        };
        // The default instance's apps, and FastTrack's platform through the global rules.
        c.instances[0].signup.captcha = Some(captcha.clone());
        c.signup.captcha = Some(captcha);
        c.fast_track.allowed_origins = vec!["https://www.example.com".into()];
    })
    .await;
    let before = users(&app).await;
    for surface in SURFACES {
        let missing =
            sign_up(&app, surface, &format!("nocaptcha-{surface}@fine.example"), PASSWORD, None).await;
        let failed =
            sign_up(&app, surface, &format!("badcaptcha-{surface}@fine.example"), PASSWORD, Some("forged"))
                .await;
        for (a, code) in [(&missing, "captcha_required"), (&failed, "captcha_failed")] {
            let status = match surface {
                "v1" => 422,
                _ => 400,
            };
            assert_refused(a, status, "validation_failed");
            if surface == "v1" {
                assert_eq!(a.body["error"]["fields"][0]["field"], "captcha_token");
                assert_eq!(a.body["error"]["fields"][0]["code"], code);
            }
            if surface == "fasteditor" {
                assert_eq!(a.body["code"], "CAPTCHA_FAILED");
            }
        }
    }
    assert_eq!(users(&app).await, before, "no signup without a good CAPTCHA");
    assert_eq!(
        outside.siteverify_calls.lock().unwrap().len(),
        5,
        "a missing token is refused without a call"
    );
    for surface in SURFACES {
        let a =
            sign_up(&app, surface, &format!("captcha-{surface}@fine.example"), PASSWORD, Some(GOOD_TOKEN))
                .await;
        assert!(succeeded(&a), "{surface}: {} {}", a.status, a.body);
    }
    let calls = outside.siteverify_calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 10);
    assert!(calls.iter().all(|c| c["secret"] == CAPTCHA_SECRET && c["remoteip"] == "127.0.0.1"));
    // A FastTrack form sends the widget's own field.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = |token: &'static str| {
        client.post(app.url("/fast-track")).header("Origin", "https://www.example.com").form(&[
            ("email", "form-captcha@fine.example"),
            ("first-name", "Fay"),
            ("last-name", "Form"),
            ("password", PASSWORD),
            ("cf-turnstile-response", token),
        ])
    };
    assert_eq!(form("forged").send().await.unwrap().status(), 400);
    assert_eq!(form(GOOD_TOKEN).send().await.unwrap().status(), 303);
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn disposable_and_denied_domains_are_refused(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        every_surface(c);
        c.signup.block_disposable_email = Some(true);
        c.signup.email_domains_deny = Some(vec!["competitor.example".into()]);
        // The acme instance takes only its own domain.
        c.instances[1].signup.email_domains_allow = Some(vec!["acme.example".into()]);
    })
    .await;
    let before = users(&app).await;
    for surface in SURFACES {
        for (email, code) in [
            (format!("{surface}@mailinator.com"), "email_disposable"),
            (format!("{surface}@sub.competitor.example"), "email_domain_not_allowed"),
        ] {
            let a = sign_up(&app, surface, &email, PASSWORD, None).await;
            assert_refused(&a, if surface == "v1" { 422 } else { 400 }, "validation_failed");
            match surface {
                "v1" => assert_eq!(
                    a.body["error"]["fields"][0],
                    json!({"field": "email", "code": code, "message": a.body["error"]["fields"][0]["message"]})
                ),
                "fasteditor" => assert_eq!(a.body["code"], "EMAIL_NOT_ALLOWED"),
                "dreamfactory" => assert!(a.body["error"]["context"]["email"].is_array(), "{}", a.body),
                _ => {}
            }
        }
    }
    assert_eq!(users(&app).await, before);
    // The acme instance: only acme.example, and its subdomains.
    let acme = |email: &str| with(signup_body(email), json!({"domain_id": "dom_acme", "username": null}));
    let r = app.post_to("acme", "/v1/auth/signup", &acme("someone@fine.example")).await;
    assert_eq!(r.status(), 422);
    assert_eq!(json(r).await["error"]["fields"][0]["code"], "email_domain_not_allowed");
    assert_eq!(app.post_to("acme", "/v1/auth/signup", &acme("someone@eu.acme.example")).await.status(), 200);
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_breached_password_is_refused_and_only_a_prefix_leaves(#[values(SQLITE, POSTGRES)] db: Db) {
    let outside = Outside::default();
    let addr = outside.start().await;
    let check =
        |on_failure| BreachCheckConfig { url: format!("http://{addr}/range/"), on_failure, timeout_ms: 1000 };
    let app = TestApp::spawn_with(db, |c| {
        every_surface(c);
        c.passwords.breach_check = Some(check(FailurePolicy::Allow));
    })
    .await;
    for surface in SURFACES {
        let a = sign_up(&app, surface, &format!("breached-{surface}@fine.example"), BREACHED, None).await;
        assert_refused(&a, if surface == "v1" { 422 } else { 400 }, "validation_failed");
        match surface {
            "v1" => assert_eq!(a.body["error"]["fields"][0]["code"], "password_too_common"),
            "fasteditor" => assert_eq!(a.body["code"], "PASSWORD_TOO_WEAK"),
            "dreamfactory" => assert!(a.body["error"]["context"]["password"].is_array()),
            _ => {}
        }
    }
    // Listed only as padding (count 0): not breached.
    let a = sign_up(&app, "v1", "padded@fine.example", PADDED_ONLY, None).await;
    assert!(succeeded(&a), "{}", a.body);
    // Only 5-character prefixes left, and a prefix already asked came from the cache.
    let calls = outside.range_calls.lock().unwrap().clone();
    assert!(calls.iter().all(|p| p.len() == 5 && p.chars().all(|c| c.is_ascii_hexdigit())), "{calls:?}");
    assert!(calls.contains(&sha1_hex(BREACHED)[..5].to_owned()));
    let distinct: std::collections::HashSet<_> = calls.iter().collect();
    assert_eq!(calls.len(), distinct.len(), "each prefix asked once: {calls:?}");
    app.worker.drain().await.unwrap();
    drop(app);

    // The range API down: on_failure decides.
    outside.range_down.store(true, Ordering::SeqCst);
    for (on_failure, status) in [(FailurePolicy::Allow, 200), (FailurePolicy::Reject, 503)] {
        let app = TestApp::spawn_with(db, |c| {
            every_surface(c);
            c.passwords.breach_check = Some(check(on_failure));
        })
        .await;
        let a = sign_up(&app, "v1", "down@fine.example", "an unlisted long passphrase", None).await;
        assert_eq!(a.status, status, "{:?}: {}", on_failure, a.body);
        app.worker.drain().await.unwrap();
    }
}
