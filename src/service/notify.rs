//! systemd's `Type=notify`: `READY=1` once every event loop answers (both ports are
//! bound before that, and the loops accept on them), `STOPPING=1` on the way out, and
//! with `WatchdogSec=` a thread that sends `WATCHDOG=1` at half the interval, each
//! time only after every loop has answered again, so a wedged loop gets the service
//! restarted. Without `NOTIFY_SOCKET` nothing is sent (sd-notify's `notify` does
//! nothing), and without `WATCHDOG_USEC` no thread starts.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{info, warn};
use sd_notify::NotifyState;

use crate::server::Prober;

/// How long the loops have to answer before the server counts as ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The watchdog, while the server runs.
pub struct Supervision {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Waits for every loop to answer, then tells systemd the service is ready (with
/// `status` as its status line) and starts the watchdog if systemd asked for one.
pub fn ready(prober: Prober, status: &str) -> Result<Supervision, String> {
    prober.all_answer(READY_TIMEOUT)?;
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return Ok(Supervision {
            stop: None,
            thread: None,
        });
    };
    let (stop, stopped) = crossbeam_channel::bounded(1);
    let every = interval / 2;
    info!("halley: telling systemd's watchdog every {every:?} that every loop answers");
    let thread = std::thread::Builder::new()
        .name("halley-watchdog".into())
        .spawn(move || watch(prober, every, stopped))
        .map_err(|e| format!("cannot start the watchdog thread: {e}"))?;
    Ok(Supervision {
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl Supervision {
    /// Tells systemd the service is stopping, and stops the watchdog.
    pub fn stopping(mut self) {
        notify(&[NotifyState::Stopping]);
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn watch(prober: Prober, every: Duration, stopped: Receiver<()>) {
    let mut failing = false;
    loop {
        match stopped.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        match prober.all_answer(every / 2) {
            Ok(()) => {
                if failing {
                    info!("halley: every event loop answers again");
                    failing = false;
                }
                notify(&[NotifyState::Watchdog]);
            }
            Err(e) => {
                warn!("halley: {e}; the watchdog is not told this time");
                failing = true;
            }
        }
    }
}

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!("halley: cannot notify systemd: {e}");
    }
}
