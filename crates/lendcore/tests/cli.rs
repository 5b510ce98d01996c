//! The binary as a person runs it: the demo from a clean directory, migrate, config.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lendcore_testkit::store_test;

mod common;

use common::BIN;

/// Kills the child if the test fails half-way, so no server outlives its test.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_demo_serves_products_and_the_reference_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Running(
        Command::new(BIN)
            .args(["demo", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .current_dir(dir.path())
            .env_remove("LENDCORE_CONFIG")
            // The load test below signs its applicants in from addresses of their own.
            .env("LENDCORE_SERVER__CLIENT_IP_HEADER", "x-forwarded-for")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut printed = Vec::new();
    let (mut reference, mut key) = (None, None);
    while reference.is_none()
        || key.is_none()
        || !printed
            .iter()
            .any(|l: &String| l.starts_with("Stop with Ctrl-C"))
    {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                panic!("demo printed no API reference URL and key; saw {printed:?}")
            });
        if let Some(url) = line.trim().strip_prefix("API reference") {
            reference = Some(url.trim().to_owned());
        }
        if let Some((_, shown)) = line.split_once("made for this run):") {
            key = Some(shown.trim().to_owned());
        }
        printed.push(line);
    }
    let (reference, key) = (reference.unwrap(), key.unwrap());
    assert!(
        printed.iter().any(|l| l.contains("demo.sqlite3")),
        "prints the database path"
    );
    let base = reference.trim_end_matches("/docs/api").to_owned();

    let http = common::client(&key);
    let page = http.get(&reference).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/v1/products"));
    let products: serde_json::Value = http
        .get(format!("{base}/v1/products"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let codes: Vec<_> = products["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, ["cash-12m", "daily-credit"]);

    // The product working: the demo line's borrower is registered, a drawdown pays out, and
    // the borrower is texted a link that opens on the demo's own page.
    let line_id = printed
        .iter()
        .find_map(|l| l.split("/v1/credit-lines/").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the demo prints its line")
        .to_owned();
    let get = |path: String| {
        let http = http.clone();
        async move {
            let response = http.get(path).send().await.unwrap();
            (
                response.status().as_u16(),
                response
                    .json::<serde_json::Value>()
                    .await
                    .unwrap_or_default(),
            )
        }
    };
    let (status, line) = get(format!("{base}/v1/credit-lines/{line_id}")).await;
    assert_eq!(status, 200, "{line}");
    let borrower = line["borrower_id"]
        .as_str()
        .expect("the line names its borrower");
    let (status, registered) = get(format!("{base}/v1/borrowers/{borrower}")).await;
    assert_eq!(status, 200, "the demo borrower is registered: {registered}");
    let quoted: serde_json::Value = http
        .post(format!("{base}/v1/drawdowns/quotes"))
        .json(&serde_json::json!({"line_id": line_id, "product_code": "cash-12m", "amount_minor": 1_000_000, "term": 12, "account": "acct-1"}))
        .send().await.unwrap().json().await.unwrap();
    let confirmed: serde_json::Value = http
        .post(format!("{base}/v1/drawdowns/confirm"))
        .header("idempotency-key", "demo-test-1")
        .json(&serde_json::json!({"confirmation_token": quoted["confirmation_token"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = confirmed["drawdown"]["id"]
        .as_str()
        .expect("confirmed")
        .to_owned();
    let paid_by = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, view) = get(format!("{base}/v1/drawdowns/{id}")).await;
        if view["drawdown"]["status"]["state"] == "active" {
            break;
        }
        assert!(Instant::now() < paid_by, "the demo never paid out: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sent = http
        .post(format!("{base}/v1/loans/{id}/view-link"))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201, "{}", sent.text().await.unwrap());
    let page = http
        .get(format!("{base}/links/open?link=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/v1/links/open"));

    // The default credit policy at work: an approval, a decline with reasons, a held drawdown.
    let shown = |label: &str, path: &str| {
        printed
            .iter()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split(path).nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("the demo prints the {label} example: {printed:?}"))
            .to_owned()
    };
    let (_, approved) = get(format!(
        "{base}/v1/applications/{}",
        shown("approved", "/v1/applications/")
    ))
    .await;
    assert_eq!(approved["state"], "approved", "{approved}");
    let (_, declined) = get(format!(
        "{base}/v1/applications/{}",
        shown("declined", "/v1/applications/")
    ))
    .await;
    assert_eq!(declined["state"], "declined", "{declined}");
    assert!(
        !declined["reasons"].as_array().unwrap().is_empty(),
        "{declined}"
    );
    let (status, record) = get(format!(
        "{base}/v1/applications/{}/decision",
        shown("declined", "/v1/applications/")
    ))
    .await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["bureau"]["bureau"], "sandbox");
    // Replayed from the command line, beside the running service, to the same answer.
    let replayed = Command::new(BIN)
        .args(["decide", "replay", "--db"])
        .arg(format!(
            "sqlite://{}",
            dir.path().join("data/demo.sqlite3").display()
        ))
        .arg(format!(
            "{}/{}",
            record["borrower_id"].as_str().unwrap(),
            record["id"].as_str().unwrap()
        ))
        .env_remove("LENDCORE_CONFIG")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&replayed.stdout);
    assert!(
        replayed.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert!(
        said.contains("the same answer") && said.contains("recorded  decline"),
        "{said}"
    );
    let unknown = Command::new(BIN)
        .args(["decide", "replay", "--db"])
        .arg(format!(
            "sqlite://{}",
            dir.path().join("data/demo.sqlite3").display()
        ))
        .arg("nobody/nothing")
        .env_remove("LENDCORE_CONFIG")
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no decision"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    let (_, held) = get(format!(
        "{base}/v1/drawdowns/{}",
        shown("held", "/v1/drawdowns/")
    ))
    .await;
    assert_eq!(
        held["drawdown"]["status"]["state"], "held_for_review",
        "{held}"
    );

    // Stressed on demand, as a lender rehearses a peak: every scenario at once, payouts the
    // sandbox channel fails, and a report a person can open.
    let sms_inbox = printed
        .iter()
        .find_map(|l| l.trim().strip_prefix("Sandbox SMS"))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the demo prints its SMS inbox")
        .to_owned();
    let report = dir.path().join("stress.html");
    let stressed = Command::new(BIN)
        .args(["loadtest", "run", "mixed", "--url", &base, "--key", &key])
        .args([
            "--rate",
            "20",
            "--duration",
            "3",
            "--faults",
            "timeout=0.3,reject=0.3",
        ])
        .args([
            "--sms-inbox",
            &sms_inbox,
            "--sms-key",
            "demo",
            "--forwarded-for",
            "--html",
        ])
        .arg(&report)
        .env_remove("LENDCORE_CONFIG")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&stressed.stdout);
    assert!(
        stressed.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&stressed.stderr)
    );
    for op in ["apply ", "drawdown ", "repay "] {
        let row = said
            .lines()
            .find(|l| l.starts_with(op))
            .unwrap_or_else(|| panic!("{op}in {said}"));
        let ok: usize = row.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(ok > 0, "{said}");
    }
    assert!(!said.contains("system.internal"), "{said}");
    // The faults reached the channel: drawdowns were sent to the sandbox's failing accounts.
    let demo = rusqlite::Connection::open(dir.path().join("data/demo.sqlite3")).unwrap();
    for account in ["acct-1~timeout", "acct-1~reject:channel.account_invalid"] {
        let sent: i64 = demo
            .query_row(
                "SELECT COUNT(*) FROM drawdowns WHERE json_extract(body, '$.account') = ?1",
                [account],
                |row| row.get(0),
            )
            .unwrap();
        assert!(sent > 0, "no drawdown paid to {account}");
    }
    drop(demo);
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(page.contains("<svg") && page.contains("drawdown") && !page.contains("<script"));
    let remote = Command::new(BIN)
        .args([
            "loadtest",
            "run",
            "drawdown",
            "--url",
            "http://10.255.255.1:8080",
            "--key",
            "k",
        ])
        .env_remove("LENDCORE_CONFIG")
        .output()
        .unwrap();
    assert!(!remote.status.success());
    assert!(
        String::from_utf8_lossy(&remote.stderr).contains("--allow-remote"),
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );

    // A candidate policy backtested beside the one in effect, read from the demo's database.
    let candidate = dir.path().join("candidate.json");
    std::fs::write(&candidate, lendcore_domain::decision::DEFAULT_POLICY).unwrap();
    let past = dir.path().join("past.csv");
    std::fs::write(
        &past,
        "monthly_income_minor,requested_limit_minor,age_years,outcome\n\
         1500000,5000000,35,good\n200000,9000000,22,bad\n",
    )
    .unwrap();
    let simulated = Command::new(BIN)
        .args(["policy", "simulate", "--policy"])
        .arg(&candidate)
        .arg("--applications")
        .arg(&past)
        .args(["--against", "live", "--target", "outcome", "--db"])
        .arg(format!(
            "sqlite://{}",
            dir.path().join("data/demo.sqlite3").display()
        ))
        .env_remove("LENDCORE_CONFIG")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&simulated.stdout);
    assert!(
        simulated.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&simulated.stderr)
    );
    assert!(
        said.contains("2 applications") && said.contains("candidate") && said.contains('@'),
        "the live version named code@version: {said}"
    );

    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stop_by = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(status.success(), "demo exited with {status}");
            break;
        }
        assert!(Instant::now() < stop_by, "demo did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn config_shows_the_effective_settings_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["config", "--db", "postgres://app:hunter2@db.internal/lend"])
        .current_dir(dir.path())
        .env("LENDCORE_SERVER__MAX_IN_FLIGHT", "33")
        .output()
        .unwrap();
    assert!(output.status.success());
    let shown = String::from_utf8(output.stdout).unwrap();
    assert!(
        shown.contains("postgres://app:***@db.internal/lend"),
        "{shown}"
    );
    assert!(shown.contains("max_in_flight = 33"), "{shown}");
    assert!(!shown.contains("hunter2"));
}

#[test]
fn a_bad_database_url_is_refused_with_a_message_not_a_panic() {
    let output = Command::new(BIN)
        .args(["migrate", "--db", "mysql://root:pw@localhost/x"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(err.contains("unsupported database URL"), "{err}");
    assert!(!err.contains("panicked") && !err.contains("pw@"), "{err}");
}

store_test! {
    async fn migrate_reports_what_it_applied(db: &TestDb) {
        let output = Command::new(BIN)
            .args(["migrate", "--db", &db.url])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let said = String::from_utf8(output.stdout).unwrap();
        assert!(said.contains("0 migration(s) applied now"), "already migrated by the test: {said}");
    }
}

store_test! {
    async fn serve_will_not_re_key_a_database_in_use_and_says_how_to_upgrade(db: &TestDb) {
        // As a database of the previous build looks: every migration applied but 0035.
        db.execute("DELETE FROM _sqlx_migrations WHERE version = 35").await;
        let output = Command::new(BIN)
            .args(["serve", "--db", &db.url, "--bind", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert!(!output.status.success());
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains("migration 0035") && err.contains("run `lendcore migrate`"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

store_test! {
    async fn close_of_business_runs_from_the_command_line(db: &TestDb) {
        let output = Command::new(BIN)
            .args(["cob", "run", "--db", &db.url, "--date", "2026-11-22"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let said = String::from_utf8(output.stdout).unwrap();
        assert!(said.contains("close of business 2026-11-22: 0 loans closed"), "{said}");
        let bad = Command::new(BIN)
            .args(["cob", "run", "--db", &db.url, "--date", "2026-02-30"])
            .output()
            .unwrap();
        assert!(!bad.status.success());
        assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid value"));
    }
}

store_test! {
    async fn verify_passes_a_sound_book_and_names_what_breaks_each_rule(db: &TestDb) {
        use std::sync::Arc;

        use lendcore_domain::product::{NewProductInput, ProductCode, ProductKind};
        use lendcore_engine::{Engine, ManualClock, credit_lines, drawdowns, products};
        let now = chrono::Utc::now();
        let engine = Engine::new(db.store.clone(), Arc::new(ManualClock::new(now)));
        products::create_product(&engine, NewProductInput {
            code: "cash".into(), name: "Cash".into(), kind: ProductKind::Installment, currency: "CNY".into(),
            terms: serde_json::from_value(serde_json::json!({
                "amount": {"min_minor": 100000, "max_minor": 5000000}, "terms": {"unit": "month", "options": [12]},
                "rate": {"basis": "annual", "value": "0.18"}, "repayment_method": "equal_installment",
                "penalty_daily_rate": "0.0005", "grace_days": 3
            })).unwrap(),
            effective_from: None,
        }, None).await.unwrap();
        // Under the default policy, so that every confirmation keeps a decision record.
        let risk = |id: &str| lendcore_engine::access::Principal::Operator {
            id: id.into(), username: id.into(), role: lendcore_domain::access::Role::Risk, session_id: "test".into(),
        };
        let consumer = lendcore_domain::decision::PolicyCode::parse("consumer").unwrap();
        let document = serde_json::from_str(lendcore_domain::decision::DEFAULT_POLICY).unwrap();
        lendcore_engine::decisions::author(&engine, &risk("maker"), &consumer, document, None).await.unwrap();
        lendcore_engine::decisions::activate(&engine, &risk("checker"), &consumer, 1, None, None).await.unwrap();
        let mut confirmed = Vec::new();
        for borrower in ["b-1", "b-2"] {
            let line = credit_lines::grant(&engine, lendcore_domain::credit_line::GrantInput {
                borrower_id: borrower.into(), currency: "CNY".into(), limit_minor: 1_000_000,
                rate_tier: None, valid_from: None, valid_until: now + chrono::Duration::days(30),
                actor: "ops:test".into(), note: None,
            }, None).await.unwrap().into_inner();
            let quoted = drawdowns::quote(&engine, drawdowns::DrawdownRequest {
                line_id: line.line.id.clone(), product: ProductCode::parse("cash").unwrap(),
                amount_minor: 400_000, term: 12, split: None, account: "acct-1".into(),
            }, None).await.unwrap().into_inner();
            let view = drawdowns::confirm(&engine, &quoted.confirmation_token, None).await.unwrap().into_inner();
            confirmed.push((line.line.id, view.drawdown.id));
        }
        let verify = || Command::new(BIN).args(["verify", "--db", &db.url]).output().unwrap();
        // Sound with the decisions' audit entries still pending, and once they are sealed.
        for sealed in [false, true] {
            if sealed {
                lendcore_engine::audit::seal(db.store.as_ref()).await.unwrap();
            }
            let sound = verify();
            let said = String::from_utf8(sound.stdout).unwrap();
            assert!(sound.status.success(), "{said}");
            assert!(said.contains("ok      drawdowns_in_flight_have_a_job") && said.ends_with("the database is sound\n"), "{said}");
            assert!(said.contains("ok      decisions_match_the_audit_chain"), "{said}");
        }

        // Each rule broken once, as a bad restore or a hand edit would.
        let ((line_1, drawdown_1), (line_2, drawdown_2)) = (&confirmed[0], &confirmed[1]);
        // The schema refuses an overdrawn line itself; a copy restored by hand may lack that.
        let unguarded = if db.url.starts_with("sqlite") {
            "PRAGMA ignore_check_constraints = ON;"
        } else {
            "ALTER TABLE credit_lines DROP CONSTRAINT credit_lines_check;"
        };
        db.execute(&format!("{unguarded} UPDATE credit_lines SET limit_minor = 100 WHERE id = '{line_1}'")).await;
        db.execute(&format!("UPDATE credit_lines SET held_minor = 1 WHERE id = '{line_2}'")).await;
        db.execute(&format!("DELETE FROM jobs WHERE id = 'disburse:{drawdown_1}'")).await;
        db.execute(&format!("UPDATE credit_lines SET drawn_minor = 7 WHERE id = '{line_2}'")).await;
        db.execute("UPDATE ledger_postings SET debit_minor = debit_minor + 1 \
            WHERE entry_id = (SELECT MIN(entry_id) FROM ledger_postings) AND debit_minor > 0").await;
        db.execute(&format!("UPDATE credit_decisions SET record = replace(record, '\"outcome\":\"pass\"', '\"outcome\":\"hold\"') \
            WHERE subject_id = '{drawdown_2}'")).await;
        let broken = verify();
        let said = String::from_utf8(broken.stdout).unwrap();
        assert_eq!(broken.status.code(), Some(1), "{said}");
        let named = |rule: &str| said.lines().find(|l| l.contains(rule)).unwrap_or_default().to_owned();
        assert!(named("journal_entries_balanced").starts_with("BROKEN"), "{said}");
        assert!(named("lines_within_limit").starts_with("BROKEN") && named("lines_within_limit").ends_with(line_1.as_str()), "{said}");
        assert!(named("holds_explained").ends_with(line_2.as_str()), "{said}");
        assert!(named("drawn_equals_ledger").ends_with(line_2.as_str()), "{said}");
        assert!(named("drawdowns_in_flight_have_a_job").ends_with(drawdown_1.as_str()), "{said}");
        assert!(named("decisions_match_the_audit_chain").starts_with("BROKEN") && named("decisions_match_the_audit_chain").contains(" b-2/"), "{said}");
        assert!(named("audit_chain").starts_with("ok"), "{said}");
        assert!(said.contains("THE DATABASE IS NOT SOUND"), "{said}");
        // The harness checks the ledger after every test: the entry is put back.
        db.execute("UPDATE ledger_postings SET debit_minor = debit_minor - 1 \
            WHERE entry_id = (SELECT MIN(entry_id) FROM ledger_postings) AND debit_minor > 0").await;
    }
}

store_test! {
    async fn audit_verify_and_export_find_a_tampered_record(db: &TestDb) {
        use std::sync::Arc;

        use lendcore_engine::{Engine, ManualClock, credit_lines};
        let now = chrono::Utc::now();
        let engine = Engine::new(db.store.clone(), Arc::new(ManualClock::new(now)));
        for borrower in ["b-1", "b-2", "b-3"] {
            credit_lines::grant(&engine, lendcore_domain::credit_line::GrantInput {
                borrower_id: borrower.into(), currency: "CNY".into(), limit_minor: 100_000,
                rate_tier: None,
                valid_from: None, valid_until: now + chrono::Duration::days(30),
                actor: "ops:test".into(), note: None,
            }, None).await.unwrap();
        }
        lendcore_engine::audit::seal(db.store.as_ref()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit.jsonl");
        let export = Command::new(BIN)
            .args(["audit", "export", "--db", &db.url, "--out"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
        let said = String::from_utf8(export.stdout).unwrap();
        assert!(said.contains("audit chain intact: 3 record(s), head 3:"), "{said}");
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 3);

        db.execute("UPDATE audit_log SET detail = '{\"limit_after_minor\":999999999}' WHERE seq = 2").await;
        let verify = Command::new(BIN).args(["audit", "verify", "--db", &db.url]).output().unwrap();
        assert_eq!(verify.status.code(), Some(1), "a broken chain fails the command");
        let said = String::from_utf8(verify.stdout).unwrap();
        assert!(said.contains("AUDIT CHAIN BROKEN after 1 good record(s): record 2"), "{said}");
    }
}

#[test]
fn the_load_tests_run_on_a_scratch_database_and_report_what_they_measured() {
    let dir = tempfile::tempdir().unwrap();
    let cob = Command::new(BIN)
        .args(["loadtest", "cob", "--loans", "30"])
        .current_dir(dir.path())
        .env_remove("LENDCORE_CONFIG")
        .env("LENDCORE_COB__BATCH", "7")
        .output()
        .unwrap();
    assert!(
        cob.status.success(),
        "{}",
        String::from_utf8_lossy(&cob.stderr)
    );
    let said = String::from_utf8(cob.stdout).unwrap();
    assert!(said.contains("seeded 30 active loans"), "{said}");
    assert!(said.contains("(sqlite): 30 loans closed in"), "{said}");

    let drawdowns = Command::new(BIN)
        .args([
            "loadtest",
            "drawdowns",
            "--requests",
            "20",
            "--clients",
            "2",
            "--during-cob",
            "40",
        ])
        .current_dir(dir.path())
        .env_remove("LENDCORE_CONFIG")
        .env("LENDCORE_COB__BATCH", "7")
        .output()
        .unwrap();
    assert!(
        drawdowns.status.success(),
        "{}",
        String::from_utf8_lossy(&drawdowns.stderr)
    );
    let said = String::from_utf8(drawdowns.stdout).unwrap();
    assert!(said.contains("(sqlite, 2 clients): 20 in"), "{said}");
    assert!(said.contains("0 not confirmed"), "{said}");
    // Close of business ran over the seeded loans beside them, every loan closed, and the
    // confirmations were counted while it ran and outside it.
    assert!(
        said.contains("close of business over 40 loans ran from"),
        "{said}"
    );
    let counted = |label: &str| -> usize {
        let count = said
            .lines()
            .find_map(|l| l.strip_prefix(label)?.split(' ').next());
        count.and_then(|n| n.parse().ok()).unwrap_or(usize::MAX / 4)
    };
    assert_eq!(
        counted("due while it ran: ") + counted("due outside it: "),
        20,
        "{said}"
    );
    // Nothing left behind in the working directory; the scratch database is removed.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_command_that_only_reads_says_a_missing_database_does_not_exist_and_creates_none() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.sqlite3");
    let url = format!("sqlite://{}", missing.display());
    for action in ["verify", "export"] {
        let mut args = vec!["audit", action, "--db", &url];
        if action == "export" {
            args.extend(["--out", "out.jsonl"]);
        }
        let run = Command::new(BIN)
            .args(&args)
            .current_dir(dir.path())
            .env_remove("LENDCORE_CONFIG")
            .output()
            .unwrap();
        assert!(!run.status.success(), "{action}");
        let said = String::from_utf8_lossy(&run.stderr);
        assert!(said.contains("does not exist"), "{action}: {said}");
        assert!(
            !missing.exists(),
            "{action} created the database it was asked to read"
        );
    }
}

#[test]
fn every_db_and_bind_flag_says_what_it_takes() {
    // What each flag's help must say, so a flag left without help fails here.
    let wanted = [
        ("--db", "sqlite://PATH"),
        ("--bind", "The address to listen on"),
    ];
    for command in [
        &["serve"][..],
        &["migrate"],
        &["demo"],
        &["audit", "verify"],
        &["decide", "replay"],
        &["cob", "run"],
        &["config"],
    ] {
        let help = Command::new(BIN)
            .args(command)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&help.stdout);
        for (flag, says) in wanted {
            let takes_it = text
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{flag} ")));
            if takes_it {
                let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(
                    folded.contains(says),
                    "{command:?} {flag} does not say what it takes:\n{text}"
                );
            }
        }
    }
}

store_test! {
    async fn alerts_export_writes_the_rules_as_a_prometheus_rules_file(db: &TestDb) {
        use std::sync::Arc;

        let engine = lendcore_engine::Engine::new(db.store.clone(), Arc::new(lendcore_engine::ManualClock::new(chrono::Utc::now())));
        assert_eq!(lendcore_engine::alerts::install_defaults(&engine).await.unwrap(), 7);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lendcore.rules.yml");
        let export = Command::new(BIN).args(["alerts", "export", "--db", &db.url, "--out"]).arg(&file).output().unwrap();
        assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
        let written = std::fs::read_to_string(&file).unwrap();
        let parsed: serde_yaml::Value = serde_yaml::from_str(&written).unwrap();
        let names: Vec<&str> = parsed["groups"][0]["rules"].as_sequence().unwrap().iter().map(|r| r["alert"].as_str().unwrap()).collect();
        assert_eq!(names.len(), 7, "{written}");
        assert!(names.contains(&"lendcore_payout_failure_rate"), "{names:?}");
        // Prometheus' own checker, where it is installed (Debian: the prometheus package).
        match Command::new("promtool").args(["check", "rules"]).arg(&file).output() {
            Ok(checked) => assert!(checked.status.success(), "promtool: {}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr)),
            Err(_) => eprintln!("promtool is not installed: the rules file was checked by parsing it only"),
        }
        let stdout = Command::new(BIN).args(["alerts", "export", "--db", &db.url]).output().unwrap();
        assert_eq!(String::from_utf8(stdout.stdout).unwrap(), written, "the same file on standard output");
    }
}

#[test]
fn score_train_fits_german_credit_and_writes_a_scorecard_part() {
    let dir = tempfile::tempdir().unwrap();
    let card = dir.path().join("card.json");
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scorecard/tests/data/germancredit.csv"
    );
    let trained = Command::new(BIN)
        .args([
            "score",
            "train",
            "--csv",
            data,
            "--target",
            "creditability",
            "--bad",
            "bad",
            "--seed",
            "1",
        ])
        .args([
            "--id",
            "german-2026-12",
            "--feature",
            "age_in_years=age_years",
            "--out",
        ])
        .arg(&card)
        .arg("--report")
        .arg(dir.path().join("card.html"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&trained.stdout);
    assert!(
        trained.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    let held_out = said
        .lines()
        .find(|l| l.starts_with("held out"))
        .expect("the held-out figures");
    let auc: f64 = held_out
        .split("AUC ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(auc > 0.75, "{said}");
    assert!(
        said.contains("status_of_existing_checking_account")
            && said.contains("no: IV below the floor"),
        "{said}"
    );
    let page = std::fs::read_to_string(dir.path().join("card.html")).unwrap();
    assert!(
        page.contains("<svg")
            && page.contains("status_of_existing_checking_account")
            && !page.contains("<script")
    );
    let part: lendcore_domain::decision::ScorecardInput =
        serde_json::from_str(&std::fs::read_to_string(&card).unwrap()).unwrap();
    assert_eq!(
        (part.id.as_str(), part.base_points, part.pdo),
        ("german-2026-12", 600, 20)
    );
    assert!(
        part.characteristics
            .iter()
            .any(|c| c.feature == "age_years"),
        "renamed as the feature it is"
    );
    assert!(
        part.characteristics
            .iter()
            .all(|c| c.bins.last().unwrap().when.missing == Some(true)),
        "missing in a bin of its own"
    );
    // Applied to rows: the renamed feature must be a column of the file scored.
    let misnamed = Command::new(BIN)
        .args(["score", "apply", "--csv", data, "--card"])
        .arg(&card)
        .output()
        .unwrap();
    assert!(!misnamed.status.success());
    assert!(String::from_utf8_lossy(&misnamed.stderr).contains("has no column age"));
    let plain = dir.path().join("plain.json");
    let scored = dir.path().join("scored.csv");
    assert!(
        Command::new(BIN)
            .args([
                "score",
                "train",
                "--csv",
                data,
                "--target",
                "creditability",
                "--bad",
                "bad",
                "--out"
            ])
            .arg(&plain)
            .output()
            .unwrap()
            .status
            .success()
    );
    let applied = Command::new(BIN)
        .args(["score", "apply", "--csv", data, "--card"])
        .arg(&plain)
        .arg("--out")
        .arg(&scored)
        .output()
        .unwrap();
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let rows = std::fs::read_to_string(&scored).unwrap();
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 1001, "a header and a line per applicant");
    assert!(
        lines[0].starts_with("row,points,status_of_existing_checking_account_points"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.contains("(credit.score_too_low)")),
        "reasons named"
    );
    let unknown = Command::new(BIN)
        .args([
            "score",
            "train",
            "--csv",
            data,
            "--target",
            "creditability",
            "--bad",
            "bad",
        ])
        .args(["--feature", "age_in_years=shoe_size"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("shoe_size is not a lendcore feature")
    );
    let refused = Command::new(BIN)
        .args(["score", "train", "--csv", data, "--target", "nope"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no column named nope"));
}
