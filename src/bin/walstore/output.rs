//! Writing a command's result to stdout: one JSON document with `--json`, text lines
//! otherwise. Every write error becomes a [`CliError`], never a panic (a closed pipe
//! must not kill the process with a backtrace).

use std::io::{BufWriter, Stdout, StdoutLock, Write};
use std::path::Path;

use serde::Serialize;

use crate::CliResult;
use crate::failure::CliError;

/// A buffered stdout; flushed by [`Out::finish`], which reports a failed flush.
pub struct Out {
    writer: BufWriter<StdoutLock<'static>>,
}

impl Out {
    /// Locks stdout.
    pub fn new() -> Self {
        let stdout: Stdout = std::io::stdout();
        Out {
            writer: BufWriter::new(stdout.lock()),
        }
    }

    /// The raw writer, for streaming output.
    pub fn writer(&mut self) -> &mut impl Write {
        &mut self.writer
    }

    /// Writes one line of text.
    pub fn line(&mut self, text: impl std::fmt::Display) -> CliResult {
        writeln!(self.writer, "{text}").map_err(|e| CliError::stdout(&e))
    }

    /// Writes `value` as one JSON document and a newline.
    pub fn json<T: Serialize + ?Sized>(&mut self, value: &T) -> CliResult {
        serde_json::to_writer(&mut self.writer, value)
            .map_err(|e| CliError::failed(format!("writing JSON to stdout: {e}")))?;
        self.line("")
    }

    /// Flushes everything written so far.
    pub fn flush(&mut self) -> CliResult {
        self.writer.flush().map_err(|e| CliError::stdout(&e))
    }

    /// Flushes and reports the result.
    pub fn finish(mut self) -> CliResult {
        self.flush()
    }
}

/// A string as a JSON string literal: unambiguous in text output even when it holds
/// spaces, quotes, line breaks or control characters.
pub fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

/// A path for text output.
pub fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A byte count for people: `8388608 bytes (8.0 MiB)`.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if count < 1024 {
        return format!("{count} bytes");
    }
    let mut value = count as f64 / 1024.0;
    let mut unit = "KiB";
    for next in UNITS.iter().skip(1) {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{count} bytes ({value:.1} {unit})")
}
