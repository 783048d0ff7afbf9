//! `bench -- import [DATABASE_URL|-] [ROWS]`: a user import of ROWS (default 100,000) through
//! `POST /admin/v1/instances/default/users/import`, streamed as JSON Lines (each with a bcrypt
//! hash, as an import from another system carries), and the memory it takes: the peak resident
//! set during the import (the process's, load generator included; the peak is reset first),
//! against the size of the data. Goal: memory does not grow with the rows (the import reads a
//! batch at a time), so the peak stays far under the input's size.

use super::{bench_config, peak_rss_mib, serve};
use futures_util::StreamExt;
use onramp::app::{Ports, Service};
use onramp_core::admin::AdminPrincipal;
use std::time::Instant;

/// Rows generated per chunk of the request body.
const CHUNK: usize = 1000;

fn rss_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

pub async fn run(url: Option<String>, rows: usize) {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::build(bench_config(dir.path(), url), Ports::default()).await.unwrap();
    let base = serve(&service).await;
    let admin = service.state.onramp.admin();
    let (_, token) = admin.create_token(&AdminPrincipal::cli(), None, false, "bench").await.unwrap();
    println!("import: database {}", service.state.config.database_url().split(':').next().unwrap_or(""));
    // A tenth first, then all of them: bounded memory grows the same for both.
    let small = import(&base, &token, "small", rows / 10).await;
    let large = import(&base, &token, "large", rows).await;
    let flat = large <= small * 1.5 + 2.0;
    println!(
        "goal: memory does not grow with the rows: +{large:.1} MiB for {rows} vs +{small:.1} MiB for {} -- {}",
        rows / 10,
        if flat { "met" } else { "MISSED" }
    );
}

/// Import `rows` users (addresses tagged `tag`); how much the peak resident set grew, in MiB.
async fn import(base: &str, token: &str, tag: &'static str, rows: usize) -> f64 {
    let hash: &'static str = Box::leak(bcrypt::hash("an imported password", 4).unwrap().into_boxed_str());
    let row = move |n: usize| {
        format!(
            "{{\"email\":\"{tag}{n}@import.example\",\"first_name\":\"Imported\",\"last_name\":\"User {n}\",\
             \"username\":\"{tag}{n:08}\",\"metadata\":{{\"old_id\":{n}}},\"password_hash\":\"{hash}\"}}\n"
        )
    };
    let bytes = (0..rows).map(|n| row(n).len()).sum::<usize>() as f64 / (1024.0 * 1024.0);
    // The footprint now, then the peak from here on.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let idle = rss_mib("VmRSS:");
    let chunks = futures_util::stream::iter((0..rows).step_by(CHUNK)).map(move |start| {
        let text: String = (start..(start + CHUNK).min(rows)).map(row).collect();
        Ok::<_, std::io::Error>(text)
    });
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{base}/admin/v1/instances/default/users/import"))
        .bearer_auth(token)
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Read the answer as it comes, keeping only the last line (the summary).
    let mut answer = response.bytes_stream();
    let (mut lines, mut tail) = (0usize, Vec::new());
    while let Some(chunk) = answer.next().await {
        let chunk = chunk.unwrap();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        tail.extend_from_slice(&chunk);
        if let Some(cut) = tail[..tail.len().saturating_sub(1)].iter().rposition(|b| *b == b'\n') {
            tail.drain(..=cut);
        }
    }
    let elapsed = started.elapsed();
    let peak = peak_rss_mib();
    let summary = String::from_utf8_lossy(&tail).trim().to_owned();
    assert_eq!(lines, rows + 1, "{summary}");
    println!(
        "import       {rows:>7} in {:>6.2}s = {:>8.1}/s   {bytes:.1} MiB in; RSS {idle:.1} MiB before, peak {peak:.1} MiB (+{:.1})   {summary}",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64(),
        peak - idle
    );
    peak - idle
}
