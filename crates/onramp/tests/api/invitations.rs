//! Invitations over a real socket: an app (its API key) or an operator (admin token) invites an
//! address, the invitee joins through the mailed link on the hosted page, links expire, are
//! resent and revoked; invite-only signup refuses every surface without an invitation.

use crate::helpers::*;
use onramp::config::{Config, Secret};
use rstest::rstest;
use serde_json::{Value, json};

const KEY: &str = "invitations-app-key-0001";
const OTHER_KEY: &str = "invitations-other-key-02";
const PASSWORD: &str = "a quiet harbour at dawn";

fn keys(c: &mut Config) {
    c.instances[0].apps[0].api_keys = vec![Secret(KEY.into())];
    let mut other = c.instances[0].apps[0].clone();
    other.id = "app_other".into();
    other.name = "Other".into();
    other.domains.clear();
    other.api_keys = vec![Secret(OTHER_KEY.into())];
    other.partner_signup_path = "/partners/other/signup".into();
    c.instances[0].apps.push(other);
}

async fn v1(app: &TestApp, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = app.client.request(method, app.url(path));
    if let Some(k) = key {
        r = r.header("X-API-Key", k);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn assert_v1_error(status: u16, body: &Value, expected: u16, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["status"], expected, "{body}");
}

/// The link of the newest invitation mail to `to`.
async fn invitation_link(app: &TestApp, to: &str) -> String {
    let mail = app.mails_to(to).await.pop().unwrap_or_else(|| panic!("no mail to {to}"));
    assert!(mail.subject.contains("invited"), "{}", mail.subject);
    let link = mail.text.lines().find(|l| l.contains("/invitation?token=")).unwrap().trim().to_owned();
    assert!(mail.html.contains("Accept invitation"), "a button");
    link
}

/// Open the link as a browser would (its host names the instance); the page's status and text.
async fn open(app: &TestApp, link: &str) -> (u16, String) {
    let url = url::Url::parse(link).unwrap();
    let r = app
        .browser()
        .get(format!("http://127.0.0.1:{}{}?{}", app.addr.port(), url.path(), url.query().unwrap()))
        .header("host", url.host_str().unwrap())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn accept(app: &TestApp, link: &str, name: &str, password: &str) -> (u16, String) {
    let url = url::Url::parse(link).unwrap();
    let token = url.query_pairs().find(|(k, _)| k == "token").unwrap().1.into_owned();
    let r = app
        .client
        .post(app.url("/invitation"))
        .form(&[("token", token.as_str()), ("name", name), ("password", password)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[rstest]
#[tokio::test]
async fn an_app_invites_and_the_invitee_joins_through_the_mailed_link(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, keys).await;
    let (status, created) = v1(
        &app,
        "POST",
        "/v1/invitations",
        Some(KEY),
        Some(json!({"email": "Ivy@Example.com", "role": "editor"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["app_id"], "app_demo");
    assert_eq!(created["invited_by"], "app:app_demo");
    assert_eq!(created["expires_at"], "2026-03-08T12:00:00Z", "7 days by default");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("inv_"));
    assert!(!created.to_string().contains("token"), "the link is the invitee's alone");

    let link = invitation_link(&app, "Ivy@Example.com").await;
    let token = link.rsplit("token=").next().unwrap().to_owned();
    assert!(token.len() >= 26, "at least 128 bits: {token}");
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM invitations WHERE secret_hash = '{token}'")).await,
        0,
        "stored hashed"
    );
    let (status, page) = open(&app, &link).await;
    assert_eq!(status, 200);
    assert!(page.contains("value=\"Ivy@Example.com\" readonly"), "pre-filled with the invited address");
    // Mistakes are shown on the form; nothing is created.
    let (status, page) = accept(&app, &link, "", "password").await;
    assert_eq!(status, 400);
    assert!(page.contains("Please fill this in.") && page.contains("too common"), "{page}");
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE email_canonical = 'ivy@example.com'").await, 0);
    let (status, page) = accept(&app, &link, "Ivy Invited", PASSWORD).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Your account is ready"));
    // Active at once, in the app, with the role; the password signs in.
    assert_eq!(
        app.text("SELECT status FROM users WHERE email_canonical = 'ivy@example.com'").await,
        "active"
    );
    assert_eq!(
        app.text("SELECT app_id FROM users WHERE email_canonical = 'ivy@example.com'").await,
        "app_demo"
    );
    assert_eq!(
        app.text("SELECT r.role FROM user_roles r JOIN users u ON u.id = r.user_id WHERE u.email_canonical = 'ivy@example.com'").await,
        "editor"
    );
    assert_eq!(app.login("ivy@example.com", PASSWORD).await.status(), 200);
    // Once only.
    let (status, page) = open(&app, &link).await;
    assert_eq!(status, 409);
    assert!(page.contains("This invitation was used"));
    let (status, shown) = v1(&app, "GET", &format!("/v1/invitations/{id}"), Some(KEY), None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["status"], "accepted");
    assert!(shown["user_id"].as_str().is_some_and(|u| u.starts_with("usr_")));
    let trail = app
        .count("SELECT COUNT(*) FROM audit_log WHERE type IN ('invitation.created', 'user.signed_up')")
        .await;
    assert_eq!(trail, 2);
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn links_expire_and_are_resent_and_revoked(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, keys).await;
    let invite = |email: &'static str, expires_in: Option<i64>| {
        v1(
            &app,
            "POST",
            "/v1/invitations",
            Some(KEY),
            Some(json!({"email": email, "expires_in": expires_in})),
        )
    };
    let (_, late) = invite("late@example.com", Some(3600)).await;
    let late_id = late["id"].as_str().unwrap().to_owned();
    let first = invitation_link(&app, "late@example.com").await;
    app.clock.advance(time::Duration::hours(2));
    let (status, page) = open(&app, &first).await;
    assert_eq!(status, 410, "{page}");
    let (_, listed) = v1(&app, "GET", "/v1/invitations?email=late@example.com", Some(KEY), None).await;
    assert_eq!(listed["items"][0]["status"], "expired");
    // Resent: a new link for seven days; the old one works no more.
    let (status, resent) =
        v1(&app, "POST", &format!("/v1/invitations/{late_id}/resend"), Some(KEY), None).await;
    assert_eq!(status, 200, "{resent}");
    assert_eq!(resent["status"], "pending");
    let second = invitation_link(&app, "late@example.com").await;
    assert_ne!(first, second);
    assert_eq!(open(&app, &first).await.0, 400);
    assert_eq!(open(&app, &second).await.0, 200);
    // Another app's key sees none of it.
    assert_v1_error_of(
        v1(&app, "GET", &format!("/v1/invitations/{late_id}"), Some(OTHER_KEY), None).await,
        404,
        "invitation_not_found",
    );
    let (_, others) = v1(&app, "GET", "/v1/invitations", Some(OTHER_KEY), None).await;
    assert_eq!(others["items"], json!([]));
    assert_v1_error_of(
        v1(&app, "DELETE", &format!("/v1/invitations/{late_id}"), Some(OTHER_KEY), None).await,
        404,
        "invitation_not_found",
    );
    // Revoked: the link is dead, a second revoke is a conflict.
    let (status, revoked) = v1(&app, "DELETE", &format!("/v1/invitations/{late_id}"), Some(KEY), None).await;
    assert_eq!((status, revoked["status"].clone()), (200, json!("revoked")));
    assert_eq!(open(&app, &second).await.0, 400);
    assert_v1_error_of(
        v1(&app, "DELETE", &format!("/v1/invitations/{late_id}"), Some(KEY), None).await,
        409,
        "wrong_state",
    );
    assert_v1_error_of(
        v1(&app, "POST", &format!("/v1/invitations/{late_id}/resend"), Some(KEY), None).await,
        409,
        "wrong_state",
    );
    // A new invitation of the same address replaces a pending one.
    invite("twice@example.com", None).await;
    let (_, again) = invite("twice@example.com", None).await;
    let (_, both) = v1(&app, "GET", "/v1/invitations?email=twice@example.com", Some(KEY), None).await;
    assert_eq!(both["items"][0]["id"], again["id"]);
    assert_eq!(both["items"][0]["status"], "pending");
    assert_eq!(both["items"][1]["status"], "revoked");
    app.worker.drain().await.unwrap();
}

fn assert_v1_error_of((status, body): (u16, Value), expected: u16, code: &str) {
    assert_v1_error(status, &body, expected, code);
}

#[rstest]
#[tokio::test]
async fn the_invitations_api_refuses_bad_calls_in_its_format(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, keys).await;
    let post = |key: Option<&'static str>, body: Value| v1(&app, "POST", "/v1/invitations", key, Some(body));
    assert_v1_error_of(post(None, json!({"email": "a@example.com"})).await, 401, "invalid_api_key");
    assert_v1_error_of(
        post(Some("not-a-key"), json!({"email": "a@example.com"})).await,
        401,
        "invalid_api_key",
    );
    let (status, body) =
        post(Some(KEY), json!({"email": "nope", "role": "has space", "expires_in": 10})).await;
    assert_v1_error(status, &body, 422, "validation_failed");
    let fields: Vec<&str> =
        body["error"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["email", "role", "expires_in"]);
    assert_v1_error_of(
        post(Some(KEY), json!({"email": "a@example.com", "app_id": "app_other"})).await,
        422,
        "validation_failed",
    );
    assert_v1_error_of(
        post(Some(KEY), json!({"email": "a@example.com", "surprise": 1})).await,
        400,
        "malformed_request",
    );
    let r = app
        .client
        .post(app.url("/v1/invitations"))
        .header("X-API-Key", KEY)
        .body("email=a")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_v1_error_of(
        v1(&app, "GET", "/v1/invitations?limit=0", Some(KEY), None).await,
        422,
        "validation_failed",
    );
    assert_v1_error_of(
        v1(&app, "GET", "/v1/invitations?limit=x", Some(KEY), None).await,
        400,
        "malformed_request",
    );
    assert_v1_error_of(
        v1(&app, "GET", "/v1/invitations/inv_nothing", Some(KEY), None).await,
        404,
        "invitation_not_found",
    );
    // A page, even of the app's own origin, may not call it (it takes an app key): its
    // preflight is refused, where the signup endpoint's is allowed.
    let preflight = |path: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("Origin", "http://localhost:3000")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type, x-api-key")
            .send()
    };
    let r = preflight("/v1/invitations").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    assert_eq!(preflight("/v1/auth/signup").await.unwrap().status(), 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM invitations").await, 0, "nothing was written");
}

#[rstest]
#[tokio::test]
async fn operators_invite_through_the_admin_api_within_their_tokens_scope(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn_with(db, keys).await;
    let admin = crate::admin::token(&app, None, false).await;
    let read_only = crate::admin::token(&app, None, true).await;
    let acme = crate::admin::token(&app, Some("acme"), false).await;
    let base = "/admin/v1/instances/default/invitations";
    let body = json!({"email": "op@example.com", "app_id": "app_other", "role": "member"});
    let (status, created) = crate::admin::call(&app, &admin, "POST", base, Some(body.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert!(created["invited_by"].as_str().unwrap().starts_with("admin:adm_"));
    assert_eq!(crate::admin::call(&app, &read_only, "POST", base, Some(body.clone())).await.0, 403);
    assert_eq!(crate::admin::call(&app, &acme, "GET", base, None).await.0, 403);
    let (status, bad) = crate::admin::call(
        &app,
        &admin,
        "POST",
        base,
        Some(json!({"email": "x@example.com", "app_id": "app_none"})),
    )
    .await;
    assert_eq!((status, bad["error"]["fields"][0]["code"].clone()), (422, json!("unknown_app")));
    let (status, listed) = crate::admin::call(&app, &read_only, "GET", base, None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let id = created["id"].as_str().unwrap();
    let (status, resent) =
        crate::admin::call(&app, &admin, "POST", &format!("{base}/{id}/resend"), None).await;
    assert_eq!((status, resent["status"].clone()), (200, json!("pending")));
    let link = invitation_link(&app, "op@example.com").await;
    let (status, _) = crate::admin::call(&app, &admin, "DELETE", &format!("{base}/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(open(&app, &link).await.0, 400);
    let (status, gone) = crate::admin::call(&app, &admin, "DELETE", &format!("{base}/inv_none"), None).await;
    assert_eq!((status, gone["error"]["code"].clone()), (404, json!("invitation_not_found")));
    let kinds = app.count("SELECT COUNT(*) FROM audit_log WHERE type IN ('invitation.created', 'invitation.resent', 'invitation.revoked')").await;
    assert_eq!(kinds, 3);
    app.worker.drain().await.unwrap();
}

/// Invite-only: every surface refuses an address without a live invitation, in its own format,
/// and takes it once invited.
#[rstest]
#[tokio::test]
async fn invite_only_signup_refuses_every_surface_without_an_invitation(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c: &mut Config| {
        crate::dreamfactory::open(false)(c);
        crate::contracts::contracts(c);
        crate::fast_track::enable(c);
        c.instances[0].apps[0].api_keys = vec![
            Secret(crate::dreamfactory::KEY.into()),
            Secret(crate::partner::KEY.into()),
            Secret(crate::contracts::KEY.into()),
        ];
        c.signup.invite_only = Some(true);
        c.rate_limits.enabled = false;
    })
    .await;
    let before = app.count("SELECT COUNT(*) FROM users").await;
    let signups = |email: String| {
        let app = &app;
        async move {
            let v1 = app.signup(&with(signup_body(&format!("v1-{email}")), json!({"username": null}))).await;
            let df = crate::dreamfactory::call(
                app,
                "POST",
                "/api/v2/user/register",
                Some(crate::dreamfactory::KEY),
                &json!({"email": format!("df-{email}"), "password": PASSWORD}),
            )
            .await;
            let fe = app
                .client
                .post(app.url("/partner/fasteditor/signup"))
                .header("X-Api-Key", crate::partner::KEY)
                .json(&json!({"userName": format!("fe-{email}"), "password": PASSWORD, "firstName": "F", "lastName": "E", "language": "en"}))
                .send()
                .await
                .unwrap();
            let (fe_status, fe_body) = (fe.status().as_u16(), fe.json::<Value>().await.unwrap());
            let dp = crate::contracts::create(
                app,
                "/user",
                &json!({"name": "D P", "email": format!("dp-{email}"), "password": PASSWORD}),
            )
            .await;
            let v1_status = v1.status().as_u16();
            [(v1_status, json(v1).await), df, (fe_status, fe_body), dp]
        }
    };
    let [v1, df, fe, dp] = signups("nobody@example.com".into()).await;
    assert_v1_error(v1.0, &v1.1, 403, "invitation_required");
    assert_eq!((df.0, df.1["error"]["code"].clone()), (403, json!(403)));
    assert!(df.1["error"]["message"].as_str().unwrap().contains("invitation"));
    assert_eq!((fe.0, fe.1["code"].clone()), (403, json!("INVITATION_REQUIRED")));
    assert_eq!(dp.0, 403, "{}", dp.1);
    let (status, body) =
        crate::fast_track::fast_track(&app, &crate::fast_track::payload("ft@example.com")).await;
    assert_eq!((status, body["error"]["code"].clone()), (403, json!(403)));
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, before, "nothing was written");

    // Invited (by the operator, to the app), each address signs up on its surface.
    let admin = crate::admin::token(&app, None, false).await;
    for prefix in ["v1", "df", "fe", "dp"] {
        let body = json!({"email": format!("{prefix}-invited@example.com"), "app_id": "app_demo"});
        let (status, _) =
            crate::admin::call(&app, &admin, "POST", "/admin/v1/instances/default/invitations", Some(body))
                .await;
        assert_eq!(status, 201);
    }
    let [v1, df, fe, dp] = signups("invited@example.com".into()).await;
    assert_eq!(v1.0, 200, "{}", v1.1);
    assert_eq!(df.0, 200, "{}", df.1);
    assert_eq!(fe.0, 201, "{}", fe.1);
    assert_eq!(dp.0, 201, "{}", dp.1);
    app.worker.drain().await.unwrap();
}
