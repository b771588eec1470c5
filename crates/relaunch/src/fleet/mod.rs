//! Fleet mode: one per-image operation over a list of image references in one process.
//!
//! The runner reads the list (`--from-file`, `-` for stdin), keeps this process's `--shard`,
//! runs the operation on at most `--jobs` images at a time per registry (layouts count as
//! one "registry"), and reports each image as it finishes — a text line or, with `--json`,
//! one JSON object per line — then a summary line. The operation gets one image and
//! returns its [`Outcome`]; an error becomes `failed` with the error chain as the reason,
//! and never stops the other images. Registry clients (connections, token cache) are shared
//! through the command's `Session`, so every image of a registry reuses them.
//!
//! ```ignore
//! let items = args.fleet.items()?;                       // list + shard
//! let runner = Runner::new(&args.fleet, Words { changed: "rebased" }, args.json);
//! let summary = runner.run(items, |item| rebase_one(global, &item.reference));
//! Ok(ExitCode::from(summary.exit_code()))
//! ```

mod list;
mod outcome;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::anyhow;
use indicatif::{ProgressBar, ProgressStyle};
use relaunch_oci::remote::Counters;
use relaunch_oci::ImageRef;

pub use list::{read_list, Item, Shard};
pub use outcome::{Outcome, Status, Summary, Words};

/// The fleet flags a command flattens into its arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct FleetArgs {
    /// Process every image reference listed in FILE (one per line, `#` comments, `-` for
    /// stdin) instead of a single image; each result is written back to its own reference.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<String>,
    /// With --from-file: images processed at once per registry.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// With --from-file: process only the images whose 0-based position in the list is
    /// ≡ i (mod n), e.g. `--shard $(JOB_COMPLETION_INDEX)/8` in a Kubernetes Indexed Job.
    #[arg(long, value_name = "i/n")]
    pub shard: Option<String>,
}

impl FleetArgs {
    /// For the single-image form of a command: `--shard` there is a mistake, not a no-op.
    pub fn refuse_without_list(&self) -> anyhow::Result<()> {
        match &self.shard {
            Some(shard) => Err(anyhow!("--shard {shard} needs --from-file")),
            None => Ok(()),
        }
    }

    /// The list's references this process handles (all of them without `--shard`).
    pub fn items(&self) -> anyhow::Result<Vec<Item>> {
        let source = self
            .from_file
            .as_deref()
            .ok_or_else(|| anyhow!("--from-file is required in fleet mode"))?;
        // A bad shard is reported before the list is read.
        let shard = self
            .shard
            .as_deref()
            .map(str::parse::<Shard>)
            .transpose()
            .map_err(|e| anyhow!(e))?;
        let items = read_list(source)?;
        Ok(match shard {
            Some(shard) => items.into_iter().filter(|i| shard.keeps(i)).collect(),
            None => items,
        })
    }
}

/// Runs an operation over a fleet and reports it.
pub struct Runner<'a> {
    jobs: usize,
    words: Words,
    json: bool,
    /// Registry traffic of the whole run, for the summary.
    traffic: Option<&'a (dyn Fn() -> Counters + Sync)>,
}

impl<'a> Runner<'a> {
    pub fn new(args: &FleetArgs, words: Words, json: bool) -> Runner<'a> {
        Runner {
            jobs: usize::from(args.jobs.max(1)),
            words,
            json,
            traffic: None,
        }
    }

    /// Reports the registry traffic `counters` returns (e.g. the shared client's) in the
    /// summary: requests and bytes, in total and per image.
    pub fn with_traffic(mut self, counters: &'a (dyn Fn() -> Counters + Sync)) -> Runner<'a> {
        self.traffic = Some(counters);
        self
    }

    /// Applies `op` to every item, `jobs` at a time per registry, printing each outcome as
    /// it comes and the summary last.
    pub fn run(
        &self,
        items: Vec<Item>,
        op: impl Fn(&Item) -> anyhow::Result<Outcome> + Sync,
    ) -> Summary {
        let started = Instant::now();
        let bar = progress_bar(items.len());
        let summary = Mutex::new(Summary::default());
        let report = |item: &Item, outcome: Outcome| {
            let line = match self.json {
                true => self.words.json_line(item, &outcome),
                false => self.words.text_line(item, &outcome),
            };
            let mut summary = summary.lock().unwrap_or_else(|p| p.into_inner());
            summary.count(outcome.status);
            let print = || {
                let mut out = std::io::stdout().lock();
                // A closed stdout (e.g. `| head`) must not stop the run.
                let _ = writeln!(out, "{line}");
            };
            match &bar {
                Some(bar) => {
                    bar.suspend(print);
                    bar.inc(1);
                }
                None => print(),
            }
        };
        // Each registry gets its own queue and workers; a queue's cursor is its next item.
        let queues: Vec<(Vec<&Item>, AtomicUsize)> = by_registry(&items)
            .into_values()
            .map(|queue| (queue, AtomicUsize::new(0)))
            .collect();
        std::thread::scope(|s| {
            for (queue, next) in &queues {
                for _ in 0..self.jobs.min(queue.len()) {
                    s.spawn(|| {
                        while let Some(item) = queue.get(next.fetch_add(1, Ordering::SeqCst)) {
                            let outcome = op(item)
                                .unwrap_or_else(|e| Outcome::failed(None, format!("{e:#}")));
                            report(item, outcome);
                        }
                    });
                }
            }
        });
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let mut summary = summary.into_inner().unwrap_or_else(|p| p.into_inner());
        summary.elapsed = started.elapsed();
        summary.traffic = self.traffic.map(|counters| counters());
        let line = match self.json {
            true => summary.to_json(&self.words).to_string(),
            false => summary.to_text(&self.words),
        };
        let _ = writeln!(std::io::stdout().lock(), "{line}");
        summary
    }
}

/// Items grouped by the registry they live on (layouts: one group), list order kept.
fn by_registry(items: &[Item]) -> BTreeMap<String, Vec<&Item>> {
    let mut groups: BTreeMap<String, Vec<&Item>> = BTreeMap::new();
    for item in items {
        let key = match ImageRef::parse(&item.reference) {
            Ok(ImageRef::Registry(r)) => r.registry,
            // Layouts share the local disk; unparseable references fail in the operation.
            _ => String::new(),
        };
        groups.entry(key).or_default().push(item);
    }
    groups
}

fn progress_bar(len: usize) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(len as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} images {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use relaunch_oci::Digest;

    fn items(refs: &[&str]) -> Vec<Item> {
        refs.iter()
            .enumerate()
            .map(|(position, r)| Item {
                position,
                reference: r.to_string(),
            })
            .collect()
    }

    #[test]
    fn one_failing_image_does_not_stop_the_others() {
        let list = items(&[
            "a.example/x:1",
            "a.example/y:1",
            "b.example/z:1",
            "oci:/nowhere:1",
        ]);
        let runner = Runner {
            jobs: 2,
            words: Words { changed: "rebased" },
            json: true,
            traffic: None,
        };
        let seen = Mutex::new(Vec::new());
        let summary = runner.run(list, |item| {
            seen.lock().unwrap().push(item.position);
            match item.position {
                1 => anyhow::bail!("registry said no"),
                2 => Ok(Outcome::refused(None, "launcher too old".into())),
                _ => Ok(Outcome::unchanged(Digest::of(b"x"))),
            }
        });
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, [0, 1, 2, 3]);
        assert_eq!(
            (summary.unchanged, summary.refused, summary.failed),
            (2, 1, 1)
        );
        assert_eq!(summary.exit_code(), 1);
    }

    #[test]
    fn groups_by_registry() {
        let list = items(&["a.example/x:1", "oci:/l:1", "b.example/y", "a.example/z"]);
        let groups = by_registry(&list);
        let sizes: Vec<(&str, usize)> = groups.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
        assert_eq!(sizes, [("", 1), ("a.example", 2), ("b.example", 1)]);
    }
}
