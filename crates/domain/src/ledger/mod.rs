//! The double-entry ledger. Every business event posts one journal entry from a template; every
//! entry balances (debits = credits, per currency); entries are never changed, only reversed;
//! an account's balance is the sum of its postings. Entries live in two layers: `pending` (money
//! promised but not yet moved, e.g. a payout sent to a channel) and `posted`.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::allocation::{Allocation, Component};
use crate::money::Currency;

/// What an account records. Receivables and the settlement account are assets (their balance
/// is debit minus credit); income accounts are credited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    PrincipalReceivable,
    InterestReceivable,
    PenaltyReceivable,
    FeeReceivable,
    InterestIncome,
    PenaltyIncome,
    FeeIncome,
    /// Money at the payment channels: out with payouts, in with repayments.
    ChannelSettlement,
    /// Money whose owner is not known yet (an unmatched repayment, an overpayment).
    Suspense,
    /// Principal given up.
    WriteOffExpense,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::PrincipalReceivable => "principal_receivable",
            AccountKind::InterestReceivable => "interest_receivable",
            AccountKind::PenaltyReceivable => "penalty_receivable",
            AccountKind::FeeReceivable => "fee_receivable",
            AccountKind::InterestIncome => "interest_income",
            AccountKind::PenaltyIncome => "penalty_income",
            AccountKind::FeeIncome => "fee_income",
            AccountKind::ChannelSettlement => "channel_settlement",
            AccountKind::Suspense => "suspense",
            AccountKind::WriteOffExpense => "write_off_expense",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ALL_KINDS.iter().copied().find(|k| k.as_str() == s)
    }
}

const ALL_KINDS: [AccountKind; 10] = [
    AccountKind::PrincipalReceivable,
    AccountKind::InterestReceivable,
    AccountKind::PenaltyReceivable,
    AccountKind::FeeReceivable,
    AccountKind::InterestIncome,
    AccountKind::PenaltyIncome,
    AccountKind::FeeIncome,
    AccountKind::ChannelSettlement,
    AccountKind::Suspense,
    AccountKind::WriteOffExpense,
];

/// One account: a kind, whose it is (a loan id, or a channel id for settlement), a currency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Account {
    pub kind: AccountKind,
    pub owner: String,
    pub currency: Currency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Pending,
    Posted,
}

/// One side of an entry: a positive amount on one account, debit or credit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Posting {
    pub account: Account,
    pub debit_minor: i64,
    pub credit_minor: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EntryEvent {
    Disburse,
    AccrueInterest,
    ChargeFee,
    ChargePenalty,
    Repay,
    Waive,
    WriteOff,
    Reverse,
}

/// A balanced journal entry. Only the templates below and [`JournalEntry::reversal`] make one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JournalEntry {
    pub id: String,
    pub event: EntryEvent,
    pub layer: Layer,
    /// The loan (or other business record) the entry belongs to.
    pub reference: String,
    /// For a reversal, the entry it cancels.
    pub reverses: Option<String>,
    pub postings: Vec<Posting>,
    #[cfg_attr(feature = "openapi", schema(value_type = chrono::DateTime<chrono::Utc>))]
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("an entry needs at least one posting of a positive amount")]
    Empty,
    #[error("postings must be positive on exactly one side")]
    BadPosting,
    #[error("the entry does not balance in {0}")]
    Unbalanced(Currency),
    #[error("an amount overflowed")]
    Overflow,
}

impl JournalEntry {
    /// Checks and builds an entry: positive one-sided postings, debits equal to credits in every
    /// currency. Postings of zero are dropped (a zero fee posts nothing).
    fn new(
        id: String,
        event: EntryEvent,
        layer: Layer,
        reference: String,
        reverses: Option<String>,
        postings: Vec<Posting>,
        at: Timestamp,
    ) -> Result<Self, LedgerError> {
        let postings: Vec<Posting> = postings
            .into_iter()
            .filter(|p| p.debit_minor != 0 || p.credit_minor != 0)
            .collect();
        if postings.is_empty() {
            return Err(LedgerError::Empty);
        }
        let mut sums: Vec<(Currency, i64)> = Vec::new();
        for p in &postings {
            let one_sided = (p.debit_minor > 0 && p.credit_minor == 0)
                || (p.credit_minor > 0 && p.debit_minor == 0);
            if !one_sided {
                return Err(LedgerError::BadPosting);
            }
            let delta = p.debit_minor - p.credit_minor;
            match sums.iter_mut().find(|(c, _)| *c == p.account.currency) {
                Some((_, sum)) => *sum = sum.checked_add(delta).ok_or(LedgerError::Overflow)?,
                None => sums.push((p.account.currency, delta)),
            }
        }
        if let Some((currency, _)) = sums.iter().find(|(_, sum)| *sum != 0) {
            return Err(LedgerError::Unbalanced(*currency));
        }
        Ok(Self {
            id,
            event,
            layer,
            reference,
            reverses,
            postings,
            at,
        })
    }

    /// The entry that cancels this one: every posting on the other side, in the same layer.
    pub fn reversal(&self, id: String, at: Timestamp) -> Result<JournalEntry, LedgerError> {
        let postings = self
            .postings
            .iter()
            .map(|p| Posting {
                account: p.account.clone(),
                debit_minor: p.credit_minor,
                credit_minor: p.debit_minor,
            })
            .collect();
        JournalEntry::new(
            id,
            EntryEvent::Reverse,
            self.layer,
            self.reference.clone(),
            Some(self.id.clone()),
            postings,
            at,
        )
    }

    /// Debit minus credit of this entry on `account`.
    pub fn net(&self, account: &Account) -> i64 {
        self.postings
            .iter()
            .filter(|p| &p.account == account)
            .map(|p| p.debit_minor - p.credit_minor)
            .sum()
    }
}

/// The accounts of one loan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoanAccounts {
    pub loan_id: String,
    pub channel_id: String,
    pub currency: Currency,
}

impl LoanAccounts {
    pub fn account(&self, kind: AccountKind) -> Account {
        let owner = match kind {
            AccountKind::ChannelSettlement => self.channel_id.clone(),
            AccountKind::PrincipalReceivable
            | AccountKind::InterestReceivable
            | AccountKind::PenaltyReceivable
            | AccountKind::FeeReceivable
            | AccountKind::InterestIncome
            | AccountKind::PenaltyIncome
            | AccountKind::FeeIncome
            | AccountKind::Suspense
            | AccountKind::WriteOffExpense => self.loan_id.clone(),
        };
        Account {
            kind,
            owner,
            currency: self.currency,
        }
    }

    fn debit(&self, kind: AccountKind, minor: i64) -> Posting {
        Posting {
            account: self.account(kind),
            debit_minor: minor,
            credit_minor: 0,
        }
    }

    fn credit(&self, kind: AccountKind, minor: i64) -> Posting {
        Posting {
            account: self.account(kind),
            debit_minor: 0,
            credit_minor: minor,
        }
    }

    /// A payout: the borrower owes the principal; the channel pays out the principal less the
    /// upfront fee, which is earned at once. Pending while the channel has not confirmed.
    pub fn disburse(
        &self,
        id: String,
        layer: Layer,
        principal_minor: i64,
        upfront_fee_minor: i64,
        at: Timestamp,
    ) -> Result<JournalEntry, LedgerError> {
        let paid_out = principal_minor
            .checked_sub(upfront_fee_minor)
            .ok_or(LedgerError::Overflow)?;
        self.entry(
            id,
            EntryEvent::Disburse,
            layer,
            at,
            vec![
                self.debit(AccountKind::PrincipalReceivable, principal_minor),
                self.credit(AccountKind::ChannelSettlement, paid_out),
                self.credit(AccountKind::FeeIncome, upfront_fee_minor),
            ],
        )
    }

    pub fn accrue_interest(
        &self,
        id: String,
        minor: i64,
        at: Timestamp,
    ) -> Result<JournalEntry, LedgerError> {
        self.entry(
            id,
            EntryEvent::AccrueInterest,
            Layer::Posted,
            at,
            vec![
                self.debit(AccountKind::InterestReceivable, minor),
                self.credit(AccountKind::InterestIncome, minor),
            ],
        )
    }

    /// An installment's fee falls due and is earned.
    pub fn charge_fee(
        &self,
        id: String,
        minor: i64,
        at: Timestamp,
    ) -> Result<JournalEntry, LedgerError> {
        self.entry(
            id,
            EntryEvent::ChargeFee,
            Layer::Posted,
            at,
            vec![
                self.debit(AccountKind::FeeReceivable, minor),
                self.credit(AccountKind::FeeIncome, minor),
            ],
        )
    }

    pub fn charge_penalty(
        &self,
        id: String,
        minor: i64,
        at: Timestamp,
    ) -> Result<JournalEntry, LedgerError> {
        self.entry(
            id,
            EntryEvent::ChargePenalty,
            Layer::Posted,
            at,
            vec![
                self.debit(AccountKind::PenaltyReceivable, minor),
                self.credit(AccountKind::PenaltyIncome, minor),
            ],
        )
    }

    /// A repayment received at the channel, settled over the receivables as allocated; what was
    /// not applied waits in suspense, never vanishes.
    pub fn repay(
        &self,
        id: String,
        allocation: &Allocation,
        at: Timestamp,
    ) -> Result<JournalEntry, LedgerError> {
        let mut total = allocation.unapplied_minor;
        let mut postings = Vec::new();
        for share in &allocation.shares {
            total = total
                .checked_add(share.amount_minor)
                .ok_or(LedgerError::Overflow)?;
            postings.push(self.credit(receivable(share.component), share.amount_minor));
        }
        postings.push(self.credit(AccountKind::Suspense, allocation.unapplied_minor));
        postings.insert(0, self.debit(AccountKind::ChannelSettlement, total));
        self.entry(id, EntryEvent::Repay, Layer::Posted, at, postings)
    }

    /// Forgives what is owed of one component: the income it would have been is taken back.
    pub fn waive(
        &self,
        id: String,
        component: Component,
        minor: i64,
        at: Timestamp,
    ) -> Result<JournalEntry, LedgerError> {
        let income = match component {
            Component::Interest => AccountKind::InterestIncome,
            Component::Penalty => AccountKind::PenaltyIncome,
            Component::Fee => AccountKind::FeeIncome,
            Component::Principal => AccountKind::WriteOffExpense,
        };
        self.entry(
            id,
            EntryEvent::Waive,
            Layer::Posted,
            at,
            vec![
                self.debit(income, minor),
                self.credit(receivable(component), minor),
            ],
        )
    }

    pub fn write_off(
        &self,
        id: String,
        principal_minor: i64,
        at: Timestamp,
    ) -> Result<JournalEntry, LedgerError> {
        self.entry(
            id,
            EntryEvent::WriteOff,
            Layer::Posted,
            at,
            vec![
                self.debit(AccountKind::WriteOffExpense, principal_minor),
                self.credit(AccountKind::PrincipalReceivable, principal_minor),
            ],
        )
    }

    fn entry(
        &self,
        id: String,
        event: EntryEvent,
        layer: Layer,
        at: Timestamp,
        postings: Vec<Posting>,
    ) -> Result<JournalEntry, LedgerError> {
        JournalEntry::new(id, event, layer, self.loan_id.clone(), None, postings, at)
    }
}

fn receivable(component: Component) -> AccountKind {
    match component {
        Component::Principal => AccountKind::PrincipalReceivable,
        Component::Interest => AccountKind::InterestReceivable,
        Component::Penalty => AccountKind::PenaltyReceivable,
        Component::Fee => AccountKind::FeeReceivable,
    }
}

/// Debit minus credit of `account` over `entries` in `layer`: the balance as the postings say.
pub fn balance(entries: &[JournalEntry], account: &Account, layer: Layer) -> i64 {
    entries
        .iter()
        .filter(|e| e.layer == layer)
        .map(|e| e.net(account))
        .sum()
}

#[cfg(test)]
mod tests;
