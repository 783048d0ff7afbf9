//! Mail transports: `file` (an atomic `.eml` per message) and `smtp` (lettre; plain, STARTTLS
//! or TLS as the URL says).

use super::templates::RenderedMail;
use crate::config::{MailConfig, MailTransportKind};
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;

/// Why a send failed: `Permanent` failures are dead-lettered at once, others retried.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("permanent: {0}")]
    Permanent(String),
    #[error("transient: {0}")]
    Transient(String),
    /// This node cannot open the sealed payload (another key, or damage): it is left for a node
    /// that can, never dead-lettered here.
    #[error("unopenable: {0}")]
    Unopenable(String),
}

#[async_trait]
pub trait MailTransport: Send + Sync {
    async fn send(&self, message: &Message) -> Result<(), SendError>;
}

/// Build the RFC 5322 message. The Message-ID was fixed when the mail was enqueued, so a retry
/// repeats it.
pub fn build_message(
    from: &str,
    to: &str,
    message_id: &str,
    mail: &RenderedMail,
) -> Result<Message, SendError> {
    let from: Mailbox = from.parse().map_err(|e| SendError::Permanent(format!("bad from address: {e}")))?;
    let to: Mailbox = to.parse().map_err(|e| SendError::Permanent(format!("bad recipient: {e}")))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject.clone())
        .message_id(Some(message_id.to_owned()))
        .multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()))
        .map_err(|e| SendError::Permanent(e.to_string()))
}

/// Writes `{dir}/{message-id}.eml` (0600: it may hold a generated password) through a temporary
/// file and a rename: a reader never sees half a message, and a retry of the same message
/// replaces the file instead of adding one.
pub struct FileTransport {
    dir: PathBuf,
}

impl FileTransport {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

fn file_stem(message_id: &str) -> String {
    message_id
        .chars()
        .filter(|c| !matches!(c, '<' | '>'))
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') { c } else { '_' })
        .collect()
}

#[async_trait]
impl MailTransport for FileTransport {
    async fn send(&self, message: &Message) -> Result<(), SendError> {
        let id = message
            .headers()
            .get_raw("Message-ID")
            .ok_or_else(|| SendError::Permanent("message has no Message-ID".into()))?
            .to_owned();
        let bytes = message.formatted();
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            onramp_store::private_fs::create_dir_all(&dir)?;
            onramp_store::private_fs::write_atomic(&dir.join(format!("{}.eml", file_stem(&id))), &bytes)
        })
        .await
        .map_err(|e| SendError::Transient(e.to_string()))?
        .map_err(|e| SendError::Transient(format!("writing mail file: {e}")))
    }
}

pub struct SmtpTransport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
    timeout: std::time::Duration,
}

impl SmtpTransport {
    pub fn from_url(url: &str, timeout: std::time::Duration) -> anyhow::Result<Self> {
        let inner = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?.timeout(Some(timeout)).build();
        Ok(Self { inner, timeout })
    }
}

#[async_trait]
impl MailTransport for SmtpTransport {
    async fn send(&self, message: &Message) -> Result<(), SendError> {
        // lettre's own timeout covers each network step it bounds, not a server that accepts
        // the connection and then says nothing: the whole conversation is bounded here.
        let whole = self.timeout * 3;
        match tokio::time::timeout(whole, self.inner.send(message.clone())).await {
            Err(_) => Err(SendError::Transient(format!("no answer from the SMTP server within {whole:?}"))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Ok(Err(e)) => Err(SendError::Transient(e.to_string())),
        }
    }
}

/// The transport the configuration names.
pub fn transport(config: &MailConfig, data_dir: &std::path::Path) -> anyhow::Result<Box<dyn MailTransport>> {
    Ok(match config.transport {
        MailTransportKind::File => Box::new(FileTransport::new(data_dir.join("mail"))),
        MailTransportKind::Smtp => {
            let url = config.smtp_url.as_ref().ok_or_else(|| anyhow::anyhow!("mail.smtp_url is required"))?;
            Box::new(SmtpTransport::from_url(&url.0, std::time::Duration::from_secs(config.timeout_secs))?)
        }
    })
}
