//! Small composable edits over [`Image`]. Each keeps `rootfs.diff_ids`, the manifest's layers
//! and the non-empty `history` entries in step; history entries with `empty_layer: true`
//! belong to no layer and stay where they are. An image without history keeps none.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{Image, Layer};

/// One `history` entry. Unknown fields are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl History {
    pub fn created_by(created_by: impl Into<String>, created: impl Into<String>) -> History {
        History {
            created: Some(created.into()),
            created_by: Some(created_by.into()),
            ..Default::default()
        }
    }
    fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("History serialises")
    }
}

/// Selects a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerSel {
    /// 0 = bottom.
    Index(usize),
    /// The first layer with this diffID.
    DiffId(Digest),
}

impl LayerSel {
    pub fn position(&self, image: &Image) -> Result<usize> {
        let n = image.layers().len();
        match self {
            LayerSel::Index(i) if *i < n => Ok(*i),
            LayerSel::Index(i) => Err(Error::invalid(
                format!("layer index {i}"),
                format!("image has {n} layers"),
            )),
            LayerSel::DiffId(d) => image
                .layers()
                .iter()
                .position(|l| &l.diff_id == d)
                .ok_or_else(|| Error::NotFound {
                    what: format!("layer with diffID {d}"),
                    location: format!("image {}", image.digest()),
                }),
        }
    }
}

fn is_empty_layer(h: &Value) -> bool {
    h.get("empty_layer")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// History index of each layer, or `None` when the image has no history.
pub fn history_positions(image: &Image) -> Result<Option<Vec<usize>>> {
    let history = image.history();
    if history.is_empty() {
        return Ok(None);
    }
    let positions: Vec<usize> = history
        .iter()
        .enumerate()
        .filter(|(_, h)| !is_empty_layer(h))
        .map(|(i, _)| i)
        .collect();
    if positions.len() != image.layers().len() {
        return Err(Error::invalid(
            format!("history of image {}", image.digest()),
            format!(
                "{} non-empty history entries for {} layers",
                positions.len(),
                image.layers().len()
            ),
        ));
    }
    Ok(Some(positions))
}

fn set_history(image: &mut Image, history: Vec<Value>) -> Result<()> {
    image.edit_config(|c| {
        c.insert("history".into(), Value::Array(history));
        Ok(())
    })
}

/// Adds layers on top, each with its history entry (a default one when `None` and the
/// image keeps history).
pub fn append_layers(image: &mut Image, layers: Vec<(Layer, Option<History>)>) -> Result<()> {
    let keep_history = image.layers().is_empty() || history_positions(image)?.is_some();
    let mut history = image.history();
    let mut all = image.layers().to_vec();
    for (layer, h) in layers {
        history.push(h.unwrap_or_default().to_value());
        all.push(layer);
    }
    image.set_layers(all)?;
    if keep_history {
        set_history(image, history)?;
    }
    Ok(())
}

/// Replaces one layer; its history entry is kept unless `history` is given.
pub fn replace_layer(
    image: &mut Image,
    at: &LayerSel,
    layer: Layer,
    history: Option<History>,
) -> Result<()> {
    let i = at.position(image)?;
    let positions = history_positions(image)?;
    let mut layers = image.layers().to_vec();
    layers[i] = layer;
    image.set_layers(layers)?;
    if let (Some(h), Some(pos)) = (history, positions) {
        let mut all = image.history();
        all[pos[i]] = h.to_value();
        set_history(image, all)?;
    }
    Ok(())
}

/// Rebase: replaces every layer up to and including the first with diffID `old_top` by
/// `new_base`'s layers and history, and takes `os`, `architecture`, `os.version` and
/// `variant` from `new_base`. Everything above `old_top` is kept as is (layers and history).
pub fn rebase(image: &mut Image, old_top: &Digest, new_base: &Image) -> Result<()> {
    let top = LayerSel::DiffId(old_top.clone())
        .position(image)
        .map_err(|_| Error::NotFound {
            what: format!("base top layer {old_top}"),
            location: format!("image {}", image.digest()),
        })?;
    let positions = history_positions(image)?;
    let base_positions = history_positions(new_base)?;
    let mut layers = new_base.layers().to_vec();
    layers.extend_from_slice(&image.layers()[top + 1..]);
    let new_history = match positions {
        Some(pos) => {
            let mut h = new_base.history();
            if base_positions.is_none() {
                // The new base has no history: give its layers blank entries to stay consistent.
                h = vec![Value::Object(Map::new()); new_base.layers().len()];
            }
            h.extend(image.history().into_iter().skip(pos[top] + 1));
            Some(h)
        }
        None => None,
    };
    let base_platform = new_base.config();
    image.set_layers(layers)?;
    image.edit_config(|c| {
        for key in ["os", "architecture", "os.version", "variant"] {
            match base_platform.get(key) {
                Some(v) => c.insert(key.into(), v.clone()),
                None => c.shift_remove(key),
            };
        }
        if let Some(h) = new_history {
            c.insert("history".into(), Value::Array(h));
        }
        Ok(())
    })
}

fn edit_container_config(image: &mut Image, f: impl FnOnce(&mut Map<String, Value>)) -> Result<()> {
    image.edit_config(|c| {
        let cfg = c
            .entry("config")
            .or_insert_with(|| Value::Object(Map::new()));
        if cfg.is_null() {
            *cfg = Value::Object(Map::new());
        }
        let cfg = cfg
            .as_object_mut()
            .ok_or_else(|| Error::invalid("image config", "\"config\" is not an object"))?;
        f(cfg);
        Ok(())
    })
}

/// Sets (`Some`) or removes (`None`) labels.
pub fn set_labels<'a>(
    image: &mut Image,
    labels: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<()> {
    let labels: Vec<_> = labels.into_iter().collect();
    edit_container_config(image, |cfg| {
        let map = cfg
            .entry("Labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if !map.is_object() {
            *map = Value::Object(Map::new());
        }
        let map = map.as_object_mut().expect("just made an object");
        for (k, v) in labels {
            match v {
                Some(v) => map.insert(k.into(), Value::String(v.into())),
                None => map.shift_remove(k),
            };
        }
    })
}

/// Sets `NAME=value` in Env, replacing an existing entry for NAME in place.
pub fn set_env(image: &mut Image, name: &str, value: &str) -> Result<()> {
    let entry = Value::String(format!("{name}={value}"));
    let prefix = format!("{name}=");
    edit_container_config(image, |cfg| {
        let env = cfg.entry("Env").or_insert_with(|| Value::Array(Vec::new()));
        if !env.is_array() {
            *env = Value::Array(Vec::new());
        }
        let env = env.as_array_mut().expect("just made an array");
        match env
            .iter()
            .position(|e| e.as_str().is_some_and(|s| s.starts_with(&prefix)))
        {
            Some(i) => env[i] = entry,
            None => env.push(entry),
        }
    })
}

fn string_array(v: Option<Vec<String>>) -> Value {
    v.map_or(Value::Null, |v| {
        Value::Array(v.into_iter().map(Value::String).collect())
    })
}

pub fn set_entrypoint(image: &mut Image, entrypoint: Option<Vec<String>>) -> Result<()> {
    edit_container_config(image, |cfg| {
        cfg.insert("Entrypoint".into(), string_array(entrypoint));
    })
}

pub fn set_cmd(image: &mut Image, cmd: Option<Vec<String>>) -> Result<()> {
    edit_container_config(image, |cfg| {
        cfg.insert("Cmd".into(), string_array(cmd));
    })
}

pub fn set_working_dir(image: &mut Image, dir: &str) -> Result<()> {
    edit_container_config(image, |cfg| {
        cfg.insert("WorkingDir".into(), Value::String(dir.into()));
    })
}

/// Sets the config `created` time (RFC 3339, e.g. `1980-01-01T00:00:01Z`).
pub fn set_created(image: &mut Image, created: &str) -> Result<()> {
    image.edit_config(|c| {
        c.insert("created".into(), Value::String(created.into()));
        Ok(())
    })
}

/// Sets (`Some`) or removes (`None`) manifest annotations, e.g.
/// `org.opencontainers.image.base.name` / `.base.digest`.
pub fn set_annotations<'a>(
    image: &mut Image,
    annotations: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) {
    let mut map = image.annotations();
    for (k, v) in annotations {
        match v {
            Some(v) => map.insert(k.into(), Value::String(v.into())),
            None => map.shift_remove(k),
        };
    }
    image.set_annotations(map);
}

pub const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";
pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
