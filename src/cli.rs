//! The command line: every flag, its default and its help, turned into a `Config`.
//! Every flag but `--config` and `--print-config` is also a key of the configuration
//! file (`settings/`).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

use crate::channel::ChannelPatterns;
use crate::config::{AllowOrigin, Config};
use crate::storage::retention::Limit;
use crate::storage::{FsyncPolicy, Retention};
use crate::units::{parse_duration, parse_size};

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

fn size(text: &str) -> Result<u64, String> {
    parse_size(text).map_err(|e| e.to_string())
}

/// Halley: a Comet server. Browsers subscribe on the subscriber port (long-polling,
/// polling, XHR streaming, forever frames, server-sent events, WebSocket); publishers
/// post to the admin port, and browsers may publish where --client-publish allows.
#[derive(Debug, Parser)]
#[command(name = "halley", version, about, long_about = None)]
pub struct Args {
    /// Read settings from this TOML file: each key is a flag's name without `--`
    /// (`poll-timeout = "30s"`); a flag on the command line wins over the file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Print the settings in force (from the command line, the file and the defaults),
    /// as a file --config reads, and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Subscriber port address.
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Admin port address (publish, close, stats). Keep it private, or set --admin-token-file.
    #[arg(long, default_value = "127.0.0.1:8081", value_name = "ADDR")]
    pub admin_listen: SocketAddr,
    /// Subscriber event loops, one thread each [default: the number of cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Events kept per channel for subscribers that resume with a cursor.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub history: usize,
    /// Largest published message (bytes, or with KiB/MiB); larger publishes get 413.
    #[arg(long, default_value = "64KiB", value_parser = size, value_name = "SIZE")]
    pub max_message: u64,
    /// Most channels one subscription may multiplex; more get 400.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub max_channels: usize,
    /// How long a long-poll is held before it is answered with no frames.
    #[arg(long, default_value = "30s", value_parser = duration, value_name = "DURATION")]
    pub poll_timeout: Duration,
    /// Silence after which a stream gets a heartbeat frame.
    #[arg(long, default_value = "25s", value_parser = duration, value_name = "DURATION")]
    pub heartbeat: Duration,
    /// A stream ends itself after this many bytes (the client resumes with its cursor).
    #[arg(long, default_value = "1MiB", value_parser = size, value_name = "SIZE")]
    pub stream_max_bytes: u64,
    /// A stream ends itself after this long (the client resumes with its cursor).
    #[arg(long, default_value = "300s", value_parser = duration, value_name = "DURATION")]
    pub stream_max_age: Duration,
    /// The `retry:` sent first on server-sent event streams: how soon EventSource reconnects.
    #[arg(long, default_value = "2s", value_parser = duration, value_name = "DURATION")]
    pub sse_retry: Duration,
    /// Who may read answers cross-origin: `*`, `none`, or a comma list of origins.
    #[arg(long, default_value = "*", value_parser = AllowOrigin::parse, value_name = "ORIGINS")]
    pub allow_origin: AllowOrigin,
    /// Channels browsers may publish to on the subscriber port without a token
    /// (`POST /pub/{channel}`, or a WebSocket message): a comma list of names and
    /// prefixes ending in `*` (`room.*`). Empty by default: no browser publishes.
    #[arg(long, default_value = "", value_parser = ChannelPatterns::parse, value_name = "PATTERNS")]
    pub client_publish: ChannelPatterns,
    /// Most browser publishes per second on one connection; more get 429 (or
    /// `rate_limited` on a WebSocket); 0 is no limit.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub client_publish_rate: u32,
    /// Subscriptions need a signed token (a JWT in `Authorization: Bearer` or
    /// `?token=`): this file holds the HS256 secret, or a PEM public key for ES256,
    /// RS256 or EdDSA. Without it, every channel is open to every subscriber.
    #[arg(long, value_name = "FILE")]
    pub token_key_file: Option<std::path::PathBuf>,
    /// With --token-key-file: channels subscribed to without a token (names and
    /// prefixes ending in `*`, comma-separated).
    #[arg(long, default_value = "", value_parser = ChannelPatterns::parse, value_name = "PATTERNS")]
    pub public_channels: ChannelPatterns,
    /// Every admin request but `GET /healthz` needs `Authorization: Bearer` with the
    /// token in this file (16 or more printable bytes); others get 401.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<std::path::PathBuf>,
    /// Also serve subscribers over TLS (https://, wss://) on this address, with
    /// --tls-cert and --tls-key. SIGHUP reloads the pair.
    #[arg(long, value_name = "ADDR")]
    pub tls_listen: Option<SocketAddr>,
    /// With --tls-listen: the certificate chain (PEM), the server's first.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// With --tls-listen: the private key (PEM: RSA, ECDSA or Ed25519).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Put the admin port under TLS with this certificate chain (PEM) and --admin-tls-key.
    #[arg(long, value_name = "FILE")]
    pub admin_tls_cert: Option<std::path::PathBuf>,
    /// The admin port's private key (PEM), with --admin-tls-cert.
    #[arg(long, value_name = "FILE")]
    pub admin_tls_key: Option<std::path::PathBuf>,
    /// A request head (and on a TLS port, the handshake before it) must arrive within
    /// this long (408, then close).
    #[arg(long, default_value = "1s", value_parser = duration, value_name = "DURATION")]
    pub header_timeout: Duration,
    /// Largest request head; larger gets 431.
    #[arg(long, default_value = "8KiB", value_parser = size, value_name = "SIZE")]
    pub max_head: u64,
    /// An idle keep-alive connection is closed after this long.
    #[arg(long, default_value = "5s", value_parser = duration, value_name = "DURATION")]
    pub keepalive_timeout: Duration,
    /// TCP_DEFER_ACCEPT on the subscriber port: the kernel hands over a connection only
    /// once its first bytes arrive, or after about this long; `0s` turns it off.
    #[arg(long, default_value = "1s", value_parser = duration, value_name = "DURATION")]
    pub defer_accept: Duration,
    /// A subscriber whose unwritten output passes this is dropped (it resumes with its cursor).
    #[arg(long, default_value = "256KiB", value_parser = size, value_name = "SIZE")]
    pub max_pending: u64,
    /// A subscriber whose output makes no progress for this long is dropped.
    #[arg(long, default_value = "10s", value_parser = duration, value_name = "DURATION")]
    pub write_timeout: Duration,
    /// Most subscriber connections at once; more get 503 [default: from the descriptor limit].
    #[arg(long, value_name = "N")]
    pub max_conns: Option<usize>,
    /// Most admin connections at once; more get 503.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub admin_max_conns: usize,
    /// Share channels with other Halley servers through this Redis (redis://host:port/db,
    /// rediss:// over TLS, trusting the system's certificates or SSL_CERT_FILE's) or
    /// Redis Cluster (redis+cluster://host:port,host:port): ids, history and delivery.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Every call to Redis must be answered within this long (a publish then gets 503).
    #[arg(long, default_value = "2s", value_parser = duration, value_name = "DURATION")]
    pub redis_timeout: Duration,
    /// With --redis: a publish is answered 201 only once this many replicas of Redis have
    /// it (WAIT); 503 when fewer do within --redis-timeout (the event may be kept).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub redis_replicas: usize,
    /// Keep every event in an append-only log in this directory, and recover it at start.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// With --data-dir, when a publish is answered: `always` after the event is on disk
    /// (group commit), `batch` once written, syncing every --fsync-interval, `never` once
    /// written, leaving the disk to the kernel.
    #[arg(long, default_value = "always", value_parser = FsyncPolicy::parse, value_name = "WHEN")]
    pub fsync: FsyncPolicy,
    /// With --fsync batch: the most acknowledged events a machine crash can lose is this long's worth.
    #[arg(long, default_value = "1s", value_parser = duration, value_name = "DURATION")]
    pub fsync_interval: Duration,
    /// With --data-dir, how much of each channel is kept: a number of events (100000), a
    /// size (512MiB) or an age (24h); repeat to combine. Default: everything. With
    /// --redis, a number of events only (default: --history).
    #[arg(long, value_parser = Limit::parse, value_name = "LIMIT")]
    pub retain: Vec<Limit>,
    /// With --data-dir, the size at which a log segment is sealed (retention deletes whole segments).
    #[arg(long, default_value = "4MiB", value_parser = size, value_name = "SIZE")]
    pub segment_size: u64,
    /// Log level: error, warn, info, debug or trace (RUST_LOG, when set, wins).
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,
}

impl Args {
    /// The `Config` these flags describe.
    pub fn to_config(&self) -> Config {
        let defaults = Config::default();
        Config {
            listen: self.listen,
            admin_listen: self.admin_listen,
            threads: self.threads.unwrap_or(defaults.threads),
            history: self.history,
            max_message: self.max_message as usize,
            max_channels: self.max_channels,
            poll_timeout: self.poll_timeout,
            heartbeat: self.heartbeat,
            stream_max_bytes: self.stream_max_bytes,
            stream_max_age: self.stream_max_age,
            sse_retry: self.sse_retry,
            allow_origin: self.allow_origin.clone(),
            client_publish: self.client_publish.clone(),
            client_publish_rate: self.client_publish_rate,
            token_key_file: self.token_key_file.clone(),
            token_key: None,
            public_channels: self.public_channels.clone(),
            admin_token_file: self.admin_token_file.clone(),
            admin_token: None,
            tls_listen: self.tls_listen,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            admin_tls_cert: self.admin_tls_cert.clone(),
            admin_tls_key: self.admin_tls_key.clone(),
            header_timeout: self.header_timeout,
            max_head: self.max_head as usize,
            keepalive_timeout: self.keepalive_timeout,
            defer_accept: self.defer_accept,
            max_pending: self.max_pending as usize,
            write_timeout: self.write_timeout,
            max_conns: self.max_conns,
            admin_max_conns: self.admin_max_conns,
            redis: self.redis.clone(),
            redis_timeout: self.redis_timeout,
            redis_replicas: self.redis_replicas,
            data_dir: self.data_dir.clone(),
            fsync: self.fsync,
            fsync_interval: self.fsync_interval,
            retain: Retention {
                limits: self.retain.clone(),
            },
            segment_size: self.segment_size.min(usize::MAX as u64) as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_config_defaults() {
        let args = Args::parse_from(["halley"]);
        let config = args.to_config();
        let defaults = Config::default();
        assert_eq!(config.listen, defaults.listen);
        assert_eq!(config.max_message, defaults.max_message);
        assert_eq!(config.poll_timeout, defaults.poll_timeout);
        assert_eq!(config.stream_max_bytes, defaults.stream_max_bytes);
        assert_eq!(config.max_pending, defaults.max_pending);
        assert_eq!(config.max_head, defaults.max_head);
        assert_eq!(config.allow_origin, defaults.allow_origin);
        assert_eq!(config.defer_accept, defaults.defer_accept);
        assert_eq!(config.defer_accept, Duration::from_secs(1), "on by default");
    }

    #[test]
    fn units_are_required_and_checked() {
        assert!(Args::try_parse_from(["halley", "--poll-timeout", "30"]).is_err());
        assert!(Args::try_parse_from(["halley", "--max-message", "64KB"]).is_err());
        let args =
            Args::try_parse_from(["halley", "--poll-timeout", "500ms", "--max-message", "1MiB"])
                .unwrap();
        assert_eq!(args.to_config().poll_timeout, Duration::from_millis(500));
        assert_eq!(args.to_config().max_message, 1 << 20);
    }
}
