//! Connection bounds of the server loop `onramp serve` runs: slow-header and idle
//! connections are closed after the header timeout, connections past the cap are closed at
//! once, and normal requests keep flowing meanwhile. Loopback only; every wait is bounded.

use crate::helpers::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Wait (at most `within`) for the server to close `stream`; true if it did.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or similar before the close is fine; keep reading to the end.
            Ok(Ok(_)) => continue,
        }
    }
}

async fn healthz(app: &TestApp) -> u16 {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    client.get(app.url("/healthz")).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_while_normal_requests_flow() {
    let app = TestApp::spawn_with(SQLITE, |c| {
        c.server.header_timeout_secs = 1;
        c.server.max_connections = 64;
    })
    .await;
    let mut slow = Vec::new();
    for i in 0..10 {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        if i % 2 == 0 {
            // Half a request, then nothing (slowloris).
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").await.unwrap();
        }
        slow.push(s);
    }
    // A keep-alive connection that served one request and then idles.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // Meanwhile, real clients are served.
    for _ in 0..5 {
        assert_eq!(healthz(&app).await, 200);
    }
    for s in slow.iter_mut() {
        assert!(closed_within(s, Duration::from_secs(5)).await, "a slow or silent connection stayed open");
    }
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "an idle keep-alive connection stayed open"
    );
    assert_eq!(healthz(&app).await, 200);
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once_and_service_returns() {
    let app = TestApp::spawn_with(SQLITE, |c| {
        c.server.header_timeout_secs = 2;
        c.server.max_connections = 8;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(app.addr).await.unwrap());
    }
    // Give the server a moment to accept all eight.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut ninth = TcpStream::connect(app.addr).await.unwrap();
    ninth.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.ok();
    // Closed at once: well before the header timeout would have closed it.
    assert!(closed_within(&mut ninth, Duration::from_millis(1500)).await, "the ninth connection was kept");
    // The held ones time out; then the service answers again.
    for s in held.iter_mut() {
        assert!(closed_within(s, Duration::from_secs(6)).await);
    }
    assert_eq!(healthz(&app).await, 200);
}
