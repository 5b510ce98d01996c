//! The Prometheus recorder: installed once per process, rendered at `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds: fine below 10 ms where the targets are, coarse above.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide handle; the first call installs the recorder.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            // Every `…_duration_seconds` is a histogram on the same buckets (HTTP requests,
            // calls to payment channels), so they can be compared and aggregated.
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".to_owned()),
                    LATENCY_BUCKETS,
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed already (an embedding program's):
            // then this handle renders nothing, which is what that program asked for.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Sets the gauges read from the database: every job kind in every live state (zero when it
/// has none, so a queue that empties reads zero rather than its last value), how long the
/// oldest due job of each kind has waited, and each waiting queue's size and oldest age.
pub(crate) fn record_figures(figures: &lendcore_engine::operations::Figures) {
    let age = |since: Option<lendcore_domain::Timestamp>| {
        since.map_or(0.0, |t| {
            (figures.at - t).num_milliseconds().max(0) as f64 / 1000.0
        })
    };
    for kind in lendcore_engine::jobs::kinds::ALL {
        for status in ["pending", "running", "dead"] {
            let found = figures
                .jobs
                .iter()
                .find(|j| j.kind == *kind && j.status == status);
            metrics::gauge!("lendcore_jobs", "kind" => *kind, "status" => status)
                .set(found.map_or(0.0, |j| j.count as f64));
            if status == "pending" {
                metrics::gauge!("lendcore_jobs_oldest_due_age_seconds", "kind" => *kind)
                    .set(age(found.and_then(|j| j.oldest_due)));
            }
        }
    }
    for queue in &figures.queues {
        metrics::gauge!("lendcore_queue_items", "queue" => queue.queue.clone())
            .set(queue.count as f64);
        metrics::gauge!("lendcore_queue_oldest_age_seconds", "queue" => queue.queue.clone())
            .set(age(queue.oldest));
    }
    // Every step named, so one emptied reads 0 rather than its last figure.
    for step in lendcore_engine::operations::APPLICATION_STEPS {
        let found = figures.applications.iter().find(|a| a.queue == step);
        metrics::gauge!("lendcore_applications", "state" => step)
            .set(found.map_or(0.0, |a| a.count as f64));
        metrics::gauge!("lendcore_applications_oldest_age_seconds", "state" => step)
            .set(age(found.and_then(|a| a.oldest)));
    }
}
