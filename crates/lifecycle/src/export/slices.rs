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

/// One segment: `*`, `?`, `[^a-z]`, `\x`.
fn segment_match(p: &[u8], n: &[u8]) -> std::result::Result<bool, &'static str> {
    match p.first() {
        None => Ok(n.is_empty()),
        Some(b'*') => {
            for skip in 0..=n.len() {
                if segment_match(&p[1..], &n[skip..])? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Some(b'?') => Ok(!n.is_empty() && segment_match(&p[1..], &n[1..])?),
        Some(b'[') => {
            let (matched, rest) = class(&p[1..], n.first().copied())?;
            Ok(matched && !n.is_empty() && segment_match(rest, &n[1..])?)
        }
        Some(b'\\') => {
            let c = *p.get(1).ok_or(SYNTAX)?;
            Ok(n.first() == Some(&c) && segment_match(&p[2..], &n[1..])?)
        }
        Some(&c) => Ok(n.first() == Some(&c) && segment_match(&p[1..], &n[1..])?),
    }
}

/// A `[...]` class after its `[`: whether `c` is in it, and the pattern after `]`.
fn class(p: &[u8], c: Option<u8>) -> std::result::Result<(bool, &[u8]), &'static str> {
    let (negated, mut i) = if p.first() == Some(&b'^') {
        (true, 1)
    } else {
        (false, 0)
    };
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = match p.get(i) {
            None => return Err(SYNTAX),
            Some(b']') if !first => break,
            Some(b'\\') => {
                i += 1;
                *p.get(i).ok_or(SYNTAX)?
            }
            Some(&b) => b,
        };
        first = false;
        i += 1;
        let hi = if p.get(i) == Some(&b'-') && p.get(i + 1).is_some_and(|b| *b != b']') {
            i += 1;
            let h = if p[i] == b'\\' {
                i += 1;
                *p.get(i).ok_or(SYNTAX)?
            } else {
                p[i]
            };
            i += 1;
            h
        } else {
            lo
        };
        if c.is_some_and(|c| lo <= c && c <= hi) {
            hit = true;
        }
    }
    Ok((hit != negated, &p[i + 1..]))
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
    }

    #[test]
    fn parents_are_listed_once() {
        let set: BTreeSet<String> = ["a/b/c".to_string(), "a/d".to_string()].into();
        let all: Vec<String> = with_parents(&set).into_iter().collect();
        assert_eq!(all, ["", "a", "a/b", "a/b/c", "a/d"]);
    }
}
