//! `--redis`'s URL: one Redis (`redis://host:port/db`, or `rediss://` over TLS,
//! trusting the system's certificates or SSL_CERT_FILE's) or a Redis Cluster
//! (`redis+cluster://host:port,host:port`, any of its masters as seeds, whence the
//! cluster's map of slots is read).

use std::fmt;

/// Where the shared storage is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisUrl {
    /// One Redis, at this `redis://` or `rediss://` URL.
    Single(String),
    /// A Redis Cluster, known from these seeds (each a `redis://host:port` URL with
    /// the user and password given, if any).
    Cluster(Vec<String>),
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError(pub &'static str);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl RedisUrl {
    /// Reads `--redis`'s value.
    pub fn parse(url: &str) -> Result<RedisUrl, UrlError> {
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            return Ok(RedisUrl::Single(url.to_string()));
        }
        let Some(rest) = url.strip_prefix("redis+cluster://") else {
            return Err(UrlError(
                "--redis takes redis://host:port/db, rediss://host:port/db or redis+cluster://host:port,host:port (a cluster over TLS is not built yet)",
            ));
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err(UrlError(
                "a Redis Cluster has only database 0: redis+cluster:// takes no /db",
            ));
        }
        let (user, hosts) = match rest.rsplit_once('@') {
            Some((user, hosts)) => (format!("{user}@"), hosts),
            None => (String::new(), rest),
        };
        let seeds: Vec<String> = hosts
            .split(',')
            .filter(|host| !host.is_empty())
            .map(|host| format!("redis://{user}{host}"))
            .collect();
        if seeds.is_empty() {
            return Err(UrlError("redis+cluster:// names no host"));
        }
        Ok(RedisUrl::Cluster(seeds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_redis_is_taken_as_it_is() {
        for url in ["redis://127.0.0.1:6379/2", "rediss://redis.example:6380/0"] {
            assert_eq!(RedisUrl::parse(url), Ok(RedisUrl::Single(url.into())));
        }
    }

    #[test]
    fn a_cluster_gives_its_seeds_with_the_password() {
        assert_eq!(
            RedisUrl::parse("redis+cluster://:secret@10.0.0.1:7000,10.0.0.2:7001/"),
            Ok(RedisUrl::Cluster(vec![
                "redis://:secret@10.0.0.1:7000".into(),
                "redis://:secret@10.0.0.2:7001".into()
            ]))
        );
        assert_eq!(
            RedisUrl::parse("redis+cluster://127.0.0.1:7000"),
            Ok(RedisUrl::Cluster(vec!["redis://127.0.0.1:7000".into()]))
        );
    }

    #[test]
    fn other_urls_are_refused_with_a_reason() {
        for url in [
            "rediss+cluster://127.0.0.1:7000",
            "http://127.0.0.1",
            "127.0.0.1:6379",
            "redis+cluster://",
            "redis+cluster://127.0.0.1:7000/1",
        ] {
            assert!(RedisUrl::parse(url).is_err(), "{url}");
        }
    }
}
