//! The real `halley` binary as a child process on ephemeral loopback ports.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The child process, killed and reaped if a test ends before it exits.
pub struct Halley {
    pub child: Child,
    pub sub: SocketAddr,
    pub admin: SocketAddr,
}

impl Drop for Halley {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `halley` with `args` (besides ephemeral ports and two loops), with its
/// descriptor limit (soft and hard) set to `fd_limit` if given; its addresses are read
/// from its start-up log line.
pub fn spawn(args: &[&str], fd_limit: Option<u64>) -> Halley {
    let mut command = Command::new(env!("CARGO_BIN_EXE_halley"));
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--threads",
            "2",
        ])
        .args(args)
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped());
    if let Some(limit) = fd_limit {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        unsafe {
            command.pre_exec(move || {
                let rlimit = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let child = command.spawn().expect("spawn halley");
    let mut halley = Halley {
        child,
        sub: "0.0.0.0:0".parse().unwrap(),
        admin: "0.0.0.0:0".parse().unwrap(),
    };
    let stderr = halley.child.stderr.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + super::WAIT;
    loop {
        let line = receiver
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the start-up line");
        if let Some(rest) = line.split("subscribers on ").nth(1) {
            halley.sub = rest.split(' ').next().unwrap().parse().unwrap();
            halley.admin = line
                .rsplit("admin on ")
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            return halley;
        }
    }
}

impl Halley {
    /// Waits for the process to exit, failing the test after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "halley did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// CPU time the process has used (user + system), in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_name.split(' ').collect();
        // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the state field.
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill sends a signal to our own child process.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// The `/stats` document.
    pub fn stats(&self) -> serde_json::Value {
        super::Client::connect(self.admin)
            .exchange(b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .json()
    }
}
