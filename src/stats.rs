//! Counters, and their rendering as `/stats` (JSON) and `/metrics` (Prometheus text).
//!
//! Each event loop owns one `LoopStats` and is its only writer; the admin thread reads
//! them. They are relaxed atomics on a cache line of their own: no lock, no contention
//! on the delivery path, and a reader sees each counter whole (not a consistent
//! snapshot of all of them, which nothing here needs).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether a counter only grows or goes up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

macro_rules! counters {
    (
        $(#[$meta:meta])* $name:ident $(embeds $embedded:ident: $etype:ident)? {
            $($field:ident: $kind:ident, $help:literal;)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        pub struct $name {
            $(
                /// The connection engine's counters (`ConnStats`).
                pub $embedded: $etype,
            )?
            $(#[doc = $help] pub $field: AtomicU64,)*
        }

        impl $name {
            /// Every counter: name, kind, help text (the embedded ones first).
            pub fn fields() -> Vec<(&'static str, Kind, &'static str)> {
                let mut fields = Vec::new();
                $(fields.extend($etype::fields());)?
                fields.extend([$((stringify!($field), Kind::$kind, $help),)*]);
                fields
            }

            /// Current values, in the order of `fields`.
            pub fn values(&self) -> Vec<u64> {
                let mut values = Vec::new();
                $(values.extend(self.$embedded.values());)?
                values.extend([$(self.$field.load(Ordering::Relaxed),)*]);
                values
            }
        }
    };
}

counters! {
    /// What the connection engine (`engine/`) counts, the same on both ports: each
    /// refusal of bad input has one counter, whichever port it came to.
    ConnStats {
        connections: Gauge, "Connections open now.";
        connections_accepted: Counter, "Connections accepted.";
        requests: Counter, "Request heads read.";
        bad_requests: Counter, "Requests refused with 400: bad syntax, target, chunked body, channel, cursor or callback.";
        heads_too_large: Counter, "Request heads over --max-head (or with too many headers), answered 431.";
        ambiguous_lengths: Counter, "Requests with both Content-Length and Transfer-Encoding or a bad length, answered 400.";
        unknown_codings: Counter, "Requests with a transfer coding other than chunked, answered 501.";
        messages_too_large: Counter, "Request bodies over --max-message, answered 413.";
        methods_not_allowed: Counter, "Requests with a method (or a body) the path does not take, answered 405.";
        not_found: Counter, "Requests for unknown paths, answered 404.";
        header_timeouts: Counter, "Connections closed because a request was not complete within --header-timeout (its body: --write-timeout).";
        keepalive_timeouts: Counter, "Idle keep-alive connections closed after --keepalive-timeout.";
        write_timeouts: Counter, "Connections dropped because their output made no progress for --write-timeout.";
        conns_refused: Counter, "Connections refused with 503 at --max-conns (--admin-max-conns on the admin port).";
        fd_refusals: Counter, "Connections refused because the process ran out of file descriptors.";
        fd_exhaustions: Counter, "Times accepting found the process out of file descriptors.";
        tls_handshakes: Counter, "TLS handshakes completed.";
        tls_handshake_failures: Counter, "TLS connections closed before their handshake finished: refused by TLS, not TLS (plain HTTP gets a 400), closed by the peer, or not done within --header-timeout.";
    }
}

counters! {
    /// One subscriber loop's counters.
    #[repr(align(128))]
    LoopStats embeds conns: ConnStats {
        subscribers: Gauge, "Subscriptions waiting now (held long-polls and open streams).";
        events_delivered: Counter, "Event frames written to subscribers.";
        heartbeats: Counter, "Heartbeat frames written to streams and WebSockets after --heartbeat of silence.";
        too_many_channels: Counter, "Subscriptions over --max-channels, answered 400.";
        slow_clients_dropped: Counter, "Subscribers dropped because their pending output passed --max-pending (a WebSocket with close 1008).";
        ws_handshakes: Counter, "WebSocket handshakes answered 101.";
        ws_handshakes_refused: Counter, "WebSocket handshakes refused: 400 (key, version, method) or 403 (origin).";
        ws_closed_normal: Counter, "WebSockets closed with 1000: every channel delivered its close marker.";
        ws_going_away: Counter, "WebSockets closed with 1001 at shutdown.";
        ws_protocol_errors: Counter, "WebSockets closed with 1002: unmasked, binary, reserved bits, bad control frames.";
        ws_not_utf8: Counter, "WebSockets closed with 1007: text that is not UTF-8.";
        ws_messages_too_big: Counter, "WebSockets closed with 1009: a message over --max-message plus 1KiB.";
        ws_client_closes: Counter, "WebSocket closes begun by the client (echoed).";
        ws_pings: Counter, "WebSocket pings answered with a pong.";
        auth_missing: Counter, "Subscriptions (and browser POSTs) refused 401: no token, and a channel that is not public (not in --client-publish).";
        auth_invalid: Counter, "Subscriptions (and browser POSTs) refused 401: a token that is malformed, badly signed or not valid yet.";
        auth_expired: Counter, "Subscriptions (and browser POSTs) refused 401: an expired token.";
        auth_forbidden: Counter, "Subscriptions refused 403: a valid token that does not cover a channel asked for.";
        auth_subscriptions_expired: Counter, "Held subscriptions ended because their token expired (a WebSocket with close 4001).";
        client_publishes: Counter, "Browser publishes handed to the admin thread to store.";
        client_publishes_forbidden: Counter, "Browser publishes refused: the channel is not in --client-publish (403, forbidden).";
        client_publishes_rate_limited: Counter, "Browser publishes over --client-publish-rate (429, rate_limited).";
        client_publishes_too_large: Counter, "Browser publishes over --max-message (413, too_large).";
        client_publishes_malformed: Counter, "Browser publishes that are not a channel name and UTF-8 data, or not the JSON of PROTOCOL.md (400, bad_request).";
    }
}

counters! {
    /// The admin port's counters.
    #[repr(align(128))]
    AdminStats embeds conns: ConnStats {
        events_published: Counter, "Events stored and sent to the loops (messages and close markers).";
        channels: Gauge, "Channels known.";
        publishes_to_closed: Counter, "Publishes to a closed channel, answered 409.";
        auth_refused: Counter, "Admin requests refused 401 without the --admin-token-file token.";
        events_stored: Counter, "Events written to the storage: in memory, or the on-disk log with --data-dir.";
        fsyncs: Counter, "Syncs to disk: an fdatasync of one file, an fsync of a directory, or a syncfs of the data directory's file system.";
        storage_errors: Counter, "Storage failures; after one, publishes are answered 503.";
        publishes_refused_storage: Counter, "Publishes and closes answered 503 because storage failed.";
        damaged_blocks: Counter, "Damaged blocks found in the log at recovery or while reading; their events are not served.";
        segments_deleted: Counter, "Log segments deleted by --retain.";
        catchup_reads: Counter, "Reads from storage for subscribers older than the in-memory history.";
        catchup_events: Counter, "Events read from storage for catching up.";
        redis_connected: Gauge, "With --redis: 1 while this server hears Redis's announcements (on a Redis Cluster, every shard's), else 0.";
        redis_shards: Gauge, "With --redis: the subscriptions this server listens on: 1 on one Redis, one per master on a Redis Cluster.";
        redis_shards_listening: Gauge, "With --redis: how many of redis_shards are up.";
        redis_reconnects: Counter, "With --redis: times the subscription to Redis broke and was made again.";
        redis_events_heard: Counter, "With --redis: events handed to the loops from Redis (announced, or read from a stream to fill a hole).";
        redis_publishes: Counter, "With --redis: publishes and closes sent to Redis (answered or not).";
        redis_publish_failures: Counter, "With --redis: publishes and closes Redis did not store or did not answer in time (answered 503).";
        redis_publish_us: Counter, "With --redis: microseconds spent on publishes and closes in Redis, in total (over redis_publishes: the mean).";
        redis_announcements_refused: Counter, "With --redis: messages on the announcement channel that are not announcements (or whose data is not UTF-8).";
    }
}

/// Every counter of the server.
#[derive(Debug)]
pub struct Stats {
    /// One per subscriber loop, indexed by loop number.
    pub loops: Vec<LoopStats>,
    pub admin: AdminStats,
    /// With --redis: how long publishes and closes spent in Redis.
    pub redis_publish: Histogram,
}

/// The upper bounds of `Histogram`'s buckets, in microseconds (a last one, +Inf,
/// takes the rest).
pub const BUCKETS_US: [u64; 12] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
];

/// A latency histogram of fixed buckets, for `/metrics` (Prometheus `histogram`) and
/// `/stats`: one relaxed add per observation, no lock.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last is above every bound.
    counts: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    /// Counts one observation of `micros`.
    pub fn record(&self, micros: u64) {
        let bucket = BUCKETS_US
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(BUCKETS_US.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
    }

    /// The cumulative count at or below each bound, +Inf last (the total).
    pub fn cumulative(&self) -> Vec<u64> {
        let mut total = 0;
        self.counts
            .iter()
            .map(|count| {
                total += count.load(Ordering::Relaxed);
                total
            })
            .collect()
    }

    /// Writes `name` as a Prometheus histogram in seconds.
    fn write_prometheus(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(
            out,
            "# HELP {name} {help}
# TYPE {name} histogram"
        );
        let cumulative = self.cumulative();
        for (bound, count) in BUCKETS_US.iter().zip(&cumulative) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {count}",
                *bound as f64 / 1e6
            );
        }
        let total = cumulative.last().copied().unwrap_or(0);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {total}");
    }

    /// Writes it as a JSON object: each bound in microseconds (and `+Inf`) with the
    /// cumulative count.
    fn write_json(&self, out: &mut String) {
        let cumulative = self.cumulative();
        out.push('{');
        for (bound, count) in BUCKETS_US.iter().zip(&cumulative) {
            let _ = write!(out, "\"{bound}\":{count},");
        }
        let _ = write!(
            out,
            "\"+Inf\":{}}}",
            cumulative.last().copied().unwrap_or(0)
        );
    }
}

impl Stats {
    /// Zeroed counters for `loops` loops.
    pub fn new(loops: usize) -> Stats {
        Stats {
            loops: (0..loops).map(|_| LoopStats::default()).collect(),
            admin: AdminStats::default(),
            redis_publish: Histogram::default(),
        }
    }

    /// Sum of each loop counter over all loops.
    pub fn loop_totals(&self) -> Vec<u64> {
        let mut totals = vec![0u64; LoopStats::fields().len()];
        for stats in &self.loops {
            for (total, value) in totals.iter_mut().zip(stats.values()) {
                *total += value;
            }
        }
        totals
    }

    /// The `/stats` document: the loop counters summed over all loops and
    /// `events_published` at the top level, then `admin` (the admin port's own
    /// counters) and `loops` (each loop's counters).
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        let loop_fields = LoopStats::fields();
        push_fields(&mut out, &loop_fields, &self.loop_totals());
        let _ = write!(
            out,
            ",\"events_published\":{},\"admin\":{{",
            self.admin.events_published.load(Ordering::Relaxed)
        );
        push_fields(&mut out, &AdminStats::fields(), &self.admin.values());
        out.push_str(",\"redis_publish_us_at_most\":");
        self.redis_publish.write_json(&mut out);
        out.push_str("},\"loops\":[");
        for (i, stats) in self.loops.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            push_fields(&mut out, &loop_fields, &stats.values());
            out.push('}');
        }
        out.push_str("]}");
        out
    }

    /// The `/metrics` page, Prometheus text format 0.0.4: loop series labelled by
    /// `loop`, admin series unlabelled, all prefixed `halley_`.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let per_loop: Vec<Vec<u64>> = self.loops.iter().map(LoopStats::values).collect();
        for (i, (name, kind, help)) in LoopStats::fields().iter().enumerate() {
            let (metric, kind) = metric_name(name, *kind);
            let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} {kind}");
            for (number, values) in per_loop.iter().enumerate() {
                let _ = writeln!(out, "{metric}{{loop=\"{number}\"}} {}", values[i]);
            }
        }
        let admin_values = self.admin.values();
        for (i, (name, kind, help)) in AdminStats::fields().iter().enumerate() {
            let (metric, kind) = metric_name(&format!("admin_{name}"), *kind);
            let _ = writeln!(
                out,
                "# HELP {metric} {help}\n# TYPE {metric} {kind}\n{metric} {}",
                admin_values[i]
            );
        }
        self.redis_publish.write_prometheus(
            &mut out,
            "halley_admin_redis_publish_seconds",
            "With --redis: time publishes and closes spent in Redis (connecting included, when it had to).",
        );
        out
    }
}

fn metric_name(name: &str, kind: Kind) -> (String, &'static str) {
    match kind {
        Kind::Counter => (format!("halley_{name}_total"), "counter"),
        Kind::Gauge => (format!("halley_{name}"), "gauge"),
    }
}

fn push_fields(out: &mut String, fields: &[(&str, Kind, &str)], values: &[u64]) {
    for (i, ((name, _, _), value)) in fields.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{name}\":{value}");
    }
}

/// Adds one to a counter (relaxed: counters order nothing).
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Takes one from a gauge.
pub fn drop_one(gauge: &AtomicU64) {
    gauge.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_observation_in_its_bucket_cumulatively() {
        let stats = Stats::new(1);
        for micros in [100, 250, 251, 7_000, 5_000_000] {
            stats.redis_publish.record(micros);
        }
        let cumulative = stats.redis_publish.cumulative();
        assert_eq!(&cumulative[..3], &[2, 3, 3]);
        assert_eq!(cumulative[BUCKETS_US.len() - 1], 4);
        assert_eq!(cumulative[BUCKETS_US.len()], 5);
        let text = stats.to_prometheus();
        assert!(text.contains("# TYPE halley_admin_redis_publish_seconds histogram\n"));
        assert!(text.contains("halley_admin_redis_publish_seconds_bucket{le=\"0.00025\"} 2\n"));
        assert!(text.contains("halley_admin_redis_publish_seconds_bucket{le=\"0.01\"} 4\n"));
        assert!(text.contains("halley_admin_redis_publish_seconds_bucket{le=\"+Inf\"} 5\n"));
        assert!(text.contains("halley_admin_redis_publish_seconds_sum 5.007601\n"));
        assert!(text.contains("halley_admin_redis_publish_seconds_count 5\n"));
        let json: serde_json::Value = serde_json::from_str(&stats.to_json()).unwrap();
        let buckets = &json["admin"]["redis_publish_us_at_most"];
        assert_eq!(
            (buckets["500"].as_u64(), buckets["+Inf"].as_u64()),
            (Some(3), Some(5))
        );
    }

    #[test]
    fn json_has_totals_and_each_loop() {
        let stats = Stats::new(2);
        bump(&stats.loops[0].slow_clients_dropped);
        add(&stats.loops[1].slow_clients_dropped, 2);
        bump(&stats.admin.events_published);
        let json: serde_json::Value = serde_json::from_str(&stats.to_json()).unwrap();
        assert_eq!(json["slow_clients_dropped"], 3);
        assert_eq!(json["events_published"], 1);
        assert_eq!(json["admin"]["events_published"], 1);
        assert_eq!(json["loops"][1]["slow_clients_dropped"], 2);
        assert_eq!(json["loops"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn prometheus_text_labels_loops() {
        let stats = Stats::new(2);
        bump(&stats.loops[1].conns.header_timeouts);
        let text = stats.to_prometheus();
        assert!(text.contains("# TYPE halley_header_timeouts_total counter\n"));
        assert!(text.contains("halley_header_timeouts_total{loop=\"1\"} 1\n"));
        assert!(text.contains("# TYPE halley_connections gauge\n"));
        assert!(text.contains("halley_admin_events_published_total 0\n"));
    }
}
