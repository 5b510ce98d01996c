//! The language of a request, from its `Accept-Language`, for what the reason catalogue says to
//! borrowers. Set per request by [`negotiate`], read anywhere the request is answered by
//! [`current`].

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use lendcore_domain::reasons::Language;

tokio::task_local! {
    static LANGUAGE: Language;
}

/// Middleware: answers the request in the language its `Accept-Language` prefers.
pub async fn negotiate(request: Request, next: Next) -> Response {
    let language = request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map_or(Language::En, Language::negotiate);
    LANGUAGE.scope(language, next.run(request)).await
}

/// The current request's language; English outside a request.
pub fn current() -> Language {
    LANGUAGE.try_with(|l| *l).unwrap_or_default()
}
