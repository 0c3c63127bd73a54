//! The `halley` binary: the command line and the configuration file to a `Config`,
//! logging, systemd's notifications, signals (TERM and INT stop it, HUP reloads the
//! TLS pairs); the library does the rest.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;
use log::{error, info};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use halley::cli::Args;
use halley::server::Server;
use halley::service::{journal_log, notify};
use halley::settings::{print, Settings, SettingsError};

fn main() -> ExitCode {
    let settings = match Settings::from_command_line(std::env::args_os()) {
        Ok(settings) => settings,
        Err(SettingsError::Flags(e)) => e.exit(),
        Err(SettingsError::File(e)) => {
            journal_log::early_error(&format!("halley: {e}"));
            return ExitCode::from(2);
        }
    };
    if settings.args.print_config {
        let threads = settings.args.to_config().threads.to_string();
        let text = print::in_force(&settings, &Args::command(), &[("threads", threads)]);
        // Not print!: a reader that goes away (`| head`) is not a panic.
        return match std::io::stdout().lock().write_all(text.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    journal_log::init(&settings.args.log_level);
    if let Some(path) = &settings.file {
        info!(
            "halley: settings from {} and the command line",
            path.display()
        );
    }
    let mut signals = match Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(signals) => signals,
        Err(e) => {
            error!("cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::start(settings.args.to_config()) {
        Ok(server) => server,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let status = format!(
        "subscribers on {}, admin on {}",
        server.subscriber_addr(),
        server.admin_addr()
    );
    let supervision = match notify::ready(server.prober(), &status) {
        Ok(supervision) => supervision,
        Err(e) => {
            error!("halley: not ready: {e}");
            server.shutdown();
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
    supervision.stopping();
    server.shutdown();
    ExitCode::SUCCESS
}
