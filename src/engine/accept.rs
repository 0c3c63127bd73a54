//! Accepting connections on a loop's listener: up to a bound per turn, refused
//! cheaply over the port's connection limit, and, when the process runs out of
//! descriptors, handled with the one descriptor each loop keeps in reserve (the
//! port's `OnExhaustion` says how).

use std::sync::Arc;

use log::{debug, warn};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::event_loop::Listening;
use super::{Application, ByteLayer, Connection, Conns, OnExhaustion};
use crate::admission::Admission;
use crate::net;
use crate::stats::bump;
use crate::tls::TlsSession;

/// Most connections accepted in one turn of the loop, so a flood of new connections
/// cannot starve the ones already open (the rest are accepted next turn).
const ACCEPTS_PER_TURN: usize = 256;

/// How long accepting pauses when no descriptor can be had even with the reserve one:
/// long enough not to spin, short enough to recover at once.
pub const ACCEPT_PAUSE_MS: u64 = 50;

/// A loop's accepting state.
#[derive(Debug)]
pub(super) struct Acceptor {
    /// More connections may be waiting in each listener's backlog.
    pub pending: Vec<bool>,
    /// Accepting is paused until then (out of descriptors).
    paused_until_ms: u64,
    /// The subscriber loops' admission, lowered when any thread runs out of
    /// descriptors so that the loops stop keeping what the others free.
    subscribers: Arc<Admission>,
    warned_full: bool,
    warned_fds: bool,
}

impl Acceptor {
    pub fn new(subscribers: Arc<Admission>, listeners: usize) -> Acceptor {
        Acceptor {
            pending: vec![false; listeners],
            paused_until_ms: 0,
            subscribers,
            warned_full: false,
            warned_fds: false,
        }
    }

    /// Whether accepting on listener `index` should run this turn.
    pub fn ready(&self, index: usize, now_ms: u64) -> bool {
        self.pending[index] && now_ms >= self.paused_until_ms
    }

    /// When a paused accept should be tried again, if one waits.
    pub fn resume_at(&self) -> Option<u64> {
        self.pending
            .iter()
            .any(|&pending| pending)
            .then_some(self.paused_until_ms)
    }

    /// Accepts what is waiting on listener `index`, up to `ACCEPTS_PER_TURN`; stays
    /// `pending` when more may be waiting.
    pub fn accept<A: Application>(
        &mut self,
        index: usize,
        listening: &Listening,
        registry: &Registry,
        conns: &mut Conns<A::Conn>,
        app: &mut A,
    ) {
        self.pending[index] = false;
        if !conns.reserve_lent {
            // Another thread may have taken the descriptor we last gave back.
            conns.reserve.reacquire();
        }
        for _ in 0..ACCEPTS_PER_TURN {
            match listening.socket.accept() {
                Ok((socket, _)) => {
                    self.admit(socket, listening, false, registry, conns, app);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if net::is_fd_exhaustion(&e) => {
                    self.pending[index] = true;
                    self.out_of_descriptors(listening, registry, conns, app);
                    return;
                }
                // ECONNABORTED and the like concern one connection only.
                Err(e) => debug!("{}: accept: {e}", app.name()),
            }
        }
        self.pending[index] = true;
    }

    /// Takes an accepted connection, or refuses it over the port's limit. Returns
    /// whether it was kept.
    fn admit<A: Application>(
        &mut self,
        socket: TcpStream,
        listening: &Listening,
        on_reserve: bool,
        registry: &Registry,
        conns: &mut Conns<A::Conn>,
        app: &mut A,
    ) -> bool {
        let stats = app.conn_stats();
        if !conns.admission.try_admit() {
            if !self.warned_full {
                warn!(
                    "{}: at its limit of {} connections; refusing new ones with 503",
                    app.name(),
                    conns.admission.limit()
                );
                self.warned_full = true;
            }
            refuse(socket, listening, conns.limits().refusal);
            bump(&stats.conns_refused);
            return false;
        }
        let io = match &listening.tls {
            None => ByteLayer::Plain(socket),
            Some(tls) => match TlsSession::new(socket, tls.config()) {
                Ok(session) => ByteLayer::Tls(Box::new(session)),
                Err(e) => {
                    debug!("{}: TLS session: {e}", app.name());
                    bump(&stats.tls_handshake_failures);
                    conns.admission.leave();
                    return false;
                }
            },
        };
        bump(&stats.connections_accepted);
        bump(&stats.connections);
        let mut conn = Connection::new(io, conns.cx.now_ms);
        conn.on_reserve = on_reserve;
        let key = conns.insert(conn);
        if on_reserve {
            conns.reserve_lent = true;
        }
        // The request has usually arrived with the handshake: serve it now, before the
        // socket joins the epoll set. A connection finished at once (a poll answered
        // with `Connection: close`) then costs no `epoll_ctl` at all; one still open is
        // registered afterwards, and epoll reports whatever is already pending then.
        conns.drive(app, key);
        let Some(socket) = conns.get_mut(key).and_then(|c| c.io.socket()) else {
            return true;
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = registry.register(socket, Token(key), interest) {
            warn!("{}: register: {e}", app.name());
            conns.close(app, key);
        }
        true
    }

    /// The process is out of descriptors: lower the subscriber limit to what is open,
    /// then use the reserve descriptor as the port says (refuse one connection with
    /// it, or serve one on it); if even that fails, pause accepting briefly rather
    /// than spin on a listener that stays readable.
    fn out_of_descriptors<A: Application>(
        &mut self,
        listening: &Listening,
        registry: &Registry,
        conns: &mut Conns<A::Conn>,
        app: &mut A,
    ) {
        let stats = app.conn_stats();
        bump(&stats.fd_exhaustions);
        if let Some(limit) = self.subscribers.lower_on_exhaustion() {
            warn!(
                "{}: out of file descriptors; subscriber connections limited to {limit} from now on",
                app.name()
            );
        }
        if !self.warned_fds {
            warn!(
                "{}: out of file descriptors; using the reserve descriptor (each refusal is counted in /stats, not logged)",
                app.name()
            );
            self.warned_fds = true;
        }
        let handled = match conns.limits().on_exhaustion {
            OnExhaustion::Refuse => {
                let refusal = conns.limits().refusal;
                let refused = conns
                    .reserve
                    .with_released(|| match listening.socket.accept() {
                        Ok((socket, _)) => {
                            refuse(socket, listening, refusal);
                            true
                        }
                        Err(_) => false,
                    });
                if refused == Some(true) {
                    bump(&stats.fd_refusals);
                }
                refused == Some(true)
            }
            OnExhaustion::ServeOne => {
                if conns.reserve_lent || !conns.reserve.release() {
                    false
                } else {
                    match listening.socket.accept() {
                        Ok((socket, _)) => {
                            if !self.admit(socket, listening, true, registry, conns, app) {
                                conns.reserve.reacquire();
                            }
                            true
                        }
                        Err(_) => {
                            conns.reserve.reacquire();
                            false
                        }
                    }
                }
            }
        };
        if !handled {
            // Nothing could be accepted (another thread took the freed descriptor, or
            // the reserve is gone): try again after a pause. The listener will not
            // report the waiting connections again by itself (edge-triggered).
            self.paused_until_ms = conns.cx.now_ms + ACCEPT_PAUSE_MS;
        }
    }
}

/// Refuses a connection the port cannot take: with the port's plain answer, or, on a
/// TLS listener (where an answer would cost a handshake), by closing it.
fn refuse(socket: TcpStream, listening: &Listening, answer: &[u8]) {
    if listening.tls.is_none() {
        net::refuse(socket, answer);
    }
}
