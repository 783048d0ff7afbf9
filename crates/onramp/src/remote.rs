//! The screening's calls outside the process, over HTTP: a CAPTCHA provider's siteverify,
//! the breached-password range API, and the operator's before-signup hook (signed per
//! Standard Webhooks). No redirect is followed; every call has its own time bound.

use async_trait::async_trait;
use onramp_core::clock::Clock;
use onramp_core::screening::{BreachCheck, Captcha, HookAnswer, Remote, SignupHook};
use onramp_core::token::TokenGenerator;
use std::sync::Arc;
use std::time::Duration;

/// How long siteverify may take.
const SITEVERIFY_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an answer read (a range is about 30 KiB with padding).
const MAX_ANSWER: usize = 256 * 1024;

pub struct HttpRemote {
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    tokens: Arc<dyn TokenGenerator>,
}

impl HttpRemote {
    pub fn new(clock: Arc<dyn Clock>, tokens: Arc<dyn TokenGenerator>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("onramp/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, clock, tokens })
    }
}

/// The body of a 2xx answer, at most `MAX_ANSWER` bytes.
async fn body_of(response: reqwest::Response) -> Result<Vec<u8>, String> {
    let status = response.status();
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    if response.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
        return Err("answer too large".into());
    }
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    if bytes.len() > MAX_ANSWER {
        return Err("answer too large".into());
    }
    Ok(bytes.to_vec())
}

#[derive(serde::Deserialize)]
struct SiteVerify {
    success: bool,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Decision {
    Allow,
    #[serde(alias = "reject")]
    Deny,
}

#[derive(serde::Deserialize)]
struct HookReply {
    decision: Decision,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[async_trait]
impl Remote for HttpRemote {
    async fn verify_captcha(
        &self,
        captcha: &Captcha,
        token: &str,
        client: Option<&str>,
    ) -> Result<bool, String> {
        let mut form = vec![("secret", captcha.secret.as_str()), ("response", token)];
        if let Some(ip) = client {
            form.push(("remoteip", ip));
        }
        let response = self
            .client
            .post(&captcha.verify_url)
            .timeout(SITEVERIFY_TIMEOUT)
            .form(&form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body = body_of(response).await?;
        let answer: SiteVerify =
            serde_json::from_slice(&body).map_err(|e| format!("unreadable answer: {e}"))?;
        Ok(answer.success)
    }

    async fn password_range(&self, check: &BreachCheck, prefix: &str) -> Result<String, String> {
        let response = self
            .client
            .get(format!("{}{prefix}", check.url))
            .timeout(check.timeout)
            .header("add-padding", "true")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body = body_of(response).await?;
        String::from_utf8(body).map_err(|_| "the range is not text".into())
    }

    async fn before_signup(&self, hook: &SignupHook, data: &serde_json::Value) -> Result<HookAnswer, String> {
        let now = self.clock.now();
        let timestamp =
            now.format(&time::format_description::well_known::Rfc3339).map_err(|e| e.to_string())?;
        let body = serde_json::to_vec(&serde_json::json!({
            "type": "signup.before",
            "timestamp": timestamp,
            "data": data,
        }))
        .map_err(|e| e.to_string())?;
        let id = self.tokens.public_id("msg");
        let mut request =
            self.client.post(&hook.url).timeout(hook.timeout).header("content-type", "application/json");
        for (name, value) in
            crate::standard_webhooks::headers(&[&hook.secret], &id, now.unix_timestamp(), &body)
        {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.map_err(|e| {
            if e.is_timeout() {
                format!("no answer within {} ms", hook.timeout.as_millis())
            } else {
                e.to_string()
            }
        })?;
        let body = body_of(response).await?;
        let reply: HookReply =
            serde_json::from_slice(&body).map_err(|e| format!("unreadable answer: {e}"))?;
        Ok(match reply.decision {
            Decision::Allow => HookAnswer::Allow { metadata: reply.metadata },
            Decision::Deny => HookAnswer::Deny {
                code: reply.code.unwrap_or_default(),
                message: reply.message.unwrap_or_default(),
            },
        })
    }
}
