//! CORS on every surface, as a browser would see it: preflights and real requests from allowed
//! and refused origins, per instance and per surface, on SQLite and PostgreSQL.

use crate::helpers::*;
use onramp::config::{Config, Secret};
use reqwest::Method;
use rstest::rstest;
use serde_json::{Value, json};

const SPA: &str = "https://spa.example.com";
const DF_KEY: &str = "df-browser-api-key-012345";
const PARTNER_KEY: &str = "partner-browser-key-01234";

fn browser_apps(c: &mut Config) {
    let default = &mut c.instances[0];
    default.open_registration = Some(true);
    default.open_reg_role = Some("member".into());
    let app = &mut default.apps[0];
    app.allowed_origins = Some(vec![SPA.into(), "https://*.customers.example".into()]);
    app.api_keys = vec![Secret(DF_KEY.into())];
    let mut partner = app.clone();
    partner.id = "app_partner".into();
    partner.name = "Partner".into();
    partner.signup_url = "https://partner.example/activate".into();
    partner.allowed_origins = Some(vec![]);
    partner.browser_partner_calls = Some(true);
    partner.api_keys = vec![Secret(PARTNER_KEY.into())];
    partner.domains.clear();
    default.apps.push(partner);
    c.fast_track.enabled = true;
    c.fast_track.allowed_origins = vec!["https://www.example.com".into()];
}

/// A preflight as Chromium sends it.
async fn preflight(
    app: &TestApp,
    host: Option<&str>,
    path: &str,
    origin: &str,
    headers: &str,
) -> reqwest::Response {
    let mut r = app
        .client
        .request(Method::OPTIONS, app.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST");
    if !headers.is_empty() {
        r = r.header("Access-Control-Request-Headers", headers);
    }
    if let Some(h) = host {
        r = r.header("Host", h);
    }
    r.send().await.unwrap()
}

fn header<'r>(r: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

fn assert_allowed(r: &reqwest::Response, origin: &str) {
    assert_eq!(r.status(), 200, "{:?}", r.headers());
    assert_eq!(header(r, "access-control-allow-origin"), Some(origin));
    assert!(
        header(r, "vary").is_some_and(|v| v.to_ascii_lowercase().contains("origin")),
        "{:?}",
        r.headers()
    );
}

fn assert_no_cors(r: &reqwest::Response) {
    for name in r.headers().keys() {
        assert!(!name.as_str().starts_with("access-control-"), "{name} on a refused origin");
    }
}

#[rstest]
#[tokio::test]
async fn the_signup_url_origin_may_call_v1_with_no_configuration(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let origin = "http://localhost:3000";
    for path in ["/v1/auth/signup-activation", "/v1/auth/signup", "/v1/auth/login", "/v1/auth/logout"] {
        let r = preflight(&app, None, path, origin, "content-type").await;
        assert_allowed(&r, origin);
        let methods = header(&r, "access-control-allow-methods").unwrap().to_ascii_uppercase();
        assert!(methods.contains("POST"), "{methods}");
        let allowed = header(&r, "access-control-allow-headers").unwrap().to_ascii_lowercase();
        assert!(allowed.contains("content-type") && allowed.contains("authorization"), "{allowed}");
        assert_eq!(header(&r, "access-control-max-age"), Some("600"));
        assert_eq!(header(&r, "access-control-allow-credentials"), None, "no cookies cross origins");
    }
    // The real requests carry the echoed origin too: the page can read the answer.
    let r = app
        .client
        .post(app.url("/v1/auth/signup-activation"))
        .header("Origin", origin)
        .json(&json!({"token": "x".repeat(32)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(origin));
    assert!(
        header(&r, "access-control-expose-headers").unwrap().to_ascii_lowercase().contains("retry-after")
    );
    let r =
        app.client.get(app.url("/v1/apps/app_demo/schema")).header("Origin", origin).send().await.unwrap();
    assert_allowed(&r, origin);
    // Without an Origin (curl, servers) nothing changes.
    let r = app.client.get(app.url("/v1/apps/app_demo/schema")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_no_cors(&r);
}

#[rstest]
#[tokio::test]
async fn an_origin_not_allowed_gets_a_403_preflight_and_no_cors_headers(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, browser_apps).await;
    let evil = "https://evil.example.net";
    for (path, shape) in [
        ("/v1/auth/signup", "v1"),
        ("/v1/apps/app_demo/schema", "v1"),
        ("/api/v2/user/register", "df"),
        ("/api/v2/user/session", "df"),
        ("/fast-track", "envelope"),
        ("/partner/fasteditor/signup", "fasteditor"),
        ("/user/basic", "dialogportal"),
        ("/healthz", "v1"),
    ] {
        let r = preflight(&app, None, path, evil, "content-type").await;
        assert_eq!(r.status(), 403, "{path}");
        assert_no_cors(&r);
        let body: Value = r.json().await.unwrap();
        match shape {
            "v1" => assert_eq!(body["error"]["code"], "origin_not_allowed", "{path}: {body}"),
            "df" => assert_eq!(body["error"]["code"], 403, "{path}: {body}"),
            "envelope" => {
                assert_eq!(
                    (body["success"].as_bool(), body["status_code"].as_u64()),
                    (Some(false), Some(403))
                )
            }
            "fasteditor" => assert_eq!(body["code"], "ORIGIN_NOT_ALLOWED", "{body}"),
            _ => assert_eq!(body["code"], "403", "{body}"),
        }
    }
    // A simple request from there is answered without CORS headers: the browser hides it.
    let r = app.client.get(app.url("/v1/apps/app_demo/schema")).header("Origin", evil).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_no_cors(&r);
    // Look-alikes of allowed origins are other origins.
    for lookalike in [
        "https://spa.example.com.evil.net",
        "http://spa.example.com",
        "https://spa.example.com:8443",
        "https://customers.example",
        "null",
    ] {
        let r = preflight(&app, None, "/v1/auth/signup", lookalike, "content-type").await;
        assert_eq!(r.status(), 403, "{lookalike}");
    }
}

#[rstest]
#[tokio::test]
async fn configured_and_wildcard_origins_may_call_dreamfactory_with_its_headers(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn_with(db, browser_apps).await;
    for origin in [SPA, "https://shop.customers.example", "https://a.b.customers.example"] {
        let r = preflight(
            &app,
            None,
            "/api/v2/user/session",
            origin,
            "content-type,x-dreamfactory-api-key,x-dreamfactory-session-token",
        )
        .await;
        assert_allowed(&r, origin);
        let allowed = header(&r, "access-control-allow-headers").unwrap().to_ascii_lowercase();
        for h in ["content-type", "x-dreamfactory-api-key", "x-dreamfactory-session-token", "authorization"] {
            assert!(allowed.contains(h), "{h} in {allowed}");
        }
        let methods = header(&r, "access-control-allow-methods").unwrap().to_ascii_uppercase();
        assert!(methods.contains("DELETE") && methods.contains("GET"), "{methods}");
    }
    // register?login=true from the SPA, as DreamFactory's React client calls it.
    let r = app
        .client
        .post(app.url("/api/v2/user/register?login=true"))
        .header("Origin", SPA)
        .header("X-DreamFactory-API-Key", DF_KEY)
        .json(&json!({"email": "spa@example.com", "password": "a quiet harbour at dawn"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), Some(SPA));
    let body: Value = r.json().await.unwrap();
    assert!(body["session_token"].is_string(), "{body}");
}

#[rstest]
#[tokio::test]
async fn server_to_server_surfaces_are_closed_to_browsers_unless_an_app_opts_in(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn_with(db, browser_apps).await;
    // The SPA may call /v1 and DreamFactory, not the partner or contract surfaces.
    for path in ["/partner/fasteditor/signup", "/user/basic", "/user"] {
        assert_eq!(preflight(&app, None, path, SPA, "x-api-key").await.status(), 403, "{path}");
        let opted_in = preflight(&app, None, path, "https://partner.example", "x-api-key").await;
        assert_allowed(&opted_in, "https://partner.example");
    }
    // The hosted confirmation page is not a contract endpoint and takes no cross-origin calls.
    assert_eq!(preflight(&app, None, "/user/confirm", "https://partner.example", "").await.status(), 403);
}

#[rstest]
#[tokio::test]
async fn origins_belong_to_their_instance(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, browser_apps).await;
    let acme = "http://acme.localhost:3000"; // acme's app signup_url origin
    let r = preflight(&app, Some("acme.localhost"), "/v1/auth/signup", acme, "content-type").await;
    assert_allowed(&r, acme);
    assert_eq!(preflight(&app, None, "/v1/auth/signup", acme, "content-type").await.status(), 403);
    assert_eq!(preflight(&app, Some("acme.localhost"), "/v1/auth/signup", SPA, "").await.status(), 403);
    // An instance that does not exist allows nobody.
    assert_eq!(preflight(&app, Some("nope.localhost"), "/v1/auth/signup", acme, "").await.status(), 403);
}

#[rstest]
#[tokio::test]
async fn origins_set_at_run_time_are_checked_and_take_effect(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let instance = app.state.onramp.instance("acme").await.unwrap();
    let bad = app
        .state
        .origins
        .set(
            &onramp_core::admin::AdminPrincipal::cli(),
            instance.id,
            "app_acme",
            &["https://x.example/path".into()],
            None,
        )
        .await;
    assert!(bad.is_err());
    let missing = app
        .state
        .origins
        .set(&onramp_core::admin::AdminPrincipal::cli(), instance.id, "app_nope", &[], None)
        .await;
    assert!(matches!(
        missing,
        Err(onramp_core::origin::SetOriginsError::Core(onramp_core::CoreError::AppNotFound))
    ));
    let saved = app
        .state
        .origins
        .set(
            &onramp_core::admin::AdminPrincipal::cli(),
            instance.id,
            "app_acme",
            &["HTTPS://Admin.Acme.Example:443/".into()],
            Some(false),
        )
        .await
        .unwrap();
    assert_eq!(saved, vec!["https://admin.acme.example".to_owned()]);
    let stored = app.state.origins.app(instance.id, "app_acme").await.unwrap();
    assert_eq!(stored.allowed_origins, saved);
    let r = preflight(&app, Some("acme.localhost"), "/v1/auth/login", "https://admin.acme.example", "").await;
    assert_allowed(&r, "https://admin.acme.example");
}

#[rstest]
#[tokio::test]
async fn fast_track_may_be_called_from_its_allowed_origins(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, browser_apps).await;
    let r = preflight(&app, None, "/fast-track", "https://www.example.com", "content-type").await;
    assert_allowed(&r, "https://www.example.com");
    // The dashboard's origins are not the instances' origins.
    assert_eq!(preflight(&app, None, "/v1/auth/signup", "https://www.example.com", "").await.status(), 403);
}

#[test]
fn an_origin_that_is_not_one_stops_the_start() {
    for bad in ["spa.example.com", "https://spa.example.com/app", "*"] {
        let mut c = test_config(std::path::Path::new("/tmp"));
        c.instances[0].apps[0].allowed_origins = Some(vec![bad.into()]);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("allowed_origins"), "{e}");
        let mut c = test_config(std::path::Path::new("/tmp"));
        c.fast_track.allowed_origins = vec![bad.into()];
        assert!(c.validate().unwrap_err().to_string().contains("fast_track.allowed_origins"));
    }
}

#[rstest]
#[tokio::test]
async fn hosted_forms_refuse_posts_from_other_sites(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, browser_apps).await;
    for path in ["/user/confirm", "/user/reset", "/signout"] {
        let r = app
            .client
            .post(app.url(path))
            .header("Origin", "https://evil.example.net")
            .header("Accept-Language", "fr")
            .form(&[("email", "x@example.com"), ("code", "c"), ("new_password", "p")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
        assert_eq!(header(&r, "content-language"), Some("fr"));
        let csp = header(&r, "content-security-policy").unwrap().to_owned();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(r.text().await.unwrap().contains("Ce formulaire ne peut pas"), "{path}");
    }
    // The same form from the page's own host is taken (an unknown address answers like a known one).
    let r = app
        .client
        .post(app.url("/user/reset"))
        .header("Origin", format!("http://{}", app.addr))
        .form(&[("email", "x@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
