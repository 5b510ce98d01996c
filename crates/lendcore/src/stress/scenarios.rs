//! What each operation does over the API, and what it needs made first: a product and a line
//! per drawdown (so one borrower's velocity rules do not decide the figures), active loans to
//! repay, and for applicants nothing but their numbers.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::Options;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Apply,
    Drawdown,
    Repay,
    /// One in five an application, three in five a drawdown, one in five a repayment.
    Mixed,
}

impl Scenario {
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Apply => "apply",
            Scenario::Drawdown => "drawdown",
            Scenario::Repay => "repay",
            Scenario::Mixed => "mixed",
        }
    }

    pub fn pick(self, rng: &mut impl Rng) -> Op {
        match self {
            Scenario::Apply => Op::Apply,
            Scenario::Drawdown => Op::Drawdown,
            Scenario::Repay => Op::Repay,
            Scenario::Mixed => match rng.random_range(0..5) {
                0 => Op::Apply,
                4 => Op::Repay,
                _ => Op::Drawdown,
            },
        }
    }
}

/// One operation of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// Sign in by SMS code, start an application, fill it in, submit it.
    Apply,
    /// Quote a drawdown and confirm it.
    Drawdown,
    /// Repay part of an active loan.
    Repay,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Apply => "apply",
            Op::Drawdown => "drawdown",
            Op::Repay => "repay",
        }
    }
}

/// Shares of drawdowns whose payout the sandbox channel is told to fail, by its scripted
/// accounts (docs/CHANNEL_PROTOCOL.md): `timeout=0.05,5xx=0.02,reject=0.01`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    pub timeout: f64,
    pub server_error: f64,
    pub reject: f64,
}

impl std::str::FromStr for Faults {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let mut faults = Faults::default();
        for part in raw.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, share) = part
                .split_once('=')
                .ok_or_else(|| format!("{part}: expected NAME=SHARE"))?;
            let share: f64 = share
                .trim()
                .parse()
                .map_err(|_| format!("{part}: the share must be a number from 0 to 1"))?;
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("{part}: the share must be from 0 to 1"));
            }
            match name.trim() {
                "timeout" => faults.timeout = share,
                "5xx" => faults.server_error = share,
                "reject" => faults.reject = share,
                other => return Err(format!("{other}: one of timeout, 5xx, reject")),
            }
        }
        if faults.timeout + faults.server_error + faults.reject > 1.0 {
            return Err("the shares add up to more than 1".to_owned());
        }
        Ok(faults)
    }
}

impl Faults {
    /// The account a drawdown pays to: the sandbox misbehaves as its suffix says.
    fn account(self, rng: &mut impl Rng) -> &'static str {
        let roll: f64 = rng.random();
        if roll < self.timeout {
            "acct-1~timeout"
        } else if roll < self.timeout + self.server_error {
            "acct-1~5xx"
        } else if roll < self.timeout + self.server_error + self.reject {
            "acct-1~reject:channel.account_invalid"
        } else {
            "acct-1"
        }
    }
}

/// The HTTP client a run uses: the lender's back-end's key for what it does, none for what a
/// borrower does.
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
    sms: Option<(String, Option<String>)>,
    forwarded_for: bool,
    run: String,
}

/// What a run made, and where each operation takes its next thing from.
pub struct World {
    client: Client,
    product: String,
    faults: Faults,
    seed: u64,
    lines: Vec<String>,
    next_line: AtomicUsize,
    loans: Vec<String>,
}

/// An error of a step: the service's code for a refusal, or the client's own.
type Failed = String;

/// Who a request is sent as.
#[derive(Clone, Copy)]
enum As<'a> {
    /// The lender's back-end, with the run's API key.
    Lender,
    /// A signed-in borrower, with their session.
    Borrower(&'a str),
    /// Anyone: signing in.
    Anyone,
}

const AMOUNT_MINOR: i64 = 100_000;
/// Lines drawdowns take in turn, at most.
const MAX_LINES: usize = 500;
const LINE_LIMIT_MINOR: i64 = 10_000_000;

impl Client {
    pub fn new(options: &Options) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build()?;
        Ok(Client {
            http,
            base: options.url.trim_end_matches('/').to_owned(),
            key: options.key.clone(),
            sms: options
                .sms_inbox
                .clone()
                .map(|inbox| (inbox, options.sms_key.clone())),
            forwarded_for: options.forwarded_for,
            // Names what this run makes apart from any other run's.
            run: format!("{:08x}", rand::random::<u32>()),
        })
    }

    /// Sends one request; its body, or the error code of its refusal.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        caller: As<'_>,
        body: Option<&Value>,
        extra: &[(&str, String)],
    ) -> Result<Value, Failed> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        request = match caller {
            As::Lender => request.bearer_auth(&self.key),
            As::Borrower(token) => request.bearer_auth(token),
            As::Anyone => request,
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in extra {
            request = request.header(*name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| super::transport_code(&e))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            Err(super::refusal_code(status, &body))
        }
    }

    async fn post(&self, path: &str, body: &Value, key: Option<String>) -> Result<Value, Failed> {
        let extra: Vec<(&str, String)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        self.call(reqwest::Method::POST, path, As::Lender, Some(body), &extra)
            .await
    }

    /// Makes what the operations planned need, through the API.
    pub async fn prepare(self, ops: &[Op], faults: Faults, seed: u64) -> anyhow::Result<World> {
        let need = |op: Op| ops.iter().filter(|o| **o == op).count();
        if need(Op::Apply) > 0 {
            anyhow::ensure!(
                self.sms.is_some(),
                "applying signs in by SMS code: give --sms-inbox (the sandbox SMS gateway's \
                 …/v1/messages, as the demo prints it) and --sms-key"
            );
        }
        let product = format!("stress-{}", self.run);
        self.post(
            "/v1/products",
            &json!({
                "code": product, "name": "Stress test", "kind": "installment", "currency": "CNY",
                "terms": {
                    "amount": {"min_minor": 10_000, "max_minor": 5_000_000},
                    "terms": {"unit": "month", "options": [12]},
                    "rate": {"basis": "annual", "value": "0.18"},
                    "repayment_method": "equal_installment",
                    "penalty_daily_rate": "0.0005", "grace_days": 3
                }
            }),
            Some(format!("stress-{}-product", self.run)),
        )
        .await
        .map_err(|code| anyhow::anyhow!("creating the product: {code}"))?;
        // Lines enough that no one borrower's velocity rules decide the figures (a line takes
        // drawdowns in turn), and one for every loan to repay; granted sixteen at a time.
        let loans_wanted = if need(Op::Repay) > 0 {
            need(Op::Repay).clamp(1, 64)
        } else {
            0
        };
        let lines_wanted = need(Op::Drawdown).min(MAX_LINES) + loans_wanted;
        let bar = indicatif::ProgressBar::new(lines_wanted as u64);
        bar.set_message("credit lines");
        let until = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
        let granted: Vec<Result<String, Failed>> = futures::stream::iter(0..lines_wanted)
            .map(|n| {
                let (until, bar) = (until.clone(), bar.clone());
                let this = &self;
                async move {
                    let line = this
                        .post(
                            "/v1/credit-lines",
                            &json!({
                                "borrower_id": format!("stress-{}-{n}", this.run), "currency": "CNY",
                                "limit_minor": LINE_LIMIT_MINOR, "valid_until": until
                            }),
                            Some(format!("stress-{}-line-{n}", this.run)),
                        )
                        .await?;
                    bar.inc(1);
                    line["id"]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| "client.unreadable_answer".to_owned())
                }
            })
            .buffered(16)
            .collect()
            .await;
        bar.finish_and_clear();
        let mut lines = granted
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|code| anyhow::anyhow!("granting a credit line: {code}"))?;
        let loan_lines = lines.split_off(lines.len() - loans_wanted);
        let mut world = World {
            client: self,
            product,
            faults,
            seed,
            lines,
            next_line: AtomicUsize::new(0),
            loans: Vec::new(),
        };
        let mut pending = Vec::new();
        for (n, line) in loan_lines.iter().enumerate() {
            pending.push(
                world
                    .draw(line, "acct-1", &format!("loan-{n}"))
                    .await
                    .map_err(|code| anyhow::anyhow!("drawing a loan to repay: {code}"))?,
            );
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        for id in pending {
            loop {
                let seen = world
                    .client
                    .call(
                        reqwest::Method::GET,
                        &format!("/v1/drawdowns/{id}"),
                        As::Lender,
                        None,
                        &[],
                    )
                    .await
                    .map_err(|code| anyhow::anyhow!("reading drawdown {id}: {code}"))?;
                match seen["drawdown"]["status"]["state"]
                    .as_str()
                    .or(seen["drawdown"]["status"].as_str())
                {
                    Some("active") => break,
                    Some("disbursing" | "queued_for_maintenance") => {}
                    other => anyhow::bail!(
                        "a loan to repay did not pay out ({}): is the target's channel the sandbox?",
                        other.unwrap_or("unknown")
                    ),
                }
                anyhow::ensure!(
                    std::time::Instant::now() < deadline,
                    "a loan to repay was not paid out within a minute"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            world.loans.push(id);
        }
        Ok(world)
    }
}

impl World {
    /// Runs operation `n`; the error code of the step that failed, if one did.
    pub async fn perform(&self, op: Op, n: usize) -> Result<(), Failed> {
        match op {
            Op::Drawdown => {
                let line = &self.lines
                    [self.next_line.fetch_add(1, Ordering::Relaxed) % self.lines.len().max(1)];
                // Seeded per operation, so a run with the same seed fails the same payouts.
                let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed ^ n as u64);
                let account = self.faults.account(&mut rng);
                self.draw(line, account, &format!("op-{n}")).await.map(drop)
            }
            Op::Repay => {
                let loan = &self.loans[n % self.loans.len().max(1)];
                self.client
                    .post(
                        &format!("/v1/loans/{loan}/repayments"),
                        &json!({"amount_minor": 100}),
                        Some(format!("stress-{}-repay-{n}", self.client.run)),
                    )
                    .await
                    .map(drop)
            }
            Op::Apply => self.apply(n).await,
        }
    }

    /// Quotes and confirms a drawdown; its id.
    async fn draw(&self, line: &str, account: &str, name: &str) -> Result<String, Failed> {
        let quoted = self
            .client
            .post(
                "/v1/drawdowns/quotes",
                &json!({
                    "line_id": line, "product_code": self.product, "amount_minor": AMOUNT_MINOR,
                    "term": 12, "account": account
                }),
                None,
            )
            .await?;
        let confirmed = self
            .client
            .post(
                "/v1/drawdowns/confirm",
                &json!({"confirmation_token": quoted["confirmation_token"]}),
                Some(format!("stress-{}-{name}", self.client.run)),
            )
            .await?;
        confirmed["drawdown"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "client.unreadable_answer".to_owned())
    }

    /// An applicant of their own signs in with the code texted to them, then starts, fills in
    /// and submits an application.
    async fn apply(&self, n: usize) -> Result<(), Failed> {
        let client = &self.client;
        let applicant = Applicant::new(&client.run, n);
        let extra: Vec<(&str, String)> = client
            .forwarded_for
            .then(|| ("x-forwarded-for", applicant.address.clone()))
            .into_iter()
            .collect();
        let challenge = client
            .call(
                reqwest::Method::POST,
                "/v1/auth/codes",
                As::Anyone,
                Some(&json!({"mobile": applicant.mobile})),
                &extra,
            )
            .await?;
        let code = self.code_sent_to(&applicant.mobile).await?;
        let session = client
            .call(
                reqwest::Method::POST,
                "/v1/auth/codes/verify",
                As::Anyone,
                Some(&json!({"challenge_id": challenge["challenge_id"], "code": code})),
                &extra,
            )
            .await?;
        let token = session["token"]
            .as_str()
            .ok_or_else(|| "client.unreadable_answer".to_owned())?;
        let draft = client
            .call(
                reqwest::Method::POST,
                "/v1/applications",
                As::Borrower(token),
                None,
                &extra,
            )
            .await?;
        let id = draft["id"]
            .as_str()
            .ok_or_else(|| "client.unreadable_answer".to_owned())?;
        client
            .call(
                reqwest::Method::PATCH,
                &format!("/v1/applications/{id}"),
                As::Borrower(token),
                Some(&json!({"revision": draft["revision"], "answers": applicant.answers()})),
                &extra,
            )
            .await?;
        let mut submit = extra.clone();
        submit.push((
            "idempotency-key",
            format!("stress-{}-submit-{n}", client.run),
        ));
        client
            .call(
                reqwest::Method::POST,
                &format!("/v1/applications/{id}/submit"),
                As::Borrower(token),
                None,
                &submit,
            )
            .await
            .map(drop)
    }

    /// The six-digit code the sandbox SMS gateway last took for `mobile`.
    async fn code_sent_to(&self, mobile: &str) -> Result<String, Failed> {
        let Some((inbox, key)) = &self.client.sms else {
            return Err("client.no_sms_inbox".to_owned());
        };
        for _ in 0..50 {
            let mut request = self.client.http.get(inbox).query(&[("to", mobile)]);
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let messages: Value = request
                .send()
                .await
                .map_err(|_| "client.sms_inbox".to_owned())?
                .json()
                .await
                .map_err(|_| "client.sms_inbox".to_owned())?;
            let code = messages
                .as_array()
                .and_then(|m| m.last())
                .and_then(|m| m["text"].as_str())
                .and_then(|text| {
                    text.split(|c: char| !c.is_ascii_digit())
                        .find(|w| w.len() == 6)
                        .map(str::to_owned)
                });
            if let Some(code) = code {
                return Ok(code);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Err("client.no_code_texted".to_owned())
    }
}

/// A synthetic applicant, different for every run and operation: a mobile number the sandbox
/// SMS gateway accepts, a resident identity number with a correct check character, and an
/// address of its own.
struct Applicant {
    mobile: String,
    resident_id: String,
    address: String,
    name: String,
}

impl Applicant {
    fn new(run: &str, n: usize) -> Applicant {
        // Spread over the whole space by a hash of the run and the operation, so runs do not
        // meet each other's applicants but by a rare chance.
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&(run, n), &mut h);
        let hash = std::hash::Hasher::finish(&h);
        // The sandbox refuses numbers ending 0000 and fails those ending 9999: end in 1..8.
        let mobile = format!("139{:07}{}", hash % 10_000_000, 1 + (hash >> 24) % 8);
        let born = chrono::NaiveDate::from_ymd_opt(1960, 1, 1).unwrap_or_default()
            + chrono::Duration::days(((hash >> 32) % 14_000) as i64);
        let base = format!("110105{}{:03}", born.format("%Y%m%d"), (hash >> 48) % 1000);
        Applicant {
            resident_id: format!("{base}{}", check_character(&base)),
            address: format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255),
            name: format!("压测{n}"),
            mobile,
        }
    }

    fn answers(&self) -> Value {
        json!({
            "name": self.name, "resident_id": self.resident_id, "mobile": self.mobile,
            "bank_account": "6222020200112233445", "requested_limit_minor": 5_000_000,
            "monthly_income_minor": 1_500_000, "employer": "Stress Ltd", "purpose": "working capital"
        })
    }
}

/// The check character of a resident identity number's first 17 digits (GB 11643).
fn check_character(base: &str) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = base
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
        .sum();
    ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_as_shares_that_add_up_to_at_most_one() {
        let faults: Faults = "timeout=0.05, 5xx=0.02,reject=0.01".parse().unwrap();
        assert_eq!(
            faults,
            Faults {
                timeout: 0.05,
                server_error: 0.02,
                reject: 0.01
            }
        );
        assert_eq!("".parse::<Faults>().unwrap(), Faults::default());
        for bad in [
            "timeout",
            "timeout=x",
            "timeout=2",
            "slow=0.1",
            "timeout=0.6,5xx=0.6",
        ] {
            assert!(bad.parse::<Faults>().is_err(), "{bad}");
        }
    }

    #[test]
    fn synthetic_applicants_have_valid_distinct_identities() {
        assert_eq!(
            check_character("11010519491231002"),
            'X',
            "the known example"
        );
        let a = Applicant::new("0000abcd", 1);
        let b = Applicant::new("0000abcd", 2);
        assert_ne!(
            (a.mobile.as_str(), a.resident_id.as_str()),
            (b.mobile.as_str(), b.resident_id.as_str())
        );
        assert!(
            lendcore_domain::borrower::Mobile::parse(&a.mobile).is_ok(),
            "{}",
            a.mobile
        );
        assert_eq!(a.resident_id.len(), 18);
        assert!(!a.mobile.ends_with("0000") && !a.mobile.ends_with("9999"));
    }
}
