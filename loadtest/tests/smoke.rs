//! A short run of each scenario against a real Halley (in this process, on ephemeral
//! loopback ports), checking the tester's own counting against the server's counters:
//! what it reports as delivered or answered is what the server says it delivered or
//! answered.

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use halley::config::Config;
use halley::server::Server;

fn start(change: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        threads: 2,
        ..Config::default()
    };
    change(&mut config);
    Server::start(config).unwrap()
}

/// Runs `halley-load ARGS --json` (with this process as the server) and parses its report.
fn load(server: &Server, args: &[&str]) -> serde_json::Value {
    let pid = std::process::id().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_halley-load"))
        .args(args)
        .args(["--json", "--server-pid", &pid, "--procs", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{args:?}: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = server;
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn total(server: &Server, counter: &str) -> u64 {
    let json: serde_json::Value = serde_json::from_str(&server.stats().to_json()).unwrap();
    json[counter].as_u64().unwrap()
}

fn sub_url(server: &Server, query: &str) -> String {
    format!(
        "http://{}/sub/{{channel}}?{query}",
        server.subscriber_addr()
    )
}

fn pub_url(server: &Server) -> String {
    format!("http://{}/pub/{{channel}}", server.admin_addr())
}

#[test]
fn conn_rate_counts_what_the_server_answered() {
    for keepalive in [false, true] {
        let server = start(|_| {});
        let url = sub_url(&server, "t=poll");
        let mut args = vec![
            "conn-rate",
            "--url",
            &url,
            "--duration",
            "1s",
            "--concurrency",
            "16",
        ];
        if keepalive {
            args.push("--keepalive");
        }
        let report = load(&server, &args);
        let answered = report["requests"].as_u64().unwrap();
        assert!(answered > 100, "{report}");
        assert_eq!(report["errors"], 0, "{report}");
        // The server read every request the tester counted, and at most the 16 in flight
        // when the tester stopped besides.
        let read = total(&server, "requests");
        assert!(
            read >= answered && read <= answered + 16,
            "server read {read}, tester counted {answered}"
        );
        assert!(report["server_cpu_ms"].is_number());
        let share = report["server_kernel_share"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&share), "{report}");
        server.shutdown();
    }
}

#[test]
fn hold_holds_what_it_says() {
    let server = start(|_| {});
    let url = sub_url(&server, "t=stream");
    let stats = server.stats().clone();
    let watcher = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut most = 0;
        while Instant::now() < deadline && most < 400 {
            most = most.max(
                stats
                    .loops
                    .iter()
                    .map(|l| l.subscribers.load(Ordering::Relaxed))
                    .sum(),
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        most
    });
    let report = load(
        &server,
        &[
            "hold",
            "--url",
            &url,
            "--count",
            "400",
            "--channels",
            "4",
            "--settle",
            "300ms",
        ],
    );
    assert_eq!(report["held"], 400, "{report}");
    assert_eq!(watcher.join().unwrap(), 400, "the server held 400 at once");
    assert!(report["server_bytes_per_subscriber"].is_u64(), "{report}");
    server.shutdown();
}

#[test]
fn hold_ramps_at_the_rate_asked() {
    let server = start(|_| {});
    let url = sub_url(&server, "t=stream");
    let report = load(
        &server,
        &[
            "hold", "--url", &url, "--count", "60", "--ramp", "100", "--settle", "0ms",
        ],
    );
    assert_eq!(report["held"], 60, "{report}");
    // `load` runs two processes: at 50 a second each, they open their 30th connection
    // no sooner than 29/50 s after they start, a lower bound the ramp itself sets.
    let took = report["seconds_to_hold"].as_f64().unwrap();
    assert!(
        took >= 0.55,
        "60 held in {took} s: the ramp was not applied"
    );
    assert_eq!(total(&server, "connections_accepted"), 60);
    server.shutdown();
}

#[test]
fn fanout_delivers_what_the_server_sent() {
    let server = start(|_| {});
    let (url, publish) = (sub_url(&server, "t=sse"), pub_url(&server));
    let report = load(
        &server,
        &[
            "fanout",
            "--url",
            &url,
            "--count",
            "300",
            "--channels",
            "3",
            "--messages",
            "5",
            "--pub-url",
            &publish,
            "--interval",
            "20ms",
        ],
    );
    assert_eq!(report["subscribers"], 300, "{report}");
    assert_eq!(report["delivered"], 1500, "{report}");
    assert_eq!(
        (
            report["lost"].as_u64(),
            report["duplicated"].as_u64(),
            report["out_of_order"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(
        total(&server, "events_delivered"),
        1500,
        "the server sent exactly what the tester counted"
    );
    assert!(report["latency_p99_ms"].as_f64().unwrap() > 0.0);
    server.shutdown();
}

#[test]
fn publish_under_flood_counts_its_publishes() {
    let server = start(|_| {});
    let (flood, publish) = (sub_url(&server, "t=poll"), pub_url(&server));
    let report = load(
        &server,
        &[
            "publish-under-flood",
            "--flood-url",
            &flood,
            "--pub-url",
            &publish,
            "--duration",
            "2s",
            "--rate",
            "50",
            "--concurrency",
            "32",
        ],
    );
    let published = report["publishes"].as_u64().unwrap();
    assert!(published > 10, "{report}");
    assert_eq!(report["publishes_refused"], 0);
    assert_eq!(total(&server, "events_published"), published);
    assert!(report["flood_requests"].as_u64().unwrap() > 100, "{report}");
    server.shutdown();
}

#[test]
fn liveblog_readers_poll_at_their_interval() {
    let server = start(|_| {});
    let url = sub_url(&server, "t=poll");
    let report = load(
        &server,
        &[
            "liveblog",
            "--url",
            &url,
            "--readers",
            "50",
            "--interval",
            "200ms",
            "--jitter",
            "50ms",
            "--duration",
            "2s",
        ],
    );
    let answered = report["requests"].as_u64().unwrap();
    // 50 readers, every 200 ms ± 50 ms, over 2 s: about 500 polls.
    assert!((350..=650).contains(&answered), "{report}");
    assert_eq!(report["errors"], 0);
    let read = total(&server, "requests");
    assert!(
        read >= answered && read <= answered + 50,
        "server read {read}, tester counted {answered}"
    );
    server.shutdown();
}

#[test]
fn publish_rate_and_catchup_count_what_the_server_stored() {
    let dir = std::env::temp_dir().join(format!("halley-load-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = start(|config| {
        config.data_dir = Some(dir.clone());
        config.history = 100;
        config.stream_max_bytes = 1 << 30;
    });
    let url = pub_url(&server);
    let report = load(
        &server,
        &[
            "publish-rate",
            "--url",
            &url,
            "--publishers",
            "4",
            "--duration",
            "1s",
        ],
    );
    let published = report["published"].as_u64().unwrap();
    let stored = server.stats().admin.events_stored.load(Ordering::Relaxed);
    assert!(published > 100, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    // Every answer counted was stored; at most the 4 in flight at the end were stored
    // and not counted.
    assert!(
        stored >= published && stored <= published + 4,
        "{stored} stored, {report}"
    );

    let sub = sub_url(&server, "t=stream&since=0");
    let report = load(
        &server,
        &[
            "catchup",
            "--url",
            &url,
            "--sub-url",
            &sub,
            "--events",
            "2000",
        ],
    );
    assert_eq!(report["events"], 2000, "{report}");
    // All but the last 100 came from the log, through the catch-up thread.
    let from_disk = server.stats().admin.catchup_events.load(Ordering::Relaxed);
    assert!(from_disk >= 1900, "{from_disk} read from the log");
    let _ = std::fs::remove_dir_all(&dir);
}
