//! CPU and memory readings: a process's CPU time per document, the machine's description.

use super::*;

/// CPU time used so far by the hub, the broker, this process and the whole machine, in clock
/// ticks, to divide the CPU of a phase among them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSample {
    hub: u64,
    broker: u64,
    bench: u64,
    busy: u64,
    total: u64,
}

impl CpuSample {
    pub(crate) fn take(hub: u32) -> CpuSample {
        let process = |pid: &str| -> u64 {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|text| {
                    // Fields after the command name (which may hold spaces), from field 3 on.
                    let rest = text.rsplit_once(')')?.1.to_owned();
                    let fields: Vec<&str> = rest.split_whitespace().collect();
                    let utime: u64 = fields.get(11)?.parse().ok()?;
                    let stime: u64 = fields.get(12)?.parse().ok()?;
                    Some(utime + stime)
                })
                .unwrap_or(0)
        };
        let broker = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "beam.smp")
            })
            .map(|e| process(&e.file_name().to_string_lossy()))
            .sum();
        let (busy, total) = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| {
                let line = text.lines().next()?.to_owned();
                let ticks: Vec<u64> = line
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|v| v.parse().ok())
                    .collect();
                let total: u64 = ticks.iter().take(8).sum();
                let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
                Some((total - idle, total))
            })
            .unwrap_or((0, 0));
        CpuSample {
            hub: process(&hub.to_string()),
            broker,
            bench: process("self"),
            busy,
            total,
        }
    }

    /// A row dividing the CPU used since `self` by `docs` documents.
    pub(crate) fn row(&self, figure: &str, docs: usize, hub: u32) -> Row {
        let now = CpuSample::take(hub);
        // Clock ticks are 1/100 s on Linux.
        let ms = |ticks: u64| ticks as f64 * 10.0 / docs.max(1) as f64;
        let busy = now.busy.saturating_sub(self.busy) as f64
            / now.total.saturating_sub(self.total).max(1) as f64;
        Row {
            figure: format!("{figure}: CPU per document, hub / broker / load"),
            value: format!(
                "{:.2}/{:.2}/{:.2} ms",
                ms(now.hub.saturating_sub(self.hub)),
                ms(now.broker.saturating_sub(self.broker)),
                ms(now.bench.saturating_sub(self.bench)),
            ),
            note: format!(
                "machine {:.0}% busy; the load is this benchmark publishing and counting",
                busy * 100.0
            ),
        }
    }
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let mem = status_meminfo();
    format!("{cores} cores ({cpu}), {mem:.0} GiB RAM")
}

pub(crate) fn status_meminfo() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0)
}
