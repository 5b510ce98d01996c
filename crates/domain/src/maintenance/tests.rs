use chrono::{Duration, TimeZone, Utc};

use super::*;

fn now() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap()
}

fn input(starts_in_h: i64, hours: i64) -> WindowInput {
    WindowInput {
        starts_at: now() + Duration::hours(starts_in_h),
        ends_at: now() + Duration::hours(starts_in_h + hours),
        message: "Bank year-end close".into(),
        actor: "ops:alice".into(),
    }
}

fn window(id: &str, starts_in_h: i64, hours: i64) -> MaintenanceWindow {
    MaintenanceWindow::schedule(id.into(), input(starts_in_h, hours), now()).unwrap()
}

#[test]
fn a_window_must_end_after_it_starts_in_the_future_and_not_last_too_long() {
    let backwards = MaintenanceWindow::schedule("w".into(), input(2, -1), now()).unwrap_err();
    assert_eq!(backwards.code(), "validation.window_invalid");
    let past = MaintenanceWindow::schedule("w".into(), input(-3, 2), now()).unwrap_err();
    assert_eq!(past.code(), "validation.window_invalid");
    let long = MaintenanceWindow::schedule("w".into(), input(1, 73), now()).unwrap_err();
    assert_eq!(long.code(), "validation.window_too_long");
    let mut silent = input(1, 2);
    silent.message = "  ".into();
    assert_eq!(
        MaintenanceWindow::schedule("w".into(), silent, now())
            .unwrap_err()
            .code(),
        "validation.invalid_message"
    );
    let started = MaintenanceWindow::schedule("w".into(), input(-1, 3), now()).unwrap();
    assert_eq!(
        started.starts_at,
        now(),
        "a window already begun starts now"
    );
}

#[test]
fn a_window_is_scheduled_then_in_progress_then_over_and_cancels_only_before_it_ends() {
    let mut w = window("w", 1, 2);
    assert_eq!(w.status(now()), WindowStatus::Scheduled);
    assert_eq!(
        w.status(now() + Duration::hours(1)),
        WindowStatus::InProgress
    );
    assert_eq!(w.status(now() + Duration::hours(3)), WindowStatus::Over);
    assert!(w.clone().cancel(now() + Duration::hours(3)).is_err());
    w.cancel(now() + Duration::hours(2)).unwrap();
    assert_eq!(
        w.status(now() + Duration::hours(2)),
        WindowStatus::Cancelled
    );
    assert_eq!(
        w.cancel(now() + Duration::hours(2)).unwrap_err().code(),
        "conflict.maintenance_window_state"
    );
}

#[test]
fn held_work_waits_through_windows_that_overlap_or_touch() {
    let first = window("a", 0, 2);
    let touching = window("b", 2, 1);
    let later = window("c", 5, 1);
    let windows = [first.clone(), touching.clone(), later];
    assert_eq!(held_until(&windows, now()), Some(touching.ends_at));
    assert_eq!(held_until(&windows, now() + Duration::hours(4)), None);
    let mut cancelled = first;
    cancelled.cancel(now()).unwrap();
    assert_eq!(held_until(&[cancelled, touching], now()), None);
}
