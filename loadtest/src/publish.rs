//! The publisher: one kept-alive connection, a POST per message, timed from sending
//! to the whole answer.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::http::{closes, read_answer};
use crate::target::{monotonic_ns, Target};

pub struct Publisher {
    target: Target,
    stream: TcpStream,
    /// The last answer said `Connection: close` (Pushpin's does): connect again,
    /// before the next publish's clock starts.
    closed: bool,
}

impl Publisher {
    /// Connects, and asks the kernel for a short scheduler slice for the calling
    /// thread: under a flood the tester's own busy processes would otherwise delay the
    /// publisher's wake-ups, and that delay would be counted as the server's.
    pub fn connect(target: &Target) -> Result<Publisher, String> {
        let _ = halley::sched::request_slice(halley::sched::SHORTEST_SLICE);
        Publisher::open(target)
    }

    /// Opens the connection (again, after a close: the thread keeps its slice).
    fn open(target: &Target) -> Result<Publisher, String> {
        let stream = TcpStream::connect_timeout(&target.addr, Duration::from_secs(5))
            .map_err(|e| format!("publisher: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        Ok(Publisher {
            target: target.clone(),
            stream,
            closed: false,
        })
    }

    /// Publishes `payload` to `channel` with the body template; returns the
    /// microseconds the answer took, or an error for anything but a 2xx.
    pub fn publish(
        &mut self,
        channel: &str,
        body_template: &str,
        payload: &str,
    ) -> Result<u64, String> {
        let body = body_template
            .replace("{payload}", payload)
            .replace("{channel}", channel);
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            self.target.path_for(channel),
            self.target.host,
            body.len()
        );
        if self.closed {
            *self = Publisher::open(&self.target)?;
        }
        let started = monotonic_ns();
        if self.stream.write_all(request.as_bytes()).is_err() {
            *self = Publisher::open(&self.target)?;
            self.stream
                .write_all(request.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        let mut input = Vec::new();
        let status =
            read_answer(&mut self.stream, &mut input).map_err(|e| format!("publish: {e}"))?;
        if !(200..300).contains(&status) {
            return Err(format!("publish answered {status}"));
        }
        let micros = (monotonic_ns() - started) / 1000;
        self.closed = closes(&input);
        Ok(micros)
    }
}
