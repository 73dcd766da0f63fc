//! `wake-floor`: the round trip between two processes over pipes (one byte each way), which is
//! what one more process in a request's path costs at least: the two wake-ups of a hop. A
//! gateway adds one such hop on each side of a call, so at concurrency 1 its overhead cannot be
//! below about one of these round trips, however little it does itself.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use hdrhistogram::Histogram;

/// `round_trips` one-byte round trips through `cat`, after `warmup` unmeasured ones.
pub fn floor(round_trips: u64, warmup: u64) -> anyhow::Result<String> {
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start `cat`")?;
    let (mut to, mut from) =
        (child.stdin.take().context("no stdin")?, child.stdout.take().context("no stdout")?);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut byte = [0u8; 1];
    for i in 0..warmup + round_trips {
        let started = Instant::now();
        to.write_all(b"x")?;
        from.read_exact(&mut byte).context("`cat` stopped answering")?;
        if i >= warmup {
            hist.record(started.elapsed().as_nanos().max(1) as u64)?;
        }
    }
    drop(to);
    let _ = child.wait();
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(format!(
        "| process round trip over pipes (`cat`) | p50 µs | p90 µs | p99 µs |\n|---|--:|--:|--:|\n| {round_trips} round trips | {:.1} | {:.1} | {:.1} |\n",
        us(0.5),
        us(0.9),
        us(0.99)
    ))
}
