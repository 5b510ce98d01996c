//! What the store's tests share.

use chrono::{DateTime, Duration, TimeZone, Utc};
use lendcore_domain::credit_line::{CreditLine, GrantInput, LineEvent};
use lendcore_domain::drawdown::{Drawdown, DrawdownStatus};
use lendcore_domain::product::{NewProductInput, Product, ProductKind};
use lendcore_domain::quote::{self, QuoteInput};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap()
}

/// A drawdown on `line` of borrower b-1, `days_ago` old, in `status`.
pub fn drawdown(id: &str, line: &str, status: DrawdownStatus, days_ago: i64) -> Drawdown {
    let product = Product::create(
        "id-cash".into(),
        NewProductInput {
            code: "cash".into(),
            name: "Cash".into(),
            kind: ProductKind::Installment,
            currency: "CNY".into(),
            terms: serde_json::from_value(serde_json::json!({
                "amount": {"min_minor": 100000, "max_minor": 5000000},
                "terms": {"unit": "month", "options": [3]},
                "rate": {"basis": "annual", "value": "0.18"},
                "repayment_method": "equal_installment",
                "penalty_daily_rate": "0.0005",
                "grace_days": 3
            }))
            .unwrap(),
            effective_from: None,
        },
        t0(),
    )
    .unwrap();
    let at = t0() - Duration::days(days_ago);
    let quote = quote::quote(
        &product.code,
        1,
        product.kind,
        product.currency,
        &product.versions[0].terms,
        &QuoteInput {
            amount_minor: 100_000 + days_ago,
            term: 3,
            start: at.date_naive(),
            split: None,
            rate_tier: None,
        },
        &[],
    )
    .unwrap();
    Drawdown {
        id: id.into(),
        line_id: line.into(),
        borrower_id: "b-1".into(),
        product_code: product.code.clone(),
        product_version: 1,
        currency: product.currency,
        amount_minor: quote.amount_minor,
        account: "acct-1".into(),
        quote,
        status,
        paid: Vec::new(),
        servicing: Default::default(),
        risk_policy: None,
        revision: 1,
        created_at: at,
        updated_at: at,
    }
}

/// A line of `borrower`'s, granted long ago.
pub fn line(id: &str, borrower: &str) -> (CreditLine, LineEvent) {
    CreditLine::grant(
        id.into(),
        GrantInput {
            borrower_id: borrower.into(),
            currency: "CNY".into(),
            limit_minor: 1_000_000,
            rate_tier: Some("preferred".into()),
            valid_from: None,
            valid_until: t0() + Duration::days(365),
            actor: "ops:test".into(),
            note: None,
        },
        t0() - Duration::days(400),
    )
    .unwrap()
}
