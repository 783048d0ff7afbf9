//! Health, readiness, metrics, OpenAPI, the app schema, and unknown routes.

use crate::helpers::*;
use rstest::rstest;

#[rstest]
#[tokio::test]
async fn health_and_readiness_answer(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    assert_eq!(json(app.get("/healthz").await).await["status"], "ok");
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["status"], "ready");
}

#[rstest]
#[tokio::test]
async fn metrics_count_requests_signups_and_the_outbox(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    app.signup(&signup_body("m@acmecorp.com")).await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(r#"onramp_http_requests_total{method="POST",route="/v1/auth/signup",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains("onramp_signups_total 1"), "{text}");
    assert!(text.contains("onramp_outbox_pending 1"), "{text}");
    assert!(text.contains("onramp_hash_queue_depth 0"), "{text}");
    app.mails().await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(text.contains("onramp_outbox_pending 0"), "{text}");
    assert!(text.contains("onramp_outbox_delivered_total 1"), "{text}");
}

#[rstest]
#[tokio::test]
async fn the_openapi_document_lists_every_endpoint(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let doc = json(app.get("/openapi.json").await).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/apps/{app_id}/schema",
        "/v1/auth/signup",
        "/v1/auth/signup-activation",
        "/v1/auth/login",
        "/v1/auth/logout",
        "/v1/auth/session",
        "/healthz",
        "/readyz",
        "/metrics",
        "/.well-known/jwks.json",
        "/openapi.json",
        "/fast-track",
        "/api/v2/user/register",
        "/api/v2/user/password",
        "/api/v2/user/session",
        "/partner/fasteditor/signup",
        "/user",
        "/user/{id}",
        "/user/{id}/verify-sms",
        "/user/{id}/resend-sms",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    // One template, two operations: create under a contract, read an account by its dpKey.
    let account = &paths["/user/{id}"];
    assert_eq!(account["post"]["operationId"], "dp_create");
    assert_eq!(account["get"]["operationId"], "dp_account");
    let session = &paths["/api/v2/user/session"];
    assert!(session.get("post").is_some() && session.get("get").is_some() && session.get("delete").is_some());
    assert!(doc["components"]["schemas"]["SignupRequest"]["properties"]["domain_id"].is_object());
}

#[rstest]
#[tokio::test]
async fn the_app_schema_lists_domains_keyed_by_id(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let r = app.get("/v1/apps/app_demo/schema").await;
    assert_eq!(r.status(), 200);
    let schema = json(r).await;
    let d = &schema["domains"][DOMAIN];
    assert_eq!(d["allow_signup"], true);
    assert_eq!(d["title"], "Acme");
    assert_eq!(d["description"], "Acme customers");
    assert_eq!(d["help"], "Pick the domain of your company");
    assert_eq!(schema["domains"][CLOSED_DOMAIN]["allow_signup"], false);
    assert!(schema["version_id"].as_str().unwrap().starts_with("ver_"));

    let r = app.get("/v1/apps/nope/schema").await;
    assert_eq!(r.status(), 404);
    assert_eq!(json(r).await["error"]["code"], "app_not_found");
}

#[rstest]
#[tokio::test]
async fn the_schema_version_changes_with_the_domains_and_only_then(#[values(SQLITE, POSTGRES)] db: Db) {
    let env = TestEnv::new(db).await;
    let config = env.config();
    let app = TestApp::spawn_in(env, config.clone()).await;
    let v1 = json(app.get("/v1/apps/app_demo/schema").await).await["version_id"].clone();
    let env = app.into_env();
    // Same configuration applied again: same version (config is applied idempotently).
    let app = TestApp::spawn_in(env, config.clone()).await;
    assert_eq!(json(app.get("/v1/apps/app_demo/schema").await).await["version_id"], v1);
    let env = app.into_env();
    let mut changed = config;
    changed.instances[0].apps[0].domains[0].title = "Acme Inc".into();
    let app = TestApp::spawn_in(env, changed).await;
    let schema = json(app.get("/v1/apps/app_demo/schema").await).await;
    assert_ne!(schema["version_id"], v1);
    assert_eq!(schema["domains"][DOMAIN]["title"], "Acme Inc");
}

#[rstest]
#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_v1_error_format(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let r = app.get("/v1/nothing").await;
    assert_eq!(r.status(), 404);
    assert_eq!(json(r).await["error"]["code"], "not_found");
    let r = app.get("/v1/auth/signup").await;
    assert_eq!(r.status(), 405);
    assert_eq!(json(r).await["error"]["code"], "method_not_allowed");
}

#[rstest]
#[tokio::test]
async fn a_metrics_token_guards_metrics(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        c.metrics.token = Some(onramp::config::Secret("scrape-token-0123456789".into()))
    })
    .await;
    assert_eq!(app.get("/metrics").await.status(), 401);
    let r = app.client.get(app.url("/metrics")).bearer_auth("scrape-token-0123456789").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("onramp_http_requests"));
    assert_eq!(app.get("/healthz").await.status(), 200, "only /metrics is guarded");
}
