//! SMS transports: `file` writes one JSON document per message under `{data_dir}/sms/`
//! (temporary file + rename, named by the message id, so a retry overwrites); `http` posts the
//! same document to a provider endpoint. 2xx is sent; 4xx other than 408 and 429 is final;
//! anything else is retried by the outbox.

use super::mail::SendError;
use async_trait::async_trait;
use serde::Serialize;

/// One text message, as written or posted.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Sms {
    pub id: String,
    pub to: String,
    pub from: String,
    pub text: String,
}

#[async_trait]
pub trait SmsTransport: Send + Sync {
    async fn send(&self, sms: &Sms) -> Result<(), SendError>;
}

pub struct FileSms {
    dir: std::path::PathBuf,
}

impl FileSms {
    pub fn new(dir: std::path::PathBuf) -> Self {
        Self { dir }
    }
}

#[async_trait]
impl SmsTransport for FileSms {
    async fn send(&self, sms: &Sms) -> Result<(), SendError> {
        let stem: String = sms
            .id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
            .collect();
        let body = serde_json::to_vec_pretty(sms).map_err(|e| SendError::Permanent(e.to_string()))?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            onramp_store::private_fs::create_dir_all(&dir)?;
            onramp_store::private_fs::write_atomic(&dir.join(format!("{stem}.json")), &body)
        })
        .await
        .map_err(|e| SendError::Transient(e.to_string()))?
        .map_err(|e| SendError::Transient(format!("writing sms file: {e}")))
    }
}

pub struct HttpSms {
    client: reqwest::Client,
    url: String,
    authorization: Option<String>,
    timeout: std::time::Duration,
}

impl HttpSms {
    pub fn new(
        url: String,
        authorization: Option<String>,
        timeout: std::time::Duration,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(Self { client, url, authorization, timeout })
    }
}

#[async_trait]
impl SmsTransport for HttpSms {
    async fn send(&self, sms: &Sms) -> Result<(), SendError> {
        let mut request = self.client.post(&self.url).timeout(self.timeout).json(sms);
        if let Some(auth) = &self.authorization {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.map_err(|e| SendError::Transient(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
            Err(SendError::Permanent(format!("sms provider answered {status}")))
        } else {
            Err(SendError::Transient(format!("sms provider answered {status}")))
        }
    }
}
