//! The admin API (issue 13): tokens and their scope, users (find, show, disable, enable,
//! resend, reset, revoke, delete, export), the outbox and the audit log; a disabled user
//! refused on all five surfaces. On SQLite and PostgreSQL.

use crate::helpers::*;
use onramp_core::admin::AdminPrincipal;
use rstest::rstest;
use serde_json::{Value, json};

const PASSWORD: &str = "a-long-and-quiet-harbour";

/// A new admin token (made as the CLI makes them): global unless `instance`.
pub(crate) async fn token(app: &TestApp, instance: Option<&str>, read_only: bool) -> String {
    let admin = app.state.onramp.admin();
    admin.create_token(&AdminPrincipal::cli(), instance, read_only, "test").await.unwrap().1
}

pub(crate) async fn call(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = app.client.request(method, app.url(path));
    if !token.is_empty() {
        r = r.bearer_auth(token);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn assert_admin_error(status: u16, body: &Value, expected: u16, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

/// The public id of the user with `email` in `default`.
async fn user_id(app: &TestApp, admin: &str, email: &str) -> String {
    let (status, page) =
        call(app, admin, "GET", &format!("/admin/v1/instances/default/users?email={email}"), None).await;
    assert_eq!(status, 200, "{page}");
    page["items"][0]["id"].as_str().unwrap_or_else(|| panic!("no user {email}: {page}")).to_owned()
}

#[rstest]
#[tokio::test]
async fn admin_calls_need_a_live_token_and_stay_in_its_scope(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    app.state.onramp.provisioner().create_instance("initech").await.unwrap();
    let global = token(&app, None, false).await;
    let scoped = token(&app, Some("default"), false).await;
    let reader = token(&app, None, true).await;

    // No token, a wrong one: 401 in the admin format, with the scheme to use.
    let r = app.client.get(app.url("/admin/v1/instances")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let (status, body) = call(&app, "", "GET", "/admin/v1/instances", None).await;
    assert_admin_error(status, &body, 401, "unauthorized");
    let (status, body) = call(&app, "oadm_notarealtoken", "GET", "/admin/v1/instances", None).await;
    assert_admin_error(status, &body, 401, "unauthorized");

    // Global: every instance. Scoped: its own, and 403 on another (existing or not).
    let (status, all) = call(&app, &global, "GET", "/admin/v1/instances", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = all.as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"initech") && names.contains(&"default"), "{names:?}");
    let (_, mine) = call(&app, &scoped, "GET", "/admin/v1/instances", None).await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["name"], "default");
    let (status, body) = call(&app, &scoped, "GET", "/admin/v1/instances/initech/users", None).await;
    assert_admin_error(status, &body, 403, "forbidden");
    let (status, body) = call(&app, &scoped, "GET", "/admin/v1/instances/nosuch/users", None).await;
    assert_admin_error(status, &body, 403, "forbidden");
    let (status, body) = call(&app, &global, "GET", "/admin/v1/instances/nosuch/users", None).await;
    assert_admin_error(status, &body, 404, "instance_not_found");
    let (status, body) = call(&app, &scoped, "GET", "/admin/v1/tokens", None).await;
    assert_admin_error(status, &body, 403, "forbidden");

    // Read-only reads, and is refused every write.
    assert_eq!(call(&app, &reader, "GET", "/admin/v1/instances/initech/users", None).await.0, 200);
    let (status, body) =
        call(&app, &reader, "POST", "/admin/v1/instances", Some(json!({"name": "nope"}))).await;
    assert_admin_error(status, &body, 403, "forbidden");
    let (status, body) = call(&app, &reader, "POST", "/admin/v1/tokens", Some(json!({}))).await;
    assert_admin_error(status, &body, 403, "forbidden");
    let (status, body) = call(&app, &reader, "POST", "/admin/v1/outbox/retry-dead", None).await;
    assert_admin_error(status, &body, 403, "forbidden");

    // A global token makes tokens; a revoked one is refused at once.
    let (status, made) = call(
        &app,
        &global,
        "POST",
        "/admin/v1/tokens",
        Some(json!({"instance": "initech", "read_only": true, "label": "support desk"})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let new = made["token"].as_str().unwrap().to_owned();
    assert!(new.starts_with("oadm_") && made["instance"] == "initech" && made["read_only"] == true, "{made}");
    assert_eq!(call(&app, &new, "GET", "/admin/v1/instances/initech", None).await.0, 200);
    let (_, listed) = call(&app, &global, "GET", "/admin/v1/tokens", None).await;
    assert!(
        listed.as_array().unwrap().iter().all(|t| t.get("token").is_none() && t.get("secret_hash").is_none())
    );
    let id = made["id"].as_str().unwrap();
    assert_eq!(call(&app, &global, "DELETE", &format!("/admin/v1/tokens/{id}"), None).await.0, 204);
    let (status, body) = call(&app, &new, "GET", "/admin/v1/instances/initech", None).await;
    assert_admin_error(status, &body, 401, "unauthorized");
    let (status, body) = call(&app, &global, "DELETE", &format!("/admin/v1/tokens/{id}"), None).await;
    assert_admin_error(status, &body, 404, "token_not_found");

    // Unknown paths and methods answer in the admin format too.
    let (status, body) = call(&app, &global, "GET", "/admin/v1/nothing-here", None).await;
    assert_admin_error(status, &body, 404, "not_found");
    let (status, body) = call(&app, &global, "PUT", "/admin/v1/instances", None).await;
    assert_admin_error(status, &body, 405, "method_not_allowed");

    // The audit log names the token's actions.
    let (_, trail) = call(&app, &global, "GET", "/admin/v1/audit?type=admin_token.revoked", None).await;
    assert_eq!(trail["items"][0]["target"], id, "{trail}");
    assert!(trail["items"][0]["actor"].as_str().unwrap().starts_with("admin:adm_"), "{trail}");
    assert_eq!(trail["items"][0]["client"], "127.0.0.1");
}

#[rstest]
#[tokio::test]
async fn an_operator_finds_a_user_then_revokes_disables_enables_and_deletes_them(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn(db).await;
    let admin = token(&app, None, false).await;
    active_user(&app, "june@example.com", "junedoe1", PASSWORD).await;
    active_user(&app, "jack@example.com", "jackdoe1", PASSWORD).await;
    app.worker.drain().await.unwrap();
    let base = "/admin/v1/instances/default/users";

    // Find: newest first, by the start of an address, a whole one, a username; paged.
    let (_, page) = call(&app, &admin, "GET", &format!("{base}?limit=1"), None).await;
    assert_eq!(page["items"][0]["email"], "jack@example.com", "{page}");
    let cursor = page["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, next) = call(&app, &admin, "GET", &format!("{base}?limit=1&cursor={cursor}"), None).await;
    assert_eq!(next["items"][0]["email"], "june@example.com", "{next}");
    assert!(next["next_cursor"].is_null(), "{next}");
    let (_, by_prefix) = call(&app, &admin, "GET", &format!("{base}?email=jun"), None).await;
    assert_eq!(by_prefix["items"].as_array().unwrap().len(), 1, "{by_prefix}");
    let (_, by_name) = call(&app, &admin, "GET", &format!("{base}?username=JackDoe1"), None).await;
    assert_eq!(by_name["items"][0]["email"], "jack@example.com");
    let (status, body) = call(&app, &admin, "GET", &format!("{base}?status=sleeping"), None).await;
    assert_admin_error(status, &body, 422, "validation_failed");
    assert_eq!(body["error"]["fields"][0]["field"], "status");
    let (status, body) = call(&app, &admin, "GET", &format!("{base}?cursor=zz"), None).await;
    assert_admin_error(status, &body, 422, "validation_failed");
    let (status, body) = call(&app, &admin, "GET", &format!("{base}?limit=5000"), None).await;
    assert_admin_error(status, &body, 422, "validation_failed");

    let june = user_id(&app, &admin, "june@example.com").await;
    let (status, shown) = call(&app, &admin, "GET", &format!("{base}/{june}"), None).await;
    assert_eq!(status, 200);
    assert_eq!((shown["status"].as_str(), shown["username"].as_str()), (Some("active"), Some("junedoe1")));
    assert!(shown.get("password_hash").is_none() && shown["has_password"] == true, "{shown}");
    let (status, body) = call(&app, &admin, "GET", &format!("{base}/usr_nobody"), None).await;
    assert_admin_error(status, &body, 404, "user_not_found");

    // Sessions end when revoked.
    let login = json(app.login("junedoe1", PASSWORD).await).await;
    let bearer = login["access_token"].as_str().unwrap().to_owned();
    let session = || app.client.get(app.url("/v1/auth/session")).bearer_auth(&bearer).send();
    assert_eq!(session().await.unwrap().status(), 200);
    let (status, revoked) = call(&app, &admin, "POST", &format!("{base}/{june}/revoke-sessions"), None).await;
    assert_eq!((status, revoked["revoked"].as_u64()), (200, Some(1)), "{revoked}");
    assert_eq!(session().await.unwrap().status(), 401);

    // Disabled: no login; enabled: back.
    let (status, disabled) = call(&app, &admin, "POST", &format!("{base}/{june}/disable"), None).await;
    assert_eq!((status, disabled["status"].as_str()), (200, Some("inactive")), "{disabled}");
    let r = app.login("junedoe1", PASSWORD).await;
    assert_eq!(r.status(), 403);
    assert_eq!(json(r).await["error"]["code"], "account_disabled");
    let (status, enabled) = call(&app, &admin, "POST", &format!("{base}/{june}/enable"), None).await;
    assert_eq!((status, enabled["status"].as_str()), (200, Some("active")));
    assert_eq!(app.login("junedoe1", PASSWORD).await.status(), 200);
    let (status, body) =
        call(&app, &admin, "POST", &format!("{base}/{june}/resend-verification"), None).await;
    assert_admin_error(status, &body, 409, "wrong_state");

    // Deleted: personal data gone, a tombstone left, the address free again.
    assert_eq!(call(&app, &admin, "DELETE", &format!("{base}/{june}"), None).await.0, 204);
    let (_, gone) = call(&app, &admin, "GET", &format!("{base}/{june}"), None).await;
    assert_eq!(gone["status"], "deleted");
    assert!(!gone.to_string().contains("june@example.com") && gone["username"].is_null(), "{gone}");
    assert_eq!(app.login("junedoe1", PASSWORD).await.status(), 401);
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE email LIKE '%june%'").await, 0);
    let (status, body) = call(&app, &admin, "POST", &format!("{base}/{june}/enable"), None).await;
    assert_admin_error(status, &body, 409, "wrong_state");
    active_user(&app, "june@example.com", "junedoe2", PASSWORD).await;

    // Every change is in the user's trail, newest first, with who and from where.
    let (_, trail) = call(&app, &admin, "GET", &format!("/admin/v1/audit?user_id={june}"), None).await;
    let kinds: Vec<&str> =
        trail["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "user.deleted",
            "login.succeeded",
            "user.enabled",
            "login.failed",
            "user.disabled",
            "user.sessions_revoked",
            "login.succeeded",
            "user.activated",
            "user.signed_up"
        ],
        "{trail}"
    );
    let items = trail["items"].as_array().unwrap();
    let by_admin: Vec<&Value> =
        items.iter().filter(|e| e["actor"].as_str().unwrap().starts_with("admin:")).collect();
    assert_eq!(by_admin.len(), 4);
    assert!(by_admin.iter().all(|e| e["instance"] == "default" && e["client"] == "127.0.0.1"), "{trail}");
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_resent_verification_replaces_the_first_and_a_required_reset_voids_the_password(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn_with(db, crate::dreamfactory::open(false)).await;
    let admin = token(&app, Some("default"), false).await;
    let base = "/admin/v1/instances/default/users";
    let r = app.signup(&with(signup_body("pending@example.com"), json!({"password": PASSWORD}))).await;
    assert_eq!(r.status(), 200);
    let first = app.mails_to("pending@example.com").await.pop().expect("activation mail");
    let pending = user_id(&app, &admin, "pending@example.com").await;
    assert_eq!(
        call(&app, &admin, "POST", &format!("{base}/{pending}/resend-verification"), None).await.0,
        202
    );
    let mails = app.mails_to("pending@example.com").await;
    assert_eq!(mails.len(), 2, "a second activation mail");
    assert_eq!(app.activate(&token_in(&first)).await.status(), 404, "the first link is void");
    assert_eq!(app.activate(&token_in(&mails[1])).await.status(), 200);

    // A required reset: the password stops working, sessions end, a code is mailed.
    let login = json(app.login("junedoe1", PASSWORD).await).await;
    let bearer = login["access_token"].as_str().unwrap().to_owned();
    let r = call(&app, &admin, "POST", &format!("{base}/{pending}/require-password-reset"), None).await;
    assert_eq!(r.0, 202, "{}", r.1);
    let r = app.client.get(app.url("/v1/auth/session")).bearer_auth(&bearer).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(app.login("junedoe1", PASSWORD).await.status(), 401);
    let (_, shown) = call(&app, &admin, "GET", &format!("{base}/{pending}"), None).await;
    assert_eq!(shown["has_password"], false);
    let reset = app.mails_to("pending@example.com").await.pop().expect("a reset mail");
    let code = crate::dreamfactory::code_in(&reset);
    let fresh = "a-brand-new-quiet-harbour";
    let body = json!({"email": "pending@example.com", "code": code, "new_password": fresh});
    let (status, answer) = crate::dreamfactory::call(
        &app,
        "POST",
        "/api/v2/user/password",
        Some(crate::dreamfactory::KEY),
        &body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(app.login("junedoe1", fresh).await.status(), 200);
    app.worker.drain().await.unwrap();
}

/// Disable the user of `email` in `instance` through the admin API.
async fn disable(app: &TestApp, instance: &str, email: &str) {
    let admin = token(app, None, false).await;
    let (_, page) =
        call(app, &admin, "GET", &format!("/admin/v1/instances/{instance}/users?email={email}"), None).await;
    let id = page["items"][0]["id"].as_str().unwrap_or_else(|| panic!("{page}")).to_owned();
    let (status, body) =
        call(app, &admin, "POST", &format!("/admin/v1/instances/{instance}/users/{id}/disable"), None).await;
    assert_eq!(status, 200, "{body}");
}

#[rstest]
#[tokio::test]
async fn a_disabled_user_is_refused_on_every_surface(#[values(SQLITE, POSTGRES)] db: Db) {
    let email = "off@example.com";
    // /v1 and DreamFactory: the login is refused as disabled.
    let app = TestApp::spawn_with(db, crate::dreamfactory::open(false)).await;
    active_user(&app, email, "offuser1", PASSWORD).await;
    disable(&app, "default", "off@example.com").await;
    let r = app.login("offuser1", PASSWORD).await;
    assert_eq!(r.status(), 403);
    assert_eq!(json(r).await["error"]["code"], "account_disabled");
    let (status, body) = crate::dreamfactory::df_login(&app, email, PASSWORD).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["message"], "The account is disabled.");
    app.worker.drain().await.unwrap();

    // FastEditor: signing the address up again is refused as disabled.
    let app = TestApp::spawn_with(db, crate::partner::partners).await;
    let body = json!({"userName": email, "password": "#9ske%ls9#DS1-longer", "firstName": "Olive", "lastName": "Ffinch", "language": "en"});
    let signup = || {
        app.client
            .post(app.url("/partner/fasteditor/signup"))
            .header("X-Api-Key", crate::partner::KEY)
            .json(&body)
            .send()
    };
    assert_eq!(signup().await.unwrap().status(), 201);
    disable(&app, "default", "off@example.com").await;
    let r = signup().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(json(r).await["code"], "ACCOUNT_DISABLED");
    app.worker.drain().await.unwrap();

    // dialogportal: a disabled account's texted code is refused as disabled.
    let app = TestApp::spawn_with(db, crate::contracts::contracts).await;
    let (status, created) = crate::contracts::create(
        &app,
        "/user/basic",
        &crate::contracts::account(email, Some("+31612345678")),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let code = crate::contracts::texted_code(&app, "+31612345678").await;
    disable(&app, "default", "off@example.com").await;
    let dp_key = created["dpKey"].as_i64().unwrap();
    let r = crate::contracts::post(
        &app,
        &format!("/user/{dp_key}/verify-sms"),
        crate::contracts::KEY,
        &json!({"code": code}),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(json(r).await["message"], "The account is disabled.");
    app.worker.drain().await.unwrap();

    // FastTrack: the address of a disabled dashboard user is refused as disabled.
    let app = TestApp::spawn_with(db, crate::fast_track::enable).await;
    let (status, body) = crate::fast_track::fast_track(&app, &crate::fast_track::payload(email)).await;
    assert_eq!(status, 200, "{body}");
    disable(&app, "platform", "off@example.com").await;
    let (status, body) = crate::fast_track::fast_track(&app, &crate::fast_track::payload(email)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["message"], "The account is disabled.");
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn dead_letters_are_listed_with_their_error_and_retried(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = token(&app, None, false).await;
    let r = app.signup(&signup_body("letters@example.com")).await;
    assert_eq!(r.status(), 200);
    app.exec("UPDATE outbox SET status = 'dead', attempts = 5, last_error = '550 mailbox unavailable'").await;

    let (status, dead) = call(&app, &admin, "GET", "/admin/v1/outbox?status=dead", None).await;
    assert_eq!(status, 200);
    let entry = &dead["items"][0];
    assert_eq!(entry["recipient"], "l***@example.com", "{dead}");
    assert_eq!(
        (entry["attempts"].as_u64(), entry["last_error"].as_str()),
        (Some(5), Some("550 mailbox unavailable"))
    );
    assert_eq!(entry["kind"], "mail:signup_activation");
    let (status, body) = call(&app, &admin, "GET", "/admin/v1/outbox?status=lost", None).await;
    assert_admin_error(status, &body, 422, "validation_failed");
    let (_, none) = call(&app, &admin, "GET", "/admin/v1/outbox?status=pending", None).await;
    assert!(none["items"].as_array().unwrap().is_empty());

    let id = entry["id"].as_i64().unwrap();
    let (status, retried) = call(&app, &admin, "POST", &format!("/admin/v1/outbox/{id}/retry"), None).await;
    assert_eq!((status, retried["retried"].as_u64()), (200, Some(1)), "{retried}");
    app.worker.drain().await.unwrap();
    assert_eq!(app.mails_to("letters@example.com").await.len(), 1, "delivered after the retry");
    let (status, body) = call(&app, &admin, "POST", &format!("/admin/v1/outbox/{id}/retry"), None).await;
    assert_admin_error(status, &body, 409, "wrong_state");
    let (status, body) = call(&app, &admin, "POST", "/admin/v1/outbox/987654321/retry", None).await;
    assert_admin_error(status, &body, 404, "message_not_found");
    let (status, body) = call(&app, &admin, "POST", "/admin/v1/outbox/notanumber/retry", None).await;
    assert_admin_error(status, &body, 404, "not_found");

    // All dead letters at once.
    app.signup(&with(signup_body("again@example.com"), json!({"username": "againuser"}))).await;
    app.exec("UPDATE outbox SET status = 'dead', attempts = 5 WHERE status = 'pending'").await;
    let (_, all) = call(&app, &admin, "POST", "/admin/v1/outbox/retry-dead", None).await;
    assert_eq!(all["retried"], 1, "{all}");
    app.worker.drain().await.unwrap();
    let (_, trail) = call(&app, &admin, "GET", "/admin/v1/audit?type=outbox.retried", None).await;
    assert_eq!(trail["items"].as_array().unwrap().len(), 2, "{trail}");
}

#[rstest]
#[tokio::test]
async fn users_export_as_json_lines_without_secrets(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = token(&app, None, true).await;
    for n in 0..3 {
        let body =
            with(signup_body(&format!("e{n}@example.com")), json!({"username": format!("exporter{n}")}));
        assert_eq!(app.signup(&body).await.status(), 200);
    }
    let r = app
        .client
        .get(app.url("/admin/v1/instances/default/users/export"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        lines.iter().map(|u| u["email"].as_str().unwrap()).collect::<Vec<_>>(),
        ["e0@example.com", "e1@example.com", "e2@example.com"]
    );
    assert!(!text.contains("argon2") && !text.contains("password_hash"), "{text}");
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn instances_and_apps_are_managed_through_the_api(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = token(&app, None, false).await;
    let (status, made) =
        call(&app, &admin, "POST", "/admin/v1/instances", Some(json!({"name": "globex"}))).await;
    assert_eq!((status, made["status"].as_str()), (201, Some("active")), "{made}");
    let (status, body) =
        call(&app, &admin, "POST", "/admin/v1/instances", Some(json!({"name": "globex"}))).await;
    assert_admin_error(status, &body, 409, "instance_exists");
    let (status, body) =
        call(&app, &admin, "POST", "/admin/v1/instances", Some(json!({"name": "Not Valid"}))).await;
    assert_admin_error(status, &body, 422, "validation_failed");
    let (status, body) = call(&app, &admin, "POST", "/admin/v1/instances", Some(json!({"nam": "x"}))).await;
    assert_admin_error(status, &body, 400, "malformed_request");

    // Disable, settings, enable.
    let (status, changed) = call(
        &app,
        &admin,
        "PATCH",
        "/admin/v1/instances/globex",
        Some(json!({"status": "disabled", "open_registration": true})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["status"].as_str(), changed["settings"]["open_registration"].as_bool()),
        (Some("disabled"), Some(true))
    );
    let r = app.client.get(app.url("/")).header("host", "globex.localhost").send().await.unwrap();
    assert_eq!(r.status(), 404, "a disabled instance answers nothing");
    let (status, body) =
        call(&app, &admin, "PATCH", "/admin/v1/instances/globex", Some(json!({"status": "asleep"}))).await;
    assert_admin_error(status, &body, 422, "validation_failed");
    let (_, on) =
        call(&app, &admin, "PATCH", "/admin/v1/instances/globex", Some(json!({"status": "active"}))).await;
    assert_eq!(on["status"], "active");
    let (status, body) = call(&app, &admin, "POST", "/admin/v1/instances/globex/retry", None).await;
    assert_admin_error(status, &body, 409, "wrong_state");

    // Deleted once disabled, with its users; the configured ones are not deleted here.
    let imported = json!([{"email": "g@example.com"}]);
    assert_eq!(
        call(&app, &admin, "POST", "/admin/v1/instances/globex/users/import", Some(imported)).await.0,
        200
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE email = 'g@example.com'").await, 1);
    let (status, body) = call(&app, &admin, "DELETE", "/admin/v1/instances/globex", None).await;
    assert_admin_error(status, &body, 409, "wrong_state");
    call(&app, &admin, "PATCH", "/admin/v1/instances/globex", Some(json!({"status": "disabled"}))).await;
    let reader = token(&app, None, true).await;
    let (status, body) = call(&app, &reader, "DELETE", "/admin/v1/instances/globex", None).await;
    assert_admin_error(status, &body, 403, "forbidden");
    assert_eq!(call(&app, &admin, "DELETE", "/admin/v1/instances/globex", None).await.0, 204);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE email = 'g@example.com'").await,
        0,
        "its users went with it"
    );
    let (status, body) = call(&app, &admin, "GET", "/admin/v1/instances/globex", None).await;
    assert_admin_error(status, &body, 404, "instance_not_found");
    let (_, deleted) = call(&app, &admin, "GET", "/admin/v1/audit?type=instance.deleted", None).await;
    assert_eq!(deleted["items"][0]["target"], "globex", "{deleted}");
    let (status, body) = call(&app, &admin, "DELETE", "/admin/v1/instances/default", None).await;
    assert_admin_error(status, &body, 409, "instance_declared");

    // Apps: origins, keys, contracts, domains.
    let (status, apps) = call(&app, &admin, "GET", "/admin/v1/instances/default/apps", None).await;
    assert_eq!(status, 200);
    let app_id = apps[0]["id"].as_str().unwrap().to_owned();
    let base = format!("/admin/v1/instances/default/apps/{app_id}");
    let (status, patched) =
        call(&app, &admin, "PATCH", &base, Some(json!({"allowed_origins": ["https://APP.example.com"]})))
            .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["allowed_origins"], json!(["https://app.example.com"]));
    let (status, body) =
        call(&app, &admin, "PATCH", &base, Some(json!({"allowed_origins": ["not an origin"]}))).await;
    assert_admin_error(status, &body, 422, "validation_failed");
    let (status, key) =
        call(&app, &admin, "POST", &format!("{base}/keys"), Some(json!({"label": "ci"}))).await;
    assert_eq!(status, 201, "{key}");
    let (_, keys) = call(&app, &admin, "GET", &format!("{base}/keys"), None).await;
    assert!(keys.as_array().unwrap().iter().any(|k| k["id"] == key["id"] && k["label"] == "ci"), "{keys}");
    let key_id = key["id"].as_str().unwrap();
    assert_eq!(call(&app, &admin, "DELETE", &format!("{base}/keys/{key_id}"), None).await.0, 204);
    let (status, body) = call(&app, &admin, "DELETE", &format!("{base}/keys/{key_id}"), None).await;
    assert_admin_error(status, &body, 404, "key_not_found");
    let contract = json!({"fields": [{"name": "email", "type": "email", "required": true, "unique": true}], "default": true});
    let (status, saved) =
        call(&app, &admin, "PUT", &format!("{base}/contracts/members"), Some(contract)).await;
    assert_eq!((status, saved["default"].as_bool()), (200, Some(true)), "{saved}");
    let (_, contracts) = call(&app, &admin, "GET", &format!("{base}/contracts"), None).await;
    assert_eq!(contracts[0]["id"], "members");
    let (status, domains) = call(&app, &admin, "GET", &format!("{base}/domains"), None).await;
    assert_eq!(status, 200);
    assert!(!domains.as_array().unwrap().is_empty());
    let (status, body) = call(&app, &admin, "GET", "/admin/v1/instances/default/apps/app_nope", None).await;
    assert_admin_error(status, &body, 404, "app_not_found");

    let (_, trail) = call(&app, &admin, "GET", "/admin/v1/audit?instance=default", None).await;
    let kinds: Vec<&str> =
        trail["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["contract.saved", "api_key.revoked", "api_key.created", "app.origins_changed"],
        "{trail}"
    );
}

/// A hash of `password` in each foreign form an import takes (Firebase: its own test vector).
fn foreign_hashes(password: &str) -> Vec<(&'static str, Value)> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use base64::Engine;
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let pw = password.as_bytes();
    let argon = |algorithm| {
        argon2::Argon2::new(algorithm, argon2::Version::V0x13, argon2::Params::new(256, 1, 1, None).unwrap())
            .hash_password(pw, &salt)
            .unwrap()
            .to_string()
    };
    let bcrypt = bcrypt::hash(password, 4).unwrap();
    let scrypt = scrypt::Scrypt
        .hash_password_customized(pw, None, None, scrypt::Params::new(10, 8, 1, 32).unwrap(), &salt)
        .unwrap()
        .to_string();
    let pbkdf2 = pbkdf2::Pbkdf2
        .hash_password_customized(
            pw,
            Some(pbkdf2::Algorithm::Pbkdf2Sha256.ident()),
            None,
            pbkdf2::Params { rounds: 1000, output_length: 32 },
            &salt,
        )
        .unwrap()
        .to_string();
    let mut django = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pw, b"djangosalt", 1000, &mut django);
    let django =
        format!("pbkdf2_sha256$1000$djangosalt${}", base64::engine::general_purpose::STANDARD.encode(django));
    vec![
        ("argon2i", json!(argon(argon2::Algorithm::Argon2i))),
        ("argon2d", json!(argon(argon2::Algorithm::Argon2d))),
        ("argon2id-weak", json!(argon(argon2::Algorithm::Argon2id))),
        ("bcrypt-2a", json!(format!("$2a${}", &bcrypt[4..]))),
        ("bcrypt-2b", json!(format!("$2b${}", &bcrypt[4..]))),
        ("bcrypt-2y", json!(format!("$2y${}", &bcrypt[4..]))),
        ("scrypt", json!(scrypt)),
        ("pbkdf2", json!(pbkdf2)),
        ("django", json!(django)),
    ]
}

const FIREBASE_PASSWORD: &str = "user1password";

fn firebase_hash() -> Value {
    json!({
        "hash": "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==",
        "salt": "42xEC+ixf3L2lw==",
        "salt_separator": "Bw==",
        "signer_key": "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==",
        "rounds": 8,
        "mem_cost": 14
    })
}

async fn import(app: &TestApp, admin: &str, content_type: &str, body: String) -> (u16, Vec<Value>) {
    let r = app
        .client
        .post(app.url("/admin/v1/instances/default/users/import"))
        .bearer_auth(admin)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("{l}"))).collect())
}

#[rstest]
#[tokio::test]
async fn imported_users_log_in_with_their_old_password_on_each_surface_and_are_rehashed(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn_with(db, crate::dreamfactory::open(false)).await;
    let admin = token(&app, Some("default"), false).await;
    let password = "an-old-system's-password";
    // Each format twice: one user logs in through /v1, the other through DreamFactory.
    let mut rows = Vec::new();
    for (name, hash) in foreign_hashes(password).into_iter().chain([("firebase", firebase_hash())]) {
        for surface in ["v1", "df"] {
            rows.push(json!({
                "email": format!("{name}.{surface}@old.example"),
                "first_name": "Imported",
                "last_name": name,
                "metadata": {"old_id": format!("{name}-{surface}")},
                "password_hash": hash,
            }));
        }
    }
    let (status, lines) =
        import(&app, &admin, "application/json", Value::Array(rows.clone()).to_string()).await;
    assert_eq!(status, 200);
    let summary = lines.last().unwrap()["summary"].clone();
    assert_eq!((summary["created"].as_u64(), summary["errors"].as_u64()), (Some(20), Some(0)), "{lines:?}");
    assert!(
        lines[..20].iter().all(|l| l["result"] == "created" && l["id"].as_str().unwrap().starts_with("usr_"))
    );

    for row in &rows {
        let email = row["email"].as_str().unwrap();
        let pw = if email.starts_with("firebase") { FIREBASE_PASSWORD } else { password };
        let sql = format!("SELECT password_hash FROM users WHERE email = '{email}'");
        let stored = || app.text(&sql);
        assert!(
            !stored().await.starts_with("$argon2id$v=19$m=19456"),
            "{email} is not rehashed before its login"
        );
        if email.contains(".v1@") {
            assert_eq!(app.login(email, "not-the-password").await.status(), 401, "{email}");
            assert_eq!(app.login(email, pw).await.status(), 200, "{email}");
        } else {
            assert_eq!(
                crate::dreamfactory::df_login(&app, email, "not-the-password").await.0,
                401,
                "{email}"
            );
            let (status, body) = crate::dreamfactory::df_login(&app, email, pw).await;
            assert_eq!(status, 200, "{email}: {body}");
        }
        assert!(stored().await.starts_with("$argon2id$v=19$"), "{email} is rehashed at its first login");
        assert_eq!(app.login(email, pw).await.status(), 200, "{email} logs in with the new hash");
    }
    let (_, shown) =
        call(&app, &admin, "GET", "/admin/v1/instances/default/users?email=bcrypt-2y.v1@old.example", None)
            .await;
    assert_eq!(shown["items"][0]["metadata"]["old_id"], "bcrypt-2y-v1");
    assert_eq!(shown["items"][0]["status"], "active");

    // Running it again changes nothing: every row is a duplicate.
    let (_, again) = import(&app, &admin, "application/json", Value::Array(rows).to_string()).await;
    assert_eq!(again.last().unwrap()["summary"]["skipped"], 20, "{again:?}");
    assert!(again[..20].iter().all(|l| l["result"] == "skipped" && l["code"] == "duplicate"));
    let (_, trail) = call(&app, &admin, "GET", "/admin/v1/audit?type=user.imported&limit=200", None).await;
    assert_eq!(trail["items"].as_array().unwrap().len(), 20);
}

#[rstest]
#[tokio::test]
async fn an_import_reports_each_refused_row_and_keeps_the_rest(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = token(&app, None, false).await;
    active_user(&app, "taken@example.com", "takenname", PASSWORD).await;
    let lines = [
        json!({"email": "ok1@example.com", "username": "okayuser1"}).to_string(),
        "".into(),
        json!({"email": "not an address"}).to_string(),
        json!({"email": "hash@example.com", "password_hash": "$md5$abc$def"}).to_string(),
        json!({"email": "user@example.com", "username": "takenname"}).to_string(),
        "{not json".into(),
        json!({"email": "field@example.com", "colour": "blue"}).to_string(),
        json!({"email": "status@example.com", "status": "sleeping"}).to_string(),
        json!({"email": "TAKEN@example.com"}).to_string(),
        json!({"email": "ok2@example.com", "status": "pending", "phone": "+31 6 1234 5678"}).to_string(),
    ]
    .join("\n");
    let (status, out) = import(&app, &admin, "application/x-ndjson", lines).await;
    assert_eq!(status, 200);
    let results: Vec<(u64, &str, &str)> = out[..9]
        .iter()
        .map(|l| {
            (l["row"].as_u64().unwrap(), l["result"].as_str().unwrap(), l["code"].as_str().unwrap_or(""))
        })
        .collect();
    assert_eq!(
        results,
        [
            (1, "created", ""),
            (2, "error", "invalid_email"),
            (3, "error", "unsupported_hash"),
            (4, "error", "username_taken"),
            (5, "error", "invalid_row"),
            (6, "error", "invalid_row"),
            (7, "error", "invalid_status"),
            (8, "skipped", "duplicate"),
            (9, "created", ""),
        ],
        "{out:?}"
    );
    assert_eq!(out[9]["summary"], json!({"created": 2, "skipped": 1, "errors": 6}));
    let (_, ok2) =
        call(&app, &admin, "GET", "/admin/v1/instances/default/users?email=ok2@example.com", None).await;
    assert_eq!(
        (ok2["items"][0]["status"].as_str(), ok2["items"][0]["phone"].as_str()),
        (Some("pending"), Some("+31612345678"))
    );
    assert_eq!(ok2["items"][0]["has_password"], false, "no hash: a reset sets one");

    // A body that cannot be read on stops with what it imported so far.
    let (_, cut) =
        import(&app, &admin, "application/json", r#"[{"email": "cut@example.com"}, {"email": "#.into()).await;
    assert_eq!(cut.last().unwrap()["summary"]["stopped"], "the JSON array is not closed", "{cut:?}");

    // Read-only or another instance's token: refused before anything is read.
    let reader = token(&app, None, true).await;
    let (status, body) =
        call(&app, &reader, "POST", "/admin/v1/instances/default/users/import", Some(json!([]))).await;
    assert_admin_error(status, &body, 403, "forbidden");
    let r = app
        .client
        .post(app.url("/admin/v1/instances/default/users/import"))
        .bearer_auth(&admin)
        .header("content-type", "text/csv")
        .body("email\nx@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    app.worker.drain().await.unwrap();
}

/// The types in a user's trail, oldest first.
async fn trail_of(app: &TestApp, admin: &str, query: &str) -> Vec<Value> {
    let (status, page) = call(app, admin, "GET", &format!("/admin/v1/audit?limit=200&{query}"), None).await;
    assert_eq!(status, 200, "{page}");
    let mut items = page["items"].as_array().unwrap().clone();
    items.reverse();
    items
}

fn types(items: &[Value]) -> Vec<&str> {
    items.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[rstest]
#[tokio::test]
async fn security_events_are_in_the_audit_log(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        crate::dreamfactory::open(true)(c);
        c.rate_limits.login_per_identifier_per_10min = 3;
    })
    .await;
    let admin = token(&app, None, true).await;

    // /v1: signup, activation, a failed and a good login, logout.
    active_user(&app, "trail@example.com", "trailuser", PASSWORD).await;
    let id = user_id(&app, &admin, "trail@example.com").await;
    assert_eq!(app.login("trailuser", "not-the-password").await.status(), 401);
    let login = json(app.login("trailuser", PASSWORD).await).await;
    let bearer = login["access_token"].as_str().unwrap();
    let r = app.client.post(app.url("/v1/auth/logout")).bearer_auth(bearer).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let trail = trail_of(&app, &admin, &format!("user_id={id}")).await;
    assert_eq!(
        types(&trail),
        ["user.signed_up", "user.activated", "login.failed", "login.succeeded", "session.revoked"],
        "{trail:?}"
    );
    assert!(trail.iter().all(|e| e["instance"] == "default" && e["user_id"] == id.as_str()));
    assert_eq!(trail[0]["client"], "127.0.0.1");
    assert_eq!(trail[2]["detail"]["reason"], "wrong_password");
    assert_eq!(trail[3]["actor"], format!("user:{id}"));
    assert!(!serde_json::to_string(&trail).unwrap().contains(PASSWORD), "never a password");

    // Past the limit: one lockout entry, however many tries follow.
    for _ in 0..5 {
        app.login("trailuser", "guessing-again").await;
    }
    let locked = trail_of(&app, &admin, "type=login.locked_out").await;
    assert_eq!(locked.len(), 1, "{locked:?}");
    assert_eq!(locked[0]["detail"]["identifier"], "trailuser");

    // DreamFactory: registration, its code, a reset.
    let body = json!({"email": "df@example.com", "first_name": "Dee", "last_name": "Eff"});
    let (status, answer) = crate::dreamfactory::call(
        &app,
        "POST",
        "/api/v2/user/register",
        Some(crate::dreamfactory::KEY),
        &body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let code = crate::dreamfactory::code_in(&app.mails_to("df@example.com").await.pop().unwrap());
    let confirm = json!({"email": "df@example.com", "code": code, "new_password": "a-fresh-quiet-harbour"});
    let (status, answer) = crate::dreamfactory::call(
        &app,
        "POST",
        "/api/v2/user/password",
        Some(crate::dreamfactory::KEY),
        &confirm,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let df = user_id(&app, &admin, "df@example.com").await;
    let trail = trail_of(&app, &admin, &format!("user_id={df}")).await;
    assert_eq!(types(&trail), ["user.signed_up", "user.confirmed"], "{trail:?}");
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn audit_entries_past_their_retention_are_deleted(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| c.audit.retention_days = 30).await;
    let admin = token(&app, None, true).await;
    active_user(&app, "old@example.com", "olduser1", PASSWORD).await;
    app.clock.advance(time::Duration::days(31));
    assert_eq!(app.login("olduser1", PASSWORD).await.status(), 200);
    app.worker.housekeeping().await.unwrap();
    let left = trail_of(&app, &admin, "").await;
    assert_eq!(types(&left), ["login.succeeded"], "{left:?}");
    app.worker.drain().await.unwrap();
}

/// The console's sign-in: its pre-session cookie and CSRF value.
async fn console_pre(app: &TestApp, client: &reqwest::Client) -> (String, String) {
    let r = client.get(app.url("/admin/sign-in")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/admin"),
        "{cookie}"
    );
    let value = cookie.split(';').next().unwrap().to_owned();
    let html = r.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    (value, csrf)
}

#[rstest]
#[tokio::test]
async fn the_console_keeps_its_token_in_a_strict_cookie_and_refuses_forged_forms(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn(db).await;
    active_user(&app, "june@example.com", "junedoe1", PASSWORD).await;
    let id = user_id(&app, &token(&app, None, true).await, "june@example.com").await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let origin = app.url("");

    // Not signed in: every page leads to the sign-in.
    let r = client.get(app.url("/admin/outbox")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/admin/sign-in"));

    // Sign in: only with the form's own CSRF value and a live token.
    let global = token(&app, None, false).await;
    let (pre, csrf) = console_pre(&app, &client).await;
    let post = |cookie: String, form: Vec<(&'static str, String)>, path: &'static str| {
        client
            .post(app.url(path))
            .header("cookie", cookie)
            .header("origin", origin.clone())
            .form(&form)
            .send()
    };
    let r = post(pre.clone(), vec![("token", global.clone()), ("csrf", "forged".into())], "/admin/sign-in")
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = post(pre.clone(), vec![("token", "oadm_wrong".into()), ("csrf", csrf.clone())], "/admin/sign-in")
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = post(pre, vec![("token", global.clone()), ("csrf", csrf)], "/admin/sign-in").await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("onramp_admin=oadm_")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/admin"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();

    // A page, with the CSP of the hosted pages; its forms carry the CSRF value.
    let r = client
        .get(app.url(&format!("/admin/instances/default/users/{id}")))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = r.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let action = format!("/admin/instances/default/users/{id}/disable");
    let disable = |csrf: String, from: &str| {
        client
            .post(app.url(&action))
            .header("cookie", &session)
            .header("origin", from.to_owned())
            .form(&[("csrf", csrf)])
            .send()
    };
    assert_eq!(disable("forged".into(), &origin).await.unwrap().status(), 403, "a forged CSRF value");
    assert_eq!(
        disable(csrf.clone(), "https://evil.example").await.unwrap().status(),
        403,
        "another site's form"
    );
    assert_eq!(app.login("junedoe1", PASSWORD).await.status(), 200, "nothing changed");
    let r = disable(csrf, &origin).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(app.login("junedoe1", PASSWORD).await.status(), 403);

    // A read-only token's console shows no actions and refuses them.
    let reader = token(&app, None, true).await;
    let read_session = format!("onramp_admin={reader}");
    let html = client
        .get(app.url(&format!("/admin/instances/default/users/{id}")))
        .header("cookie", &read_session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("action-enable"), "no action buttons for a read-only token");
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let r = client
        .post(app.url(&format!("/admin/instances/default/users/{id}/enable")))
        .header("cookie", &read_session)
        .header("origin", origin.clone())
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn admin_endpoints_refuse_bad_input_and_unknown_things_in_their_format(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn(db).await;
    let admin = token(&app, None, false).await;
    let other = token(&app, Some("platform"), false).await;
    let base = "/admin/v1/instances/default/apps/app_demo";
    let bad_contract = json!({"fields": [{"name": "email", "type": "email", "pattern": "("}]});
    let (status, body) =
        call(&app, &admin, "PUT", &format!("{base}/contracts/broken"), Some(bad_contract)).await;
    assert_admin_error(status, &body, 422, "validation_failed");
    let (status, body) =
        call(&app, &admin, "PUT", &format!("{base}/contracts/broken"), Some(json!({"fields": "no"}))).await;
    assert_admin_error(status, &body, 400, "malformed_request");
    let (status, body) = call(
        &app,
        &admin,
        "POST",
        "/admin/v1/instances/default/apps/app_nope/keys",
        Some(json!({"label": "x"})),
    )
    .await;
    assert_admin_error(status, &body, 404, "app_not_found");
    let (status, body) =
        call(&app, &admin, "POST", &format!("{base}/keys"), Some(json!({"label": "bad\u{0007}label"}))).await;
    assert_admin_error(status, &body, 422, "validation_failed");
    let (_, key) = call(&app, &admin, "POST", &format!("{base}/keys"), Some(json!({"label": "ok"}))).await;
    let key_id = key["id"].as_str().unwrap();
    let elsewhere = format!("/admin/v1/instances/default/apps/app_other/keys/{key_id}");
    let (status, body) = call(&app, &admin, "DELETE", &elsewhere, None).await;
    assert_admin_error(status, &body, 404, "key_not_found");
    let (status, body) =
        call(&app, &admin, "GET", "/admin/v1/instances/default/apps/app_nope/domains", None).await;
    assert_admin_error(status, &body, 404, "app_not_found");
    let (status, body) = call(&app, &admin, "GET", "/admin/v1/audit?since=yesterday", None).await;
    assert_admin_error(status, &body, 422, "validation_failed");
    let (status, body) = call(&app, &other, "GET", "/admin/v1/instances/default/users/export", None).await;
    assert_admin_error(status, &body, 403, "forbidden");
    let (status, body) = call(&app, &other, "GET", "/admin/v1/audit?instance=default", None).await;
    assert_admin_error(status, &body, 403, "forbidden");
    let r = app
        .client
        .post(app.url("/admin/v1/instances"))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = app
        .client
        .post(app.url("/admin/v1/instances"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(json(r).await["error"]["code"], "malformed_json");

    // A scoped token sees its instance's entries only; the CLI's own actions are in the log.
    let cli = onramp_core::admin::AdminPrincipal::cli();
    app.state.onramp.operator().set_instance_active(&cli, "platform", false).await.unwrap();
    let (_, mine) = call(&app, &other, "GET", "/admin/v1/audit", None).await;
    let entries = mine["items"].as_array().unwrap();
    assert!(!entries.is_empty() && entries.iter().all(|e| e["instance"] == "platform"), "{mine}");
    assert_eq!(entries[0]["type"], "instance.disabled");
    assert_eq!(entries[0]["actor"], "cli");
}
