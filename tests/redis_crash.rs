//! Crashes of servers sharing one Redis (issue 18's crash test): three `halley`
//! processes on one `redis-server`, two publishers publishing through whichever server
//! is up, three subscribers long-polling whichever server is up and resuming on another
//! with their cursor whenever theirs goes away, while servers are killed with SIGKILL
//! at random and started again. At the end every event Redis acknowledged has reached
//! every subscriber, each subscriber's ids went up by exactly one (nothing twice,
//! nothing skipped, in order), and each ends at Redis's last id.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use halley::storage::redis_store::RedisStore;
use util::binary::{spawn, Halley};
use util::redis::RedisServer;

/// Publishes per publisher at least; they go on until the last kill is over.
const PUBLISHES_EACH: usize = 120;
const KILLS: usize = 6;
/// The whole test's bound.
const DEADLINE: Duration = Duration::from_secs(60);

/// The servers up now: (subscriber port, admin port) each.
type Up = Arc<Mutex<Vec<(SocketAddr, SocketAddr)>>>;

/// One request with `Connection: close`; `None` if the server is not there or goes
/// away before answering whole.
fn exchange(addr: SocketAddr, request: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))?
        .parse()
        .ok()?;
    (body.len() == length).then(|| (status, body.to_string()))
}

fn pick(up: &Up, seed: &mut u64) -> Option<(SocketAddr, SocketAddr)> {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let up = up.lock().unwrap();
    (!up.is_empty()).then(|| up[(*seed as usize) % up.len()])
}

fn start_node(url: &str) -> Halley {
    let node = spawn(&["--redis", url, "--poll-timeout", "1s"]);
    // Its listener may log that it listens before the start-up line: asked instead.
    util::wait_until(
        || node.stats()["admin"]["redis_connected"] == 1,
        "the server hears Redis",
    );
    node
}

#[test]
fn every_acknowledged_event_reaches_every_subscriber_once_in_order_across_kills() {
    let started = Instant::now();
    let redis = RedisServer::start();
    let url = redis.url();
    let mut nodes: Vec<Halley> = (0..3).map(|_| start_node(&url)).collect();
    let up: Up = Arc::new(Mutex::new(nodes.iter().map(|n| (n.sub, n.admin)).collect()));
    let publishing = Arc::new(AtomicBool::new(true));
    let killing = Arc::new(AtomicBool::new(true));

    let publishers: Vec<_> = (0..2u64)
        .map(|p| {
            let (up, killing) = (up.clone(), killing.clone());
            std::thread::spawn(move || {
                let mut seed = 0x9E37_79B9 + p;
                let mut acknowledged = Vec::new();
                let mut i = 0;
                while i < PUBLISHES_EACH || killing.load(Ordering::Relaxed) {
                    i += 1;
                    let body = format!("p{p}-{i}");
                    while started.elapsed() < DEADLINE {
                        let Some((_, admin)) = pick(&up, &mut seed) else {
                            continue;
                        };
                        let request = format!(
                            "POST /pub/crash HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        if let Some((201, answer)) = exchange(admin, &request) {
                            let json: serde_json::Value = serde_json::from_str(&answer).unwrap();
                            acknowledged.push(json["id"].as_u64().unwrap());
                            break;
                        }
                        // Not acknowledged (503, or the server went away): maybe
                        // stored, maybe not; published again, elsewhere.
                    }
                }
                acknowledged
            })
        })
        .collect();

    let subscribers: Vec<_> = (0..3u64)
        .map(|s| {
            let (up, publishing) = (up.clone(), publishing.clone());
            let url = url.clone();
            std::thread::spawn(move || {
                let mut seed = 0xC0FF_EE00 + s;
                let mut received: Vec<u64> = Vec::new();
                let mut cursor = 0u64;
                let mut resumes = 0;
                let mut store = RedisStore::connect(&url, Duration::from_secs(2), 10).unwrap();
                loop {
                    assert!(started.elapsed() < DEADLINE, "subscriber {s} at {cursor}");
                    if !publishing.load(Ordering::Relaxed)
                        && cursor >= store.bounds("crash").unwrap().last_id
                    {
                        return (received, resumes);
                    }
                    let Some((sub, _)) = pick(&up, &mut seed) else {
                        continue;
                    };
                    let request = format!(
                        "GET /sub/crash?t=longpoll&since={cursor} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                    );
                    let Some((200, body)) = exchange(sub, &request) else {
                        resumes += 1;
                        continue; // that server went away: resume on another
                    };
                    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
                    for frame in json["frames"].as_array().unwrap() {
                        let id = frame["id"].as_u64().unwrap_or_else(|| panic!("{frame}"));
                        assert_eq!(id, cursor + 1, "subscriber {s}: {frame} after {cursor}");
                        cursor = id;
                        received.push(id);
                    }
                    assert_eq!(json["cursor"], cursor.to_string());
                }
            })
        })
        .collect();

    // Kill a server at random now and then, and start another in its place.
    let mut seed = 0xDEAD_BEEFu64;
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(300));
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let victim = (seed as usize) % nodes.len();
        {
            let mut up = up.lock().unwrap();
            let addr = (nodes[victim].sub, nodes[victim].admin);
            up.retain(|&n| n != addr);
        }
        nodes[victim].signal(libc::SIGKILL);
        nodes[victim].wait_exit(Duration::from_secs(5));
        nodes[victim] = start_node(&url);
        up.lock()
            .unwrap()
            .push((nodes[victim].sub, nodes[victim].admin));
    }

    killing.store(false, Ordering::Relaxed);
    let mut acknowledged: Vec<u64> = publishers
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .collect();
    publishing.store(false, Ordering::Relaxed);
    acknowledged.sort_unstable();
    let published = acknowledged.len();
    acknowledged.dedup();
    assert_eq!(acknowledged.len(), published, "no id acknowledged twice");
    let last = RedisStore::connect(&url, Duration::from_secs(2), 10)
        .unwrap()
        .bounds("crash")
        .unwrap()
        .last_id;
    eprintln!("{published} publishes acknowledged, {last} events in Redis, {KILLS} servers killed");
    for (s, subscriber) in subscribers.into_iter().enumerate() {
        let (received, resumes) = subscriber.join().unwrap();
        eprintln!(
            "subscriber {s}: {} events, resumed {resumes} times on another server",
            received.len()
        );
        assert_eq!(received, (1..=last).collect::<Vec<u64>>(), "subscriber {s}");
        for id in &acknowledged {
            assert!(
                received.binary_search(id).is_ok(),
                "subscriber {s} lacks {id}"
            );
        }
    }
}
