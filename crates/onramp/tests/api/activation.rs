//! `POST /v1/auth/signup-activation`.

use crate::helpers::*;
use rstest::rstest;
use serde_json::json;

async fn signed_up(app: &TestApp, email: &str) -> String {
    assert_eq!(app.signup(&signup_body(email)).await.status(), 200);
    token_in(&app.mails_to(email).await.pop().unwrap())
}

#[rstest]
#[tokio::test]
async fn activation_returns_the_ids_of_the_new_account(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let token = signed_up(&app, "ids@acmecorp.com").await;
    let r = app.activate(&token).await;
    assert_eq!(r.status(), 200);
    let body = json(r).await;
    let schema = json(app.get("/v1/apps/app_demo/schema").await).await;
    assert!(body["account_id"].as_str().unwrap().starts_with("act_"), "{body}");
    assert!(body["user_id"].as_str().unwrap().starts_with("usr_"), "{body}");
    assert_eq!(body["domain_id"], DOMAIN);
    assert_eq!(body["version_id"], schema["version_id"]);
    assert_eq!(body.as_object().unwrap().len(), 4);
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE status = 'active'").await, 1);
}

#[rstest]
#[tokio::test]
async fn a_token_works_once(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let token = signed_up(&app, "once@acmecorp.com").await;
    assert_eq!(app.activate(&token).await.status(), 200);
    let r = app.activate(&token).await;
    assert_eq!(r.status(), 409);
    assert_eq!(json(r).await["error"]["code"], "token_already_used");
}

#[rstest]
#[tokio::test]
async fn unknown_empty_and_oversized_tokens_get_clear_errors(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let r = app.activate("co84fjo3irho2eihcf37hfou").await;
    assert_eq!(r.status(), 404);
    assert_eq!(json(r).await["error"]["code"], "token_not_found");

    let r = app.activate("").await;
    assert_eq!(r.status(), 422);
    assert_eq!(json(r).await["error"]["fields"][0]["field"], "token");

    let r = app.post("/v1/auth/signup-activation", &json!({})).await;
    assert_eq!(r.status(), 422);

    assert_eq!(app.activate(&"x".repeat(5000)).await.status(), 404);
}

#[rstest]
#[tokio::test]
async fn a_token_expires_after_24_hours(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let token = signed_up(&app, "late@acmecorp.com").await;
    app.clock.advance(time::Duration::hours(24) + time::Duration::seconds(1));
    let r = app.activate(&token).await;
    assert_eq!(r.status(), 410);
    assert_eq!(json(r).await["error"]["code"], "token_expired");
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE status = 'pending'").await, 1);
}

#[rstest]
#[tokio::test]
async fn a_token_still_works_just_before_it_expires(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let token = signed_up(&app, "intime@acmecorp.com").await;
    app.clock.advance(time::Duration::hours(24) - time::Duration::seconds(1));
    assert_eq!(app.activate(&token).await.status(), 200);
}

#[rstest]
#[tokio::test]
async fn the_expiry_is_configurable(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| c.tokens.activation_ttl_hours = 1).await;
    let token = signed_up(&app, "short@acmecorp.com").await;
    app.clock.advance(time::Duration::minutes(61));
    assert_eq!(app.activate(&token).await.status(), 410);
}

#[rstest]
#[tokio::test]
async fn twenty_concurrent_redemptions_of_one_token_give_one_success(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let token = signed_up(&app, "twenty@acmecorp.com").await;
    let tasks = (0..20)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/v1/auth/signup-activation");
            let token = token.clone();
            tokio::spawn(async move {
                client.post(url).json(&json!({ "token": token })).send().await.unwrap().status().as_u16()
            })
        })
        .collect::<Vec<_>>();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "{statuses:?}");
}

#[rstest]
#[tokio::test]
async fn the_database_never_holds_an_emailed_secret(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let body = with(signup_body("dump@acmecorp.com"), json!({ "password": null }));
    let token = json(app.signup(&body).await).await["token"].as_str().unwrap().to_owned();
    // Before delivery: the sealed outbox payload hides the token and generated password.
    let dump = app.database_dump();
    let mail = app.mails_to("dump@acmecorp.com").await.pop().unwrap();
    let password = line_value(&mail, "Password").unwrap();
    assert!(dump.len() > 1000, "the dump holds the data");
    for secret in [&token, &password] {
        assert!(!dump.windows(secret.len()).any(|w| w == secret.as_bytes()), "secret found in the database");
    }
    // After delivery the sealed payload itself is gone.
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE payload IS NOT NULL").await, 0);
}
