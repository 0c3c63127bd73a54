//! The command line: the scenarios and what every one of them shares. Durations
//! carry a unit as the server's flags do (`halley::units`).

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use halley::units::parse_duration;

#[derive(Debug, Parser)]
#[command(
    name = "halley-load",
    version,
    about = "Load tester for Halley and its peers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Scenario,
}

/// What every scenario shares.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Worker processes to spread connections over.
    #[arg(long, default_value_t = 1)]
    pub procs: usize,
    /// Loopback source addresses (from 127.0.0.2) to spread connections over.
    #[arg(long, default_value_t = 8)]
    pub sources: usize,
    /// The server's process ids (comma list: a master and its workers, or each of a
    /// server's services), for its memory and CPU time, summed.
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// A name for the server in the report.
    #[arg(long, default_value = "server")]
    pub label: String,
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Requests per second: each on a new connection, or with --keepalive on kept ones.
    ConnRate(ConnRate),
    /// N held subscribers over K channels: server memory per held connection.
    Hold(Hold),
    /// With N held subscribers, publish M messages and time each to every subscriber.
    Fanout(Fanout),
    /// Live-blog readers polling every interval with jitter.
    Liveblog(Liveblog),
    /// Publish latency on the admin port while the subscriber port is flooded with new connections.
    PublishUnderFlood(PublishUnderFlood),
    /// Publishes stored per second, and publish latency, from closed-loop publishers:
    /// Halley (`--url http://HOST/pub/{channel}`) or Redis XADD (`--url redis://HOST:PORT`).
    PublishRate(PublishRate),
    /// Catch-up throughput: fills a channel, then reads it back from the start on one
    /// connection (Halley: `--sub-url` a `t=stream&since=0` URL; Redis: XRANGE pages).
    Catchup(Catchup),
    /// A backend for Pushpin: answers every request with a GRIP stream hold on the
    /// channel named by the path's last segment.
    GripOrigin(GripOrigin),
    /// The reference for the new-connection limit: the smallest mio server that answers
    /// one request per connection with a fixed `200 ok` and closes.
    MinimalResponder(MinimalResponder),
    /// The floor for fan-out: holds `t=stream`-like streams and writes each published
    /// frame to every one with one `writev`, and nothing else.
    WritevFloor(WritevFloor),
    /// (internal) a worker process running request loops.
    #[command(hide = true)]
    WorkRequests(WorkRequests),
    /// (internal) a worker process holding subscribers.
    WorkSubscribers(WorkSubscribers),
}

/// Requests per second: each on a new connection, or with --keepalive on kept ones.
#[derive(Debug, Args)]
pub struct ConnRate {
    #[arg(long)]
    pub url: String,
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    #[arg(long)]
    pub keepalive: bool,
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    #[command(flatten)]
    pub common: Common,
}

/// N held subscribers over K channels: server memory per held connection.
#[derive(Debug, Args)]
pub struct Hold {
    /// Where subscribers go; several URLs, comma-separated, spread them in turn.
    #[arg(long)]
    pub url: String,
    #[arg(long)]
    pub count: usize,
    #[arg(long, default_value_t = 10)]
    pub channels: usize,
    /// Count a subscriber as held once its request is sent (long-polls answer only later).
    #[arg(long)]
    pub ready_on_send: bool,
    /// Wait this long after all are held before measuring, for the server to settle.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Open subscribers at most this many a second, over all processes (0: all at
    /// once). Some servers refuse a burst they would take at a steady pace.
    #[arg(long, default_value_t = 0)]
    pub ramp: u64,
    #[arg(long, default_value = "")]
    pub header: String,
    #[command(flatten)]
    pub common: Common,
}

/// With N held subscribers, publish M messages and time each to every subscriber.
#[derive(Debug, Args)]
pub struct Fanout {
    /// Where subscribers go; several URLs, comma-separated, spread them in turn (the
    /// servers of a cluster).
    #[arg(long)]
    pub url: String,
    #[arg(long)]
    pub count: usize,
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    #[arg(long, default_value_t = 10)]
    pub messages: usize,
    /// Publish URL template.
    #[arg(long)]
    pub pub_url: String,
    /// Publish body template: `{payload}` is the stamped message, `{channel}` its channel.
    #[arg(long, default_value = "{payload}")]
    pub pub_body: String,
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub interval: Duration,
    #[arg(long, default_value = "")]
    pub header: String,
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Wait this long after every subscriber is in place before publishing (some
    /// servers subscribe a held connection only some time after answering it).
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub settle: Duration,
    /// Open subscribers at most this many a second, over all processes (0: all at
    /// once). Some servers refuse a burst they would take at a steady pace.
    #[arg(long, default_value_t = 0)]
    pub ramp: u64,
    #[command(flatten)]
    pub common: Common,
}

/// Live-blog readers polling every interval with jitter.
#[derive(Debug, Args)]
pub struct Liveblog {
    #[arg(long)]
    pub url: String,
    #[arg(long)]
    pub readers: usize,
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub interval: Duration,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub jitter: Duration,
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub duration: Duration,
    #[command(flatten)]
    pub common: Common,
}

/// Publish latency on the admin port while the subscriber port is flooded with new connections.
#[derive(Debug, Args)]
pub struct PublishUnderFlood {
    /// What the flood requests.
    #[arg(long)]
    pub flood_url: String,
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    #[arg(long)]
    pub pub_url: String,
    #[arg(long, default_value = "{payload}")]
    pub pub_body: String,
    /// Publishes per second.
    #[arg(long, default_value_t = 100)]
    pub rate: u64,
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    #[command(flatten)]
    pub common: Common,
}

/// Publishes stored per second, and publish latency, from closed-loop publishers:
/// Halley (`--url http://HOST/pub/{channel}`) or Redis XADD (`--url redis://HOST:PORT`).
#[derive(Debug, Args)]
pub struct PublishRate {
    #[arg(long)]
    pub url: String,
    /// Publishers, each on its own connection, each waiting for its answer.
    #[arg(long, default_value_t = 16)]
    pub publishers: usize,
    #[arg(long, default_value_t = 16)]
    pub channels: usize,
    /// Bytes per message.
    #[arg(long, default_value_t = 200)]
    pub payload: usize,
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    #[command(flatten)]
    pub common: Common,
}

/// Catch-up throughput: fills a channel, then reads it back from the start on one
/// connection (Halley: `--sub-url` a `t=stream&since=0` URL; Redis: XRANGE pages).
#[derive(Debug, Args)]
pub struct Catchup {
    #[arg(long)]
    pub url: String,
    #[arg(long)]
    pub sub_url: Option<String>,
    #[arg(long, default_value = "catchup")]
    pub channel: String,
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    #[arg(long, default_value_t = 200)]
    pub payload: usize,
    #[command(flatten)]
    pub common: Common,
}

/// A backend for Pushpin: answers every request with a GRIP stream hold on the
/// channel named by the path's last segment.
#[derive(Debug, Args)]
pub struct GripOrigin {
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: String,
}

#[derive(Debug, Args)]
pub struct MinimalResponder {
    #[arg(long, default_value = "127.0.0.1:8096")]
    pub listen: std::net::SocketAddr,
    /// Event loops, one thread each (Halley runs one per core).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// TCP_DEFER_ACCEPT, as Halley's `--defer-accept` (`0s`: off).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub defer_accept: Duration,
}

#[derive(Debug, Args)]
pub struct WritevFloor {
    /// Where subscribers connect.
    #[arg(long, default_value = "127.0.0.1:8097")]
    pub listen: std::net::SocketAddr,
    /// Where `POST /pub/{channel}` arrives.
    #[arg(long, default_value = "127.0.0.1:8098")]
    pub publish: std::net::SocketAddr,
    /// Event loops, one thread each.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// (internal) a worker process running request loops.
#[derive(Debug, Args)]
pub struct WorkRequests {
    #[arg(long)]
    pub url: String,
    #[arg(long)]
    pub concurrency: usize,
    #[arg(long, value_parser = parse_duration)]
    pub duration: Duration,
    #[arg(long)]
    pub keepalive: bool,
    #[arg(long)]
    pub channels: usize,
    #[arg(long)]
    pub sources: usize,
    #[arg(long)]
    pub offset: usize,
    #[arg(long, value_parser = parse_duration)]
    pub interval: Option<Duration>,
    #[arg(long, value_parser = parse_duration, default_value = "0ms")]
    pub jitter: Duration,
}

/// (internal) a worker process holding subscribers.
#[derive(Debug, Args)]
pub struct WorkSubscribers {
    #[arg(long)]
    pub url: String,
    #[arg(long)]
    pub count: usize,
    #[arg(long)]
    pub channels: usize,
    #[arg(long)]
    pub sources: usize,
    #[arg(long)]
    pub offset: usize,
    #[arg(long)]
    pub messages: usize,
    #[arg(long)]
    pub ready_on_send: bool,
    #[arg(long, default_value = "")]
    pub header: String,
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Duration,
    /// Connections opened a second by this process (0: all at once).
    #[arg(long, default_value_t = 0)]
    pub ramp: u64,
}
