//! `lendcore loadtest run`: stress a running lendcore over its API, as its borrowers and the
//! lender's back-end would, at an open-loop rate: operations start on a Poisson schedule
//! whatever the service answers, and each is timed from when it was due to start, so a service
//! that falls behind shows it as latency rather than hiding it by slowing the load down.
//! Scenarios: `apply` (sign in by SMS code, fill in and submit an application), `drawdown`
//! (quote and confirm), `repay` (a repayment on an active loan) and `mixed`. Payout faults are
//! injected through the sandbox channel's scripted accounts. The report is text, and an HTML
//! page with a latency histogram and the errors by code.

mod report;
mod scenarios;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use rand::{Rng, SeedableRng};

pub use scenarios::{Faults, Scenario};

/// What to run, against what.
pub struct Options {
    /// The service, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// An API key with every scope the scenario needs (products, credit lines, drawdowns,
    /// loans: write).
    pub key: String,
    pub scenario: Scenario,
    /// Operations started per second, on average.
    pub rate: f64,
    pub duration: Duration,
    pub faults: Faults,
    /// Where to write the HTML report.
    pub html: Option<PathBuf>,
    /// Stress a service not on this machine (off by default: a load test is not to be pointed
    /// at production by a slip).
    pub allow_remote: bool,
    /// The sandbox SMS gateway's inbox (`…/v1/messages`) and its bearer token, where `apply`
    /// reads the sign-in codes.
    pub sms_inbox: Option<String>,
    pub sms_key: Option<String>,
    /// Send each applicant from an address of its own (`X-Forwarded-For`), for a service that
    /// trusts that header (`server.client_ip_header`); otherwise the per-client sign-in limit
    /// caps `apply` at a few sign-ins an hour from one machine.
    pub forwarded_for: bool,
    pub seed: u64,
}

/// Operations in flight at most; one due while they are all busy is counted as an error of
/// the load generator's own (`client.saturated`), not sent late.
pub(crate) const MAX_IN_FLIGHT: usize = 4096;
/// The error of an operation due while [`MAX_IN_FLIGHT`] were in flight: never sent.
pub const SATURATED: &str = "client.saturated";

/// How one operation went.
#[derive(Debug, Clone)]
pub struct Sample {
    pub op: scenarios::Op,
    /// From when it was due to start to when its last answer came.
    pub latency: Duration,
    /// `None` when every step succeeded; else the error code of the step that failed.
    pub error: Option<String>,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let target = reqwest::Url::parse(&options.url).context("--url")?;
    anyhow::ensure!(
        options.allow_remote || is_loopback(&target),
        "{} is not on this machine: pass --allow-remote to stress it anyway",
        options.url
    );
    anyhow::ensure!(
        options.rate > 0.0 && options.rate <= 100_000.0,
        "--rate must be above 0 and at most 100000 a second"
    );
    anyhow::ensure!(
        !options.duration.is_zero() && options.duration <= Duration::from_secs(3600),
        "--duration must be from 1 to 3600 seconds"
    );
    anyhow::ensure!(
        options.rate * options.duration.as_secs_f64() <= 1_000_000.0,
        "at most a million operations a run: lower --rate or --duration"
    );
    let client = scenarios::Client::new(&options)?;
    let planned = (options.rate * options.duration.as_secs_f64()).ceil() as usize;
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    let ops: Vec<scenarios::Op> = (0..planned)
        .map(|_| options.scenario.pick(&mut rng))
        .collect();
    eprintln!(
        "preparing {} against {} ({planned} operations planned)",
        options.scenario.as_str(),
        options.url
    );
    let world = Arc::new(client.prepare(&ops, options.faults, options.seed).await?);

    eprintln!(
        "running: {:.0} operations a second for {} s, open loop",
        options.rate,
        options.duration.as_secs()
    );
    let bar = indicatif::ProgressBar::new(planned as u64).with_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(options.scenario.as_str());
    let in_flight = Arc::new(AtomicUsize::new(0));
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let mut due = Duration::ZERO;
    let mut tasks = Vec::with_capacity(planned);
    for (n, op) in ops.into_iter().enumerate() {
        due += poisson_gap(&mut rng, options.rate);
        let at = start + due;
        tokio::time::sleep_until(at).await;
        let (world, bar, in_flight) = (world.clone(), bar.clone(), in_flight.clone());
        if in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::SeqCst);
            bar.inc(1);
            tasks.push(tokio::spawn(async move {
                Sample {
                    op,
                    latency: Duration::ZERO,
                    error: Some(SATURATED.to_owned()),
                }
            }));
            continue;
        }
        tasks.push(tokio::spawn(async move {
            let error = world.perform(op, n).await.err();
            let sample = Sample {
                op,
                latency: at.elapsed(),
                error,
            };
            in_flight.fetch_sub(1, Ordering::SeqCst);
            bar.inc(1);
            sample
        }));
    }
    let offered_for = start.elapsed();
    let mut samples = Vec::with_capacity(tasks.len());
    for task in tasks {
        samples.push(task.await?);
    }
    let elapsed = start.elapsed();
    bar.finish();
    let summary = report::Summary::of(
        &options,
        &samples,
        offered_for.max(options.duration),
        elapsed,
    );
    println!("{}", summary.text());
    if let Some(path) = &options.html {
        std::fs::write(path, summary.html())
            .with_context(|| format!("writing {}", path.display()))?;
        println!("report: {}", path.display());
    }
    Ok(())
}

/// The time to the next of a Poisson process's arrivals at `rate` a second: an exponential
/// gap.
pub(crate) fn poisson_gap(rng: &mut impl Rng, rate: f64) -> Duration {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    Duration::from_secs_f64(-u.ln() / rate)
}

/// The latencies, in milliseconds and in order, of the requests that were sent (one the load
/// generator never sent, being saturated, has none).
pub(crate) fn sent_latencies_ms<'a>(
    samples: impl Iterator<Item = (Duration, Option<&'a str>)>,
) -> Vec<f64> {
    let mut sent: Vec<f64> = samples
        .filter(|(_, error)| *error != Some(SATURATED))
        .map(|(latency, _)| latency.as_secs_f64() * 1000.0)
        .collect();
    sent.sort_by(f64::total_cmp);
    sent
}

/// The `q` quantile of sorted values by nearest rank: the smallest value with at least that
/// share of the values at or below it (0 when there are none).
pub(crate) fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let rank = (sorted.len() as f64 * q).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len().max(1)) - 1)
        .copied()
        .unwrap_or(0.0)
}

/// The code of a request that got no answer.
pub(crate) fn transport_code(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "client.timeout".to_owned()
    } else {
        "client.connection".to_owned()
    }
}

/// The code of a refusal: the `code` of lendcore's error body, else the HTTP status.
pub(crate) fn refusal_code(status: reqwest::StatusCode, body: &serde_json::Value) -> String {
    body["code"]
        .as_str()
        .map_or_else(|| format!("http.{}", status.as_u16()), str::to_owned)
}

/// Whether a URL names this machine.
fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_taken_by_nearest_rank() {
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        let at = |q| nearest_rank(&hundred, q);
        assert_eq!(
            (at(0.5), at(0.9), at(0.99), at(1.0)),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(nearest_rank(&[7.0], 0.99), 7.0);
        assert_eq!(nearest_rank(&[], 0.5), 0.0);
        let sent = sent_latencies_ms(
            [
                (Duration::from_millis(3), None),
                (Duration::from_millis(1), Some("risk.velocity")),
                (Duration::from_millis(9), Some(SATURATED)),
            ]
            .into_iter(),
        );
        assert_eq!(sent, [1.0, 3.0], "in order, without what was never sent");
    }

    #[test]
    fn only_this_machine_unless_told_otherwise() {
        for local in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:80",
            "http://127.9.9.9",
        ] {
            assert!(is_loopback(&reqwest::Url::parse(local).unwrap()), "{local}");
        }
        for remote in [
            "http://10.0.0.1:8080",
            "https://lendcore.lender.example",
            "http://[2001:db8::1]",
        ] {
            assert!(
                !is_loopback(&reqwest::Url::parse(remote).unwrap()),
                "{remote}"
            );
        }
    }
}
