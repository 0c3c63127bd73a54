//! The scenarios a user runs: each starts its worker processes (`workers.rs`),
//! publishes where it measures publishing, gathers what the workers report and the
//! server's CPU time and memory (`procs.rs`), and returns one `Report`.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;

use crate::cli::{
    Catchup, Common, ConnRate, Fanout, Hold, Liveblog, PublishRate, PublishUnderFlood,
};
use crate::procs::{self, merge_histogram, new_histogram, rss_kib, CpuWindow, Workers};
use crate::report::{self, Report};
use crate::target::{self, Target};
use crate::workers::{request_args, subscriber_args, RequestWork, SubscriberWork};
use crate::{publish, store};

/// Requests per second, each on a new connection or on kept ones.
pub fn conn_rate(args: ConnRate) -> Result<Report, String> {
    Target::parse(&args.url)?;
    let work = RequestWork {
        url: &args.url,
        concurrency: args.concurrency,
        duration: args.duration,
        channels: args.channels,
        keepalive: args.keepalive,
        interval: None,
    };
    let name = if args.keepalive {
        "conn-rate (keep-alive)"
    } else {
        "conn-rate (new connection each)"
    };
    request_scenario(
        name,
        &args.common,
        request_args(&work, &args.common),
        args.duration,
    )
}

/// Live-blog readers polling every interval, with jitter, each on a new connection.
pub fn liveblog(args: Liveblog) -> Result<Report, String> {
    Target::parse(&args.url)?;
    let work = RequestWork {
        url: &args.url,
        concurrency: args.readers,
        duration: args.duration,
        channels: 1,
        keepalive: false,
        interval: Some((args.interval, args.jitter)),
    };
    let worker_args = request_args(&work, &args.common);
    let mut report = request_scenario("liveblog", &args.common, worker_args, args.duration)?;
    report.add("readers", json!(args.readers));
    Ok(report)
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
    let cpu = CpuWindow::start(&common.server_pid);
    let started = Instant::now();
    workers.tell("go");
    let progress = report::progress(duration);
    let results = workers.wait_all("result", duration + Duration::from_secs(60))?;
    progress.finish_and_clear();
    let elapsed = started.elapsed().min(duration + Duration::from_secs(1));
    let cpu = cpu.finish();
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
    if let Some((cpu_ms, kernel_share)) = cpu {
        report.add("server_cpu_ms", json!(cpu_ms));
        report.add("server_kernel_share", json!(round3(kernel_share)));
        if completed > 0 {
            report.add(
                "server_cpu_us_per_request",
                json!((cpu_ms * 1000.0 / completed as f64 * 100.0).round() / 100.0),
            );
        }
    }
    Ok(report)
}

/// N held subscribers: the server's memory per held connection.
pub fn hold(args: Hold) -> Result<Report, String> {
    Target::parse_list(&args.url)?;
    let common = &args.common;
    let rss_before = procs::sum(&common.server_pid, rss_kib);
    let work = SubscriberWork {
        url: &args.url,
        count: args.count,
        channels: args.channels,
        messages: 0,
        ready_on_send: args.ready_on_send,
        header: &args.header,
        timeout: Duration::from_secs(600),
        ramp: args.ramp,
    };
    let mut workers = Workers::spawn(subscriber_args(&work, common)).map_err(|e| e.to_string())?;
    let started = Instant::now();
    workers.wait_all("ready", Duration::from_secs(300))?;
    let took = started.elapsed();
    std::thread::sleep(args.settle);
    let rss_after = procs::sum(&common.server_pid, rss_kib);
    workers.tell("stop");
    let results = workers.wait_all("result", Duration::from_secs(60))?;
    let (mut held, mut failed) = (0u64, 0u64);
    for result in &results {
        let r: serde_json::Value = serde_json::from_str(result).map_err(|e| e.to_string())?;
        held += r["opened"].as_u64().unwrap_or(0);
        failed += r["failed"].as_u64().unwrap_or(0);
    }
    let mut report = Report::new("hold", common);
    report.add("subscribers", json!(args.count));
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

/// With N held subscribers, publishes M messages and times each to every subscriber.
pub fn fanout(args: Fanout) -> Result<Report, String> {
    Target::parse_list(&args.url)?;
    let pub_target = Target::parse(&args.pub_url)?;
    let work = SubscriberWork {
        url: &args.url,
        count: args.count,
        channels: args.channels,
        messages: args.messages,
        ready_on_send: false,
        header: &args.header,
        timeout: args.timeout,
        ramp: args.ramp,
    };
    let workers =
        Workers::spawn(subscriber_args(&work, &args.common)).map_err(|e| e.to_string())?;
    workers.wait_all("ready", Duration::from_secs(300))?;
    std::thread::sleep(args.settle);
    let mut publisher = publish::Publisher::connect(&pub_target)?;
    // The server's CPU from the first publish to the last delivery (heartbeats aside,
    // a server holding idle streams spends nothing): its cost of the fan-out.
    let cpu = CpuWindow::start(&args.common.server_pid);
    let mut publish_latency = new_histogram();
    let mut refused = 0u64;
    for seq in 0..args.messages {
        for channel in 0..args.channels {
            let name = target::channel_name(channel, args.channels);
            if !publish_stamped(
                &mut publisher,
                &name,
                &args.pub_body,
                seq,
                &mut publish_latency,
            ) {
                refused += 1;
            }
        }
        std::thread::sleep(args.interval);
    }
    let results = workers.wait_all("result", args.timeout + Duration::from_secs(30))?;
    let cpu = cpu.finish();
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
    let expected = held * args.messages as u64;
    let mut report = Report::new("fanout", &args.common);
    report.add("subscribers", json!(held));
    report.add("messages", json!(args.messages));
    report.add("delivered", json!(received));
    report.add("lost", json!(expected.saturating_sub(received)));
    report.add("duplicated", json!(duplicates));
    report.add("out_of_order", json!(out_of_order));
    report.add("publishes_refused", json!(refused));
    report.latency("latency", &latency);
    report.latency("publish_latency", &publish_latency);
    if let (Some((cpu_ms, kernel_share)), true) = (cpu, received > 0) {
        report.add("server_cpu_ms", json!(cpu_ms));
        report.add("server_kernel_share", json!(round3(kernel_share)));
        report.add(
            "server_cpu_us_per_delivered",
            json!((cpu_ms * 1000.0 / received as f64 * 1000.0).round() / 1000.0),
        );
    }
    Ok(report)
}

/// Publishes message `seq`, stamped with the time (`lt:SEQ:NANOS;`, which subscribers
/// find), to `channel`; records how long the answer took. Returns whether it was
/// taken.
fn publish_stamped(
    publisher: &mut publish::Publisher,
    channel: &str,
    body: &str,
    seq: usize,
    latency: &mut Histogram<u64>,
) -> bool {
    let payload = format!("lt:{seq}:{};", target::monotonic_ns());
    match publisher.publish(channel, body, &payload) {
        Ok(micros) => {
            let _ = latency.record(micros.max(1));
            true
        }
        Err(_) => false,
    }
}

/// Publish latency on the admin port while the subscriber port is flooded with new
/// connections.
pub fn publish_under_flood(args: PublishUnderFlood) -> Result<Report, String> {
    Target::parse(&args.flood_url)?;
    let pub_target = Target::parse(&args.pub_url)?;
    let work = RequestWork {
        url: &args.flood_url,
        concurrency: args.concurrency,
        duration: args.duration,
        channels: 1,
        keepalive: false,
        interval: None,
    };
    let mut workers =
        Workers::spawn(request_args(&work, &args.common)).map_err(|e| e.to_string())?;
    workers.wait_all("ready", Duration::from_secs(30))?;
    let cpu = CpuWindow::start(&args.common.server_pid);
    workers.tell("go");
    std::thread::sleep(Duration::from_millis(300));
    let mut publisher = publish::Publisher::connect(&pub_target)?;
    let mut latency = new_histogram();
    let mut refused = 0u64;
    let gap = Duration::from_nanos(1_000_000_000 / args.rate.max(1));
    let end = Instant::now() + args.duration.saturating_sub(Duration::from_millis(600));
    let mut seq = 0usize;
    while Instant::now() < end {
        if !publish_stamped(&mut publisher, "flood", &args.pub_body, seq, &mut latency) {
            refused += 1;
        }
        seq += 1;
        std::thread::sleep(gap);
    }
    let results = workers.wait_all("result", args.duration + Duration::from_secs(60))?;
    let cpu = cpu.finish();
    let (mut flood, mut flood_errors) = (0u64, 0u64);
    for result in &results {
        let r: serde_json::Value = serde_json::from_str(result).map_err(|e| e.to_string())?;
        flood += r["completed"].as_u64().unwrap_or(0);
        flood_errors += r["errors"].as_u64().unwrap_or(0);
    }
    let mut report = Report::new("publish-under-flood", &args.common);
    report.add("publishes", json!(seq));
    report.add("publishes_refused", json!(refused));
    report.latency("publish_latency", &latency);
    report.add("flood_requests", json!(flood));
    report.add("flood_errors", json!(flood_errors));
    if let Some((cpu_ms, kernel_share)) = cpu {
        report.add("server_cpu_ms", json!(cpu_ms));
        report.add("server_kernel_share", json!(round3(kernel_share)));
    }
    Ok(report)
}

/// Publishes stored per second from closed-loop publishers (Halley or Redis).
pub fn publish_rate(args: PublishRate) -> Result<Report, String> {
    let store = store::Store::parse(&args.url)?;
    let result = store::publish_rate(
        &store,
        args.publishers,
        args.channels,
        args.payload,
        args.duration,
    )?;
    let mut report = Report::new("publish-rate", &args.common);
    report.add("publishers", json!(args.publishers));
    report.add("payload_bytes", json!(args.payload));
    report.add("published", json!(result.published));
    report.add("errors", json!(result.errors));
    report.add(
        "publishes_per_s",
        json!((result.published as f64 / result.elapsed.as_secs_f64()).round()),
    );
    report.latency("publish", &result.latency);
    Ok(report)
}

/// Catch-up throughput: a channel filled, then read back from its start.
pub fn catchup(args: Catchup) -> Result<Report, String> {
    let store = store::Store::parse(&args.url)?;
    let result = store::catchup(
        &store,
        args.sub_url.as_deref(),
        &args.channel,
        args.events,
        args.payload,
    )?;
    let seconds = result.elapsed.as_secs_f64();
    let mut report = Report::new("catchup", &args.common);
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
    Ok(report)
}

/// `x` to three decimals, for a share in a report.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
