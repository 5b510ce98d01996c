use chrono::{Duration, TimeZone, Utc};
use rust_decimal::Decimal;

use super::*;
use crate::money::Currency;

fn now() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap()
}

pub(crate) fn terms() -> ProductTermsInput {
    ProductTermsInput {
        amount: AmountRangeInput {
            min_minor: 100_000,
            max_minor: 5_000_000,
        },
        terms: TermOptionsInput {
            unit: TermUnit::Month,
            options: vec![12, 3, 6],
        },
        rate: RateInput {
            basis: RateBasis::Annual,
            value: Decimal::new(18, 2),
        },
        rate_tiers: Default::default(),
        repayment_method: RepaymentMethod::EqualInstallment,
        fees: vec![FeeInput {
            code: "service".into(),
            timing: FeeTiming::Upfront,
            fixed_minor: Some(1_000),
            rate: None,
        }],
        penalty_daily_rate: Decimal::new(5, 4),
        grace_days: 3,
        rounding: RoundingMode::HalfUp,
        day_count: DayCount::Actual365,
        penalty_on_interest: false,
        allocation: AllocationOrder::default(),
    }
}

fn input() -> NewProductInput {
    NewProductInput {
        code: "cash-12m".into(),
        name: "Cash loan".into(),
        kind: ProductKind::Installment,
        currency: "CNY".into(),
        terms: terms(),
        effective_from: None,
    }
}

fn codes(err: ProductError) -> Vec<(String, &'static str)> {
    match err {
        ProductError::Invalid(v) => v.all().iter().map(|v| (v.field.clone(), v.code)).collect(),
        other => panic!("expected violations, got {other:?}"),
    }
}

#[test]
fn a_valid_product_starts_active_with_version_one() {
    let product = Product::create("p1".into(), input(), now()).unwrap();
    assert_eq!(product.currency, Currency::Cny);
    assert_eq!(product.status(now()), ProductStatus::Active);
    assert_eq!(product.version_at(now()).unwrap().version, 1);
    assert_eq!(product.versions[0].terms.terms().options(), &[3, 6, 12]);
}

#[test]
fn every_bad_field_is_reported_at_once() {
    let mut bad = input();
    bad.code = "Bad Code".into();
    bad.name = "  ".into();
    bad.currency = "EUR".into();
    bad.terms.amount.min_minor = 0;
    bad.terms.terms.options = vec![0, 6, 6];
    bad.terms.rate.value = Decimal::new(2, 0);
    bad.terms.grace_days = 91;
    bad.terms.penalty_daily_rate = Decimal::new(-1, 4);
    bad.terms.fees[0].rate = Some(Decimal::new(1, 2));
    bad.effective_from = Some(now() - Duration::seconds(1));
    let found = codes(Product::create("p1".into(), bad, now()).unwrap_err());
    let expected = [
        ("code", "validation.invalid_product_code"),
        ("name", "validation.invalid_name"),
        ("currency", "validation.unsupported_currency"),
        ("terms.amount.min_minor", "validation.amount_out_of_range"),
        ("terms.terms.options", "validation.term_out_of_range"),
        ("terms.terms.options", "validation.term_options_duplicate"),
        ("terms.rate.value", "validation.rate_out_of_range"),
        ("terms.fees[0]", "validation.fee_amount_ambiguous"),
        ("terms.penalty_daily_rate", "validation.rate_out_of_range"),
        ("terms.grace_days", "validation.grace_days_out_of_range"),
        ("effective_from", "validation.effective_from_in_past"),
    ];
    for (field, code) in expected {
        assert!(
            found.contains(&(field.to_owned(), code)),
            "missing {field} {code} in {found:?}"
        );
    }
}

#[test]
fn kind_and_method_must_agree() {
    let mut bad = input();
    bad.kind = ProductKind::Revolving;
    let found = codes(Product::create("p1".into(), bad, now()).unwrap_err());
    assert_eq!(
        found,
        vec![(
            "terms.repayment_method".to_owned(),
            "validation.method_not_allowed_for_kind"
        )]
    );
}

#[test]
fn amount_range_must_not_be_inverted_and_days_need_a_suitable_method() {
    let mut bad = terms();
    bad.amount = AmountRangeInput {
        min_minor: 10,
        max_minor: 9,
    };
    bad.terms.unit = TermUnit::Day;
    let found: Vec<_> = ProductTerms::parse(bad)
        .unwrap_err()
        .all()
        .iter()
        .map(|v| v.code)
        .collect();
    assert_eq!(
        found,
        vec![
            "validation.amount_range_inverted",
            "validation.term_unit_not_allowed"
        ]
    );
}

#[test]
fn rates_with_too_many_decimals_are_refused_and_trailing_zeros_are_not_precision() {
    let mut bad = terms();
    bad.rate.value = Decimal::new(1, 11);
    assert_eq!(
        ProductTerms::parse(bad).unwrap_err().first().code,
        "validation.rate_too_precise"
    );
    let mut fine = terms();
    fine.rate.value = Decimal::new(1_800_000_000_000, 13);
    assert_eq!(
        ProductTerms::parse(fine).unwrap().rate().value(),
        Decimal::new(18, 2)
    );
}

#[test]
fn rate_tiers_are_named_as_codes_bounded_and_kept_in_the_products_basis() {
    let mut bad = terms();
    bad.rate_tiers = (0..11)
        .map(|i| (format!("t{i}"), RateValue(Decimal::new(10, 2))))
        .chain([
            ("Gold".to_owned(), RateValue(Decimal::new(10, 2))),
            ("high".to_owned(), RateValue(Decimal::new(2, 0))),
        ])
        .collect();
    let codes: Vec<(String, &str)> = ProductTerms::parse(bad)
        .unwrap_err()
        .all()
        .iter()
        .map(|v| (v.field.clone(), v.code))
        .collect();
    assert_eq!(
        codes,
        [
            ("rate_tiers".to_owned(), "validation.too_many_rate_tiers"),
            ("rate_tiers.Gold".to_owned(), "validation.invalid_rate_tier"),
            ("rate_tiers.high".to_owned(), "validation.rate_out_of_range"),
        ]
    );
    let mut fine = terms();
    fine.rate_tiers = [("preferred".to_owned(), RateValue(Decimal::new(1200, 4)))].into();
    let parsed = ProductTerms::parse(fine.clone()).unwrap();
    let (rate, tier) = parsed.rate_for(Some("preferred"));
    assert_eq!(
        (rate.basis(), rate.value(), tier),
        (RateBasis::Annual, Decimal::new(12, 2), Some("preferred"))
    );
    assert_eq!(parsed.rate_for(None), (parsed.rate(), None));
    let stored = serde_json::to_string(&parsed).unwrap();
    assert_eq!(
        serde_json::from_str::<ProductTerms>(&stored).unwrap(),
        parsed,
        "kept as stored"
    );
}

#[test]
fn versions_take_effect_in_order_and_freeze_once_effective() {
    let mut product = Product::create("p1".into(), input(), now()).unwrap();
    let later = now() + Duration::days(7);
    let v2 = product.add_version(terms(), Some(later), now()).unwrap();
    assert_eq!(v2, 2);
    assert_eq!(product.revision, 2);
    assert_eq!(product.version_at(now()).unwrap().version, 1);
    assert_eq!(product.version_at(later).unwrap().version, 2);

    // Not after the previous version: refused.
    let err = product
        .add_version(terms(), Some(later - Duration::days(1)), now())
        .unwrap_err();
    assert_eq!(err.code(), "validation.effective_from_not_after_previous");

    // A scheduled version may still be replaced; an effective one may not.
    let mut cheaper = terms();
    cheaper.rate.value = Decimal::new(12, 2);
    product
        .replace_scheduled_version(2, cheaper.clone(), None, now())
        .unwrap();
    assert_eq!(
        product.versions[1].terms.rate().value(),
        Decimal::new(12, 2)
    );
    let err = product
        .replace_scheduled_version(1, cheaper.clone(), None, now())
        .unwrap_err();
    assert_eq!(err, ProductError::VersionEffective(1));
    let err = product
        .replace_scheduled_version(2, cheaper, None, later)
        .unwrap_err();
    assert_eq!(err, ProductError::VersionEffective(2));
    assert_eq!(
        product
            .replace_scheduled_version(9, terms(), None, now())
            .unwrap_err(),
        ProductError::VersionNotFound(9)
    );
}

#[test]
fn retiring_sets_an_end_after_which_nothing_changes() {
    let mut product = Product::create("p1".into(), input(), now()).unwrap();
    let end = now() + Duration::days(30);
    assert_eq!(
        product
            .retire(now() - Duration::days(1), now())
            .unwrap_err()
            .code(),
        "validation.ends_at_in_past"
    );
    product.retire(end, now()).unwrap();
    assert_eq!(product.status(now()), ProductStatus::Retiring);
    assert_eq!(product.status(end), ProductStatus::Retired);
    assert_eq!(
        product
            .add_version(terms(), Some(end + Duration::days(1)), now())
            .unwrap_err()
            .code(),
        "validation.effective_from_after_end"
    );
    assert_eq!(
        product.add_version(terms(), None, end).unwrap_err(),
        ProductError::Retired(product.code.clone())
    );
    assert_eq!(
        product
            .retire(end + Duration::days(1), end)
            .unwrap_err()
            .code(),
        "conflict.product_retired"
    );
}

#[test]
fn a_product_scheduled_for_later_is_not_yet_in_effect() {
    let mut later = input();
    later.effective_from = Some(now() + Duration::hours(1));
    let product = Product::create("p1".into(), later, now()).unwrap();
    assert_eq!(product.status(now()), ProductStatus::Scheduled);
    assert!(product.version_at(now()).is_none());
}

#[test]
fn stored_terms_are_read_back_as_stored_even_past_a_tightened_limit() {
    let mut generous = terms();
    generous.grace_days = 999;
    let json = serde_json::to_string(&generous).unwrap();
    let read: ProductTerms = serde_json::from_str(&json).unwrap();
    assert_eq!(read.grace_days(), 999);
    assert!(
        ProductTerms::parse(generous).is_err(),
        "a request with it is still refused"
    );
}

#[test]
fn stored_terms_round_trip_through_their_wire_form() {
    let product = Product::create("p1".into(), input(), now()).unwrap();
    let json = serde_json::to_string(&product).unwrap();
    let back: Product = serde_json::from_str(&json).unwrap();
    assert_eq!(back, product);
    assert!(json.contains(r#""value":"0.18""#), "{json}");
}

#[test]
fn instants_are_kept_to_the_millisecond_the_stores_hold() {
    let fine = now() + Duration::nanoseconds(1_234_567_891);
    let mut product = Product::create("p1".into(), input(), fine).unwrap();
    assert_eq!(product.created_at, now() + Duration::milliseconds(1_234));
    let v2 = product
        .add_version(terms(), Some(fine + Duration::days(1)), fine)
        .unwrap();
    let scheduled = &product.versions[v2 as usize - 1].effective_from;
    assert_eq!(scheduled.timestamp_subsec_nanos() % 1_000_000, 0);
    product.retire(fine + Duration::days(2), fine).unwrap();
    assert_eq!(
        product.ends_at.unwrap().timestamp_subsec_nanos() % 1_000_000,
        0
    );
}
