//! Who the audit names for what a use case does. The HTTP layer runs each request inside
//! [`on_behalf_of`] the authenticated caller (`api_key:…`, `ops:…`, `borrower:…`); anything
//! run outside a request — jobs, timers, the channel's answers — acts as
//! [`SYSTEM`](crate::audit::SYSTEM). Use cases whose callers name an actor explicitly (credit
//! line changes, contact changes, maintenance windows) take it as an argument instead.

use std::future::Future;

tokio::task_local! {
    static ACTOR: String;
}

/// Runs `work` with `actor` as the one acting.
pub async fn on_behalf_of<F: Future>(actor: String, work: F) -> F::Output {
    ACTOR.scope(actor, work).await
}

/// The one acting now: the request's caller, or the system outside a request.
pub fn current() -> String {
    ACTOR
        .try_with(Clone::clone)
        .unwrap_or_else(|_| crate::audit::SYSTEM.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_caller_inside_a_request_and_the_system_outside() {
        assert_eq!(current(), "system:lendcore");
        let inside = on_behalf_of("ops:alice".to_owned(), async { current() }).await;
        assert_eq!(inside, "ops:alice");
        assert_eq!(current(), "system:lendcore");
    }
}
