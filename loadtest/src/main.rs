//! `halley-load`: a load tester for Halley and its peers (nginx with Nchan, Pushpin),
//! event-driven like the server. Every scenario takes URL templates (`{channel}`), so
//! the same run measures any server. Connections are spread over worker processes
//! (this binary again) and over loopback source addresses; latencies go into HDR
//! histograms; the server's memory and CPU time come from `/proc/PID`.
//!
//! Files: `cli` (the scenarios and their flags), `scenarios` (what each runs and
//! reports), `workers` (the worker processes and their shares), `target` (URLs,
//! source addresses, the shared clock), `http` (where an answer ends), `requests`
//! (request loops), `subscribers` (held subscribers that find stamped messages),
//! `procs` (workers, /proc), `publish` (the publisher), `store` (storage benchmarks
//! against Halley and Redis), `grip_origin` (Pushpin's backend), `references` (the
//! minimal responder and the writev floor: the least a server can spend per
//! new-connection request and per delivered frame), `report` (tables and JSON).

mod cli;
mod grip_origin;
mod http;
mod procs;
mod publish;
mod references;
mod report;
mod requests;
mod scenarios;
mod store;
mod stream;
mod subscribers;
mod target;
mod workers;

use clap::Parser;

use cli::{Cli, Scenario};

fn main() {
    let outcome = match Cli::parse().command {
        Scenario::WorkRequests(args) => workers::work_requests(args),
        Scenario::WorkSubscribers(args) => workers::work_subscribers(args),
        Scenario::GripOrigin(args) => grip_origin::serve(&args.listen).map_err(|e| e.to_string()),
        Scenario::MinimalResponder(args) => {
            references::minimal_responder::serve(args.listen, args.threads, args.defer_accept)
                .map_err(|e| e.to_string())
        }
        Scenario::WritevFloor(args) => {
            references::writev_floor::serve(args.listen, args.publish, args.threads)
                .map_err(|e| e.to_string())
        }
        Scenario::ConnRate(args) => print(scenarios::conn_rate(args)),
        Scenario::Liveblog(args) => print(scenarios::liveblog(args)),
        Scenario::Hold(args) => print(scenarios::hold(args)),
        Scenario::Fanout(args) => print(scenarios::fanout(args)),
        Scenario::PublishUnderFlood(args) => print(scenarios::publish_under_flood(args)),
        Scenario::PublishRate(args) => print(scenarios::publish_rate(args)),
        Scenario::Catchup(args) => print(scenarios::catchup(args)),
    };
    if let Err(e) = outcome {
        eprintln!("halley-load: {e}");
        std::process::exit(1);
    }
}

/// Prints a scenario's report (a table, or JSON with `--json`).
fn print(report: Result<report::Report, String>) -> Result<(), String> {
    report?.print();
    Ok(())
}
