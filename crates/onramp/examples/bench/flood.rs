//! The signup flood (issues 11 and 15), with its load in a process of its own.
//!
//! The bench re-runs itself as `bench flood BASE SECONDS CONNECTIONS RATE USERNAME`: that child
//! opens CONNECTIONS TCP connections to BASE (from 127.0.0.1), each a hyper HTTP/1.1 connection
//! of its own, and posts signups on all of them for SECONDS; meanwhile one existing user logs in
//! again and again from another loopback address (127.0.0.2) on a client and thread of their own.
//! It prints what it saw as one JSON line, which the bench reads.
//!
//! RATE is the offered load in requests per second over all connections, spread evenly (each
//! connection sends on its own schedule, so the flood is open, not a closed loop); `0` is a
//! closed loop where each connection sends its next request the moment its answer arrives. A
//! closed loop measures the load generator as much as the service: its latency is connections /
//! throughput (Little's law), whatever each request costs.
//!
//! In its own process the load generator's memory and tokio tasks are not the service's, so the
//! service's peak RSS and run queue are measured alone. Traffic goes to loopback only; every loop
//! is bounded by the deadline and a request count.

use crate::Window;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio::time::MissedTickBehavior;

/// Where the login user connects from, so the service sees them as another client.
const LOGIN_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const PASSWORD: &str = "a long benchmark passphrase";

/// A flood to run: how many connections, how long, at what offered rate (`None`: closed loop).
#[derive(Clone, Copy)]
pub struct Plan {
    pub connections: usize,
    pub secs: u64,
    pub rate: Option<f64>,
}

/// What the flood child saw.
#[derive(Serialize, Deserialize)]
pub struct Report {
    /// Requests sent, and over how long.
    pub sent: usize,
    pub secs: f64,
    /// Shed signups (503): how many, p50, p99 and slowest, in ms.
    pub shed: usize,
    pub shed_p50: f64,
    pub shed_p99: f64,
    pub shed_max: f64,
    pub without_retry_after: usize,
    /// Answers other than 503, and requests that got no answer (connection refused or reset).
    pub other: usize,
    pub failed: usize,
    /// Connections that could not be opened.
    pub refused: usize,
    pub logins: usize,
    pub logged_in: usize,
    pub login_p50: f64,
    pub login_max: f64,
}

impl Report {
    pub fn offered(&self) -> f64 {
        self.sent as f64 / self.secs
    }
}

/// Run `plan` against `base` from a child process (this bench, in `flood` mode).
pub async fn run(base: &str, plan: Plan, username: &str) -> Report {
    let exe = std::env::current_exe().unwrap();
    let output = tokio::process::Command::new(exe)
        .args([
            "flood",
            base,
            &plan.secs.to_string(),
            &plan.connections.to_string(),
            &plan.rate.unwrap_or(0.0).to_string(),
            username,
        ])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "flood child failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}

/// The child: `args` are BASE SECONDS CONNECTIONS RATE USERNAME.
pub async fn child(args: &[String]) {
    let base = args[0].clone();
    let secs: u64 = args[1].parse().unwrap();
    let connections: usize = args[2].parse().unwrap();
    let rate: f64 = args[3].parse().unwrap();
    let username = args[4].clone();
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();

    // Every connection is open before the clock starts.
    let mut senders = Vec::with_capacity(connections);
    let mut refused = 0;
    for _ in 0..connections {
        match connect(addr).await {
            Some(sender) => senders.push(sender),
            None => refused += 1,
        }
    }
    let start = Instant::now() + Duration::from_millis(100);
    let deadline = start + Duration::from_secs(secs);
    // Each connection's schedule, spread evenly over one period so the load is smooth.
    let period = (rate > 0.0).then(|| Duration::from_secs_f64(connections as f64 / rate));
    let flooders: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(c, sender)| {
            let offset = period.map_or(Duration::ZERO, |p| p.mul_f64(c as f64 / connections as f64));
            tokio::spawn(flooder(sender, addr, c, start + offset, period, deadline))
        })
        .collect();
    let login_user = std::thread::spawn(move || log_in_until(&base, &username, deadline));

    let mut totals = Flooder::default();
    for f in flooders {
        let f = f.await.unwrap();
        totals.sent += f.sent;
        totals.shed.extend(f.shed);
        totals.without_retry_after += f.without_retry_after;
        totals.other += f.other;
        totals.failed += f.failed;
    }
    let (logins, logged_in, login_times) = login_user.join().unwrap();
    let shed = Window::new(totals.shed, Duration::from_secs(secs));
    let login_times = Window::new(login_times, Duration::from_secs(secs));
    let report = Report {
        sent: totals.sent,
        secs: secs as f64,
        shed: shed.n,
        shed_p50: shed.p(0.5),
        shed_p99: shed.p(0.99),
        shed_max: shed.p(1.0),
        without_retry_after: totals.without_retry_after,
        other: totals.other,
        failed: totals.failed,
        refused,
        logins,
        logged_in,
        login_p50: login_times.p(0.5),
        login_max: login_times.p(1.0),
    };
    println!("{}", serde_json::to_string(&report).unwrap());
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One HTTP/1.1 connection from 127.0.0.1, driven by its own task.
async fn connect(addr: SocketAddr) -> Option<Sender> {
    let stream = TcpSocket::new_v4().ok()?.connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    Some(sender)
}

#[derive(Default)]
struct Flooder {
    sent: usize,
    shed: Vec<Duration>,
    without_retry_after: usize,
    other: usize,
    failed: usize,
}

/// Post signups on one connection until the deadline: on `period`'s schedule from `first`, or
/// back to back when there is none. A connection the service closes is opened again.
async fn flooder(
    mut sender: Sender,
    addr: SocketAddr,
    c: usize,
    first: Instant,
    period: Option<Duration>,
    deadline: Instant,
) -> Flooder {
    let mut out = Flooder::default();
    let mut ticks = period.map(|p| {
        let mut ticks = tokio::time::interval_at(first.into(), p);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks
    });
    if ticks.is_none() {
        tokio::time::sleep_until(first.into()).await;
    }
    for i in 0..100_000usize {
        if let Some(ticks) = ticks.as_mut() {
            ticks.tick().await;
        }
        if Instant::now() >= deadline {
            break;
        }
        let body = json!({
            "domain_id": "dom_bench", "account_title": "Flood", "name": "Flood User",
            "email": format!("f{c}-{i}@flood.example"), "country_id": "NL",
            "username": format!("flood{c}x{i}"), "password": PASSWORD,
        });
        let request = Request::post("/v1/auth/signup")
            .header(HOST, addr.to_string())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        out.sent += 1;
        let t = Instant::now();
        let answer = match sender.send_request(request).await {
            Ok(response) => {
                let shed = response.status() == 503;
                let retry_after = response.headers().contains_key(RETRY_AFTER);
                response.into_body().collect().await.ok().map(|_| (shed, retry_after))
            }
            Err(_) => None,
        };
        match answer {
            Some((true, retry_after)) => {
                out.shed.push(t.elapsed());
                out.without_retry_after += usize::from(!retry_after);
            }
            Some((false, _)) => out.other += 1,
            None => {
                out.failed += 1;
                match connect(addr).await {
                    Some(fresh) => sender = fresh,
                    None => break,
                }
            }
        }
    }
    out
}

/// The user logging in during the flood: their own client and thread, from another address.
/// A connection refused or reset counts as a login not served.
fn log_in_until(base: &str, username: &str, deadline: Instant) -> (usize, usize, Vec<Duration>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let client = reqwest::Client::builder().local_address(LOGIN_ADDRESS).build().unwrap();
        let url = format!("{base}/v1/auth/login");
        let (mut logins, mut logged_in, mut times) = (0usize, 0usize, Vec::new());
        while Instant::now() < deadline && logins < 10_000 {
            let body = json!({"username": username, "password": PASSWORD});
            let t = Instant::now();
            let served = client.post(&url).json(&body).send().await.is_ok_and(|r| r.status() == 200);
            times.push(t.elapsed());
            logins += 1;
            logged_in += usize::from(served);
        }
        (logins, logged_in, times)
    })
}
