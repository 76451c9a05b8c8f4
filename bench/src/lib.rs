//! What the benchmarks share: arguments, the release binary, readings from /proc, timed
//! shell steps, medians, the figures they print and write, and (`raw_pipe`) the raw COPY
//! pipes the sync benchmark compares with.

#![allow(clippy::unwrap_used)]

pub mod raw_pipe;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

/// The value after `name` on the command line, or `default`.
pub fn argument(name: &str, default: u64) -> u64 {
    let arguments: Vec<String> = std::env::args().collect();
    arguments
        .iter()
        .position(|argument| argument == name)
        .and_then(|index| arguments.get(index + 1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

pub fn flag(name: &str) -> bool {
    std::env::args().any(|argument| argument == name)
}

/// The release `ferry` binary (or `FERRY_BINARY`).
pub fn ferry_binary() -> PathBuf {
    if let Ok(path) = std::env::var("FERRY_BINARY") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let path = PathBuf::from(target).join("release/ferry");
    assert!(
        path.exists(),
        "build it first: cargo build --release --bin ferry (or set FERRY_BINARY)"
    );
    std::fs::canonicalize(path).unwrap()
}

/// Sling's binary, where installed: `FERRY_SLING`, else PyPI's `sling-linux-amd64` in the
/// venv bench/README.md makes, else `sling` on the PATH.
pub fn sling_binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("FERRY_SLING") {
        return Some(PathBuf::from(path));
    }
    let venv = PathBuf::from(
        "/var/cache/ferry-tools/sling/lib/python3.11/site-packages/sling_linux_amd64/bin/sling-linux-amd64",
    );
    if venv.exists() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|directory| directory.join("sling"))
            .find(|path| path.exists())
    })
}

fn stat_fields(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    match stat.rfind(')') {
        Some(end) => stat[end + 2..]
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    }
}

/// User + system CPU time of a process, in clock ticks (100 per second).
pub fn cpu_ticks(pid: u32) -> u64 {
    let fields = stat_fields(pid);
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// CPU time the whole machine spent busy (user, nice, system, interrupts, stolen), in clock
/// ticks summed over its cores.
pub fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let cpu = stat.lines().next().unwrap();
    // cpu user nice system idle iowait irq softirq steal
    cpu.split_whitespace()
        .skip(1)
        .take(8)
        .enumerate()
        .filter(|(index, _)| !matches!(index, 3 | 4))
        .map(|(_, ticks)| ticks.parse::<u64>().unwrap())
        .sum()
}

/// The children of a process.
pub fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            stat_fields(*child)
                .get(1)
                .and_then(|ppid| ppid.parse().ok())
                == Some(pid)
        })
        .collect()
}

/// Peak resident memory of a process so far (VmHWM), in MB.
pub fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kilobytes| kilobytes / 1024.0)
}

/// Each measured run starts from the same place: no dirty pages left by the one before (a
/// checkpoint falling into one run and not another moves figures by 10 % and more). The
/// incremental sync so meets every changed page for the first time since a checkpoint, as a
/// sync an hour after the last one does.
pub fn settle() {
    timed_shell("psql -X -q -h 127.0.0.1 -U postgres -d postgres -c CHECKPOINT; sync");
}

/// Seconds a shell pipeline takes.
pub fn timed_shell(script: &str) -> f64 {
    let started = Instant::now();
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail; {script}"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{script}");
    started.elapsed().as_secs_f64()
}

/// What a shell pipeline prints.
pub fn shell_output(script: &str) -> String {
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail; {script}"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{script}");
    String::from_utf8(output.stdout).unwrap()
}

/// The middle of the runs (the upper one of an even count).
pub fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

/// A benchmark's figures, printed one per line as they come and written as JSON at the end.
#[derive(Default)]
pub struct Figures(Vec<(String, Value)>);

impl Figures {
    pub fn add(&mut self, name: &str, value: f64, unit: &str) {
        println!("{name}: {value:.2} {unit}");
        self.0
            .push((name.to_owned(), json!({"value": value, "unit": unit})));
    }

    /// Writes the figures to `path`, numbered in the order they came, beside `rows`.
    pub fn write(self, path: &str, rows: u64) {
        let figures: serde_json::Map<String, Value> = self
            .0
            .into_iter()
            .enumerate()
            .map(|(index, (name, value))| (format!("{index:02} {name}"), value))
            .collect();
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&json!({"rows": rows, "figures": figures})).unwrap(),
        )
        .unwrap();
        println!("written: {path}");
    }
}
