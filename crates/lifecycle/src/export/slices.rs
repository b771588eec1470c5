//! Application slices (`[[slices]]` in metadata.toml): the app directory split into one
//! layer per slice plus one for the rest, as the reference exporter splits it.
//!
//! A slice takes every file or directory (with all below it) that one of its glob patterns
//! names relative to the app directory and that no earlier slice took; each entry comes
//! with its parent directories (the app directory's own parents first), which are always
//! written and count as taken. A slice that takes nothing is an empty tar. The last layer
//! takes whatever is left. Patterns follow Go's `filepath.Glob`: `*`, `?`, `[…]` within a
//! path segment.

use std::collections::BTreeSet;
use std::path::Path;

use relaunch_oci::layer::{Entry, LayerBuilder};

use super::layers::{dir_layer, APP_LAYER_PREFIX};
use super::Dirs;
use crate::error::{Error, Result};

/// `(id, created_by, layer)` for each app layer, bottom to top.
pub fn app_layers(
    dirs: &Dirs,
    app: &Path,
    slices: &[Vec<String>],
    uid: u64,
    gid: u64,
) -> Result<Vec<(String, String, LayerBuilder)>> {
    let full = dir_layer(dirs, app, uid, gid)?;
    if slices.is_empty() {
        return Ok(vec![(
            format!("{APP_LAYER_PREFIX}1"),
            "Application Layer".into(),
            full,
        )]);
    }
    let app_name = app.display().to_string();
    let (above, tree): (Vec<&Entry>, Vec<&Entry>) = full
        .entries()
        .iter()
        .partition(|e| e.path != app_name && !e.path.starts_with(&format!("{app_name}/")));
    let rel = |e: &Entry| -> String {
        e.path
            .strip_prefix(&app_name)
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string()
    };
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut layers = Vec::new();
    let layer_of = |selected: &BTreeSet<String>| -> LayerBuilder {
        if selected.is_empty() {
            return LayerBuilder::new();
        }
        let wanted = with_parents(selected);
        let builder = above
            .iter()
            .fold(LayerBuilder::new(), |b, e| b.entry((*e).clone()));
        tree.iter()
            .filter(|e| wanted.contains(&rel(e)))
            .fold(builder, |b, e| b.entry((*e).clone()))
    };
    for (i, patterns) in slices.iter().enumerate() {
        let mut roots = Vec::new();
        for p in patterns {
            let pattern = p.trim_start_matches('/').trim_start_matches("./");
            for e in &tree {
                let r = rel(e);
                if !r.is_empty() && glob_match(pattern, &r).map_err(|why| bad_pattern(p, why))? {
                    roots.push(r);
                }
            }
        }
        let selected: BTreeSet<String> = tree
            .iter()
            .map(|e| rel(e))
            .filter(|r| !r.is_empty() && !taken.contains(r))
            .filter(|r| {
                roots
                    .iter()
                    .any(|root| r == root || r.starts_with(&format!("{root}/")))
            })
            .collect();
        let layer = layer_of(&selected);
        taken.extend(with_parents(&selected));
        let n = i + 1;
        layers.push((
            format!("{APP_LAYER_PREFIX}{n}"),
            format!("Application Slice: {n}"),
            layer,
        ));
    }
    let rest: BTreeSet<String> = tree
        .iter()
        .map(|e| rel(e))
        .filter(|r| !r.is_empty() && !taken.contains(r))
        .collect();
    let n = slices.len() + 1;
    layers.push((
        format!("{APP_LAYER_PREFIX}{n}"),
        format!("Application Slice: {n}"),
        layer_of(&rest),
    ));
    Ok(layers)
}

fn bad_pattern(pattern: &str, why: &str) -> Error {
    Error::Export(format!(
        "creating slice layer: bad pattern for glob path: {pattern}: {why}"
    ))
}

/// `paths` and all their parent directories (relative; `""` is the app directory).
fn with_parents(paths: &BTreeSet<String>) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for p in paths {
        all.insert(String::new());
        let mut at = 0;
        while let Some(i) = p[at..].find('/') {
            all.insert(p[..at + i].to_string());
            at += i + 1;
        }
        all.insert(p.clone());
    }
    all
}

/// Go's `filepath.Match` of a whole relative path, segment by segment.
fn glob_match(pattern: &str, path: &str) -> std::result::Result<bool, &'static str> {
    let (ps, ns): (Vec<&str>, Vec<&str>) =
        (pattern.split('/').collect(), path.split('/').collect());
    if ps.len() != ns.len() {
        // Still report a malformed pattern, as Go does.
        for p in ps {
            segment_match(p.as_bytes(), b"")?;
        }
        return Ok(false);
    }
    let mut all = true;
    for (p, n) in ps.iter().zip(ns) {
        all &= segment_match(p.as_bytes(), n.as_bytes())?;
    }
    Ok(all)
}

const SYNTAX: &str = "syntax error in pattern";

/// One element of a segment pattern.
enum Token {
    Star,
    Any,
    Byte(u8),
    /// `[...]`: inclusive byte ranges, negated with `^`.
    Class(Vec<(u8, u8)>, bool),
}

impl Token {
    fn matches(&self, c: u8) -> bool {
        match self {
            Token::Star | Token::Any => true,
            Token::Byte(b) => *b == c,
            Token::Class(ranges, negated) => {
                ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
            }
        }
    }
}

fn tokens(p: &[u8]) -> std::result::Result<Vec<Token>, &'static str> {
    let mut out = Vec::new();
    let mut i = 0;
    let escaped = |i: &mut usize| -> std::result::Result<u8, &'static str> {
        if p[*i] == b'\\' {
            *i += 1;
        }
        let c = *p.get(*i).ok_or(SYNTAX)?;
        *i += 1;
        Ok(c)
    };
    while i < p.len() {
        match p[i] {
            b'*' => {
                i += 1;
                out.push(Token::Star);
            }
            b'?' => {
                i += 1;
                out.push(Token::Any);
            }
            b'[' => {
                i += 1;
                let negated = p.get(i) == Some(&b'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    match p.get(i) {
                        None => return Err(SYNTAX),
                        Some(b']') if !ranges.is_empty() => break,
                        Some(_) => {}
                    }
                    let lo = escaped(&mut i)?;
                    let hi = if p.get(i) == Some(&b'-') && p.get(i + 1).is_some_and(|b| *b != b']')
                    {
                        i += 1;
                        escaped(&mut i)?
                    } else {
                        lo
                    };
                    ranges.push((lo, hi));
                }
                i += 1;
                out.push(Token::Class(ranges, negated));
            }
            _ => out.push(Token::Byte(escaped(&mut i)?)),
        }
    }
    Ok(out)
}

/// One segment: `*`, `?`, `[^a-z]`, `\x`; linear backtracking to the last `*`, so no
/// pattern can make matching exponential.
fn segment_match(p: &[u8], n: &[u8]) -> std::result::Result<bool, &'static str> {
    let t = tokens(p)?;
    let (mut ti, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match t.get(ti) {
            Some(Token::Star) => {
                star = Some((ti, ni));
                ti += 1;
            }
            Some(tok) if tok.matches(n[ni]) => {
                ti += 1;
                ni += 1;
            }
            _ => match star {
                Some((st, sn)) => {
                    star = Some((st, sn + 1));
                    ti = st + 1;
                    ni = sn + 1;
                }
                None => return Ok(false),
            },
        }
    }
    Ok(t[ti..].iter().all(|tok| matches!(tok, Token::Star)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_go() {
        assert_eq!(glob_match("sub/*.txt", "sub/a.txt"), Ok(true));
        assert_eq!(glob_match("sub/*.txt", "sub/deep/b.txt"), Ok(false));
        assert_eq!(glob_match("*", ".hidden"), Ok(true));
        assert_eq!(glob_match("a?c", "abc"), Ok(true));
        assert_eq!(glob_match("[a-c]x", "bx"), Ok(true));
        assert_eq!(glob_match("[^a-c]x", "bx"), Ok(false));
        assert_eq!(glob_match("\\*", "*"), Ok(true));
        assert_eq!(glob_match("[a", "a"), Err(SYNTAX));
        assert_eq!(glob_match("a*b*c", "axxbyyc"), Ok(true));
        assert_eq!(glob_match("a*b*c", "axxbyy"), Ok(false));
        let long = "a".repeat(200);
        assert_eq!(glob_match(&"*a".repeat(30), &long), Ok(true));
        assert_eq!(
            glob_match(&format!("{}b", "*a".repeat(30)), &long),
            Ok(false)
        );
    }

    #[test]
    fn parents_are_listed_once() {
        let set: BTreeSet<String> = ["a/b/c".to_string(), "a/d".to_string()].into();
        let all: Vec<String> = with_parents(&set).into_iter().collect();
        assert_eq!(all, ["", "a", "a/b", "a/b/c", "a/d"]);
    }
}
