//! The `halley` binary: flags to a `Config`, logging, signals (TERM and INT stop it,
//! HUP reloads the TLS pairs); the library does the rest.

use std::process::ExitCode;

use clap::Parser;
use log::{error, info};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use halley::cli::Args;
use halley::server::Server;

fn main() -> ExitCode {
    let args = Args::parse();
    env_logger::Builder::new()
        .parse_filters(&args.log_level)
        .parse_env("RUST_LOG")
        .format_timestamp_millis()
        .init();
    let mut signals = match Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(signals) => signals,
        Err(e) => {
            error!("cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::start(args.to_config()) {
        Ok(server) => server,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for signal in signals.forever() {
        if signal == SIGHUP {
            // The certificate pairs (the only settings read again; a no-op without TLS).
            server.reload_tls();
            continue;
        }
        info!("halley: signal {signal}, stopping");
        break;
    }
    server.shutdown();
    ExitCode::SUCCESS
}
