//! Reading documents named on the command line: a file, or stdin for `-`, bounded in size.

use std::io::Read;
use std::path::Path;

use anyhow::Context;

/// How a file is named in output (`-` for stdin).
pub fn display_name(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Reads a file or stdin, holding at most one byte more than `max_bytes` in memory (the
/// validator or verifier then reports the size problem itself, with its rule).
pub fn read_input(path: &Path, max_bytes: usize) -> anyhow::Result<Vec<u8>> {
    let cap = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(cap)
            .read_to_end(&mut bytes)
            .context("reading stdin")?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?
            .take(cap)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(bytes)
}
