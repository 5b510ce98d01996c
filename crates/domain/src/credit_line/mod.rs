//! Credit lines (额度): a limit a borrower may draw against, minus what is drawn and what is
//! held by drawdowns in flight. A line is never overdrawn: drawn + held ≤ limit, always. Every
//! change to the limit or the status is an entry in an append-only log, with who and why.

use serde::{Deserialize, Serialize};

use crate::money::Currency;
use crate::product::MAX_AMOUNT_MINOR;
use crate::reasons::{Category, Reason};
use crate::validation::{Collector, Violations};
use crate::{Timestamp, to_millis};

/// Where a line stands, as stored. Expiry is not stored: it follows from `valid_until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LineStatus {
    Active,
    /// No new drawdowns until unfrozen; loans already drawn run on.
    Frozen {
        reason: Reason,
        by: String,
        /// When the freeze ends by itself, if set; an operator may unfreeze earlier.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<chrono::DateTime<chrono::Utc>>))]
        until: Option<Timestamp>,
    },
    /// For good: no new drawdowns; loans already drawn run on.
    Closed {
        reason: Reason,
        by: String,
    },
}

/// The status as of an instant, expiry and validity included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LineState {
    NotYetValid,
    Active,
    Frozen,
    Expired,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreditLine {
    pub id: String,
    pub borrower_id: String,
    pub currency: Currency,
    pub limit_minor: i64,
    pub drawn_minor: i64,
    /// Reserved by drawdowns being paid out.
    pub held_minor: i64,
    /// The price tier the line was granted in (the one its offer gave): drawdowns on it pay
    /// the tier's rate wherever the product prices that tier. Fixed for the line's life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_tier: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub valid_from: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub valid_until: Timestamp,
    pub status: LineStatus,
    pub revision: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub updated_at: Timestamp,
}

/// What the API shows of a line at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineView {
    #[serde(flatten)]
    pub line: CreditLine,
    pub state: LineState,
    /// What may be drawn now: limit − drawn − held while active, else 0.
    pub available_minor: i64,
    /// Why nothing may be drawn, when that is so.
    pub blocked_by: Option<Reason>,
    /// Read on its own (`GET /v1/credit-lines/{id}`), frozen or its limit last changed by the
    /// credit policy's daily review: which rule decided, in the language asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<crate::decision::Decider>,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub as_of: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LineEventKind {
    Granted,
    Increased,
    Decreased,
    Frozen,
    /// A person looked at a freeze and kept it (after a payout paid the wrong amount).
    FreezeKept,
    Unfrozen,
    Closed,
    Expired,
}

/// What a person decides about a frozen line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FreezeDecision {
    Lift,
    Keep,
}

/// One entry of a line's limit-change log. Entries are never changed or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineEvent {
    pub line_id: String,
    /// 1 for the grant, then counting up.
    pub seq: i64,
    pub kind: LineEventKind,
    pub limit_before_minor: i64,
    pub limit_after_minor: i64,
    pub reason: Option<Reason>,
    pub actor: String,
    pub note: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error(transparent)]
    Invalid(#[from] Violations),
    #[error("the line is closed")]
    Closed,
    #[error("the line is frozen")]
    Frozen,
    #[error("the line is not frozen")]
    NotFrozen,
    #[error("the new limit {limit} is below what is drawn and held ({used})")]
    LimitBelowUsage { limit: i64, used: i64 },
}

impl LineError {
    pub fn code(&self) -> &'static str {
        match self {
            LineError::Invalid(v) => v.first().code,
            LineError::Closed => "conflict.line_closed",
            LineError::Frozen => "conflict.line_frozen",
            LineError::NotFrozen => "conflict.line_not_frozen",
            LineError::LimitBelowUsage { .. } => "conflict.limit_below_usage",
        }
    }
}

/// Everything needed to grant a line, unparsed.
#[derive(Debug, Clone)]
pub struct GrantInput {
    pub borrower_id: String,
    pub currency: String,
    pub limit_minor: i64,
    pub rate_tier: Option<String>,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Timestamp,
    pub actor: String,
    pub note: Option<String>,
}

const MAX_NOTE_CHARS: usize = 500;

impl CreditLine {
    /// A new active line and the first entry of its log.
    pub fn grant(
        id: String,
        input: GrantInput,
        now: Timestamp,
    ) -> Result<(Self, LineEvent), LineError> {
        let now = to_millis(now);
        let mut found = Collector::default();
        if !is_reference(&input.borrower_id) {
            found.add(
                "borrower_id",
                "validation.invalid_borrower_id",
                "borrower_id must be 1-64 characters of a-z, A-Z, 0-9, '_', '-', '.' and ':'",
            );
        }
        let currency = Currency::parse(&input.currency);
        if currency.is_none() {
            found.add(
                "currency",
                "validation.unsupported_currency",
                "currency must be one of CNY, USD",
            );
        }
        found.take(check_limit(input.limit_minor));
        if let Some(tier) = &input.rate_tier {
            found.take(crate::product::check_rate_tier("rate_tier", tier));
        }
        let valid_from = to_millis(input.valid_from.unwrap_or(now));
        let valid_until = to_millis(input.valid_until);
        if valid_until <= valid_from || valid_until <= now {
            found.add(
                "valid_until",
                "validation.validity_window_invalid",
                "valid_until must be after valid_from and in the future",
            );
        }
        found.take(check_actor(&input.actor));
        found.take(check_note(input.note.as_deref()));
        let line = currency.map(|currency| CreditLine {
            id,
            borrower_id: input.borrower_id,
            currency,
            limit_minor: input.limit_minor,
            drawn_minor: 0,
            held_minor: 0,
            rate_tier: input.rate_tier,
            valid_from,
            valid_until,
            status: LineStatus::Active,
            revision: 1,
            created_at: now,
            updated_at: now,
        });
        let line = found.finish(line)?;
        let event = line.event(
            1,
            LineEventKind::Granted,
            0,
            None,
            input.actor,
            input.note,
            now,
        );
        Ok((line, event))
    }

    pub fn state(&self, at: Timestamp) -> LineState {
        match &self.status {
            LineStatus::Closed { .. } => LineState::Closed,
            LineStatus::Frozen { .. } => LineState::Frozen,
            LineStatus::Active if at >= self.valid_until => LineState::Expired,
            LineStatus::Active if at < self.valid_from => LineState::NotYetValid,
            LineStatus::Active => LineState::Active,
        }
    }

    /// Why nothing can be drawn at `at`, or `None` when drawing is open.
    pub fn blocked_by(&self, at: Timestamp) -> Option<Reason> {
        match self.state(at) {
            LineState::Active => None,
            LineState::Frozen => Some(match &self.status {
                LineStatus::Frozen { reason, .. } if reason.entry().borrower_visible => *reason,
                LineStatus::Frozen { .. } | LineStatus::Active | LineStatus::Closed { .. } => {
                    Reason::LineFrozen
                }
            }),
            LineState::Expired | LineState::NotYetValid => Some(Reason::LineExpired),
            LineState::Closed => Some(Reason::LineClosed),
        }
    }

    pub fn available_minor(&self, at: Timestamp) -> i64 {
        match self.blocked_by(at) {
            None => (self.limit_minor - self.drawn_minor - self.held_minor).max(0),
            Some(_) => 0,
        }
    }

    pub fn view(self, at: Timestamp) -> LineView {
        LineView {
            state: self.state(at),
            available_minor: self.available_minor(at),
            blocked_by: self.blocked_by(at),
            decided_by: None,
            line: self,
            as_of: at,
        }
    }

    /// Whether `amount` may be held now, and if not, the reason a borrower is given.
    pub fn can_hold(&self, amount_minor: i64, at: Timestamp) -> Result<(), Reason> {
        if let Some(reason) = self.blocked_by(at) {
            return Err(reason);
        }
        if amount_minor > self.available_minor(at) {
            return Err(Reason::LimitExceeded);
        }
        Ok(())
    }

    /// Raises or lowers the limit; never below what is drawn and held.
    pub fn change_limit(
        &mut self,
        new_limit_minor: i64,
        actor: String,
        note: Option<String>,
        last_seq: i64,
        now: Timestamp,
    ) -> Result<LineEvent, LineError> {
        let now = to_millis(now);
        self.refuse_if_closed()?;
        check_limit(new_limit_minor)?;
        check_actor(&actor)?;
        check_note(note.as_deref())?;
        let used = self.drawn_minor + self.held_minor;
        if new_limit_minor < used {
            return Err(LineError::LimitBelowUsage {
                limit: new_limit_minor,
                used,
            });
        }
        let kind = match new_limit_minor.cmp(&self.limit_minor) {
            std::cmp::Ordering::Greater => LineEventKind::Increased,
            std::cmp::Ordering::Less => LineEventKind::Decreased,
            std::cmp::Ordering::Equal => {
                return Err(Violations::single(
                    "limit_minor",
                    "validation.limit_unchanged",
                    "the new limit equals the current one",
                )
                .into());
            }
        };
        let before = self.limit_minor;
        self.limit_minor = new_limit_minor;
        self.touch(now);
        Ok(self.event(last_seq + 1, kind, before, None, actor, note, now))
    }

    /// Stops new drawdowns, with a reason from the credit or risk category.
    pub fn freeze(
        &mut self,
        reason: Reason,
        until: Option<Timestamp>,
        actor: String,
        note: Option<String>,
        last_seq: i64,
        now: Timestamp,
    ) -> Result<LineEvent, LineError> {
        let now = to_millis(now);
        match self.status {
            LineStatus::Active => {}
            LineStatus::Frozen { .. } => return Err(LineError::Frozen),
            LineStatus::Closed { .. } => return Err(LineError::Closed),
        }
        check_actor(&actor)?;
        check_note(note.as_deref())?;
        check_reason(
            reason,
            &[Category::Credit, Category::Risk, Category::Policy],
        )?;
        if until.is_some_and(|u| u <= now) {
            return Err(Violations::single(
                "until",
                "validation.until_in_past",
                "until must be in the future",
            )
            .into());
        }
        self.status = LineStatus::Frozen {
            reason,
            by: actor.clone(),
            until: until.map(to_millis),
        };
        self.touch(now);
        Ok(self.event(
            last_seq + 1,
            LineEventKind::Frozen,
            self.limit_minor,
            Some(reason),
            actor,
            note,
            now,
        ))
    }

    pub fn unfreeze(
        &mut self,
        actor: String,
        note: Option<String>,
        last_seq: i64,
        now: Timestamp,
    ) -> Result<LineEvent, LineError> {
        self.review_freeze(FreezeDecision::Lift, actor, note, last_seq, now)
    }

    /// A person reviewed the freeze and keeps it; the log says who and why.
    pub fn keep_frozen(
        &mut self,
        actor: String,
        note: Option<String>,
        last_seq: i64,
        now: Timestamp,
    ) -> Result<LineEvent, LineError> {
        self.review_freeze(FreezeDecision::Keep, actor, note, last_seq, now)
    }

    /// A person's decision about a frozen line: lift the freeze, or keep it (logged with the
    /// freeze's reason).
    fn review_freeze(
        &mut self,
        decision: FreezeDecision,
        actor: String,
        note: Option<String>,
        last_seq: i64,
        now: Timestamp,
    ) -> Result<LineEvent, LineError> {
        let now = to_millis(now);
        let frozen_for = match self.status {
            LineStatus::Frozen { reason, .. } => reason,
            LineStatus::Active => return Err(LineError::NotFrozen),
            LineStatus::Closed { .. } => return Err(LineError::Closed),
        };
        check_actor(&actor)?;
        check_note(note.as_deref())?;
        let (kind, reason) = match decision {
            FreezeDecision::Keep => (LineEventKind::FreezeKept, Some(frozen_for)),
            FreezeDecision::Lift => {
                self.status = LineStatus::Active;
                (LineEventKind::Unfrozen, None)
            }
        };
        self.touch(now);
        Ok(self.event(
            last_seq + 1,
            kind,
            self.limit_minor,
            reason,
            actor,
            note,
            now,
        ))
    }

    /// A freeze with an end lifts itself when `until` comes, recorded in the log by `actor`.
    /// `Ok(None)` when there is nothing to lift: not frozen, no end set, or not yet.
    pub fn lift_freeze_at_end(
        &mut self,
        actor: String,
        last_seq: i64,
        now: Timestamp,
    ) -> Result<Option<LineEvent>, LineError> {
        match self.status {
            LineStatus::Frozen {
                until: Some(until), ..
            } if now >= until => self
                .unfreeze(
                    actor,
                    Some("the freeze reached its end".to_owned()),
                    last_seq,
                    now,
                )
                .map(Some),
            LineStatus::Frozen { .. } | LineStatus::Active | LineStatus::Closed { .. } => Ok(None),
        }
    }

    /// Records in the log that the line's validity has ended: no new drawdowns; loans already
    /// drawn run on. Expiry is not a stored status (it follows from `valid_until`), so this
    /// only writes the entry. `None` before `valid_until`, or when the line is closed.
    pub fn record_expiry(
        &mut self,
        actor: String,
        last_seq: i64,
        now: Timestamp,
    ) -> Option<LineEvent> {
        let now = to_millis(now);
        match self.status {
            LineStatus::Active | LineStatus::Frozen { .. } if now >= self.valid_until => {
                self.touch(now);
                Some(self.event(
                    last_seq + 1,
                    LineEventKind::Expired,
                    self.limit_minor,
                    Some(Reason::LineExpired),
                    actor,
                    None,
                    now,
                ))
            }
            LineStatus::Active | LineStatus::Frozen { .. } | LineStatus::Closed { .. } => None,
        }
    }

    /// Closes the line for good; what is drawn is still repaid as scheduled.
    pub fn close(
        &mut self,
        reason: Reason,
        actor: String,
        note: Option<String>,
        last_seq: i64,
        now: Timestamp,
    ) -> Result<LineEvent, LineError> {
        let now = to_millis(now);
        self.refuse_if_closed()?;
        check_actor(&actor)?;
        check_note(note.as_deref())?;
        check_reason(
            reason,
            &[
                Category::Credit,
                Category::Risk,
                Category::Policy,
                Category::User,
            ],
        )?;
        self.status = LineStatus::Closed {
            reason,
            by: actor.clone(),
        };
        self.touch(now);
        Ok(self.event(
            last_seq + 1,
            LineEventKind::Closed,
            self.limit_minor,
            Some(reason),
            actor,
            note,
            now,
        ))
    }

    fn refuse_if_closed(&self) -> Result<(), LineError> {
        match self.status {
            LineStatus::Closed { .. } => Err(LineError::Closed),
            LineStatus::Active | LineStatus::Frozen { .. } => Ok(()),
        }
    }

    fn touch(&mut self, now: Timestamp) {
        self.revision += 1;
        self.updated_at = now;
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        seq: i64,
        kind: LineEventKind,
        limit_before_minor: i64,
        reason: Option<Reason>,
        actor: String,
        note: Option<String>,
        at: Timestamp,
    ) -> LineEvent {
        LineEvent {
            line_id: self.id.clone(),
            seq,
            kind,
            limit_before_minor,
            limit_after_minor: self.limit_minor,
            reason,
            actor,
            note,
            at,
        }
    }
}

fn check_limit(limit_minor: i64) -> Result<(), Violations> {
    if (1..=MAX_AMOUNT_MINOR).contains(&limit_minor) {
        Ok(())
    } else {
        Err(Violations::single(
            "limit_minor",
            "validation.amount_out_of_range",
            format!("limit_minor must be between 1 and {MAX_AMOUNT_MINOR}"),
        ))
    }
}

fn check_actor(actor: &str) -> Result<(), Violations> {
    if is_reference(actor) {
        Ok(())
    } else {
        Err(Violations::single(
            "actor",
            "validation.invalid_actor",
            "actor must be 1-64 characters of a-z, A-Z, 0-9, '_', '-', '.' and ':'",
        ))
    }
}

fn check_note(note: Option<&str>) -> Result<(), Violations> {
    match note {
        Some(n)
            if n.chars().count() > MAX_NOTE_CHARS
                || n.chars().any(|c| c.is_control() && c != '\n') =>
        {
            Err(Violations::single(
                "note",
                "validation.invalid_note",
                format!("note must be at most {MAX_NOTE_CHARS} printable characters"),
            ))
        }
        Some(_) | None => Ok(()),
    }
}

fn check_reason(reason: Reason, allowed: &[Category]) -> Result<(), Violations> {
    if allowed.contains(&reason.entry().category) {
        Ok(())
    } else {
        Err(Violations::single(
            "reason",
            "validation.reason_not_allowed",
            format!("{} cannot be given for this change", reason.code()),
        ))
    }
}

/// Identifiers that come from the lender's systems: short, printable, no spaces.
fn is_reference(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

#[cfg(test)]
mod tests;
