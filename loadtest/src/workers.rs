//! Worker processes (this binary again, `work-requests` and `work-subscribers`): the
//! arguments a scenario starts them with, each with its share of the connections, and
//! what each does once started: says `ready`, waits for `go` (or runs until `stop`),
//! and prints its `result` as one line of JSON.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::cli::{Common, WorkRequests, WorkSubscribers};
use crate::procs::{self, histogram_to_json};
use crate::requests;
use crate::subscribers;
use crate::target::Target;

/// Set by the parent (`stop` on standard input): end now and report.
static STOP: AtomicBool = AtomicBool::new(false);
/// Set by the parent (`go`): start the measured work.
static GO: AtomicBool = AtomicBool::new(false);

/// `count` split over `procs` workers: (offset, share) of each.
pub fn shares(count: usize, procs: usize) -> Vec<(usize, usize)> {
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

/// What request-loop workers run: `concurrency` connections to `url`.
pub struct RequestWork<'a> {
    pub url: &'a str,
    pub concurrency: usize,
    pub duration: Duration,
    pub channels: usize,
    pub keepalive: bool,
    /// Live-blog readers: every interval, with jitter.
    pub interval: Option<(Duration, Duration)>,
}

/// Arguments of request-loop workers: the connections spread over `common.procs`
/// processes, each running for the duration.
pub fn request_args(work: &RequestWork<'_>, common: &Common) -> Vec<Vec<String>> {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    shares(work.concurrency, common.procs)
        .into_iter()
        .map(|(offset, n)| {
            let mut a: Vec<String> = vec!["work-requests".into(), "--url".into(), work.url.into()];
            a.extend(["--concurrency".into(), n.to_string()]);
            a.extend(["--duration".into(), ms(work.duration)]);
            a.extend(["--channels".into(), work.channels.to_string()]);
            a.extend(["--sources".into(), common.sources.to_string()]);
            a.extend(["--offset".into(), offset.to_string()]);
            if work.keepalive {
                a.push("--keepalive".into());
            }
            if let Some((every, jitter)) = work.interval {
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

/// What subscriber workers hold: `count` subscribers to `url`.
pub struct SubscriberWork<'a> {
    pub url: &'a str,
    pub count: usize,
    pub channels: usize,
    /// Messages each should get (0: hold until told to stop).
    pub messages: usize,
    pub ready_on_send: bool,
    pub header: &'a str,
    pub timeout: Duration,
    /// Subscribers opened a second over all processes (0: all at once).
    pub ramp: u64,
}

/// Arguments of subscriber workers: the subscribers spread over `common.procs`
/// processes, and the ramp shared between them.
pub fn subscriber_args(work: &SubscriberWork<'_>, common: &Common) -> Vec<Vec<String>> {
    let ramp_each = work.ramp.div_ceil(common.procs.max(1) as u64);
    shares(work.count, common.procs)
        .into_iter()
        .map(|(offset, n)| {
            let mut a: Vec<String> =
                vec!["work-subscribers".into(), "--url".into(), work.url.into()];
            a.extend(["--count".into(), n.to_string()]);
            a.extend(["--channels".into(), work.channels.to_string()]);
            a.extend(["--sources".into(), common.sources.to_string()]);
            a.extend(["--offset".into(), offset.to_string()]);
            a.extend(["--messages".into(), work.messages.to_string()]);
            a.extend([
                "--timeout".into(),
                format!("{}ms", work.timeout.as_millis()),
            ]);
            a.extend(["--header".into(), work.header.to_string()]);
            if work.ready_on_send {
                a.push("--ready-on-send".into());
            }
            a.extend(["--ramp".into(), ramp_each.to_string()]);
            a
        })
        .collect()
}

/// A `work-requests` process: its request loops, started on `go`.
pub fn work_requests(args: WorkRequests) -> Result<(), String> {
    raise_fd_limit();
    let spec = requests::RequestSpec {
        target: Target::parse(&args.url)?,
        channels: args.channels,
        concurrency: args.concurrency,
        keep_alive: args.keepalive,
        duration: args.duration,
        sources: args.sources,
        offset: args.offset,
        interval: args.interval,
        jitter: args.jitter,
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

/// A `work-subscribers` process: its subscribers, held until they have every
/// message, the parent says stop, or the timeout.
pub fn work_subscribers(args: WorkSubscribers) -> Result<(), String> {
    raise_fd_limit();
    let extra_headers = if args.header.is_empty() {
        String::new()
    } else {
        format!("{}\r\n", args.header)
    };
    let spec = subscribers::SubscriberSpec {
        targets: Target::parse_list(&args.url)?,
        channels: args.channels,
        count: args.count,
        offset: args.offset,
        sources: args.sources,
        messages: args.messages,
        ready_on_send: args.ready_on_send,
        extra_headers,
        ramp: args.ramp,
    };
    procs::listen_to_parent(&STOP, &GO);
    let result = subscribers::run(&spec, &STOP, args.timeout, || println!("ready"))
        .map_err(|e| e.to_string())?;
    let out = json!({
        "opened": result.opened, "failed": result.failed, "received": result.received,
        "duplicates": result.duplicates, "out_of_order": result.out_of_order,
        "latency": histogram_to_json(&result.latency)
    });
    println!("result {out}");
    Ok(())
}

/// Raises this process's descriptor limit as the server does (`halley::net`).
fn raise_fd_limit() {
    if let Err(e) = halley::net::raise_fd_limit() {
        eprintln!("halley-load: cannot raise the descriptor limit: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn shares_cover_the_count_once() {
        assert_eq!(shares(10, 3), vec![(0, 3), (3, 3), (6, 4)]);
        assert_eq!(shares(2, 4), vec![(0, 1), (1, 1)]);
        assert_eq!(shares(5, 0), vec![(0, 5)]);
    }
}
