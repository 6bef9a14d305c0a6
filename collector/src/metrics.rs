//! Prometheus metrics. Labels have low cardinality: endpoints, statuses, reason codes, tables.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    pub table: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.1 ms … ~13 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

fn rows_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 4.0, 10))
}

/// Every metric the collector exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub events_accepted: Counter,
    pub events_rejected: Family<ReasonLabels, Counter>,
    pub bytes_in: Counter,
    pub decode_seconds: Histogram,
    pub spool_append_seconds: Histogram,
    pub insert_seconds: HistogramFamily<TableLabels>,
    pub batch_rows: HistogramFamily<TableLabels>,
    pub insert_retries: Family<TableLabels, Counter>,
    pub rows_inserted: Family<TableLabels, Counter>,
    pub spool_pending_bytes: Gauge,
    pub spool_pending_records: Gauge,
    pub spool_replayed_records: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("spoor_collector");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by endpoint and status",
            requests.clone(),
        );
        let events_accepted = Counter::default();
        registry.register(
            "events_accepted",
            "Events accepted (durable, on their way to ClickHouse)",
            events_accepted.clone(),
        );
        let events_rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "events_rejected",
            "Events refused, by reason code (stored in events_rejected)",
            events_rejected.clone(),
        );
        let bytes_in = Counter::default();
        registry.register(
            "request_bytes",
            "Request body bytes received, as sent (compressed)",
            bytes_in.clone(),
        );
        let decode_seconds = latency_histogram();
        registry.register(
            "decode_seconds",
            "Time to decompress, decode, validate and enrich one request",
            decode_seconds.clone(),
        );
        let spool_append_seconds = latency_histogram();
        registry.register(
            "spool_append_seconds",
            "Time from handing a request to the spool to its fsync",
            spool_append_seconds.clone(),
        );
        let insert_seconds: HistogramFamily<TableLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "clickhouse_insert_seconds",
            "Latency of successful ClickHouse inserts",
            insert_seconds.clone(),
        );
        let batch_rows: HistogramFamily<TableLabels> = Family::new_with_constructor(rows_histogram);
        registry.register(
            "clickhouse_batch_rows",
            "Rows per ClickHouse insert",
            batch_rows.clone(),
        );
        let insert_retries = Family::<TableLabels, Counter>::default();
        registry.register(
            "clickhouse_insert_retries",
            "ClickHouse inserts that failed and were retried",
            insert_retries.clone(),
        );
        let rows_inserted = Family::<TableLabels, Counter>::default();
        registry.register(
            "clickhouse_rows_inserted",
            "Rows confirmed by ClickHouse",
            rows_inserted.clone(),
        );
        let spool_pending_bytes = Gauge::default();
        registry.register(
            "spool_pending_bytes",
            "Bytes in the spool not yet confirmed by ClickHouse",
            spool_pending_bytes.clone(),
        );
        let spool_pending_records = Gauge::default();
        registry.register(
            "spool_pending_records",
            "Requests in the spool not yet confirmed by ClickHouse",
            spool_pending_records.clone(),
        );
        let spool_replayed_records = Counter::default();
        registry.register(
            "spool_replayed_records",
            "Spooled requests re-read from disk (start-up replay or memory queue overflow)",
            spool_replayed_records.clone(),
        );
        Metrics {
            registry,
            requests,
            events_accepted,
            events_rejected,
            bytes_in,
            decode_seconds,
            spool_append_seconds,
            insert_seconds,
            batch_rows,
            insert_retries,
            rows_inserted,
            spool_pending_bytes,
            spool_pending_records,
            spool_replayed_records,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        let m = Metrics::new();
        m.requests
            .get_or_create(&RequestLabels {
                endpoint: "batch",
                status: 200,
            })
            .inc();
        m.events_rejected
            .get_or_create(&ReasonLabels {
                reason: "malformed".into(),
            })
            .inc();
        let text = m.render();
        for name in [
            "spoor_collector_http_requests_total{endpoint=\"batch\",status=\"200\"} 1",
            "spoor_collector_events_rejected_total{reason=\"malformed\"} 1",
            "spoor_collector_spool_pending_bytes",
            "spoor_collector_decode_seconds",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
