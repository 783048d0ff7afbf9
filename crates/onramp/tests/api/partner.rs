//! FastEditor partner signup (seed 002): `X-Api-Key`, `201 {id, firstName, lastName,
//! userName}`, `{message, code}` errors in the caller's language, the welcome mail in it; on
//! SQLite and PostgreSQL.

use crate::helpers::*;
use onramp::config::{AppConfig, Config, Secret};
use rstest::rstest;
use serde_json::{Value, json};

pub(crate) const KEY: &str = "fasteditor-partner-key-1";
const KEY2: &str = "fasteditor-partner-key-2";
const OTHER_KEY: &str = "other-app-partner-key-3";
const PATH: &str = "/partner/fasteditor/signup";
const PASSWORD: &str = "#9ske%ls9#DS1-longer";

pub(crate) fn partners(c: &mut Config) {
    c.instances[0].apps[0].api_keys = vec![Secret(KEY.into()), Secret(KEY2.into())];
    let mut other: AppConfig = c.instances[0].apps[0].clone();
    other.id = "app_other".into();
    other.name = "Other".into();
    other.domains.clear();
    other.api_keys = vec![Secret(OTHER_KEY.into())];
    other.partner_signup_path = "/partners/other/signup".into();
    c.instances[0].apps.push(other);
}

fn body(email: &str, language: &str) -> Value {
    json!({"userName": email, "password": PASSWORD, "firstName": "John", "lastName": "Doe", "language": language})
}

async fn signup(app: &TestApp, path: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut r = app.client.post(app.url(path)).json(body);
    if let Some(k) = key {
        r = r.header("X-Api-Key", k);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn assert_error(status: u16, body: &Value, expected: u16, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[rstest]
#[tokio::test]
async fn a_partner_signs_a_user_up_in_their_language(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, partners).await;
    let (status, created) = signup(&app, PATH, Some(KEY), &body("hello@login.com", "nl")).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert_eq!(created["firstName"], "John");
    assert_eq!(created["lastName"], "Doe");
    assert_eq!(created["userName"], "hello@login.com");
    assert_eq!(app.text(&format!("SELECT language FROM users WHERE uuid = '{id}'")).await, "nl");
    let mail = app.mails_to("hello@login.com").await.pop().expect("a welcome mail");
    assert_eq!(mail.subject, "Welkom bij Demo");
    assert!(mail.text.contains("Hallo John"), "{}", mail.text);
    // The user can log in with what the partner sent.
    let login = json!({"email": "hello@login.com", "password": PASSWORD});
    assert_eq!(app.post("/v1/auth/login", &login).await.status(), 200);

    // The mail language falls back: en-gb -> en, de-AT -> de, an unknown language -> en.
    for (email, language, subject) in [
        ("gb@login.com", "en-gb", "Welcome to Demo"),
        ("at@login.com", "de-AT", "Willkommen bei Demo"),
        ("xx@login.com", "xx", "Welcome to Demo"),
    ] {
        assert_eq!(signup(&app, PATH, Some(KEY2), &body(email, language)).await.0, 201);
        assert_eq!(app.mails_to(email).await.pop().unwrap().subject, subject, "{language}");
    }
    assert_eq!(app.text("SELECT language FROM users WHERE email = 'gb@login.com'").await, "en-gb");
}

#[rstest]
#[tokio::test]
async fn the_api_key_decides_who_may_call_and_where(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, partners).await;
    let b = |n: u32| body(&format!("k{n}@login.com"), "en");
    let (status, r) = signup(&app, PATH, None, &b(1)).await;
    assert_error(status, &r, 401, "UNAUTHORIZED");
    let (status, r) = signup(&app, PATH, Some("guessed-key-guessed-key"), &b(1)).await;
    assert_error(status, &r, 401, "UNAUTHORIZED");
    // Each app at its own path only.
    let (status, r) = signup(&app, PATH, Some(OTHER_KEY), &b(1)).await;
    assert_error(status, &r, 401, "UNAUTHORIZED");
    assert_eq!(signup(&app, "/partners/other/signup", Some(OTHER_KEY), &b(1)).await.0, 201);
    assert_eq!(signup(&app, "/partners/other/signup", Some(KEY), &b(2)).await.0, 401);
    // Revocation, with the second key going on (rotation).
    let default = app.state.onramp.instance("default").await.unwrap();
    let store = app.state.onramp.store();
    let key = store
        .list_api_keys(default.id)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.secret_hash == onramp_core::token::secret_hash(KEY))
        .unwrap();
    let cli = onramp_core::admin::AdminPrincipal::cli();
    app.state.onramp.operator().revoke_api_key(&cli, default.id, &key.id).await.unwrap();
    assert_eq!(signup(&app, PATH, Some(KEY), &b(3)).await.0, 401);
    assert_eq!(signup(&app, PATH, Some(KEY2), &b(3)).await.0, 201);
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn errors_carry_stable_codes_and_messages_in_the_callers_language(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, partners).await;
    assert_eq!(signup(&app, PATH, Some(KEY), &body("taken@login.com", "en")).await.0, 201);
    let before = app.count("SELECT COUNT(*) FROM users").await;

    let (status, r) = signup(&app, PATH, Some(KEY), &body("TAKEN@login.com", "nl")).await;
    assert_error(status, &r, 409, "USERNAME_TAKEN");
    assert!(r["message"].as_str().unwrap().contains("bestaat al"), "{r}");
    let (status, r) =
        signup(&app, PATH, Some(KEY), &with(body("weak@login.com", "fr"), json!({"password": "password"})))
            .await;
    assert_error(status, &r, 400, "PASSWORD_TOO_WEAK");
    assert!(r["message"].as_str().unwrap().contains("mot de passe"), "{r}");
    // The whole address is too weak; nothing but invisible characters is no password at all.
    for (password, code) in
        [("Long.Name@Login.com", "PASSWORD_TOO_WEAK"), (&"\u{200B}".repeat(10), "MISSING_FIELD")]
    {
        let weak = with(body("long.name@login.com", "en"), json!({ "password": password }));
        let (status, r) = signup(&app, PATH, Some(KEY), &weak).await;
        assert_error(status, &r, 400, code);
    }
    let (status, r) = signup(&app, PATH, Some(KEY), &body("lang@login.com", "not a language")).await;
    assert_error(status, &r, 400, "INVALID_LANGUAGE");
    let (status, r) =
        signup(&app, PATH, Some(KEY), &with(body("x@login.com", "de"), json!({"language": null}))).await;
    assert_error(status, &r, 400, "MISSING_FIELD");
    let (status, r) =
        signup(&app, PATH, Some(KEY), &with(body("x@login.com", "de"), json!({"password": null}))).await;
    assert_error(status, &r, 400, "MISSING_FIELD");
    assert!(r["message"].as_str().unwrap().contains("Pflichtfelder"), "{r}");
    let (status, r) = signup(&app, PATH, Some(KEY), &body("not-an-email", "es")).await;
    assert_error(status, &r, 400, "INVALID_USERNAME");
    assert!(r["message"].as_str().unwrap().contains("correo"), "{r}");
    let (status, r) =
        signup(&app, PATH, Some(KEY), &with(body("x@login.com", "en"), json!({"age": 3}))).await;
    assert_error(status, &r, 400, "INVALID_REQUEST");
    let (status, r) = signup(
        &app,
        PATH,
        Some(KEY),
        &with(body("x@login.com", "en"), json!({"firstName": "x".repeat(101)})),
    )
    .await;
    assert_error(status, &r, 400, "INVALID_NAME");
    let r = app
        .client
        .post(app.url(PATH))
        .header("X-Api-Key", KEY)
        .header("Content-Type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // text/plain (what a cross-site page can post without a preflight) is refused unread.
    let r = app
        .client
        .post(app.url(PATH))
        .header("X-Api-Key", KEY)
        .header("Content-Type", "text/plain")
        .body(body("plain@login.com", "en").to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_error(status, &r.json().await.unwrap(), 415, "UNSUPPORTED_MEDIA_TYPE");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, before, "nothing written");
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn an_unshipped_language_falls_back_to_the_instances_default(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        partners(c);
        c.instances[0].default_language = Some("de".into());
    })
    .await;
    for (email, language, subject) in [
        ("xx@login.com", "xx", "Willkommen bei Demo"),
        ("gb@login.com", "en-gb", "Welcome to Demo"),
        ("be@login.com", "nl-BE", "Welkom bij Demo"),
    ] {
        assert_eq!(signup(&app, PATH, Some(KEY), &body(email, language)).await.0, 201);
        assert_eq!(app.mails_to(email).await.pop().unwrap().subject, subject, "{language}");
    }
}

#[rstest]
#[tokio::test]
async fn method_size_and_rate_errors_keep_the_message_and_code_shape(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        partners(c);
        c.rate_limits.signup_per_email_per_hour = 2;
    })
    .await;
    let r = app.client.get(app.url(PATH)).header("X-Api-Key", KEY).send().await.unwrap();
    let status = r.status().as_u16();
    assert_error(status, &r.json().await.unwrap(), 405, "METHOD_NOT_ALLOWED");
    let huge = with(body("big@login.com", "en"), json!({"firstName": "x".repeat(70_000)}));
    let (status, r) = signup(&app, PATH, Some(KEY), &huge).await;
    assert_error(status, &r, 413, "PAYLOAD_TOO_LARGE");
    assert_eq!(signup(&app, PATH, Some(KEY), &body("busy@login.com", "nl")).await.0, 201);
    assert_eq!(signup(&app, PATH, Some(KEY), &body("busy@login.com", "nl")).await.0, 409);
    let (status, r) = signup(&app, PATH, Some(KEY), &body("busy@login.com", "nl")).await;
    assert_error(status, &r, 429, "RATE_LIMITED");
    assert!(r["message"].as_str().unwrap().contains("Te veel"), "{r}");
    app.worker.drain().await.unwrap();
}
