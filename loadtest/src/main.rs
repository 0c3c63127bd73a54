//! `halley-load`: a load tester for Halley and its peers (nginx with Nchan, Pushpin),
//! event-driven like the server. Every scenario takes URL templates (`{channel}`), so
//! the same run measures any server. Connections are spread over worker processes
//! (this binary again) and over loopback source addresses; latencies go into HDR
//! histograms; the server's memory and CPU time come from `/proc/PID`.
//!
//! Files: `target` (URLs, source addresses, the shared clock), `http` (where an answer
//! ends), `requests` (request loops), `subscribers` (held subscribers that find
//! stamped messages), `procs` (workers, /proc), `publish` (the publisher), `store`
//! (storage benchmarks against Halley and Redis),
//! `grip_origin` (Pushpin's backend), `report` (tables and JSON).

mod grip_origin;
mod http;
mod procs;
mod publish;
mod report;
mod requests;
mod store;
mod subscribers;
mod target;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use procs::{cpu_ticks, histogram_to_json, merge_histogram, new_histogram, rss_kib, Workers};
use report::Report;
use target::Target;

fn duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .ok_or("a duration needs a unit: ms, s or m")?,
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text}: not a duration"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(60 * n),
        _ => return Err(format!("{text}: use ms, s or m")),
    })
}

#[derive(Debug, Parser)]
#[command(
    name = "halley-load",
    version,
    about = "Load tester for Halley and its peers"
)]
struct Cli {
    #[command(subcommand)]
    command: Scenario,
}

/// What every scenario shares.
#[derive(Debug, Args, Clone)]
struct Common {
    /// Worker processes to spread connections over.
    #[arg(long, default_value_t = 1)]
    procs: usize,
    /// Loopback source addresses (from 127.0.0.2) to spread connections over.
    #[arg(long, default_value_t = 8)]
    sources: usize,
    /// The server's process ids (comma list: a master and its workers, or each of a
    /// server's services), for its memory and CPU time, summed.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// A name for the server in the report.
    #[arg(long, default_value = "server")]
    label: String,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Requests per second: each on a new connection, or with --keepalive on kept ones.
    ConnRate {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value = "5s", value_parser = duration)]
        duration: Duration,
        #[arg(long)]
        keepalive: bool,
        #[arg(long, default_value_t = 1)]
        channels: usize,
        #[command(flatten)]
        common: Common,
    },
    /// N held subscribers over K channels: server memory per held connection.
    Hold {
        #[arg(long)]
        url: String,
        #[arg(long)]
        count: usize,
        #[arg(long, default_value_t = 10)]
        channels: usize,
        /// Count a subscriber as held once its request is sent (long-polls answer only later).
        #[arg(long)]
        ready_on_send: bool,
        /// Wait this long after all are held before measuring, for the server to settle.
        #[arg(long, default_value = "1s", value_parser = duration)]
        settle: Duration,
        /// Open subscribers at most this many a second, over all processes (0: all at
        /// once). Some servers refuse a burst they would take at a steady pace.
        #[arg(long, default_value_t = 0)]
        ramp: u64,
        #[arg(long, default_value = "")]
        header: String,
        #[command(flatten)]
        common: Common,
    },
    /// With N held subscribers, publish M messages and time each to every subscriber.
    Fanout {
        #[arg(long)]
        url: String,
        #[arg(long)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        channels: usize,
        #[arg(long, default_value_t = 10)]
        messages: usize,
        /// Publish URL template.
        #[arg(long)]
        pub_url: String,
        /// Publish body template: `{payload}` is the stamped message, `{channel}` its channel.
        #[arg(long, default_value = "{payload}")]
        pub_body: String,
        #[arg(long, default_value = "100ms", value_parser = duration)]
        interval: Duration,
        #[arg(long, default_value = "")]
        header: String,
        #[arg(long, default_value = "30s", value_parser = duration)]
        timeout: Duration,
        /// Wait this long after every subscriber is in place before publishing (some
        /// servers subscribe a held connection only some time after answering it).
        #[arg(long, default_value = "200ms", value_parser = duration)]
        settle: Duration,
        /// Open subscribers at most this many a second, over all processes (0: all at
        /// once). Some servers refuse a burst they would take at a steady pace.
        #[arg(long, default_value_t = 0)]
        ramp: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Live-blog readers polling every interval with jitter.
    Liveblog {
        #[arg(long)]
        url: String,
        #[arg(long)]
        readers: usize,
        #[arg(long, default_value = "60s", value_parser = duration)]
        interval: Duration,
        #[arg(long, default_value = "10s", value_parser = duration)]
        jitter: Duration,
        #[arg(long, default_value = "120s", value_parser = duration)]
        duration: Duration,
        #[command(flatten)]
        common: Common,
    },
    /// Publish latency on the admin port while the subscriber port is flooded with new connections.
    PublishUnderFlood {
        /// What the flood requests.
        #[arg(long)]
        flood_url: String,
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        #[arg(long)]
        pub_url: String,
        #[arg(long, default_value = "{payload}")]
        pub_body: String,
        /// Publishes per second.
        #[arg(long, default_value_t = 100)]
        rate: u64,
        #[arg(long, default_value = "5s", value_parser = duration)]
        duration: Duration,
        #[command(flatten)]
        common: Common,
    },
    /// Publishes stored per second, and publish latency, from closed-loop publishers:
    /// Halley (`--url http://HOST/pub/{channel}`) or Redis XADD (`--url redis://HOST:PORT`).
    PublishRate {
        #[arg(long)]
        url: String,
        /// Publishers, each on its own connection, each waiting for its answer.
        #[arg(long, default_value_t = 16)]
        publishers: usize,
        #[arg(long, default_value_t = 16)]
        channels: usize,
        /// Bytes per message.
        #[arg(long, default_value_t = 200)]
        payload: usize,
        #[arg(long, default_value = "5s", value_parser = duration)]
        duration: Duration,
        #[command(flatten)]
        common: Common,
    },
    /// Catch-up throughput: fills a channel, then reads it back from the start on one
    /// connection (Halley: `--sub-url` a `t=stream&since=0` URL; Redis: XRANGE pages).
    Catchup {
        #[arg(long)]
        url: String,
        #[arg(long)]
        sub_url: Option<String>,
        #[arg(long, default_value = "catchup")]
        channel: String,
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        #[arg(long, default_value_t = 200)]
        payload: usize,
        #[command(flatten)]
        common: Common,
    },
    /// A backend for Pushpin: answers every request with a GRIP stream hold on the
    /// channel named by the path's last segment.
    GripOrigin {
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: String,
    },
    /// (internal) a worker process running request loops.
    #[command(hide = true)]
    WorkRequests {
        #[arg(long)]
        url: String,
        #[arg(long)]
        concurrency: usize,
        #[arg(long, value_parser = duration)]
        duration: Duration,
        #[arg(long)]
        keepalive: bool,
        #[arg(long)]
        channels: usize,
        #[arg(long)]
        sources: usize,
        #[arg(long)]
        offset: usize,
        #[arg(long, value_parser = duration)]
        interval: Option<Duration>,
        #[arg(long, value_parser = duration, default_value = "0ms")]
        jitter: Duration,
    },
    /// (internal) a worker process holding subscribers.
    WorkSubscribers {
        #[arg(long)]
        url: String,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        channels: usize,
        #[arg(long)]
        sources: usize,
        #[arg(long)]
        offset: usize,
        #[arg(long)]
        messages: usize,
        #[arg(long)]
        ready_on_send: bool,
        #[arg(long, default_value = "")]
        header: String,
        #[arg(long, value_parser = duration)]
        timeout: Duration,
        /// Connections opened a second by this process (0: all at once).
        #[arg(long, default_value_t = 0)]
        ramp: u64,
    },
}

static STOP: AtomicBool = AtomicBool::new(false);
static GO: AtomicBool = AtomicBool::new(false);

fn main() {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Scenario::WorkRequests {
            url,
            concurrency,
            duration,
            keepalive,
            channels,
            sources,
            offset,
            interval,
            jitter,
        } => work_requests(
            &url,
            concurrency,
            duration,
            keepalive,
            channels,
            sources,
            offset,
            interval,
            jitter,
        ),
        Scenario::WorkSubscribers {
            url,
            count,
            channels,
            sources,
            offset,
            messages,
            ready_on_send,
            header,
            timeout,
            ramp,
        } => work_subscribers(
            &url,
            count,
            channels,
            sources,
            offset,
            messages,
            ready_on_send,
            &header,
            timeout,
            ramp,
        ),
        Scenario::GripOrigin { listen } => grip_origin::serve(&listen).map_err(|e| e.to_string()),
        scenario => run_scenario(scenario),
    };
    if let Err(e) = outcome {
        eprintln!("halley-load: {e}");
        std::process::exit(1);
    }
}

/// `count` split over `procs` workers: (offset, share) of each.
fn shares(count: usize, procs: usize) -> Vec<(usize, usize)> {
    let procs = procs.max(1);
    (0..procs)
        .map(|i| {
            (
                count * i / procs,
                count * (i + 1) / procs - count * i / procs,
            )
        })
        .filter(|&(_, n)| n > 0)
        .collect()
}

fn run_scenario(scenario: Scenario) -> Result<(), String> {
    let report = match scenario {
        Scenario::ConnRate {
            url,
            concurrency,
            duration,
            keepalive,
            channels,
            common,
        } => {
            Target::parse(&url)?;
            let args = request_worker_args(
                &url,
                concurrency,
                duration,
                channels,
                keepalive,
                None,
                &common,
            );
            let name = if keepalive {
                "conn-rate (keep-alive)"
            } else {
                "conn-rate (new connection each)"
            };
            request_scenario(name, &common, args, duration)?
        }
        Scenario::Liveblog {
            url,
            readers,
            interval,
            jitter,
            duration,
            common,
        } => {
            Target::parse(&url)?;
            let args = request_worker_args(
                &url,
                readers,
                duration,
                1,
                false,
                Some((interval, jitter)),
                &common,
            );
            let mut report = request_scenario("liveblog", &common, args, duration)?;
            report.add("readers", json!(readers));
            report
        }
        Scenario::Hold {
            url,
            count,
            channels,
            ready_on_send,
            settle,
            ramp,
            header,
            common,
        } => hold(
            &url,
            count,
            channels,
            ready_on_send,
            settle,
            ramp,
            &header,
            &common,
        )?,
        Scenario::Fanout {
            url,
            count,
            channels,
            messages,
            pub_url,
            pub_body,
            interval,
            header,
            timeout,
            settle,
            ramp,
            common,
        } => fanout(
            &url, count, channels, messages, &pub_url, &pub_body, interval, &header, timeout,
            settle, ramp, &common,
        )?,
        Scenario::PublishUnderFlood {
            flood_url,
            concurrency,
            pub_url,
            pub_body,
            rate,
            duration,
            common,
        } => publish_under_flood(
            &flood_url,
            concurrency,
            &pub_url,
            &pub_body,
            rate,
            duration,
            &common,
        )?,
        Scenario::PublishRate {
            url,
            publishers,
            channels,
            payload,
            duration,
            common,
        } => {
            let store = store::Store::parse(&url)?;
            let result = store::publish_rate(&store, publishers, channels, payload, duration)?;
            let mut report = Report::new("publish-rate", &common);
            report.add("publishers", json!(publishers));
            report.add("payload_bytes", json!(payload));
            report.add("published", json!(result.published));
            report.add("errors", json!(result.errors));
            report.add(
                "publishes_per_s",
                json!((result.published as f64 / result.elapsed.as_secs_f64()).round()),
            );
            report.latency("publish", &result.latency);
            report
        }
        Scenario::Catchup {
            url,
            sub_url,
            channel,
            events,
            payload,
            common,
        } => {
            let store = store::Store::parse(&url)?;
            let result = store::catchup(&store, sub_url.as_deref(), &channel, events, payload)?;
            let seconds = result.elapsed.as_secs_f64();
            let mut report = Report::new("catchup", &common);
            report.add("events", json!(result.events));
            report.add("catchup_s", json!((seconds * 1000.0).round() / 1000.0));
            report.add(
                "events_per_s",
                json!((result.events as f64 / seconds).round()),
            );
            report.add(
                "mib_per_s",
                json!((result.bytes as f64 / seconds / 1048576.0 * 10.0).round() / 10.0),
            );
            report
        }
        _ => unreachable!("workers are handled in main"),
    };
    report.print();
    Ok(())
}

/// Arguments of request-loop workers: `concurrency` connections over `common.procs`
/// processes, each running for `duration`.
fn request_worker_args(
    url: &str,
    concurrency: usize,
    duration: Duration,
    channels: usize,
    keepalive: bool,
    interval: Option<(Duration, Duration)>,
    common: &Common,
) -> Vec<Vec<String>> {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    shares(concurrency, common.procs)
        .into_iter()
        .map(|(offset, n)| {
            let mut a: Vec<String> = vec!["work-requests".into(), "--url".into(), url.to_string()];
            a.extend([
                "--concurrency".into(),
                n.to_string(),
                "--duration".into(),
                ms(duration),
            ]);
            a.extend([
                "--channels".into(),
                channels.to_string(),
                "--sources".into(),
                common.sources.to_string(),
            ]);
            a.extend(["--offset".into(), offset.to_string()]);
            if keepalive {
                a.push("--keepalive".into());
            }
            if let Some((every, jitter)) = interval {
                a.extend([
                    "--interval".into(),
                    ms(every),
                    "--jitter".into(),
                    ms(jitter),
                ]);
            }
            a
        })
        .collect()
}

/// Runs request-loop workers for `duration` and reports rate, errors, latency and the
/// server's CPU time per request over the same window.
fn request_scenario(
    name: &str,
    common: &Common,
    args: Vec<Vec<String>>,
    duration: Duration,
) -> Result<Report, String> {
    let mut workers = Workers::spawn(args).map_err(|e| e.to_string())?;
    workers.wait_all("ready", Duration::from_secs(30))?;
    let cpu_before = procs::sum(&common.server_pid, cpu_ticks);
    let started = Instant::now();
    workers.tell("go");
    let progress = report::progress(duration);
    let results = workers.wait_all("result", duration + Duration::from_secs(60))?;
    progress.finish_and_clear();
    let elapsed = started.elapsed().min(duration + Duration::from_secs(1));
    let cpu_after = procs::sum(&common.server_pid, cpu_ticks);
    let mut latency = new_histogram();
    let (mut completed, mut errors) = (0u64, 0u64);
    for result in &results {
        let r: serde_json::Value = serde_json::from_str(result).map_err(|e| e.to_string())?;
        completed += r["completed"].as_u64().unwrap_or(0);
        errors += r["errors"].as_u64().unwrap_or(0);
        merge_histogram(&mut latency, &r["latency"]);
    }
    let mut report = Report::new(name, common);
    let seconds = duration.as_secs_f64().min(elapsed.as_secs_f64()).max(0.001);
    report.add("requests", json!(completed));
    report.add("errors", json!(errors));
    report.add(
        "requests_per_s",
        json!((completed as f64 / seconds).round()),
    );
    report.latency("latency", &latency);
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let cpu_ms = (after - before) as f64 * 10.0;
        report.add("server_cpu_ms", json!(cpu_ms));
        if completed > 0 {
            report.add(
                "server_cpu_us_per_request",
                json!((cpu_ms * 1000.0 / completed as f64 * 100.0).round() / 100.0),
            );
        }
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn subscriber_args(
    url: &str,
    count: usize,
    channels: usize,
    messages: usize,
    ready_on_send: bool,
    header: &str,
    timeout: Duration,
    ramp: u64,
    common: &Common,
) -> Vec<Vec<String>> {
    let ramp_each = ramp.div_ceil(common.procs.max(1) as u64);
    shares(count, common.procs)
        .into_iter()
        .map(|(offset, n)| {
            let mut a = vec![
                "work-subscribers".into(),
                "--url".into(),
                url.to_string(),
                "--count".into(),
                n.to_string(),
            ];
            a.extend([
                "--channels".into(),
                channels.to_string(),
                "--sources".into(),
                common.sources.to_string(),
            ]);
            a.extend([
                "--offset".into(),
                offset.to_string(),
                "--messages".into(),
                messages.to_string(),
            ]);
            a.extend([
                "--timeout".into(),
                format!("{}ms", timeout.as_millis()),
                "--header".into(),
                header.to_string(),
            ]);
            if ready_on_send {
                a.push("--ready-on-send".into());
            }
            a.extend(["--ramp".into(), ramp_each.to_string()]);
            a
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn hold(
    url: &str,
    count: usize,
    channels: usize,
    ready_on_send: bool,
    settle: Duration,
    ramp: u64,
    header: &str,
    common: &Common,
) -> Result<Report, String> {
    Target::parse(url)?;
    let rss_before = procs::sum(&common.server_pid, rss_kib);
    let timeout = Duration::from_secs(600);
    let mut workers = Workers::spawn(subscriber_args(
        url,
        count,
        channels,
        0,
        ready_on_send,
        header,
        timeout,
        ramp,
        common,
    ))
    .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let opened = workers.wait_all("ready", Duration::from_secs(300))?;
    let took = started.elapsed();
    std::thread::sleep(settle);
    let rss_after = procs::sum(&common.server_pid, rss_kib);
    workers.tell("stop");
    let results = workers.wait_all("result", Duration::from_secs(60))?;
    let (mut held, mut failed) = (0u64, 0u64);
    for result in &results {
        let r: serde_json::Value = serde_json::from_str(result).map_err(|e| e.to_string())?;
        held += r["opened"].as_u64().unwrap_or(0);
        failed += r["failed"].as_u64().unwrap_or(0);
    }
    let _ = opened;
    let mut report = Report::new("hold", common);
    report.add("subscribers", json!(count));
    report.add("held", json!(held));
    report.add("failed", json!(failed));
    report.add(
        "seconds_to_hold",
        json!((took.as_secs_f64() * 100.0).round() / 100.0),
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        report.add("server_rss_kib_before", json!(before));
        report.add("server_rss_kib_after", json!(after));
        if let Some(per) = (after.saturating_sub(before) * 1024).checked_div(held) {
            report.add("server_bytes_per_subscriber", json!(per));
        }
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn fanout(
    url: &str,
    count: usize,
    channels: usize,
    messages: usize,
    pub_url: &str,
    pub_body: &str,
    interval: Duration,
    header: &str,
    timeout: Duration,
    settle: Duration,
    ramp: u64,
    common: &Common,
) -> Result<Report, String> {
    Target::parse(url)?;
    let pub_target = Target::parse(pub_url)?;
    let workers = Workers::spawn(subscriber_args(
        url, count, channels, messages, false, header, timeout, ramp, common,
    ))
    .map_err(|e| e.to_string())?;
    workers.wait_all("ready", Duration::from_secs(300))?;
    std::thread::sleep(settle);
    let mut publisher = publish::Publisher::connect(&pub_target)?;
    let mut publish_latency = new_histogram();
    let mut refused = 0u64;
    for seq in 0..messages {
        for channel in 0..channels {
            let name = target::channel_name(channel, channels);
            let payload = format!("lt:{seq}:{};", target::monotonic_ns());
            match publisher.publish(&name, pub_body, &payload) {
                Ok(micros) => {
                    let _ = publish_latency.record(micros.max(1));
                }
                Err(_) => refused += 1,
            }
        }
        std::thread::sleep(interval);
    }
    let results = workers.wait_all("result", timeout + Duration::from_secs(30))?;
    let mut latency = new_histogram();
    let (mut received, mut duplicates, mut out_of_order, mut held) = (0u64, 0u64, 0u64, 0u64);
    for result in &results {
        let r: serde_json::Value = serde_json::from_str(result).map_err(|e| e.to_string())?;
        received += r["received"].as_u64().unwrap_or(0);
        duplicates += r["duplicates"].as_u64().unwrap_or(0);
        out_of_order += r["out_of_order"].as_u64().unwrap_or(0);
        held += r["opened"].as_u64().unwrap_or(0);
        merge_histogram(&mut latency, &r["latency"]);
    }
    let expected = held * messages as u64;
    let mut report = Report::new("fanout", common);
    report.add("subscribers", json!(held));
    report.add("messages", json!(messages));
    report.add("delivered", json!(received));
    report.add("lost", json!(expected.saturating_sub(received)));
    report.add("duplicated", json!(duplicates));
    report.add("out_of_order", json!(out_of_order));
    report.add("publishes_refused", json!(refused));
    report.latency("latency", &latency);
    report.latency("publish_latency", &publish_latency);
    Ok(report)
}

fn publish_under_flood(
    flood_url: &str,
    concurrency: usize,
    pub_url: &str,
    pub_body: &str,
    rate: u64,
    duration: Duration,
    common: &Common,
) -> Result<Report, String> {
    Target::parse(flood_url)?;
    let pub_target = Target::parse(pub_url)?;
    let args = request_worker_args(flood_url, concurrency, duration, 1, false, None, common);
    let mut workers = Workers::spawn(args).map_err(|e| e.to_string())?;
    workers.wait_all("ready", Duration::from_secs(30))?;
    workers.tell("go");
    std::thread::sleep(Duration::from_millis(300));
    let mut publisher = publish::Publisher::connect(&pub_target)?;
    let mut latency = new_histogram();
    let mut refused = 0u64;
    let gap = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let end = Instant::now() + duration.saturating_sub(Duration::from_millis(600));
    let mut seq = 0u64;
    while Instant::now() < end {
        let payload = format!("lt:{seq}:{};", target::monotonic_ns());
        match publisher.publish("flood", pub_body, &payload) {
            Ok(micros) => {
                let _ = latency.record(micros.max(1));
            }
            Err(_) => refused += 1,
        }
        seq += 1;
        std::thread::sleep(gap);
    }
    let results = workers.wait_all("result", duration + Duration::from_secs(60))?;
    let (mut flood, mut flood_errors) = (0u64, 0u64);
    for result in &results {
        let r: serde_json::Value = serde_json::from_str(result).map_err(|e| e.to_string())?;
        flood += r["completed"].as_u64().unwrap_or(0);
        flood_errors += r["errors"].as_u64().unwrap_or(0);
    }
    let mut report = Report::new("publish-under-flood", common);
    report.add("publishes", json!(seq));
    report.add("publishes_refused", json!(refused));
    report.latency("publish_latency", &latency);
    report.add("flood_requests", json!(flood));
    report.add("flood_errors", json!(flood_errors));
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn work_requests(
    url: &str,
    concurrency: usize,
    duration: Duration,
    keep_alive: bool,
    channels: usize,
    sources: usize,
    offset: usize,
    interval: Option<Duration>,
    jitter: Duration,
) -> Result<(), String> {
    raise_fd_limit();
    let spec = requests::RequestSpec {
        target: Target::parse(url)?,
        channels,
        concurrency,
        keep_alive,
        duration,
        sources,
        offset,
        interval,
        jitter,
    };
    procs::listen_to_parent(&STOP, &GO);
    println!("ready");
    while !GO.load(Ordering::Relaxed) && !STOP.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let result = requests::run(&spec, &STOP).map_err(|e| e.to_string())?;
    let out = json!({"completed": result.completed, "errors": result.errors, "latency": histogram_to_json(&result.latency)});
    println!("result {out}");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn work_subscribers(
    url: &str,
    count: usize,
    channels: usize,
    sources: usize,
    offset: usize,
    messages: usize,
    ready_on_send: bool,
    header: &str,
    timeout: Duration,
    ramp: u64,
) -> Result<(), String> {
    raise_fd_limit();
    let extra_headers = if header.is_empty() {
        String::new()
    } else {
        format!("{header}\r\n")
    };
    let spec = subscribers::SubscriberSpec {
        target: Target::parse(url)?,
        channels,
        count,
        offset,
        sources,
        messages,
        ready_on_send,
        extra_headers,
        ramp,
    };
    procs::listen_to_parent(&STOP, &GO);
    let result =
        subscribers::run(&spec, &STOP, timeout, || println!("ready")).map_err(|e| e.to_string())?;
    let out = json!({
        "opened": result.opened, "failed": result.failed, "received": result.received,
        "duplicates": result.duplicates, "out_of_order": result.out_of_order,
        "latency": histogram_to_json(&result.latency)
    });
    println!("result {out}");
    Ok(())
}

/// Raises this process's soft descriptor limit to its hard limit.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write one rlimit we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_count_once() {
        assert_eq!(shares(10, 3), vec![(0, 3), (3, 3), (6, 4)]);
        assert_eq!(shares(2, 4), vec![(0, 1), (1, 1)]);
        assert_eq!(shares(5, 0), vec![(0, 5)]);
    }

    #[test]
    fn durations() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(duration("5").is_err());
    }
}
