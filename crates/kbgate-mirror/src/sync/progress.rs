//! Progress for long syncs: a bar on a terminal, plain log lines otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Where progress goes. Cheap to pass around by reference.
#[derive(Debug, Clone)]
pub struct Progress {
    bars: bool,
}

impl Progress {
    /// Bars when standard error is a terminal, log lines otherwise.
    pub fn auto() -> Self {
        Progress {
            bars: std::io::stderr().is_terminal(),
        }
    }

    /// Log lines only (services, tests).
    pub fn quiet() -> Self {
        Progress { bars: false }
    }

    /// A stage of work without a known size.
    pub fn stage(&self, message: &str) {
        tracing::info!("{message}");
    }

    /// An informational line.
    pub fn info(&self, message: &str) {
        tracing::info!("{message}");
    }

    /// A warning line.
    pub fn warn(&self, message: &str) {
        tracing::warn!("{message}");
    }

    /// A counter of `total` items.
    pub fn bar(&self, message: &str, total: u64) -> Bar {
        if self.bars {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg:24} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(message.to_string());
            Bar::Term(bar)
        } else {
            tracing::info!("{message}: {total} to go");
            Bar::Log {
                message: message.to_string(),
                total,
                started: std::time::Instant::now(),
            }
        }
    }
}

/// One counter (see [`Progress::bar`]).
#[derive(Debug)]
pub enum Bar {
    Term(ProgressBar),
    Log {
        message: String,
        total: u64,
        started: std::time::Instant,
    },
}

impl Bar {
    /// Counts `n` more items.
    pub fn inc(&self, n: u64) {
        match self {
            Bar::Term(bar) => bar.inc(n),
            Bar::Log { .. } => {}
        }
    }

    /// Ends the counter.
    pub fn finish(self) {
        match self {
            Bar::Term(bar) => bar.finish_and_clear(),
            Bar::Log {
                message,
                total,
                started,
            } => {
                tracing::info!(
                    "{message}: {total} done in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
}
