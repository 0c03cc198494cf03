//! What both servers' `GET /metrics` share: a request-latency histogram by
//! route and status (filled by the [`observe_requests`] middleware), the
//! bucket layouts, and the response in the OpenMetrics text format.
//!
//! Each server keeps its metrics in one value built at start-up around a
//! [`Registry`] (no statics): counters, gauges and histograms of
//! `prometheus-client`, which render themselves.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The labels of one request: its method, route template (`unmatched`
/// for paths no route takes) and status code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// A histogram per label set, every one with the same buckets.
pub type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 50 µs to ~105 s (doubling).
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 22))
}

/// Transfer-rate buckets from 1 MB/s to ~33 GB/s (doubling), in bytes/s.
pub fn rate_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e6, 2.0, 16))
}

/// A counter registered in `registry` as `name` (rendered `name_total`).
pub fn counter(registry: &mut Registry, name: &str, help: &str) -> Counter {
    let counter = Counter::default();
    registry.register(name, help, counter.clone());
    counter
}

/// A gauge registered in `registry` as `name`.
pub fn gauge(registry: &mut Registry, name: &str, help: &str) -> Gauge {
    let gauge = Gauge::default();
    registry.register(name, help, gauge.clone());
    gauge
}

/// The request-latency histograms of one server
/// (`dfs_http_request_duration_seconds`); cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: HistogramFamily<RequestLabels>,
}

impl HttpMetrics {
    /// Registers the histograms in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let requests = HistogramFamily::<RequestLabels>::new_with_constructor(latency_histogram);
        registry.register(
            "dfs_http_request_duration_seconds",
            "HTTP requests by method, route and status: time to the response head",
            requests.clone(),
        );
        Self { requests }
    }

    /// Records one response.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .observe(seconds);
    }
}

/// Middleware timing every request (to its response head) by route
/// template and status.
pub async fn observe_requests(
    State(metrics): State<HttpMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    // Any token is a method on the wire: only the standard ones get a label
    // of their own, so a client cannot grow the series without bound.
    let method = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    metrics.observe(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `registry` as an OpenMetrics text response.
pub fn exposition(registry: &Registry) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, registry) {
        Ok(()) => (
            [(
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        // Only a label or help text the encoder cannot write gets here.
        Err(e) => crate::http::error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_render_as_one_histogram_per_route_and_status() {
        let mut registry = Registry::default();
        let http = HttpMetrics::register(&mut registry);
        http.observe("GET", "/files/{file_id}", 200, 0.001);
        http.observe("GET", "/files/{file_id}", 200, 0.003);
        http.observe("GET", "/files/{file_id}", 404, 0.002);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains("# TYPE dfs_http_request_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"dfs_http_request_duration_seconds_count{method="GET",route="/files/{file_id}",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"dfs_http_request_duration_seconds_count{method="GET",route="/files/{file_id}",status="404"} 1"#
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
