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
    let language = asked(request.headers()).unwrap_or(Language::En);
    LANGUAGE.scope(language, next.run(request)).await
}

/// The catalogue's language a request's `Accept-Language` asks for, if it names one.
pub fn asked(headers: &axum::http::HeaderMap) -> Option<Language> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Language::named_in)
}

/// The current request's language; English outside a request.
pub fn current() -> Language {
    LANGUAGE.try_with(|l| *l).unwrap_or_default()
}

/// A JSON answer whose texts are in `language`: says so (`Content-Language`), and that the
/// answer depends on `Accept-Language` (`Vary`), so no cache hands one language to another.
pub fn answer_in<T: serde::Serialize>(value: T, language: Language) -> Response {
    use axum::response::IntoResponse;
    let mut response = axum::Json(value).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_LANGUAGE,
        header::HeaderValue::from_static(language.tag()),
    );
    headers.insert(
        header::VARY,
        header::HeaderValue::from_static("accept-language"),
    );
    response
}
