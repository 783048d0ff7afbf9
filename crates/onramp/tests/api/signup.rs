//! `POST /v1/auth/signup`.

use crate::helpers::*;
use rstest::rstest;
use serde_json::json;

#[rstest]
#[tokio::test]
async fn a_signup_answers_the_token_that_the_activation_email_carries(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let r = app.signup(&signup_body("junedoe@acmecorp.com")).await;
    assert_eq!(r.status(), 200);
    let body = json(r).await;
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 32);

    let mails = app.mails_to("junedoe@acmecorp.com").await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.subject, "Activate your Demo account");
    assert_eq!(token_in(mail), token);
    assert!(link_in(mail).starts_with(SIGNUP_URL), "{}", link_in(mail));
    assert!(mail.html.contains(&token));
    assert!(!mail.message_id.is_empty());
}

#[rstest]
#[tokio::test]
async fn the_seeds_own_snippet_reads_the_token_from_the_emailed_link(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let token = json(app.signup(&signup_body("snippet@acmecorp.com")).await).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let link = link_in(&app.mails_to("snippet@acmecorp.com").await[0]);
    // The page's `window.location.hash`, read exactly as the seed does, by node's URL and
    // URLSearchParams (the WHATWG implementations browsers have).
    let script = format!(
        "const u = new URL({link:?}); process.stdout.write(String(new URLSearchParams(u.hash).get('token')));"
    );
    let out = std::process::Command::new("node")
        .arg("-e")
        .arg(&script)
        .output()
        .expect("node must be installed to run the seed's snippet (apt-get install nodejs)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), token);
}

#[rstest]
#[tokio::test]
async fn empty_username_and_password_are_generated_and_stated_in_the_email(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn(db).await;
    let body = with(signup_body("gen@acmecorp.com"), json!({ "username": "", "password": null }));
    assert_eq!(app.signup(&body).await.status(), 200);
    let mail = app.mails_to("gen@acmecorp.com").await.pop().unwrap();
    let username = line_value(&mail, "Username").expect("Username: line");
    let password = line_value(&mail, "Password").expect("Password: line");
    assert_eq!(username, "june.doe");
    assert!(password.chars().count() >= 16, "{password}");
    assert_ne!(username, password);

    // They work: activate, then log in with them.
    assert_eq!(app.activate(&token_in(&mail)).await.status(), 200);
    let r = app.login(&username, &password).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[rstest]
#[tokio::test]
async fn generated_usernames_stay_unique(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    for email in ["a1@acmecorp.com", "a2@acmecorp.com", "a3@acmecorp.com"] {
        let body = with(signup_body(email), json!({ "username": null, "password": null, "name": "Jo Li" }));
        assert_eq!(app.signup(&body).await.status(), 200);
    }
    let names: std::collections::HashSet<String> =
        app.mails().await.iter().map(|m| line_value(m, "Username").unwrap()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("jo.li") && n.chars().count() >= 8), "{names:?}");
}

#[rstest]
#[tokio::test]
async fn a_chosen_password_never_appears_in_the_email(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    app.signup(&signup_body("chosen@acmecorp.com")).await;
    let mail = app.mails_to("chosen@acmecorp.com").await.pop().unwrap();
    assert_eq!(line_value(&mail, "Username").as_deref(), Some("junedoe1"));
    assert!(line_value(&mail, "Password").is_none());
    assert!(!mail.text.contains("eomcpmdp2jp2ijvekklmlkm") && !mail.html.contains("eomcpmdp2jp2ijvekklmlkm"));
}

async fn field_errors(app: &TestApp, body: serde_json::Value) -> Vec<(String, String)> {
    let r = app.signup(&body).await;
    assert_eq!(r.status(), 422);
    let b = json(r).await;
    assert_eq!(b["error"]["code"], "validation_failed");
    b["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["field"].as_str().unwrap().to_owned(), f["code"].as_str().unwrap().to_owned()))
        .collect()
}

#[rstest]
#[tokio::test]
async fn each_invalid_field_is_named_with_a_stable_code_and_nothing_is_written(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn(db).await;
    let base = signup_body("v@acmecorp.com");
    let cases = [
        (json!({ "domain_id": null }), ("domain_id", "required")),
        (json!({ "account_title": "  " }), ("account_title", "required")),
        (json!({ "name": null }), ("name", "required")),
        (json!({ "email": null }), ("email", "required")),
        (json!({ "email": "not-an-email" }), ("email", "invalid_email")),
        (json!({ "email": "a@b.com\r\nBcc: x@y.com" }), ("email", "invalid_email")),
        (json!({ "country_id": "XX" }), ("country_id", "invalid_country")),
        (json!({ "country_id": null }), ("country_id", "invalid_country")),
        (json!({ "username": "short" }), ("username", "username_too_short")),
        (json!({ "username": "june@doe.com" }), ("username", "invalid_username")),
        (json!({ "password": "short" }), ("password", "password_too_short")),
        (json!({ "password": "baseball" }), ("password", "password_too_common")),
        (json!({ "password": "x".repeat(1025) }), ("password", "password_too_long")),
        (
            json!({ "username": "samesame1", "password": "samesame1" }),
            ("password", "password_equals_username"),
        ),
        (
            json!({ "password": "junedoe12024" , "username": "junedoe12"}),
            ("password", "password_contains_context"),
        ),
        // The whole address, in any case, is no password.
        (
            json!({ "password": "June.Doe@AcmeCorp.com", "email": "june.doe@acmecorp.com" }),
            ("password", "password_contains_context"),
        ),
        (
            json!({ "password": "junedoe12", "username": "JuneDoe12" }),
            ("password", "password_contains_context"),
        ),
        // Invisible characters do not count towards the length.
        (json!({ "password": "\u{200B}".repeat(8) }), ("password", "required")),
        (json!({ "password": format!("abc{}", "\u{200D}".repeat(9)) }), ("password", "password_too_short")),
        (json!({ "domain_id": "dom_unknown" }), ("domain_id", "unknown_domain")),
        (json!({ "domain_id": CLOSED_DOMAIN }), ("domain_id", "signup_not_allowed")),
    ];
    for (change, (field, code)) in cases {
        let errors = field_errors(&app, with(base.clone(), change.clone())).await;
        assert!(errors.contains(&(field.to_owned(), code.to_owned())), "{change}: {errors:?}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox").await, 0);
}

#[rstest]
#[tokio::test]
async fn malformed_bodies_get_clear_errors_in_the_v1_format(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let url = app.url("/v1/auth/signup");
    let r = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"]["code"], "malformed_json");

    let r = app.signup(&with(signup_body("t@acmecorp.com"), json!({ "name": 42 }))).await;
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"]["code"], "malformed_request");

    let r = app.signup(&with(signup_body("t@acmecorp.com"), json!({ "nmae": "typo" }))).await;
    assert_eq!(r.status(), 400);
    let b = json(r).await;
    assert!(b["error"]["message"].as_str().unwrap().contains("nmae"), "{b}");

    let r = app.client.post(&url).body(signup_body("t@acmecorp.com").to_string()).send().await.unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(json(r).await["error"]["code"], "unsupported_media_type");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}

#[rstest]
#[tokio::test]
async fn a_body_over_64_kib_is_refused_with_413_before_any_work(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let body = with(signup_body("big@acmecorp.com"), json!({ "account_title": "x".repeat(70 * 1024) }));
    let r = app.signup(&body).await;
    assert_eq!(r.status(), 413);
    assert_eq!(json(r).await["error"]["code"], "payload_too_large");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
    assert_eq!(app.state.onramp.hasher().queue_depth(), 0);
}

#[rstest]
#[tokio::test]
async fn an_existing_active_email_looks_like_a_new_signup_and_its_owner_is_told(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn(db).await;
    active_user(&app, "owner@acmecorp.com", "owner001", "a long passphrase").await;

    let again = with(
        signup_body("Owner@ACMECORP.com"),
        json!({ "username": "intruder1", "password": "another phrase" }),
    );
    let r = app.signup(&again).await;
    assert_eq!(r.status(), 200);
    let body = json(r).await;
    assert_eq!(body.as_object().unwrap().len(), 1);
    assert_eq!(body["token"].as_str().unwrap().len(), 32);
    // The answer's token activates nothing.
    assert_eq!(app.activate(body["token"].as_str().unwrap()).await.status(), 404);

    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    let exists = |mails: Vec<Mail>| -> Vec<Mail> {
        mails.into_iter().filter(|m| m.subject == "You already have a Demo account").collect()
    };
    let mails = exists(app.mails().await);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, "owner@acmecorp.com", "the owner's own address, as the owner entered it");
    // A burst of such attempts tells the owner once.
    app.signup(&again).await;
    assert_eq!(exists(app.mails().await).len(), 1);
    // The owner's password still works; the intruder's does not.
    assert_eq!(app.login("owner001", "a long passphrase").await.status(), 200);
    assert_eq!(app.login("owner@acmecorp.com", "another phrase").await.status(), 401);
}

#[rstest]
#[tokio::test]
async fn a_new_signup_replaces_an_unverified_one_and_voids_its_token(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    // Someone registers the address first, with a password of their own.
    let first = with(
        signup_body("victim@acmecorp.com"),
        json!({ "username": "squatter1", "password": "squatters phrase" }),
    );
    app.signup(&first).await;
    let first_token = token_in(&app.mails_to("victim@acmecorp.com").await[0]);

    // The mailbox owner signs up (after the resend interval).
    app.clock.advance(time::Duration::seconds(61));
    let second = with(
        signup_body("victim@acmecorp.com"),
        json!({ "username": "realowner", "password": "owners own phrase" }),
    );
    assert_eq!(app.signup(&second).await.status(), 200);
    let mails = app.mails_to("victim@acmecorp.com").await;
    assert_eq!(mails.len(), 2);
    let second_token = token_in(&mails[1]);

    assert_eq!(app.activate(&first_token).await.status(), 404, "the earlier registrant's token is void");
    assert_eq!(app.activate(&second_token).await.status(), 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(app.login("realowner", "owners own phrase").await.status(), 200);
    assert_eq!(app.login("victim@acmecorp.com", "squatters phrase").await.status(), 401);
}

#[rstest]
#[tokio::test]
async fn a_username_in_use_is_a_conflict(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    app.signup(&signup_body("one@acmecorp.com")).await;
    // Confusable spelling (Cyrillic 'е') of the same username.
    let r =
        app.signup(&with(signup_body("two@acmecorp.com"), json!({ "username": "jun\u{0435}doe1" }))).await;
    assert_eq!(r.status(), 409);
    assert_eq!(json(r).await["error"]["code"], "username_taken");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn an_app_can_keep_the_activation_token_out_of_the_response(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    let body = with(signup_body("ref@acme.example"), json!({ "domain_id": "dom_acme" }));
    let r = app.post_to("acme", "/v1/auth/signup", &body).await;
    assert_eq!(r.status(), 200);
    let reference = json(r).await["token"].as_str().unwrap().to_owned();
    let mail = app.mails_to("ref@acme.example").await.pop().unwrap();
    let emailed = token_in(&mail);
    assert_ne!(reference, emailed);
    let r = app.post_to("acme", "/v1/auth/signup-activation", &json!({ "token": reference })).await;
    assert_eq!(r.status(), 404);
    let r = app.post_to("acme", "/v1/auth/signup-activation", &json!({ "token": emailed })).await;
    assert_eq!(r.status(), 200);
}

#[rstest]
#[tokio::test]
async fn fifty_concurrent_signups_of_one_email_make_one_user_and_one_message(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn_with(db, |c| c.rate_limits.enabled = false).await;
    let requests = (0..50)
        .map(|i| {
            let body = with(signup_body("race@acmecorp.com"), json!({ "username": format!("racer{i:04}") }));
            let client = app.client.clone();
            let url = app.url("/v1/auth/signup");
            tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap().status().as_u16() })
        })
        .collect::<Vec<_>>();
    let mut statuses = Vec::new();
    for r in requests {
        statuses.push(r.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM accounts").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM verifications").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox").await, 1);
    let mails = app.mails_to("race@acmecorp.com").await;
    assert_eq!(mails.len(), 1);
    assert_eq!(app.activate(&token_in(&mails[0])).await.status(), 200);
}

#[rstest]
#[tokio::test]
async fn repeated_signups_of_one_email_are_rate_limited_with_retry_after(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await; // 5 per email per hour by default
    for _ in 0..5 {
        assert_eq!(app.signup(&signup_body("limit@acmecorp.com")).await.status(), 200);
    }
    let r = app.signup(&signup_body("limit@acmecorp.com")).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(json(r).await["error"]["code"], "rate_limited");
    // A new window opens after the hour.
    app.clock.advance(time::Duration::hours(1));
    assert_eq!(app.signup(&signup_body("limit@acmecorp.com")).await.status(), 200);
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_saturated_hashing_pool_answers_503_with_retry_after_at_once(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        c.rate_limits.enabled = false;
        c.hashing.memory_kib = 19_456;
        c.hashing.iterations = 8;
        c.hashing.threads = 1;
        c.hashing.queue = 1;
        // Slow enough that the pool stays full while the test looks.
        c.hashing.memory_kib = 32 * 1024;
        c.hashing.iterations = 3;
    })
    .await;
    let requests = (0..12)
        .map(|i| {
            let body = signup_body(&format!("flood{i}@acmecorp.com"));
            let body = with(body, json!({ "username": format!("flooder{i:03}") }));
            let client = app.client.clone();
            let url = app.url("/v1/auth/signup");
            tokio::spawn(async move {
                let r = client.post(url).json(&body).send().await.unwrap();
                (r.status().as_u16(), r.headers().get("retry-after").is_some())
            })
        })
        .collect::<Vec<_>>();
    let mut results = Vec::new();
    for r in requests {
        results.push(r.await.unwrap());
    }
    let busy = results.iter().filter(|(s, _)| *s == 503).count();
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    assert!(busy >= 1, "{results:?}");
    assert!(ok >= 1, "{results:?}");
    assert_eq!(busy + ok, 12, "{results:?}");
    assert!(results.iter().filter(|(s, _)| *s == 503).all(|(_, retry)| *retry));
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, ok as i64, "accepted ones complete");
    app.worker.drain().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn instances_are_isolated_by_host(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn(db).await;
    // dom_acme exists only in the acme instance.
    let body = with(signup_body("iso@acme.example"), json!({ "domain_id": "dom_acme" }));
    let r = app.signup(&body).await;
    assert_eq!(r.status(), 422, "the default instance does not know acme's domain");
    assert_eq!(app.post_to("acme", "/v1/auth/signup", &body).await.status(), 200);
    let token = token_in(&app.mails_to("iso@acme.example").await[0]);
    assert_eq!(app.activate(&token).await.status(), 404, "acme's token means nothing to default");
    // An unknown instance is a 404 in the v1 format.
    let r = app.post_to("nosuch", "/v1/auth/signup", &body).await;
    assert_eq!(r.status(), 404);
    assert_eq!(json(r).await["error"]["code"], "instance_not_found");
}

#[rstest]
#[tokio::test]
async fn a_signup_the_hash_pool_cannot_take_is_shed_before_any_work_and_logins_still_pass(
    #[values(SQLITE, POSTGRES)] db: Db,
) {
    let app = TestApp::spawn_with(db, |c| {
        c.hashing.threads = 1;
        c.hashing.queue = 1;
        // Each hash takes long enough (about a second) that the pool stays full while the
        // test makes its one request.
        c.hashing.memory_kib = 64 * 1024;
        c.hashing.iterations = 16;
    })
    .await;
    active_user(&app, "shed@acmecorp.com", "sheduser1", "a fine passphrase").await;
    // Fill the signup lane: one hash running, one waiting.
    let hasher = app.state.onramp.hasher().clone();
    let slow = onramp_core::password::Password::for_verification("x");
    let mut filling = Vec::new();
    for waiting in [0, 1] {
        let (h, p) = (hasher.clone(), slow.clone());
        filling.push(tokio::spawn(async move { h.hash(&p).await }));
        // The first is taken by the thread before the second queues behind it.
        for _ in 0..400 {
            if hasher.queue_depth() == waiting + 1 && (waiting == 1) == hasher.is_saturated() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    assert!(hasher.is_saturated());
    let limits = app.count("SELECT COUNT(*) FROM rate_limits").await;
    let r = app.signup(&with(signup_body("flood@acmecorp.com"), json!({"username": null}))).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(json(r).await["error"]["code"], "service_busy");
    // Shed before any work: nothing counted against anyone's budget, nothing written.
    assert_eq!(app.count("SELECT COUNT(*) FROM rate_limits").await, limits);
    assert_eq!(app.count("SELECT COUNT(*) FROM users WHERE email = 'flood@acmecorp.com'").await, 0);
    // Logins have their own lane: accepted while signups are refused.
    assert_eq!(app.login("sheduser1", "a fine passphrase").await.status(), 200);
    for f in filling {
        assert!(f.await.unwrap().is_ok());
    }
}

#[rstest]
#[tokio::test]
async fn one_client_has_one_signup_budget_across_every_surface(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        crate::dreamfactory::open(false)(c);
        c.rate_limits.signup_per_client_per_10min = 3;
    })
    .await;
    // /v1, then DreamFactory: one budget of three for this client.
    for n in 0..2 {
        let body = with(signup_body(&format!("budget{n}@acmecorp.com")), json!({"username": null}));
        assert_eq!(app.signup(&body).await.status(), 200);
    }
    let register = |email: &str| {
        app.client
            .post(app.url("/api/v2/user/register"))
            .header("X-DreamFactory-API-Key", crate::dreamfactory::KEY)
            .json(&json!({"email": email, "password": "a fine passphrase"}))
            .send()
    };
    assert_eq!(register("df1@example.com").await.unwrap().status(), 200);
    let r = register("df2@example.com").await.unwrap();
    assert_eq!(r.status(), 429, "the fourth account from this client, on another surface");
    assert!(r.headers().contains_key("retry-after"));
    let r = app.signup(&with(signup_body("budget9@acmecorp.com"), json!({"username": null}))).await;
    assert_eq!(r.status(), 429);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 3);
    app.worker.drain().await.unwrap();
}

/// A client that rotates its IPv6 address inside its /64 is one client (better-auth's
/// CVE-2026-45364 was this bypass); the next /64 is another client.
#[rstest]
#[tokio::test]
async fn two_ipv6_addresses_in_one_64_share_one_limit(#[values(SQLITE, POSTGRES)] db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.rate_limits.signup_per_client_per_10min = 2;
    })
    .await;
    let signup_from = |n: u32, address: &'static str| {
        let body = with(signup_body(&format!("v6-{n}@acmecorp.com")), json!({"username": null}));
        app.client.post(app.url("/v1/auth/signup")).header("x-forwarded-for", address).json(&body).send()
    };
    assert_eq!(signup_from(1, "2001:db8:1:2::a").await.unwrap().status(), 200);
    assert_eq!(signup_from(2, "2001:db8:1:2:ffff:1:2:3").await.unwrap().status(), 200);
    let r = signup_from(3, "2001:db8:1:2::c").await.unwrap();
    assert_eq!(r.status(), 429, "a third address of the same /64");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(signup_from(4, "2001:db8:1:3::a").await.unwrap().status(), 200, "the next /64");
    assert_eq!(signup_from(5, "192.0.2.7").await.unwrap().status(), 200);
    // The audit log keeps each client's own address.
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE client = '2001:db8:1:2::a'").await, 1);
    app.worker.drain().await.unwrap();
}
