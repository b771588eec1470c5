//! The image config the exporter writes: history, `created`, labels, Env, WorkingDir,
//! ENTRYPOINT (E-6 … E-11), and the process-types layer the entrypoint points into.

use relaunch_oci::layer::{Entry, LayerBuilder, NORMALIZED_MTIME};
use relaunch_oci::{Image, Layer};
use serde_json::{Map, Value};
use tracing::{info, warn};

use super::layers::Done;
use super::{inputs, time, Export};
use crate::apis::Api;
use crate::app::env;
use crate::contract::APP_LAUNCHER_PATH;
use crate::error::{Error, Result};

/// Characters a process type may not contain (they would break `/cnb/process/<type>`).
const FORBIDDEN_IN_TYPE: &str = "/><:|&\\";

/// The process-types layer, `None` without processes (reference §3.4 item 8).
pub(super) fn process_types_layer_for(
    processes: &[inputs::Process],
) -> Result<Option<LayerBuilder>> {
    if processes.is_empty() {
        return Ok(None);
    }
    for p in processes {
        if p.kind.is_empty() {
            return Err(Error::Export(
                "creating layer '': type is required for all processes".into(),
            ));
        }
        if p.kind.contains(|c| FORBIDDEN_IN_TYPE.contains(c)) {
            return Err(Error::Export(format!(
                "creating layer '': invalid process type '{}': type may not contain characters '{FORBIDDEN_IN_TYPE}'",
                p.kind
            )));
        }
    }
    Ok(Some(process_types_builder(
        processes.iter().map(|p| p.kind.as_str()),
    )))
}

/// `/cnb`, `/cnb/process` and one symlink `/cnb/process/<type>` → `/cnb/lifecycle/launcher`
/// per process, in metadata order.
pub fn process_types_builder<'a>(types: impl IntoIterator<Item = &'a str>) -> LayerBuilder {
    let builder = LayerBuilder::new()
        .entry(Entry::dir("/cnb", 0o755))
        .entry(Entry::dir("/cnb/process", 0o755));
    types.into_iter().fold(builder, |b, t| {
        b.entry(Entry::symlink(
            format!("/cnb/process/{t}"),
            APP_LAUNCHER_PATH,
        ))
    })
}

/// ENTRYPOINT (E-6): `-process-type` if it exists, else the buildpack default, else the
/// launcher itself.
pub(super) fn entrypoint(x: &Export<'_>) -> Result<String> {
    let exists = |t: &str| x.build.processes.iter().any(|p| p.kind == t);
    if let Some(t) = x.process_type.filter(|t| !t.is_empty()) {
        if !exists(t) {
            return Err(Error::Export(format!(
                "determining entrypoint: tried to set {t} to default but it doesn't exist"
            )));
        }
        info!("Setting default process type '{t}'");
        return Ok(format!("/cnb/process/{t}"));
    }
    let default = &x.build.default_process_type;
    if !default.is_empty() {
        if !exists(default) {
            warn!("default process type '{default}' not present in list of process types");
        } else {
            info!("Setting default process type '{default}'");
            return Ok(format!("/cnb/process/{default}"));
        }
    }
    info!("no default process type");
    Ok(APP_LAUNCHER_PATH.into())
}

/// Appends the layers with their history: every entry's `created` is the export time;
/// below Platform 0.12 history carries nothing else (imgutil without `WithHistory`).
pub(super) fn assemble(image: &mut Image, x: &Export<'_>, done: &[Done]) -> Result<()> {
    let created = created_at(x);
    let keep = x.platform_api >= Api::new(0, 12);
    let entry = |created_by: Option<&str>| -> Value {
        let mut h = Map::new();
        h.insert("created".into(), Value::String(created.clone()));
        if let Some(by) = created_by.filter(|_| keep) {
            h.insert("created_by".into(), Value::String(by.into()));
        }
        Value::Object(h)
    };
    // imgutil's normalisation: one entry per layer (empty-layer entries dropped, missing
    // ones added at the bottom), each stamped with the export time.
    let n_base = image.layers().len();
    let mut history: Vec<Value> = image
        .history()
        .into_iter()
        .filter(|h| {
            !h.get("empty_layer")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
        .map(|h| {
            if !keep {
                return entry(None);
            }
            let mut h = h.as_object().cloned().unwrap_or_default();
            h.insert("created".into(), Value::String(created.clone()));
            Value::Object(h)
        })
        .collect();
    while history.len() < n_base {
        history.insert(0, entry(None));
    }
    history.truncate(n_base);
    // Layer media types follow the manifest's flavour when it is written (the engine maps
    // them), unlike the reference's Docker types under an OCI manifest.
    let mut all: Vec<Layer> = image.layers().to_vec();
    for d in done {
        all.push(d.layer.clone());
        history.push(entry(Some(&d.created_by)));
    }
    image.set_layers(all)?;
    image.edit_config(|c| {
        c.insert("history".into(), Value::Array(history));
        c.insert("created".into(), Value::String(created.clone()));
        c.shift_remove("container");
        Ok(())
    })?;
    Ok(())
}

/// `SOURCE_DATE_EPOCH` (Platform >= 0.9) or 1980-01-01T00:00:01Z.
fn created_at(x: &Export<'_>) -> String {
    let epoch = x
        .source_date_epoch
        .filter(|_| x.platform_api >= Api::new(0, 9))
        .unwrap_or(NORMALIZED_MTIME as i64);
    time::rfc3339(epoch)
}

/// Labels (sorted, as Go writes the map), Env, WorkingDir, ENTRYPOINT, no CMD.
pub(super) fn configure(
    image: &mut Image,
    x: &Export<'_>,
    labels: Vec<(String, String)>,
    entrypoint: String,
) -> Result<()> {
    let run_path = env(image, "PATH").unwrap_or_default();
    let layers = x.dirs.layers.display().to_string();
    let app = x.dirs.app.display().to_string();
    let platform = x.platform_api.to_string();
    let path = format!("/cnb/process:/cnb/lifecycle:{run_path}");
    let env_vars = [
        ("CNB_LAYERS_DIR", layers.as_str()),
        ("CNB_APP_DIR", app.as_str()),
        ("CNB_PLATFORM_API", platform.as_str()),
        ("CNB_DEPRECATION_MODE", "quiet"),
        ("PATH", path.as_str()),
    ];
    image.edit_config(|c| {
        let cfg = c
            .entry("config")
            .or_insert_with(|| Value::Object(Map::new()));
        if !cfg.is_object() {
            *cfg = Value::Object(Map::new());
        }
        let cfg = cfg.as_object_mut().expect("just made an object");
        let mut all: std::collections::BTreeMap<String, Value> = cfg
            .get("Labels")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        for (k, v) in labels {
            all.insert(k, Value::String(v));
        }
        cfg.insert("Labels".into(), Value::Object(all.into_iter().collect()));
        let mut envs: Vec<Value> = cfg
            .get("Env")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (name, value) in env_vars {
            let entry = Value::String(format!("{name}={value}"));
            let prefix = format!("{name}=");
            match envs
                .iter()
                .position(|e| e.as_str().is_some_and(|s| s.starts_with(&prefix)))
            {
                Some(i) => envs[i] = entry,
                None => envs.push(entry),
            }
        }
        cfg.insert("Env".into(), Value::Array(envs));
        cfg.insert("WorkingDir".into(), Value::String(app.clone()));
        cfg.insert(
            "Entrypoint".into(),
            Value::Array(vec![Value::String(entrypoint)]),
        );
        cfg.shift_remove("Cmd");
        Ok(())
    })?;
    Ok(())
}
