//! An in-process SMTP server for tests: it speaks enough SMTP for lettre, keeps each message,
//! and can be told to answer "try again later". Plain, behind implicit TLS (`smtps://`), or
//! offering STARTTLS (`smtp://…?tls=required`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

#[derive(Clone)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    pub messages: Arc<Mutex<Vec<Vec<u8>>>>,
    failing: Arc<AtomicBool>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::serve(|stream| async move { Some(stream) }, None).await
    }

    /// A plain sink that offers STARTTLS and, when asked, upgrades with the acceptor's
    /// certificate before the conversation goes on.
    pub async fn start_starttls(acceptor: tokio_rustls::TlsAcceptor) -> Self {
        Self::serve(|stream| async move { Some(stream) }, Some(acceptor)).await
    }

    /// The same sink behind implicit TLS (`smtps://`), presenting the acceptor's certificate.
    pub async fn start_tls(acceptor: tokio_rustls::TlsAcceptor) -> Self {
        // A client that does not trust the certificate ends the handshake: no conversation.
        Self::serve(
            move |stream| {
                let acceptor = acceptor.clone();
                async move { acceptor.accept(stream).await.ok() }
            },
            None,
        )
        .await
    }

    /// Accept on a loopback port; `open` turns each connection into the stream spoken over;
    /// with `starttls`, STARTTLS is offered and upgrades the connection.
    async fn serve<S, F>(
        open: impl Fn(tokio::net::TcpStream) -> F + Send + Sync + 'static,
        starttls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Self
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        F: std::future::Future<Output = Option<S>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let sink = Self {
            addr: listener.local_addr().expect("addr"),
            messages: Arc::default(),
            failing: Arc::new(AtomicBool::new(false)),
        };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s, opened, starttls) = (s.clone(), open(stream), starttls.clone());
                tokio::spawn(async move {
                    let Some(stream) = opened.await else { return };
                    let Ok(Some(plain)) = s.conversation(stream, starttls.is_some()).await else { return };
                    // STARTTLS: the same conversation again, over TLS (a client that does not
                    // trust the certificate ends the handshake).
                    if let Some(tls) = starttls
                        && let Ok(stream) = tls.accept(plain).await
                    {
                        let _ = s.conversation(stream, false).await;
                    }
                });
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// While failing, every MAIL FROM gets `451` (a transient refusal).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub async fn received(&self) -> Vec<Vec<u8>> {
        self.messages.lock().await.clone()
    }

    /// Speak SMTP until QUIT or the end; `Some(stream)` when the client asked for STARTTLS
    /// (offered only with `offer_tls`) and the stream is to be upgraded.
    async fn conversation<S>(&self, stream: S, offer_tls: bool) -> std::io::Result<Option<S>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let (read, mut write) = tokio::io::split(stream);
        let mut lines = BufReader::new(read);
        write.write_all(b"220 sink ESMTP ready\r\n").await?;
        let mut line = String::new();
        // Bounded: no conversation in a test has more than a few hundred lines.
        for _ in 0..10_000 {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(None);
            }
            let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" if offer_tls => b"250-sink\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
                "EHLO" | "HELO" => b"250-sink\r\n250 8BITMIME\r\n",
                "STAR" if offer_tls => {
                    write.write_all(b"220 2.0.0 ready to start TLS\r\n").await?;
                    write.flush().await?;
                    return Ok(Some(lines.into_inner().unsplit(write)));
                }
                "MAIL" if self.failing.load(Ordering::SeqCst) => b"451 4.3.0 try again later\r\n",
                "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                "DATA" => {
                    write.write_all(b"354 go ahead\r\n").await?;
                    let mut data = Vec::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).await? == 0 {
                            return Ok(None);
                        }
                        if line == ".\r\n" {
                            break;
                        }
                        data.extend_from_slice(line.strip_prefix('.').unwrap_or(&line).as_bytes());
                    }
                    self.messages.lock().await.push(data);
                    b"250 queued\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await?;
                    write.flush().await?;
                    return Ok(None);
                }
                _ => b"502 unknown command\r\n",
            };
            write.write_all(reply).await?;
        }
        Ok(None)
    }
}
