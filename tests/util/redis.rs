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
