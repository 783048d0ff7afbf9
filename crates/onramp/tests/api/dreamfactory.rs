//! The DreamFactory user API (seed 001): open registration with and without confirmation,
//! confirmation codes through the API and the hosted page, sessions, password reset, API keys;
//! on SQLite and PostgreSQL through the real router.

use crate::helpers::*;
use onramp::config::{Config, MailServiceConfig, MailTemplateConfig, MailTransportKind, Secret};
use rstest::rstest;
use serde_json::{Value, json};

pub(crate) const KEY: &str = "df-test-api-key-0123456789";
const KEY2: &str = "df-test-api-key-rotated-9876";
const PASSWORD: &str = "a quiet harbour at dawn";

/// Open registration on the default instance, with the `member` role and an API key.
pub(crate) fn open(confirm: bool) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        let inst = &mut c.instances[0];
        inst.open_registration = Some(true);
        inst.open_reg_role = Some("member".into());
        if confirm {
            inst.open_reg_email_service = Some("default".into());
        }
        inst.apps[0].api_keys = vec![Secret(KEY.into()), Secret(KEY2.into())];
    }
}

pub(crate) async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = app.client.request(method, app.url(path)).json(body);
    if let Some(k) = key {
        r = r.header("X-DreamFactory-API-Key", k);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn register(app: &TestApp, query: &str, body: &Value) -> (u16, Value) {
    call(app, "POST", &format!("/api/v2/user/register{query}"), Some(KEY), body).await
}

async fn session_get(app: &TestApp, token: &str, header: &str) -> (u16, Value) {
    let value = if header == "authorization" { format!("Bearer {token}") } else { token.to_owned() };
    let r = app
        .client
        .get(app.url("/api/v2/user/session"))
        .header("X-DreamFactory-API-Key", KEY)
        .header(header, value)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

pub(crate) async fn df_login(app: &TestApp, email: &str, password: &str) -> (u16, Value) {
    call(app, "POST", "/api/v2/user/session", Some(KEY), &json!({"email": email, "password": password})).await
}

fn assert_df_error(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], expected, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["error"].get("context").is_some(), "{body}");
}

/// The code in a confirmation or reset mail (the `code` of its link).
pub(crate) fn code_in(mail: &Mail) -> String {
    let link = mail
        .text
        .split_whitespace()
        .find(|w| w.contains("/user/confirm?"))
        .unwrap_or_else(|| panic!("no link in {}", mail.text));
    let url = url::Url::parse(link).unwrap();
    url.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).unwrap()
}

#[rstest]
#[tokio::test]
async fn registration_is_refused_unless_open(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| c.instances[0].apps[0].api_keys = vec![Secret(KEY.into())]).await;
    let (status, body) =
        register(&app, "", &json!({"email": "john@example.com", "password": PASSWORD})).await;
    assert_df_error(status, &body, 403);
    assert_eq!(body["error"]["message"], "Open Registration is not enabled.");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}

#[rstest]
#[tokio::test]
async fn api_keys_are_required_checked_rotated_and_revoked(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, open(false)).await;
    let body = |n: u32| json!({"email": format!("k{n}@example.com"), "password": PASSWORD});
    let path = "/api/v2/user/register";
    let (status, r) = call(&app, "POST", path, None, &body(1)).await;
    assert_df_error(status, &r, 401);
    let (status, r) = call(&app, "POST", path, Some("not-a-key-of-this-instance"), &body(1)).await;
    assert_df_error(status, &r, 401);
    // Both configured keys work (rotation), as does `?api_key=`.
    assert_eq!(call(&app, "POST", path, Some(KEY), &body(1)).await.0, 200);
    assert_eq!(call(&app, "POST", path, Some(KEY2), &body(2)).await.0, 200);
    assert_eq!(call(&app, "POST", &format!("{path}?api_key={KEY}"), None, &body(3)).await.0, 200);
    // Keys are stored hashed.
    let dump = app.database_dump();
    assert!(!dump.windows(KEY.len()).any(|w| w == KEY.as_bytes()));
    // A key of another instance is refused here.
    let acme = app.state.onramp.instance("acme").await.unwrap();
    let (_, acme_key) = app
        .state
        .onramp
        .api_keys()
        .create(&onramp_core::admin::AdminPrincipal::cli(), &acme, "app_acme", "acme")
        .await
        .unwrap();
    assert_eq!(call(&app, "POST", path, Some(&acme_key), &body(4)).await.0, 401);
    // Revoking one key stops it at once; the other goes on.
    let default = app.state.onramp.instance("default").await.unwrap();
    let keys = app.state.onramp.store().list_api_keys(default.id).await.unwrap();
    assert_eq!(keys.len(), 2);
    let first = keys.iter().find(|k| k.secret_hash == onramp_core::token::secret_hash(KEY)).unwrap();
    assert!(keys.iter().all(|k| k.prefix == "df-test-" && k.source == "config"));
    let cli = onramp_core::admin::AdminPrincipal::cli();
    assert!(app.state.onramp.operator().revoke_api_key(&cli, default.id, &first.id).await.unwrap());
    assert_eq!(call(&app, "POST", path, Some(KEY), &body(5)).await.0, 401);
    assert_eq!(call(&app, "POST", path, Some(KEY2), &body(5)).await.0, 200);
}

#[rstest]
#[tokio::test]
async fn keyless_registration_when_the_instance_allows_it(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        open(false)(c);
        c.instances[0].allow_keyless_registration = Some(true);
    })
    .await;
    let body = json!({"email": "nokey@example.com", "password": PASSWORD});
    assert_eq!(call(&app, "POST", "/api/v2/user/register", None, &body).await.0, 200);
    let (status, r) = call(&app, "POST", "/api/v2/user/register", Some("wrong-key-wrong-key"), &body).await;
    assert_df_error(status, &r, 401);
}

#[rstest]
#[tokio::test]
async fn without_confirmation_the_user_is_active_and_may_log_in_at_once(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, open(false)).await;
    // The password is required.
    let (status, body) = register(&app, "", &json!({"email": "john@example.com"})).await;
    assert_df_error(status, &body, 400);
    assert!(body["error"]["context"]["password"].is_array(), "{body}");

    let (status, body) =
        register(&app, "", &json!({"email": "john@example.com", "password": PASSWORD})).await;
    assert_eq!((status, body), (200, json!({"success": true})));
    // Names default from the email's local part; the open-registration role is given.
    let (status, body) = df_login(&app, "john@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["first_name"].as_str(), body["last_name"].as_str()), (Some("john"), Some("john")));
    assert_eq!(body["name"], "john");
    assert_eq!(body["role"], "member");
    assert_eq!(body["email"], "john@example.com");
    assert!(body["id"].is_i64());

    // login=true: a session token at once, in DreamFactory's shape.
    let (status, body) = register(
        &app,
        "?login=true",
        &json!({"email": "jane@example.com", "new_password": PASSWORD, "password_confirmation": PASSWORD,
                "first_name": "Jane", "last_name": "Doe", "phone": "+1 650 253 0000"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    let token = body["session_token"].as_str().unwrap().to_owned();
    for header in ["x-dreamfactory-session-token", "authorization"] {
        let (status, session) = session_get(&app, &token, header).await;
        assert_eq!(status, 200, "{session}");
        assert_eq!(session["name"], "Jane Doe");
        assert_eq!(session["phone"], "+1 650 253 0000");
        assert_eq!(session["session_token"], token.as_str());
    }
    // Answers with session tokens are never cached.
    for path in ["/api/v2/user/register?login=true", "/api/v2/user/session"] {
        let r = app
            .client
            .post(app.url(path))
            .header("X-DreamFactory-API-Key", KEY)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    }
    // Logging out ends it.
    let r = app
        .client
        .delete(app.url("/api/v2/user/session"))
        .header("X-DreamFactory-API-Key", KEY)
        .header("X-DreamFactory-Session-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"success": true}));
    assert_eq!(session_get(&app, &token, "authorization").await.0, 401);

    // The seed's contract needs a clear conflict for a known address.
    let (status, body) =
        register(&app, "", &json!({"email": "JOHN@example.com", "password": PASSWORD})).await;
    assert_df_error(status, &body, 409);
    // Bad input: each a 400 in DreamFactory's shape, nothing written.
    let before = app.count("SELECT COUNT(*) FROM users").await;
    for bad in [
        json!({"email": "x@example.com", "password": PASSWORD, "password_confirmation": "something else"}),
        json!({"email": "x@example.com", "password": "password"}),
        json!({"email": "long.name@example.com", "password": "Long.Name@Example.com"}),
        json!({"email": "x@example.com", "password": "\u{200B}".repeat(8)}),
        json!({"email": "not an email", "password": PASSWORD}),
        json!({"email": "x@example.com", "password": PASSWORD, "is_sys_admin": true}),
        json!({"email": "x@example.com", "password": PASSWORD, "phone": "call me maybe"}),
        json!(["x"]),
    ] {
        let (status, body) = register(&app, "", &bad).await;
        assert_df_error(status, &body, 400);
    }
    let (status, body) =
        register(&app, "?login=perhaps", &json!({"email": "y@example.com", "password": PASSWORD})).await;
    assert_df_error(status, &body, 400);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, before);
    // Wrong password: 401, same as an unknown address.
    let (status, body) = df_login(&app, "john@example.com", "not the password").await;
    assert_df_error(status, &body, 401);
    let (status, body) = df_login(&app, "nobody@example.com", PASSWORD).await;
    assert_df_error(status, &body, 401);
}

#[rstest]
#[tokio::test]
async fn with_confirmation_the_emailed_code_activates_and_sets_the_password(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn_with(db, open(true)).await;
    let (status, body) =
        register(&app, "", &json!({"email": "john@example.com", "first_name": "John", "last_name": "Doe"}))
            .await;
    assert_eq!((status, body), (200, json!({"success": true})));
    let (status, body) = register(&app, "?login=true", &json!({"email": "ann@example.com"})).await;
    assert_eq!((status, body), (200, json!({"success": true, "confirmation_required": true})));

    // Pending users cannot log in.
    let mail = app.mails_to("john@example.com").await.pop().expect("a confirmation mail");
    assert!(mail.subject.contains("Demo"), "{}", mail.subject);
    assert!(mail.text.contains("Hello John,"), "{}", mail.text);
    let code = code_in(&mail);
    assert!(code.len() >= 26, "a link code carries at least 128 bits: {code}");
    assert!(mail.text.contains(&code));
    assert_eq!(df_login(&app, "john@example.com", PASSWORD).await.0, 401);

    // Wrong code: 404; right code: the user is active with the new password.
    let path = "/api/v2/user/password";
    let confirm = |code: &str| json!({"email": "john@example.com", "code": code, "new_password": PASSWORD});
    let (status, body) = call(&app, "POST", path, Some(KEY), &confirm("wrong-code")).await;
    assert_df_error(status, &body, 404);
    let (status, body) = call(&app, "POST", &format!("{path}?login=true"), Some(KEY), &confirm(&code)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    let token = body["session_token"].as_str().unwrap();
    assert_eq!(session_get(&app, token, "x-dreamfactory-session-token").await.0, 200);
    assert_eq!(df_login(&app, "john@example.com", PASSWORD).await.0, 200);
    // Used once.
    let (status, body) = call(&app, "POST", path, Some(KEY), &confirm(&code)).await;
    assert_df_error(status, &body, 400);
    assert_eq!(body["error"]["message"], "Invalid confirmation code.");

    // An expired code: 400 with its own message.
    let mail = app.mails_to("ann@example.com").await.pop().unwrap();
    app.clock.advance(time::Duration::hours(25));
    let (status, body) = call(
        &app,
        "POST",
        path,
        Some(KEY),
        &json!({"email": "ann@example.com", "code": code_in(&mail), "new_password": PASSWORD}),
    )
    .await;
    assert_df_error(status, &body, 400);
    assert_eq!(body["error"]["message"], "Confirmation code expired.");
}

#[rstest]
#[tokio::test]
async fn the_hosted_page_takes_the_code_over_a_real_socket(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, open(true)).await;
    register(&app, "", &json!({"email": "page@example.com", "first_name": "Page"})).await;
    let mail = app.mails_to("page@example.com").await.pop().unwrap();
    let link = mail.text.split_whitespace().find(|w| w.contains("/user/confirm?")).unwrap().to_owned();
    assert!(link.starts_with(&format!("http://localhost:{}/user/confirm?", app.addr.port())), "{link}");
    let browser = app.browser();
    let form = browser.get(&link).send().await.unwrap();
    assert_eq!(form.status(), 200);
    assert_eq!(form.headers()["x-frame-options"], "DENY");
    let html = form.text().await.unwrap();
    let code = code_in(&mail);
    assert!(html.contains(&format!("value=\"{code}\"")) && html.contains("page@example.com"), "{html}");

    let post =
        |fields: Vec<(&'static str, String)>| browser.post(app.url("/user/confirm")).form(&fields).send();
    let fields = |confirmation: &str| {
        vec![
            ("email", "page@example.com".to_owned()),
            ("code", code.clone()),
            ("new_password", PASSWORD.to_owned()),
            ("password_confirmation", confirmation.to_owned()),
        ]
    };
    let r = post(fields("a different password")).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("does not match"));
    let r = post(fields(PASSWORD)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Your password is set"));
    assert_eq!(df_login(&app, "page@example.com", PASSWORD).await.0, 200);
    let r = post(fields(PASSWORD)).await.unwrap();
    assert_eq!(r.status(), 400, "the code works once");
}

#[rstest]
#[tokio::test]
async fn concurrent_confirmations_of_one_code_succeed_once(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        open(true)(c);
        c.rate_limits.login_per_identifier_per_10min = 100;
    })
    .await;
    register(&app, "", &json!({"email": "race@example.com"})).await;
    let code = code_in(&app.mails_to("race@example.com").await.pop().unwrap());
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let (client, url) = (app.client.clone(), app.url("/api/v2/user/password"));
            let body =
                json!({"email": "race@example.com", "code": code, "new_password": format!("{PASSWORD} {n}")});
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("X-DreamFactory-API-Key", KEY)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let status = t.await.unwrap();
        if status == 200 {
            ok += 1;
        } else {
            assert_eq!(status, 400);
        }
    }
    assert_eq!(ok, 1);
}

#[rstest]
#[tokio::test]
async fn a_strangers_wrong_codes_are_limited_and_never_void_the_owners_code(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn_with(db, open(true)).await;
    register(&app, "", &json!({"email": "guess@example.com"})).await;
    let code = code_in(&app.mails_to("guess@example.com").await.pop().unwrap());
    let body = |code: &str| json!({"email": "guess@example.com", "code": code, "new_password": PASSWORD});
    // Guesses at one address: 404 each, then refused for a while (per address, default 10).
    let mut statuses = Vec::new();
    for n in 0..12 {
        statuses.push(
            call(&app, "POST", "/api/v2/user/password", Some(KEY), &body(&format!("guess{n}"))).await.0,
        );
    }
    assert_eq!(statuses[..10], [404; 10]);
    assert_eq!(statuses[10..], [429; 2]);
    // The owner's code still works.
    let (status, answer) = call(&app, "POST", "/api/v2/user/password", Some(KEY), &body(&code)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(df_login(&app, "guess@example.com", PASSWORD).await.0, 200);
}

#[rstest]
#[tokio::test]
async fn an_existing_address_answers_like_a_new_one_and_its_owner_is_told(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn_with(db, open(true)).await;
    register(&app, "", &json!({"email": "owner@example.com"})).await;
    let code = code_in(&app.mails_to("owner@example.com").await.pop().unwrap());
    let confirm = json!({"email": "owner@example.com", "code": code, "new_password": PASSWORD});
    assert_eq!(call(&app, "POST", "/api/v2/user/password", Some(KEY), &confirm).await.0, 200);

    let (status, body) = register(&app, "?login=true", &json!({"email": "Owner@Example.com"})).await;
    assert_eq!((status, body), (200, json!({"success": true, "confirmation_required": true})));
    let mails = app.mails_to("owner@example.com").await;
    assert_eq!(mails.len(), 2);
    assert!(mails[1].subject.contains("already have"), "{}", mails[1].subject);
    assert_eq!(df_login(&app, "owner@example.com", PASSWORD).await.0, 200, "nothing changed");
}

#[rstest]
#[tokio::test]
async fn an_earlier_registrant_loses_everything_when_the_owner_resets(#[values(SQLITE, POSTGRES)] db: Db) {
    // Confirmation off: whoever registers first is active at once, with a session.
    let app = TestApp::spawn_with(db, open(false)).await;
    let (_, body) =
        register(&app, "?login=true", &json!({"email": "victim@example.com", "password": PASSWORD})).await;
    let squatter_token = body["session_token"].as_str().unwrap().to_owned();
    assert_eq!(session_get(&app, &squatter_token, "authorization").await.0, 200);

    // A reset answers the same for known and unknown addresses; only the known one gets mail.
    let reset = |email: &str| json!({"email": email});
    let path = "/api/v2/user/password?reset=true";
    assert_eq!(
        call(&app, "POST", path, Some(KEY), &reset("victim@example.com")).await,
        (200, json!({"success": true}))
    );
    assert_eq!(
        call(&app, "POST", path, Some(KEY), &reset("nobody@example.com")).await,
        (200, json!({"success": true}))
    );
    assert!(app.mails_to("nobody@example.com").await.is_empty());
    // Both took the same steps up to the last write: the unknown address's window is counted
    // like the known one's (only the known one gets a code and a mail).
    for who in ["victim", "nobody"] {
        let sql = format!("SELECT COUNT(*) FROM rate_limits WHERE key LIKE 'mail:reset:%:{who}@example.com'");
        assert_eq!(app.count(&sql).await, 1, "{who}");
    }
    let mail = app.mails_to("victim@example.com").await.pop().unwrap();
    // Named after the app whose key asked, not the instance (`default`).
    assert_eq!(mail.subject, "Reset your Demo password");
    assert!(!mail.text.contains("default") && !mail.html.contains("default"), "{}", mail.text);

    let owner_password = "the owner's own passphrase";
    let body = json!({"email": "victim@example.com", "code": code_in(&mail), "new_password": owner_password});
    assert_eq!(call(&app, "POST", "/api/v2/user/password", Some(KEY), &body).await.0, 200);
    assert_eq!(
        session_get(&app, &squatter_token, "authorization").await.0,
        401,
        "the squatter's session is void"
    );
    assert_eq!(df_login(&app, "victim@example.com", PASSWORD).await.0, 401, "and their password");
    assert_eq!(df_login(&app, "victim@example.com", owner_password).await.0, 200);
}

#[rstest]
#[tokio::test]
async fn a_pending_registration_is_replaced_and_its_code_dies(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, open(true)).await;
    register(&app, "", &json!({"email": "twice@example.com", "first_name": "Squatter"})).await;
    let first = code_in(&app.mails_to("twice@example.com").await.pop().unwrap());
    app.clock.advance(time::Duration::minutes(2));
    register(&app, "", &json!({"email": "twice@example.com", "first_name": "Owner"})).await;
    let mails = app.mails_to("twice@example.com").await;
    assert_eq!(mails.len(), 2);
    let second = code_in(&mails[1]);
    let body = |code: &str| json!({"email": "twice@example.com", "code": code, "new_password": PASSWORD});
    let (status, _) = call(&app, "POST", "/api/v2/user/password", Some(KEY), &body(&first)).await;
    assert_eq!(status, 400, "the first code is void");
    assert_eq!(call(&app, "POST", "/api/v2/user/password", Some(KEY), &body(&second)).await.0, 200);
    let (_, session) = df_login(&app, "twice@example.com", PASSWORD).await;
    assert_eq!(session["first_name"], "Owner");
}

#[rstest]
#[tokio::test]
async fn an_operator_template_and_mail_service_render_every_variable(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        open(true)(c);
        c.mail_templates = vec![MailTemplateConfig {
            name: "acme_confirm".into(),
            subject: "Confirm {{ email }} for {{ app_name }}".into(),
            text: "first={{ first_name }}\nlast={{ last_name }}\nname={{ name }}\nemail={{ email }}\nphone={{ phone }}\ncode={{ confirm_code }}\nlink={{ link }}\napp={{ app_name }}\n".into(),
            html: "<p>{{ first_name }}</p>".into(),
        }];
        let inst = &mut c.instances[0];
        inst.open_reg_email_template = Some("acme_confirm".into());
        inst.open_reg_email_service = Some("marketing".into());
        inst.mail_services = vec![MailServiceConfig {
            name: "marketing".into(),
            transport: MailTransportKind::File,
            from: Some("Acme <hello@acme.example>".into()),
            smtp_url: None,
            timeout_secs: 5,
            tls_ca_file: None,
        }];
    })
    .await;
    let body = json!({"email": "vars@example.com", "first_name": "Vera", "last_name": "Ars", "phone": "+31 20 123 4567"});
    register(&app, "", &body).await;
    let mail = app.mails_to("vars@example.com").await.pop().unwrap();
    assert_eq!(mail.subject, "Confirm vars@example.com for Demo");
    let code = line_value_eq(&mail, "code");
    for (k, v) in [
        ("first", "Vera"),
        ("last", "Ars"),
        ("name", "Vera Ars"),
        ("email", "vars@example.com"),
        ("phone", "+31 20 123 4567"),
        ("app", "Demo"),
    ] {
        assert_eq!(line_value_eq(&mail, k), v, "{}", mail.text);
    }
    assert!(line_value_eq(&mail, "link").contains(&format!("code={code}")));
    let raw = std::fs::read_dir(app.env.dir.path().join("mail"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|m| m.contains("vars@example.com"))
        .unwrap();
    assert!(raw.contains("From: Acme <hello@acme.example>"), "sent through the instance's mail service");
}

fn line_value_eq(mail: &Mail, key: &str) -> String {
    mail.text.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_default().trim().to_owned()
}

#[rstest]
#[tokio::test]
async fn a_key_taken_out_of_the_configuration_is_revoked_at_the_next_start(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let env = TestEnv::new(db).await;
    let mut config = env.config();
    open(false)(&mut config);
    let app = TestApp::spawn_in(env, config.clone()).await;
    let body = |n: u32| json!({"email": format!("r{n}@example.com"), "password": PASSWORD});
    assert_eq!(call(&app, "POST", "/api/v2/user/register", Some(KEY), &body(1)).await.0, 200);
    app.worker.drain().await.unwrap();
    let env = app.into_env();
    config.instances[0].apps[0].api_keys = vec![Secret(KEY2.into())];
    let app = TestApp::spawn_in(env, config).await;
    assert_eq!(call(&app, "POST", "/api/v2/user/register", Some(KEY), &body(2)).await.0, 401);
    assert_eq!(call(&app, "POST", "/api/v2/user/register", Some(KEY2), &body(2)).await.0, 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NOT NULL").await, 1);
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn every_error_is_in_dreamfactorys_shape(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        open(false)(c);
        c.rate_limits.signup_per_email_per_hour = 2;
    })
    .await;
    // Wrong method, unknown resource.
    let (status, body) = call(&app, "GET", "/api/v2/user/register", Some(KEY), &json!({})).await;
    assert_df_error(status, &body, 405);
    let (status, body) = call(&app, "DELETE", "/api/v2/user/password", Some(KEY), &json!({})).await;
    assert_df_error(status, &body, 405);
    let (status, body) = call(&app, "GET", "/api/v2/user/nothing-here", Some(KEY), &json!({})).await;
    assert_df_error(status, &body, 404);
    // A login without its fields.
    let (status, body) =
        call(&app, "POST", "/api/v2/user/session", Some(KEY), &json!({"email": "a@example.com"})).await;
    assert_df_error(status, &body, 400);
    assert_eq!(body["error"]["message"], "Login request is missing required fields.");
    // No session token.
    let (status, body) = call(&app, "GET", "/api/v2/user/session", Some(KEY), &json!({})).await;
    assert_df_error(status, &body, 401);
    // An oversized body.
    let huge = json!({"email": "big@example.com", "password": PASSWORD, "name": "x".repeat(70_000)});
    let (status, body) = register(&app, "", &huge).await;
    assert_df_error(status, &body, 413);
    // Too many registrations of one address.
    let body = json!({"email": "busy@example.com", "password": PASSWORD});
    assert_eq!(register(&app, "", &body).await.0, 200);
    assert_eq!(register(&app, "", &body).await.0, 409);
    let r = app
        .client
        .post(app.url("/api/v2/user/register"))
        .header("X-DreamFactory-API-Key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("retry-after"));
    let status = r.status().as_u16();
    assert_df_error(status, &r.json().await.unwrap(), 429);
}

#[rstest]
#[tokio::test]
async fn bodies_not_declared_json_are_refused_unread(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, open(true)).await;
    let body = json!({"email": "plain@example.com", "password": PASSWORD}).to_string();
    // What a page on any site may post without a preflight: text/plain, a form, no type at all.
    for path in ["/api/v2/user/register", "/api/v2/user/password?reset=true", "/api/v2/user/session"] {
        for content_type in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            let mut r =
                app.client.post(app.url(path)).header("X-DreamFactory-API-Key", KEY).body(body.clone());
            if let Some(t) = content_type {
                r = r.header("Content-Type", t);
            }
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            let answer: Value = r.json().await.unwrap();
            assert_df_error(status, &answer, 415);
            assert!(answer["error"]["message"].as_str().unwrap().contains("application/json"), "{answer}");
        }
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE email = 'plain@example.com'").await, 0);
    app.worker.run_once().await.unwrap();
    assert!(app.mails().await.is_empty(), "no reset or confirmation mail went out");
    // JSON with parameters, and the +json family, are JSON.
    for content_type in ["application/json; charset=utf-8", "application/vnd.api+json"] {
        let r = app
            .client
            .post(app.url("/api/v2/user/password?reset=true"))
            .header("X-DreamFactory-API-Key", KEY)
            .header("Content-Type", content_type)
            .body(json!({"email": "nobody@example.com"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{content_type}");
    }
}
