use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::allocation::{AllocationOrder, Due, allocate};

fn at() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap()
}

fn accounts() -> LoanAccounts {
    LoanAccounts {
        loan_id: "loan-1".into(),
        channel_id: "sandbox".into(),
        currency: Currency::Cny,
    }
}

#[test]
fn a_loans_life_posts_balanced_entries_and_balances_follow_them() {
    let a = accounts();
    let disbursed = a
        .disburse("e1".into(), Layer::Posted, 1_000_000, 10_000, at())
        .unwrap();
    let accrued = a.accrue_interest("e2".into(), 10_000, at()).unwrap();
    let penalty = a.charge_penalty("e3".into(), 390, at()).unwrap();
    let dues = [Due {
        installment: 1,
        penalty_minor: 390,
        fee_minor: 0,
        interest_minor: 10_000,
        principal_minor: 78_849,
    }];
    let allocation = allocate(100_000, &dues, &AllocationOrder::default()).unwrap();
    let repaid = a.repay("e4".into(), &allocation, at()).unwrap();
    let entries = vec![disbursed, accrued, penalty, repaid];
    let posted = |kind| balance(&entries, &a.account(kind), Layer::Posted);
    assert_eq!(posted(AccountKind::PrincipalReceivable), 1_000_000 - 78_849);
    assert_eq!(posted(AccountKind::InterestReceivable), 0);
    assert_eq!(posted(AccountKind::PenaltyReceivable), 0);
    assert_eq!(
        posted(AccountKind::FeeIncome),
        -10_000,
        "income is a credit balance"
    );
    assert_eq!(
        posted(AccountKind::Suspense),
        -(100_000 - 390 - 10_000 - 78_849)
    );
    assert_eq!(posted(AccountKind::ChannelSettlement), -990_000 + 100_000);
}

#[test]
fn a_reversal_cancels_its_entry_in_the_same_layer() {
    let a = accounts();
    let pending = a
        .disburse("e1".into(), Layer::Pending, 500_000, 0, at())
        .unwrap();
    let voided = pending.reversal("e2".into(), at()).unwrap();
    assert_eq!(voided.reverses.as_deref(), Some("e1"));
    assert_eq!(voided.layer, Layer::Pending);
    let entries = vec![pending, voided];
    for kind in [
        AccountKind::PrincipalReceivable,
        AccountKind::ChannelSettlement,
    ] {
        assert_eq!(balance(&entries, &a.account(kind), Layer::Pending), 0);
        assert_eq!(balance(&entries, &a.account(kind), Layer::Posted), 0);
    }
}

#[test]
fn unbalanced_or_one_legged_entries_cannot_be_made() {
    let a = accounts();
    let lopsided = JournalEntry::new(
        "x".into(),
        EntryEvent::Repay,
        Layer::Posted,
        "loan-1".into(),
        None,
        vec![
            a.debit(AccountKind::ChannelSettlement, 100),
            a.credit(AccountKind::Suspense, 99),
        ],
        at(),
    );
    assert_eq!(lopsided, Err(LedgerError::Unbalanced(Currency::Cny)));
    let both_sides = Posting {
        account: a.account(AccountKind::Suspense),
        debit_minor: 5,
        credit_minor: 5,
    };
    let err = JournalEntry::new(
        "x".into(),
        EntryEvent::Repay,
        Layer::Posted,
        "l".into(),
        None,
        vec![both_sides],
        at(),
    );
    assert_eq!(err, Err(LedgerError::BadPosting));
    assert_eq!(
        a.accrue_interest("x".into(), 0, at()),
        Err(LedgerError::Empty)
    );
    assert_eq!(
        a.accrue_interest("x".into(), -5, at()),
        Err(LedgerError::BadPosting)
    );
}

proptest! {
    #[test]
    fn every_template_balances_and_so_does_every_ledger(
        principal in 1i64..1_000_000_000,
        fee_share in 0i64..100,
        interest in 1i64..10_000_000,
        penalty in 1i64..1_000_000,
        payment in 0i64..2_000_000_000,
    ) {
        let a = accounts();
        let fee = principal * fee_share / 100;
        let dues = [Due { installment: 1, penalty_minor: penalty, fee_minor: 0, interest_minor: interest, principal_minor: principal }];
        let allocation = allocate(payment, &dues, &AllocationOrder::default()).unwrap();
        let mut entries = vec![
            a.disburse("1".into(), Layer::Posted, principal, fee, at()).unwrap(),
            a.accrue_interest("2".into(), interest, at()).unwrap(),
            a.charge_penalty("3".into(), penalty, at()).unwrap(),
        ];
        if payment > 0 {
            entries.push(a.repay("4".into(), &allocation, at()).unwrap());
        }
        let reversal = entries[1].reversal("5".into(), at()).unwrap();
        entries.push(reversal);
        for e in &entries {
            let debits: i64 = e.postings.iter().map(|p| p.debit_minor).sum();
            let credits: i64 = e.postings.iter().map(|p| p.credit_minor).sum();
            prop_assert_eq!(debits, credits);
        }
        // Over the whole ledger the balances of all accounts sum to zero.
        let total: i64 = ALL_KINDS.iter().map(|&k| balance(&entries, &a.account(k), Layer::Posted)).sum();
        prop_assert_eq!(total, 0);
        prop_assert_eq!(balance(&entries, &a.account(AccountKind::InterestReceivable), Layer::Posted),
            -allocation.shares.iter().filter(|s| s.component == Component::Interest).map(|s| s.amount_minor).sum::<i64>());
    }
}
