//! Latency summaries and the markdown tables the bench prints.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::server::Stretch;

/// Every measured stretch of one side, merged.
pub struct Summary {
    /// Latencies in nanoseconds.
    pub hist: Histogram<u64>,
    pub completed: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

impl Summary {
    pub fn new() -> Self {
        // 1 ns to 10 minutes at 3 significant digits.
        let hist = Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("constant bounds are valid");
        Self { hist, completed: 0, errors: 0, elapsed: Duration::ZERO }
    }

    pub fn add(&mut self, s: Stretch) {
        self.completed += s.completed;
        self.errors += s.errors;
        self.elapsed += s.elapsed;
    }

    /// A latency quantile in microseconds.
    pub fn us(&self, quantile: f64) -> f64 {
        self.hist.value_at_quantile(quantile) as f64 / 1_000.0
    }

    pub fn max_us(&self) -> f64 {
        self.hist.max() as f64 / 1_000.0
    }

    /// Completed requests per second of measured time.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.completed as f64 / secs } else { 0.0 }
    }
}

/// Record the time since `sent` (nanoseconds) into `hist`.
pub fn record(hist: &mut Histogram<u64>, sent: Instant) {
    hist.saturating_record(sent.elapsed().as_nanos().try_into().unwrap_or(u64::MAX));
}

const HEADER: &str = "| workload | path | p50 µs | p90 µs | p99 µs | max µs | req/s |\n\
                      |---|---|--:|--:|--:|--:|--:|\n";

fn row(out: &mut String, workload: &str, path: &str, s: &Summary) {
    let _ = writeln!(
        out,
        "| {workload} | {path} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} |",
        s.us(0.5),
        s.us(0.9),
        s.us(0.99),
        s.max_us(),
        s.throughput()
    );
}

/// `+12.3 (×1.40)`: the extra microseconds and the ratio to direct.
fn delta(direct: f64, through: f64) -> String {
    let ratio = if direct > 0.0 { through / direct } else { f64::NAN };
    format!("{:+.1} (×{ratio:.2})", through - direct)
}

fn errors_note(out: &mut String, path: &str, s: &Summary) {
    if s.errors > 0 {
        let _ = writeln!(
            out,
            "\nwarning: {} of {} answers from {path} were JSON-RPC errors",
            s.errors, s.completed
        );
    }
}

/// One server's figures.
pub fn single(workload: &str, path: &str, s: &Summary) -> String {
    let mut out = String::from(HEADER);
    row(&mut out, workload, path, s);
    errors_note(&mut out, path, s);
    out
}

/// Direct and through vMCP, then the overhead: latency deltas (and ratios), throughput ratio.
pub fn comparison(workload: &str, direct: &Summary, vmcp: &Summary) -> String {
    let mut out = String::from(HEADER);
    row(&mut out, workload, "direct", direct);
    row(&mut out, "", "vMCP", vmcp);
    let tput = if direct.throughput() > 0.0 { vmcp.throughput() / direct.throughput() } else { f64::NAN };
    let _ = writeln!(
        out,
        "| | overhead | {} | {} | {} | | ×{tput:.2} |",
        delta(direct.us(0.5), vmcp.us(0.5)),
        delta(direct.us(0.9), vmcp.us(0.9)),
        delta(direct.us(0.99), vmcp.us(0.99)),
    );
    errors_note(&mut out, "direct", direct);
    errors_note(&mut out, "vMCP", vmcp);
    out
}

/// A comparison's table ([`comparison`]), then its CPU cost per request where it was read.
pub fn compared(workload: &str, result: &crate::compare::Comparison) -> String {
    let mut out = comparison(workload, &result.direct, &result.vmcp);
    if let Some(cpu) = &result.cpu {
        let _ = writeln!(
            out,
            "\nCPU per request: vMCP {:.1} µs; the backend {:.1} µs direct, {:.1} µs through vMCP.",
            cpu.gateway_us, cpu.backend_direct_us, cpu.backend_vmcp_us
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(latencies_us: &[u64], secs: f64) -> Summary {
        let mut s = Summary::new();
        for l in latencies_us {
            s.hist.record(l * 1_000).unwrap();
        }
        s.add(Stretch {
            completed: latencies_us.len() as u64,
            errors: 0,
            elapsed: Duration::from_secs_f64(secs),
        });
        s
    }

    #[test]
    fn comparison_shows_deltas_and_ratios() {
        let direct = summary(&[10, 10, 10, 20], 0.001);
        let vmcp = summary(&[30, 30, 30, 40], 0.002);
        let table = comparison("tools/call echo c=1", &direct, &vmcp);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[2], "| tools/call echo c=1 | direct | 10.0 | 20.0 | 20.0 | 20.0 | 4000 |");
        assert_eq!(lines[3], "|  | vMCP | 30.0 | 40.0 | 40.0 | 40.0 | 2000 |");
        assert_eq!(lines[4], "| | overhead | +20.0 (×3.00) | +20.0 (×2.00) | +20.0 (×2.00) | | ×0.50 |");
    }
}
