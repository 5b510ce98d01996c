//! Alerts from lendcore's own records. The audit chain is rolled up into counts by minute (it is
//! sealed, ordered by seq and the same for every process, so every process would count alike
//! and nothing is counted twice: the counts and the seq they reach are written together);
//! each rule is then evaluated over its window per group, and the alerts' states (kept in the
//! database, so a restart loses none) move as the domain says.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{Duration, DurationRound};
use lendcore_domain::Timestamp;
use lendcore_domain::alerting::{
    AlertRule, AlertState, Condition, Counts, Evidence, Selector, Signal, Step, next_state,
};
use lendcore_domain::audit::AuditRecord;
use lendcore_domain::topic::Topic;
use lendcore_store::{Job, NewJob, SignalCount, Store, StoredAlert, UnitOfWork};
use serde::{Deserialize, Serialize};

use crate::jobs::{JobContext, JobDone, JobFailure, JobHandler, kinds};
use crate::{Clock, Engine, EngineError, new_id};

/// Serialises roll-ups and evaluations across processes (PostgreSQL; SQLite has one writer).
const ALERTS_LOCK: &str = "alerts";

/// Audit records rolled up per transaction.
const ROLL_UP_PAGE: u32 = 2_000;

/// Rolls every sealed audit record not yet counted into the signal counts; returns how many
/// records it read.
pub async fn roll_up(store: &dyn Store) -> Result<u64, EngineError> {
    let mut read = 0;
    loop {
        let mut uow = store.begin().await?;
        // One roll-up at a time (evaluations may overlap across processes): two reading the
        // same cursor would count the same records twice.
        uow.serialise_on(ALERTS_LOCK).await?;
        let after = uow.alert_cursor().await?;
        let records = uow.audit_records(after, ROLL_UP_PAGE).await?;
        let Some(last) = records.last().map(|r| r.seq) else {
            return Ok(read);
        };
        let mut counts: BTreeMap<(Signal, Timestamp, String), (i64, Vec<String>)> = BTreeMap::new();
        for record in &records {
            if let Some(Counted {
                signal,
                labels,
                example,
            }) = signal_of(record)
            {
                let minute = record
                    .entry
                    .at
                    .duration_trunc(Duration::minutes(1))
                    .unwrap_or(record.entry.at);
                let (count, examples) = counts.entry((signal, minute, labels)).or_default();
                *count += 1;
                if examples.len() == EXAMPLES_PER_COUNT {
                    examples.remove(0);
                }
                examples.push(example);
            }
        }
        let counts: Vec<SignalCount> = counts
            .into_iter()
            .map(
                |((signal, minute, labels), (count, examples))| SignalCount {
                    signal: signal.as_str().to_owned(),
                    minute,
                    labels,
                    count,
                    examples,
                },
            )
            .collect();
        uow.add_signal_counts(&counts, last).await?;
        uow.commit().await?;
        read += records.len() as u64;
        if records.len() < ROLL_UP_PAGE as usize {
            return Ok(read);
        }
    }
}

/// The latest records of each count kept as examples of it.
const EXAMPLES_PER_COUNT: usize = 3;
/// Examples an alert shows.
const EXAMPLES_PER_ALERT: usize = 5;

/// What an audit record counts as.
struct Counted {
    signal: Signal,
    /// The labels as sorted JSON.
    labels: String,
    /// Where an operator looks at what the record is about (see [`example_of`]).
    example: String,
}

/// The signal an audit record counts in; `None` for records no signal counts (an operator's
/// sign-in, a product change). Business events count with their reason; so does any other
/// audited action that names one (an identity check that failed).
fn signal_of(record: &AuditRecord) -> Option<Counted> {
    let detail: serde_json::Value = serde_json::from_str(&record.entry.detail).ok()?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let action = record.entry.action.as_str();
    let (signal, labels): (Signal, BTreeMap<&str, String>) = match action {
        "decision.made" => (
            Signal::Decisions,
            BTreeMap::from([
                ("subject", text(&detail["subject"]["type"])),
                ("outcome", text(&detail["outcome"])),
            ]),
        ),
        "payout.call" => (
            Signal::PayoutCalls,
            BTreeMap::from([
                ("channel", text(&detail["channel"])),
                ("call", text(&detail["call"])),
                ("answer", text(&detail["answer"])),
            ]),
        ),
        _ if Topic::parse(action).is_some() || detail["reason"].is_string() => (
            Signal::Events,
            BTreeMap::from([
                ("topic", action.to_owned()),
                ("reason", text(&detail["reason"])),
            ]),
        ),
        _ => return None,
    };
    Some(Counted {
        signal,
        labels: serde_json::to_string(&labels).ok()?,
        example: example_of(record, &detail),
    })
}

/// The API path that shows what `record` is about (a decision: its borrower's decision; a
/// drawdown's or a loan's payout calls: the drawdown), or `type:id` where no page shows it.
fn example_of(record: &AuditRecord, detail: &serde_json::Value) -> String {
    let id = record.entry.subject_id.as_str();
    match record.entry.subject_type.as_str() {
        "drawdown" => format!("/v1/drawdowns/{id}"),
        "application" => format!("/v1/applications/{id}"),
        "credit_line" => format!("/v1/credit-lines/{id}"),
        "borrower" => format!("/v1/borrowers/{id}"),
        "product" => format!("/v1/products/{id}"),
        "maintenance_window" => format!("/v1/maintenance-windows/{id}"),
        "decision" => match detail["borrower_id"].as_str() {
            Some(borrower) => format!("/v1/borrowers/{borrower}/decisions/{id}"),
            None => format!("decision:{id}"),
        },
        other => format!("{other}:{id}"),
    }
}

/// An alert as kept and shown: its state and the evidence of the evaluation that last moved it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertBody {
    #[serde(flatten)]
    pub state: AlertState,
    pub evidence: Evidence,
    /// The window's count minute by minute, oldest first (a ratio's numerator).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<u64>,
    /// A few of the records counted, latest first: the API path that shows each (`type:id`
    /// where none does).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

/// What an `alert.fired` or `alert.resolved` event carries: the alert, and its rule as it stood
/// (absent when the rule was deleted before an older version of lendcore resolved its alert).
/// The rule's `notify` says who is told, besides the webhooks that subscribe to `alert.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertNotice {
    pub alert: AlertView,
    pub rule: Option<AlertRule>,
}

/// What one evaluation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluated {
    /// `(rule, group)` of each alert that fired.
    pub fired: Vec<(String, String)>,
    pub resolved: Vec<(String, String)>,
}

/// Rolls the audit chain up, then evaluates every enabled rule at the clock's now, unless this
/// minute was evaluated already.
pub async fn evaluate(engine: &Engine) -> Result<Evaluated, EngineError> {
    let now = engine.clock.now();
    roll_up(engine.store.as_ref()).await?;
    let mut uow = engine.store.begin().await?;
    // One evaluation at a time: two would each see an alert unopened and fire it twice. And
    // one a minute: a second in the same minute would count its breach twice.
    uow.serialise_on(ALERTS_LOCK).await?;
    let minute = now.duration_trunc(Duration::minutes(1)).unwrap_or(now);
    if !uow
        .advance_alert_mark("evaluated", minute.timestamp_millis())
        .await?
    {
        return Ok(Evaluated::default());
    }
    let mut rules = Vec::new();
    for stored in uow.alert_rules().await? {
        let rule = parse_rule(&stored)?;
        if rule.enabled {
            rules.push(rule);
        }
    }
    let mut open: HashMap<(String, String), (StoredAlert, AlertState)> = HashMap::new();
    for alert in uow.open_alerts().await? {
        let body: AlertBody = serde_json::from_str(&alert.body)
            .map_err(|e| EngineError::Internal(format!("stored alert {}: {e}", alert.id)))?;
        open.insert(
            (alert.rule.clone(), alert.grouping.clone()),
            (alert, body.state),
        );
    }
    let mut evaluated = Evaluated::default();
    for rule in &rules {
        let mut groups = counts_for(uow.as_mut(), rule, now).await?;
        // A group gone quiet still evaluates, so its alert can resolve.
        for (name, group) in open.keys() {
            if *name == rule.name {
                groups.entry(group.clone()).or_insert_with(|| Counts {
                    value: 0,
                    denominator: 0,
                    history: Vec::new(),
                });
            }
        }
        for (group, counts) in groups {
            let evidence = rule.condition.evaluate(&counts);
            let key = (rule.name.clone(), group.clone());
            let current = open.get(&key);
            let step = next_state(
                current.map(|(_, state)| state),
                evidence.breached,
                rule.evaluations,
                now,
            );
            let (next, told) = match step {
                Step::Quiet => continue,
                Step::Drop => {
                    if let Some((alert, _)) = current {
                        uow.delete_alert(&alert.id).await?;
                    }
                    continue;
                }
                Step::Update(next) => (next, None),
                Step::Fire(next) => (next, Some(true)),
                Step::Resolve(next) => (next, Some(false)),
            };
            let resolved_at = match &next {
                AlertState::Resolved { at, .. } => Some(*at),
                AlertState::Pending { .. } | AlertState::Firing { .. } => None,
            };
            let state = match &next {
                AlertState::Pending { .. } => "pending",
                AlertState::Firing { .. } => "firing",
                AlertState::Resolved { .. } => "resolved",
            };
            let (series, examples) = sample(uow.as_mut(), rule, &group, now).await?;
            let body = AlertBody {
                state: next,
                evidence,
                series,
                examples,
            };
            let text =
                serde_json::to_string(&body).map_err(|e| EngineError::Internal(e.to_string()))?;
            let alert = StoredAlert {
                id: current.map_or_else(new_id, |(a, _)| a.id.clone()),
                rule: rule.name.clone(),
                grouping: group.clone(),
                state: state.to_owned(),
                body: text,
                opened_at: current.map_or(now, |(a, _)| a.opened_at),
                updated_at: now,
                resolved_at,
            };
            uow.save_alert(&alert).await?;
            if let Some(fired) = told {
                announce(uow.as_mut(), &alert, body, Some(rule), now).await?;
                if fired {
                    evaluated.fired.push(key);
                } else {
                    evaluated.resolved.push(key);
                }
            }
        }
    }
    // An alert whose rule was switched off ends with it: nothing evaluates it now. (Deleting a
    // rule resolves its alerts at once.)
    let mut unwatched: Vec<&StoredAlert> = open
        .values()
        .map(|(alert, _)| alert)
        .filter(|alert| !rules.iter().any(|r| r.name == alert.rule))
        .collect();
    unwatched.sort_by(|a, b| (&a.rule, &a.grouping).cmp(&(&b.rule, &b.grouping)));
    for alert in unwatched {
        let rule = match uow.find_alert_rule(&alert.rule).await? {
            Some(stored) => Some(parse_rule(&stored)?),
            None => None,
        };
        if resolve_unwatched(uow.as_mut(), alert, rule.as_ref(), now).await? {
            evaluated
                .resolved
                .push((alert.rule.clone(), alert.grouping.clone()));
        }
    }
    uow.commit().await?;
    Ok(evaluated)
}

/// Ends an open alert no evaluation will resolve (its rule switched off or deleted): one that
/// fired resolves and its recipients are told; one still pending, which nobody was told of, is
/// forgotten as a breach that cleared is. True when it resolved.
async fn resolve_unwatched(
    uow: &mut dyn UnitOfWork,
    alert: &StoredAlert,
    rule: Option<&AlertRule>,
    now: Timestamp,
) -> Result<bool, EngineError> {
    let mut body: AlertBody = serde_json::from_str(&alert.body)
        .map_err(|e| EngineError::Internal(format!("stored alert {}: {e}", alert.id)))?;
    let since = match body.state {
        AlertState::Pending { .. } => {
            uow.delete_alert(&alert.id).await?;
            return Ok(false);
        }
        AlertState::Firing { since, .. } | AlertState::Resolved { since, .. } => since,
    };
    body.state = AlertState::Resolved { since, at: now };
    let text = serde_json::to_string(&body).map_err(|e| EngineError::Internal(e.to_string()))?;
    let resolved = StoredAlert {
        state: "resolved".to_owned(),
        body: text,
        updated_at: now,
        resolved_at: Some(now),
        ..alert.clone()
    };
    uow.save_alert(&resolved).await?;
    announce(uow, &resolved, body, rule, now).await?;
    Ok(true)
}

/// Tells of an alert that fired or resolved: an event for the rule's recipients and the
/// webhooks subscribed to `alert.*`, audited as it is announced.
async fn announce(
    uow: &mut dyn UnitOfWork,
    alert: &StoredAlert,
    body: AlertBody,
    rule: Option<&AlertRule>,
    now: Timestamp,
) -> Result<(), EngineError> {
    let (topic, resolved) = match body.state {
        AlertState::Resolved { .. } => (Topic::AlertResolved, true),
        AlertState::Pending { .. } | AlertState::Firing { .. } => (Topic::AlertFired, false),
    };
    let notice = AlertNotice {
        alert: AlertView {
            id: alert.id.clone(),
            rule: alert.rule.clone(),
            group: alert.grouping.clone(),
            body,
            opened_at: alert.opened_at,
            updated_at: alert.updated_at,
        },
        rule: rule.cloned(),
    };
    let payload =
        serde_json::to_value(&notice).map_err(|e| EngineError::Internal(e.to_string()))?;
    // Borrowers hear of the trouble when the rule says so, and of its end with the alert's.
    if resolved {
        crate::incidents::end_for_alert(uow, &alert.id, now).await?;
    } else if let Some(rule) = rule
        && let Some(spec) = &rule.incident
    {
        let channel = (rule.group_by.as_deref() == Some("channel")).then(|| alert.grouping.clone());
        crate::incidents::raise_for_alert(uow, spec, channel, &alert.id, &rule.name, now).await?;
    }
    crate::audit::announce(
        uow,
        lendcore_store::OutboxEvent {
            id: new_id(),
            topic: topic.as_str().to_owned(),
            aggregate_type: "alert".to_owned(),
            aggregate_id: alert.id.clone(),
            payload,
            created_at: now,
            published_at: None,
        },
        crate::audit::SYSTEM,
    )
    .await
}

/// The window's count of `rule`'s first selector in `group`, minute by minute, and the latest
/// examples of it.
async fn sample(
    uow: &mut dyn UnitOfWork,
    rule: &AlertRule,
    group: &str,
    now: Timestamp,
) -> Result<(Vec<u64>, Vec<String>), EngineError> {
    let Some(selector) = rule.condition.selectors().first().copied() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let minutes = i64::from(rule.window_minutes);
    let start = now - Duration::minutes(minutes);
    let mut series = vec![0; rule.window_minutes as usize];
    let mut examples: Vec<String> = Vec::new();
    let rows = uow
        .signal_minutes(selector.signal.as_str(), start, now)
        .await?;
    for row in rows.iter().rev() {
        let labels: BTreeMap<String, String> = serde_json::from_str(&row.labels)
            .map_err(|e| EngineError::Internal(format!("signal labels {}: {e}", row.labels)))?;
        let in_group = rule
            .group_by
            .as_deref()
            .is_none_or(|label| labels.get(label).map_or("", String::as_str) == group);
        if !in_group || !selector.matches(&labels) {
            continue;
        }
        // The window starts at a whole minute only when `now` is one; a count is kept by its
        // minute, so the first may begin before the window does.
        let at = ((row.minute - start).num_minutes()).clamp(0, minutes - 1);
        if let Some(slot) = usize::try_from(at).ok().and_then(|i| series.get_mut(i)) {
            *slot += u64::try_from(row.count).unwrap_or(0);
        }
        for example in row.examples.iter().rev() {
            if examples.len() < EXAMPLES_PER_ALERT && !examples.contains(example) {
                examples.push(example.clone());
            }
        }
    }
    Ok((series, examples))
}

fn parse_rule(stored: &lendcore_store::StoredAlertRule) -> Result<AlertRule, EngineError> {
    serde_json::from_str(&stored.document)
        .map_err(|e| EngineError::Internal(format!("stored alert rule {}: {e}", stored.name)))
}

/// Each group's counts for `rule` at `now`: the window's, and the history a change or an
/// anomaly compares with.
async fn counts_for(
    uow: &mut dyn UnitOfWork,
    rule: &AlertRule,
    now: Timestamp,
) -> Result<BTreeMap<String, Counts>, EngineError> {
    let window = Duration::minutes(i64::from(rule.window_minutes));
    let group_by = rule.group_by.as_deref();
    let mut groups: BTreeMap<String, Counts> = BTreeMap::new();
    let blank = || Counts {
        value: 0,
        denominator: 0,
        history: Vec::new(),
    };
    let (first, ratio_of) = match &rule.condition {
        Condition::Ratio {
            numerator,
            denominator,
            ..
        } => (numerator, Some(denominator)),
        Condition::Threshold { count, .. }
        | Condition::Change { count, .. }
        | Condition::Anomaly { count, .. } => (count, None),
    };
    for (group, n) in grouped(uow, first, group_by, now - window, now).await? {
        groups.entry(group).or_insert_with(blank).value = n;
    }
    if let Some(denominator) = ratio_of {
        for (group, n) in grouped(uow, denominator, group_by, now - window, now).await? {
            groups.entry(group).or_insert_with(blank).denominator = n;
        }
    }
    let earlier: Vec<Timestamp> = match &rule.condition {
        Condition::Change { .. } => vec![now - window],
        Condition::Anomaly { baseline_days, .. } => (1..=i64::from(*baseline_days))
            .rev()
            .map(|days| now - Duration::days(days))
            .collect(),
        Condition::Threshold { .. } | Condition::Ratio { .. } => Vec::new(),
    };
    if !earlier.is_empty() {
        let mut history: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (i, end) in earlier.iter().enumerate() {
            for (group, n) in grouped(uow, first, group_by, *end - window, *end).await? {
                history
                    .entry(group)
                    .or_insert_with(|| vec![0; earlier.len()])[i] = n;
            }
        }
        let seen: BTreeSet<String> = groups.keys().cloned().collect();
        for group in seen {
            let past = history
                .remove(&group)
                .unwrap_or_else(|| vec![0; earlier.len()]);
            if let Some(counts) = groups.get_mut(&group) {
                counts.history = past;
            }
        }
    }
    Ok(groups)
}

/// `selector`'s count in `[from, to)` per value of `group_by` (one group, `""`, without it).
async fn grouped(
    uow: &mut dyn UnitOfWork,
    selector: &Selector,
    group_by: Option<&str>,
    from: Timestamp,
    to: Timestamp,
) -> Result<BTreeMap<String, u64>, EngineError> {
    let mut groups = BTreeMap::new();
    for (labels, count) in uow
        .signal_counts(selector.signal.as_str(), from, to)
        .await?
    {
        let labels: BTreeMap<String, String> = serde_json::from_str(&labels)
            .map_err(|e| EngineError::Internal(format!("signal labels {labels}: {e}")))?;
        if selector.matches(&labels) {
            let group = group_by
                .and_then(|label| labels.get(label).cloned())
                .unwrap_or_default();
            *groups.entry(group).or_default() += u64::try_from(count).unwrap_or(0);
        }
    }
    Ok(groups)
}

/// Counts are kept this long: the longest anomaly baseline, and a day more.
const KEEP_COUNTS: Duration =
    Duration::days(lendcore_domain::alerting::MAX_BASELINE_DAYS as i64 + 1);

/// Queues this minute's evaluation. Every process may call it (each does, every twenty
/// seconds): the job's id is the minute, so it exists and runs once, in one process.
pub async fn schedule_due(store: &dyn Store, clock: &dyn Clock) -> Result<bool, EngineError> {
    let now = clock.now();
    let minute = now.duration_trunc(Duration::minutes(1)).unwrap_or(now);
    let mut uow = store.begin().await?;
    let added = uow
        .enqueue_job_once(
            &NewJob {
                id: format!("alerts:{}", minute.timestamp()),
                kind: kinds::EVALUATE_ALERTS.to_owned(),
                payload: serde_json::json!({ "minute": minute }),
                run_at: now,
                max_attempts: 1,
            },
            now,
        )
        .await?;
    uow.commit().await?;
    Ok(added)
}

/// Runs one minute's evaluation, and on the hour forgets counts older than any rule reads.
pub struct EvaluateHandler {
    engine: std::sync::Arc<Engine>,
}

impl EvaluateHandler {
    pub fn new(engine: std::sync::Arc<Engine>) -> Self {
        Self { engine }
    }
}

#[async_trait]
impl JobHandler for EvaluateHandler {
    fn kind(&self) -> &'static str {
        kinds::EVALUATE_ALERTS
    }

    async fn run(&self, _job: &Job, _ctx: &JobContext) -> Result<JobDone, JobFailure> {
        // A failed minute is logged and counted, not retried or dead-lettered: the next minute
        // evaluates again, and the roll-up's cursor loses no record meanwhile.
        match evaluate(&self.engine).await {
            Ok(evaluated) => {
                for (rule, group) in &evaluated.fired {
                    tracing::warn!(%rule, %group, "alert fired");
                }
            }
            Err(err) => {
                metrics::counter!("lendcore_alert_evaluation_failures_total").increment(1);
                tracing::error!(error = %err, "could not evaluate the alert rules this minute");
            }
        }
        let now = self.engine.clock.now();
        if chrono::Timelike::minute(&now) == 0 {
            let mut uow = self.engine.store.begin().await?;
            uow.prune_signal_counts(now - KEEP_COUNTS).await?;
            // An hour's evaluations, and a few more: the rest of their kind went before.
            uow.delete_succeeded_jobs(kinds::EVALUATE_ALERTS, now - Duration::days(1), 200)
                .await?;
            uow.commit().await?;
        }
        Ok(JobDone::Succeeded)
    }
}

/// Puts the default rules in place once, on a database that never had them (an operator who
/// deletes one later is not overruled); returns how many it added.
pub async fn install_defaults(engine: &Engine) -> Result<usize, EngineError> {
    let rules: Vec<AlertRule> = serde_json::from_str(lendcore_domain::alerting::DEFAULT_RULES)
        .map_err(|e| EngineError::Internal(format!("the default alert rules: {e}")))?;
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    if !uow.mark_once("alerts:defaults").await? {
        return Ok(0);
    }
    let mut added = 0;
    for rule in rules {
        let stored = lendcore_store::StoredAlertRule {
            name: rule.name.clone(),
            document: serde_json::to_string(&rule)
                .map_err(|e| EngineError::Internal(e.to_string()))?,
            revision: 1,
            updated_by: crate::audit::SYSTEM.to_owned(),
            updated_at: now,
        };
        if uow.save_alert_rule(&stored, None).await? {
            added += 1;
        }
    }
    uow.commit().await?;
    Ok(added)
}

/// A rule as operators see it: the rule, and who changed it last at which revision.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertRuleView {
    pub rule: AlertRule,
    /// Give it back to replace the rule: a rule changed meanwhile is not overwritten.
    pub revision: i64,
    pub updated_by: String,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub updated_at: Timestamp,
}

/// An alert as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertView {
    pub id: String,
    pub rule: String,
    /// The value of the rule's `group_by` label this alert is about; empty without one.
    pub group: String,
    #[serde(flatten)]
    pub body: AlertBody,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub opened_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub updated_at: Timestamp,
}

fn rule_view(stored: lendcore_store::StoredAlertRule) -> Result<AlertRuleView, EngineError> {
    Ok(AlertRuleView {
        rule: parse_rule(&stored)?,
        revision: stored.revision,
        updated_by: stored.updated_by,
        updated_at: stored.updated_at,
    })
}

/// Every rule, by name.
pub async fn list_rules(engine: &Engine) -> Result<Vec<AlertRuleView>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    uow.alert_rules()
        .await?
        .into_iter()
        .map(rule_view)
        .collect()
}

/// Creates `rule` (`revision` `None`) or replaces it at `revision`, validated against the
/// webhook endpoints configured; audited.
pub async fn save_rule(
    engine: &Engine,
    actor: &str,
    rule: AlertRule,
    revision: Option<i64>,
) -> Result<AlertRuleView, EngineError> {
    let webhooks: Vec<&str> = engine
        .notifications
        .webhooks
        .iter()
        .map(|w| w.id.as_str())
        .collect();
    rule.validate(&webhooks)?;
    let now = engine.clock.now();
    let document =
        serde_json::to_string(&rule).map_err(|e| EngineError::Internal(e.to_string()))?;
    let stored = lendcore_store::StoredAlertRule {
        name: rule.name.clone(),
        document: document.clone(),
        revision: revision.map_or(1, |r| r.saturating_add(1)),
        updated_by: actor.to_owned(),
        updated_at: now,
    };
    let mut uow = engine.store.begin().await?;
    if !uow.save_alert_rule(&stored, revision).await? {
        return Err(match (revision, uow.find_alert_rule(&rule.name).await?) {
            (None, _) => EngineError::conflict(
                "conflict.alert_rule_exists",
                format!(
                    "a rule named {} exists: replace it at its revision",
                    rule.name
                ),
            ),
            (Some(_), None) => not_found(&rule.name),
            (Some(_), Some(current)) => EngineError::conflict(
                "conflict.alert_rule_changed",
                format!(
                    "the rule is at revision {} now: read it again before changing it",
                    current.revision
                ),
            ),
        });
    }
    crate::audit::record_text(
        uow.as_mut(),
        actor,
        "alert_rule.saved",
        ("alert_rule", &rule.name),
        document,
        now,
    )
    .await?;
    uow.commit().await?;
    rule_view(stored)
}

/// Deletes a rule; its open alerts resolve at once (their recipients are told), the rest stay
/// for the record. Audited.
pub async fn delete_rule(engine: &Engine, actor: &str, name: &str) -> Result<(), EngineError> {
    let now = engine.clock.now();
    let mut uow = engine.store.begin().await?;
    // The evaluation's lock: one running now would otherwise save the alerts resolved here.
    uow.serialise_on(ALERTS_LOCK).await?;
    let Some(stored) = uow.find_alert_rule(name).await? else {
        return Err(not_found(name));
    };
    // A rule that no longer reads (stored by a version that wrote it differently) must still
    // go: its alerts then resolve without naming it.
    let rule = parse_rule(&stored)
        .inspect_err(
            |err| tracing::error!(rule = %name, error = %err, "deleting a rule that does not read"),
        )
        .ok();
    for alert in uow.open_alerts().await? {
        if alert.rule == name {
            resolve_unwatched(uow.as_mut(), &alert, rule.as_ref(), now).await?;
        }
    }
    if !uow.delete_alert_rule(name).await? {
        return Err(not_found(name));
    }
    crate::audit::record(
        uow.as_mut(),
        actor,
        "alert_rule.deleted",
        ("alert_rule", name),
        serde_json::json!({}),
        now,
    )
    .await?;
    uow.commit().await?;
    Ok(())
}

fn not_found(name: &str) -> EngineError {
    EngineError::not_found(
        "not_found.alert_rule",
        format!("no alert rule named {name}"),
    )
}

/// The latest alerts changed, newest first; `state` (`pending`, `firing`, `resolved`) narrows.
pub async fn list_alerts(
    engine: &Engine,
    state: Option<&str>,
    limit: u32,
) -> Result<Vec<AlertView>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    uow.list_alerts(state, limit)
        .await?
        .into_iter()
        .map(|alert| {
            Ok(AlertView {
                body: serde_json::from_str(&alert.body).map_err(|e| {
                    EngineError::Internal(format!("stored alert {}: {e}", alert.id))
                })?,
                id: alert.id,
                rule: alert.rule,
                group: alert.grouping,
                opened_at: alert.opened_at,
                updated_at: alert.updated_at,
            })
        })
        .collect()
}
