//! `CNB_REGISTRY_AUTH`, the lifecycle's `{"<registry>": "Basic <base64 user:pass>"}`: merged
//! over the docker config the engine reads credentials from, as a private `DOCKER_CONFIG`
//! for this process (deleted when the export ends). Registries it does not name keep their
//! `auths` and `credHelpers` entries; a global `credsStore` is left out, since it would take
//! precedence over the variable's entries.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use serde_json::{json, Map, Value};
use tempfile::TempDir;
use tracing::warn;

use super::{fail, Fail, EXIT_FAILED};

/// Largest docker config read (they are a few KiB).
const CONFIG_LIMIT: u64 = 4 << 20;

/// Applies `CNB_REGISTRY_AUTH`; keep the returned directory alive for the export.
pub fn apply_registry_auth() -> Result<Option<TempDir>, Fail> {
    let raw = std::env::var("CNB_REGISTRY_AUTH").unwrap_or_default();
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let bad = |e: &dyn std::fmt::Display| {
        fail(
            EXIT_FAILED,
            format!("failed to parse CNB_REGISTRY_AUTH: {e}"),
        )
    };
    let entries: BTreeMap<String, String> = serde_json::from_str(&raw).map_err(|e| bad(&e))?;
    let mut config = existing_config();
    config.remove("credsStore");
    let mut auths = take_object(&mut config, "auths");
    let mut helpers = take_object(&mut config, "credHelpers");
    for (registry, value) in entries {
        let key = match registry.as_str() {
            "docker.io" | "index.docker.io" => "https://index.docker.io/v1/".to_string(),
            _ => registry.clone(),
        };
        match value.strip_prefix("Basic ") {
            Some(basic) => {
                auths.insert(key.clone(), json!({ "auth": basic }));
                helpers.remove(&key);
            }
            None => warn!("CNB_REGISTRY_AUTH: only Basic credentials are supported; ignoring the entry for {registry}"),
        }
    }
    config.insert("auths".into(), Value::Object(auths));
    config.insert("credHelpers".into(), Value::Object(helpers));
    let dir = tempfile::Builder::new()
        .prefix("relaunch-registry-auth-")
        .tempdir()
        .map_err(|e| fail(EXIT_FAILED, format!("CNB_REGISTRY_AUTH: {e}")))?;
    std::fs::write(
        dir.path().join("config.json"),
        Value::Object(config).to_string(),
    )
    .map_err(|e| fail(EXIT_FAILED, format!("CNB_REGISTRY_AUTH: {e}")))?;
    // Set before any thread starts (the export has not begun), read by the engine's lookup.
    std::env::set_var("DOCKER_CONFIG", dir.path());
    Ok(Some(dir))
}

/// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, empty when absent or unreadable.
fn existing_config() -> Map<String, Value> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
    let mut text = String::new();
    let read = dir
        .and_then(|d| std::fs::File::open(d.join("config.json")).ok())
        .map(|f| f.take(CONFIG_LIMIT).read_to_string(&mut text));
    match read {
        Some(Ok(_)) => serde_json::from_str(&text).unwrap_or_default(),
        _ => Map::new(),
    }
}

fn take_object(config: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match config.remove(key) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}
