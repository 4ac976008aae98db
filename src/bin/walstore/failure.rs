//! Errors of the CLI: one line on stderr starting `error:`, and the exit code.
//!
//! Exit codes (the contract): 1 when the command ran and found a problem or an
//! operation failed; 2 for usage errors and bad input. A panic is a bug, but even then
//! the user sees one `error: internal:` line and exit code 1, never a backtrace.

use std::io::Write;
use std::process::ExitCode;

/// Exit code of a command that ran and found a problem, or whose operation failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code of a usage error or bad input.
pub const EXIT_USAGE: u8 = 2;

/// A failed command: its exit code and its one-line message (without `error: `).
#[derive(Debug)]
pub struct CliError {
    /// The process exit code.
    pub code: u8,
    /// The message, printed after `error: `.
    pub message: String,
}

impl CliError {
    /// An operation failed (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        CliError {
            code: EXIT_FAILED,
            message: message.into(),
        }
    }

    /// Usage error or bad input (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// Writing the command's output to stdout failed (a closed pipe, a full disk).
    pub fn stdout(error: &std::io::Error) -> Self {
        CliError::failed(format!("writing to stdout: {error}"))
    }

    /// Prints the message and returns the exit code.
    pub fn report(&self) -> ExitCode {
        print_error_line(&self.message);
        ExitCode::from(self.code)
    }
}

impl From<walstore::Error> for CliError {
    fn from(error: walstore::Error) -> Self {
        match error {
            // An out-of-bounds argument (an over-long key, a backup into a store) is input
            // the user can fix, not a failed operation.
            walstore::Error::InvalidArgument(_) => CliError::usage(error.to_string()),
            other => CliError::failed(other.to_string()),
        }
    }
}

/// Prints `error: <message>` as exactly one line: line breaks inside the message (from a
/// file name or an OS message) are escaped so scripts can read one line per error.
pub fn print_error_line(message: &str) {
    let one_line = message.replace('\r', "\\r").replace('\n', "\\n");
    // Nothing useful remains to do if stderr itself is gone.
    let _ = writeln!(std::io::stderr().lock(), "error: {one_line}");
}

/// The last resort: a panic prints one `error: internal:` line and exits 1.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        print_error_line(&format!(
            "internal: {message}{location} (this is a bug in walstore)"
        ));
        std::process::exit(i32::from(EXIT_FAILED));
    }));
}

/// Handles what clap returns instead of parsed arguments: help and version go to stdout
/// with exit 0; every usage error becomes one `error:` line and exit 2.
pub fn clap_exit(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            print_error_line(
                "no command given; commands: import, dump, verify, recover, checkpoint, stats, backup (see 'walstore --help')",
            );
            ExitCode::from(EXIT_USAGE)
        }
        _ => {
            // clap renders several lines: the error (which may continue on indented
            // lines, such as the missing arguments), a blank line, a tip and the usage.
            // The first paragraph is the error; it already starts with `error: `.
            let rendered = error.render().to_string();
            let paragraph: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .skip_while(|line| line.is_empty())
                .take_while(|line| !line.is_empty())
                .collect();
            let joined = paragraph.join(" ");
            let message = joined.strip_prefix("error: ").unwrap_or(&joined);
            let message = if message.is_empty() {
                "invalid arguments"
            } else {
                message
            };
            print_error_line(&format!("{message} (see 'walstore --help')"));
            ExitCode::from(EXIT_USAGE)
        }
    }
}
