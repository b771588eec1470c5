//! Byte progress for long transfers, drawn only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use relaunch_oci::{Digest, Progress};

pub struct BarProgress {
    bar: Option<ProgressBar>,
}

impl BarProgress {
    pub fn for_stderr() -> BarProgress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        BarProgress { bar }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for BarProgress {
    fn blob_started(&self, digest: &Digest, size: u64) {
        if let Some(bar) = &self.bar {
            bar.inc_length(size);
            bar.set_message(digest.hex().chars().take(12).collect::<String>());
        }
    }
    fn bytes_copied(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }
}
