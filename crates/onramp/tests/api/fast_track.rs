//! DreamFactory FastTrack (seed 000) over a real socket: the envelope, the 302 into the new
//! instance with a cookie-keeping client, naming, concurrency, failing webhooks (undo and
//! retry), rate limits; on SQLite and PostgreSQL.

use crate::helpers::*;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use onramp::config::{Config, OnFailure, Secret, WebhookConfig};
use onramp::http::fast_track::envelope::signature;
use rstest::rstest;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const PASSWORD: &str = "gratePassW0rd!-but-longer";

pub(crate) fn enable(config: &mut Config) {
    config.fast_track.enabled = true;
}

pub(crate) fn payload(email: &str) -> Value {
    json!({
        "email": email,
        "first-name": "Joe",
        "last-name": "Blow",
        "password": PASSWORD,
        "nickname": "Joe",
        "company": "",
        "phone": ""
    })
}

pub(crate) async fn fast_track(app: &TestApp, body: &Value) -> (u16, Value) {
    let r = app.post("/fast-track", body).await;
    let status = r.status().as_u16();
    (status, json(r).await)
}

/// The error envelope, checked whole: real status, same code inside, no response.
fn assert_error(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["status_code"], expected);
    assert_eq!(body["error"]["code"], expected);
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body["response"].is_null());
    assert_request_block(body);
}

/// `request{elapsed, id, request-uri, signature, start, verb, version}` with the seed's formula.
fn assert_request_block(body: &Value) {
    let request = &body["request"];
    let id = request["id"].as_str().unwrap();
    assert_eq!(id.len(), 40);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(request["signature"], signature(id));
    assert_eq!(request["request-uri"], "/fast-track");
    assert_eq!(request["verb"], "POST");
    assert_eq!(request["version"], "2.0");
    assert!(request["elapsed"].as_f64().is_some_and(|e| e >= 0.0));
    let start = request["start"].as_str().unwrap();
    time::OffsetDateTime::parse(start, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(start.ends_with("+00:00"), "ISO 8601 with an offset: {start}");
}

async fn users_in(app: &TestApp, instance: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM users u JOIN instances i ON i.id = u.instance_id WHERE i.name = '{instance}'"
    ))
    .await
}

async fn instance_count(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM instances").await
}

/// Does the instance's own database exist (its SQLite file, or its PostgreSQL schema)?
async fn own_database_exists(app: &TestApp, instance: &str) -> bool {
    match &app.env.pg {
        None => app.env.dir.path().join("instances").join(format!("{instance}.sqlite3")).exists(),
        Some(_) => {
            app.count(&format!(
                "SELECT COUNT(*) FROM information_schema.schemata s JOIN instances i
                   ON s.schema_name = 'instance_' || i.id WHERE i.name = '{instance}'"
            ))
            .await
                == 1
        }
    }
}

#[rstest]
#[tokio::test]
async fn fast_track_is_off_unless_enabled(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let before = instance_count(&app).await;
    let (status, body) = fast_track(&app, &payload("joe@example.com")).await;
    assert_error(status, &body, 404);
    assert_eq!(instance_count(&app).await, before);
    assert_eq!(users_in(&app, "platform").await, 0);
}

#[rstest]
#[tokio::test]
async fn the_envelope_has_the_seeds_shape_and_the_instance_is_live(#[values(SQLITE, POSTGRES)] db: Db) {
    let env = TestEnv::new(db).await;
    let init_sql = env.dir.path().join("init.sql");
    std::fs::write(&init_sql, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);").unwrap();
    let mut config = env.config();
    enable(&mut config);
    config.provisioning.init_sql_file = Some(init_sql);
    let app = TestApp::spawn_in(env, config).await;

    let r = app.post("/fast-track", &payload("joe@example.com")).await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    let status = r.status().as_u16();
    let body = json(r).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["status_code"], 200);
    assert!(body.get("error").is_none());
    assert_request_block(&body);
    let response = &body["response"];
    assert_eq!(response["instance-id"], "joe", "the seed's example: joe@… becomes joe");
    assert_eq!(response["instance-initialized"], true);
    assert_eq!(response["instance-admin"], true);
    assert_eq!(response["redirect"]["status-code"], 302);
    let guid = response["redirect"]["payload"]["fastTrackGuid"].as_str().unwrap();
    assert!(guid.len() >= 26 && !guid.contains("joe"), "random, not from the email: {guid}");
    assert_eq!(
        response["redirect"]["location"],
        format!("http://joe.localhost:{}/welcome?fastTrackGuid={guid}", app.addr.port())
    );

    // The ids are the real keys: the dashboard user in `platform`, the instance.
    let user_id = response["user"]["id"].as_i64().unwrap();
    let instance_id = response["instance"]["id"].as_i64().unwrap();
    assert_eq!(
        app.text(&format!(
            "SELECT u.email FROM users u JOIN instances i ON i.id = u.instance_id
             WHERE u.id = {user_id} AND i.name = 'platform'"
        ))
        .await,
        "joe@example.com"
    );
    assert_eq!(app.text(&format!("SELECT name FROM instances WHERE id = {instance_id}")).await, "joe");
    assert_eq!(app.text("SELECT status FROM instances WHERE name = 'joe'").await, "active");

    // Its admin has the same credentials, hashed once, and the admin role; its roles and
    // default app exist; its own database holds the operator's init SQL.
    assert_eq!(users_in(&app, "joe").await, 1);
    assert_eq!(
        app.count(
            "SELECT COUNT(DISTINCT password_hash) FROM users WHERE email_canonical = 'joe@example.com'"
        )
        .await,
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE email_canonical = 'joe@example.com'").await, 2);
    assert_eq!(
        app.text(&format!("SELECT role FROM user_roles WHERE instance_id = {instance_id}")).await,
        "admin"
    );
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM roles WHERE instance_id = {instance_id}")).await, 2);
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM apps WHERE instance_id = {instance_id}")).await, 1);
    assert!(own_database_exists(&app, "joe").await);
    match &app.env.pg {
        None => {
            let file = app.env.dir.path().join("instances/joe.sqlite3");
            let pool =
                sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", file.display())).await.unwrap();
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes").fetch_one(&pool).await.unwrap();
            assert_eq!(n, 0);
        }
        Some(_) => {
            assert_eq!(app.count(&format!("SELECT COUNT(*) FROM instance_{instance_id}.notes")).await, 0);
        }
    }

    // The admin logs in on the instance with the password given; the guid is stored hashed.
    let login = json!({"email": "joe@example.com", "password": PASSWORD});
    assert_eq!(app.post_to("joe", "/v1/auth/login", &login).await.status(), 200);
    let dump = app.database_dump();
    assert!(!dump.windows(guid.len()).any(|w| w == guid.as_bytes()), "the guid is not in the database");
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn redirect_true_lands_the_admin_logged_in_on_the_instance_page(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, enable).await;
    let browser = app.browser();
    let mut body = payload("joe@example.com");
    body["redirect"] = json!(true);

    // Without following: a real 302 to the instance, carrying the guid.
    let raw = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let first = raw.post(app.url("/fast-track")).json(&body).send().await.unwrap();
    assert_eq!(first.status(), 302);
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("http://joe.localhost:{}/welcome?fastTrackGuid=", app.addr.port()))
    );

    // Following, like a browser: 302 → the guid is exchanged for a cookie → 303 → the page.
    body["email"] = json!("ann@example.com");
    let landed = browser.post(app.url("/fast-track")).json(&body).send().await.unwrap();
    assert_eq!(landed.status(), 200);
    assert_eq!(landed.url().as_str(), format!("http://ann.localhost:{}/welcome", app.addr.port()));
    let page = landed.text().await.unwrap();
    assert!(page.contains("Welcome to ann, Joe!"), "{page}");
    assert!(page.contains("ann@example.com") && page.contains("(admin)"), "{page}");
    // Reloading keeps the session (the cookie), without the guid.
    let again =
        browser.get(format!("http://ann.localhost:{}/welcome", app.addr.port())).send().await.unwrap();
    assert_eq!(again.status(), 200);

    // The guid is single use.
    let fresh = app.browser();
    let reused = fresh.get(&location).send().await.unwrap();
    assert_eq!(reused.status(), 200, "joe's guid was not used yet");
    let reused = app.browser().get(&location).send().await.unwrap();
    assert_eq!(reused.status(), 400, "a guid works once");
    assert!(reused.text().await.unwrap().contains("not valid"));
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_guid_or_session_of_one_instance_is_refused_by_another(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, enable).await;
    let (_, joe) = fast_track(&app, &payload("joe@example.com")).await;
    let (_, ann) = fast_track(&app, &payload("ann@example.com")).await;
    let guid = joe["response"]["redirect"]["payload"]["fastTrackGuid"].as_str().unwrap();
    let raw = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let send = |host: &str, query: &str, cookie: Option<&str>| {
        let mut r = raw.get(app.url(&format!("/welcome{query}"))).header("host", format!("{host}.localhost"));
        if let Some(c) = cookie {
            r = r.header("cookie", format!("onramp_session={c}"));
        }
        r.send()
    };

    // Joe's guid at ann's instance: refused, and not used up.
    let r = send("ann", &format!("?fastTrackGuid={guid}"), None).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = send("joe", &format!("?fastTrackGuid={guid}"), None).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/welcome");
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(!set_cookie.to_ascii_lowercase().contains("domain="), "host-only: {set_cookie}");
    let token = set_cookie.split(';').next().unwrap().trim_start_matches("onramp_session=").to_owned();

    // Joe's session works at joe, not at ann or at the platform; ann's own guid still works.
    assert_eq!(send("joe", "", Some(&token)).await.unwrap().status(), 200);
    assert_eq!(send("ann", "", Some(&token)).await.unwrap().status(), 401);
    assert_eq!(send("acme", "", Some(&token)).await.unwrap().status(), 401);
    let ann_guid = ann["response"]["redirect"]["payload"]["fastTrackGuid"].as_str().unwrap();
    assert_eq!(send("ann", &format!("?fastTrackGuid={ann_guid}"), None).await.unwrap().status(), 303);
    assert_eq!(send("nobody", "", Some(&token)).await.unwrap().status(), 404);
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn the_guid_expires(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, enable).await;
    let (_, joe) = fast_track(&app, &payload("joe@example.com")).await;
    let location = joe["response"]["redirect"]["location"].as_str().unwrap().to_owned();
    app.clock.advance(time::Duration::minutes(5));
    let r = app.browser().get(&location).send().await.unwrap();
    assert_eq!(r.status(), 410);
    assert!(r.text().await.unwrap().contains("expired"));
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn bad_input_is_a_400_envelope_and_changes_nothing(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, enable).await;
    let before = instance_count(&app).await;
    let cases = [
        with(payload("joe@example.com"), json!({"age": 30})),
        with(payload("joe@example.com"), json!({"email": null})),
        with(payload("joe@example.com"), json!({"first-name": null})),
        with(payload("joe@example.com"), json!({"last-name": "  "})),
        with(payload("joe@example.com"), json!({"password": null})),
        with(payload("joe@example.com"), json!({"password": "password1"})),
        with(payload("joe@example.com"), json!({"password": "short"})),
        with(payload("joe.bloggs@example.com"), json!({"password": "Joe.Bloggs@Example.com"})),
        with(payload("joe@example.com"), json!({"password": "\u{200B}".repeat(8)})),
        with(payload("joe@example.com"), json!({"redirect": "yes"})),
        with(payload("joe@example.com"), json!({"email": 42})),
        payload("not-an-email"),
        payload("joe@example.com\r\nBcc: x@evil.example"),
        payload("+++@example.com"),
        with(payload("joe@example.com"), json!({"company": "x".repeat(101)})),
        json!(["not", "an", "object"]),
    ];
    let mut ids = std::collections::HashSet::new();
    for case in &cases {
        let (status, body) = fast_track(&app, case).await;
        assert_error(status, &body, 400);
        // The test clock stands still: every request in the same second, each its own id.
        assert!(
            ids.insert(body["request"]["id"].as_str().unwrap().to_owned()),
            "request.id repeated: {body}"
        );
    }
    let r = app
        .client
        .post(app.url("/fast-track"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_error(status, &json(r).await, 400);
    let huge = json!({"email": "joe@example.com", "company": "x".repeat(70_000)});
    let (status, body) = fast_track(&app, &huge).await;
    assert_error(status, &body, 413);
    // One message names each problem.
    let (_, body) = fast_track(&app, &with(payload("bad"), json!({"password": "short"}))).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("email") && message.contains("password"), "{message}");

    assert_eq!(instance_count(&app).await, before);
    assert_eq!(users_in(&app, "platform").await, 0);
}

#[rstest]
#[tokio::test]
async fn an_email_that_owns_a_dashboard_account_is_a_409(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, enable).await;
    assert_eq!(fast_track(&app, &payload("joe@example.com")).await.0, 200);
    let before = instance_count(&app).await;
    let (status, body) = fast_track(&app, &payload("JOE@Example.com")).await;
    assert_error(status, &body, 409);
    assert_eq!(instance_count(&app).await, before);
    assert_eq!(users_in(&app, "platform").await, 1);
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn names_are_sanitised_and_collisions_get_suffixes(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, enable).await;
    let cases = [
        ("joe@a.example", "joe"),
        ("joe@b.example", "joe-2"),
        ("Joe@c.example", "joe-3"),
        ("Joe.Blow+test@a.example", "joe-blow-test"),
        ("__x__y@a.example", "x-y"),
        ("admin@a.example", "admin-2"),
        ("www@a.example", "www-2"),
        ("platform@a.example", "platform-2"),
    ];
    for (email, name) in cases {
        let (status, body) = fast_track(&app, &payload(email)).await;
        assert_eq!(status, 200, "{email}: {body}");
        assert_eq!(body["response"]["instance-id"], name, "{email}");
    }
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn twenty_concurrent_fast_tracks_get_twenty_instances(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        enable(c);
        c.rate_limits.fast_track_per_client_per_hour = 100;
    })
    .await;
    let before = instance_count(&app).await;
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let (client, url) = (app.client.clone(), app.url("/fast-track"));
            let body = payload(&format!("joe@{n}.example"));
            tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap() })
        })
        .collect();
    let mut names = std::collections::HashSet::new();
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!(r.status(), 200);
        names.insert(json(r).await["response"]["instance-id"].as_str().unwrap().to_owned());
    }
    assert_eq!(names.len(), 20, "{names:?}");
    assert!(names.contains("joe") && names.contains("joe-20"), "{names:?}");
    assert_eq!(instance_count(&app).await, before + 20);
    assert_eq!(app.count("SELECT COUNT(*) FROM instances WHERE status = 'active'").await, before + 20);
    assert_eq!(users_in(&app, "platform").await, 20);
    assert_eq!(app.count("SELECT COUNT(*) FROM user_roles WHERE role = 'admin'").await, 20);
    app.worker.drain().await.unwrap();
}

/// A local provisioning webhook that records what it gets and fails while told to.
#[derive(Clone, Default)]
struct Hook {
    calls: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    failing: Arc<AtomicBool>,
}

const HOOK_SECRET: &str = "a-webhook-secret-of-some-length";

impl Hook {
    async fn start(&self) -> SocketAddr {
        let hook = self.clone();
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let hook = hook.clone();
                async move {
                    let timestamp: i64 =
                        headers["onramp-signature"].to_str().unwrap()[2..12].parse().unwrap();
                    assert_eq!(
                        headers["onramp-signature"].to_str().unwrap(),
                        onramp::delivery::webhooks::signature(HOOK_SECRET, timestamp, &body),
                        "the HMAC covers time and body"
                    );
                    hook.calls.lock().unwrap().push((headers, serde_json::from_slice(&body).unwrap()));
                    if hook.failing.load(Ordering::SeqCst) {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        addr
    }

    fn events(&self) -> Vec<String> {
        self.calls.lock().unwrap().iter().map(|(_, v)| v["type"].as_str().unwrap().to_owned()).collect()
    }
}

fn with_hook(addr: SocketAddr, on_failure: OnFailure) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        enable(c);
        c.provisioning.on_failure = on_failure;
        c.provisioning.webhooks = vec![WebhookConfig {
            url: format!("http://{addr}/hook"),
            secret: Secret(HOOK_SECRET.into()),
            timeout_secs: 5,
            attempts: 2,
        }];
    }
}

#[rstest]
#[tokio::test]
async fn a_failing_webhook_undoes_everything(#[values(SQLITE, POSTGRES)] db: Db) {
    let hook = Hook::default();
    let addr = hook.start().await;
    hook.failing.store(true, Ordering::SeqCst);
    let app = TestApp::spawn_with(db, with_hook(addr, OnFailure::Undo)).await;
    let before = instance_count(&app).await;

    let (status, body) = fast_track(&app, &payload("joe@example.com")).await;
    assert_error(status, &body, 500);
    assert_eq!(hook.events(), ["instance.provisioned", "instance.provisioned"], "retried, then given up");
    assert_eq!(instance_count(&app).await, before, "no instance");
    assert_eq!(users_in(&app, "platform").await, 0, "no orphaned dashboard user");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
    assert!(!app.env.dir.path().join("instances/joe.sqlite3").exists());
    if app.env.pg.is_some() {
        assert_eq!(
            app.count("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name LIKE 'instance_%'")
                .await,
            0
        );
    }

    // Once the hook works, the same email gets the same name.
    hook.failing.store(false, Ordering::SeqCst);
    let (status, body) = fast_track(&app, &payload("joe@example.com")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response"]["instance-id"], "joe");
    let (headers, event) = hook.calls.lock().unwrap().last().cloned().unwrap();
    assert_eq!(headers["onramp-event"], "instance.provisioned");
    assert_eq!(event["data"]["instance"], "joe");
    assert_eq!(event["data"]["owner_email"], "joe@example.com");
    assert_eq!(event["data"]["url"], format!("http://joe.localhost:{}", app.addr.port()));
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_kept_failure_is_visible_and_retry_completes_it(#[values(SQLITE, POSTGRES)] db: Db) {
    let hook = Hook::default();
    let addr = hook.start().await;
    hook.failing.store(true, Ordering::SeqCst);
    let app = TestApp::spawn_with(db, with_hook(addr, OnFailure::Keep)).await;

    let (status, body) = fast_track(&app, &payload("joe@example.com")).await;
    assert_error(status, &body, 500);
    let summary = app.state.onramp.store().instance_summary("joe").await.unwrap().unwrap();
    assert_eq!(summary.status, "provisioning_failed");
    assert!(summary.status_detail.unwrap().contains("webhook"));
    assert_eq!(summary.owner_email.as_deref(), Some("joe@example.com"));
    let login = json!({"email": "joe@example.com", "password": PASSWORD});
    assert_eq!(
        app.post_to("joe", "/v1/auth/login", &login).await.status(),
        404,
        "a failed instance serves nothing"
    );
    assert!(app.state.onramp.provisioner().retry("joe").await.is_err(), "still failing");

    hook.failing.store(false, Ordering::SeqCst);
    app.state.onramp.provisioner().retry("joe").await.unwrap();
    assert_eq!(app.text("SELECT status FROM instances WHERE name = 'joe'").await, "active");
    assert!(own_database_exists(&app, "joe").await);
    // Unknown names are never cached, so the instance serves at once.
    assert_eq!(app.post_to("joe", "/v1/auth/login", &login).await.status(), 200);
    assert!(app.state.onramp.provisioner().retry("joe").await.is_err(), "a live instance is not retried");
}

#[rstest]
#[tokio::test]
async fn fast_track_is_rate_limited_per_client_and_per_email_domain(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        enable(c);
        c.rate_limits.fast_track_per_client_per_hour = 3;
        c.rate_limits.fast_track_per_email_domain_per_hour = 2;
    })
    .await;
    assert_eq!(fast_track(&app, &payload("a@one.example")).await.0, 200);
    assert_eq!(fast_track(&app, &payload("b@one.example")).await.0, 200);
    let r = app.post("/fast-track", &payload("c@one.example")).await;
    assert_eq!(r.status(), 429, "the third of one domain");
    assert!(r.headers().contains_key("retry-after"));
    assert_error(429, &json(r).await, 429);
    // The per-client limit counted all three; a fourth from this client is refused too.
    let (status, body) = fast_track(&app, &payload("d@two.example")).await;
    assert_error(status, &body, 429);
    app.clock.advance(time::Duration::hours(1));
    assert_eq!(fast_track(&app, &payload("d@two.example")).await.0, 200);
    assert_eq!(users_in(&app, "platform").await, 3);
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn another_method_gets_the_error_envelope(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, enable).await;
    let r = app.get("/fast-track").await;
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let body = json(r).await;
    assert_eq!((body["success"].clone(), body["status_code"].clone()), (json!(false), json!(405)));
    assert_eq!(body["error"]["code"], 405);
    assert_eq!(body["request"]["verb"], "GET");
    assert_eq!(body["request"]["signature"], signature(body["request"]["id"].as_str().unwrap()));
}

/// A form post to `/fast-track` from `origin` (None: no Origin and no Referer).
async fn form_post(app: &TestApp, origin: Option<&str>, fields: &[(&str, &str)]) -> reqwest::Response {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut r = client.post(app.url("/fast-track")).form(fields);
    if let Some(o) = origin {
        r = r.header("Origin", o);
    }
    r.send().await.unwrap()
}

const FORM: [(&str, &str); 4] =
    [("email", "form@example.com"), ("first-name", "Fay"), ("last-name", "Form"), ("password", PASSWORD)];

#[rstest]
#[tokio::test]
async fn a_form_starts_fast_track_only_from_an_allowed_origin(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        enable(c);
        c.fast_track.allowed_origins = vec!["https://www.example.com".into()];
    })
    .await;
    // Another site, or no origin at all: an HTML page, nothing created.
    for origin in [Some("https://evil.example.net"), None] {
        let r = form_post(&app, origin, &FORM).await;
        assert_eq!(r.status(), 403);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(r.text().await.unwrap().contains("may not be sent from there"));
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE email = 'form@example.com'").await, 0);
    // Invalid fields: an HTML page saying what to check.
    let mut bad = FORM;
    bad[3] = ("password", "short");
    let r = form_post(&app, Some("https://www.example.com"), &bad).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Please check the form"));
    // From the allowed origin: a 303 to the new instance's one-time login, which signs in.
    let r = form_post(&app, Some("https://www.example.com"), &FORM).await;
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("://form.localhost:") && location.contains("/welcome?fastTrackGuid="),
        "{location}"
    );
    let page = app.browser().get(&location).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("Welcome to form, Fay!"));
    // The same address again: taken, said on a page.
    let r = form_post(&app, Some("https://www.example.com"), &FORM).await;
    assert_eq!(r.status(), 409);
    // Text bodies are not forms: 415 in the envelope.
    let r = app
        .client
        .post(app.url("/fast-track"))
        .header("Content-Type", "text/plain")
        .body(payload("plain@example.com").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(json(r).await["status_code"], 415);
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_failed_form_goes_back_to_the_operators_form_with_the_code(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        enable(c);
        c.fast_track.allowed_origins = vec!["https://www.example.com".into()];
        c.fast_track.form_url = Some("https://www.example.com/try?plan=free".into());
    })
    .await;
    let mut bad = FORM;
    bad[0] = ("email", "not-an-email");
    let r = form_post(&app, Some("https://www.example.com"), &bad).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "https://www.example.com/try?plan=free&error=validation_failed");
    let r = form_post(&app, Some("https://evil.example.net"), &FORM).await;
    assert_eq!(r.headers()["location"], "https://www.example.com/try?plan=free&error=origin_not_allowed");
}
