//! Mail transports: `file` (an atomic `.eml` per message) and `smtp` (lettre; plain, STARTTLS
//! or TLS as the URL says).

use super::templates::RenderedMail;
use crate::config::{MailConfig, MailTransportKind};
use anyhow::Context;
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};

/// Did the TLS handshake fail? lettre reports a certificate it does not trust as a
/// connection error, so its causes are read too.
fn is_tls_failure(e: &lettre::transport::smtp::Error) -> bool {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&s.to_string());
        source = s.source();
    }
    let text = text.to_ascii_lowercase();
    e.is_tls() || ["certificate", "tls", "handshake"].iter().any(|w| text.contains(w))
}

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
    /// The TLS handshake with the mail server failed (an unknown CA, a wrong name, an old
    /// protocol): a configuration error, retried like a transient one once it is fixed.
    #[error("TLS (a configuration error: check mail.tls_ca_file and the server's certificate): {0}")]
    Tls(String),
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

/// Where distributions keep the system's CA bundle (Debian/Ubuntu, RHEL/Fedora, Alpine/macOS).
const SYSTEM_CA_BUNDLES: [&str; 3] =
    ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

impl SmtpTransport {
    /// The transport `url` names. Its TLS (`smtps://`, or `?tls=required|opportunistic`) trusts
    /// the public roots, the system's CA bundle, and `ca_file` when given.
    pub fn from_url(url: &str, timeout: std::time::Duration, ca_file: Option<&Path>) -> anyhow::Result<Self> {
        use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?.timeout(Some(timeout));
        let parsed = url::Url::parse(url)?;
        let tls = parsed.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
        let wrapper = parsed.scheme() == "smtps";
        if wrapper || matches!(tls.as_deref(), Some("required" | "opportunistic")) {
            let host = parsed.host_str().ok_or_else(|| anyhow::anyhow!("the SMTP URL has no host"))?;
            let mut params = TlsParameters::builder(host.to_owned());
            let system = SYSTEM_CA_BUNDLES.iter().map(Path::new).find(|p| p.exists());
            for file in system.into_iter().chain(ca_file) {
                let pem = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate bundle: {e}", file.display()))?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build_rustls()?;
            builder = builder.tls(match (wrapper, tls.as_deref()) {
                (true, _) => Tls::Wrapper(params),
                (false, Some("required")) => Tls::Required(params),
                _ => Tls::Opportunistic(params),
            });
        }
        Ok(Self { inner: builder.build(), timeout })
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
            Ok(Err(e)) if is_tls_failure(&e) => Err(SendError::Tls(e.to_string())),
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
            Box::new(SmtpTransport::from_url(
                &url.0,
                std::time::Duration::from_secs(config.timeout_secs),
                config.tls_ca_file.as_deref(),
            )?)
        }
    })
}
