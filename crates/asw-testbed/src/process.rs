//! `aswhub run` as a child process, as operators run it: the daemon tests and the benchmark
//! start, kill, stop and measure it through one [`HubProcess`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `aswhub run` that is killed (SIGKILL) when dropped, so a failing test or bench leaves
/// no daemon behind.
#[derive(Debug)]
pub struct HubProcess {
    child: Child,
    config: PathBuf,
}

impl HubProcess {
    /// Starts `exe run --config config` with `RUST_LOG=warn`, its log going to a file beside the
    /// configuration (a pipe nobody reads would fill up and stall the daemon; see [`logs`]).
    pub fn start(exe: &Path, config: &Path) -> std::io::Result<HubProcess> {
        let path = config.with_file_name(format!("aswhub-{}.log", uuid::Uuid::new_v4().simple()));
        let log = std::fs::File::create(path)?;
        HubProcess::start_with(exe, config, "warn", Stdio::from(log))
    }

    /// Starts `exe run --config config` with this `RUST_LOG` and standard error.
    pub fn start_with(
        exe: &Path,
        config: &Path,
        rust_log: &str,
        stderr: Stdio,
    ) -> std::io::Result<HubProcess> {
        let child = Command::new(exe)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()?;
        Ok(HubProcess {
            child,
            config: config.to_owned(),
        })
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and waits for the exit: how it exited and how long that took.
    pub fn terminate(&mut self) -> std::io::Result<(ExitStatus, Duration)> {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "kill -TERM exited with {status}"
            )));
        }
        let exit = self.child.wait()?;
        Ok((exit, started.elapsed()))
    }

    /// SIGTERM; panics (with the daemon's logs) unless it drains and exits 0. For tests.
    pub fn assert_terminates(mut self) {
        let exit = self.terminate();
        assert!(
            matches!(&exit, Ok((status, _)) if status.success()),
            "SIGTERM ends the daemon with success, got {exit:?}; logs:\n{}",
            logs(&self.config)
        );
    }

    /// The peak resident memory of the process so far (`VmHWM`), in KiB; 0 if unknown.
    pub fn peak_kb(&self) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        text.lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// Every daemon log that [`HubProcess::start`] wrote beside `config`.
pub fn logs(config: &Path) -> String {
    let Some(dir) = config.parent() else {
        return String::new();
    };
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with("aswhub-") {
            out.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    out
}
