//! The reference rebaser's safety checks (reference §4.2): target data for apps built at
//! Platform API >= 0.12, stack id and mixins for older ones, and the run-image name check.

use serde_json::{json, Map, Value};

use super::RebaseError;
use crate::app::string_labels;
use crate::metadata::RunImageRecord;
use relaunch_oci::{Image, ImageRef};

pub const REBASABLE_LABEL: &str = "io.buildpacks.rebasable";
pub const STACK_ID_LABEL: &str = "io.buildpacks.stack.id";
pub const MIXINS_LABEL: &str = "io.buildpacks.stack.mixins";
const BASE_ID_LABEL: &str = "io.buildpacks.base.id";
const DISTRO_NAME_LABEL: &str = "io.buildpacks.base.distro.name";
const DISTRO_VERSION_LABEL: &str = "io.buildpacks.base.distro.version";

/// os/arch/variant from the config, id and distro from the `io.buildpacks.base.*` labels.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    id: String,
    os: String,
    arch: String,
    variant: String,
    /// (name, version); present when either label is.
    distro: Option<(String, String)>,
}

impl Target {
    fn of(image: &Image) -> Target {
        let p = image.platform();
        let labels = string_labels(image);
        let get = |k: &str| labels.get(k).cloned();
        let distro = match (get(DISTRO_NAME_LABEL), get(DISTRO_VERSION_LABEL)) {
            (None, None) => None,
            (n, v) => Some((n.unwrap_or_default(), v.unwrap_or_default())),
        };
        Target {
            id: get(BASE_ID_LABEL).unwrap_or_default(),
            os: p.os,
            arch: p.architecture,
            variant: p.variant.unwrap_or_default(),
            distro,
        }
    }

    /// The reference's JSON (field order id, os, arch, arch-variant, distro).
    fn to_json(&self) -> String {
        let mut m = Map::new();
        if !self.id.is_empty() {
            m.insert("id".into(), json!(self.id));
        }
        m.insert("os".into(), json!(self.os));
        m.insert("arch".into(), json!(self.arch));
        if !self.variant.is_empty() {
            m.insert("arch-variant".into(), json!(self.variant));
        }
        if let Some((name, version)) = &self.distro {
            m.insert("distro".into(), json!({"name": name, "version": version}));
        }
        Value::Object(m).to_string()
    }

    /// Whether an app on `app` may move onto `self` (the new run image): same os and arch,
    /// variants equal unless either is empty, and every distro field the new image states.
    fn satisfies(&self, app: &Target) -> bool {
        let variant_ok =
            self.variant.is_empty() || app.variant.is_empty() || self.variant == app.variant;
        let distro_ok = match (&self.distro, &app.distro) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((n, v)), Some((an, av))) => {
                (n.is_empty() || n == an) && (v.is_empty() || v == av)
            }
        };
        self.os == app.os && self.arch == app.arch && variant_ok && distro_ok
    }
}

/// Apps built at Platform API >= 0.12: `io.buildpacks.rebasable` and target data. With
/// `force` a failed check is a warning.
pub fn validate_target(
    app: &Image,
    base: &Image,
    force: bool,
    warnings: &mut Vec<String>,
) -> Result<(), RebaseError> {
    if app.label(REBASABLE_LABEL).as_deref() == Some("false") {
        if !force {
            return Err(RebaseError::NotRebasable);
        }
        warnings.push("app image is not marked as rebasable".into());
    }
    let (new, old) = (Target::of(base), Target::of(app));
    if !new.satisfies(&old) {
        let (new, old) = (new.to_json(), old.to_json());
        if !force {
            return Err(RebaseError::TargetMismatch { new, old });
        }
        warnings.push(format!(
            "unable to satisfy target os/arch constraints; new run image: {new}, old run image: {old}"
        ));
    }
    Ok(())
}

/// Apps built before Platform API 0.12: equal stack ids, and every app mixin on the new
/// base (stage prefixes ignored). Not overridable, as in the reference.
pub fn validate_stack(app: &Image, base: &Image) -> Result<(), RebaseError> {
    let app_stack = app.label(STACK_ID_LABEL).unwrap_or_default();
    let base_stack = base.label(STACK_ID_LABEL).unwrap_or_default();
    if app_stack.is_empty() {
        return Err(RebaseError::NoStackOnApp);
    }
    if base_stack.is_empty() {
        return Err(RebaseError::NoStackOnBase);
    }
    if app_stack != base_stack {
        return Err(RebaseError::IncompatibleStack {
            base: base_stack,
            app: app_stack,
        });
    }
    let app_mixins = mixins(app, "app")?;
    let base_mixins = mixins(base, "run")?;
    let mut missing: Vec<&str> = app_mixins
        .iter()
        .filter(|m| !base_mixins.contains(m))
        .map(String::as_str)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        return Err(RebaseError::MissingMixins(missing.join(", ")));
    }
    Ok(())
}

/// The mixins label as names without stage prefix; absent or `null` is empty.
fn mixins(image: &Image, which: &'static str) -> Result<Vec<String>, RebaseError> {
    let Some(value) = image.label(MIXINS_LABEL) else {
        return Ok(Vec::new());
    };
    let list: Option<Vec<String>> =
        serde_json::from_str(&value).map_err(|e| RebaseError::BadMixins {
            which,
            reason: e.to_string(),
        })?;
    Ok(list
        .unwrap_or_default()
        .into_iter()
        .map(|m| match m.split_once(':') {
            Some((_, name)) => name.to_string(),
            None => m,
        })
        .collect())
}

/// Whether two image names denote the same repository and tag, as the reference compares
/// them: digests ignored, `latest` and Docker Hub's `index.docker.io`/`library/` implied.
/// Names that do not parse are compared as written.
pub fn same_image_name(a: &str, b: &str) -> bool {
    match (normalise(a), normalise(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn normalise(name: &str) -> Option<String> {
    Some(match ImageRef::parse(name).ok()? {
        ImageRef::Registry(r) => format!(
            "{}/{}:{}",
            r.registry,
            r.repository,
            r.tag.as_deref().unwrap_or("latest")
        ),
        ImageRef::Layout { dir, tag, .. } => {
            format!("oci:{}:{}", dir.display(), tag.as_deref().unwrap_or(""))
        }
    })
}

/// Every name `runImage` and `stack.runImage` list (image, then mirrors).
pub fn recorded_names(run_image: &RunImageRecord, stack: Option<&Value>) -> Vec<String> {
    let mut names: Vec<String> = run_image.image.iter().cloned().collect();
    names.extend(run_image.mirrors.iter().flatten().cloned());
    if let Some(stack_run) = stack.and_then(|s| s.get("runImage")) {
        names.extend(
            stack_run
                .get("image")
                .and_then(Value::as_str)
                .map(String::from),
        );
        names.extend(
            stack_run
                .get("mirrors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| m.as_str().map(String::from)),
        );
    }
    names.retain(|n| !n.is_empty());
    names
}

/// How the reference quotes the recorded run image in its name-mismatch message.
pub fn existing_description(run_image: &RunImageRecord, stack: Option<&Value>) -> String {
    if run_image.image.as_deref().is_some_and(|i| !i.is_empty()) {
        return serde_json::to_string(run_image).expect("run image record serialises");
    }
    match stack.and_then(|s| s.get("runImage")) {
        Some(v)
            if v.get("image")
                .and_then(Value::as_str)
                .is_some_and(|i| !i.is_empty()) =>
        {
            v.to_string()
        }
        _ => "not found".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(os: &str, arch: &str, variant: &str, distro: Option<(&str, &str)>) -> Target {
        Target {
            id: String::new(),
            os: os.into(),
            arch: arch.into(),
            variant: variant.into(),
            distro: distro.map(|(n, v)| (n.into(), v.into())),
        }
    }

    /// `platform/target_data_test.go` TargetSatisfiedForRebase truth table (reference §4.4).
    #[test]
    fn target_satisfied_for_rebase() {
        let base = t("Win95", "Pentium", "", None);
        assert!(base.satisfies(&t("Win95", "Pentium", "", None)));
        assert!(!base.satisfies(&t("Win98", "Pentium", "", None)));
        assert!(!base.satisfies(&t("Win95", "Pentium MMX", "", None)));
        assert!(base.satisfies(&t("Win95", "Pentium", "MMX", None)));
        assert!(base.satisfies(&t("Win95", "Pentium", "", Some(("a", "2")))));
        let v = t("Win95", "Pentium", "some-arch-variant", None);
        assert!(v.satisfies(&t("Win95", "Pentium", "some-arch-variant", None)));
        assert!(!v.satisfies(&t("Win95", "Pentium", "some-other-arch-variant", None)));
        assert!(v.satisfies(&t("Win95", "Pentium", "", None)));
        let d = t("Win95", "Pentium", "", Some(("A", "1")));
        assert!(d.satisfies(&t("Win95", "Pentium", "", Some(("A", "1")))));
        assert!(!d.satisfies(&t("Win95", "Pentium", "", Some(("B", "2")))));
        assert!(!d.satisfies(&t("Win95", "Pentium", "", None)));
    }

    #[test]
    fn names_compare_like_the_reference() {
        assert!(same_image_name(
            "index.docker.io/some-run-image-mirror",
            "some-run-image-mirror"
        ));
        assert!(same_image_name("run", "run:latest"));
        assert!(same_image_name(
            "reg.example:5000/run:1@sha256:c27a27006b74a056bed5d9edcebc394783880abe8691a8c87c78b7cffa6fa5ad",
            "reg.example:5000/run:1"
        ));
        assert!(!same_image_name(
            "some-run-image-mirror:new-tag",
            "some-run-image-mirror"
        ));
    }
}
