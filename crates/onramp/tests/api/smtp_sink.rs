//! An in-process SMTP server for tests: it speaks enough SMTP for lettre, keeps each message,
//! and can be told to answer "try again later".

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
        Self::serve(|stream| async move { Some(stream) }).await
    }

    /// The same sink behind implicit TLS (`smtps://`), presenting the acceptor's certificate.
    pub async fn start_tls(acceptor: tokio_rustls::TlsAcceptor) -> Self {
        // A client that does not trust the certificate ends the handshake: no conversation.
        Self::serve(move |stream| {
            let acceptor = acceptor.clone();
            async move { acceptor.accept(stream).await.ok() }
        })
        .await
    }

    /// Accept on a loopback port; `open` turns each connection into the stream spoken over.
    async fn serve<S, F>(open: impl Fn(tokio::net::TcpStream) -> F + Send + Sync + 'static) -> Self
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
                let (s, opened) = (s.clone(), open(stream));
                tokio::spawn(async move {
                    if let Some(stream) = opened.await {
                        let _ = s.conversation(stream).await;
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

    async fn conversation<S>(&self, stream: S) -> std::io::Result<()>
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
                return Ok(());
            }
            let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" | "HELO" => b"250-sink\r\n250 8BITMIME\r\n",
                "MAIL" if self.failing.load(Ordering::SeqCst) => b"451 4.3.0 try again later\r\n",
                "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                "DATA" => {
                    write.write_all(b"354 go ahead\r\n").await?;
                    let mut data = Vec::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).await? == 0 {
                            return Ok(());
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
                    return Ok(());
                }
                _ => b"502 unknown command\r\n",
            };
            write.write_all(reply).await?;
        }
        Ok(())
    }
}
