//! A `redis-server` of the test's own on a free loopback port, with no persistence,
//! stopped (and reaped) when dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

/// A running `redis-server`.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers `PING` (bounded by `WAIT`).
    pub fn start() -> RedisServer {
        RedisServer::start_on(free_port())
    }

    /// Starts one on `port` (a restart on the same port, empty), and waits for its
    /// log to say it accepts connections (bounded by `WAIT`).
    pub fn start_on(port: u16) -> RedisServer {
        RedisServer::start_with(port, &["--bind", "127.0.0.1"])
    }

    /// Starts one on `port` with more settings (`--bind` among them).
    pub fn start_with(port: u16, settings: &[&str]) -> RedisServer {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(settings)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package)");
        let stdout = child.stdout.take().unwrap();
        let (sender, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("Ready to accept connections") {
                    let _ = sender.send(());
                }
            }
        });
        let server = RedisServer { child, port };
        ready
            .recv_timeout(super::WAIT)
            .unwrap_or_else(|_| panic!("redis-server did not start on {port}"));
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A plain connection, for what a test checks in Redis itself.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Freezes it (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        // SAFETY: a signal to our own child, which has not been reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGSTOP) };
    }

    /// Lets a paused one go on (SIGCONT).
    pub fn resume(&self) {
        // SAFETY: as in `pause`.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGCONT) };
    }

    /// Stops it at once (as a crash would) and waits for it to exit.
    pub fn kill(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis Cluster of the test's own: masters only, each a `redis-server` on free
/// loopback ports (its client port and its cluster bus port), made into a cluster with
/// `redis-cli --cluster create`. A node failing is noticed within a second
/// (`cluster-node-timeout`), and the other shards go on serving
/// (`cluster-require-full-coverage no`).
pub struct RedisCluster {
    pub nodes: Vec<Option<RedisServer>>,
    /// Each node's client port and settings, kept for a restart.
    ports: Vec<u16>,
    settings: Vec<Vec<String>>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    /// Starts `masters` nodes, joins them, and waits until every node says the
    /// cluster is whole (bounded by `WAIT`).
    pub fn start(masters: usize) -> RedisCluster {
        let dir = std::env::temp_dir().join(format!(
            "halley-redis-cluster-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            ports: Vec::new(),
            settings: Vec::new(),
            dir,
        };
        for _ in 0..masters {
            let port = free_port();
            let settings: Vec<String> = [
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &free_port().to_string(),
                "--cluster-config-file",
                &format!("nodes-{port}.conf"),
                "--cluster-node-timeout",
                "1000",
                "--cluster-require-full-coverage",
                "no",
                "--dir",
                cluster.dir.to_str().unwrap(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let refs: Vec<&str> = settings.iter().map(String::as_str).collect();
            cluster
                .nodes
                .push(Some(RedisServer::start_with(port, &refs)));
            cluster.ports.push(port);
            cluster.settings.push(settings);
        }
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli (Debian's redis-tools package)");
        assert!(status.success(), "redis-cli --cluster create failed");
        cluster.wait_whole();
        cluster
    }

    /// Waits until every node up says the cluster is whole.
    pub fn wait_whole(&self) {
        for node in self.nodes.iter().flatten() {
            let mut connection = node.connection();
            super::wait_until(
                || {
                    let info: String = redis::cmd("CLUSTER")
                        .arg("INFO")
                        .query(&mut connection)
                        .unwrap();
                    info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
                },
                "every node says the cluster is whole",
            );
        }
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// Node `n`'s own connection.
    pub fn connection(&self, n: usize) -> redis::Connection {
        self.nodes[n].as_ref().expect("node up").connection()
    }

    /// The slot of `key`, as Redis computes it (`CLUSTER KEYSLOT`).
    pub fn slot(&self, key: &str) -> u16 {
        let n = self.nodes.iter().position(Option::is_some).unwrap();
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.connection(n))
            .unwrap()
    }

    /// The index of the node that holds `slot`, from `CLUSTER SLOTS`.
    pub fn owner(&self, slot: u16) -> usize {
        let (_, _, n) = self
            .ranges()
            .into_iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .expect("a master holds the slot");
        n
    }

    /// The slots node `n` holds, from `CLUSTER SLOTS`.
    pub fn slots_of(&self, n: usize) -> Vec<u16> {
        self.ranges()
            .into_iter()
            .filter(|(_, _, owner)| *owner == n)
            .flat_map(|(start, end, _)| start..=end)
            .collect()
    }

    /// Each range of slots and the index of the node holding it, as the first node
    /// up says (`CLUSTER SLOTS`).
    fn ranges(&self) -> Vec<(u16, u16, usize)> {
        let n = self.nodes.iter().position(Option::is_some).unwrap();
        let ports = &self.ports;
        redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query::<Vec<redis::Value>>(&mut self.connection(n))
            .unwrap()
            .into_iter()
            .map(|range| {
                let redis::Value::Array(parts) = range else {
                    panic!("a range")
                };
                let start: u16 = redis::from_redis_value(parts[0].clone()).unwrap();
                let end: u16 = redis::from_redis_value(parts[1].clone()).unwrap();
                let redis::Value::Array(master) = parts[2].clone() else {
                    panic!("a master")
                };
                let port: u16 = redis::from_redis_value(master[1].clone()).unwrap();
                (start, end, ports.iter().position(|p| *p == port).unwrap())
            })
            .collect()
    }

    /// Stops node `n` at once, as a crash would.
    pub fn kill(&mut self, n: usize) {
        self.nodes[n].take().expect("node up").kill();
    }

    /// Starts node `n` again on its ports, empty (no persistence) but with its
    /// cluster configuration (its slots), and waits until the cluster is whole.
    pub fn restart(&mut self, n: usize) {
        let port = self.ports[n];
        let refs: Vec<&str> = self.settings[n].iter().map(String::as_str).collect();
        self.nodes[n] = Some(RedisServer::start_with(port, &refs));
        self.wait_whole();
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
