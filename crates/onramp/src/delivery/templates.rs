//! Email templates: one folder per message and language (`subject.txt`, `body.txt`,
//! `body.html`), embedded in the binary and rendered with minijinja (HTML auto-escaped). Every
//! HTML part extends one branded layout (`mail/layout.html`): logo or name, a button with the
//! plain link under it, and a footer saying why the mail was sent.

use minijinja::{AutoEscape, Environment};

macro_rules! embed {
    ($($name:literal / $lang:literal),* $(,)?) => {
        &[$(
            ($name, $lang, [
                include_str!(concat!("../../templates/mail/", $name, "/", $lang, "/subject.txt")),
                include_str!(concat!("../../templates/mail/", $name, "/", $lang, "/body.txt")),
                include_str!(concat!("../../templates/mail/", $name, "/", $lang, "/body.html")),
            ]),
        )*]
    };
}

/// (message, language, [subject, text, html])
type Embedded = &'static [(&'static str, &'static str, [&'static str; 3])];

#[rustfmt::skip]
const TEMPLATES: Embedded = embed![
    "signup_activation" / "en",
    "signup_activation" / "nl",
    "signup_activation" / "de",
    "signup_activation" / "fr",
    "signup_activation" / "es",
    "account_exists" / "en",
    "account_exists" / "nl",
    "account_exists" / "de",
    "account_exists" / "fr",
    "account_exists" / "es",
    "user_confirmation" / "en",
    "user_confirmation" / "nl",
    "user_confirmation" / "de",
    "user_confirmation" / "fr",
    "user_confirmation" / "es",
    "password_reset" / "en",
    "password_reset" / "nl",
    "password_reset" / "de",
    "password_reset" / "fr",
    "password_reset" / "es",
    "welcome" / "en",
    "welcome" / "nl",
    "welcome" / "de",
    "welcome" / "fr",
    "welcome" / "es",
    "fast_track_confirm" / "en",
    "fast_track_confirm" / "nl",
    "fast_track_confirm" / "de",
    "fast_track_confirm" / "fr",
    "fast_track_confirm" / "es",
    "invitation" / "en",
    "invitation" / "nl",
    "invitation" / "de",
    "invitation" / "fr",
    "invitation" / "es",
];

/// Text messages: (message, language, text).
#[rustfmt::skip]
const SMS: &[(&str, &str, &str)] = &[
    ("sms_verification", "en", include_str!("../../templates/sms/sms_verification/en.txt")),
    ("sms_verification", "nl", include_str!("../../templates/sms/sms_verification/nl.txt")),
    ("sms_verification", "de", include_str!("../../templates/sms/sms_verification/de.txt")),
    ("sms_verification", "fr", include_str!("../../templates/sms/sms_verification/fr.txt")),
    ("sms_verification", "es", include_str!("../../templates/sms/sms_verification/es.txt")),
];

/// The layout HTML parts extend (operator templates may too, as `mail/layout.html`).
const LAYOUT: &str = include_str!("../../templates/mail/layout.html");

/// Every built-in message.
pub const MESSAGES: [&str; 7] = onramp_core::outbox::Template::MAILS_NAMES;

/// The languages every built-in message ships in.
pub const LANGUAGES: [&str; 5] = ["en", "nl", "de", "fr", "es"];

pub const FALLBACK_LANGUAGE: &str = "en";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Templates {
    env: Environment<'static>,
    /// Operator templates (`[[mail_templates]]`): one language, used for every reader.
    custom: std::collections::HashSet<String>,
}

/// An operator's own message, e.g. for `open_reg_email_template`.
#[derive(Debug, Clone)]
pub struct CustomTemplate {
    pub name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

const PARTS: [&str; 3] = ["subject.txt", "body.txt", "body.html"];

impl Templates {
    pub fn new() -> Result<Self, minijinja::Error> {
        Self::with_custom(&[])
    }

    /// The built-in messages plus the operator's; an operator template may replace a built-in
    /// one of the same name.
    pub fn with_custom(custom: &[CustomTemplate]) -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None }
        });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        env.add_template("mail/layout.html", LAYOUT)?;
        for (name, lang, parts) in TEMPLATES {
            for (part, source) in PARTS.iter().zip(parts.iter()) {
                env.add_template_owned(format!("{name}/{lang}/{part}"), *source)?;
            }
        }
        for (name, lang, text) in SMS {
            env.add_template_owned(format!("sms/{name}/{lang}"), *text)?;
        }
        let mut names = std::collections::HashSet::new();
        for t in custom {
            for (part, source) in PARTS.iter().zip([&t.subject, &t.text, &t.html]) {
                env.add_template_owned(format!("{}/custom/{part}", t.name), source.clone())?;
            }
            names.insert(t.name.clone());
        }
        Ok(Self { env, custom: names })
    }

    /// A text message in the best language there is for `wanted`.
    pub fn render_sms(
        &self,
        name: &str,
        wanted: &str,
        vars: &serde_json::Value,
    ) -> Result<String, minijinja::Error> {
        let wanted = wanted.to_ascii_lowercase();
        let primary = wanted.split(['-', '_']).next().unwrap_or_default().to_owned();
        let have =
            |l: &str| SMS.iter().find(|(n, lang, _)| *n == name && *lang == l).map(|(_, lang, _)| *lang);
        let lang = have(&wanted).or_else(|| have(&primary)).unwrap_or(FALLBACK_LANGUAGE);
        Ok(self.env.get_template(&format!("sms/{name}/{lang}"))?.render(vars)?.trim().to_owned())
    }

    pub fn has(&self, name: &str) -> bool {
        self.custom.contains(name) || TEMPLATES.iter().any(|(n, _, _)| *n == name)
    }

    /// The best language we have for `wanted` (a BCP 47 tag): exact, then its primary
    /// subtag, then English.
    pub fn language_for(&self, name: &str, wanted: &str) -> &'static str {
        self.language_match(name, wanted).unwrap_or(if self.custom.contains(name) {
            "custom"
        } else {
            FALLBACK_LANGUAGE
        })
    }

    /// The shipped language for `wanted` (exact, then its primary subtag), if there is one.
    pub fn language_match(&self, name: &str, wanted: &str) -> Option<&'static str> {
        if self.custom.contains(name) {
            return Some("custom");
        }
        let wanted = wanted.to_ascii_lowercase();
        let primary = wanted.split(['-', '_']).next().unwrap_or_default().to_owned();
        let have = |l: &str| {
            TEMPLATES.iter().find(|(n, lang, _)| *n == name && *lang == l).map(|(_, lang, _)| *lang)
        };
        have(&wanted).or_else(|| have(&primary))
    }

    /// Render `name` in the best language for `language`. The layout also sees `lang` (the
    /// shipped language closest to the reader's, also for operator templates).
    pub fn render(
        &self,
        name: &str,
        language: &str,
        vars: &serde_json::Value,
    ) -> Result<RenderedMail, minijinja::Error> {
        let lang = self.language_for(name, language);
        let primary = language.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase();
        let reader = if lang != "custom" {
            lang
        } else {
            LANGUAGES.into_iter().find(|l| *l == primary).unwrap_or(FALLBACK_LANGUAGE)
        };
        let ctx = minijinja::context! { lang => reader, ..minijinja::Value::from_serialize(vars) };
        let part = |p: &str| -> Result<String, minijinja::Error> {
            self.env.get_template(&format!("{name}/{lang}/{p}"))?.render(&ctx)
        };
        Ok(RenderedMail {
            // A subject is one line, whatever a variable held.
            subject: part("subject.txt")?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
            text: part("body.txt")?,
            html: part("body.html")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn activation_mail_states_generated_credentials_on_their_own_lines() {
        let t = Templates::new().unwrap();
        let m = t
            .render(
                "signup_activation",
                "en",
                &json!({"name": "June", "app_name": "Demo", "account_title": "Acme", "link": "http://x/#&token=t",
                        "username": "june.doe", "password": "s3cretPw", "username_generated": true,
                        "password_generated": true, "expires_hours": 24}),
            )
            .unwrap();
        assert_eq!(m.subject, "Activate your Demo account");
        assert!(m.text.lines().any(|l| l == "Username: june.doe"), "{}", m.text);
        assert!(m.text.lines().any(|l| l == "Password: s3cretPw"), "{}", m.text);
    }

    #[test]
    fn a_chosen_password_is_never_repeated() {
        let t = Templates::new().unwrap();
        let m = t
            .render("signup_activation", "en", &json!({"username": "junedoe1", "password_generated": false}))
            .unwrap();
        assert!(!m.text.contains("Password:"), "{}", m.text);
    }

    #[test]
    fn html_parts_escape_variables() {
        let t = Templates::new().unwrap();
        let m = t.render("account_exists", "en", &json!({"name": "<script>x</script>"})).unwrap();
        assert!(m.html.contains("&lt;script&gt;"));
        assert!(m.text.contains("<script>"), "text parts are not HTML");
    }

    fn full_vars() -> serde_json::Value {
        json!({"name": "June", "app_name": "Demo", "account_title": "Acme", "link": "http://x/?token=t#&token=t",
               "username": "june.doe", "password": "s3cretPw", "username_generated": true,
               "password_generated": true, "expires_hours": 24, "login_url": "http://x/login",
               "first_name": "June", "last_name": "Doe", "email": "june@example.com", "confirm_code": "c0de42",
               "recipient": "june@example.com", "new_instance": "acme-books",
               "release_link": "http://x/release?token=t",
               "brand": {"name": "Acme <Books>", "accent": "#ffd400", "ink": "#111827", "initial": "A", "logo_url": null}})
    }

    #[test]
    fn html_parts_are_branded_with_a_button_its_plain_link_and_why_they_were_sent() {
        let t = Templates::new().unwrap();
        let english_reasons: Vec<String> = MESSAGES
            .iter()
            .map(|name| t.render(name, "en", &full_vars()).unwrap().html)
            .map(|html| html[html.rfind("<td align=\"center\"").unwrap()..].to_owned())
            .collect();
        for name in MESSAGES {
            for lang in LANGUAGES {
                let html = t.render(name, lang, &full_vars()).unwrap().html;
                let at = |what: &str| format!("{name}/{lang}: no {what} in\n{html}");
                assert!(
                    html.contains("Acme &lt;Books&gt;") && !html.contains("<Books>"),
                    "{}",
                    at("escaped brand")
                );
                assert!(
                    html.contains("background:#ffd400") && html.contains("color:#111827"),
                    "{}",
                    at("accent")
                );
                assert!(html.contains("june@example.com"), "{}", at("recipient in the footer"));
                assert!(
                    html.contains("max-width:560px") && html.contains("@media"),
                    "{}",
                    at("responsive layout")
                );
                assert!(!html.contains("{{") && !html.contains("{%"), "{}", at("unrendered tag"));
                // The footer line is the message's own, in its own language.
                let footer = &html[html.rfind("<td align=\"center\"").unwrap()..];
                if lang != "en" {
                    assert!(!english_reasons.iter().any(|r| r == footer), "{}", at("translated footer"));
                }
                let link = match name {
                    "welcome" => None,
                    "account_exists" => Some("http:&#x2f;&#x2f;x&#x2f;login"),
                    _ => Some("http:&#x2f;&#x2f;x&#x2f;?token=t#&amp;token=t"),
                };
                match link {
                    // The button, and the same link in plain text under it.
                    Some(link) => {
                        assert_eq!(html.matches(&format!("href=\"{link}\"")).count(), 2, "{}", at("button"))
                    }
                    None => assert!(!html.contains("class=\"button\""), "{name}/{lang}: a button to nowhere"),
                }
            }
        }
    }

    #[test]
    fn a_logo_replaces_the_initial() {
        let t = Templates::new().unwrap();
        let mut vars = full_vars();
        vars["brand"]["logo_url"] = json!("https://cdn.example.com/logo.png");
        let html = t.render("welcome", "fr", &vars).unwrap().html;
        assert!(
            html.contains(
                "<img src=\"https:&#x2f;&#x2f;cdn.example.com&#x2f;logo.png\" alt=\"Acme &lt;Books&gt;\""
            ),
            "{html}"
        );
        assert!(html.contains("Envoyé par Acme &lt;Books&gt;"), "{html}");
    }

    #[test]
    fn operator_templates_may_extend_the_layout_in_the_readers_language() {
        let t = Templates::with_custom(&[CustomTemplate {
            name: "acme_confirm".into(),
            subject: "Confirm".into(),
            text: "{{ link }}".into(),
            html: r#"{% extends "mail/layout.html" %}{% set heading = "Hi" %}{% set action_url = link %}{% set action_label = "Go" %}{% block content %}<p>Acme</p>{% endblock %}"#.into(),
        }])
        .unwrap();
        let html = t.render("acme_confirm", "de-AT", &full_vars()).unwrap().html;
        assert!(
            html.contains("lang=\"de\"") && html.contains("Funktioniert die Schaltfläche nicht?"),
            "{html}"
        );
        assert!(html.contains(">Go</a>") && html.contains("<p>Acme</p>"), "{html}");
    }

    #[test]
    fn every_message_ships_in_every_language() {
        let t = Templates::new().unwrap();
        for name in MESSAGES {
            let english = t.render(name, "en", &full_vars()).unwrap();
            for lang in LANGUAGES {
                assert_eq!(t.language_for(name, lang), lang, "{name}/{lang} missing");
                let m = t.render(name, lang, &full_vars()).unwrap();
                assert!(!m.subject.is_empty() && !m.subject.contains("{{"), "{name}/{lang}: {}", m.subject);
                // The subject names what the mail is about: the product, or the new instance.
                let about = if name == "fast_track_confirm" { "acme-books" } else { "Demo" };
                assert!(m.subject.contains(about), "{name}/{lang}: {}", m.subject);
                assert!(m.html.contains(&format!("lang=\"{lang}\"")), "{name}/{lang}");
                if lang != "en" {
                    assert_ne!(m.subject, english.subject, "{name}/{lang} is not translated");
                    assert_ne!(m.text, english.text, "{name}/{lang} is not translated");
                }
                if name == "user_confirmation" || name == "password_reset" {
                    // The code and the link to the page that takes it, in every language.
                    for part in [&m.text, &m.html] {
                        assert!(
                            part.contains("c0de42") && part.contains("june@example.com"),
                            "{name}/{lang}"
                        );
                    }
                    assert!(m.text.contains("http://x/?token=t#&token=t"), "{name}/{lang}");
                }
                if name == "signup_activation" {
                    // The link, the username and a generated password reach the reader in every language.
                    assert!(m.text.contains("http://x/?token=t#&token=t"), "{name}/{lang}");
                    // HTML-escaped (`/` as `&#x2f;`, `&` as `&amp;`), which mail clients decode.
                    assert!(
                        m.html.contains("href=") && m.html.contains("token=t#&amp;token=t"),
                        "{name}/{lang}"
                    );
                    for part in [&m.text, &m.html] {
                        assert!(part.contains("june.doe") && part.contains("s3cretPw"), "{name}/{lang}");
                    }
                }
            }
        }
    }

    #[test]
    fn text_messages_ship_in_every_language() {
        let t = Templates::new().unwrap();
        let vars = json!({"code": "123456", "app_name": "Demo"});
        let english = t.render_sms("sms_verification", "en", &vars).unwrap();
        for lang in LANGUAGES {
            let text = t.render_sms("sms_verification", lang, &vars).unwrap();
            assert!(text.contains("123456") && text.contains("Demo"), "{lang}: {text}");
            assert!(text.chars().count() <= 160, "one SMS: {lang}");
            if lang != "en" {
                assert_ne!(text, english, "{lang} is not translated");
            }
        }
        assert_eq!(
            t.render_sms("sms_verification", "nl-BE", &vars).unwrap(),
            t.render_sms("sms_verification", "nl", &vars).unwrap()
        );
    }

    #[test]
    fn operator_templates_are_used_for_every_language() {
        let t = Templates::with_custom(&[CustomTemplate {
            name: "acme_welcome".into(),
            subject: "Welcome to {{ app_name }}".into(),
            text: "Code {{ confirm_code }}".into(),
            html: "<p>{{ name }}</p>".into(),
        }])
        .unwrap();
        assert!(t.has("acme_welcome") && t.has("user_confirmation") && !t.has("nope"));
        let m = t.render("acme_welcome", "nl", &full_vars()).unwrap();
        assert_eq!((m.subject.as_str(), m.text.as_str()), ("Welcome to Demo", "Code c0de42"));
        assert!(t.render("nope", "en", &full_vars()).is_err());
    }

    #[test]
    fn regional_tags_use_their_language() {
        let t = Templates::new().unwrap();
        assert_eq!(t.language_for("signup_activation", "nl-BE"), "nl");
        assert_eq!(t.language_for("signup_activation", "de_CH"), "de");
        assert_eq!(t.language_for("signup_activation", "fr-ca"), "fr");
        assert_eq!(
            t.render("account_exists", "es-MX", &full_vars()).unwrap().subject,
            "Ya tienes una cuenta de Demo"
        );
    }

    #[test]
    fn languages_fall_back_to_english() {
        let t = Templates::new().unwrap();
        assert_eq!(t.language_for("account_exists", "en-GB"), "en");
        assert_eq!(t.language_for("account_exists", "xx"), "en");
    }
}
