//! Credentials in the store, on SQLite and on PostgreSQL: the guards that keep a code, a time
//! step or a revocation from being used twice hold in the database itself.

use chrono::{DateTime, Duration, TimeZone, Utc};
use lendcore_store::{
    ChallengeKey, ChallengeStatus, IdempotencyClaim, PruneCutoffs, Pruned, SessionStage,
    SessionSubject, StoreError, StoredApiKey, StoredChallenge, StoredLink, StoredOperator,
    StoredSecondFactor, StoredSession,
};
use lendcore_testkit::store_test;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
}

fn session(id: &str, subject: SessionSubject, subject_id: &str) -> StoredSession {
    StoredSession {
        id: id.into(),
        token_hash: format!("hash-{id}"),
        subject,
        subject_id: subject_id.into(),
        borrower_id: None,
        stage: SessionStage::SecondFactor,
        scope: Some(format!("view_loan:{id}")),
        created_at: t0(),
        expires_at: t0() + Duration::minutes(10),
        revoked_at: None,
    }
}

store_test! {
    async fn api_keys_are_found_by_hash_and_revoked_once(db: &TestDb) {
        let key = StoredApiKey {
            id: "k1".into(), name: "backend".into(), token_hash: "h1".into(),
            scopes: "products:read".into(), created_by: "cli:lendcore".into(),
            created_at: t0(), revoked_at: None,
        };
        let mut uow = db.store.begin().await.unwrap();
        uow.insert_api_key(&key).await.unwrap();
        uow.commit().await.unwrap();
        let mut uow = db.store.begin().await.unwrap();
        let twin = StoredApiKey { id: "k2".into(), ..key.clone() };
        assert!(matches!(uow.insert_api_key(&twin).await, Err(StoreError::Duplicate(_))), "one hash, one key");
        drop(uow);
        let mut uow = db.store.begin().await.unwrap();
        assert_eq!(uow.find_api_key_by_hash("h1").await.unwrap(), Some(key.clone()));
        assert!(uow.revoke_api_key("k1", t0()).await.unwrap());
        assert!(!uow.revoke_api_key("k1", t0()).await.unwrap(), "revoked once");
        assert_eq!(uow.find_api_key("k1").await.unwrap().unwrap().revoked_at, Some(t0()));
        assert_eq!(uow.list_api_keys().await.unwrap().len(), 1);
        uow.commit().await.unwrap();
    }

    async fn operators_have_unique_usernames_and_disabling_ends_their_sessions(db: &TestDb) {
        let alice = StoredOperator {
            id: "o1".into(), username: "alice".into(), role: "ops".into(),
            password_hash: "$argon2id$…".into(), created_by: "cli".into(), created_at: t0(), disabled_at: None,
        };
        let mut uow = db.store.begin().await.unwrap();
        uow.insert_operator(&alice).await.unwrap();
        uow.commit().await.unwrap();
        let mut uow = db.store.begin().await.unwrap();
        let twin = StoredOperator { id: "o2".into(), ..alice.clone() };
        assert!(matches!(uow.insert_operator(&twin).await, Err(StoreError::Duplicate(_))));
        drop(uow);
        let mut uow = db.store.begin().await.unwrap();
        let bad_role = StoredOperator { id: "o3".into(), username: "bob".into(), role: "god".into(), ..alice.clone() };
        assert!(uow.insert_operator(&bad_role).await.is_err(), "the database knows the roles too");
        drop(uow);
        let mut uow = db.store.begin().await.unwrap();
        uow.insert_session(&session("s1", SessionSubject::Operator, "o1")).await.unwrap();
        uow.insert_session(&session("s2", SessionSubject::Operator, "o1")).await.unwrap();
        uow.insert_session(&session("s3", SessionSubject::Borrower, "o1")).await.unwrap();
        assert_eq!(uow.find_operator_by_username("alice").await.unwrap(), Some(alice));
        assert!(uow.disable_operator("o1", t0()).await.unwrap());
        assert_eq!(uow.revoke_sessions_of(SessionSubject::Operator, "o1", t0()).await.unwrap(), 2);
        assert!(uow.find_session_by_hash("hash-s3").await.unwrap().unwrap().revoked_at.is_none(), "only that subject's");
        assert!(!uow.activate_session("s1", t0() + Duration::days(1)).await.unwrap(), "a revoked session stays revoked");
        assert!(uow.activate_session("s3", t0() + Duration::days(1)).await.unwrap());
        let s3 = uow.find_session_by_hash("hash-s3").await.unwrap().unwrap();
        assert_eq!((s3.stage, s3.expires_at), (SessionStage::Active, t0() + Duration::days(1)));
        assert_eq!(s3.scope.as_deref(), Some("view_loan:s3"), "a link's scope stays with its session");
        assert!(!uow.activate_session("s3", t0()).await.unwrap(), "activated once");
        uow.commit().await.unwrap();
    }

    async fn a_time_step_is_used_once_and_only_forward(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        uow.put_second_factor(&StoredSecondFactor {
            owner: "borrower:b1".into(), secret: "v1:sealed".into(), activated_at: None,
            last_step: 0, created_at: t0(),
        }).await.unwrap();
        assert!(uow.use_second_factor_step("borrower:b1", 100, t0()).await.unwrap());
        assert!(!uow.use_second_factor_step("borrower:b1", 100, t0()).await.unwrap(), "the same step twice");
        assert!(!uow.use_second_factor_step("borrower:b1", 99, t0()).await.unwrap(), "an older step");
        assert!(!uow.use_second_factor_step("borrower:nobody", 101, t0()).await.unwrap());
        let factor = uow.find_second_factor("borrower:b1").await.unwrap().unwrap();
        assert_eq!((factor.last_step, factor.activated_at), (100, Some(t0())));
        uow.commit().await.unwrap();
    }

    async fn a_challenge_counts_each_attempt_at_once_and_closes_for_good(db: &TestDb) {
        let challenge = StoredChallenge {
            id: "c1".into(), mobile_index: "m1".into(), code_hash: "h".into(), client: "10.0.0.1".into(),
            attempts: 0, status: ChallengeStatus::Open, created_at: t0(), expires_at: t0() + Duration::minutes(5),
        };
        let mut uow = db.store.begin().await.unwrap();
        uow.insert_challenge(&challenge).await.unwrap();
        assert_eq!(uow.count_challenge_attempt("c1", 2, t0()).await.unwrap(), Some(("h".to_owned(), 1)));
        assert_eq!(uow.count_challenge_attempt("c1", 2, t0()).await.unwrap(), Some(("h".to_owned(), 2)));
        assert_eq!(uow.count_challenge_attempt("c1", 2, t0()).await.unwrap(), None, "out of attempts");
        assert_eq!(uow.count_challenge_attempt("c1", 5, t0() + Duration::minutes(5)).await.unwrap(), None, "expired");
        assert!(uow.close_challenge("c1", ChallengeStatus::Used).await.unwrap());
        assert!(!uow.close_challenge("c1", ChallengeStatus::Used).await.unwrap(), "a used challenge is closed");
        assert_eq!(uow.count_challenge_attempt("c1", 5, t0()).await.unwrap(), None, "and takes no attempt");
        assert_eq!(uow.find_challenge("c1").await.unwrap().unwrap().status, ChallengeStatus::Used);
        assert_eq!(uow.challenge_times(ChallengeKey::Mobile, "m1", t0() - Duration::minutes(1)).await.unwrap(), vec![t0()]);
        assert_eq!(uow.challenge_times(ChallengeKey::Client, "10.0.0.1", t0()).await.unwrap(), Vec::<DateTime<Utc>>::new(), "only after `since`");
        uow.record_auth_failure("otp_wrong_code", "10.0.0.1", t0()).await.unwrap();
        uow.record_auth_failure("otp_wrong_code", "10.0.0.2", t0()).await.unwrap();
        uow.clear_auth_failures("otp_wrong_code", "10.0.0.2").await.unwrap();
        assert!(uow.auth_failure_times("otp_wrong_code", "10.0.0.2", t0() - Duration::hours(1)).await.unwrap().is_empty());
        let second = StoredChallenge { id: "c2".into(), ..challenge.clone() };
        uow.insert_challenge(&second).await.unwrap();
        assert_eq!(uow.close_challenges_of("m1").await.unwrap(), 1, "only the open one");
        assert_eq!(uow.challenges_since(t0() - Duration::minutes(1)).await.unwrap(), 2);
        uow.delete_challenge("c2").await.unwrap();
        uow.serialise_on("otp:m1").await.unwrap();
        let times = uow.auth_failure_times("otp_wrong_code", "10.0.0.1", t0() - Duration::hours(1)).await.unwrap();
        assert_eq!(times, vec![t0()]);
        uow.commit().await.unwrap();
    }

    async fn leftovers_are_pruned_in_batches_and_nothing_still_needed_is(db: &TestDb) {
        let mut uow = db.store.begin().await.unwrap();
        for (id, days) in [("old-1", 40), ("old-2", 35), ("old-3", 31), ("recent", 10)] {
            let mut s = session(id, SessionSubject::Borrower, "m1");
            s.expires_at = t0() - Duration::days(days);
            uow.insert_session(&s).await.unwrap();
        }
        uow.insert_session(&session("live", SessionSubject::Borrower, "m1")).await.unwrap();
        for (id, days) in [("c-old", 3), ("c-new", 1)] {
            uow.insert_challenge(&StoredChallenge {
                id: id.into(), mobile_index: "m1".into(), code_hash: "h".into(), client: "10.0.0.1".into(),
                attempts: 0, status: ChallengeStatus::Used, created_at: t0() - Duration::days(days),
                expires_at: t0() - Duration::days(days) + Duration::minutes(5),
            }).await.unwrap();
            uow.record_auth_failure("otp_wrong_code", id, t0() - Duration::days(days)).await.unwrap();
        }
        for (nonce, days) in [("l-old", 100), ("l-new", 30)] {
            uow.insert_link(&StoredLink {
                nonce: nonce.into(), purpose: "resume_application".into(), subject: "a-1".into(),
                owner: "m1".into(), borrower_id: None, single_use: true,
                expires_at: t0() - Duration::days(days), used_at: None, renewed_by: None,
                created_at: t0() - Duration::days(days + 3),
            }).await.unwrap();
        }
        for (key, days) in [("k-old", 8), ("k-new", 6)] {
            uow.claim_idempotency_key("api_key:k1", key, "fp", t0() - Duration::days(days)).await.unwrap();
        }
        let cutoffs = PruneCutoffs {
            sessions: t0() - Duration::days(30),
            attempts: t0() - Duration::days(2),
            links: t0() - Duration::days(90),
            idempotency_keys: t0() - Duration::days(7),
        };
        let first = uow.prune_access(&cutoffs, 2).await.unwrap();
        assert_eq!(first, Pruned { sessions: 2, codes: 1, failures: 1, links: 1, idempotency_keys: 1 }, "a batch at most");
        let second = uow.prune_access(&cutoffs, 2).await.unwrap();
        assert_eq!(second, Pruned { sessions: 1, ..Pruned::default() });
        let kept = uow.claim_idempotency_key("api_key:k1", "k-new", "fp", t0()).await.unwrap();
        assert!(!matches!(kept, IdempotencyClaim::Claimed), "a key within the week still answers: {kept:?}");
        let gone = uow.claim_idempotency_key("api_key:k1", "k-old", "fp", t0()).await.unwrap();
        assert!(matches!(gone, IdempotencyClaim::Claimed), "an older one is a new request: {gone:?}");
        assert_eq!(uow.prune_access(&cutoffs, 2).await.unwrap(), Pruned::default());
        for kept in ["hash-recent", "hash-live"] {
            assert!(uow.find_session_by_hash(kept).await.unwrap().is_some(), "{kept}");
        }
        assert!(uow.find_challenge("c-new").await.unwrap().is_some());
        assert_eq!(uow.auth_failure_times("otp_wrong_code", "c-new", t0() - Duration::days(3)).await.unwrap().len(), 1);
        assert!(uow.find_link("l-new").await.unwrap().is_some());
        assert!(uow.find_link("l-old").await.unwrap().is_none());
        uow.commit().await.unwrap();
    }
}
