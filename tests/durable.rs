//! `--data-dir` with the real binary: every event answered `201` survives `kill -9`
//! byte for byte with its id, and no id is given twice; torn and damaged tails
//! written here are cut or reported; a directory that cannot be trusted stops the
//! start and is left as it was; retention ends in `gap` frames; a cursor older than
//! the in-memory history is caught up from disk on every transport.

mod util;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use util::binary::{self, Halley};
use util::{wait_until, Client, WAIT};

/// A fresh directory under the target's temporary directory.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("durable-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn start(dir: &Path, extra: &[&str]) -> Halley {
    let mut args = vec!["--data-dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    binary::spawn(&args)
}

/// A publisher on one keep-alive connection; `None` once the server is gone.
struct Publisher {
    stream: BufReader<TcpStream>,
}

impl Publisher {
    fn connect(admin: SocketAddr) -> Option<Publisher> {
        let stream = TcpStream::connect_timeout(&admin, WAIT).ok()?;
        stream.set_nodelay(true).ok()?;
        stream.set_read_timeout(Some(WAIT)).ok()?;
        Some(Publisher {
            stream: BufReader::new(stream),
        })
    }

    /// Publishes `body`; the id if the answer was `201`.
    fn publish(&mut self, channel: &str, body: &str) -> Option<u64> {
        let request = format!(
            "POST /pub/{channel} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes()).ok()?;
        let mut status = String::new();
        self.stream.read_line(&mut status).ok()?;
        let mut length = 0;
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().ok()?;
            }
        }
        let mut answer = vec![0; length];
        self.stream.read_exact(&mut answer).ok()?;
        if !status.starts_with("HTTP/1.1 201") {
            return None;
        }
        let json: serde_json::Value = serde_json::from_slice(&answer).ok()?;
        json["id"].as_u64()
    }
}

/// What a subscriber sees of a channel from the start: `data` by id (`None` for a close
/// marker), and the gaps.
#[derive(Debug, Default)]
struct Seen {
    events: BTreeMap<u64, Option<String>>,
    gaps: Vec<(u64, u64)>,
}

/// Reads everything `channel` holds by polling from `since=0` until the cursor reaches
/// the channel's last id.
fn read_all(halley: &Halley, channel: &str) -> Seen {
    let info = Client::connect(halley.admin).exchange(
        format!("GET /channels/{channel} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    let mut seen = Seen::default();
    if info.status == 404 {
        return seen;
    }
    let last_id = info.json()["last_id"].as_u64().unwrap();
    let mut cursor = 0;
    let mut client = Client::connect(halley.sub);
    let deadline = Instant::now() + WAIT;
    while cursor < last_id {
        assert!(
            Instant::now() < deadline,
            "reading {channel} stalled at {cursor}"
        );
        let answer = client.exchange(
            format!("GET /sub/{channel}?t=poll&since={cursor} HTTP/1.1\r\nHost: t\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        let json = answer.json();
        for frame in json["frames"].as_array().unwrap() {
            if let Some(gap) = frame["gap"].as_array() {
                seen.gaps
                    .push((gap[0].as_u64().unwrap(), gap[1].as_u64().unwrap()));
            } else {
                let id = frame["id"].as_u64().unwrap();
                let data = frame["data"].as_str().map(str::to_string);
                assert!(
                    seen.events.insert(id, data).is_none(),
                    "id {id} delivered twice"
                );
            }
        }
        cursor = json["cursor"].as_str().unwrap().parse().unwrap();
    }
    seen
}

/// A payload that is unique, with bytes JSON and HTML care about, and sometimes
/// larger than a block.
fn payload(round: usize, thread: usize, n: usize) -> String {
    let mut body = format!("r{round} t{thread} n{n} \"quoted\" \\ </script> é ✓ ");
    let extra = (round * 7919 + thread * 104_729 + n * 1_299_709) % 9000;
    body.push_str(&"x".repeat(if n.is_multiple_of(5) {
        extra
    } else {
        extra % 300
    }));
    body
}

const CHANNELS: [&str; 3] = ["crash-a", "crash.b", "crash:c"];

/// Publishes from four threads in bursts, kills the server at a random moment, and
/// after each restart checks every acknowledged event, `rounds` times.
fn survive_kill_9(name: &str, fsync: &str, rounds: usize) {
    let dir = fresh_dir(name);
    let args = [
        "--fsync",
        fsync,
        "--history",
        "20",
        "--segment-size",
        "16KiB",
    ];
    // (channel, id) -> payload of every 201.
    let mut acked: BTreeMap<(usize, u64), String> = BTreeMap::new();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (rounds as u64);
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    for round in 0..=rounds {
        let halley = start(&dir, &args);
        verify(&halley, &acked, round);
        if round == rounds {
            break;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let publishers: Vec<_> = (0..4)
            .map(|thread| {
                let admin = halley.admin;
                let stop = stop.clone();
                let answered = answered.clone();
                std::thread::spawn(move || {
                    let mut acked = Vec::new();
                    let Some(mut publisher) = Publisher::connect(admin) else {
                        return acked;
                    };
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        // A burst, then a breath.
                        for _ in 0..1 + n % 17 {
                            let channel = (thread + n) % CHANNELS.len();
                            let body = payload(round, thread, n);
                            n += 1;
                            match publisher.publish(CHANNELS[channel], &body) {
                                Some(id) => {
                                    acked.push((channel, id, body));
                                    answered.fetch_add(1, Ordering::Relaxed);
                                }
                                None => return acked,
                            }
                        }
                        std::thread::yield_now();
                    }
                    acked
                })
            })
            .collect();
        // The crash comes at a random moment: after a random number of answers, while
        // the four publishers are in the middle of their bursts.
        let target = 1 + random(400);
        wait_until(
            || answered.load(Ordering::Relaxed) >= target,
            &format!("{target} answers"),
        );
        let mut halley = halley;
        halley.signal(libc::SIGKILL);
        halley.wait_exit(WAIT);
        stop.store(true, Ordering::Relaxed);
        let mut this_round = 0;
        for publisher in publishers {
            for (channel, id, body) in publisher.join().unwrap() {
                this_round += 1;
                if let Some(earlier) = acked.insert((channel, id), body.clone()) {
                    panic!(
                        "round {round}: id {id} of {} was acknowledged twice: {earlier:?} and {body:?}",
                        CHANNELS[channel]
                    );
                }
            }
        }
        assert!(this_round > 0, "round {round}: nothing was acknowledged");
    }
}

/// Every acknowledged event is there with its id and bytes; ids run without a hole.
fn verify(halley: &Halley, acked: &BTreeMap<(usize, u64), String>, round: usize) {
    for (channel, name) in CHANNELS.iter().enumerate() {
        let seen = read_all(halley, name);
        assert!(
            seen.gaps.is_empty(),
            "round {round}: {name} has gaps {:?}",
            seen.gaps
        );
        let ids: Vec<u64> = seen.events.keys().copied().collect();
        assert!(
            ids.iter().enumerate().all(|(i, &id)| id == i as u64 + 1),
            "round {round}: {name}'s ids have holes"
        );
        for ((_, id), body) in acked.range((channel, 0)..(channel + 1, 0)) {
            match seen.events.get(id) {
                Some(Some(data)) => assert!(data == body, "round {round}: {name} {id} changed"),
                _ => panic!("round {round}: {name} lost acknowledged event {id}"),
            }
        }
    }
}

#[test]
fn acknowledged_events_survive_kill_9_with_fsync_always() {
    survive_kill_9("always", "always", 20);
}

#[test]
fn acknowledged_events_survive_kill_9_with_fsync_batch_and_never() {
    survive_kill_9("batch", "batch", 4);
    survive_kill_9("never", "never", 4);
}

/// The segment files of `channel`, oldest first.
fn segments(dir: &Path, channel: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("channels").join(channel))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn publish_many(halley: &Halley, channel: &str, count: usize, body: impl Fn(usize) -> String) {
    let mut publisher = Publisher::connect(halley.admin).unwrap();
    for n in 1..=count {
        assert_eq!(publisher.publish(channel, &body(n)), Some(n as u64));
    }
}

fn kill(mut halley: Halley) {
    halley.signal(libc::SIGKILL);
    halley.wait_exit(WAIT);
}

/// Stops Halley cleanly, which writes every segment and deletes the write-ahead log,
/// so that the segments alone are recovered (a log left behind would be replayed
/// over what a test tears or damages, as the last test here shows).
fn stop_cleanly(mut halley: Halley, dir: &Path) {
    halley.signal(libc::SIGTERM);
    assert!(halley.wait_exit(WAIT).success());
    assert_eq!(
        wal_files(dir),
        Vec::<String>::new(),
        "a clean stop leaves no log"
    );
}

/// The write-ahead log's files.
fn wal_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_clean_stop_leaves_segments_that_need_no_replay_in_every_mode() {
    for fsync in ["always", "batch", "never"] {
        let dir = fresh_dir(&format!("clean-{fsync}"));
        let halley = start(&dir, &["--fsync", fsync]);
        publish_many(&halley, "a", 40, |n| format!("a{n}"));
        publish_many(&halley, "b", 3, |n| format!("b{n}"));
        assert!(!wal_files(&dir).is_empty(), "{fsync}: a log while running");
        stop_cleanly(halley, &dir);
        let halley = start(&dir, &["--fsync", fsync]);
        for (channel, count) in [("a", 40), ("b", 3)] {
            let seen = read_all(&halley, channel);
            let expected: BTreeMap<u64, Option<String>> = (1..=count)
                .map(|n| (n, Some(format!("{channel}{n}"))))
                .collect();
            assert_eq!(seen.events, expected, "{fsync}");
            assert!(seen.gaps.is_empty(), "{fsync}");
        }
        let mut publisher = Publisher::connect(halley.admin).unwrap();
        assert_eq!(publisher.publish("a", "after"), Some(41), "{fsync}");
    }
}

#[test]
fn a_torn_tail_is_cut_and_its_id_given_again() {
    let dir = fresh_dir("torn");
    let halley = start(&dir, &[]);
    publish_many(&halley, "t", 10, |n| format!("small {n}"));
    let mut publisher = Publisher::connect(halley.admin).unwrap();
    assert_eq!(publisher.publish("t", &"L".repeat(10_000)), Some(11));
    stop_cleanly(halley, &dir);

    // Tear the last record (it spans three blocks) as a crash in its write would.
    let segment = segments(&dir, "t").pop().unwrap();
    let length = std::fs::metadata(&segment).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(length - 3000).unwrap();
    // And garbage after it, as a write that reached the disk only in part.
    drop(file);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    file.write_all(&[0xA5; 700]).unwrap();
    drop(file);

    let halley = start(&dir, &[]);
    let seen = read_all(&halley, "t");
    assert_eq!(seen.events.len(), 10);
    assert_eq!(seen.events[&10].as_deref(), Some("small 10"));
    let mut publisher = Publisher::connect(halley.admin).unwrap();
    assert_eq!(publisher.publish("t", "after the cut"), Some(11));
    kill(halley);
    let halley = start(&dir, &[]);
    let seen = read_all(&halley, "t");
    assert_eq!(seen.events[&11].as_deref(), Some("after the cut"));
    assert_eq!(halley.stats()["admin"]["damaged_blocks"], 0);
}

#[test]
fn a_damaged_block_among_good_ones_is_reported_and_not_served() {
    let dir = fresh_dir("damaged");
    let halley = start(&dir, &["--history", "3"]);
    publish_many(&halley, "d", 300, |n| {
        format!("event {n} {}", "p".repeat(80))
    });
    stop_cleanly(halley, &dir);
    let segment = segments(&dir, "d").pop().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[4096 + 200] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();

    let halley = start(&dir, &["--history", "3"]);
    assert!(halley.stats()["admin"]["damaged_blocks"].as_u64().unwrap() >= 1);
    let seen = read_all(&halley, "d");
    assert_eq!(seen.gaps.len(), 1, "{:?}", seen.gaps);
    let (from, to) = seen.gaps[0];
    assert!(
        from > 1 && to < 300 && to - from < 50,
        "the gap is one block's worth: {from}..{to}"
    );
    for id in 1..=300u64 {
        let inside = (from..=to).contains(&id);
        match seen.events.get(&id) {
            Some(Some(data)) => {
                assert!(!inside);
                assert!(data.starts_with(&format!("event {id} ")));
            }
            _ => assert!(inside, "event {id} outside the damage is missing"),
        }
    }
}

#[test]
fn lost_or_damaged_segment_writes_are_made_good_from_the_write_ahead_log() {
    let dir = fresh_dir("wal");
    let halley = start(&dir, &["--history", "3"]);
    let body = |n: usize| format!("event {n} {}", "q".repeat(n % 5 * 3000));
    publish_many(&halley, "w", 300, body);
    publish_many(&halley, "v", 20, |n| format!("v{n}"));
    kill(halley);
    // What a machine crash can do to writes that were not synced: the segment of w
    // cut short with garbage after, a block in it damaged, channel v never created.
    let segment = segments(&dir, "w").pop().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[4096 + 200] ^= 0x40;
    bytes.truncate(bytes.len() / 2);
    bytes.extend_from_slice(&[0xA5; 700]);
    std::fs::write(&segment, &bytes).unwrap();
    std::fs::remove_dir_all(dir.join("channels/v")).unwrap();

    let halley = start(&dir, &["--history", "3"]);
    let seen = read_all(&halley, "w");
    assert_eq!(seen.gaps, []);
    assert_eq!(seen.events.len(), 300);
    for (id, data) in &seen.events {
        assert_eq!(
            data.as_deref(),
            Some(body(*id as usize).as_str()),
            "event {id}"
        );
    }
    let seen = read_all(&halley, "v");
    assert_eq!(seen.events.get(&20), Some(&Some("v20".to_string())));
    assert_eq!(seen.events.len(), 20);
    assert_eq!(halley.stats()["admin"]["damaged_blocks"], 0);
    let mut publisher = Publisher::connect(halley.admin).unwrap();
    assert_eq!(publisher.publish("w", "next"), Some(301));
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            files.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    files
}

/// Runs the binary on `dir` and expects it to refuse to start, saying `why`.
fn refuses(dir: &Path, why: &str) {
    let before = snapshot(dir);
    let output = Command::new(env!("CARGO_BIN_EXE_halley"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started on {}", dir.display());
    assert!(
        stderr.contains(why) && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    assert_eq!(snapshot(dir), before, "a refused directory was changed");
}

#[test]
fn a_directory_that_cannot_be_trusted_is_refused_and_left_alone() {
    let dir = fresh_dir("untrusted");
    let halley = start(&dir, &["--segment-size", "4KiB"]);
    publish_many(&halley, "u", 100, |n| {
        format!("event {n} {}", "q".repeat(60))
    });
    kill(halley);

    std::fs::write(dir.join("FORMAT"), "halley data directory, format 9\n").unwrap();
    refuses(&dir, "newer Halley");
    std::fs::write(dir.join("FORMAT"), "something else\n").unwrap();
    refuses(&dir, "not a Halley format header");
    std::fs::write(dir.join("FORMAT"), "halley data directory, format 1\n").unwrap();

    let first = segments(&dir, "u").remove(0);
    let good = std::fs::read(&first).unwrap();
    let mut bad = good.clone();
    bad[20] ^= 0xFF; // inside the header record
    std::fs::write(&first, &bad).unwrap();
    refuses(&dir, "segment header");
    std::fs::write(&first, &good).unwrap();

    let foreign = fresh_dir("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "not ours").unwrap();
    refuses(&foreign, "not a Halley data directory");

    // Put back, it starts and has everything.
    let halley = start(&dir, &["--segment-size", "4KiB"]);
    assert_eq!(read_all(&halley, "u").events.len(), 100);
}

#[test]
fn retention_deletes_old_segments_and_subscribers_get_a_gap() {
    let dir = fresh_dir("retain");
    let args = ["--history", "3", "--segment-size", "4KiB", "--retain", "40"];
    let halley = start(&dir, &args);
    publish_many(&halley, "r", 200, |n| {
        format!("event {n} {}", "r".repeat(60))
    });
    let first_id = || {
        Client::connect(halley.admin)
            .exchange(b"GET /channels/r HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .json()["first_id"]
            .as_u64()
            .unwrap()
    };
    wait_until(|| first_id() > 1, "retention to delete a segment");
    let first = first_id();
    assert!(
        first <= 200 - 40 + 1,
        "at least 40 events are kept, first id {first}"
    );
    assert!(
        halley.stats()["admin"]["segments_deleted"]
            .as_u64()
            .unwrap()
            >= 1
    );

    // A cursor in what was deleted: a gap, then every event kept, from disk and memory.
    let mut sse = Client::connect(halley.sub);
    sse.get("/sub/r?t=sse&since=5");
    assert_eq!(sse.head().status, 200);
    let text = String::from_utf8(sse.read_through(b"\"id\":200,")).unwrap();
    let gap = format!("data: {{\"ch\":\"r\",\"gap\":[6,{}]}}", first - 1);
    assert!(text.contains(&gap), "{gap} in {text}");
    let ids: Vec<u64> = text
        .split("\"id\":")
        .skip(1)
        .map(|rest| rest.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (first..=200).collect::<Vec<_>>());

    // `since=0` is whatever is kept, without a gap; the same after a restart.
    kill(halley);
    let halley = start(&dir, &args);
    let seen = read_all(&halley, "r");
    assert!(seen.gaps.is_empty());
    assert_eq!(seen.events.keys().next(), Some(&first));
    assert_eq!(seen.events.len() as u64, 200 - first + 1);
}

#[test]
fn an_old_cursor_is_caught_up_from_disk_on_every_transport() {
    let dir = fresh_dir("catchup");
    let halley = start(&dir, &["--history", "5"]);
    publish_many(&halley, "c", 400, |n| format!("event {n}"));
    let ids_in = |text: &str| -> Vec<u64> {
        text.split("\"id\":")
            .skip(1)
            .map(|rest| rest.split([',', '}']).next().unwrap().parse().unwrap())
            .collect()
    };
    for transport in ["stream", "sse", "iframe&callback=cb"] {
        let mut client = Client::connect(halley.sub);
        client.get(&format!("/sub/c?t={transport}&since=10"));
        assert_eq!(client.head().status, 200);
        let text = String::from_utf8(client.read_through(b"\"id\":400,")).unwrap();
        assert_eq!(ids_in(&text), (11..=400).collect::<Vec<_>>(), "{transport}");
    }
    // Long-polls, answer after answer.
    let mut client = Client::connect(halley.sub);
    let mut cursor = 10;
    let mut ids = Vec::new();
    while cursor < 400 {
        let answer = client.exchange(
            format!("GET /sub/c?t=longpoll&since={cursor} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        );
        let text = answer.text();
        ids.extend(ids_in(&text));
        cursor = answer.json()["cursor"].as_str().unwrap().parse().unwrap();
    }
    assert_eq!(ids, (11..=400).collect::<Vec<_>>());
    assert!(halley.stats()["admin"]["catchup_reads"].as_u64().unwrap() >= 4);
}

#[test]
fn a_long_catch_up_arrives_whole_and_in_order_and_ends_at_stream_max_bytes() {
    let dir = fresh_dir("long-catchup");
    // 300 events of about 1 KiB: the catch-up takes several reads from disk, each
    // written in several gathered writes.
    let body = |n: usize| format!("event {n} {}", "x".repeat(1000 + n % 7));
    let frames_of = |raw: Vec<u8>| -> Vec<(u64, String)> {
        String::from_utf8(raw)
            .unwrap()
            .split("\r\n")
            .filter(|line| line.starts_with("{\"ch\"") && line.ends_with("}\n"))
            .map(|line| {
                let frame: serde_json::Value = serde_json::from_str(line).unwrap();
                let id = frame["id"].as_u64().unwrap();
                (id, frame["data"].as_str().unwrap().to_string())
            })
            .collect()
    };
    let expected = |ids: std::ops::RangeInclusive<u64>| -> Vec<(u64, String)> {
        ids.map(|n| (n, body(n as usize))).collect()
    };
    let halley = start(&dir, &["--history", "5"]);
    publish_many(&halley, "big", 300, body);
    let mut client = Client::connect(halley.sub);
    client.get("/sub/big?t=stream&since=0");
    assert_eq!(client.head().status, 200);
    let frames = frames_of(client.read_through(b"\"id\":300,"));
    // The last frame is cut at its id; the rest are whole.
    assert_eq!(frames.len(), 299, "every event but the last, whole");
    assert_eq!(frames, expected(1..=299));
    assert!(halley.stats()["admin"]["catchup_reads"].as_u64().unwrap() >= 3);
    kill(halley);

    // A stream that reaches --stream-max-bytes in the middle of catching up ends
    // after whole frames, each once and in order, with the last chunk.
    let halley = start(&dir, &["--history", "5", "--stream-max-bytes", "150KiB"]);
    let mut client = Client::connect(halley.sub);
    client.get("/sub/big?t=stream&since=0");
    assert_eq!(client.head().status, 200);
    let frames = frames_of(client.read_through(b"\r\n0\r\n\r\n"));
    let last = frames.last().unwrap().0;
    assert!((140..300).contains(&last), "ended after {last}");
    assert_eq!(frames, expected(1..=last));
}

#[test]
fn closed_state_and_ids_survive_a_restart() {
    let dir = fresh_dir("closed");
    let halley = start(&dir, &[]);
    publish_many(&halley, "x", 3, |n| format!("m{n}"));
    let close = Client::connect(halley.admin).exchange(
        b"POST /close/x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(close.json()["id"], 4);
    kill(halley);
    let halley = start(&dir, &[]);
    let info = Client::connect(halley.admin)
        .exchange(b"GET /channels/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .json();
    assert_eq!(
        (info["last_id"].as_u64(), info["closed"].as_bool()),
        (Some(4), Some(true))
    );
    let refused = Client::connect(halley.admin).exchange(
        b"POST /pub/x HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nConnection: close\r\n\r\nz",
    );
    assert_eq!(refused.status, 409);
    let done = Client::connect(halley.sub)
        .exchange(b"GET /sub/x?t=poll&since=4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(done.status, 204);
    let seen = read_all(&halley, "x");
    assert_eq!(seen.events[&4], None, "the close marker is there");
    assert_eq!(seen.events[&2].as_deref(), Some("m2"));
}

#[test]
fn a_storage_error_stops_publishing_with_503_and_keeps_what_was_acknowledged() {
    for fsync in ["always", "never"] {
        let dir = fresh_dir(&format!("broken-{fsync}"));
        let halley = start(&dir, &["--fsync", fsync]);
        publish_many(&halley, "a", 2, |n| format!("kept {n}"));
        assert!(dir.join("channels/a").is_dir());
        // A file where channel b's directory must go: creating it fails.
        std::fs::write(dir.join("channels/b"), b"in the way").unwrap();
        let publish = |channel: &str| {
            Client::connect(halley.admin).exchange(
                format!("POST /pub/{channel} HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nConnection: close\r\n\r\nz")
                    .as_bytes(),
            )
        };
        let failed = publish("b");
        assert_eq!(failed.status, 503, "{fsync}");
        assert!(
            failed.text().contains("storage failed"),
            "{}",
            failed.text()
        );
        let stopped = publish("a");
        assert_eq!(
            stopped.status, 503,
            "{fsync}: publishing stops after a storage error"
        );
        let admin = &halley.stats()["admin"];
        assert_eq!(admin["storage_errors"], 1, "{fsync}");
        assert_eq!(admin["publishes_refused_storage"], 2, "{fsync}");
        kill(halley);
        let halley = start(&dir, &["--fsync", fsync]);
        let seen = read_all(&halley, "a");
        let kept: Vec<_> = seen.events.values().cloned().collect();
        assert_eq!(
            kept,
            [Some("kept 1".to_string()), Some("kept 2".to_string())],
            "{fsync}"
        );
    }
}
