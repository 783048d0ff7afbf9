//! FastTrack's account claim (issue 11, item 1): the address a FastTrack names gets a mail whose
//! links say "this was me" or "this was not me". Until one is answered the dashboard user is
//! `unconfirmed`: it cannot reset its password, its owner may release the address at once
//! (instance disabled, sessions revoked, the address free to FastTrack again), and it is
//! released by itself after `fast_track.confirm_within_hours`. Over a real socket, with the
//! real outbox and an injected clock, on SQLite and PostgreSQL.

use crate::fast_track::{enable, payload};
use crate::helpers::*;
use rstest::rstest;
use serde_json::Value;

const NEW_PASSWORD: &str = "a-brand-new-passphrase-42";

async fn fast_track(app: &TestApp, email: &str) -> Value {
    let r = app.post("/fast-track", &payload(email)).await;
    assert_eq!(r.status(), 200, "FastTrack of {email}");
    json(r).await
}

/// The confirmation mail to `email`, and its two links.
async fn claim_mail(app: &TestApp, email: &str) -> (Mail, String, String) {
    app.worker.drain().await.unwrap();
    let mail = app.mails_to(email).await.pop().expect("a confirmation mail");
    let find = |path: &str| {
        mail.text
            .split_whitespace()
            .find(|w| w.contains(path))
            .unwrap_or_else(|| panic!("no {path} link in\n{}", mail.text))
            .to_owned()
    };
    let (confirm, release) = (find("/fast-track/confirm?token="), find("/fast-track/release?token="));
    (mail, confirm, release)
}

fn token_of(link: &str) -> String {
    let url = url::Url::parse(link).unwrap();
    url.query_pairs().find(|(k, _)| k == "token").map(|(_, v)| v.into_owned()).unwrap()
}

/// Press the page's button: a form post of the link's token to the page's own path.
async fn press(app: &TestApp, link: &str, origin: Option<&str>) -> reqwest::Response {
    let path = url::Url::parse(link).unwrap().path().to_owned();
    let mut post = app.browser().post(app.url(&path)).form(&[("token", token_of(link))]);
    if let Some(origin) = origin {
        post = post.header("origin", origin);
    }
    post.send().await.unwrap()
}

async fn owner_status(app: &TestApp, email: &str) -> String {
    app.text(&format!(
        "SELECT u.status FROM users u JOIN instances i ON i.id = u.instance_id
         WHERE i.name = 'platform' AND u.email_canonical = '{email}'"
    ))
    .await
}

async fn instance_status(app: &TestApp, name: &str) -> String {
    app.text(&format!("SELECT status FROM instances WHERE name = '{name}'")).await
}

/// The instance admin's session, from following the FastTrack's guid like a browser.
async fn signed_in(app: &TestApp, body: &Value) -> (reqwest::Client, String) {
    let location = body["response"]["redirect"]["location"].as_str().unwrap().to_owned();
    let browser = app.browser();
    let landed = browser.get(&location).send().await.unwrap();
    assert_eq!(landed.status(), 200);
    (browser, landed.url().to_string())
}

/// Ask the platform's hosted reset page for a code for `email`.
async fn request_reset(app: &TestApp, email: &str) {
    let page = format!("http://platform.localhost:{}/user/reset", app.addr.port());
    let r = app.browser().post(&page).form(&[("email", email)]).send().await.unwrap();
    assert_eq!(r.status(), 200, "the reset page answers the same whoever asks");
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn the_owner_of_an_address_releases_a_fast_track_someone_else_made_with_it(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn_with(db, enable).await;
    // The attacker FastTracks with the CEO's address and its own password, and is in.
    let made = fast_track(&app, "ceo@bigcorp.example").await;
    assert_eq!(made["response"]["instance-id"], "ceo");
    let (attacker, welcome) = signed_in(&app, &made).await;
    assert_eq!(owner_status(&app, "ceo@bigcorp.example").await, "unconfirmed");

    // The CEO's mailbox gets the mail, in the platform's branding, with both links.
    let (mail, confirm, release) = claim_mail(&app, "ceo@bigcorp.example").await;
    assert!(mail.subject.contains("ceo"), "{}", mail.subject);
    let port = app.addr.port();
    assert!(release.starts_with(&format!("http://localhost:{port}/fast-track/release?token=")), "{release}");
    assert_eq!(token_of(&confirm), token_of(&release), "one claim, two answers");
    assert!(mail.html.contains("Release my address") && mail.html.contains("Yes, it was me"));
    // Until then the address is taken, and a reset sends nothing: the mail is the way in.
    assert_eq!(app.post("/fast-track", &payload("ceo@bigcorp.example")).await.status(), 409);
    request_reset(&app, "ceo@bigcorp.example").await;
    assert_eq!(app.mails_to("ceo@bigcorp.example").await.len(), 1, "no reset mail while unconfirmed");

    // A mail scanner opens the link: a page with a button, and nothing changes.
    for _ in 0..2 {
        let page = app.browser().get(&release).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["cache-control"], "no-store");
        let html = page.text().await.unwrap();
        assert!(html.contains("Release my address") && html.contains(">ceo<"), "{html}");
        assert!(html.contains("method=\"post\"") && html.contains("ceo@bigcorp.example"), "{html}");
    }
    assert_eq!(instance_status(&app, "ceo").await, "active");
    // Another site cannot press the button for the owner.
    let forged = press(&app, &release, Some("https://evil.example")).await;
    assert_eq!(forged.status(), 403);
    assert_eq!(instance_status(&app, "ceo").await, "active");

    // The owner presses it: the instance is off, the attacker signed out, the address free.
    let r = press(&app, &release, None).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Address released") && html.contains("ceo@bigcorp.example"), "{html}");
    assert_eq!(instance_status(&app, "ceo").await, "disabled");
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE email_canonical = 'ceo@bigcorp.example' AND instance_id = (SELECT id FROM instances WHERE name = 'platform')").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions s JOIN instances i ON i.id = s.instance_id WHERE i.name = 'ceo' AND s.revoked_at IS NULL").await,
        0,
        "every session in the instance is revoked"
    );
    assert_eq!(
        attacker.get(&welcome).send().await.unwrap().status(),
        404,
        "the instance is gone for its users"
    );
    let login = serde_json::json!({"email": "ceo@bigcorp.example", "password": "gratePassW0rd!-but-longer"});
    assert_eq!(app.post_to("ceo", "/v1/auth/login", &login).await.status(), 404);
    assert_eq!(app.state.metrics.fast_tracks_released.get(), 1);

    // Both links are spent; the owner FastTracks with the address, and confirms it.
    assert_eq!(press(&app, &release, None).await.status(), 400);
    assert_eq!(press(&app, &confirm, None).await.status(), 400);
    let own = fast_track(&app, "ceo@bigcorp.example").await;
    assert_eq!(own["response"]["instance-id"], "ceo-2");
    let (_, confirm, _) = claim_mail(&app, "ceo@bigcorp.example").await;
    assert_eq!(press(&app, &confirm, None).await.status(), 200);
    assert_eq!(owner_status(&app, "ceo@bigcorp.example").await, "active");
    assert_eq!(instance_status(&app, "ceo-2").await, "active");
}

#[rstest]
#[tokio::test]
async fn a_confirmed_owner_keeps_its_instance_and_can_reset_its_password(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, enable).await;
    fast_track(&app, "joe@example.com").await;
    let (_, confirm, release) = claim_mail(&app, "joe@example.com").await;

    // Opening the link shows the question; pressing the button answers it.
    let page = app.browser().get(&confirm).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Yes, it was me") && html.contains("release?token="), "{html}");
    assert_eq!(owner_status(&app, "joe@example.com").await, "unconfirmed", "opening changes nothing");
    let r = press(&app, &confirm, None).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Address confirmed"));
    assert_eq!(owner_status(&app, "joe@example.com").await, "active");
    // "Not me" comes too late now, and time does not take the instance away.
    assert_eq!(press(&app, &release, None).await.status(), 400);
    app.clock.advance(time::Duration::hours(100));
    assert!(app.worker.housekeeping().await.unwrap().is_empty());
    assert_eq!(instance_status(&app, "joe").await, "active");

    // The confirmed owner resets its password on the platform's hosted pages.
    let hash = "SELECT u.password_hash FROM users u JOIN instances i ON i.id = u.instance_id
                WHERE i.name = 'platform' AND u.email_canonical = 'joe@example.com'";
    let before = app.text(hash).await;
    request_reset(&app, "joe@example.com").await;
    let mail = app.mails_to("joe@example.com").await.pop().unwrap();
    let link = mail.text.split_whitespace().find(|w| w.contains("/user/confirm?")).unwrap().to_owned();
    assert!(link.starts_with(&format!("http://platform.localhost:{}/", app.addr.port())), "{link}");
    let code =
        url::Url::parse(&link).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let r = app
        .browser()
        .post(format!("http://platform.localhost:{}/user/confirm", app.addr.port()))
        .form(&[
            ("email", "joe@example.com"),
            ("code", code.as_str()),
            ("new_password", NEW_PASSWORD),
            ("password_confirmation", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_ne!(app.text(hash).await, before, "the new password is set");
}

#[rstest]
#[tokio::test]
async fn an_address_not_confirmed_in_time_is_released(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        enable(c);
        c.fast_track.confirm_within_hours = 2;
    })
    .await;
    fast_track(&app, "joe@example.com").await;
    let (mail, confirm, _) = claim_mail(&app, "joe@example.com").await;
    assert!(mail.text.contains("2 hours"), "the mail says how long: {}", mail.text);

    // Within the window, housekeeping leaves it alone.
    app.clock.advance(time::Duration::minutes(119));
    assert!(app.worker.housekeeping().await.unwrap().is_empty());
    assert_eq!(instance_status(&app, "joe").await, "active");
    // After it, the link has expired, and housekeeping disables the instance and frees the
    // address.
    app.clock.advance(time::Duration::minutes(2));
    assert_eq!(app.browser().get(&confirm).send().await.unwrap().status(), 410);
    assert_eq!(press(&app, &confirm, None).await.status(), 410);
    assert_eq!(owner_status(&app, "joe@example.com").await, "unconfirmed", "an expired link answers nothing");
    assert_eq!(app.worker.housekeeping().await.unwrap(), vec!["joe".to_owned()]);
    assert_eq!(instance_status(&app, "joe").await, "disabled");
    assert_eq!(app.browser().get(&confirm).send().await.unwrap().status(), 400, "released with its secret");
    assert_eq!(fast_track(&app, "joe@example.com").await["response"]["instance-id"], "joe-2");

    // An expired address is released by the next FastTrack for it, even before housekeeping.
    fast_track(&app, "ann@example.com").await;
    app.clock.advance(time::Duration::hours(3));
    assert_eq!(fast_track(&app, "ann@example.com").await["response"]["instance-id"], "ann-2");
    assert_eq!(instance_status(&app, "ann").await, "disabled");
    // Housekeeping also releases joe-2's address, unconfirmed for 3 hours now.
    assert_eq!(app.worker.housekeeping().await.unwrap(), vec!["joe-2".to_owned()]);
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn links_that_are_not_a_claim_get_the_link_invalid_page(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, enable).await;
    fast_track(&app, "joe@example.com").await;
    for path in ["/fast-track/confirm", "/fast-track/release"] {
        for query in ["", "?token=", "?token=not-a-token", &format!("?token={}", "x".repeat(400))] {
            let r = app.browser().get(app.url(&format!("{path}{query}"))).send().await.unwrap();
            assert_eq!(r.status(), 400, "{path}{query}");
            assert!(r.text().await.unwrap().contains("not valid"));
        }
        let r = app.browser().post(app.url(path)).form(&[("token", "nope")]).send().await.unwrap();
        assert_eq!(r.status(), 400);
    }
    assert_eq!(owner_status(&app, "joe@example.com").await, "unconfirmed");
    assert_eq!(instance_status(&app, "joe").await, "active");
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn reserved_names_are_never_given(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        enable(c);
        c.fast_track.reserved_names = vec!["acme".into(), "acme-2".into()];
    })
    .await;
    for (email, name) in [
        ("paypal@example.com", "paypal-2"),
        ("billing@example.com", "billing-2"),
        ("security@example.com", "security-2"),
        ("accounts@example.com", "accounts-2"),
        ("acme@example.com", "acme-3"),
        ("acme.corp@example.com", "acme-corp"),
    ] {
        assert_eq!(fast_track(&app, email).await["response"]["instance-id"], name, "{email}");
    }
    app.worker.drain().await.unwrap();
}
