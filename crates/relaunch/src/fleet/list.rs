//! The fleet list (one image reference per line, `#` comments, blank lines ignored; `-`
//! reads stdin) and `--shard i/n`, which keeps the references whose position in the list
//! is ≡ i (mod n), so n pods of a Kubernetes Indexed Job split a list exactly once.

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::str::FromStr;

use anyhow::{bail, Context};

/// Longest list line read (a reference is at most a few hundred bytes).
const MAX_LINE: usize = 4096;
/// Largest list read (about a million references).
const MAX_LIST: u64 = 256 << 20;

/// One reference of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// 0-based position among the references of the whole list (before sharding).
    pub position: usize,
    pub reference: String,
}

/// Reads the references from `source` (a file, or `-` for stdin).
pub fn read_list(source: &str) -> anyhow::Result<Vec<Item>> {
    let what = || match source {
        "-" => "reading the image list from stdin".to_string(),
        file => format!("reading the image list {file}"),
    };
    let reader: Box<dyn Read> = match source {
        "-" => Box::new(std::io::stdin()),
        file => Box::new(std::fs::File::open(file).with_context(what)?),
    };
    parse_list(BufReader::new(reader.take(MAX_LIST + 1))).with_context(what)
}

fn parse_list(reader: impl BufRead) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut read = 0u64;
    for (n, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        read += line.len() as u64 + 1;
        if read > MAX_LIST {
            bail!("the list is larger than {MAX_LIST} bytes");
        }
        if line.len() > MAX_LINE {
            bail!("line {} is longer than {MAX_LINE} bytes", n + 1);
        }
        let line = String::from_utf8(line).with_context(|| format!("line {}", n + 1))?;
        let reference = line.split('#').next().unwrap_or_default().trim();
        if reference.is_empty() {
            continue;
        }
        if reference.contains(char::is_whitespace) {
            bail!("line {}: {reference:?} is not one image reference", n + 1);
        }
        items.push(Item {
            position: items.len(),
            reference: reference.to_string(),
        });
    }
    Ok(items)
}

/// `--shard i/n`: this process's share of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn keeps(&self, item: &Item) -> bool {
        item.position % self.count == self.index
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("--shard {s:?}: expected i/n with 0 <= i < n (e.g. 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_positions() {
        let text = "# fleet\n\nreg/a:1\n  reg/b:2   # old\n#reg/c\nreg/d@sha256:00\n";
        let items = parse_list(text.as_bytes()).unwrap();
        let refs: Vec<(usize, &str)> = items
            .iter()
            .map(|i| (i.position, i.reference.as_str()))
            .collect();
        assert_eq!(
            refs,
            [(0, "reg/a:1"), (1, "reg/b:2"), (2, "reg/d@sha256:00")]
        );
        let err = parse_list("reg/a reg/b\n".as_bytes()).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn shards_cover_the_list_exactly_once() {
        let text: String = (0..103).map(|i| format!("reg/app-{i}:1\n")).collect();
        let items = parse_list(text.as_bytes()).unwrap();
        for count in [1, 2, 3, 7, 200] {
            let mut seen = vec![0; items.len()];
            for index in 0..count {
                let shard: Shard = format!("{index}/{count}").parse().unwrap();
                for item in items.iter().filter(|i| shard.keeps(i)) {
                    seen[item.position] += 1;
                }
            }
            assert!(seen.iter().all(|n| *n == 1), "n={count}: {seen:?}");
        }
    }

    #[test]
    fn bad_shards_are_refused() {
        for bad in ["", "1", "4/4", "5/4", "-1/4", "0/0", "a/b", "1/2/3"] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.starts_with("--shard"), "{bad}: {err}");
        }
        assert_eq!("3/4".parse::<Shard>().unwrap().to_string(), "3/4");
    }
}
