//! Worker processes and the server's figures. A scenario spreads its connections over
//! several processes of this binary (one process may hold only so many descriptors),
//! tells them when to start and stop over their standard input, and reads one `ready`
//! line and one `result {json}` line from each. The server's memory and CPU time come
//! from `/proc/PID`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Running worker processes.
pub struct Workers {
    children: Vec<Child>,
    inputs: Vec<ChildStdin>,
    lines: Receiver<(usize, String)>,
}

impl Workers {
    /// Starts one worker per argument list (each `halley-load <args>`).
    pub fn spawn(arg_lists: Vec<Vec<String>>) -> std::io::Result<Workers> {
        let exe = std::env::current_exe()?;
        let (sender, lines) = channel();
        let mut children = Vec::new();
        let mut inputs = Vec::new();
        for (number, args) in arg_lists.into_iter().enumerate() {
            let mut child = Command::new(&exe)
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            inputs.push(child.stdin.take().expect("piped"));
            let stdout = child.stdout.take().expect("piped");
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if sender.send((number, line)).is_err() {
                        break;
                    }
                }
            });
            children.push(child);
        }
        Ok(Workers {
            children,
            inputs,
            lines,
        })
    }

    /// Waits for a line starting with `word` from every worker; returns their rests.
    pub fn wait_all(&self, word: &str, timeout: Duration) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + timeout;
        let mut got: Vec<Option<String>> = vec![None; self.children.len()];
        while got.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            let (number, line) = self
                .lines
                .recv_timeout(left)
                .map_err(|_| format!("workers did not all say {word} within {timeout:?}"))?;
            if let Some(rest) = line.strip_prefix(word) {
                got[number] = Some(rest.trim().to_string());
            }
        }
        Ok(got.into_iter().map(|g| g.expect("all")).collect())
    }

    /// Sends a line to every worker.
    pub fn tell(&mut self, line: &str) {
        for input in &mut self.inputs {
            let _ = writeln!(input, "{line}");
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads stop commands (or end of input) from the parent: sets `stop`, and `go` when
/// told to start.
pub fn listen_to_parent(
    stop: &'static std::sync::atomic::AtomicBool,
    go: &'static std::sync::atomic::AtomicBool,
) {
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            match line.as_deref() {
                Ok("go") => go.store(true, std::sync::atomic::Ordering::Relaxed),
                Ok("stop") | Err(_) => break,
                _ => {}
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

/// `figure` summed over `pids`; `None` without pids or when one cannot be read.
pub fn sum(pids: &[u32], figure: fn(u32) -> Option<u64>) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| figure(pid)).sum()
}

/// Resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system) of process `pid`, in clock ticks (10 ms).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let (user, system) = user_system_ticks(pid)?;
    Some(user + system)
}

/// CPU time process `pid` spent in the kernel, in clock ticks (10 ms). Loopback's
/// receive work runs in softirq on whichever task is on the core, so this is the
/// kernel's share as the kernel books it, not an exact split.
pub fn system_ticks(pid: u32) -> Option<u64> {
    Some(user_system_ticks(pid)?.1)
}

/// The servers' CPU time over a window of a scenario, all of it and the kernel's.
pub struct CpuWindow<'a> {
    pids: &'a [u32],
    before: Option<(u64, u64)>,
}

impl CpuWindow<'_> {
    /// Starts the window now.
    pub fn start(pids: &[u32]) -> CpuWindow<'_> {
        CpuWindow {
            pids,
            before: CpuWindow::read(pids),
        }
    }

    /// Milliseconds of CPU since the start, and the kernel's share of them (0 to 1).
    pub fn finish(&self) -> Option<(f64, f64)> {
        let (total_before, system_before) = self.before?;
        let (total, system) = CpuWindow::read(self.pids)?;
        let total_ms = total.saturating_sub(total_before) as f64 * 10.0;
        let system_ms = system.saturating_sub(system_before) as f64 * 10.0;
        let share = if total_ms > 0.0 {
            system_ms / total_ms
        } else {
            0.0
        };
        Some((total_ms, share))
    }

    fn read(pids: &[u32]) -> Option<(u64, u64)> {
        Some((sum(pids, cpu_ticks)?, sum(pids, system_ticks)?))
    }
}

/// `utime` and `stime` of `/proc/PID/stat`.
fn user_system_ticks(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    Some((
        fields.get(11)?.parse::<u64>().ok()?,
        fields.get(12)?.parse::<u64>().ok()?,
    ))
}

/// A histogram as `[[value, count], ...]`, to pass between processes.
pub fn histogram_to_json(h: &Histogram<u64>) -> serde_json::Value {
    h.iter_recorded()
        .map(|v| serde_json::json!([v.value_iterated_to(), v.count_at_value()]))
        .collect()
}

/// Adds a histogram passed as JSON into `into`.
pub fn merge_histogram(into: &mut Histogram<u64>, json: &serde_json::Value) {
    for pair in json.as_array().into_iter().flatten() {
        if let (Some(value), Some(count)) = (pair[0].as_u64(), pair[1].as_u64()) {
            let _ = into.record_n(value.max(1), count);
        }
    }
}

/// An empty latency histogram: 1 µs to 120 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("bounds")
}
