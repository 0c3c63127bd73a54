//! The server's settings: one `Config` with the defaults of PROTOCOL.md, validated once
//! before anything is bound. The command line (`cli.rs`) fills it in; tests build one
//! with `Config::default()` and change the fields they care about.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::storage::retention::Limit;

/// Which origins may read answers cross-origin (`Access-Control-Allow-Origin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowOrigin {
    /// `*`: any page may read (the default; no credentials are involved).
    Any,
    /// Only these origins (`https://example.com`); the request's `Origin` is echoed when it
    /// is one of them, with `Vary: Origin`.
    List(Vec<String>),
    /// No `Access-Control-Allow-Origin` at all: same-origin pages only.
    None,
}

impl AllowOrigin {
    /// Parses `*`, `none`, or a comma-separated list of origins.
    pub fn parse(text: &str) -> Result<AllowOrigin, String> {
        match text.trim() {
            "*" => Ok(AllowOrigin::Any),
            "none" | "" => Ok(AllowOrigin::None),
            list => {
                let origins: Vec<String> = list
                    .split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_string())
                    .collect();
                if origins.iter().any(|o| o.is_empty() || !o.contains("://")) {
                    return Err(format!(
                        "{text:?}: expected *, none, or origins like https://example.com"
                    ));
                }
                Ok(AllowOrigin::List(origins))
            }
        }
    }
}

/// Every setting of the server. Field docs say what each bounds and why the default.
#[derive(Debug, Clone)]
pub struct Config {
    /// Subscriber port address; every loop binds it with SO_REUSEPORT.
    pub listen: SocketAddr,
    /// Admin port address: publishing and operating. Loopback by default, as it is unauthenticated.
    pub admin_listen: SocketAddr,
    /// Number of subscriber event loops, one thread each.
    pub threads: usize,
    /// Events kept per channel for subscribers that resume with a cursor.
    pub history: usize,
    /// Largest published body accepted, in bytes.
    pub max_message: usize,
    /// Most channels one subscription may multiplex.
    pub max_channels: usize,
    /// How long a long-poll is held before it is answered with no frames.
    pub poll_timeout: Duration,
    /// Interval of silence after which a stream gets a heartbeat.
    pub heartbeat: Duration,
    /// A stream ends itself after this many bytes of frames (the client resumes).
    pub stream_max_bytes: u64,
    /// A stream ends itself after this long (the client resumes).
    pub stream_max_age: Duration,
    /// The SSE `retry:` value sent first on each event stream.
    pub sse_retry: Duration,
    /// Cross-origin policy.
    pub allow_origin: AllowOrigin,
    /// Channels browsers may publish to without a token; none by default.
    pub client_publish: crate::channel::ChannelPatterns,
    /// Most browser publishes per second per connection (0: no limit).
    pub client_publish_rate: u32,
    /// `--token-key-file`: with a key, every subscription needs a token, but to
    /// `public_channels`. Read at start (`Server::start`) into `token_key`.
    pub token_key_file: Option<std::path::PathBuf>,
    /// The key read from `token_key_file` (or set by a test).
    pub token_key: Option<std::sync::Arc<crate::auth::TokenKey>>,
    /// Channels subscribed to without a token when a key is set.
    pub public_channels: crate::channel::ChannelPatterns,
    /// `--admin-token-file`: every admin request but `GET /healthz` needs this bearer
    /// token. Read at start into `admin_token`.
    pub admin_token_file: Option<std::path::PathBuf>,
    /// The token read from `admin_token_file` (or set by a test).
    pub admin_token: Option<crate::auth::Secret>,
    /// `--tls-listen`: the subscriber protocol over TLS on this address too, with
    /// `tls_cert` and `tls_key` (PEM files).
    pub tls_listen: Option<SocketAddr>,
    pub tls_cert: Option<std::path::PathBuf>,
    pub tls_key: Option<std::path::PathBuf>,
    /// The admin port under TLS, with this pair.
    pub admin_tls_cert: Option<std::path::PathBuf>,
    pub admin_tls_key: Option<std::path::PathBuf>,
    /// A request head must be complete this soon after its first byte (or the accept);
    /// on a TLS port, the handshake too.
    pub header_timeout: Duration,
    /// Largest request head, request line and headers together.
    pub max_head: usize,
    /// An idle keep-alive connection is closed after this long.
    pub keepalive_timeout: Duration,
    /// TCP_DEFER_ACCEPT on the subscriber listeners (whole seconds, rounded up); zero is
    /// off. On by default (1 s): a connection reaches the server with its request, and
    /// a silent one only after about this long (then the header timeout runs).
    pub defer_accept: Duration,
    /// A subscriber whose unwritten output passes this many bytes is dropped.
    pub max_pending: usize,
    /// A subscriber whose pending output makes no progress for this long is dropped.
    pub write_timeout: Duration,
    /// Most subscriber-port connections at once, over all loops; `None` picks it from the
    /// file-descriptor limit at start-up.
    pub max_conns: Option<usize>,
    /// Most admin-port connections at once.
    pub admin_max_conns: usize,
    /// `--redis`: channels shared with other servers through this Redis
    /// (`redis://host:port/db`) or Redis Cluster (`redis+cluster://host:port,...`);
    /// `None` keeps them to this server.
    pub redis: Option<String>,
    /// Every call to Redis is bounded by this (`--redis-timeout`).
    pub redis_timeout: Duration,
    /// Replicas of Redis that must have a publish before it is answered
    /// (`--redis-replicas`).
    pub redis_replicas: usize,
    /// Where the durable log lives; `None` keeps events in memory only.
    pub data_dir: Option<std::path::PathBuf>,
    /// When a publish is acknowledged against the disk.
    pub fsync: crate::storage::FsyncPolicy,
    /// With `--fsync batch`, how often the log is synced.
    pub fsync_interval: Duration,
    /// How much of each channel's log is kept.
    pub retain: crate::storage::Retention,
    /// Size at which a log segment is sealed and the next begun.
    pub segment_size: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: "0.0.0.0:8080".parse().expect("literal address"),
            admin_listen: "127.0.0.1:8081".parse().expect("literal address"),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            history: 1000,
            max_message: 64 << 10,
            max_channels: 16,
            poll_timeout: Duration::from_secs(30),
            heartbeat: Duration::from_secs(25),
            stream_max_bytes: 1 << 20,
            stream_max_age: Duration::from_secs(300),
            sse_retry: Duration::from_secs(2),
            allow_origin: AllowOrigin::Any,
            client_publish: crate::channel::ChannelPatterns::none(),
            client_publish_rate: 20,
            token_key_file: None,
            token_key: None,
            public_channels: crate::channel::ChannelPatterns::none(),
            admin_token_file: None,
            admin_token: None,
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            admin_tls_cert: None,
            admin_tls_key: None,
            header_timeout: Duration::from_secs(1),
            max_head: 8 << 10,
            keepalive_timeout: Duration::from_secs(5),
            defer_accept: Duration::from_secs(1),
            max_pending: 256 << 10,
            write_timeout: Duration::from_secs(10),
            max_conns: None,
            admin_max_conns: 256,
            redis: None,
            redis_timeout: Duration::from_secs(2),
            redis_replicas: 0,
            data_dir: None,
            fsync: crate::storage::FsyncPolicy::Always,
            fsync_interval: Duration::from_secs(1),
            retain: crate::storage::Retention::default(),
            segment_size: 4 << 20,
        }
    }
}

/// A setting that cannot work, found before anything is bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// With `--redis`: about how many events each channel's stream keeps: the smallest
    /// `--retain` count, else `--history`.
    pub fn redis_keep(&self) -> usize {
        self.retain
            .limits
            .iter()
            .filter_map(|limit| match limit {
                Limit::Events(n) => Some(*n as usize),
                _ => None,
            })
            .min()
            .unwrap_or(self.history)
    }

    /// Checks the settings against each other and against what the code can represent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |msg: &str| Err(ConfigError(msg.to_string()));
        if self.threads == 0 || self.threads > 256 {
            return fail("--threads must be between 1 and 256");
        }
        if self.history == 0 {
            return fail(
                "--history must be at least 1 (the close marker of a channel is kept in it)",
            );
        }
        if self.max_channels == 0 || self.max_channels > 1024 {
            return fail("--max-channels must be between 1 and 1024");
        }
        if self.max_head < 256 || self.max_head > 1 << 20 {
            return fail("--max-head must be between 256 bytes and 1MiB");
        }
        if self.max_message == 0 || self.max_message > 64 << 20 {
            return fail("--max-message must be between 1 byte and 64MiB");
        }
        if self.max_pending < 4096 {
            return fail("--max-pending must be at least 4KiB");
        }
        if self.heartbeat.is_zero() || self.poll_timeout.is_zero() || self.stream_max_age.is_zero()
        {
            return fail("--heartbeat, --poll-timeout and --stream-max-age must be above zero");
        }
        if self.header_timeout.is_zero()
            || self.keepalive_timeout.is_zero()
            || self.write_timeout.is_zero()
        {
            return fail(
                "--header-timeout, --keepalive-timeout and --write-timeout must be above zero",
            );
        }
        if self.fsync_interval.is_zero() {
            return fail("--fsync-interval must be above zero");
        }
        if self.segment_size < 4096 || self.segment_size > 1 << 30 {
            return fail("--segment-size must be between 4KiB and 1GiB");
        }
        if self.max_conns == Some(0) || self.admin_max_conns == 0 {
            return fail("--max-conns and --admin-max-conns must be at least 1");
        }
        match (&self.tls_listen, &self.tls_cert, &self.tls_key) {
            (Some(_), Some(_), Some(_)) | (None, None, None) => {}
            (Some(_), _, _) => return fail("--tls-listen needs --tls-cert and --tls-key"),
            (None, _, _) => return fail("--tls-cert and --tls-key need --tls-listen"),
        }
        if let Some(url) = &self.redis {
            if self.data_dir.is_some() {
                return fail(
                    "--redis and --data-dir are not used together (Redis keeps the history)",
                );
            }
            if let Err(e) = crate::storage::redis_store::RedisUrl::parse(url) {
                return fail(e.0);
            }
            if self.redis_timeout.is_zero() {
                return fail("--redis-timeout must be above zero");
            }
            let by_count = |l: &Limit| matches!(l, Limit::Events(_));
            if !self.retain.limits.iter().all(by_count) {
                return fail("with --redis, --retain takes a number of events (a channel's stream in Redis is trimmed by count)");
            }
        } else if self.redis_replicas > 0 {
            return fail("--redis-replicas needs --redis");
        }
        if self.admin_tls_cert.is_some() != self.admin_tls_key.is_some() {
            return fail("--admin-tls-cert and --admin-tls-key go together");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_those_of_the_protocol_and_valid() {
        let config = Config::default();
        assert_eq!(config.listen.port(), 8080);
        assert_eq!(config.admin_listen.to_string(), "127.0.0.1:8081");
        assert_eq!(config.history, 1000);
        assert_eq!(config.max_message, 65_536);
        assert_eq!(config.max_head, 8_192);
        assert_eq!(config.max_pending, 262_144);
        config.validate().unwrap();
    }

    #[test]
    fn impossible_settings_are_refused() {
        let mut config = Config {
            history: 0,
            ..Config::default()
        };
        assert!(config.validate().is_err());
        config.history = 1;
        config.threads = 0;
        assert!(config.validate().is_err());
    }

    #[test]
    fn redis_settings_are_checked_with_a_reason() {
        let reason = |change: fn(&mut Config)| {
            let mut config = Config {
                redis: Some("redis://127.0.0.1:6379/0".into()),
                ..Config::default()
            };
            change(&mut config);
            config.validate().err().map(|e| e.to_string())
        };
        assert_eq!(reason(|_| {}), None);
        assert!(reason(|c| c.redis = Some("rediss+cluster://h:1".into())).is_some());
        assert_eq!(reason(|c| c.redis = Some("rediss://h:6380/0".into())), None);
        assert!(reason(|c| c.data_dir = Some("/tmp/x".into())).is_some());
        assert!(reason(|c| c.redis_timeout = Duration::ZERO).is_some());
        let age = reason(|c| c.retain.limits = vec![Limit::Age(Duration::from_secs(60))]);
        assert!(age.unwrap().contains("number of events"));
        assert_eq!(reason(|c| c.retain.limits = vec![Limit::Events(50)]), None);
        let replicas = reason(|c| {
            c.redis = None;
            c.redis_replicas = 1;
        });
        assert!(replicas.unwrap().contains("needs --redis"));
    }

    #[test]
    fn redis_keeps_the_smallest_retained_count_else_the_history() {
        let mut config = Config {
            history: 300,
            ..Config::default()
        };
        assert_eq!(config.redis_keep(), 300);
        config.retain.limits = vec![Limit::Events(5000), Limit::Events(2000)];
        assert_eq!(config.redis_keep(), 2000);
    }

    #[test]
    fn allow_origin_forms() {
        assert_eq!(AllowOrigin::parse("*").unwrap(), AllowOrigin::Any);
        assert_eq!(AllowOrigin::parse("none").unwrap(), AllowOrigin::None);
        assert_eq!(
            AllowOrigin::parse("https://a.example, http://b.example:8000/").unwrap(),
            AllowOrigin::List(vec![
                "https://a.example".into(),
                "http://b.example:8000".into()
            ])
        );
        assert!(AllowOrigin::parse("a.example").is_err());
    }
}
