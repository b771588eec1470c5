//! A local cache of layer diffIDs keyed by what `stat` says about a layer's files, so an
//! unchanged layer is recognised (and reused from the previous image) without reading its
//! content: re-exporting 1 GB that did not change costs a directory walk, not a full read.
//!
//! The key covers every entry's name, type, mode, owner and link target and, for files,
//! device, inode, size, mtime and ctime in nanoseconds: any write changes ctime. Files
//! changed in the last few seconds are never cached (the clock granularity could hide a
//! second write), the same precaution git takes for "racily clean" index entries.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use relaunch_oci::digest::Hasher;
use relaunch_oci::layer::{Content, LayerBuilder};
use relaunch_oci::Digest;
use tracing::debug;

/// Files changed more recently than this are not cached.
const RACY: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
pub struct DiffIdCache {
    path: Option<PathBuf>,
    entries: Mutex<BTreeMap<String, String>>,
    /// Keys looked up or stored by this export: the only ones saved.
    used: Mutex<BTreeSet<String>>,
}

impl DiffIdCache {
    /// The cache stored at `path` (empty when missing or unreadable).
    pub fn open(path: PathBuf) -> DiffIdCache {
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        DiffIdCache {
            path: Some(path),
            entries: Mutex::new(entries),
            used: Mutex::default(),
        }
    }

    /// A cache that remembers nothing.
    pub fn none() -> DiffIdCache {
        DiffIdCache::default()
    }

    /// The stat fingerprint of a layer, `None` when some file is too fresh to trust.
    pub fn key(&self, layer: &LayerBuilder) -> Option<String> {
        self.path.as_ref()?;
        let now = SystemTime::now();
        let mut h = Hasher::new();
        for e in layer.entries() {
            h.update(format!("{}\0{:o}\0{}\0{}\0", e.path, e.mode, e.uid, e.gid).as_bytes());
            match &e.content {
                Content::Dir => h.update(b"d"),
                Content::Symlink(t) => h.update(format!("l{t}\0").as_bytes()),
                Content::Bytes(b) => {
                    h.update(b"b");
                    h.update(Digest::of(b).as_str().as_bytes());
                }
                Content::Path(p) => {
                    let m = std::fs::metadata(p).ok()?;
                    let changed = SystemTime::UNIX_EPOCH
                        + Duration::new(m.ctime().max(0) as u64, m.ctime_nsec() as u32);
                    if now.duration_since(changed).map_or(true, |age| age < RACY) {
                        return None;
                    }
                    h.update(
                        format!(
                            "f{}:{}:{}:{}.{}:{}.{}\0",
                            m.dev(),
                            m.ino(),
                            m.size(),
                            m.mtime(),
                            m.mtime_nsec(),
                            m.ctime(),
                            m.ctime_nsec()
                        )
                        .as_bytes(),
                    );
                }
            }
        }
        Some(h.finish().hex().to_string())
    }

    pub fn get(&self, key: &str) -> Option<Digest> {
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string());
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        Digest::parse(entries.get(key)?).ok()
    }

    pub fn put(&self, key: String, diff_id: &Digest) {
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone());
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, diff_id.to_string());
    }

    /// Writes the cache back (best effort: a cache that cannot be written only costs speed).
    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        // Only this export's layers: the file does not grow with every build.
        let kept: BTreeMap<&String, &String> =
            entries.iter().filter(|(k, _)| used.contains(*k)).collect();
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec(&kept).unwrap_or_default())?;
            std::fs::rename(tmp, path)
        };
        if let Err(e) = write() {
            debug!("not saving the diffID cache {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_changes_with_any_write_and_skips_fresh_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "one").unwrap();
        let tree = || LayerBuilder::new().dir_tree(dir.path(), "/l").unwrap();
        let store = tempfile::tempdir().unwrap();
        let cache = DiffIdCache::open(store.path().join("cache.json"));
        assert_eq!(
            cache.key(&tree()),
            None,
            "a file written just now is not trusted"
        );
        std::thread::sleep(RACY + Duration::from_millis(100));
        let key = cache.key(&tree()).expect("old enough to cache");
        assert_eq!(
            cache.key(&tree()).as_ref(),
            Some(&key),
            "stable while unchanged"
        );
        let d = Digest::of(b"x");
        cache.put(key.clone(), &d);
        cache.save();
        let reopened = DiffIdCache::open(store.path().join("cache.json"));
        assert_eq!(reopened.get(&key), Some(d));
        std::fs::write(&file, "two").unwrap();
        assert_eq!(cache.key(&tree()), None, "rewritten: fresh again");
        std::thread::sleep(RACY + Duration::from_millis(100));
        assert_ne!(
            cache.key(&tree()),
            Some(key),
            "same size, new content: new key"
        );
    }
}
