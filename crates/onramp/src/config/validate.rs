//! Every check serde cannot express, run at start and by `onramp check-config`.

use super::*;

impl Config {
    /// Checks serde cannot express.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!("listen: {:?} is not an address like 127.0.0.1:8080", self.listen));
        }
        let ca_files = std::iter::once(("mail", &self.mail.tls_ca_file)).chain(
            self.instances
                .iter()
                .flat_map(|i| i.mail_services.iter().map(|m| (m.name.as_str(), &m.tls_ca_file))),
        );
        for (what, file) in ca_files {
            if let Some(f) = file
                && !f.is_file()
            {
                problems.push(format!("{what}: tls_ca_file {} is not a readable file", f.display()));
            }
        }
        if self.server.header_timeout_secs == 0 || self.server.max_connections == 0 {
            problems.push("server: header_timeout_secs and max_connections must be at least 1".into());
        }
        if let Some(listen) = &self.metrics.listen
            && (listen.parse::<std::net::SocketAddr>().is_err() || *listen == self.listen)
        {
            problems.push(format!("metrics.listen: {listen:?} must be an address other than listen"));
        }
        if self.metrics.token.as_ref().is_some_and(|t| t.0.len() < 16) {
            problems.push("metrics.token: must be at least 16 characters".into());
        }
        if url::Url::parse(&self.public_url).map(|u| u.host().is_none()).unwrap_or(true) {
            problems.push(format!("public_url: {:?} is not an absolute URL", self.public_url));
        }
        if let Some(key) = &self.secret_key
            && (key.0.len() != 64 || !key.0.chars().all(|c| c.is_ascii_hexdigit()))
        {
            problems.push("secret_key: must be 64 hex characters (32 bytes)".into());
        }
        if self.mail.transport == MailTransportKind::Smtp && self.mail.smtp_url.is_none() {
            problems.push("mail.smtp_url: required when mail.transport = \"smtp\"".into());
        }
        if self.outbox.lease_secs <= self.mail.timeout_secs {
            problems.push("outbox.lease_secs: must be longer than mail.timeout_secs".into());
        }
        if self.passwords.min_length < 8 {
            problems.push("passwords.min_length: must be at least 8".into());
        }
        if self.passwords.max_length < 64 || self.passwords.max_length < self.passwords.min_length {
            problems.push("passwords.max_length: must be at least 64 and at least min_length".into());
        }
        if self.hashing.memory_kib < 19_456 || self.hashing.iterations < 2 {
            // Allowed (tests and small devices), but said out loud.
            tracing::warn!("hashing parameters are below OWASP's Argon2id minimum (m=19456 KiB, t=2)");
        }
        for hook in &self.provisioning.webhooks {
            if !url::Url::parse(&hook.url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                problems.push(format!("provisioning.webhooks: {:?} is not an http(s) URL", hook.url));
            }
            if hook.secret.0.len() < 16 {
                problems.push("provisioning.webhooks: secret must be at least 16 characters".into());
            }
            if hook.attempts == 0 || hook.timeout_secs == 0 {
                problems.push("provisioning.webhooks: attempts and timeout_secs must be at least 1".into());
            }
        }
        if let Some(path) = &self.provisioning.init_sql_file
            && !path.is_file()
        {
            problems.push(format!("provisioning.init_sql_file: {} does not exist", path.display()));
        }
        if self.sms.transport == SmsTransportKind::Http
            && self.sms.http_url.as_deref().is_none_or(|u| url::Url::parse(u).is_err())
        {
            problems.push("sms.http_url: required (an absolute URL) when sms.transport = \"http\"".into());
        }
        for inst in &self.instances {
            for app in &inst.apps {
                if !app.partner_signup_path.starts_with('/')
                    || app.partner_signup_path.contains(['{', '}', '*'])
                {
                    problems.push(format!(
                        "instances.apps[{}].partner_signup_path: must be a plain path",
                        app.id
                    ));
                }
                for c in &app.contracts {
                    problems.extend(contract_problems(&app.id, &c.id, &c.fields));
                }
                if let Some(d) = &app.default_contract
                    && !app.contracts.iter().any(|c| &c.id == d)
                {
                    problems.push(format!("instances.apps[{}].default_contract: no contract {d:?}", app.id));
                }
            }
        }
        if !(1..=24 * 365).contains(&self.fast_track.confirm_within_hours) {
            problems.push("fast_track.confirm_within_hours: must be between 1 and 8760".into());
        }
        for name in &self.fast_track.reserved_names {
            if !is_instance_name(name) {
                problems.push(format!(
                    "fast_track.reserved_names: {name:?} is not an instance name (lower-case letters, digits and inner '-')"
                ));
            }
        }
        if self.fast_track.login_ttl_secs < 10 {
            problems.push("fast_track.login_ttl_secs: must be at least 10".into());
        }
        for o in &self.fast_track.allowed_origins {
            if let Err(e) = onramp_core::origin::OriginPattern::parse(o) {
                problems.push(format!("fast_track.allowed_origins: {e}"));
            }
        }
        if let Some(u) = &self.fast_track.form_url
            && url::Url::parse(u).map(|u| u.host().is_none()).unwrap_or(true)
        {
            problems.push(format!("fast_track.form_url: {u:?} is not an absolute URL"));
        }
        problems.extend(self.branding.problems(""));
        problems.extend(self.screening_problems());
        let mut names = std::collections::HashSet::new();
        for inst in &self.instances {
            if !is_instance_name(&inst.name) {
                problems
                    .push(format!("instances: {:?} is not a valid instance name (a-z, 0-9, '-')", inst.name));
            }
            if !names.insert(&inst.name) {
                problems.push(format!("instances: {:?} is declared twice", inst.name));
            }
            if let Some(l) = &inst.default_language
                && onramp_core::language::Language::parse("default_language", l).is_err()
            {
                problems
                    .push(format!("instance {:?}: default_language {l:?} is not a language tag", inst.name));
            }
            if let Some(service) = &inst.open_reg_email_service
                && !self.has_mail_service(&inst.name, service)
            {
                problems.push(format!(
                    "instance {:?}: open_reg_email_service {service:?} is neither \"default\" nor one of its mail_services",
                    inst.name
                ));
            }
            for m in &inst.mail_services {
                if m.name == "default" {
                    problems.push(format!(
                        "instance {:?}: a mail service may not be named \"default\"",
                        inst.name
                    ));
                }
                if m.transport == MailTransportKind::Smtp && m.smtp_url.is_none() {
                    problems
                        .push(format!("instance {:?}: mail service {:?} needs smtp_url", inst.name, m.name));
                }
            }
            if let Some(template) = &inst.open_reg_email_template
                && !self.has_mail_template(template)
            {
                problems.push(format!(
                    "instance {:?}: open_reg_email_template {template:?} is neither built in nor in mail_templates",
                    inst.name
                ));
            }
            problems.extend(inst.branding.problems(&format!("instance {:?}: ", inst.name)));
            let mut domain_ids = std::collections::HashSet::new();
            for app in &inst.apps {
                problems.extend(app.branding.problems(&format!("instances.apps[{}].", app.id)));
                for o in app.allowed_origins.iter().flatten() {
                    if let Err(e) = onramp_core::origin::OriginPattern::parse(o) {
                        problems.push(format!("instances.apps[{}].allowed_origins: {e}", app.id));
                    }
                }
                for other in app.reads_accounts_of.iter().flatten() {
                    if !inst.apps.iter().any(|a| &a.id == other) {
                        problems.push(format!(
                            "instances.apps[{}].reads_accounts_of: {other:?} is not an app of instance {:?}",
                            app.id, inst.name
                        ));
                    }
                }
                if app.api_keys.iter().any(|k| k.0.len() < 16) {
                    problems.push(format!(
                        "instances.apps[{}].api_keys: each key must be at least 16 characters",
                        app.id
                    ));
                }
                if url::Url::parse(&app.signup_url).map(|u| u.host().is_none()).unwrap_or(true) {
                    problems.push(format!(
                        "instances.apps[{}].signup_url: {:?} is not an absolute URL",
                        app.id, app.signup_url
                    ));
                }
                for d in &app.domains {
                    if !domain_ids.insert(&d.id) {
                        problems
                            .push(format!("instance {:?}: domain id {:?} is used twice", inst.name, d.id));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("invalid configuration:\n  {}", problems.join("\n  "))
        }
    }
}

/// What is wrong with a contract's fields (names, patterns, SMS verification on non-phones).
pub fn contract_problems(
    app: &str,
    contract: &str,
    fields: &[onramp_core::model::ContractField],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = std::collections::HashSet::new();
    let at = format!("app {app:?} contract {contract:?}");
    if contract.is_empty() || !contract.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        problems.push(format!("{at}: the id must be letters, digits, '-' and '_'"));
    }
    if contract == "confirm" || contract == "reset" || contract.parse::<i64>().is_ok() {
        problems.push(format!(
            "{at}: the id may not be \"confirm\", \"reset\" or a number (those paths are taken)"
        ));
    }
    for f in fields {
        if !names.insert(&f.name) {
            problems.push(format!("{at}: field {:?} is declared twice", f.name));
        }
        if let Some(p) = &f.pattern
            && regex::Regex::new(p).is_err()
        {
            problems.push(format!("{at}: field {:?} has an invalid pattern", f.name));
        }
        if f.verify.is_some()
            && (f.verify.as_deref() != Some("sms") || f.kind != onramp_core::model::FieldType::Phone)
        {
            problems.push(format!("{at}: field {:?}: verify = \"sms\" is for phone fields only", f.name));
        }
        if f.kind == onramp_core::model::FieldType::Password && f.unique {
            problems.push(format!("{at}: field {:?}: a password cannot be unique", f.name));
        }
    }
    if fields.iter().filter(|f| f.verify.is_some()).count() > 1 {
        problems.push(format!("{at}: at most one field may be verified by SMS"));
    }
    problems
}
