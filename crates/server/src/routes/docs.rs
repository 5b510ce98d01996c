//! The OpenAPI document, the API reference page made from it, and the landing page.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};

use crate::AppState;

pub async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.docs.openapi_json.clone(),
    )
}

pub async fn reference(State(state): State<AppState>) -> Html<String> {
    Html(state.docs.reference_html.clone())
}

pub async fn index(State(state): State<AppState>) -> Html<String> {
    Html(state.docs.index_html.clone())
}

/// The page a sent link opens when the lender's own app does not take it.
pub async fn link(State(state): State<AppState>) -> Html<String> {
    Html(state.docs.link_html.clone())
}

/// This resource's routes, each path written here once.
pub(crate) fn routes() -> axum::Router<crate::AppState> {
    use axum::routing;
    axum::Router::new()
        .route("/", routing::get(index))
        .route("/openapi.json", routing::get(openapi_json))
        .route("/docs/api", routing::get(reference))
        .route("/links/open", routing::get(link))
}
