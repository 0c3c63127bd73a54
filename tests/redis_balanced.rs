//! Three Halley servers on one Redis behind nginx, with the configuration of
//! `docs/examples/three-nodes.nginx.conf` (ports changed only): a client whose every
//! request is a new connection, so round robin bounces it between the servers,
//! resumes with its cursor each time and gets every event exactly once, in order,
//! while events are published through each server in turn.

mod util;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use util::binary::{spawn, Halley};
use util::redis::RedisServer;
use util::{wait_until, Client};

/// nginx on the docs' configuration, stopped when dropped.
struct Nginx {
    child: Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts nginx with the docs' file, its ports replaced by `port` and the servers'.
fn nginx_in_front_of(servers: &[&Halley]) -> Nginx {
    let conf = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/examples/three-nodes.nginx.conf"
    ))
    .unwrap();
    let port = free_port();
    let mut conf = conf.replace("127.0.0.1:8000", &format!("127.0.0.1:{port}"));
    for (documented, server) in ["127.0.0.1:8080", "127.0.0.1:8082", "127.0.0.1:8084"]
        .iter()
        .zip(servers)
    {
        conf = conf.replace(documented, &server.sub.to_string());
    }
    let dir = std::env::temp_dir().join(format!("halley-nginx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&dir)
        .args(["-c", "nginx.conf", "-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (Debian's nginx package)");
    let nginx = Nginx { child, dir, port };
    wait_until(
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "nginx listens",
    );
    nginx
}

#[test]
fn a_client_bounced_between_servers_gets_every_event_once_in_order() {
    let redis = RedisServer::start();
    let url = redis.url();
    let servers: Vec<Halley> = (0..3)
        .map(|_| spawn(&["--redis", &url, "--poll-timeout", "1s"]))
        .collect();
    for server in &servers {
        wait_until(
            || server.stats()["admin"]["redis_connected"] == 1,
            "the server hears Redis",
        );
    }
    let nginx = nginx_in_front_of(&servers.iter().collect::<Vec<_>>());
    let front: std::net::SocketAddr = format!("127.0.0.1:{}", nginx.port).parse().unwrap();

    let mut cursor = 0u64;
    let mut received = Vec::new();
    for round in 0..30u64 {
        // One event through each server in turn, then a poll through the front with
        // the cursor, on a new connection (the next server of the round robin).
        let admin = servers[(round % 3) as usize].admin;
        let body = format!("event {round}");
        let raw = format!(
            "POST /pub/bounced HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(Client::connect(admin).exchange(raw.as_bytes()).status, 201);
        let want = round + 1;
        while cursor < want {
            let answer = Client::connect(front).exchange(
                format!(
                    "GET /sub/bounced?t=longpoll&since={cursor} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            );
            assert_eq!(answer.status, 200, "{}", answer.text());
            for frame in answer.json()["frames"].as_array().unwrap() {
                let id = frame["id"].as_u64().unwrap_or_else(|| panic!("{frame}"));
                assert_eq!(id, cursor + 1, "{frame} after {cursor}");
                cursor = id;
                received.push(frame["data"].as_str().unwrap().to_string());
            }
        }
    }
    let expected: Vec<String> = (0..30).map(|r| format!("event {r}")).collect();
    assert_eq!(received, expected);
    // Every server answered some of the polls: the client was bounced.
    for server in &servers {
        let requests = server.stats()["requests"].as_u64().unwrap();
        assert!(requests >= 5, "a server answered {requests} requests");
    }
    drop(nginx);
}
