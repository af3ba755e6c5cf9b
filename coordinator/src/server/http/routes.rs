//! The web side's routes (GET only; anything else is 405): `/` the fleet overview,
//! `/reports/{compare|boards|drift|anomalies|roofline}`, `/boards/{agent_id}`, `/metrics`.
//! A report page takes fleetctl's narrowing as query parameters (`select=k=v,…`, `group`,
//! `since`, `nights`, `board`, `schedule`, `framework`) and `format=html|json|csv`; a bad one
//! is a 400 whose message names it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use fleetcal_proto::quote::quoted;

use super::{metrics, pages};
use crate::domain::DomainError;
use crate::fleet::{FleetQuery, ReportKind, ReportQuery};
use crate::model::Millis;
use crate::server::core::Coordinator;
use crate::store::Store;
use crate::{validate, Error};

/// Pages may use inline styles and `data:` images, and nothing else: no script, nothing from
/// another host.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                   base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The router over the coordinator's core.
pub fn router<S: Store>(core: Arc<Coordinator<S>>) -> Router {
    Router::new()
        .route("/", get(overview::<S>))
        .route("/reports/{kind}", get(report::<S>))
        .route("/boards/{agent_id}", get(board::<S>))
        .route("/metrics", get(metrics_text::<S>))
        .fallback(not_found)
        .with_state(core)
}

/// The router of a connection whose caller may not read the web side ([`super::super::auth`]):
/// every request is answered 403 with `refusal` (it names the caller).
pub fn refused(refusal: Error) -> Router {
    let message = refusal.to_string();
    Router::new().fallback(move || {
        let message = message.clone();
        async move {
            HttpError {
                status: StatusCode::FORBIDDEN,
                message,
            }
        }
    })
}

/// The wall clock, read once per request at the edge.
fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// An error page: the status and a one-line message.
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    message: String,
}

impl HttpError {
    /// A 400 naming the parameter.
    pub fn bad(message: String) -> HttpError {
        HttpError {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }
}

impl HttpError {
    /// A 500: something that should not fail did.
    pub fn internal(message: String) -> HttpError {
        tracing::warn!(%message, "http request failed");
        HttpError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message,
        }
    }
}

impl From<Error> for HttpError {
    fn from(e: Error) -> HttpError {
        let status = StatusCode::from_u16(crate::error::http_status_for(e.code()))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(error = %e, "http request failed");
        }
        HttpError {
            status,
            message: e.to_string(),
        }
    }
}

impl From<DomainError> for HttpError {
    fn from(e: DomainError) -> HttpError {
        Error::from(e).into()
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut body = self.message;
        body.push('\n');
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

/// How a report is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A page with plots.
    Html,
    /// The report model, as `fleetctl report --format json` prints it.
    Json,
    /// Its rows, as `fleetctl report --format csv` prints them.
    Csv,
}

/// The query parameters of a report or board page.
#[derive(Debug, Clone, PartialEq)]
pub struct WebQuery {
    /// What to read.
    pub report: ReportQuery,
    /// How to answer.
    pub format: Format,
}

/// The parameters every page accepts.
const PARAMS: [&str; 8] = [
    "select",
    "group",
    "since",
    "nights",
    "board",
    "schedule",
    "framework",
    "format",
];

/// Parses a page's query parameters; an unknown, repeated or malformed one is an error that
/// names it.
pub fn parse_query(pairs: &[(String, String)]) -> Result<WebQuery, HttpError> {
    let mut seen = BTreeMap::new();
    for (k, v) in pairs {
        if !PARAMS.contains(&k.as_str()) {
            return Err(HttpError::bad(format!(
                "unknown query parameter {} (expected one of {})",
                quoted(k),
                PARAMS.join(", ")
            )));
        }
        if seen.insert(k.as_str(), v.trim()).is_some() {
            return Err(HttpError::bad(format!(
                "query parameter '{k}' is given more than once"
            )));
        }
    }
    let bad = |name: &str, why: String| HttpError::bad(format!("query parameter '{name}': {why}"));
    let mut fleet = FleetQuery::default();
    if let Some(text) = seen.get("select") {
        let mut labels = BTreeMap::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| bad("select", format!("{} is not key=value", quoted(item))))?;
            labels.insert(k.trim().to_string(), v.trim().to_string());
        }
        validate::labels("select", &labels)?;
        fleet.select = labels.into_iter().collect();
    }
    if let Some(text) = seen.get("since") {
        fleet.since = Some(crate::fleet::parse_since(text).map_err(|why| bad("since", why))?);
    }
    let nights = match seen.get("nights") {
        Some(text) => {
            let n = text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=ReportQuery::MAX_NIGHTS).contains(n))
                .ok_or_else(|| {
                    bad(
                        "nights",
                        format!(
                            "{} is not a whole number from 1 to {}",
                            quoted(text),
                            ReportQuery::MAX_NIGHTS
                        ),
                    )
                })?;
            if fleet.since.is_some() {
                return Err(bad("nights", "give either 'since' or 'nights'".into()));
            }
            Some(n)
        }
        None => None,
    };
    if let Some(id) = seen.get("board") {
        validate::id("board", id)?;
        fleet.agent_id = Some((*id).to_string());
    }
    if let Some(name) = seen.get("schedule") {
        validate::schedule_name("schedule", name)?;
        fleet.schedule = Some((*name).to_string());
    }
    if let Some(fw) = seen.get("framework") {
        if !matches!(*fw, "numpy" | "pytorch") {
            return Err(bad(
                "framework",
                format!("{} is not numpy or pytorch", quoted(fw)),
            ));
        }
        fleet.framework = Some((*fw).to_string());
    }
    let group = match seen.get("group") {
        Some(key) => {
            validate::id("group", key)?;
            Some((*key).to_string())
        }
        None => None,
    };
    let format = match seen.get("format").copied() {
        None | Some("html") => Format::Html,
        Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(other) => {
            return Err(bad(
                "format",
                format!("{} is not html, json or csv", quoted(other)),
            ))
        }
    };
    Ok(WebQuery {
        report: ReportQuery {
            fleet,
            group,
            nights,
            ..ReportQuery::default()
        },
        format,
    })
}

/// An HTML page with the content security policy.
fn html(body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
        ],
        body,
    )
        .into_response()
}

/// A download in `format` (JSON or CSV).
fn data(format: Format, body: String) -> Response {
    let kind = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Json | Format::Html => "application/json",
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

async fn overview<S: Store>(
    State(core): State<Arc<Coordinator<S>>>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, HttpError> {
    if let Some((k, _)) = pairs.first() {
        return Err(HttpError::bad(format!(
            "unknown query parameter {} (the overview takes none)",
            quoted(k)
        )));
    }
    let now = now_ms();
    let status = pages::fleet_status(&core, now).await?;
    Ok(html(crate::render::html::overview_page(&status, now)))
}

async fn report<S: Store>(
    State(core): State<Arc<Coordinator<S>>>,
    Path(kind): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, HttpError> {
    let kind: ReportKind = kind.parse().map_err(|e: DomainError| HttpError {
        status: StatusCode::NOT_FOUND,
        message: e.to_string(),
    })?;
    let q = parse_query(&pairs)?;
    let now = now_ms();
    let report = core.report(kind, &q.report, now).await?;
    Ok(match q.format {
        Format::Html => html(crate::render::html::report_page(&report, &q.report, now)),
        format => data(format, pages::data(&report, format)?),
    })
}

async fn board<S: Store>(
    State(core): State<Arc<Coordinator<S>>>,
    Path(agent_id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, HttpError> {
    validate::id("agent_id", &agent_id)?;
    let mut q = parse_query(&pairs)?;
    if q.report.fleet.agent_id.is_some() {
        return Err(HttpError::bad(
            "query parameter 'board': the path names the board already".into(),
        ));
    }
    let now = now_ms();
    let page = pages::board(&core, &agent_id, &mut q.report, now).await?;
    Ok(match q.format {
        Format::Html => html(crate::render::html::board_page(&page, now)),
        format => data(format, pages::data(&page.drift, format)?),
    })
}

async fn metrics_text<S: Store>(State(core): State<Arc<Coordinator<S>>>) -> Response {
    match metrics::encode_metrics(&core, now_ms()).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => HttpError::from(e).into_response(),
    }
}

async fn not_found() -> HttpError {
    HttpError {
        status: StatusCode::NOT_FOUND,
        message: "no such page (try /, /reports/compare, /reports/boards, /reports/drift, \
                  /reports/anomalies, /reports/roofline, /boards/AGENT_ID or /metrics)"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<WebQuery, HttpError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_query(&pairs)
    }

    fn msg(r: Result<WebQuery, HttpError>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        e.message
    }

    #[test]
    fn parameters_mirror_fleetctl_flags() {
        let w = q(&[
            ("select", "site=lab, rack=2"),
            ("group", "g1"),
            ("nights", "7"),
            ("framework", "numpy"),
            ("format", "csv"),
        ])
        .unwrap();
        assert_eq!(w.format, Format::Csv);
        assert_eq!(
            w.report.fleet.select,
            vec![
                ("rack".to_string(), "2".to_string()),
                ("site".to_string(), "lab".to_string())
            ]
        );
        assert_eq!(w.report.nights, Some(7));
        assert_eq!(w.report.group.as_deref(), Some("g1"));
        assert_eq!(w.report.fleet.framework.as_deref(), Some("numpy"));
        let w = q(&[("since", "2026-11-01")]).unwrap();
        assert_eq!(w.report.fleet.since, Some(1_793_491_200_000));
        let w = q(&[("since", "2026-11-01T06:00:00+02:00")]).unwrap();
        assert_eq!(w.report.fleet.since, Some(1_793_505_600_000));
        assert_eq!(q(&[]).unwrap().format, Format::Html);
    }

    #[test]
    fn bad_parameters_are_400_naming_the_parameter() {
        assert!(msg(q(&[("nights", "0")])).contains("'nights'"));
        assert!(msg(q(&[("nights", "x")])).contains("'nights'"));
        assert!(msg(q(&[("since", "yesterday")])).contains("'since'"));
        assert!(msg(q(&[("since", "2026-11-01"), ("nights", "2")])).contains("'nights'"));
        assert!(msg(q(&[("select", "site")])).contains("'select'"));
        assert!(msg(q(&[("select", "s p=1")])).contains("'select'"));
        assert!(msg(q(&[("format", "xml")])).contains("'format'"));
        assert!(msg(q(&[("framework", "jax")])).contains("'framework'"));
        assert!(msg(q(&[("colour", "red")])).contains("'colour'"));
        assert!(msg(q(&[("group", "a"), ("group", "b")])).contains("'group'"));
        let long = "x".repeat(5000);
        let m = msg(q(&[("since", long.as_str())]));
        assert!(m.len() < 300, "bounded: {m}");
    }
}
