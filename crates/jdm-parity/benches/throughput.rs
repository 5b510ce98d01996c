//! Throughput of the same JDM model evaluated by GoRules' zen-engine (compiled, its fastest
//! form) and by lendcore (imported into a policy, evaluated natively), over the same 10,000
//! lines, side by side in one run: `cargo bench -p lendcore-jdm-parity`. The ratio is what
//! docs/PERFORMANCE.md reports; each figure alone moves with the machine's load.

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lendcore_domain::decision::{BureauStatus, Stage};
use lendcore_jdm_parity::{lines, native_policy};
use zen_engine::{EvaluationOptions, Variable};

const LINES: usize = 10_000;

fn both(c: &mut Criterion) {
    let lines = lines(LINES, 2026);
    let (policy, _) = native_policy();
    let features: Vec<_> = lines.iter().map(|l| l.features()).collect();
    let contexts: Vec<Variable> = lines.iter().map(|l| l.context().into()).collect();
    let decision = common::zen_decision();
    let runtime = common::runtime();

    let mut group = c.benchmark_group("line review model, 10,000 lines");
    group.throughput(Throughput::Elements(LINES as u64));
    group.sample_size(20);
    group.bench_function("zen-engine", |b| {
        b.iter(|| {
            runtime.block_on(async {
                for context in &contexts {
                    let response = decision
                        .evaluate_with_opts(
                            context.deep_clone(),
                            EvaluationOptions {
                                trace: false,
                                max_depth: 5,
                            },
                        )
                        .await
                        .expect("zen-engine evaluates");
                    std::hint::black_box(response);
                }
            })
        })
    });
    group.bench_function("lendcore", |b| {
        b.iter(|| {
            for f in &features {
                std::hint::black_box(policy.decide(Stage::LineReview, f, BureauStatus::Answered));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, both);
criterion_main!(benches);
