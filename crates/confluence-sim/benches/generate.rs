//! Generation benchmark: builds a 100,000-page / 10,000-user / 25-domain site and prints the
//! time and memory (VmRSS / VmHWM from /proc/self/status). Run with
//! `cargo bench -p confluence-sim --bench generate` (release profile).

use std::time::Instant;

use confluence_sim::SimConfig;

fn status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    let pages = std::env::var("SIM_BENCH_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let users = std::env::var("SIM_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let cfg = SimConfig {
        seed: "bench".into(),
        spaces: 10,
        pages,
        users,
        domains: 25,
        ..SimConfig::default()
    };
    let before = status_kb("VmRSS:").unwrap_or(0);
    let t = Instant::now();
    let sim = cfg.build();
    let gen_time = t.elapsed();
    let (n_pages, n_users, n_atts) =
        sim.read(|s| (s.pages.len(), s.users.len(), s.attachments.len()));
    // Render every body once to measure rendering cost too (bodies are lazy).
    let t = Instant::now();
    let total_body: usize = sim.read(|s| {
        s.pages
            .values()
            .map(|p| confluence_sim::generator::render_body(s, p).len())
            .sum()
    });
    let render_time = t.elapsed();
    let rss = status_kb("VmRSS:").unwrap_or(0);
    let hwm = status_kb("VmHWM:").unwrap_or(0);
    println!(
        "generated {n_pages} pages, {n_users} users, {n_atts} attachments in {:.2} s",
        gen_time.as_secs_f64()
    );
    println!(
        "rendered all bodies ({:.1} MB of storage XML) in {:.2} s",
        total_body as f64 / 1e6,
        render_time.as_secs_f64()
    );
    println!(
        "memory: VmRSS {:.1} MB (before {:.1} MB), VmHWM {:.1} MB",
        rss as f64 / 1024.0,
        before as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
}
