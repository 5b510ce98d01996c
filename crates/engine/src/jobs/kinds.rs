//! Every kind of durable job, named once: the runner leases by these names, handlers answer to
//! them, and the modules that enqueue a job name it from here rather than from each other.

/// Pays a confirmed drawdown out through the channels; one per drawdown (`disburse:{id}`), and the queries a callback prompts.
pub const DISBURSE: &str = "drawdown.disburse";
/// Ends a quote nobody confirmed in time.
pub const EXPIRE_QUOTE: &str = "drawdown.expire";
/// Tells borrowers with work in flight of a maintenance window.
pub const MAINTENANCE_NOTICE: &str = "maintenance.notice";
/// Closes one business date (`cob:{date}`), in slices.
pub const CLOSE_OF_BUSINESS: &str = "cob.run";
/// Writes a line's expiry to its log when its validity ends.
pub const LINE_EXPIRY: &str = "credit_line.expiry";
/// Lifts a freeze at its end.
pub const LINE_FREEZE_END: &str = "credit_line.freeze_end";
/// Announces a product version taking effect.
pub const VERSION_EFFECTIVE: &str = "product.version_effective";
/// Reminds a link's owner before it expires.
pub const LINK_REMINDER: &str = "link.reminder";
/// Reminds of and expires an application's wait.
pub const APPLICATION_TIMER: &str = "application.timer";
/// Decides an application the request that verified it did not (`application:{id}:decide`).
pub const DECIDE_APPLICATION: &str = "application.decide";
/// Reviews one page of open credit lines for a business date (`line-review:{date}:{after}`).
pub const LINE_REVIEW: &str = "credit_line.review";
/// Makes a freeze or a lower limit the review announced take effect, if still warranted.
pub const LINE_REVIEW_APPLY: &str = "credit_line.review_apply";
/// Ends a drawdown held for review that nobody released or declined in time
/// (`hold-expiry:{id}`).
pub const HOLD_EXPIRY: &str = "drawdown.hold_expiry";
/// Sends one delivery: a webhook, an SMS or an email.
pub const DELIVERY: &str = "delivery.send";
/// Evaluates the alert rules for one minute (`alerts:{minute}`).
pub const EVALUATE_ALERTS: &str = "alerts.evaluate";
/// Tells borrowers whose work an incident touches (`incident-notice:{id}`).
pub const INCIDENT_NOTICE: &str = "incident.notice";
/// Tells the borrowers told of an incident that it is over (`incident-over:{id}`).
pub const INCIDENT_OVER: &str = "incident.over";
/// Reminds support of a case's deadline, or marks it overdue
/// (`case-{reminder|deadline}:{borrower}:{case}:{deadline}`).
pub const CASE_DUE: &str = "support_case.due";

/// Every kind above, for figures that name each one even when it has no jobs.
pub const ALL: &[&str] = &[
    DISBURSE,
    EXPIRE_QUOTE,
    MAINTENANCE_NOTICE,
    CLOSE_OF_BUSINESS,
    LINE_EXPIRY,
    LINE_FREEZE_END,
    VERSION_EFFECTIVE,
    LINK_REMINDER,
    APPLICATION_TIMER,
    DECIDE_APPLICATION,
    LINE_REVIEW,
    LINE_REVIEW_APPLY,
    HOLD_EXPIRY,
    DELIVERY,
    EVALUATE_ALERTS,
    INCIDENT_NOTICE,
    INCIDENT_OVER,
    CASE_DUE,
];
