//! The exporter's labels as the reference serialises them: Go `encoding/json` field order
//! and omissions, map keys sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::inputs::{BuildFile, GroupEntry, Process, RunImageForExport};
use crate::apis::Api;
use crate::metadata::LauncherMode;

/// Compact JSON exactly as Go's `json.Marshal` writes it for the same value.
pub fn go_json<T: Serialize>(value: &T) -> String {
    let s = serde_json::to_string(value).expect("labels serialise");
    // These characters only ever occur inside JSON strings, so plain replacement is exact.
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// TOML to JSON with every table's keys in sorted order (Go marshals maps sorted).
pub fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => table_to_json(t),
    }
}

pub fn table_to_json(t: &toml::Table) -> Value {
    let sorted: BTreeMap<&String, &toml::Value> = t.iter().collect();
    Value::Object(
        sorted
            .into_iter()
            .map(|(k, v)| (k.clone(), toml_to_json(v)))
            .collect(),
    )
}

#[derive(Serialize)]
pub struct Sha {
    pub sha: String,
}

#[derive(Serialize)]
pub struct LayerRecord {
    pub sha: String,
    pub data: Value,
    pub build: bool,
    pub launch: bool,
    pub cache: bool,
}

#[derive(Serialize)]
pub struct BuildpackRecord {
    pub key: String,
    pub version: String,
    pub layers: BTreeMap<String, LayerRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreRecord>,
}

#[derive(Serialize)]
pub struct StoreRecord {
    pub metadata: Value,
}

#[derive(Serialize)]
pub struct LauncherSha {
    pub sha: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub mode: Option<LauncherMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[derive(Serialize, Default)]
pub struct RunImageRef {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

impl From<&RunImageForExport> for RunImageRef {
    fn from(r: &RunImageForExport) -> Self {
        RunImageRef {
            image: r.image.clone(),
            mirrors: r.mirrors.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct RunImageRecord {
    #[serde(rename = "topLayer")]
    pub top_layer: String,
    pub reference: String,
    #[serde(flatten)]
    pub name: RunImageRef,
}

#[derive(Serialize)]
pub struct Stack {
    #[serde(rename = "runImage")]
    pub run_image: RunImageRef,
}

/// `io.buildpacks.lifecycle.metadata` (files.LayersMetadata).
#[derive(Serialize)]
pub struct LayersMetadata {
    pub app: Vec<Sha>,
    #[serde(rename = "sbom", skip_serializing_if = "Option::is_none")]
    pub sbom: Option<Sha>,
    pub buildpacks: Vec<BuildpackRecord>,
    pub config: Sha,
    pub launcher: LauncherSha,
    #[serde(rename = "process-types")]
    pub process_types: Sha,
    #[serde(rename = "runImage")]
    pub run_image: RunImageRecord,
    pub stack: Stack,
}

#[derive(Serialize)]
struct GroupJson<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    homepage: &'a str,
}

fn group_json(entries: &[GroupEntry]) -> Vec<GroupJson<'_>> {
    entries
        .iter()
        .map(|g| GroupJson {
            id: &g.id,
            version: &g.version,
            homepage: &g.homepage,
        })
        .collect()
}

#[derive(Serialize)]
struct ProcessJson<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    command: Value,
    args: Option<Vec<String>>,
    direct: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    default: bool,
    #[serde(rename = "buildpackID")]
    buildpack_id: &'a str,
    #[serde(rename = "working-dir", skip_serializing_if = "str::is_empty")]
    working_dir: &'a str,
    #[serde(rename = "exec-env", skip_serializing_if = "<[String]>::is_empty")]
    exec_env: &'a [String],
}

fn process_json(p: &Process, platform: Api) -> ProcessJson<'_> {
    let entries = p.command.as_ref().map(|c| c.entries()).unwrap_or_default();
    // Below Platform 0.10 the command is one string and the rest of it leads the args
    // (Go: `append(Command.Entries[1:], Args...)`, never null); from 0.10 an array.
    let (command, args) = if platform < Api::new(0, 10) {
        let mut args: Vec<String> = entries.iter().skip(1).cloned().collect();
        args.extend(p.args.iter().flatten().cloned());
        let first = entries.first().cloned().map_or(Value::Null, Value::String);
        (first, Some(args))
    } else {
        (Value::from(entries), p.args.clone())
    };
    ProcessJson {
        kind: &p.kind,
        command,
        args,
        direct: p.direct,
        default: p.default,
        buildpack_id: &p.buildpack_id,
        working_dir: &p.working_dir,
        exec_env: &p.exec_env,
    }
}

#[derive(Serialize)]
struct BuildMetadataJson<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bom: Vec<Value>,
    buildpacks: Vec<GroupJson<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extensions: Vec<GroupJson<'a>>,
    launcher: &'a Value,
    processes: Vec<ProcessJson<'a>>,
    #[serde(
        rename = "buildpack-default-process-type",
        skip_serializing_if = "str::is_empty"
    )]
    default_process_type: &'a str,
}

/// `io.buildpacks.build.metadata`: buildpacks, extensions and processes as the builder
/// recorded them in metadata.toml.
pub fn build_metadata(platform: Api, build: &BuildFile, launcher: &Value) -> String {
    go_json(&BuildMetadataJson {
        bom: if platform < Api::new(0, 9) {
            build.bom.iter().map(toml_to_json).collect()
        } else {
            Vec::new()
        },
        buildpacks: group_json(&build.buildpacks),
        extensions: group_json(&build.extensions),
        launcher,
        processes: build
            .processes
            .iter()
            .map(|p| process_json(p, platform))
            .collect(),
        default_process_type: &build.default_process_type,
    })
}

/// The reference's `launcher` entry in the build metadata (binary mode).
pub fn launcher_source(version: &str, repository: &str, commit: &str) -> Value {
    serde_json::json!({"version": version, "source": {"git": {"repository": repository, "commit": commit}}})
}

/// `io.buildpacks.project.metadata`: `{}` without project-metadata.toml.
pub fn project_metadata(table: Option<&toml::Table>) -> String {
    #[derive(Serialize)]
    struct Source {
        #[serde(rename = "type")]
        kind: Value,
        version: Value,
        metadata: Value,
    }
    #[derive(Serialize)]
    struct Project {
        #[serde(skip_serializing_if = "Option::is_none")]
        source: Option<Source>,
    }
    let source = table
        .and_then(|t| t.get("source"))
        .and_then(|s| s.as_table())
        .map(|s| {
            let get = |k: &str| s.get(k).map_or(Value::Null, toml_to_json);
            Source {
                kind: s
                    .get("type")
                    .map_or(Value::String(String::new()), toml_to_json),
                version: get("version"),
                metadata: get("metadata"),
            }
        });
    go_json(&Project { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_like_go() {
        assert_eq!(go_json(&"a<b>&\u{2028}"), r#""a\u003cb\u003e\u0026\u2028""#);
    }

    #[test]
    fn project_metadata_without_file_is_empty_object() {
        assert_eq!(project_metadata(None), "{}");
        let t: toml::Table =
            toml::from_str("[source]\ntype = \"git\"\n[source.version]\ncommit = \"abc\"\n")
                .unwrap();
        assert_eq!(
            project_metadata(Some(&t)),
            r#"{"source":{"type":"git","version":{"commit":"abc"},"metadata":null}}"#
        );
    }
}
