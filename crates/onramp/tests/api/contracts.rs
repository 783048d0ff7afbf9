//! dialogportal contract accounts (seed 003): contracts, `dpKey`/`extKey`, 201/303/400.x, SMS
//! verification through the file and HTTP transports; on SQLite and PostgreSQL.

use crate::helpers::*;
use axum::http::{HeaderMap, StatusCode};
use onramp::config::{AppConfig, Config, ContractConfig, Secret, SmsTransportKind};
use onramp_core::model::{ContractField, FieldType};
use rstest::rstest;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

pub(crate) const KEY: &str = "dialogportal-app-key-0001";
const PLAIN_KEY: &str = "dialogportal-plain-key-02";

fn field(name: &str, kind: FieldType, required: bool, unique: bool) -> ContractField {
    ContractField {
        name: name.into(),
        kind,
        required,
        unique,
        min_length: None,
        max_length: None,
        pattern: None,
        verify: None,
    }
}

pub(crate) fn contracts(c: &mut Config) {
    let app = &mut c.instances[0].apps[0];
    app.api_keys = vec![Secret(KEY.into())];
    app.ext_key_type = Some(12);
    let mut mobile = field("mobile", FieldType::Phone, false, true);
    mobile.verify = Some("sms".into());
    let mut code = field("member_code", FieldType::String, false, false);
    code.pattern = Some("[A-Z]{2}[0-9]{4}".into());
    app.contracts = vec![
        ContractConfig {
            id: "basic".into(),
            fields: vec![
                field("name", FieldType::String, true, false),
                field("email", FieldType::Email, true, true),
                field("password", FieldType::Password, true, false),
                mobile,
                field("birthday", FieldType::Date, false, false),
                field("newsletter", FieldType::Bool, false, false),
                field("age", FieldType::Int, false, false),
                code,
            ],
        },
        ContractConfig {
            id: "phone-only".into(),
            fields: vec![
                field("name", FieldType::String, true, false),
                field("phone", FieldType::Phone, true, true),
            ],
        },
    ];
    app.default_contract = Some("basic".into());
    let mut plain: AppConfig = app.clone();
    plain.id = "app_plain".into();
    plain.domains.clear();
    plain.api_keys = vec![Secret(PLAIN_KEY.into())];
    plain.ext_key_type = None;
    plain.partner_signup_path = "/partners/plain".into();
    c.instances[0].apps.push(plain);
    c.rate_limits.login_per_identifier_per_10min = 100;
}

pub(crate) async fn post(app: &TestApp, path: &str, key: &str, body: &Value) -> reqwest::Response {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    client.post(app.url(path)).header("X-Api-Key", key).json(body).send().await.unwrap()
}

pub(crate) async fn create(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let r = post(app, path, KEY, body).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub(crate) fn account(email: &str, mobile: Option<&str>) -> Value {
    let mut body = json!({"name": "John Doe", "email": email, "password": "a quiet harbour at dawn"});
    if let Some(m) = mobile {
        body["mobile"] = json!(m);
    }
    body
}

/// The code in the newest text message to `to`.
pub(crate) async fn texted_code(app: &TestApp, to: &str) -> String {
    let texts = app.texts().await;
    let sms =
        texts.iter().rev().find(|t| t["to"] == to).unwrap_or_else(|| panic!("no text to {to}: {texts:?}"));
    sms["text"].as_str().unwrap().split_whitespace().next().unwrap().to_owned()
}

#[rstest]
#[tokio::test]
async fn an_account_is_created_with_its_keys_and_fields(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, contracts).await;
    let mut body = account("mailbox@mailserver.com", None);
    body["birthday"] = json!("1990-04-01");
    body["newsletter"] = json!(true);
    body["age"] = json!(36);
    body["member_code"] = json!("AB1234");
    let (status, created) = create(&app, "/user/basic", &body).await;
    assert_eq!(status, 201, "{created}");
    assert!(created["dpKey"].is_i64());
    assert_eq!(created["extKeyType"], 12);
    assert!(created["extKey"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(created["name"], "John Doe");
    assert_eq!(created["email"], "mailbox@mailserver.com");
    assert_eq!(
        (created["birthday"].clone(), created["newsletter"].clone(), created["age"].clone()),
        (json!("1990-04-01"), json!(true), json!(36))
    );
    assert!(created.get("password").is_none(), "never the password");
    let password: &[u8] = b"a quiet harbour at dawn";
    assert!(!app.database_dump().windows(password.len()).any(|w| w == password), "stored hashed");
    // The default contract serves POST /user; an app without an external key type gets none.
    let (status, second) = create(&app, "/user", &account("second@mailserver.com", None)).await;
    assert_eq!(status, 201);
    assert_ne!(second["dpKey"], created["dpKey"]);
    assert_ne!(second["extKey"], created["extKey"], "external keys are unique per type");
    let r = post(&app, "/user/basic", PLAIN_KEY, &account("plain@mailserver.com", None)).await;
    assert_eq!(r.status(), 201);
    let plain: Value = r.json().await.unwrap();
    assert!(plain.get("extKey").is_none() && plain.get("extKeyType").is_none(), "{plain}");
    // The account logs in with the contract's email and password.
    let login = json!({"email": "mailbox@mailserver.com", "password": "a quiet harbour at dawn"});
    assert_eq!(app.post("/v1/auth/login", &login).await.status(), 200);
}

#[rstest]
#[tokio::test]
async fn an_existing_account_is_a_303_to_its_data(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, contracts).await;
    let (_, created) = create(&app, "/user/basic", &account("dup@mailserver.com", None)).await;
    let r = post(&app, "/user/basic", KEY, &account("DUP@mailserver.com", None)).await;
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("/user/{}", created["dpKey"]));
    // Following it ("Get Account Data") gives the 201's body.
    let r = app.client.get(app.url(&location)).header("X-Api-Key", KEY).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), created);
    let r = app.client.get(app.url(&location)).send().await.unwrap();
    assert_eq!(r.status(), 401, "app-authenticated");
    let r = app.client.get(app.url("/user/999999")).header("X-Api-Key", KEY).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
}

#[rstest]
#[tokio::test]
async fn an_account_is_its_apps_and_other_apps_read_it_only_when_allowed(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, contracts).await;
    let (status, created) =
        create(&app, "/user/basic", &account("own@mailserver.com", Some("+31 6 11111111"))).await;
    assert_eq!(status, 201, "{created}");
    let path = format!("/user/{}", created["dpKey"]);
    let get = |key: &'static str| {
        let url = app.url(&path);
        let client = app.client.clone();
        async move { client.get(url).header("X-Api-Key", key).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(KEY).await, 200);
    // Another app of the same instance: the account does not exist for it.
    assert_eq!(get(PLAIN_KEY).await, 404);
    let code = texted_code(&app, "+31611111111").await;
    let r = post(&app, &format!("{path}/verify-sms"), PLAIN_KEY, &json!({ "code": code })).await;
    assert_eq!(r.status(), 404);
    assert_eq!(post(&app, &format!("{path}/resend-sms"), PLAIN_KEY, &json!({})).await.status(), 404);
    assert_eq!(
        app.text(&format!("SELECT status FROM users WHERE id = {}", created["dpKey"])).await,
        "pending"
    );
    // Its duplicate: a conflict that points nowhere, not a 303 to the other app's account.
    let r = post(&app, "/user/basic", PLAIN_KEY, &account("own@mailserver.com", None)).await;
    assert_eq!(r.status(), 409);
    assert!(r.headers().get("location").is_none());
    // Users that are no contract account (a /v1 signup) are nobody's account here.
    active_user(&app, "v1user@acmecorp.com", "v1username", "a fine passphrase").await;
    let v1 = app.count("SELECT id FROM users WHERE email = 'v1user@acmecorp.com'").await;
    let r = app.client.get(app.url(&format!("/user/{v1}"))).header("X-Api-Key", KEY).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 2);
}

#[rstest]
#[tokio::test]
async fn an_address_held_by_a_user_of_another_surface_is_a_conflict_not_a_500(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    // Found by Schemathesis: the address of a `/v1` user, sent as a contract account's email.
    let app = TestApp::spawn_with(db, contracts).await;
    active_user(&app, "taken@example.com", "takenuser", "a long and quiet harbour").await;
    let before = app.count("SELECT COUNT(*) FROM users").await;
    let (status, body) = create(&app, "/user/basic", &account("taken@example.com", None)).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "409");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, before, "nothing written");
    let (status, _) = create(&app, "/user", &account("Taken@Example.com", None)).await;
    assert_eq!(status, 409);
}

#[rstest]
#[tokio::test]
async fn the_operator_may_let_one_app_read_anothers_accounts(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        contracts(c);
        c.instances[0].apps[1].reads_accounts_of = Some(vec!["app_demo".into()]);
    })
    .await;
    let (_, created) = create(&app, "/user/basic", &account("shared@mailserver.com", None)).await;
    let path = format!("/user/{}", created["dpKey"]);
    let r = app.client.get(app.url(&path)).header("X-Api-Key", PLAIN_KEY).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = post(&app, "/user/basic", PLAIN_KEY, &account("shared@mailserver.com", None)).await;
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, path.as_str()));
    // Not the other way round: app_demo was not allowed to read app_plain's.
    let (_, theirs) = {
        let r = post(&app, "/user/basic", PLAIN_KEY, &account("plain@mailserver.com", None)).await;
        (r.status(), r.json::<Value>().await.unwrap())
    };
    let r = app
        .client
        .get(app.url(&format!("/user/{}", theirs["dpKey"])))
        .header("X-Api-Key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[rstest]
#[tokio::test]
async fn validation_fails_with_400_and_the_sms_sub_codes(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, contracts).await;
    let cases = [
        (with(account("a@mailserver.com", None), json!({"name": null})), "400", "name"),
        (with(account("a@mailserver.com", None), json!({"colour": "red"})), "400", "colour"),
        (with(account("a@mailserver.com", None), json!({"age": "old"})), "400", "age"),
        (with(account("a@mailserver.com", None), json!({"birthday": "01/04/1990"})), "400", "birthday"),
        (with(account("a@mailserver.com", None), json!({"member_code": "ab12"})), "400", "member_code"),
        (with(account("a@mailserver.com", None), json!({"password": "password"})), "400", "password"),
        (
            with(account("long.name@mailserver.com", None), json!({"password": "long.name@mailserver.com"})),
            "400",
            "password",
        ),
        (with(account("a@mailserver.com", None), json!({"password": "John Doe"})), "400", "password"),
        (
            with(account("a@mailserver.com", None), json!({"password": "\u{2060}".repeat(9)})),
            "400",
            "password",
        ),
        (account("not-an-email", None), "400", "email"),
        (account("a@mailserver.com", Some("0650 253 0000 ext")), "400.3", "mobile"),
    ];
    for (body, code, field) in cases {
        let (status, error) = create(&app, "/user/basic", &body).await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["code"], code, "{error}");
        assert_eq!(error["field"], field, "{error}");
        assert!(error["errors"].as_array().is_some_and(|e| !e.is_empty()));
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
    // A phone of an active or pending account: 400.4, in any spelling of the number.
    assert_eq!(
        create(&app, "/user/basic", &account("p1@mailserver.com", Some("+1 (650) 253-0000"))).await.0,
        201
    );
    let (status, error) =
        create(&app, "/user/basic", &account("p2@mailserver.com", Some("+16502530000"))).await;
    assert_eq!((status, error["code"].as_str()), (400, Some("400.4")), "{error}");
    // A phone of an inactive account: 400.5.
    app.exec("UPDATE users SET status = 'inactive' WHERE email = 'p1@mailserver.com'").await;
    let (status, error) =
        create(&app, "/user/basic", &account("p3@mailserver.com", Some("+1 650 253 0000"))).await;
    assert_eq!((status, error["code"].as_str()), (400, Some("400.5")), "{error}");
    // Unknown contract, missing key.
    assert_eq!(create(&app, "/user/nope", &account("x@mailserver.com", None)).await.0, 404);
    assert_eq!(
        post(&app, "/user/basic", "wrong-key-wrong-key", &account("x@mailserver.com", None)).await.status(),
        401
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_texted_code_verifies_the_phone(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, contracts).await;
    let (status, created) =
        create(&app, "/user/basic", &account("sms@mailserver.com", Some("+31 6 12345678"))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["mobile"], "+31612345678", "stored in E.164");
    let dp_key = created["dpKey"].as_i64().unwrap();
    assert_eq!(app.text(&format!("SELECT status FROM users WHERE id = {dp_key}")).await, "pending");
    let code = texted_code(&app, "+31612345678").await;
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    // A dump alone does not give the code back: no plain hash of any six digits is stored.
    let stored = app.text(&format!("SELECT secret_hash FROM verifications WHERE user_id = {dp_key}")).await;
    assert_eq!(stored.len(), 64);
    assert_ne!(stored, onramp_core::token::secret_hash(&code));

    let verify = |code: &str| json!({"code": code});
    let r = post(&app, &format!("/user/{dp_key}/verify-sms"), KEY, &verify("000000x")).await;
    assert_eq!(r.status(), 400);
    let r = post(&app, &format!("/user/{dp_key}/verify-sms"), KEY, &verify(&code)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["dpKey"], dp_key);
    assert_eq!(app.text(&format!("SELECT status FROM users WHERE id = {dp_key}")).await, "active");
    let r = post(&app, &format!("/user/{dp_key}/verify-sms"), KEY, &verify(&code)).await;
    assert_eq!(r.status(), 409, "used");
    // An expired code.
    let (_, other) =
        create(&app, "/user/basic", &account("late@mailserver.com", Some("+31 6 87654321"))).await;
    let late = other["dpKey"].as_i64().unwrap();
    let code = texted_code(&app, "+31687654321").await;
    app.clock.advance(time::Duration::minutes(11));
    assert_eq!(post(&app, &format!("/user/{late}/verify-sms"), KEY, &verify(&code)).await.status(), 410);
}

#[rstest]
#[tokio::test]
async fn resends_are_throttled_and_keep_the_failures(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, contracts).await;
    let (_, created) =
        create(&app, "/user/basic", &account("tries@mailserver.com", Some("+44 20 7946 0018"))).await;
    let dp_key = created["dpKey"].as_i64().unwrap();
    let first = texted_code(&app, "+442079460018").await;
    let wrong = if first == "111111" { "222222" } else { "111111" };
    for _ in 0..4 {
        let r = post(&app, &format!("/user/{dp_key}/verify-sms"), KEY, &json!({"code": wrong})).await;
        assert_eq!(r.status(), 400);
    }
    let resend = format!("/user/{dp_key}/resend-sms");
    assert_eq!(post(&app, &resend, KEY, &json!({})).await.status(), 202);
    let r = post(&app, &resend, KEY, &json!({})).await;
    assert_eq!(r.status(), 429, "one resend a minute per number");
    assert!(r.headers().contains_key("retry-after"));
    let second = texted_code(&app, "+442079460018").await;
    let fifth_wrong = if second == wrong { "333333" } else { wrong };
    // The fifth failure, across the resend, voids the code.
    let r = post(&app, &format!("/user/{dp_key}/verify-sms"), KEY, &json!({"code": fifth_wrong})).await;
    assert_eq!(r.status(), 400);
    let r = post(&app, &format!("/user/{dp_key}/verify-sms"), KEY, &json!({"code": second})).await;
    assert_eq!(r.status(), 409, "five failures in all: no code is live");
    app.clock.advance(time::Duration::minutes(2));
    assert_eq!(post(&app, &resend, KEY, &json!({})).await.status(), 409, "and a resend does not reset them");
    assert_eq!(app.text(&format!("SELECT status FROM users WHERE id = {dp_key}")).await, "pending");
}

#[rstest]
#[tokio::test]
async fn concurrent_creates_of_one_phone_make_one_account(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        contracts(c);
        c.hashing.queue = 64;
    })
    .await;
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let (url, body) =
                (app.url("/user/phone-only"), json!({"name": format!("N{n}"), "phone": "+1 650 253 0000"}));
            tokio::spawn(async move {
                let client =
                    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
                client.post(url).header("X-Api-Key", KEY).json(&body).send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 303), "{statuses:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
}

#[rstest]
#[tokio::test]
async fn texts_go_to_an_http_provider(#[values(SQLITE, POSTGRES)] db: Db) {
    let received: Arc<Mutex<Vec<(HeaderMap, Value)>>> = Arc::default();
    let sink = received.clone();
    let router = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push((headers, body));
                StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let app = TestApp::spawn_with(db, |c| {
        contracts(c);
        c.sms.transport = SmsTransportKind::Http;
        c.sms.http_url = Some(format!("http://{addr}/sms"));
        c.sms.http_authorization = Some(Secret("Bearer provider-token".into()));
        c.sms.from = "Demo".into();
    })
    .await;
    assert_eq!(
        create(&app, "/user/basic", &account("http@mailserver.com", Some("+31 6 11112222"))).await.0,
        201
    );
    app.worker.drain().await.unwrap();
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let (headers, sms) = &received[0];
    assert_eq!(headers["authorization"], "Bearer provider-token");
    assert_eq!((sms["to"].as_str(), sms["from"].as_str()), (Some("+31611112222"), Some("Demo")));
    assert!(sms["text"].as_str().unwrap().contains("verification code"), "{sms}");
}

#[rstest]
#[tokio::test]
async fn malformed_calls_get_dialogportals_error_body(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, contracts).await;
    let assert_code = |status: u16, body: &Value, expected: u16| {
        assert_eq!(status, expected, "{body}");
        assert_eq!(body["code"], expected.to_string(), "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    };
    let r = app.client.get(app.url("/user")).header("X-Api-Key", KEY).send().await.unwrap();
    let status = r.status().as_u16();
    assert_code(status, &r.json().await.unwrap(), 405);
    let r = app
        .client
        .post(app.url("/user/basic"))
        .header("X-Api-Key", KEY)
        .header("Content-Type", "application/json")
        .body("not json")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_code(status, &r.json().await.unwrap(), 400);
    // A body that is not declared JSON is refused before it is read (no cross-site "simple" post).
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let mut request = app.client.post(app.url("/user/basic")).header("X-Api-Key", KEY);
        if let Some(t) = content_type {
            request = request.header("Content-Type", t);
        }
        let r = request.body(account("plain@mailserver.com", None).to_string()).send().await.unwrap();
        let status = r.status().as_u16();
        assert_code(status, &r.json().await.unwrap(), 415);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE email = 'plain@mailserver.com'").await, 0);
    let (_, created) =
        create(&app, "/user/basic", &account("shape@mailserver.com", Some("+31 6 22223333"))).await;
    let dp_key = created["dpKey"].as_i64().unwrap();
    let r = post(&app, &format!("/user/{dp_key}/verify-sms"), KEY, &json!({})).await;
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_code(status, &body, 400);
    assert_eq!(body["field"], "code");
    let r = post(&app, "/user/999999/resend-sms", KEY, &json!({})).await;
    let status = r.status().as_u16();
    assert_code(status, &r.json().await.unwrap(), 404);
    let r = post(&app, "/user/not-a-key/resend-sms", KEY, &json!({})).await;
    let status = r.status().as_u16();
    assert_code(status, &r.json().await.unwrap(), 404);
    app.worker.drain().await.unwrap();
}

/// The OS generator, but every texted code is the same six digits.
struct SameCodes;

impl onramp_core::token::TokenGenerator for SameCodes {
    fn secret_token(&self) -> String {
        onramp_core::token::OsTokenGenerator.secret_token()
    }
    fn numeric_code(&self, digits: usize) -> String {
        "4".repeat(digits)
    }
    fn public_id(&self, prefix: &str) -> String {
        onramp_core::token::OsTokenGenerator.public_id(prefix)
    }
    fn password(&self) -> String {
        onramp_core::token::OsTokenGenerator.password()
    }
    fn bytes(&self, out: &mut [u8]) {
        onramp_core::token::OsTokenGenerator.bytes(out)
    }
}

#[rstest]
#[tokio::test]
async fn two_accounts_texted_the_same_code_each_verify_their_own(#[values(SQLITE, POSTGRES)] db: Db) {
    let env = TestEnv::new(db).await;
    let mut config = env.config();
    contracts(&mut config);
    let app = TestApp::spawn_with_tokens(env, config, Arc::new(SameCodes)).await;
    let mut keys = Vec::new();
    for (n, mobile) in ["+31 6 22222221", "+31 6 22222222"].into_iter().enumerate() {
        let (status, created) =
            create(&app, "/user/basic", &account(&format!("same{n}@mailserver.com"), Some(mobile))).await;
        assert_eq!(status, 201, "{created}");
        keys.push(created["dpKey"].as_i64().unwrap());
    }
    assert_eq!(texted_code(&app, "+31622222221").await, texted_code(&app, "+31622222222").await);
    for key in keys {
        let r = post(&app, &format!("/user/{key}/verify-sms"), KEY, &json!({"code": "444444"})).await;
        assert_eq!(r.status(), 200);
        assert_eq!(app.text(&format!("SELECT status FROM users WHERE id = {key}")).await, "active");
    }
}
