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
    /// The log line that says where it listens and how many connections it allows.
    pub start_line: String,
    /// The log lines after it, as they come.
    pub log: std::sync::mpsc::Receiver<String>,
}

impl Drop for Halley {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The flags every test's binary starts with: ephemeral loopback ports, two loops.
pub const EPHEMERAL: [&str; 6] = [
    "--listen",
    "127.0.0.1:0",
    "--admin-listen",
    "127.0.0.1:0",
    "--threads",
    "2",
];

/// The `halley` binary with none of the environment it reads from a service manager or
/// a shell (`RUST_LOG`, `JOURNAL_STREAM`, `NOTIFY_SOCKET`, `WATCHDOG_*`), so a test sets
/// only what it means to.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_halley"));
    for variable in [
        "RUST_LOG",
        "JOURNAL_STREAM",
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
    ] {
        command.env_remove(variable);
    }
    command
}

/// Starts `halley` with `args` (besides ephemeral ports and two loops); its addresses
/// are read from its start-up log line.
pub fn spawn(args: &[&str]) -> Halley {
    spawn_limited(args, None, 0)
}

/// Starts `halley` with its descriptor limit (soft and hard) set to `fd_limit` if
/// given, and with `inherited_fds` open descriptors (numbers 10 and up) that it does
/// not know about, as a process started by a careless parent has. A `bash` wrapper
/// opens them and sets the limit after its own exec (so none of this test process's
/// descriptors are in the way), then execs `halley` in its place, under the same pid.
pub fn spawn_limited(args: &[&str], fd_limit: Option<u64>, inherited_fds: usize) -> Halley {
    let mut script = String::from("for ((i = 0; i < $1; i++)); do exec {fd}</dev/null; done; ");
    if let Some(limit) = fd_limit {
        script.push_str(&format!("ulimit -n {limit}; "));
    }
    script.push_str("shift; exec \"$@\"");
    let mut command = Command::new("bash");
    command
        .args(["-c", &script, "halley-wrapper", &inherited_fds.to_string()])
        .arg(env!("CARGO_BIN_EXE_halley"))
        .args(EPHEMERAL)
        .args(args);
    spawn_command(command)
}

/// Starts `command` (which runs `halley`, directly or through a wrapper such as `ip
/// netns exec`) with its log piped; its addresses are read from its start-up line.
pub fn spawn_command(mut command: Command) -> Halley {
    command.env_remove("RUST_LOG").stderr(Stdio::piped());
    let child = command.spawn().expect("spawn halley");
    let (sender, receiver) = std::sync::mpsc::channel();
    let mut halley = Halley {
        child,
        sub: "0.0.0.0:0".parse().unwrap(),
        admin: "0.0.0.0:0".parse().unwrap(),
        start_line: String::new(),
        log: receiver,
    };
    let stderr = halley.child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + super::WAIT;
    loop {
        let line = halley
            .log
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
            halley.start_line = line;
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

    /// Waits for a log line containing `needle` (bounded by `WAIT`); returns it.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + super::WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {needle:?}"),
            }
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
