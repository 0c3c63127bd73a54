//! Scheduling hints to the kernel: the admin thread asks for a short time slice, so
//! that a publish preempts busy subscriber loops instead of waiting for their slices to
//! run out (Linux 6.12 and later, whose EEVDF scheduler takes a fair task's slice from
//! `sched_setattr`; older kernels ignore it).

use std::io;
use std::time::Duration;

/// The shortest slice the kernel grants a fair task (it clamps requests to 0.1–100 ms).
pub const SHORTEST_SLICE: Duration = Duration::from_micros(100);

/// `struct sched_attr` as the kernel reads it (its first version, 48 bytes).
#[repr(C)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
}

/// Asks for a time slice of `slice` for the calling thread, keeping the normal policy
/// and its niceness. The kernel clamps it to 0.1–100 ms. Needs no privilege.
pub fn request_slice(slice: Duration) -> io::Result<()> {
    // SAFETY: getpriority reads the calling thread's nice value (who 0 = this thread).
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: 0,
        sched_nice: nice,
        sched_priority: 0,
        sched_runtime: u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX),
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: a valid sched_attr of the size it says, for the calling thread (pid 0).
    let done = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slice the scheduler reports for the calling thread, in nanoseconds, where the
    /// kernel shows it (`/proc/thread-self/sched`, with scheduler debugging built in).
    fn reported_slice() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
        let line = text.lines().find(|l| l.starts_with("se.slice"))?;
        line.split(':').nth(1)?.trim().parse().ok()
    }

    #[test]
    fn the_thread_gets_the_slice_it_asks_for() {
        std::thread::spawn(|| {
            let before = reported_slice();
            request_slice(SHORTEST_SLICE).expect("sched_setattr");
            if let Some(before) = before {
                assert_ne!(before, 100_000, "the default slice was already 0.1 ms");
                assert_eq!(reported_slice(), Some(100_000));
            }
        })
        .join()
        .unwrap();
    }
}
