use chrono::NaiveDate;

use super::*;

fn today() -> Date {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

fn individual() -> BorrowerInput {
    BorrowerInput {
        kind: Some(BorrowerKind::Individual),
        name: "张三".into(),
        resident_id: Some("11010519491231002X".into()),
        mobile: Some("+86 138-1234-5678".into()),
        email: Some("zhang.san@example.com".into()),
        address: Some("北京市朝阳区建国路88号".into()),
        bank_account: Some("6222 0212 3456 7890 123".into()),
        ..BorrowerInput::default()
    }
}

#[test]
fn an_individual_parses_and_shows_only_masked_data() {
    let (kind, data) = individual().parse(today()).unwrap();
    assert_eq!(kind, BorrowerKind::Individual);
    assert_eq!(data.mobile.as_ref().unwrap().expose(), "13812345678");
    let masked = data.masked();
    assert_eq!(masked.name, "张*");
    assert_eq!(masked.resident_id.as_deref(), Some("110***********002X"));
    assert_eq!(masked.mobile.as_deref(), Some("138****5678"));
    assert_eq!(masked.email.as_deref(), Some("z***@example.com"));
    assert_eq!(masked.address.as_deref(), Some("北京市朝阳区***"));
    assert_eq!(masked.bank_account.as_deref(), Some("************0123"));
    assert_eq!(
        format!("{data:?}"),
        "PersonalData(masked)",
        "nothing personal in logs"
    );
}

#[test]
fn an_enterprise_needs_its_credit_code_and_legal_representative() {
    let input = BorrowerInput {
        kind: Some(BorrowerKind::Enterprise),
        name: "Fujian Example Co., Ltd.".into(),
        credit_code: Some("91350100M000100Y43".into()),
        legal_representative: Some("Li Si".into()),
        ..BorrowerInput::default()
    };
    let (kind, data) = input.clone().parse(today()).unwrap();
    assert_eq!(kind, BorrowerKind::Enterprise);
    assert_eq!(data.masked().name, "F*** Ltd.");
    let missing = BorrowerInput {
        legal_representative: None,
        credit_code: Some("91350100M000100Y44".into()),
        ..input
    }
    .parse(today())
    .unwrap_err();
    let codes: Vec<_> = missing
        .all()
        .iter()
        .map(|v| (v.field.as_str(), v.code))
        .collect();
    assert_eq!(
        codes,
        [
            ("credit_code", "validation.credit_code_check"),
            ("legal_representative", "validation.missing_field")
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once_with_its_field() {
    let bad = BorrowerInput {
        kind: Some(BorrowerKind::Individual),
        name: " ".into(),
        resident_id: Some("110105194912310021".into()),
        credit_code: Some("91350100M000100Y43".into()),
        mobile: Some("12345".into()),
        email: Some("not-an-email".into()),
        address: Some("\u{0}".into()),
        bank_account: Some("12ab".into()),
        ..BorrowerInput::default()
    };
    let violations = bad.parse(today()).unwrap_err();
    let fields: Vec<_> = violations.all().iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "resident_id",
            "credit_code",
            "mobile",
            "email",
            "address",
            "bank_account"
        ]
    );
    let no_kind = BorrowerInput::default().parse(today()).unwrap_err();
    assert_eq!(no_kind.first().field, "kind");
}

#[test]
fn contact_changes_are_applied_and_listed_masked_and_sameness_is_no_change() {
    let (_, mut data) = individual().parse(today()).unwrap();
    let changed = data
        .change_contact(ContactChange {
            mobile: Some("13912345678".into()),
            address: Some("北京市朝阳区建国路88号".into()),
            bank_account: Some("6222021234567890999".into()),
        })
        .unwrap();
    assert_eq!(
        changed,
        [
            Changed {
                field: ChangedField::Mobile,
                before: Some("138****5678".to_owned()),
                after: "139****5678".to_owned()
            },
            Changed {
                field: ChangedField::BankAccount,
                before: Some("************0123".to_owned()),
                after: "************0999".to_owned()
            },
        ]
    );
    assert_eq!(data.mobile.as_ref().unwrap().expose(), "13912345678");
    let refused = data
        .change_contact(ContactChange {
            mobile: Some("1".into()),
            ..ContactChange::default()
        })
        .unwrap_err();
    assert_eq!(refused.first().code, "validation.invalid_mobile");
    assert_eq!(
        data.mobile.as_ref().unwrap().expose(),
        "13912345678",
        "nothing half-applied"
    );
}
