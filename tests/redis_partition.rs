//! A network partition between one server and Redis (issue 18's Jepsen-style test):
//! the server runs in a network namespace of the test's own, joined to the rest by a
//! veth pair (`ip netns`, from iproute2), and the link is cut while another server
//! publishes. Redis, whose output buffer for subscribers is made small here, drops the
//! cut-off server's subscription; once the link is back, that server notices from the
//! ids that it missed events, reads them from Redis, and its subscriber gets every
//! one, in order, once. Only the namespace's own addresses are used.

mod util;

use std::process::Command;
use std::time::Duration;

use util::binary::{spawn_command, Halley};
use util::redis::{free_port, RedisServer};
use util::{start_with, wait_until, Client};

/// A network namespace with a veth pair to the test's: `10.213.N.4K+1` on this side,
/// `10.213.N.4K+2` inside (N from the process id, K the test's own number). Deleted
/// (with its link) when dropped.
struct Namespace {
    name: String,
    /// The veth end on this side, which `cut` and `heal` take down and up.
    outside: String,
    here: String,
    there: String,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip")
        .args(args)
        .status()
        .expect("ip (iproute2)");
    assert!(status.success(), "ip {}", args.join(" "));
}

impl Namespace {
    fn new(k: u32) -> Namespace {
        let n = std::process::id() % 250;
        let name = format!("halley-part-{}-{k}", std::process::id());
        let (outside, inside) = (format!("hpo{n}x{k}"), format!("hpi{n}x{k}"));
        let (here, there) = (
            format!("10.213.{n}.{}", 4 * k + 1),
            format!("10.213.{n}.{}", 4 * k + 2),
        );
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        let _ = Command::new("ip").args(["link", "del", &outside]).status();
        ip(&["netns", "add", &name]);
        let namespace = Namespace {
            name: name.clone(),
            outside: outside.clone(),
            here: here.clone(),
            there: there.clone(),
        };
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside,
        ]);
        ip(&["link", "set", &inside, "netns", &name]);
        ip(&["addr", "add", &format!("{here}/30"), "dev", &outside]);
        ip(&["link", "set", &outside, "up"]);
        let inside_ip = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &name, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        inside_ip(&["addr", "add", &format!("{there}/30"), "dev", &inside]);
        inside_ip(&["link", "set", &inside, "up"]);
        inside_ip(&["link", "set", "lo", "up"]);
        namespace
    }

    /// Cuts the link: packets are lost, nothing is refused.
    fn cut(&self) {
        ip(&["link", "set", &self.outside, "down"]);
    }

    fn heal(&self) {
        ip(&["link", "set", &self.outside, "up"]);
    }

    /// `halley` with `args`, inside, listening on the namespace's address.
    fn halley(&self, args: &[&str]) -> Halley {
        let mut command = Command::new("ip");
        let there = self.there.clone();
        command
            .args(["netns", "exec", &self.name])
            .arg(env!("CARGO_BIN_EXE_halley"))
            .args(["--listen", &format!("{there}:0")])
            .args(["--admin-listen", &format!("{there}:0")])
            .args(["--threads", "2"])
            .args(args);
        spawn_command(command)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.outside])
            .status();
    }
}

/// A server in `namespace` on the Redis at the host's end of the link (`port`),
/// once it hears Redis.
fn listening_in(namespace: &Namespace, port: u16) -> Halley {
    let server = namespace.halley(&[
        "--redis",
        &format!("redis://{}:{port}/0", namespace.here),
        "--redis-timeout",
        "500ms",
    ]);
    wait_until(
        || server.stats()["admin"]["redis_connected"] == 1,
        "the server in the namespace hears Redis",
    );
    server
}

/// A stream on `server` at `path`, once the server counts it.
fn stream_on(server: &Halley, path: &str) -> Client {
    let mut stream = Client::connect(server.sub);
    stream.get(path);
    assert_eq!(stream.head().status, 200);
    stream.prelude("stream");
    wait_until(
        || server.stats()["subscribers"] == 1,
        "a subscriber on the server to be cut off",
    );
    stream
}

#[test]
fn a_server_cut_off_from_redis_gets_back_every_event_it_missed() {
    let namespace = Namespace::new(0);
    let port = free_port();
    let bind = format!("127.0.0.1 {}", namespace.here);
    // A subscriber Redis cannot write to for a second, or that owes it 4 KiB, is
    // dropped (Redis's own rule, made small).
    let redis = RedisServer::start_with(
        port,
        &[
            "--bind",
            &bind,
            // Reached from the namespace, which is not loopback; only the test's
            // own addresses are bound.
            "--protected-mode",
            "no",
            "--client-output-buffer-limit",
            "pubsub 4kb 2kb 1",
        ],
    );
    let publisher = start_with(|c| {
        c.redis = Some(redis.url());
        c.redis_timeout = Duration::from_millis(500);
    });
    let cut_off = listening_in(&namespace, port);
    let mut stream = stream_on(&cut_off, "/sub/part?t=stream");
    publisher.publish_ok("part", "before");
    assert!(stream.chunk_text().contains("\"id\":1,"));

    namespace.cut();
    // More than the kernel's send buffer and Redis's limit hold: Redis drops the
    // subscription it cannot write to.
    let body = "x".repeat(200);
    for _ in 0..300 {
        publisher.publish_ok("part", &body);
    }
    namespace.heal();

    // Every event it missed, in order, once: 2 to 301.
    for id in 2..=301 {
        let line = stream.chunk_text();
        assert!(
            line.starts_with(&format!("{{\"ch\":\"part\",\"id\":{id},")),
            "event {id}: {line}"
        );
    }
    if !stream.nothing_within(Duration::from_millis(100)) {
        panic!("nothing twice, but: {:?}", stream.chunk_text());
    }
    // Redis dropped its subscription, and it came back by itself.
    assert!(
        cut_off.stats()["admin"]["redis_reconnects"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[test]
fn a_silent_partition_is_noticed_and_nothing_is_missed() {
    let namespace = Namespace::new(1);
    let port = free_port();
    let bind = format!("127.0.0.1 {}", namespace.here);
    // Redis's own limits are left as they are: it never drops the cut-off server,
    // so only the listener's PING can tell that the link is gone.
    let redis = RedisServer::start_with(port, &["--bind", &bind, "--protected-mode", "no"]);
    let publisher = start_with(|c| c.redis = Some(redis.url()));
    let cut_off = listening_in(&namespace, port);
    // With a cursor (0: everything), so that whatever the server could or could not
    // ask Redis before the cut, the subscriber is owed events 1 to 3.
    let mut stream = stream_on(&cut_off, "/sub/quiet?t=stream&since=0");
    namespace.cut();
    for n in 1..=3 {
        publisher.publish_ok("quiet", &format!("q{n}"));
    }
    // Cut for longer than the listener's silence (2 s) and its PING's timeout: the
    // server's admin port is behind the cut too, so the test waits on its own clock.
    std::thread::sleep(Duration::from_secs(3));
    namespace.heal();
    for n in 1..=3 {
        let line = stream.chunk_text();
        assert_eq!(
            line,
            format!("{{\"ch\":\"quiet\",\"id\":{n},\"data\":\"q{n}\"}}\n")
        );
    }
    wait_until(
        || {
            cut_off.stats()["admin"]["redis_reconnects"]
                .as_u64()
                .unwrap()
                >= 1
        },
        "the server noticed the silent link",
    );
}
