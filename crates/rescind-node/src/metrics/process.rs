//! The standard `process_*` metrics, read from `/proc/self` (Linux; absent
//! elsewhere).

/// One reading of the process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessSample {
    /// User and system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident memory, bytes.
    pub resident_bytes: u64,
    /// Virtual memory, bytes.
    pub virtual_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit on file descriptors.
    pub max_fds: u64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// OS threads.
    pub threads: u64,
}

/// Clock ticks per second of `/proc` times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Read the process's figures (None where `/proc` is missing).
pub fn sample() -> Option<ProcessSample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let boot = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    Some(parse(&stat, &status, &limits, &boot, open_fds))
}

fn kib(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
}

/// Parse the `/proc` texts.
fn parse(stat: &str, status: &str, limits: &str, boot: &str, open_fds: u64) -> ProcessSample {
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15, starttime 22.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let btime = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    ProcessSample {
        cpu_seconds: (field(14) + field(15)) as f64 / TICKS_PER_SECOND,
        resident_bytes: kib(status, "VmRSS:") * 1024,
        virtual_bytes: kib(status, "VmSize:") * 1024,
        open_fds,
        max_fds,
        start_time_seconds: btime as f64 + field(22) as f64 / TICKS_PER_SECOND,
        threads: kib(status, "Threads:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_texts_parse() {
        let stat = "4242 (rescind (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 12345 999 1";
        let status = "Name:\trescind\nVmSize:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t9\n";
        let limits = "Limit Soft Hard Units\nMax open files            1024                 4096                 files\n";
        let s = parse(stat, status, limits, "cpu 1 2 3\nbtime 1700000000\n", 12);
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.resident_bytes, 1024 * 1024);
        assert_eq!(s.virtual_bytes, 2048 * 1024);
        assert_eq!(s.threads, 9);
        assert_eq!(s.max_fds, 1024);
        assert_eq!(s.open_fds, 12);
        assert_eq!(s.start_time_seconds, 1_700_000_000.0 + 123.45);
    }

    #[test]
    fn this_process_reads() {
        if let Some(s) = sample() {
            assert!(s.resident_bytes > 0 && s.threads >= 1 && s.open_fds >= 1, "{s:?}");
        }
    }
}
