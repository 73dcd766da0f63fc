//! Progress reporting: `indicatif` bars and spinners on a terminal, plain lines on stderr
//! otherwise (tests, pipes, CI). Never prints secret values: callers pass only names.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    bars: bool,
    quiet: bool,
}

impl Progress {
    /// Bars when stderr is a terminal; notes always.
    pub fn stderr() -> Self {
        Self { bars: std::io::stderr().is_terminal(), quiet: false }
    }

    /// Nothing at all (library callers, benchmarks).
    pub fn silent() -> Self {
        Self { bars: false, quiet: true }
    }

    /// A one-line message on stderr.
    pub fn note(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", msg.as_ref());
        }
    }

    /// A byte-counting bar (`len` when known).
    pub fn bytes(&self, msg: &str, len: Option<u64>) -> Bar {
        if !self.bars {
            self.note(format!("{msg}..."));
            return Bar(None);
        }
        let pb = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        pb.set_style(style);
        pb.set_message(msg.to_owned());
        Bar(Some(pb))
    }

    /// A counting bar (packages, pages).
    pub fn count(&self, msg: &str, len: Option<u64>) -> Bar {
        if !self.bars {
            self.note(format!("{msg}..."));
            return Bar(None);
        }
        let pb = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
        let template = if len.is_some() { "{msg} [{bar:30}] {pos}/{len}" } else { "{spinner} {msg} {pos}" };
        if let Ok(style) = ProgressStyle::with_template(template) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.set_message(msg.to_owned());
        Bar(Some(pb))
    }

    /// A spinner for a step of unknown length (npm, pip, cargo, git).
    pub fn spinner(&self, msg: &str) -> Bar {
        if !self.bars {
            self.note(format!("{msg}..."));
            return Bar(None);
        }
        let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            pb.set_style(style);
        }
        pb.set_message(msg.to_owned());
        pb.enable_steady_tick(Duration::from_millis(120));
        Bar(Some(pb))
    }
}

/// A bar that may be hidden; every method is a no-op then.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    pub fn inc(&self, n: u64) {
        if let Some(pb) = &self.0 {
            pb.inc(n);
        }
    }

    pub fn set_length(&self, n: u64) {
        if let Some(pb) = &self.0 {
            pb.set_length(n);
        }
    }

    /// Clear the bar (dropping it does the same).
    pub fn finish(self) {}
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}
