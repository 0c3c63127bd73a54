//! Accepting connections on a loop's listener, and refusing them cheaply when the
//! server is full (`--max-conns`) or the process is out of descriptors.

use log::warn;
use mio::{Interest, Token};

use super::conn::Conn;
use super::Worker;
use crate::net;
use crate::stats::bump;

/// Most connections accepted in one turn of the loop, so a flood of new connections
/// cannot starve the ones already open (the rest are accepted next turn).
const ACCEPTS_PER_TURN: usize = 256;

/// How long accepting pauses when no descriptor can be had even after releasing the
/// reserve: long enough not to spin, short enough to recover at once.
pub const ACCEPT_PAUSE_MS: u64 = 100;

/// The answer to a connection over `--max-conns` or past the descriptor limit.
pub const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: 31\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\n\r\nthe server is full, retry soon\n";

impl Worker {
    /// Accepts what is waiting, up to `ACCEPTS_PER_TURN`; sets `accept_pending` when
    /// more may be waiting.
    pub(super) fn accept(&mut self) {
        self.accept_pending = false;
        // Another thread may have taken the descriptor we last gave back.
        self.reserve.reacquire();
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((socket, _)) => self.admit(socket),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if net::is_fd_exhaustion(&e) => {
                    self.refuse_without_descriptors();
                    return;
                }
                Err(e) => {
                    // ECONNABORTED and the like concern one connection only.
                    log::debug!("worker {}: accept: {e}", self.env.number);
                }
            }
        }
        self.accept_pending = true;
    }

    fn admit(&mut self, socket: mio::net::TcpStream) {
        let stats = &self.env.stats;
        if !self.env.admission.try_admit() {
            if !self.warned_full {
                warn!(
                    "worker {}: --max-conns {} reached; refusing new connections with 503",
                    self.env.number,
                    self.env.admission.limit()
                );
                self.warned_full = true;
            }
            net::refuse(socket, REFUSAL);
            bump(&stats.loops[self.env.number].conns_refused);
            return;
        }
        let key = self.conns.insert(Conn::new(socket, self.env.now_ms));
        let loop_stats = &self.env.stats.loops[self.env.number];
        bump(&loop_stats.connections_accepted);
        bump(&loop_stats.connections);
        // The request has usually arrived with the handshake: serve it now, before the
        // socket joins the epoll set. A connection finished at once (a poll answered
        // with `Connection: close`) then costs no `epoll_ctl` at all; one still open is
        // registered afterwards, and epoll reports whatever is already pending then.
        self.drive(key);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Err(e) = self.poll.registry().register(
            &mut conn.socket,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            warn!("worker {}: register: {e}", self.env.number);
            self.close(key);
        }
    }

    /// Out of descriptors: release the reserve one, accept and refuse one connection
    /// with it, and take it back; if even that fails, pause accepting briefly rather
    /// than spin on a listener that stays readable.
    fn refuse_without_descriptors(&mut self) {
        let number = self.env.number;
        bump(&self.env.stats.loops[number].fd_exhaustions);
        if let Some(limit) = self.env.admission.lower_on_exhaustion() {
            warn!("worker {number}: out of file descriptors; subscriber connections limited to {limit} from now on");
        }
        let listener = self.listener.as_ref();
        let refused = self
            .reserve
            .with_released(|| match listener.map(|l| l.accept()) {
                Some(Ok((socket, _))) => {
                    net::refuse(socket, REFUSAL);
                    true
                }
                _ => false,
            });
        if refused == Some(true) {
            bump(&self.env.stats.loops[number].fd_refusals);
        }
        if !self.warned_fds {
            warn!("worker {number}: out of file descriptors; refusing new connections with 503 (each refusal is counted in /stats, not logged)");
            self.warned_fds = true;
        }
        if refused != Some(true) {
            // Nothing could be accepted (another thread took the freed descriptor, or
            // the reserve is gone): try again after a pause. The listener will not
            // report the waiting connections again by itself (edge-triggered).
            self.accept_paused_until = self.env.now_ms + ACCEPT_PAUSE_MS;
        }
        self.accept_pending = true;
    }
}
