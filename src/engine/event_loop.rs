//! The event loop, once for both ports, in the shape of mio's `tcp_server` example: a
//! `Poll` with fixed tokens for the listeners and the waker, `match event.token()`,
//! accept until `WouldBlock` (or the per-turn bound), drive each ready connection,
//! expire timers, sleep until the next deadline. The port's `Application` gets a call
//! before each sleep and after each wake-up, for its own inbox.

use std::sync::Arc;
use std::time::Duration;

use log::{error, info};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

use super::accept::Acceptor;
use super::{Application, Conns};
use crate::admission::Admission;
use crate::tls::TlsServer;

/// Token of the waker the loop's inbox uses (`usize::MAX` is mio's own).
pub const WAKER: Token = Token(usize::MAX - 1);
/// Token of the first listener; the next ones count down from it.
const FIRST_LISTENER: usize = usize::MAX - 2;

/// Which listener a token names (a connection's token gives a number past the end).
fn listener_index(token: usize) -> usize {
    FIRST_LISTENER.checked_sub(token).unwrap_or(usize::MAX)
}

/// A listening socket of a loop, and the TLS its connections speak, if any.
#[derive(Debug)]
pub struct Listening {
    pub socket: TcpListener,
    pub tls: Option<TlsServer>,
}

impl Listening {
    /// A listener whose connections speak plain HTTP.
    pub fn plain(socket: TcpListener) -> Listening {
        Listening { socket, tls: None }
    }
}

/// Readiness events taken per poll.
const EVENTS_PER_POLL: usize = 1024;

/// How long shutdown waits for answers and stream ends to be flushed before it closes
/// what is left: well inside the 2 s in which the process must exit.
const SHUTDOWN_FLUSH_MS: u64 = 1_200;

/// What the application wants of the loop after a wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Exit now, closing every connection.
    Exit,
}

/// One event loop serving its listeners (a port, and its TLS twin) with one
/// application.
pub struct EventLoop<A: Application> {
    poll: Poll,
    /// Empty once shutdown has begun.
    listeners: Vec<Listening>,
    acceptor: Acceptor,
    conns: Conns<A::Conn>,
    app: A,
    /// When shutdown gives up flushing.
    shutdown_deadline_ms: u64,
}

impl<A: Application> EventLoop<A> {
    /// A loop over `poll` (whose registry holds the application's waker as `WAKER`)
    /// serving `listeners`. `admission` counts and limits the port's connections (over
    /// all its listeners); `subscribers` is the subscriber loops' admission, lowered
    /// when the process runs out of descriptors (the same one on a subscriber loop).
    pub fn new(
        poll: Poll,
        mut listeners: Vec<Listening>,
        app: A,
        admission: Arc<Admission>,
        subscribers: Arc<Admission>,
    ) -> std::io::Result<EventLoop<A>> {
        for (index, listening) in listeners.iter_mut().enumerate() {
            poll.registry().register(
                &mut listening.socket,
                Token(FIRST_LISTENER - index),
                Interest::READABLE,
            )?;
        }
        Ok(EventLoop {
            poll,
            acceptor: Acceptor::new(subscribers, listeners.len()),
            listeners,
            conns: Conns::new(app.limits(), admission),
            app,
            shutdown_deadline_ms: u64::MAX,
        })
    }

    /// Runs until the application says exit, or a shutdown has flushed (or given up).
    pub fn run(mut self) {
        info!("{}: started", self.app.name());
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        loop {
            self.app.before_poll(&mut self.conns);
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                error!("{}: poll failed: {e}", self.app.name());
                break;
            }
            self.conns.cx.tick();
            // The application's inbox first: a subscriber that resumes on this loop with
            // a cursor it got from another loop must find that event here. The admin
            // thread queues each event to every loop before any loop can deliver it, and
            // a resuming client needs a network round trip, so the event is here by now.
            if self.app.on_wake(&mut self.conns) == Flow::Exit {
                break;
            }
            if self.conns.cx.shutting_down {
                self.stop_accepting();
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    Token(token) if listener_index(token) < self.listeners.len() => {
                        self.acceptor.pending[listener_index(token)] = true
                    }
                    Token(key) => {
                        let closing = event.is_read_closed() || event.is_error();
                        self.conns.ready(key, event.is_readable(), closing);
                        self.conns.drive(&mut self.app, key);
                    }
                }
            }
            for (index, listening) in self.listeners.iter().enumerate() {
                if self.acceptor.ready(index, self.conns.cx.now_ms) {
                    let registry = self.poll.registry();
                    self.acceptor.accept(
                        index,
                        listening,
                        registry,
                        &mut self.conns,
                        &mut self.app,
                    );
                }
            }
            self.conns.expire(&mut self.app);
            self.conns.drive_again(&mut self.app);
            if self.conns.cx.shutting_down
                && (self.conns.is_empty() || self.conns.cx.now_ms >= self.shutdown_deadline_ms)
            {
                break;
            }
        }
        let left = self.conns.len();
        self.conns.close_all(&mut self.app);
        self.app.on_exit();
        info!(
            "{}: stopped ({left} connections closed at exit)",
            self.app.name()
        );
    }

    /// Shutdown began: take the listener out of the poll (new connections wait in its
    /// backlog until the process exits) and give the rest a deadline to flush.
    fn stop_accepting(&mut self) {
        if self.shutdown_deadline_ms == u64::MAX {
            for mut listening in self.listeners.drain(..) {
                let _ = self.poll.registry().deregister(&mut listening.socket);
            }
            self.shutdown_deadline_ms = self.conns.cx.now_ms + SHUTDOWN_FLUSH_MS;
        }
    }

    /// How long to sleep: not at all when work is waiting, else until the earliest
    /// deadline (a timer, a paused accept, the shutdown's end, the application's).
    fn poll_timeout(&self) -> Option<Duration> {
        let now_ms = self.conns.cx.now_ms;
        if self.conns.has_again()
            || (0..self.listeners.len()).any(|index| self.acceptor.ready(index, now_ms))
        {
            return Some(Duration::ZERO);
        }
        let shutdown = self
            .conns
            .cx
            .shutting_down
            .then_some(self.shutdown_deadline_ms);
        let deadline = [
            self.conns.next_deadline(),
            self.acceptor.resume_at(),
            shutdown,
            self.app.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()?;
        let now = self.conns.cx.elapsed_ms();
        Some(Duration::from_millis(deadline.saturating_sub(now)))
    }
}
