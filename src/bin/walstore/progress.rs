//! Progress for long work: a bar or spinner on stderr, but only when stdout is a
//! terminal (a person is watching). Scripts that capture stdout see nothing extra.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress indicator that may be absent (not a terminal); every method is then a no-op.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Whether progress should be shown at all.
    fn wanted() -> bool {
        std::io::stdout().is_terminal()
    }

    /// A spinner with a message, for work whose size is unknown (a library call).
    pub fn spinner(message: impl Into<String>) -> Self {
        if !Self::wanted() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::new_spinner();
        let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress { bar: Some(bar) }
    }

    /// A bar over `total` bytes, or a byte-counting spinner when the total is unknown.
    pub fn bytes(total: Option<u64>, message: impl Into<String>) -> Self {
        if !Self::wanted() {
            return Progress { bar: None };
        }
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::new(total),
                "{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})",
            ),
            None => (ProgressBar::new_spinner(), "{spinner} {msg} {bytes}"),
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress { bar: Some(bar) }
    }

    /// A spinner counting entries, for a scan whose length is unknown in advance.
    pub fn counter(message: impl Into<String>) -> Self {
        if !Self::wanted() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::new_spinner();
        let style = ProgressStyle::with_template("{spinner} {msg}: {pos} entries ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress { bar: Some(bar) }
    }

    /// Advances by `delta`.
    pub fn inc(&self, delta: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(delta);
        }
    }

    /// Runs `f` with the bar hidden, so lines printed to the terminal do not mix with it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
