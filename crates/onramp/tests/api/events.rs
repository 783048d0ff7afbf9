//! Lifecycle events to a local receiver: each event once, signed per Standard Webhooks (checked
//! with the `standardwebhooks` library), retried with the same `webhook-id` while the receiver
//! is down, published once however many workers run, and signed by both secrets while one is
//! rotated out.

use crate::helpers::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use onramp::config::{Config, EventWebhookConfig, Secret};
use onramp_core::clock::Clock;
use rstest::rstest;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OLD_SECRET: &str = "whsec_bm90IHRoZSBzYW1lIGtleSBhdCBhbGwsIG5vdCBhdCBhbGw=";
const PASSWORD: &str = "a quiet harbour at dawn";

/// One request the receiver got: its path, headers and body.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> String {
        self.headers[name].to_str().unwrap().to_owned()
    }

    fn event(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// Whether one of its signatures is `secret`'s, computed by the Standard Webhooks library.
    fn signed_by(&self, secret: &str) -> bool {
        let timestamp: i64 = self.header("webhook-timestamp").parse().unwrap();
        let expected = standardwebhooks::Webhook::new(secret)
            .unwrap()
            .sign(&self.header("webhook-id"), timestamp, self.body.as_bytes())
            .unwrap();
        self.header("webhook-signature").split(' ').any(|s| s == expected)
    }
}

/// A webhook receiver on loopback: records every request; answers 503 while `down`.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    down: Arc<AtomicBool>,
}

async fn receive(
    State(r): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let body = String::from_utf8(body.to_vec()).unwrap();
    r.got.lock().unwrap().push(Received { path: uri.path().to_owned(), headers, body });
    if r.down.load(Ordering::SeqCst) { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::NO_CONTENT }
}

impl Receiver {
    async fn start(&self) -> SocketAddr {
        let router = axum::Router::new().fallback(axum::routing::post(receive)).with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        addr
    }

    fn at(&self, path: &str) -> Vec<Received> {
        self.got.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }

    fn types_at(&self, path: &str) -> Vec<String> {
        self.at(path).iter().map(|r| r.event()["type"].as_str().unwrap().to_owned()).collect()
    }
}

fn endpoint(addr: SocketAddr, path: &str, events: &[&str]) -> EventWebhookConfig {
    EventWebhookConfig {
        url: format!("http://{addr}{path}"),
        secret: Secret(SECRET.into()),
        previous_secret: None,
        previous_secret_expires_at: None,
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        timeout_secs: 5,
    }
}

async fn df(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    crate::dreamfactory::call(app, "POST", path, Some(crate::dreamfactory::KEY), &body).await
}

#[rstest]
#[tokio::test]
async fn every_lifecycle_event_reaches_the_endpoint_once_and_signed(#[values(SQLITE, POSTGRES)] db: Db) {
    let receiver = Receiver::default();
    let addr = receiver.start().await;
    let app = TestApp::spawn_with(db, |c: &mut Config| {
        crate::dreamfactory::open(true)(c);
        c.webhooks = vec![endpoint(addr, "/all", &[])];
        c.instances[0].webhooks = vec![endpoint(addr, "/disabled-only", &["user.disabled"])];
    })
    .await;

    // /v1: an account and its user, the activation, a login.
    let r = app.signup(&with(signup_body("june@acmecorp.com"), json!({"password": PASSWORD}))).await;
    let token = json(r).await["token"].as_str().unwrap().to_owned();
    assert_eq!(app.activate(&token).await.status(), 200);
    assert_eq!(app.login("june@acmecorp.com", PASSWORD).await.status(), 200);
    // DreamFactory: a registration, its confirmation, a password reset.
    assert_eq!(df(&app, "/api/v2/user/register", json!({"email": "dee@example.com"})).await.0, 200);
    let code = crate::dreamfactory::code_in(&app.mails_to("dee@example.com").await.pop().unwrap());
    let redeem = |code: String| json!({"email": "dee@example.com", "code": code, "new_password": PASSWORD});
    assert_eq!(df(&app, "/api/v2/user/password", redeem(code)).await.0, 200);
    assert_eq!(
        df(&app, "/api/v2/user/password?reset=true", json!({"email": "dee@example.com"})).await.0,
        200
    );
    let code = crate::dreamfactory::code_in(&app.mails_to("dee@example.com").await.pop().unwrap());
    assert_eq!(df(&app, "/api/v2/user/password", redeem(code)).await.0, 200);
    // The operator: disables and deletes June, provisions an instance.
    let admin = crate::admin::token(&app, None, false).await;
    let (_, found) = crate::admin::call(
        &app,
        &admin,
        "GET",
        "/admin/v1/instances/default/users?email=june@acmecorp.com",
        None,
    )
    .await;
    let june = found["items"][0]["id"].as_str().unwrap().to_owned();
    let users = "/admin/v1/instances/default/users";
    assert_eq!(
        crate::admin::call(&app, &admin, "POST", &format!("{users}/{june}/disable"), None).await.0,
        200
    );
    assert_eq!(crate::admin::call(&app, &admin, "DELETE", &format!("{users}/{june}"), None).await.0, 204);
    let (status, _) =
        crate::admin::call(&app, &admin, "POST", "/admin/v1/instances", Some(json!({"name": "newco"}))).await;
    assert_eq!(status, 201);
    app.worker.drain().await.unwrap();

    let mut types = receiver.types_at("/all");
    types.sort();
    let mut expected = vec![
        "account.created",
        "user.created",
        "user.activated",
        "session.created",
        "user.created",
        "user.confirmed",
        "user.password_reset",
        "user.disabled",
        "user.deleted",
        "instance.provisioned",
    ];
    expected.sort();
    assert_eq!(types, expected);
    assert_eq!(receiver.types_at("/disabled-only"), ["user.disabled"], "an endpoint gets what it lists");
    // Each once: unique ids; each signed; no secret in any of them.
    let all = receiver.at("/all");
    let ids: std::collections::HashSet<String> = all.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), all.len());
    for r in &all {
        assert!(r.signed_by(SECRET), "{}", r.body);
        assert_eq!(r.header("webhook-timestamp"), app.clock.now().unix_timestamp().to_string());
        assert!(!r.body.contains(PASSWORD) && !r.body.contains("argon2") && !r.body.contains(&token));
        let event = r.event();
        assert!(event["timestamp"].as_str().is_some_and(|t| t.starts_with("2026-03-01T12:00:00")), "{event}");
    }
    let created = all.iter().map(Received::event).find(|e| e["type"] == "account.created").unwrap();
    assert_eq!(created["data"]["user"]["email"], "june@acmecorp.com");
    assert_eq!(created["data"]["user"]["app_id"], "app_demo");
    assert_eq!(created["data"]["surface"], "v1");
    assert!(created["data"]["account_id"].as_str().is_some_and(|a| a.starts_with("act_")));
    let provisioned = all.iter().map(Received::event).find(|e| e["type"] == "instance.provisioned").unwrap();
    assert_eq!(provisioned["data"]["instance"], "newco");
    // The operator sees where the events go, never a secret.
    let (status, hooks) =
        crate::admin::call(&app, &admin, "GET", "/admin/v1/instances/default/webhooks", None).await;
    assert_eq!(status, 200);
    assert_eq!(hooks.as_array().unwrap().len(), 2);
    assert_eq!(hooks[0]["scope"], "all_instances");
    assert_eq!(hooks[1]["events"], json!(["user.disabled"]));
    assert!(!hooks.to_string().contains("whsec_"));
    let (_, other) = crate::admin::call(&app, &admin, "GET", "/admin/v1/instances/acme/webhooks", None).await;
    assert_eq!(other.as_array().unwrap().len(), 1, "acme has only the global one");
    // Nothing more on another pass.
    app.worker.drain().await.unwrap();
    assert_eq!(receiver.at("/all").len(), all.len());
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE publish IS NOT NULL").await, 0);
}

#[rstest]
#[tokio::test]
async fn an_endpoint_that_was_down_gets_the_event_later_under_the_same_id(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let receiver = Receiver::default();
    receiver.down.store(true, Ordering::SeqCst);
    let addr = receiver.start().await;
    let app = TestApp::spawn_with(db, |c: &mut Config| {
        c.webhooks = vec![endpoint(addr, "/hook", &["user.created"])]
    })
    .await;
    assert_eq!(app.signup(&signup_body("down@acmecorp.com")).await.status(), 200);
    app.worker.drain().await.unwrap();
    assert_eq!(receiver.at("/hook").len(), 1, "tried once, refused");
    // Retried after the backoff; the receiver is back.
    receiver.down.store(false, Ordering::SeqCst);
    app.clock.advance(time::Duration::minutes(1));
    app.worker.drain().await.unwrap();
    let got = receiver.at("/hook");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"), "a retry is the same message");
    assert_eq!(got[0].body, got[1].body);
    assert_ne!(got[0].header("webhook-timestamp"), got[1].header("webhook-timestamp"));
    assert!(got.iter().all(|r| r.signed_by(SECRET)));
    app.worker.drain().await.unwrap();
    assert_eq!(receiver.at("/hook").len(), 2, "delivered once");
}

#[rstest]
#[tokio::test]
async fn workers_racing_to_publish_hand_each_event_to_the_outbox_once(#[values(SQLITE, POSTGRES)] db: Db) {
    let receiver = Receiver::default();
    let addr = receiver.start().await;
    let app = TestApp::spawn_with(db, |c: &mut Config| {
        c.webhooks = vec![endpoint(addr, "/hook", &["user.created"])];
        c.rate_limits.enabled = false;
    })
    .await;
    for n in 0..20 {
        let body = with(signup_body(&format!("race{n}@acmecorp.com")), json!({"username": null}));
        assert_eq!(app.signup(&body).await.status(), 200);
    }
    let events = app.state.onramp.events();
    let (a, b, c) =
        tokio::join!(events.publish_pending(), events.publish_pending(), events.publish_pending());
    assert_eq!(a.unwrap() + b.unwrap() + c.unwrap(), 20);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE kind = 'webhook:user.created'").await, 20);
    app.worker.drain().await.unwrap();
    assert_eq!(receiver.at("/hook").len(), 20);
}

#[rstest]
#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_until_it_expires(#[values(SQLITE, POSTGRES)] db: Db) {
    let receiver = Receiver::default();
    let addr = receiver.start().await;
    let app = TestApp::spawn_with(db, |c: &mut Config| {
        let mut hook = endpoint(addr, "/hook", &["user.created"]);
        hook.previous_secret = Some(Secret(OLD_SECRET.into()));
        hook.previous_secret_expires_at = Some("2026-03-02T12:00:00Z".into());
        c.webhooks = vec![hook];
    })
    .await;
    assert_eq!(app.signup(&signup_body("before@acmecorp.com")).await.status(), 200);
    app.worker.drain().await.unwrap();
    app.clock.advance(time::Duration::days(2));
    let after = with(signup_body("after@acmecorp.com"), json!({"username": null}));
    assert_eq!(app.signup(&after).await.status(), 200);
    app.worker.drain().await.unwrap();
    let got = receiver.at("/hook");
    assert_eq!(got.len(), 2);
    assert!(got[0].signed_by(SECRET) && got[0].signed_by(OLD_SECRET), "both during the rotation");
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    assert!(got[1].signed_by(SECRET) && !got[1].signed_by(OLD_SECRET), "only the new one after it");
}
