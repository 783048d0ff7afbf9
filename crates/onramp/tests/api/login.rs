//! `POST /v1/auth/login`, `POST /v1/auth/logout`, `GET /v1/auth/session`, the JWKS.

use crate::helpers::*;
use base64::Engine;
use rstest::rstest;
use serde_json::json;

async fn logged_in(app: &TestApp) -> (String, serde_json::Value) {
    active_user(app, "login@acmecorp.com", "loginuser", "a fine passphrase").await;
    let r = app.login("loginuser", "a fine passphrase").await;
    assert_eq!(r.status(), 200);
    let body = json(r).await;
    (body["access_token"].as_str().unwrap().to_owned(), body)
}

async fn session_status(app: &TestApp, token: &str, host: Option<&str>) -> u16 {
    let mut req = app.client.get(app.url("/v1/auth/session")).bearer_auth(token);
    if let Some(h) = host {
        req = req.header("host", h);
    }
    req.send().await.unwrap().status().as_u16()
}

#[rstest]
#[tokio::test]
async fn an_active_user_logs_in_by_username_or_email(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let activated = active_user(&app, "both@acmecorp.com", "bothways", "a fine passphrase").await;
    for id in ["bothways", "BothWays", "both@acmecorp.com", " BOTH@AcmeCorp.com "] {
        let r = app.login(id, "a fine passphrase").await;
        assert_eq!(r.status(), 200, "{id}");
        let body = json(r).await;
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        assert_eq!(body["user_id"], activated["user_id"]);
    }
    let r = app
        .post("/v1/auth/login", &json!({ "email": "both@acmecorp.com", "password": "a fine passphrase" }))
        .await;
    assert_eq!(r.status(), 200);
}

#[rstest]
#[tokio::test]
async fn the_session_token_is_an_eddsa_jwt_whose_key_is_in_the_jwks(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let (token, body) = logged_in(&app).await;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[0]).unwrap())
            .unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]).unwrap())
            .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(claims["sub"], body["user_id"]);
    assert_eq!(claims["inst"], "default");
    let jwks = json(app.get("/.well-known/jwks.json").await).await;
    let key =
        jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"]).expect("kid in jwks");
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    // Verify the signature with the published key.
    let decoding = jsonwebtoken::DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["onramp"]);
    validation.validate_exp = false;
    jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).expect("signature verifies");
}

#[rstest]
#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    active_user(&app, "same@acmecorp.com", "sameanswer", "a fine passphrase").await;
    let wrong = app.login("sameanswer", "not the passphrase").await;
    assert_eq!(wrong.status(), 401);
    let unknown = app.login("nobodyhere", "not the passphrase").await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(json(wrong).await, json(unknown).await);
}

#[rstest]
#[tokio::test]
async fn a_pending_user_cannot_log_in(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    app.signup(&signup_body("pending@acmecorp.com")).await;
    let r = app.login("junedoe1", "eomcpmdp2jp2ijvekklmlkm").await;
    assert_eq!(r.status(), 403);
    assert_eq!(json(r).await["error"]["code"], "account_not_activated");
    // and a wrong password for a pending user reveals nothing more than for anyone else
    assert_eq!(app.login("junedoe1", "wrong password here").await.status(), 401);
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn missing_fields_are_named(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let r = app.post("/v1/auth/login", &json!({ "password": "x" })).await;
    assert_eq!(r.status(), 422);
    assert_eq!(json(r).await["error"]["fields"][0]["field"], "username");
    let r = app.post("/v1/auth/login", &json!({ "username": "someone" })).await;
    assert_eq!(r.status(), 422);
    assert_eq!(json(r).await["error"]["fields"][0]["field"], "password");
}

#[rstest]
#[tokio::test]
async fn logout_revokes_the_session_everywhere(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let (token, _) = logged_in(&app).await;
    assert_eq!(session_status(&app, &token, None).await, 200);
    let r = app.client.post(app.url("/v1/auth/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(session_status(&app, &token, None).await, 401);
    let again = app.client.post(app.url("/v1/auth/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(again.status(), 401);
    assert_eq!(json(again).await["error"]["code"], "session_invalid");
}

#[rstest]
#[tokio::test]
async fn requests_without_a_bearer_token_are_refused(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let r = app.client.post(app.url("/v1/auth/logout")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"]["code"], "missing_token");
    assert_eq!(session_status(&app, "not.a.jwt", None).await, 401);
}

#[rstest]
#[tokio::test]
async fn a_session_expires_with_the_clock(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let (token, _) = logged_in(&app).await;
    app.clock.advance(time::Duration::minutes(59));
    assert_eq!(session_status(&app, &token, None).await, 200);
    app.clock.advance(time::Duration::minutes(2));
    assert_eq!(session_status(&app, &token, None).await, 401);
}

#[rstest]
#[tokio::test]
async fn a_session_of_one_instance_is_refused_by_another(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let (token, _) = logged_in(&app).await;
    assert_eq!(session_status(&app, &token, Some("acme.localhost")).await, 401);
    let jwks_default = json(app.get("/.well-known/jwks.json").await).await;
    let jwks_acme = json(
        app.client
            .get(app.url("/.well-known/jwks.json"))
            .header("host", "acme.localhost")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_ne!(jwks_default["keys"][0]["x"], jwks_acme["keys"][0]["x"]);
}

#[rstest]
#[tokio::test]
async fn failed_logins_are_rate_limited_per_identifier(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    active_user(&app, "brute@acmecorp.com", "bruteforce", "a fine passphrase").await;
    for _ in 0..10 {
        assert_eq!(app.login("bruteforce", "guess guess guess").await.status(), 401);
    }
    let r = app.login("bruteforce", "a fine passphrase").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

#[rstest]
#[tokio::test]
async fn a_weaker_stored_hash_is_upgraded_at_login(#[values(SQLITE, POSTGRES)] db: Db) {
    let env = TestEnv::new(db).await;
    let config = env.config();
    let app = TestApp::spawn_in(env, config.clone()).await;
    active_user(&app, "rehash@acmecorp.com", "rehashme", "a fine passphrase").await;
    app.worker.drain().await.unwrap();
    let env = app.into_env();
    let mut stronger = config;
    stronger.hashing.memory_kib = 2048;
    let app = TestApp::spawn_in(env, stronger).await;
    assert_eq!(app.login("rehashme", "a fine passphrase").await.status(), 200);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE password_hash LIKE '$argon2id$v=19$m=2048,%'").await,
        1
    );
    assert_eq!(app.login("rehashme", "a fine passphrase").await.status(), 200);
}

#[rstest]
#[tokio::test]
async fn answers_carrying_tokens_are_never_cached(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let no_store = |r: &reqwest::Response| {
        r.headers().get("cache-control").and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    let r = app.signup(&signup_body("cache@acmecorp.com")).await;
    assert_eq!((r.status().as_u16(), no_store(&r).as_deref()), (200, Some("no-store")));
    let r = app.signup(&json!({})).await;
    assert_eq!((r.status().as_u16(), no_store(&r).as_deref()), (422, Some("no-store")), "errors too");
    app.worker.run_once().await.unwrap();
    let r = app.activate(&token_in(&app.mails_to("cache@acmecorp.com").await.remove(0))).await;
    assert_eq!((r.status().as_u16(), no_store(&r).as_deref()), (200, Some("no-store")));
    let r = app.login("cache@acmecorp.com", "eomcpmdp2jp2ijvekklmlkm").await;
    assert_eq!((r.status().as_u16(), no_store(&r).as_deref()), (200, Some("no-store")));
    let token = json(r).await["access_token"].as_str().unwrap().to_owned();
    let r = app.client.get(app.url("/v1/auth/session")).bearer_auth(&token).send().await.unwrap();
    assert_eq!((r.status().as_u16(), no_store(&r).as_deref()), (200, Some("no-store")));
    // The app schema holds nothing private.
    let r = app.get("/v1/apps/app_demo/schema").await;
    assert_eq!(r.status(), 200);
    assert_ne!(no_store(&r).as_deref(), Some("no-store"));
}
