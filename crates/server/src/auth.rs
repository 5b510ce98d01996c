//! Authentication and authorisation, for every route in one place: [`rule`] says what each
//! route needs, [`authorise`] checks it before any handler runs, so a handler cannot forget.
//! Operators' requests are audited here, whatever they did, refused ones included.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, Method, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lendcore_domain::access::Permission;
use lendcore_engine::access::{self, Principal};
use lendcore_engine::links::{LinkScope, Purpose};
use lendcore_engine::{EngineError, acting};

use crate::AppState;
use crate::error::ApiError;

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Anyone: health, documents, signing in, channels' signed callbacks.
    Public,
    /// Any signed-in caller.
    SignedIn,
    /// A signed-in borrower, acting on their own things.
    Borrower,
    /// A caller holding the permission: an API key with the scope, an operator whose role
    /// grants it.
    Needs(Permission),
}

/// The rule for a route, by method and path template; `None` for a route this table does not
/// know, which is refused (and a test proves every documented route is known).
pub(crate) fn rule(method: &Method, path: &str) -> Option<Rule> {
    use Permission as P;
    use Rule::{Borrower, Needs, Public, SignedIn};
    // HEAD is answered by the GET handler: it is a read too.
    let read = *method == Method::GET || *method == Method::HEAD;
    let rule = match path {
        "/" | "/healthz" | "/readyz" | "/metrics" | "/openapi.json" | "/docs/api" => Public,
        // A page: the link it is given is the credential, and only its button spends it.
        "/links/open" => Public,
        "/v1/auth/codes"
        | "/v1/auth/codes/verify"
        | "/v1/auth/operators/sign-in"
        | "/v1/auth/second-factor" => Public,
        "/v1/channels/{id}/callbacks" => Public,
        // What a borrower app shows before anyone signs in: it names no one.
        "/v1/status" | "/status" => Public,
        // A link is its own credential: signed, expiring, recorded.
        "/v1/links/open" => Public,
        "/v1/links/renew"
        | "/v1/applications/{id}/resume-link"
        | "/v1/applications/{id}/contract-link" => Borrower,
        "/v1/auth/session" | "/v1/auth/sign-out" => SignedIn,
        // An operator's own password (the handler refuses anyone else).
        "/v1/auth/password" => SignedIn,
        "/v1/auth/second-factor/enrol" | "/v1/auth/second-factor/confirm" => Borrower,
        // Reads: a borrower their own, staff with applications:read (checked by the handler,
        // which knows which the caller is).
        "/v1/applications"
        | "/v1/applications/{id}"
        | "/v1/applications/{id}/status"
        | "/v1/applications/{id}/documents"
        | "/v1/applications/{id}/documents/{document_id}"
            if read =>
        {
            SignedIn
        }
        "/v1/applications"
        | "/v1/applications/{id}"
        | "/v1/applications/{id}/submit"
        | "/v1/applications/{id}/verification/code"
        | "/v1/applications/{id}/verification"
        | "/v1/applications/{id}/accept"
        | "/v1/applications/{id}/withdraw"
        | "/v1/applications/{id}/documents" => Borrower,
        // The record holds exact causes a borrower is not shown: staff only.
        "/v1/applications/{id}/decision" if read => Needs(P::ApplicationsRead),
        "/v1/applications/{id}/decision" => Needs(P::ApplicationsDecide),
        "/v1/features"
        | "/v1/policies"
        | "/v1/policies/{code}/versions/{version}"
        | "/v1/policies/{code}/comparison"
        | "/v1/challenges"
        | "/v1/challenges/{id}"
            if read =>
        {
            Needs(P::PoliciesRead)
        }
        // Validation, import and backtests keep nothing: reads, whatever their method.
        "/v1/policies/validate" | "/v1/policies/import" | "/v1/policies/simulate" => {
            Needs(P::PoliciesRead)
        }
        "/v1/policies"
        | "/v1/policies/{code}/versions/{version}/activate"
        | "/v1/challenges"
        | "/v1/challenges/{id}/end" => Needs(P::PoliciesWrite),
        "/v1/borrowers/{id}/decisions"
        | "/v1/borrowers/{id}/decisions/{decision_id}"
        | "/v1/borrowers/{id}/decisions/{decision_id}/replay" => Needs(P::BorrowersRead),
        "/v1/products" | "/v1/products/{code}" if read => Needs(P::ProductsRead),
        "/v1/products"
        | "/v1/products/{code}/versions"
        | "/v1/products/{code}/versions/{version}"
        | "/v1/products/{code}/retire" => Needs(P::ProductsWrite),
        // A quote computes on a product's terms and writes nothing.
        "/v1/quotes" => Needs(P::ProductsRead),
        "/v1/credit-lines" | "/v1/credit-lines/{id}" | "/v1/credit-lines/{id}/events" if read => {
            Needs(P::CreditLinesRead)
        }
        "/v1/credit-lines"
        | "/v1/credit-lines/{id}/limit"
        | "/v1/credit-lines/{id}/freeze"
        | "/v1/credit-lines/{id}/unfreeze"
        | "/v1/credit-lines/{id}/close" => Needs(P::CreditLinesWrite),
        "/v1/drawdowns/{id}" => Needs(P::DrawdownsRead),
        "/v1/drawdowns/quotes" | "/v1/drawdowns/confirm" => Needs(P::DrawdownsWrite),
        // Settling a payout by hand is operations' work; a line's freeze is risk's.
        "/v1/drawdowns/{id}/review/ask"
        | "/v1/drawdowns/{id}/review/paid"
        | "/v1/drawdowns/{id}/review/paid/approve"
        | "/v1/drawdowns/{id}/review/failed" => Needs(P::OperationsWrite),
        // A drawdown a risk rule held is risk's to release or decline.
        "/v1/drawdowns/{id}/review/line"
        | "/v1/drawdowns/{id}/review/release"
        | "/v1/drawdowns/{id}/review/decline" => Needs(P::CreditLinesWrite),
        // A borrower's own cases, or support on their behalf: the handler checks which, and
        // the permission staff need (borrowers:read, borrowers:write).
        "/v1/borrowers/{id}/cases"
        | "/v1/borrowers/{id}/cases/{case_id}"
        | "/v1/borrowers/{id}/cases/{case_id}/messages" => SignedIn,
        "/v1/borrowers/{id}/cases/{case_id}/resolve" => Needs(P::BorrowersWrite),
        "/v1/cases" => Needs(P::BorrowersRead),
        // A borrower reads their own loan (the handler checks whose it is); staff need loans:read.
        "/v1/loans/{id}/timeline" => SignedIn,
        // Support texts a loan's borrower a link to it; the link itself goes only to them.
        "/v1/loans/{id}/view-link" => Needs(P::BorrowersWrite),
        "/v1/loans/{id}/repayments" => Needs(P::LoansWrite),
        // A search is a read; it is a POST so identifiers never sit in a URL.
        "/v1/borrowers/{id}" | "/v1/borrowers/{id}/changes" | "/v1/borrowers/search" => {
            Needs(P::BorrowersRead)
        }
        "/v1/borrowers"
        | "/v1/borrowers/{id}/contact"
        | "/v1/borrowers/{id}/second-factor/remove" => Needs(P::BorrowersWrite),
        "/v1/maintenance-windows"
        | "/v1/maintenance-windows/{id}"
        | "/v1/alert-rules"
        | "/v1/alerts"
        | "/v1/incidents"
        | "/v1/incidents/{id}"
        | "/v1/jobs"
        | "/v1/deliveries"
        | "/v1/deliveries/{id}"
            if read =>
        {
            Needs(P::OperationsRead)
        }
        "/v1/maintenance-windows"
        | "/v1/maintenance-windows/{id}/cancel"
        | "/v1/jobs/{id}/redrive"
        | "/v1/alert-rules/{name}"
        | "/v1/incidents"
        | "/v1/incidents/{id}/change"
        | "/v1/incidents/{id}/end"
        | "/v1/deliveries/{id}/redrive" => Needs(P::OperationsWrite),
        "/v1/api-keys"
        | "/v1/api-keys/{id}/revoke"
        | "/v1/operators"
        | "/v1/operators/{id}/disable"
        | "/v1/operators/{id}/reset" => Needs(P::AccessAdmin),
        _ => return None,
    };
    Some(rule)
}

/// The authenticated caller, for handlers.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    pub fn actor(&self) -> String {
        self.0.actor()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::Engine(EngineError::Internal(
                "a handler asked for its caller on a route without one".to_owned(),
            ))
        })
    }
}

/// Where a request comes from: the peer's address, or, behind a proxy lendcore is told to
/// trust, the address that proxy reports. Per-client limits count by it.
#[derive(Debug, Clone)]
pub struct Client(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(parts
            .extensions
            .get::<Client>()
            .cloned()
            .unwrap_or_else(|| Client("unknown".to_owned())))
    }
}

fn client_of(request: &Request, trusted_header: Option<&HeaderName>) -> Client {
    // The proxy appends the address it saw: the last entry of the last such header line is
    // the one it vouches for; anything before it the client may have written.
    let forwarded = trusted_header
        .and_then(|name| request.headers().get_all(name).iter().next_back())
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    Client(match forwarded.or(peer) {
        Some(ip) => client_key(ip),
        None => "unknown".to_owned(),
    })
}

/// How limits count a client: an IPv4 address, or an IPv6 /64 (one host usually holds a
/// whole /64, and would otherwise be a million clients).
fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Whether a session opened from a link may call this route (`template`, as matched, and
/// `path`, as sent): only what the link opens, on the link's subject — and signing out.
pub(crate) fn link_reaches(scope: &LinkScope, method: &Method, template: &str, path: &str) -> bool {
    let read = *method == Method::GET || *method == Method::HEAD;
    if template == "/v1/auth/session" || template == "/v1/auth/sign-out" {
        return true;
    }
    let id = template
        .split('/')
        .zip(path.split('/'))
        .find(|(t, _)| *t == "{id}")
        .map(|(_, p)| p);
    if id != Some(scope.subject.as_str()) || template.split('/').count() != path.split('/').count()
    {
        return false;
    }
    match scope.purpose {
        // Everything the applicant does to finish the application; an offer is accepted
        // through its own contract link (or signed in with a code), and links beget no links.
        Purpose::ResumeApplication => matches!(
            template,
            "/v1/applications/{id}"
                | "/v1/applications/{id}/status"
                | "/v1/applications/{id}/submit"
                | "/v1/applications/{id}/verification/code"
                | "/v1/applications/{id}/verification"
                | "/v1/applications/{id}/withdraw"
                | "/v1/applications/{id}/documents"
                | "/v1/applications/{id}/documents/{document_id}"
        ),
        Purpose::SignContract => {
            (read
                && matches!(
                    template,
                    "/v1/applications/{id}" | "/v1/applications/{id}/status"
                ))
                || (*method == Method::POST && template == "/v1/applications/{id}/accept")
        }
        Purpose::ViewLoan => read && template == "/v1/loans/{id}/timeline",
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 128)
}

/// Middleware on matched routes: authenticates, checks the route's rule, runs the handler on
/// behalf of the caller, and audits what operators did.
pub(crate) async fn authorise(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = client_of(&request, state.client_ip_header.as_ref());
    request.extensions_mut().insert(client.clone());
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = request.method().clone();
    let Some(rule) = rule(&method, &path) else {
        tracing::warn!(%method, %path, "a route has no access rule; refused");
        return ApiError::Engine(EngineError::Forbidden {
            code: "auth.forbidden",
            message: "this route is not open to anyone yet".to_owned(),
        })
        .into_response();
    };
    if rule == Rule::Public {
        return next.run(request).await;
    }
    let principal = match bearer(request.headers()) {
        None => Err(EngineError::Unauthenticated {
            code: "auth.unauthenticated",
            message: "send an API key or session token as Authorization: Bearer …".to_owned(),
        }),
        Some(token) => access::authenticate(&state.engine, token).await,
    };
    let principal = match principal {
        Ok(p) => p,
        Err(err) => return ApiError::Engine(err).into_response(),
    };
    let link_scope = match &principal {
        Principal::Borrower {
            link: Some(scope), ..
        } => Some(scope),
        Principal::Borrower { link: None, .. }
        | Principal::ApiKey { .. }
        | Principal::Operator { .. } => None,
    };
    if let Some(scope) = link_scope
        && !link_reaches(scope, &method, &path, request.uri().path())
    {
        return ApiError::Engine(EngineError::Forbidden {
            code: "auth.link_scope",
            message: "this session was opened from a link and reaches only what the link \
                      opens; sign in with a code for the rest"
                .to_owned(),
        })
        .into_response();
    }
    let allowed = match rule {
        Rule::Public | Rule::SignedIn => Ok(()),
        Rule::Borrower => match principal {
            Principal::Borrower { .. } => Ok(()),
            Principal::ApiKey { .. } | Principal::Operator { .. } => Err(EngineError::Forbidden {
                code: "auth.forbidden",
                message: "only a signed-in borrower may do this".to_owned(),
            }),
        },
        Rule::Needs(permission) => access::require(&principal, permission),
    };
    let actor = principal.actor();
    // Recorded before the handler runs, so a timeout, a panic or a dropped connection cannot
    // lose it; what the request changed is recorded by the change itself.
    if matches!(principal, Principal::Operator { .. }) {
        let refused = allowed.as_ref().err().map(|_| 403);
        let uri = request.uri().path().to_owned();
        audit_operator_request(&state, &actor, &method, &uri, &client, refused).await;
    }
    match allowed {
        Ok(()) => {
            request.extensions_mut().insert(Caller(principal));
            acting::on_behalf_of(actor, next.run(request)).await
        }
        Err(err) => ApiError::Engine(err).into_response(),
    }
}

/// Every operator request leaves an audit entry, reads and refusals included: who looked at
/// what is part of the record. `refused` is the status of a request refused here.
async fn audit_operator_request(
    state: &AppState,
    actor: &str,
    method: &Method,
    path: &str,
    client: &Client,
    refused: Option<u16>,
) {
    let engine = &state.engine;
    let result = async {
        let mut uow = engine.store.begin().await?;
        lendcore_engine::audit::record(
            uow.as_mut(),
            actor,
            "operator.request",
            ("route", path),
            serde_json::json!({
                "method": method.as_str(),
                "allowed": refused.is_none(),
                "refused_with": refused,
                "client": client.0,
            }),
            engine.clock.now(),
        )
        .await?;
        uow.commit().await?;
        Ok::<_, EngineError>(())
    }
    .await;
    if let Err(err) = result {
        metrics::counter!("lendcore_audit_failures_total", "what" => "operator_request")
            .increment(1);
        tracing::error!(%actor, %path, error = %err, "an operator request could not be audited");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_route_has_an_access_rule() {
        let doc = crate::openapi();
        let mut checked = 0;
        for (path, item) in &doc.paths.paths {
            let operations = [
                (Method::GET, item.get.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::PATCH, item.patch.is_some()),
                (Method::DELETE, item.delete.is_some()),
            ];
            for (method, present) in operations {
                if present {
                    assert!(rule(&method, path).is_some(), "{method} {path} has no rule");
                    checked += 1;
                }
            }
        }
        assert!(checked > 40, "checked {checked}");
    }

    #[test]
    fn money_and_people_need_permissions_and_only_entry_points_are_public() {
        assert_eq!(
            rule(&Method::POST, "/v1/drawdowns/confirm"),
            Some(Rule::Needs(Permission::DrawdownsWrite))
        );
        assert_eq!(
            rule(&Method::GET, "/v1/borrowers/{id}"),
            Some(Rule::Needs(Permission::BorrowersRead))
        );
        assert_eq!(
            rule(&Method::POST, "/v1/products"),
            Some(Rule::Needs(Permission::ProductsWrite))
        );
        assert_eq!(
            rule(&Method::GET, "/v1/products"),
            Some(Rule::Needs(Permission::ProductsRead))
        );
        assert_eq!(
            rule(&Method::POST, "/v1/operators"),
            Some(Rule::Needs(Permission::AccessAdmin))
        );
        assert_eq!(rule(&Method::POST, "/v1/auth/codes"), Some(Rule::Public));
        assert_eq!(rule(&Method::GET, "/v1/unknown"), None);
        assert_eq!(
            rule(&Method::HEAD, "/v1/products"),
            Some(Rule::Needs(Permission::ProductsRead))
        );
    }

    #[test]
    fn a_session_from_a_link_reaches_only_what_the_link_opens() {
        let scope = |purpose| LinkScope {
            purpose,
            subject: "a-1".to_owned(),
        };
        let resume = scope(Purpose::ResumeApplication);
        let reaches = |scope: &LinkScope, method: Method, template: &str, path: &str| {
            link_reaches(scope, &method, template, path)
        };
        assert!(reaches(
            &resume,
            Method::PATCH,
            "/v1/applications/{id}",
            "/v1/applications/a-1"
        ));
        assert!(reaches(
            &resume,
            Method::POST,
            "/v1/applications/{id}/submit",
            "/v1/applications/a-1/submit"
        ));
        assert!(
            !reaches(
                &resume,
                Method::GET,
                "/v1/applications/{id}",
                "/v1/applications/a-2"
            ),
            "another application"
        );
        assert!(
            !reaches(
                &resume,
                Method::POST,
                "/v1/applications",
                "/v1/applications"
            ),
            "a new application"
        );
        assert!(
            !reaches(
                &resume,
                Method::POST,
                "/v1/applications/{id}/resume-link",
                "/v1/applications/a-1/resume-link"
            ),
            "links beget no links"
        );
        assert!(!reaches(
            &resume,
            Method::POST,
            "/v1/applications/{id}/accept",
            "/v1/applications/a-1/accept"
        ));
        assert!(!reaches(
            &resume,
            Method::POST,
            "/v1/links/renew",
            "/v1/links/renew"
        ));
        assert!(!reaches(
            &resume,
            Method::POST,
            "/v1/auth/second-factor/enrol",
            "/v1/auth/second-factor/enrol"
        ));
        assert!(reaches(
            &resume,
            Method::POST,
            "/v1/auth/sign-out",
            "/v1/auth/sign-out"
        ));
        let contract = scope(Purpose::SignContract);
        assert!(reaches(
            &contract,
            Method::GET,
            "/v1/applications/{id}",
            "/v1/applications/a-1"
        ));
        assert!(reaches(
            &contract,
            Method::POST,
            "/v1/applications/{id}/accept",
            "/v1/applications/a-1/accept"
        ));
        assert!(
            !reaches(
                &contract,
                Method::PATCH,
                "/v1/applications/{id}",
                "/v1/applications/a-1"
            ),
            "reads the offer, changes nothing"
        );
        let loan = scope(Purpose::ViewLoan);
        assert!(reaches(
            &loan,
            Method::GET,
            "/v1/loans/{id}/timeline",
            "/v1/loans/a-1/timeline"
        ));
        assert!(!reaches(
            &loan,
            Method::GET,
            "/v1/loans/{id}/timeline",
            "/v1/loans/a-2/timeline"
        ));
        assert!(
            !reaches(
                &loan,
                Method::GET,
                "/v1/applications/{id}",
                "/v1/applications/a-1"
            ),
            "the same id, another purpose"
        );
    }

    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_says_otherwise() {
        let request = |forwarded: Option<&str>| {
            let mut builder = Request::builder().uri("/");
            if let Some(f) = forwarded {
                builder = builder.header("x-forwarded-for", f);
            }
            let mut request = builder.body(axum::body::Body::empty()).unwrap();
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 5000))));
            request
        };
        let header = HeaderName::from_static("x-forwarded-for");
        assert_eq!(
            client_of(&request(Some("1.2.3.4")), None).0,
            "10.0.0.1",
            "not trusted"
        );
        assert_eq!(
            client_of(&request(Some("6.6.6.6, 1.2.3.4")), Some(&header)).0,
            "1.2.3.4"
        );
        assert_eq!(client_of(&request(None), Some(&header)).0, "10.0.0.1");
        assert_eq!(
            client_of(&request(Some("not an address")), Some(&header)).0,
            "10.0.0.1"
        );
        assert_eq!(
            client_of(&request(Some("2001:db8:1:2:3:4:5:6")), Some(&header)).0,
            "2001:db8:1:2::/64",
            "an IPv6 host is counted by its /64"
        );
    }
}
