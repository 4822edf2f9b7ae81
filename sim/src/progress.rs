//! Progress of a sweep on stderr: a bar redrawn in place on a terminal, and
//! plain lines now and then (at every tenth of the runs, and the last)
//! when stderr is a file or a CI log, which would otherwise hold every
//! redraw as one long line.

use std::time::Duration;

/// How far a sweep has got, and what to print about it.
#[derive(Debug)]
pub struct Progress {
    total: usize,
    terminal: bool,
    /// Tenths of the total already reported (plain lines only).
    reported_tenths: usize,
}

/// Cells of the bar.
const BAR: usize = 30;

impl Progress {
    /// Progress over `total` runs (seeds times configurations); `terminal`: whether stderr is one
    /// (`std::io::IsTerminal`).
    pub fn new(total: usize, terminal: bool) -> Self {
        Self {
            total: total.max(1),
            terminal,
            reported_tenths: 0,
        }
    }

    /// What to print once `done` runs are over (`failed` of them failed)
    /// after `elapsed`: the redrawn bar on a terminal (starting with `\r`,
    /// no newline), else a line at each new tenth of the total and at the
    /// end, and nothing in between.
    pub fn update(&mut self, done: usize, failed: usize, elapsed: Duration) -> Option<String> {
        let done = done.min(self.total);
        let status = format!(
            "{done}/{} runs, {failed} failed, {:.0} s",
            self.total,
            elapsed.as_secs_f64()
        );
        if self.terminal {
            let filled = done * BAR / self.total;
            return Some(format!(
                "\r[{}{}] {status}",
                "#".repeat(filled),
                ".".repeat(BAR - filled)
            ));
        }
        let tenths = done * 10 / self.total;
        if tenths > self.reported_tenths || (done == self.total && self.reported_tenths < 10) {
            self.reported_tenths = tenths.max(self.reported_tenths);
            return Some(format!("sweep: {status}\n"));
        }
        None
    }

    /// What ends the output: a newline after a bar, nothing after lines.
    pub fn finish(&self) -> &'static str {
        if self.terminal { "\n" } else { "" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &mut Progress, total: usize) -> Vec<String> {
        (1..=total)
            .filter_map(|n| p.update(n, n / 7, Duration::from_secs(n as u64)))
            .collect()
    }

    #[test]
    fn off_a_terminal_a_line_per_tenth_and_no_carriage_return() {
        let mut p = Progress::new(100, false);
        let lines = all(&mut p, 100);
        assert_eq!(lines.len(), 10, "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains('\r') && l.ends_with('\n')));
        assert_eq!(lines[0], "sweep: 10/100 runs, 1 failed, 10 s\n");
        assert_eq!(lines[9], "sweep: 100/100 runs, 14 failed, 100 s\n");
        assert_eq!(p.finish(), "");
    }

    #[test]
    fn few_seeds_off_a_terminal_each_one_and_the_last_once() {
        let mut p = Progress::new(3, false);
        let lines = all(&mut p, 3);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[2].starts_with("sweep: 3/3 runs"));
        assert_eq!(p.update(3, 0, Duration::ZERO), None, "the end is said once");
    }

    #[test]
    fn on_a_terminal_the_bar_is_redrawn_in_place() {
        let mut p = Progress::new(4, true);
        let lines = all(&mut p, 4);
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| l.starts_with('\r') && !l.contains('\n')));
        assert_eq!(
            lines[1],
            format!("\r[{}{}] 2/4 runs, 0 failed, 2 s", "#".repeat(15), ".".repeat(15))
        );
        assert_eq!(p.finish(), "\n");
    }
}
