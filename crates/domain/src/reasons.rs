//! The reason catalogue: one list of why things stop, defined once and used by the API, the
//! pages, notifications, metrics and alerts. Every refusal, expiry, closure and failure carries
//! one of these codes; none ends without one.

use serde::{Deserialize, Serialize};

/// How a failure arose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Category {
    System,
    User,
    Policy,
    Network,
    Identity,
    Credit,
    Risk,
    Channel,
    Link,
    Closed,
}

/// What the borrower can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NextAction {
    RetryLater,
    RetryNow,
    Wait,
    VerifyIdentity,
    UploadDocuments,
    RepayOverdue,
    UpdateBankAccount,
    ContactSupport,
    RequestNewLink,
    StartAgain,
    /// Finish the application and submit it.
    CompleteApplication,
    /// Accept the offer that was made.
    AcceptOffer,
    /// Sign in with the mobile number already registered for this identity.
    SignInWithRegisteredNumber,
    Nothing,
}

/// The schema is written by hand: on the wire a reason is its dotted code, which the derive,
/// inside the catalogue's macro, would name by the Rust variant instead.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Reason {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Reason::ALL.iter().map(|r| r.code())))
            .description(Some(
                "A stable reason code from the catalogue, e.g. `credit.line_frozen`",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Reason {}

macro_rules! catalogue {
    ($( $variant:ident => $code:literal, $category:ident, retryable: $retry:literal,
        visible: $visible:literal, $action:ident, $en:literal, $zh:literal; )*) => {
        /// A stable reason code, e.g. `credit.line_frozen`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Reason {
            $( #[serde(rename = $code)] $variant, )*
        }

        impl Reason {
            pub const ALL: &'static [Reason] = &[$(Reason::$variant),*];

            pub fn entry(self) -> Entry {
                match self {
                    $( Reason::$variant => Entry {
                        code: $code,
                        category: Category::$category,
                        retryable: $retry,
                        borrower_visible: $visible,
                        next_action: NextAction::$action,
                        message_en: $en,
                        message_zh: $zh,
                    }, )*
                }
            }
        }
    };
}

/// Everything the catalogue says about one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub code: &'static str,
    pub category: Category,
    /// Whether trying the same thing again may succeed.
    pub retryable: bool,
    /// Whether the exact cause may be shown to the borrower (risk reasons are not; they see a
    /// general message instead).
    pub borrower_visible: bool,
    pub next_action: NextAction,
    pub message_en: &'static str,
    pub message_zh: &'static str,
}

catalogue! {
    SystemOverloaded => "system.overloaded", System, retryable: true, visible: true, RetryLater,
        "We are busy right now. Please try again in a moment.", "系统繁忙，请稍后再试。";
    SystemMaintenance => "system.maintenance", System, retryable: true, visible: true, Wait,
        "Scheduled maintenance is under way. Your request is queued and will continue afterwards.", "系统维护中，您的申请已排队，维护结束后将继续处理。";
    SystemInternal => "system.internal", System, retryable: true, visible: true, ContactSupport,
        "Something went wrong on our side. We have been alerted and will follow up.", "系统出现问题，我们已收到告警并会跟进处理。";
    UserCancelled => "user.cancelled", User, retryable: false, visible: true, StartAgain,
        "You cancelled this request.", "您已取消本次申请。";
    UserAbandoned => "user.abandoned", User, retryable: false, visible: true, StartAgain,
        "This request was left unfinished and has been closed. You can start again at any time.", "本次申请长时间未完成，已关闭，您可随时重新发起。";
    OfferExpired => "user.offer_expired", User, retryable: true, visible: true, StartAgain,
        "The offer was not accepted in time and has lapsed. You can apply again.", "额度邀请未在有效期内接受，已失效，您可重新申请。";
    ConfirmationTimedOut => "user.confirmation_timed_out", User, retryable: true, visible: true, StartAgain,
        "The confirmation was not received in time. Please request a new quote.", "未在规定时间内确认，请重新获取报价。";
    NotDecidedInTime => "policy.not_decided_in_time", Policy, retryable: true, visible: true, StartAgain,
        "We could not decide on your application in time. We are sorry; you can apply again.", "很抱歉，我们未能及时完成审核，您可重新申请。";
    NotReviewedInTime => "policy.not_reviewed_in_time", Policy, retryable: true, visible: true, StartAgain,
        "We could not finish checking this request in time. Nothing was paid out and nothing is owed; you can try again.", "我们未能及时完成审核，本次借款未放款，您无需还款，可重新发起。";
    ProductRetired => "policy.product_retired", Policy, retryable: false, visible: true, StartAgain,
        "This product is no longer offered. Please choose another.", "该产品已下线，请选择其他产品。";
    RuleChanged => "policy.rule_changed", Policy, retryable: false, visible: true, StartAgain,
        "The terms have changed since your quote. Please review the new terms.", "报价后条款已变更，请查看新条款。";
    RegulatoryLimit => "policy.regulatory_limit", Policy, retryable: false, visible: true, Nothing,
        "This request exceeds a regulatory limit.", "本次申请超出监管限制。";
    ChannelTimeout => "network.channel_timeout", Network, retryable: true, visible: true, Wait,
        "The payment network did not answer in time. We are checking the status and will update you.", "支付渠道响应超时，我们正在核实状态并会通知您。";
    SyncFailure => "network.sync_failure", Network, retryable: true, visible: true, Wait,
        "We could not confirm the status yet. We will keep checking and update you.", "暂时无法确认状态，我们会持续核实并通知您。";
    NotVerified => "identity.not_verified", Identity, retryable: false, visible: true, VerifyIdentity,
        "Please verify your identity to continue.", "请先完成身份认证。";
    VerificationFailed => "identity.verification_failed", Identity, retryable: true, visible: true, VerifyIdentity,
        "Identity verification did not succeed. Please try another method.", "身份认证未通过，请尝试其他认证方式。";
    AlreadyRegistered => "identity.already_registered", Identity, retryable: false, visible: true, SignInWithRegisteredNumber,
        "This identity number is already registered with another mobile number. Sign in with that number to continue, or contact us if you no longer have it.", "该身份证号已使用其他手机号注册。请使用该手机号登录后继续；如该号码已不再使用，请联系我们。";
    CodeIncorrect => "identity.code_incorrect", Identity, retryable: true, visible: true, RetryNow,
        "The code is not correct. Check the text message and try again.", "验证码不正确，请核对短信后重试。";
    CodeExpired => "identity.code_expired", Identity, retryable: true, visible: true, RetryNow,
        "This code has expired or has been used. Request a new code in one step.", "验证码已过期或已使用，可一键重新获取。";
    TooManyAttempts => "identity.too_many_attempts", Identity, retryable: true, visible: true, RetryLater,
        "Too many attempts. To keep your account safe, please wait a while before trying again.", "尝试次数过多，为保障您的账户安全，请稍后再试。";
    CodeNotSent => "network.code_not_sent", Network, retryable: true, visible: true, RetryLater,
        "We could not send the code just now. Please try again in a moment.", "验证码暂时无法发送，请稍后再试。";
    MethodUnavailable => "identity.method_unavailable", Identity, retryable: true, visible: true, VerifyIdentity,
        "This way of verifying is unavailable right now. Please choose another.", "该认证方式暂不可用，请选择其他方式。";
    ScoreTooLow => "credit.score_too_low", Credit, retryable: false, visible: true, UploadDocuments,
        "We cannot offer credit right now. Adding income documents may help.", "暂时无法为您提供额度，补充收入证明可能有帮助。";
    LimitExceeded => "credit.limit_exceeded", Credit, retryable: false, visible: true, Nothing,
        "The amount is more than your available credit.", "借款金额超过可用额度。";
    LineFrozen => "credit.line_frozen", Credit, retryable: false, visible: true, ContactSupport,
        "Your credit line is frozen for now. Contact us to find out when it reopens.", "您的额度暂时冻结，请联系客服了解恢复时间。";
    LineExpired => "credit.line_expired", Credit, retryable: false, visible: true, StartAgain,
        "Your credit line has expired. You can apply for a new one.", "您的额度已到期，可重新申请。";
    LineClosed => "credit.line_closed", Credit, retryable: false, visible: true, ContactSupport,
        "Your credit line has been closed.", "您的额度已关闭。";
    Overdue => "credit.overdue", Credit, retryable: false, visible: true, RepayOverdue,
        "Please repay your overdue installment first.", "请先归还逾期款项。";
    MultiLending => "credit.multi_lending", Credit, retryable: false, visible: true, Wait,
        "You have too many loans open elsewhere right now.", "您当前在其他机构的借款过多。";
    IncomeInsufficient => "credit.income_insufficient", Credit, retryable: false, visible: true, UploadDocuments,
        "Your declared income does not support this amount. A smaller amount, or proof of more income, may help.", "您申报的收入不足以支持该金额。降低金额或补充收入证明可能有帮助。";
    LimitedHistory => "credit.limited_history", Credit, retryable: true, visible: true, Wait,
        "Your credit history is short for now. Borrowing and repaying on time builds it up.", "您的信用记录暂时较短，按时借还款可逐步积累。";
    DelinquencyRecord => "credit.delinquency_record", Credit, retryable: false, visible: true, ContactSupport,
        "Late payments on record weigh against this request. Paying on time from now on helps; contact us if a record is wrong.", "您有逾期还款记录，影响了本次申请。今后按时还款会有帮助；如记录有误请联系我们。";
    Velocity => "risk.velocity", Risk, retryable: true, visible: false, Wait,
        "We cannot complete this right now. Please try again later.", "暂时无法完成，请稍后再试。";
    AbnormalPattern => "risk.abnormal_pattern", Risk, retryable: false, visible: false, ContactSupport,
        "We cannot complete this right now. Please contact us.", "暂时无法完成，请联系客服。";
    LargeAmount => "risk.large_amount", Risk, retryable: false, visible: true, UploadDocuments,
        "This amount needs extra checks. Please provide supporting documents.", "该金额需额外审核，请补充相关材料。";
    FrequentProfileChanges => "risk.frequent_profile_changes", Risk, retryable: true, visible: false, Wait,
        "We cannot complete this right now. Please try again later.", "暂时无法完成，请稍后再试。";
    Blacklist => "risk.blacklist", Risk, retryable: false, visible: false, ContactSupport,
        "We cannot complete this. Please contact us.", "暂时无法完成，请联系客服。";
    RiskTryLater => "risk.try_later", Risk, retryable: true, visible: true, Wait,
        "We cannot complete this right now. Please try again later.", "暂时无法完成，请稍后再试。";
    RiskContactUs => "risk.contact_us", Risk, retryable: false, visible: true, ContactSupport,
        "We cannot complete this. Please contact us.", "暂时无法完成，请联系客服。";
    AccountInvalid => "channel.account_invalid", Channel, retryable: false, visible: true, UpdateBankAccount,
        "The receiving account was refused. Please check or change your bank account.", "收款账户被拒绝，请核对或更换银行卡。";
    ChannelUnavailable => "channel.unavailable", Channel, retryable: true, visible: true, Wait,
        "The payment channel is unavailable. We will retry automatically.", "支付渠道暂不可用，我们会自动重试。";
    ChannelLimit => "channel.limit", Channel, retryable: true, visible: true, Wait,
        "The payment channel's limit was reached. We will retry automatically.", "支付渠道额度已满，我们会自动重试。";
    LinkExpired => "link.expired", Link, retryable: true, visible: true, RequestNewLink,
        "This link has expired. Request a new one in one step.", "链接已过期，可一键重新获取。";
    LinkUsed => "link.used", Link, retryable: false, visible: true, RequestNewLink,
        "This link has already been used.", "该链接已使用。";
    LinkInvalid => "link.invalid", Link, retryable: false, visible: true, RequestNewLink,
        "This link is not valid here. Request a new one in one step.", "该链接无效，可一键重新获取。";
    PaidOff => "closed.paid_off", Closed, retryable: false, visible: true, Nothing,
        "Your loan is fully repaid. Thank you.", "您的借款已全部还清，感谢使用。";
}

impl Reason {
    /// The reason as a borrower may see it: itself, or — for a risk reason whose exact cause is
    /// not disclosed — a general one that still says whether to wait or to get in touch.
    pub fn for_borrower(self) -> Reason {
        let entry = self.entry();
        match (entry.borrower_visible, entry.retryable) {
            (true, _) => self,
            (false, true) => Reason::RiskTryLater,
            (false, false) => Reason::RiskContactUs,
        }
    }
}

impl Entry {
    /// The message in `language`.
    pub fn message(&self, language: Language) -> &'static str {
        match language {
            Language::En => self.message_en,
            Language::ZhHans => self.message_zh,
        }
    }
}

/// The languages the catalogue speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Language {
    #[default]
    #[serde(rename = "en")]
    En,
    /// Simplified Chinese.
    #[serde(rename = "zh-Hans")]
    ZhHans,
}

impl Language {
    /// The language a [`Language::tag`] names.
    pub fn from_tag(tag: &str) -> Option<Language> {
        [Language::En, Language::ZhHans]
            .into_iter()
            .find(|l| l.tag() == tag)
    }

    /// The BCP 47 tag, e.g. for `Content-Language`.
    pub fn tag(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::ZhHans => "zh-Hans",
        }
    }

    /// The language an `Accept-Language` header prefers among the catalogue's: the range with
    /// the highest weight that names one (any `zh…` range is answered in Simplified Chinese,
    /// the only Chinese the catalogue has); English when none does, or the header is garbage.
    pub fn negotiate(accept_language: &str) -> Language {
        Language::named_in(accept_language).unwrap_or(Language::En)
    }

    /// The catalogue's language an `Accept-Language` header weighs most, if it names one at
    /// all (`*`, `fr-FR` or nonsense name none).
    pub fn named_in(accept_language: &str) -> Option<Language> {
        let mut best: Option<(f32, Language)> = None;
        for range in accept_language.split(',') {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let weight = match parts.next().map(str::trim) {
                None => 1.0,
                Some(param) => match param.strip_prefix("q=").map(str::parse::<f32>) {
                    Some(Ok(q)) if (0.0..=1.0).contains(&q) => q,
                    _ => continue,
                },
            };
            let language = if tag == "zh" || tag.starts_with("zh-") {
                Language::ZhHans
            } else if tag == "en" || tag.starts_with("en-") {
                Language::En
            } else {
                continue;
            };
            if weight > 0.0 && best.is_none_or(|(w, _)| weight > w) {
                best = Some((weight, language));
            }
        }
        best.map(|(_, language)| language)
    }
}

impl Reason {
    pub fn code(self) -> &'static str {
        self.entry().code
    }

    pub fn parse(code: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.code() == code)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_weightiest_language_the_catalogue_has() {
        for (header, expected) in [
            ("zh-CN", Language::ZhHans),
            ("zh-Hans-CN, en;q=0.8", Language::ZhHans),
            ("en-US,zh;q=0.9", Language::En),
            ("en;q=0.5, zh;q=0.9", Language::ZhHans),
            ("fr-FR, de;q=0.9", Language::En),
            ("zh;q=0, en;q=0.1", Language::En),
            ("zh-TW", Language::ZhHans),
            ("*", Language::En),
            ("", Language::En),
            ("zh;q=banana, en", Language::En),
            (";;;,,,", Language::En),
        ] {
            assert_eq!(Language::negotiate(header), expected, "{header:?}");
        }
        let entry = Reason::LineFrozen.entry();
        assert_eq!(entry.message(Language::ZhHans), entry.message_zh);
        assert_eq!(Language::ZhHans.tag(), "zh-Hans");
        for language in [Language::En, Language::ZhHans] {
            assert_eq!(Language::from_tag(language.tag()), Some(language));
        }
        assert_eq!(Language::from_tag("fr"), None);
        for header in ["*", "fr-FR", ";;;", ""] {
            assert_eq!(Language::named_in(header), None, "{header:?}");
        }
        assert_eq!(Language::named_in("fr, zh;q=0.5"), Some(Language::ZhHans));
    }

    #[test]
    fn every_code_is_unique_parses_back_and_names_its_category() {
        let mut seen = std::collections::HashSet::new();
        for &reason in Reason::ALL {
            let entry = reason.entry();
            assert!(seen.insert(entry.code), "duplicate {}", entry.code);
            assert_eq!(Reason::parse(entry.code), Some(reason));
            let category = serde_json::to_value(entry.category).unwrap();
            assert!(
                entry
                    .code
                    .starts_with(&format!("{}.", category.as_str().unwrap())),
                "{}",
                entry.code
            );
            assert!(!entry.message_en.is_empty() && !entry.message_zh.is_empty());
            let json = serde_json::to_value(reason).unwrap();
            assert_eq!(json, entry.code);
        }
    }

    #[test]
    fn a_borrower_never_sees_an_undisclosed_cause_but_still_what_to_do() {
        for &reason in Reason::ALL {
            let shown = reason.for_borrower();
            assert!(shown.entry().borrower_visible, "{reason:?}");
            assert_eq!(
                shown.entry().retryable,
                reason.entry().retryable,
                "{reason:?}"
            );
            if reason.entry().borrower_visible {
                assert_eq!(shown, reason);
            }
        }
        assert_eq!(Reason::Blacklist.for_borrower(), Reason::RiskContactUs);
        assert_eq!(Reason::Velocity.for_borrower(), Reason::RiskTryLater);
    }
}
