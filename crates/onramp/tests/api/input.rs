//! What no surface can store is refused at the door, in each surface's own format, on both
//! stores: NUL in a path, a query, a JSON or form body; two `Host` headers; text-direction
//! controls in names that reach a mail; a FastTrack phone that is no phone number.

use crate::helpers::*;
use crate::{contracts, dreamfactory, fast_track, partner};
use rstest::rstest;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NUL: &str = "Jo\u{0}hn";
const RLO: &str = "Jo\u{202E}nhoJ";

async fn send(app: &TestApp, path: &str, key: Option<(&str, &str)>, body: &Value) -> (u16, Value) {
    let mut r = app.client.post(app.url(path)).json(body);
    if let Some((name, value)) = key {
        r = r.header(name, value);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn users(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM users").await
}

#[rstest]
#[tokio::test]
async fn nul_in_a_body_is_a_400_in_each_surfaces_format_and_nothing_is_written(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    // /v1: its error object with a stable code.
    let app = TestApp::spawn(db).await;
    for body in [
        with(signup_body("nul@acmecorp.com"), json!({ "name": NUL })),
        with(signup_body("nul@acmecorp.com"), json!({ "account_title": NUL })),
        json!({ "token": "abc\u{0}def" }),
    ] {
        let path = if body.get("token").is_some() { "/v1/auth/signup-activation" } else { "/v1/auth/signup" };
        let (status, error) = send(&app, path, None, &body).await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["error"]["code"], "invalid_characters", "{error}");
    }
    let (status, error) =
        send(&app, "/v1/auth/login", None, &json!({"username": NUL, "password": "x"})).await;
    assert_eq!((status, error["error"]["code"].as_str()), (400, Some("invalid_characters")));
    assert_eq!(users(&app).await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox").await, 0);

    // DreamFactory: {"error": {"code": 400, ...}}.
    let app = TestApp::spawn_with(db, dreamfactory::open(false)).await;
    let key = Some(("X-DreamFactory-API-Key", dreamfactory::KEY));
    for (path, body) in [
        (
            "/api/v2/user/register",
            json!({"email": "x@example.com", "password": "a fine passphrase", "first_name": NUL}),
        ),
        ("/api/v2/user/session", json!({"email": "x\u{0}@example.com", "password": "a fine passphrase"})),
        (
            "/api/v2/user/password",
            json!({"email": "x@example.com", "code": NUL, "new_password": "a fine passphrase"}),
        ),
    ] {
        let (status, error) = send(&app, path, key, &body).await;
        assert_eq!((status, &error["error"]["code"]), (400, &json!(400)), "{path}: {error}");
    }
    assert_eq!(users(&app).await, 0);

    // FastEditor: {message, code}.
    let app = TestApp::spawn_with(db, partner::partners).await;
    let body = json!({"userName": "p@login.com", "password": "a fine passphrase", "firstName": NUL, "lastName": "Doe", "language": "en"});
    let (status, error) =
        send(&app, "/partner/fasteditor/signup", Some(("X-Api-Key", partner::KEY)), &body).await;
    assert_eq!((status, error["code"].as_str()), (400, Some("INVALID_REQUEST")), "{error}");
    assert_eq!(users(&app).await, 0);

    // dialogportal: its error body.
    let app = TestApp::spawn_with(db, contracts::contracts).await;
    let body = json!({"name": NUL, "email": "d@mailserver.com", "password": "a quiet harbour at dawn"});
    let (status, error) = send(&app, "/user/basic", Some(("X-Api-Key", contracts::KEY)), &body).await;
    assert_eq!(status, 400, "{error}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("NUL")), "{error}");
    assert_eq!(users(&app).await, 0);

    // FastTrack: the console envelope, for JSON and for a form.
    let app = TestApp::spawn_with(db, fast_track::enable).await;
    let instances = "SELECT COUNT(*) FROM instances";
    let before = app.count(instances).await;
    let (status, envelope) = send(
        &app,
        "/fast-track",
        None,
        &with(fast_track::payload("f@example.com"), json!({"first-name": NUL})),
    )
    .await;
    assert_eq!(
        (status, envelope["success"].as_bool(), &envelope["status_code"]),
        (400, Some(false), &json!(400)),
        "{envelope}"
    );
    let r = app
        .client
        .post(app.url("/fast-track"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=f%40example.com&first-name=Jo%00hn&last-name=Doe&password=a+fine+passphrase")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(app.count(instances).await, before);
}

#[rstest]
#[tokio::test]
async fn nul_in_a_path_is_a_404_and_in_a_query_a_400(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, contracts::contracts).await;
    let r = app.get("/v1/apps/app%00demo/schema").await;
    assert_eq!(r.status(), 404);
    assert_eq!(json(r).await["error"]["code"], "not_found");
    let r =
        app.client.get(app.url("/user/basic%00/1")).header("X-Api-Key", contracts::KEY).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = app
        .client
        .post(app.url("/user/ba%00sic"))
        .header("X-Api-Key", contracts::KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app.get("/signup?app=app_demo%00").await;
    assert_eq!(r.status(), 400);
    let r =
        app.client.post(app.url("/api/v2/user/session?api_key=%00")).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"]["code"], 400);
    // Still serving.
    assert_eq!(app.get("/v1/apps/app_demo/schema").await.status(), 200);
}

#[rstest]
#[tokio::test]
async fn two_host_headers_are_a_400(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = "GET /v1/apps/app_demo/schema HTTP/1.1\r\nHost: localhost\r\nHost: evil.localhost\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("ambiguous_host"), "{answer}");
}

#[rstest]
#[tokio::test]
async fn text_direction_controls_are_refused_in_names_that_reach_a_mail(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    for field in ["name", "account_title"] {
        let (status, error) = send(
            &app,
            "/v1/auth/signup",
            None,
            &with(signup_body("rlo@acmecorp.com"), json!({ field: RLO })),
        )
        .await;
        assert_eq!(status, 422, "{error}");
        assert_eq!(error["error"]["fields"][0]["code"], "invalid_characters", "{error}");
    }
    let app = TestApp::spawn_with(db, dreamfactory::open(false)).await;
    let body = json!({"email": "x@example.com", "password": "a fine passphrase", "last_name": RLO});
    let (status, _) =
        send(&app, "/api/v2/user/register", Some(("X-DreamFactory-API-Key", dreamfactory::KEY)), &body).await;
    assert_eq!(status, 400);
    let app = TestApp::spawn_with(db, partner::partners).await;
    let body = json!({"userName": "p@login.com", "password": "a fine passphrase", "firstName": RLO, "lastName": "Doe", "language": "en"});
    let (status, error) =
        send(&app, "/partner/fasteditor/signup", Some(("X-Api-Key", partner::KEY)), &body).await;
    assert_eq!((status, error["code"].as_str()), (400, Some("INVALID_NAME")), "{error}");
    let app = TestApp::spawn_with(db, fast_track::enable).await;
    let before = users(&app).await;
    for (field, value) in
        [("nickname", RLO), ("company", RLO), ("phone", "call me maybe"), ("phone", "+1 555")]
    {
        let (status, envelope) = send(
            &app,
            "/fast-track",
            None,
            &with(fast_track::payload("f@example.com"), json!({ field: value })),
        )
        .await;
        assert_eq!(status, 400, "{field}: {envelope}");
    }
    // A real number is taken.
    let (status, envelope) = send(
        &app,
        "/fast-track",
        None,
        &with(fast_track::payload("f@example.com"), json!({"phone": "+31 20 123 4567"})),
    )
    .await;
    assert_eq!(status, 200, "{envelope}");
    assert!(users(&app).await > before);
    app.worker.drain().await.unwrap();
}
