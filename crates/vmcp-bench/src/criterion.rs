//! `criterion-table`: criterion's saved estimates (`target/criterion/**/new/`) as one markdown
//! table, so that `run-benchmarks.sh` prints micro-benchmarks the way it prints load runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use serde_json::Value;

use crate::workload::UsageError;

/// One benchmark's median and what it processed per iteration.
struct Entry {
    id: String,
    median_ns: f64,
    bytes: Option<f64>,
    written: SystemTime,
}

/// The table of every benchmark under `dir` saved after `newer_than` (when given), in the order
/// they ran.
pub fn table(dir: &Path, newer_than: Option<&Path>) -> anyhow::Result<String> {
    if !dir.is_dir() {
        return Err(
            UsageError(format!("{} is not a directory; run `cargo bench` first", dir.display())).into()
        );
    }
    let since = match newer_than {
        Some(p) => Some(
            std::fs::metadata(p).and_then(|m| m.modified()).with_context(|| format!("{}", p.display()))?,
        ),
        None => None,
    };
    let mut found = Vec::new();
    collect(dir, &mut found)?;
    let mut entries = Vec::new();
    for new_dir in found {
        let entry = read_entry(&new_dir).with_context(|| format!("reading {}", new_dir.display()))?;
        if since.is_none_or(|s| entry.written > s) {
            entries.push(entry);
        }
    }
    entries.sort_by_key(|e| e.written);
    let mut out = String::from("| benchmark | median | throughput |\n|---|--:|--:|\n");
    for e in &entries {
        let tput = e.bytes.map_or_else(String::new, |b| rate(b / (e.median_ns / 1e9)));
        let _ = writeln!(out, "| {} | {} | {tput} |", e.id, duration(e.median_ns));
    }
    Ok(out)
}

/// Every `new/` directory that holds a `benchmark.json`.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for item in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = item?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") && path.join("benchmark.json").is_file() {
            out.push(path);
        } else {
            collect(&path, out)?;
        }
    }
    Ok(())
}

fn read_entry(new_dir: &Path) -> anyhow::Result<Entry> {
    let bench: Value = serde_json::from_slice(&std::fs::read(new_dir.join("benchmark.json"))?)?;
    let estimates_path = new_dir.join("estimates.json");
    let estimates: Value = serde_json::from_slice(&std::fs::read(&estimates_path)?)?;
    let written = std::fs::metadata(&estimates_path)?.modified()?;
    Ok(Entry {
        id: bench["full_id"].as_str().unwrap_or("?").to_owned(),
        median_ns: estimates["median"]["point_estimate"].as_f64().unwrap_or(f64::NAN),
        bytes: bench["throughput"]["Bytes"].as_f64(),
        written,
    })
}

fn duration(ns: f64) -> String {
    match ns {
        n if n < 1e3 => format!("{n:.0} ns"),
        n if n < 1e6 => format!("{:.1} µs", n / 1e3),
        n => format!("{:.2} ms", n / 1e6),
    }
}

fn rate(bytes_per_sec: f64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes_per_sec >= 1024.0 * MIB {
        format!("{:.2} GiB/s", bytes_per_sec / (1024.0 * MIB))
    } else {
        format!("{:.0} MiB/s", bytes_per_sec / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_durations_and_rates() {
        assert_eq!(duration(365.4), "365 ns");
        assert_eq!(duration(21_080.0), "21.1 µs");
        assert_eq!(duration(1_636_800.0), "1.64 ms");
        assert_eq!(rate(300.0 * 1024.0 * 1024.0), "300 MiB/s");
        assert_eq!(rate(1.5 * 1024.0 * 1024.0 * 1024.0), "1.50 GiB/s");
    }

    #[test]
    fn reads_saved_estimates() {
        let dir = tempfile::tempdir().unwrap();
        let new_dir = dir.path().join("group/fn/new");
        std::fs::create_dir_all(&new_dir).unwrap();
        std::fs::write(
            new_dir.join("benchmark.json"),
            r#"{"full_id":"group/fn","throughput":{"Bytes":2048}}"#,
        )
        .unwrap();
        std::fs::write(new_dir.join("estimates.json"), r#"{"median":{"point_estimate":1000.0}}"#).unwrap();
        let table = table(dir.path(), None).unwrap();
        assert!(table.ends_with("| group/fn | 1.0 µs | 1.91 GiB/s |\n"), "{table}");
    }
}
