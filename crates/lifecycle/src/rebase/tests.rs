//! The reference rebaser's unit cases (`phase/rebaser_test.go`, reference §4.4), one test
//! per case, in modules named after its `when` blocks and tests named after its `it`s.
//! The reference's fake images become real ones: the app is one old-base layer plus one
//! app layer, the new base one layer; `Base() == new base` becomes "the app's bottom
//! layers are the new base's". Report cases (digest, manifest size, names) live with the
//! CLI that writes (crates/relaunch/tests/rebaser.rs); the image-ID case needs a Docker
//! daemon, which relaunch does not drive.

use relaunch_oci::layer::{Entry, LayerBuilder};
use relaunch_oci::mutate;
use relaunch_oci::v1::Flavor;
use relaunch_oci::Image;
use serde_json::{json, Value};

use super::*;

const NEW_BASE: &str = "some-repo/new-base-image";
const NEW_RUN_ID: &str = "new-run-id";

fn image(content: &str) -> Image {
    let layer = LayerBuilder::new()
        .entry(Entry::file("/f", 0o644, content.to_string()))
        .build()
        .unwrap();
    let mut img = Image::new(
        Flavor::Oci,
        json!({"os": "linux", "architecture": "amd64", "config": {}}),
    )
    .unwrap();
    mutate::append_layers(&mut img, vec![(layer, None)]).unwrap();
    img
}

fn set_label(img: &mut Image, k: &str, v: &str) {
    mutate::set_labels(img, [(k, Some(v))]).unwrap();
}

fn set_config(img: &mut Image, k: &str, v: &str) {
    img.edit_config(|c| {
        c.insert(k.into(), json!(v));
        Ok(())
    })
    .unwrap();
}

struct Case {
    app: Image,
    base: Image,
    base_name: String,
    platform_api: Api,
    force: bool,
}

impl Case {
    /// The reference's `it.Before`: stack ids bionic, app at Platform 0.15 with
    /// `stack.runImage.image` = the new base's name.
    fn new() -> Case {
        let mut app = image("old base");
        let top = app.layers()[0].diff_id.to_string();
        let app_layer = image("app").layers()[0].clone();
        mutate::append_layers(&mut app, vec![(app_layer, None)]).unwrap();
        set_label(&mut app, STACK_ID_LABEL, "io.buildpacks.stacks.bionic");
        mutate::set_env(&mut app, PLATFORM_API_ENV, "0.15").unwrap();
        let mut case = Case {
            app,
            base: image("new base"),
            base_name: NEW_BASE.into(),
            platform_api: LATEST_PLATFORM_API,
            force: false,
        };
        set_label(
            &mut case.base,
            STACK_ID_LABEL,
            "io.buildpacks.stacks.bionic",
        );
        case.metadata(json!({
            "runImage": {"topLayer": top, "reference": ""},
            "stack": {"runImage": {"image": NEW_BASE}},
        }));
        case
    }

    /// Sets the app's metadata label; `runImage.topLayer` always names its base layer.
    fn metadata(&mut self, mut md: Value) {
        md["runImage"]["topLayer"] = json!(self.app.layers()[0].diff_id.to_string());
        set_label(&mut self.app, LIFECYCLE_METADATA_LABEL, &md.to_string());
    }

    /// The reference's "updating run image metadata" setup.
    fn with_recorded_run_image(mut self) -> Case {
        self.metadata(json!({
            "runImage": {"reference": "some-run-image-digest-reference", "image": "some-run-image-tag-reference", "mirrors": ["some-run-image-mirror"]},
            "stack": {"runImage": {"image": "some-run-image-tag-reference", "mirrors": ["some-run-image-mirror"]}},
        }));
        self
    }

    fn new_base_named(mut self, name: &str) -> Case {
        self.base_name = name.into();
        self
    }

    fn app_api(mut self, api: &str) -> Case {
        mutate::set_env(&mut self.app, PLATFORM_API_ENV, api).unwrap();
        self
    }

    fn run(&self) -> Result<Rebased, RebaseError> {
        let opts = RebaseOptions {
            platform_api: self.platform_api,
            force: self.force,
            ..Default::default()
        };
        let base = NewBase {
            image: &self.base,
            name: &self.base_name,
            reference: NEW_RUN_ID,
        };
        rebase(self.app.clone(), Some(base), &opts)
    }

    /// `Base() == new base`: the app now sits on the new base's layers.
    fn rebased(&self) -> Rebased {
        let out = self.run().expect("rebase succeeds");
        let n = self.base.layers().len();
        assert_eq!(out.image.diff_ids()[..n], self.base.diff_ids()[..]);
        assert_eq!(out.image.layers()[n].diff_id, self.app.layers()[1].diff_id);
        out
    }

    fn new_top(&self) -> String {
        self.base.layers()[0].diff_id.to_string()
    }

    fn error(&self) -> String {
        self.run().expect_err("rebase is refused").to_string()
    }
}

fn md(img: &Image) -> Value {
    serde_json::from_str(&img.label(LIFECYCLE_METADATA_LABEL).unwrap()).unwrap()
}

fn label(img: &Image, k: &str) -> String {
    img.label(k).unwrap_or_default()
}

mod app_image_and_run_image_exist {
    use super::*;

    #[test]
    fn updates_the_base_image_of_the_app_image() {
        Case::new().rebased();
    }

    #[test]
    fn sets_the_top_layer_in_the_metadata() {
        let c = Case::new();
        assert_eq!(md(&c.rebased().image)["runImage"]["topLayer"], c.new_top());
    }

    #[test]
    fn sets_the_run_image_reference_in_the_metadata() {
        let c = Case::new();
        assert_eq!(md(&c.rebased().image)["runImage"]["reference"], NEW_RUN_ID);
    }

    #[test]
    fn preserves_other_existing_metadata() {
        let mut c = Case::new();
        c.metadata(json!({"app": [{"sha": "123456"}], "buildpacks":[{"key": "buildpack.id", "layers": {}}], "runImage": {}}));
        c.force = true;
        let m = md(&c.rebased().image);
        assert_eq!(m["buildpacks"].as_array().unwrap().len(), 1);
        assert_eq!(m["buildpacks"][0]["key"], "buildpack.id");
        assert_eq!(m["app"], json!([{"sha": "123456"}]));
    }

    mod updating_run_image_metadata {
        use super::*;

        fn existing(c: &Case) -> String {
            format!(
                r#"{{"topLayer":"{}","reference":"new-run-id","image":"some-run-image-tag-reference","mirrors":["some-run-image-mirror"]}}"#,
                c.new_top()
            )
        }

        fn assert_preserved(c: &Case) {
            let m = md(&c.rebased().image);
            assert_eq!(m["runImage"]["topLayer"], c.new_top());
            assert_eq!(m["runImage"]["reference"], NEW_RUN_ID);
            assert_eq!(m["runImage"]["image"], "some-run-image-tag-reference");
            assert_eq!(m["runImage"]["mirrors"], json!(["some-run-image-mirror"]));
            assert_eq!(
                m["stack"]["runImage"]["image"],
                "some-run-image-tag-reference"
            );
            assert_eq!(
                m["stack"]["runImage"]["mirrors"],
                json!(["some-run-image-mirror"])
            );
        }

        mod existing_run_image_metadata_does_not_include_new_run_image {
            use super::*;

            #[test]
            fn force_true_warns_and_overrides_the_existing_metadata() {
                let mut c = Case::new().with_recorded_run_image();
                c.force = true;
                let out = c.rebased();
                assert!(out.warnings.contains(&format!(
                    "rebase app image: new base image 'some-repo/new-base-image' not found in existing run image metadata: {}",
                    existing(&c)
                )), "{:?}", out.warnings);
                let m = md(&out.image);
                assert_eq!(m["runImage"]["topLayer"], c.new_top());
                assert_eq!(m["runImage"]["reference"], NEW_RUN_ID);
                assert_eq!(m["runImage"]["image"], NEW_BASE);
                assert!(m["runImage"].get("mirrors").is_none());
                assert_eq!(m["stack"]["runImage"]["image"], NEW_BASE);
                assert!(m["stack"]["runImage"].get("mirrors").is_none());
            }

            #[test]
            fn force_false_errors() {
                let c = Case::new().with_recorded_run_image();
                assert!(c.error().starts_with(&format!(
                    "rebase app image: new base image 'some-repo/new-base-image' not found in existing run image metadata: {}",
                    existing(&c)
                )));
            }

            #[test]
            fn force_false_tag_is_different_doesnt_match() {
                let c = Case::new()
                    .with_recorded_run_image()
                    .new_base_named("some-run-image-mirror:new-tag");
                assert!(c.error().starts_with(&format!(
                    "rebase app image: new base image 'some-run-image-mirror:new-tag' not found in existing run image metadata: {}",
                    existing(&c)
                )));
            }

            #[test]
            fn force_false_platform_api_lt_0_12_preserves_the_existing_metadata() {
                let mut c = Case::new().with_recorded_run_image();
                c.platform_api = Api::new(0, 11);
                assert_preserved(&c);
            }
        }

        mod existing_run_image_metadata_includes_new_run_image {
            use super::*;

            #[test]
            fn preserves_the_existing_metadata() {
                assert_preserved(
                    &Case::new()
                        .with_recorded_run_image()
                        .new_base_named("some-run-image-mirror"),
                );
            }

            #[test]
            fn reference_includes_docker_registry_still_matches() {
                assert_preserved(
                    &Case::new()
                        .with_recorded_run_image()
                        .new_base_named("index.docker.io/some-run-image-mirror"),
                );
            }
        }

        #[test]
        fn existing_run_image_metadata_includes_new_run_image_as_mirror_preserves_the_existing_metadata(
        ) {
            assert_preserved(
                &Case::new()
                    .with_recorded_run_image()
                    .new_base_named("some-run-image-mirror"),
            );
        }
    }

    #[test]
    fn image_has_io_buildpacks_stack_labels_syncs_matching_labels() {
        let mut c = Case::new();
        for (k, app, run) in [
            ("io.buildpacks.stack.distro.name", "ubuntu", "ubuntu"),
            ("io.buildpacks.stack.changed", "v1", "v2"),
            ("io.buildpacks.stack.added", "", "new"),
            ("io.buildpacks.stack.removed", "old", ""),
            ("io.custom.old", "abc", ""),
            ("io.custom.stack", "", "def"),
        ] {
            if !app.is_empty() {
                set_label(&mut c.app, k, app);
            }
            if !run.is_empty() {
                set_label(&mut c.base, k, run);
            }
        }
        let out = c.rebased().image;
        for (k, want) in [
            ("io.buildpacks.stack.distro.name", "ubuntu"),
            ("io.buildpacks.stack.changed", "v2"),
            ("io.buildpacks.stack.added", "new"),
            ("io.buildpacks.stack.removed", ""),
            ("io.custom.old", "abc"),
            ("io.custom.stack", ""),
        ] {
            assert_eq!(label(&out, k), want, "{k}");
        }
    }

    #[test]
    fn image_has_io_buildpacks_base_labels_syncs_matching_labels() {
        let mut c = Case::new();
        set_label(&mut c.app, "io.buildpacks.base.homepage", "v1");
        set_label(&mut c.base, "io.buildpacks.base.homepage", "v2");
        set_label(&mut c.base, "io.buildpacks.stack.added", "new");
        set_label(&mut c.app, "io.buildpacks.base.removed", "old");
        let out = c.rebased().image;
        assert_eq!(label(&out, "io.buildpacks.base.homepage"), "v2");
        assert_eq!(label(&out, "io.buildpacks.stack.added"), "new");
        assert_eq!(label(&out, "io.buildpacks.base.removed"), "");
    }
}

mod validating_rebasable {
    use super::*;

    fn not_rebasable() -> Case {
        let mut c = Case::new();
        set_label(&mut c.app, REBASABLE_LABEL, "false");
        c
    }

    #[test]
    fn rebasable_label_is_false_force_false_errors() {
        assert!(not_rebasable()
            .error()
            .starts_with("app image is not marked as rebasable"));
    }

    #[test]
    fn rebasable_label_is_false_force_true_warns_and_allows_rebase() {
        let mut c = not_rebasable();
        c.force = true;
        let out = c.rebased();
        assert!(out
            .warnings
            .contains(&"app image is not marked as rebasable".to_string()));
    }

    #[test]
    fn rebasable_label_is_not_false_allows_rebase() {
        let mut c = Case::new();
        set_label(&mut c.app, REBASABLE_LABEL, "true");
        c.rebased();
    }

    #[test]
    fn rebasable_label_is_empty_allows_rebase() {
        let mut c = Case::new();
        set_label(&mut c.app, REBASABLE_LABEL, "");
        c.rebased();
    }

    #[test]
    fn previous_image_was_built_using_platform_api_lt_0_12_rebasable_label_is_false_allows_rebase()
    {
        not_rebasable().app_api("0.11").rebased();
    }
}

mod validating_mixins {
    use super::*;

    fn mixins(api: &str, app: &str, run: &str) -> Case {
        let mut c = Case::new().app_api(api);
        set_label(&mut c.app, MIXINS_LABEL, app);
        set_label(&mut c.base, MIXINS_LABEL, run);
        c
    }

    #[test]
    fn mixins_are_missing_on_the_run_image_allows_rebase() {
        mixins(
            "0.15",
            r#"["mixin-1", "run:mixin-2"]"#,
            r#"["run:mixin-2"]"#,
        )
        .rebased();
    }

    mod previous_image_was_built_using_platform_api_lt_0_12 {
        use super::*;

        #[test]
        fn there_are_no_mixin_labels_allows_rebase() {
            Case::new().app_api("0.11").rebased();
        }

        #[test]
        fn there_are_invalid_mixin_labels_errors() {
            let mut c = Case::new().app_api("0.11");
            set_label(&mut c.app, MIXINS_LABEL, "thisisn'tvalid!");
            // The reference quotes Go's JSON error after this prefix; serde_json words it
            // differently (README: deliberate differences).
            assert!(c.error().starts_with(
                "get app image mixins: failed to unmarshal context of label 'io.buildpacks.stack.mixins': "
            ));
        }

        #[test]
        fn mixins_are_not_present_in_either_image_allows_rebase() {
            mixins("0.11", "null", "null").rebased();
        }

        #[test]
        fn mixins_are_not_present_on_the_app_image_allows_rebase() {
            mixins("0.11", "null", r#"["mixin-1"]"#).rebased();
        }

        #[test]
        fn mixins_match_on_the_app_and_run_images_allows_rebase() {
            let both = r#"["mixin-1", "run:mixin-2"]"#;
            mixins("0.11", both, both).rebased();
        }

        #[test]
        fn extra_mixins_are_present_on_the_run_image_allows_rebase() {
            mixins(
                "0.11",
                r#"["mixin-1", "run:mixin-2"]"#,
                r#"["mixin-1", "run:mixin-2", "mixin-3"]"#,
            )
            .rebased();
        }

        #[test]
        fn mixins_on_the_app_image_have_stage_specifiers_that_do_not_match_the_run_image_allows_rebase(
        ) {
            mixins(
                "0.11",
                r#"["mixin-1", "run:mixin-2"]"#,
                r#"["mixin-1", "mixin-2"]"#,
            )
            .rebased();
        }

        #[test]
        fn mixins_on_the_run_image_have_stage_specifiers_that_do_not_match_the_app_image_allows_rebase(
        ) {
            mixins(
                "0.11",
                r#"["mixin-1", "run:mixin-2"]"#,
                r#"["run:mixin-1", "run:mixin-2"]"#,
            )
            .rebased();
        }

        #[test]
        fn mixins_are_missing_on_the_run_image_does_not_allow_rebase() {
            let c = mixins(
                "0.11",
                r#"["mixin-1", "run:mixin-2"]"#,
                r#"["run:mixin-2"]"#,
            );
            assert_eq!(c.error(), "missing required mixin(s): mixin-1");
        }
    }
}

mod validating_targets_and_stacks {
    use super::*;

    /// The same cases for apps built at an unknown and at a pre-0.12 Platform API.
    macro_rules! legacy_cases {
        ($module:ident, $api:literal) => {
            mod $module {
                use super::*;

                fn case() -> Case {
                    Case::new().app_api($api)
                }

                #[test]
                fn targets_are_different_allows_rebase_with_missing_labels() {
                    let mut c = case();
                    set_config(&mut c.app, "os", "");
                    c.rebased();
                }

                #[test]
                fn targets_are_different_allows_rebase_with_mismatched_variants() {
                    let mut c = case();
                    set_config(&mut c.app, "variant", "variant1");
                    set_config(&mut c.base, "variant", "variant2");
                    c.rebased();
                }

                #[test]
                fn stacks_are_different_errors_and_prevents_the_rebase_from_taking_place_when_the_stacks_are_different(
                ) {
                    let mut c = case();
                    set_label(&mut c.base, STACK_ID_LABEL, "io.buildpacks.stacks.cflinuxfs3");
                    assert_eq!(
                        c.error(),
                        "incompatible stack: 'io.buildpacks.stacks.cflinuxfs3' is not compatible with 'io.buildpacks.stacks.bionic'"
                    );
                }

                #[test]
                fn stacks_are_different_errors_and_prevents_the_rebase_from_taking_place_when_the_new_base_image_has_no_stack_defined(
                ) {
                    let mut c = case();
                    set_label(&mut c.base, STACK_ID_LABEL, "");
                    assert_eq!(c.error(), "stack not defined on new base image");
                }

                #[test]
                fn stacks_are_different_errors_and_prevents_the_rebase_from_taking_place_when_the_app_image_has_no_stack_defined(
                ) {
                    let mut c = case();
                    set_label(&mut c.app, STACK_ID_LABEL, "");
                    set_label(&mut c.base, STACK_ID_LABEL, "io.buildpacks.stacks.cflinuxfs3");
                    assert_eq!(c.error(), "stack not defined on app image");
                }
            }
        };
    }

    legacy_cases!(previous_image_was_built_using_unknown_platform_api, "");
    legacy_cases!(previous_image_was_built_using_platform_api_lt_0_12, "0.11");

    mod previous_image_was_built_using_platform_api_ge_0_12 {
        use super::*;

        fn refused(config: Option<(&str, &str, &str)>, lbl: Option<(&str, &str, &str)>) -> Case {
            let mut c = Case::new();
            if let Some((k, app, run)) = config {
                set_config(&mut c.app, k, app);
                set_config(&mut c.base, k, run);
            }
            if let Some((k, app, run)) = lbl {
                set_label(&mut c.app, k, app);
                set_label(&mut c.base, k, run);
            }
            c
        }

        fn message(c: &Case) -> String {
            c.error()
                .strip_suffix("; please provide -force to override")
                .expect("names -force")
                .to_string()
        }

        #[test]
        fn targets_are_different_force_false_errors_and_prevents_the_rebase_from_taking_place_when_the_os_are_different(
        ) {
            let c = refused(Some(("os", "linux", "notlinux")), None);
            assert_eq!(
                message(&c),
                r#"unable to satisfy target os/arch constraints; new run image: {"os":"notlinux","arch":"amd64"}, old run image: {"os":"linux","arch":"amd64"}"#
            );
        }

        #[test]
        fn targets_are_different_force_false_errors_and_prevents_the_rebase_from_taking_place_when_the_architecture_are_different(
        ) {
            let c = refused(Some(("architecture", "amd64", "arm64")), None);
            assert_eq!(
                message(&c),
                r#"unable to satisfy target os/arch constraints; new run image: {"os":"linux","arch":"arm64"}, old run image: {"os":"linux","arch":"amd64"}"#
            );
        }

        #[test]
        fn targets_are_different_force_false_errors_and_prevents_the_rebase_from_taking_place_when_the_architecture_variant_are_different(
        ) {
            let c = refused(Some(("variant", "variant1", "variant2")), None);
            assert_eq!(
                message(&c),
                r#"unable to satisfy target os/arch constraints; new run image: {"os":"linux","arch":"amd64","arch-variant":"variant2"}, old run image: {"os":"linux","arch":"amd64","arch-variant":"variant1"}"#
            );
        }

        #[test]
        fn targets_are_different_force_false_errors_and_prevents_the_rebase_from_taking_place_when_the_io_buildpacks_base_distro_name_are_different(
        ) {
            let c = refused(
                None,
                Some(("io.buildpacks.base.distro.name", "distro1", "distro2")),
            );
            assert_eq!(
                message(&c),
                r#"unable to satisfy target os/arch constraints; new run image: {"os":"linux","arch":"amd64","distro":{"name":"distro2","version":""}}, old run image: {"os":"linux","arch":"amd64","distro":{"name":"distro1","version":""}}"#
            );
        }

        #[test]
        fn targets_are_different_force_false_errors_and_prevents_the_rebase_from_taking_place_when_the_io_buildpacks_base_distro_version_are_different(
        ) {
            let c = refused(
                None,
                Some(("io.buildpacks.base.distro.version", "version1", "version2")),
            );
            assert_eq!(
                message(&c),
                r#"unable to satisfy target os/arch constraints; new run image: {"os":"linux","arch":"amd64","distro":{"name":"","version":"version2"}}, old run image: {"os":"linux","arch":"amd64","distro":{"name":"","version":"version1"}}"#
            );
        }

        #[test]
        fn targets_are_different_force_true_warns_and_allows_rebase_when_the_os_are_different() {
            let mut c = refused(Some(("os", "linux", "notlinux")), None);
            c.force = true;
            let out = c.run().unwrap();
            assert!(out.warnings.contains(&r#"unable to satisfy target os/arch constraints; new run image: {"os":"notlinux","arch":"amd64"}, old run image: {"os":"linux","arch":"amd64"}"#.to_string()));
            assert_eq!(
                out.image.platform().os,
                "notlinux",
                "taken from the new base"
            );
        }

        #[test]
        fn stacks_are_different_allows_rebase_when_the_stacks_are_different() {
            let mut c = Case::new();
            set_label(
                &mut c.base,
                STACK_ID_LABEL,
                "io.buildpacks.stacks.cflinuxfs3",
            );
            c.rebased();
        }

        #[test]
        fn stacks_are_different_allows_rebase_when_the_new_base_image_has_no_stack_defined() {
            let mut c = Case::new();
            set_label(&mut c.base, STACK_ID_LABEL, "");
            c.rebased();
        }

        #[test]
        fn stacks_are_different_allows_rebase_when_the_app_image_has_no_stack_defined() {
            let mut c = Case::new();
            set_label(&mut c.app, STACK_ID_LABEL, "");
            set_label(
                &mut c.base,
                STACK_ID_LABEL,
                "io.buildpacks.stacks.cflinuxfs3",
            );
            c.rebased();
        }
    }
}

mod relaunch {
    //! What relaunch adds: idempotency, launcher-label re-sync, bad input.
    use super::*;
    use crate::contract::{AdvertisedLauncher, PATH_LABEL};

    #[test]
    fn rebasing_again_onto_the_same_base_is_unchanged() {
        let c = Case::new();
        let once = c.rebased();
        assert!(!once.unchanged);
        let again = Case {
            app: once.image.clone(),
            ..Case::new()
        };
        let base = NewBase {
            image: &c.base,
            name: NEW_BASE,
            reference: NEW_RUN_ID,
        };
        let twice = rebase(again.app, Some(base), &RebaseOptions::default()).unwrap();
        assert!(twice.unchanged);
        assert_eq!(twice.image.digest(), once.image.digest());
    }

    /// The reference writes Docker v2s2 over an OCI app's layers; relaunch keeps the app's
    /// manifest type and gives every layer (the Docker base's too) a media type of it.
    #[test]
    fn the_apps_manifest_type_is_kept_over_a_docker_base() {
        let mut c = Case::new();
        c.base.set_flavor(Flavor::Docker);
        let docker_layers = c
            .base
            .layers()
            .iter()
            .cloned()
            .map(|mut l| {
                l.descriptor.media_type = relaunch_oci::media_type::DOCKER_LAYER_GZIP.into();
                l
            })
            .collect();
        c.base.set_layers(docker_layers).unwrap();
        assert_eq!(
            c.base.manifest().layers[0].media_type,
            relaunch_oci::media_type::DOCKER_LAYER_GZIP
        );
        let out = c.rebased().image;
        assert_eq!(out.flavor(), Flavor::Oci);
        let manifest = out.manifest();
        assert_eq!(
            manifest.media_type.as_deref(),
            Some(relaunch_oci::media_type::OCI_MANIFEST)
        );
        assert_eq!(
            manifest.config.media_type,
            relaunch_oci::media_type::OCI_CONFIG
        );
        for layer in &manifest.layers {
            assert_eq!(layer.media_type, relaunch_oci::media_type::OCI_LAYER_GZIP);
        }
    }

    #[test]
    fn launcher_labels_follow_the_new_run_image() {
        let mut c = Case::new();
        set_label(&mut c.app, PATH_LABEL, "/old/launcher");
        let out = c.rebased().image;
        assert_eq!(
            out.label(PATH_LABEL),
            None,
            "removed: the new base has none"
        );
        let adv = AdvertisedLauncher {
            path: "/usr/local/bin/launcher".into(),
            version: "2.0.0".into(),
            platform_apis: "0.15".parse().unwrap(),
            buildpack_apis: "0.12".parse().unwrap(),
        };
        for (k, v) in adv.to_labels() {
            set_label(&mut c.base, k, &v);
        }
        let out = c.rebased().image;
        let synced = AdvertisedLauncher::from_labels(&string_labels(&out)).unwrap();
        assert_eq!(synced, Some(adv));
    }

    #[test]
    fn a_top_layer_the_app_lacks_is_named_and_nothing_is_rebased() {
        let mut c = Case::new();
        c.metadata(json!({"runImage": {}}));
        let mut md = md(&c.app);
        md["runImage"]["topLayer"] = json!("sha256:0000");
        set_label(&mut c.app, LIFECYCLE_METADATA_LABEL, &md.to_string());
        let e = c.run().unwrap_err();
        assert!(matches!(e, RebaseError::BaseLayerNotFound(_)));
        assert!(e.to_string().contains("sha256:0000"), "{e}");
    }

    #[test]
    fn missing_or_malformed_metadata_is_a_one_line_error() {
        let mut c = Case::new();
        mutate::set_labels(&mut c.app, [(LIFECYCLE_METADATA_LABEL, None)]).unwrap();
        let e = c.error();
        assert!(
            e.contains(LIFECYCLE_METADATA_LABEL) && !e.contains('\n'),
            "{e}"
        );
        set_label(&mut c.app, LIFECYCLE_METADATA_LABEL, "{not json");
        let e = c.error();
        assert!(e.starts_with("get image metadata: "), "{e}");
    }
}

mod launcher {
    //! relaunch's launcher duties on real fixtures: a stamped run image, an exported app.
    use super::*;
    use crate::contract::AdvertisedLauncher;
    use crate::decouple::decouple;
    use crate::fixtures::{export_app, sample_app, RunImageRef};
    use crate::launcher::Overrides;
    use crate::stamp::stamp_run_image;
    use crate::testing::{launcher_described_as, tiny_run_image};

    fn launcher(version: &str, platform: &str) -> ResolvedLauncher {
        let json = format!(
            r#"{{"name":"relaunch-launcher","version":"{version}","platform-apis":[{platform}],"buildpack-apis":["0.10"]}}"#
        );
        launcher_described_as(json.as_bytes(), &Overrides::default())
    }

    fn run_with(l: &ResolvedLauncher) -> Image {
        let mut run = tiny_run_image();
        set_label(&mut run, STACK_ID_LABEL, "s");
        stamp_run_image(run, l, "/usr/local/bin/launcher")
            .unwrap()
            .image
    }

    /// (run v1, binary-mode app on it at Platform 0.10, the same app decoupled).
    fn world() -> (Image, Image, Image) {
        let l = launcher("1.0.0", r#""0.10""#);
        let run = run_with(&l);
        let run_ref = RunImageRef {
            image: "run".into(),
            reference: "run@sha256:x".into(),
        };
        let app = export_app(
            &run,
            &run_ref,
            &sample_app(Api::new(0, 10)),
            &l.binary.bytes,
            "1.0.0",
        )
        .unwrap();
        let adv = AdvertisedLauncher::from_labels(&string_labels(&run))
            .unwrap()
            .unwrap();
        let symlinked = decouple(app.clone(), &adv, None, false).unwrap().image;
        (run, app, symlinked)
    }

    fn onto<'a>(run: &'a Image) -> Option<NewBase<'a>> {
        Some(NewBase {
            image: run,
            name: "run",
            reference: "run@sha256:y",
        })
    }

    #[test]
    fn symlink_mode_apps_are_validated_against_the_new_launcher() {
        let (_, _, app) = world();
        let narrow = run_with(&launcher("2.0.0", r#""0.12""#));
        let e = rebase(app.clone(), onto(&narrow), &RebaseOptions::default()).unwrap_err();
        assert!(matches!(e, RebaseError::LauncherIncompatible { .. }) && e.is_refusal());
        assert!(
            e.to_string()
                .contains("Platform API 0.10 (supported: 0.12)"),
            "{e}"
        );
        let forced = RebaseOptions {
            force: true,
            ..Default::default()
        };
        let out = rebase(app.clone(), onto(&narrow), &forced).unwrap();
        assert!(out.warnings.iter().any(|w| w.contains("Platform API 0.10")));

        let mut bare = tiny_run_image();
        set_label(&mut bare, STACK_ID_LABEL, "s");
        let e = rebase(app.clone(), onto(&bare), &RebaseOptions::default()).unwrap_err();
        assert!(matches!(e, RebaseError::NoRunImageLauncher { .. }), "{e}");

        let good = run_with(&launcher("2.0.0", r#""0.10","0.12""#));
        let out = rebase(app, onto(&good), &RebaseOptions::default()).unwrap();
        assert!(out.launcher_check.unwrap().compatible);
    }

    #[test]
    fn binary_mode_apps_are_not_checked_against_the_run_images_launcher() {
        let (_, app, _) = world();
        let narrow = run_with(&launcher("2.0.0", r#""0.12""#));
        let out = rebase(app, onto(&narrow), &RebaseOptions::default()).unwrap();
        assert!(out.launcher_check.is_none() && !out.unchanged);
    }

    #[test]
    fn decouple_switches_to_symlink_mode_in_the_same_write() {
        let (_, app, _) = world();
        let v2 = run_with(&launcher("2.0.0", r#""0.10""#));
        let opts = RebaseOptions {
            decouple: true,
            ..Default::default()
        };
        let out = rebase(app.clone(), onto(&v2), &opts).unwrap();
        let (md, index) = crate::app::lifecycle_metadata(&out.image).unwrap();
        assert_eq!(md.launcher.mode(), LauncherMode::Symlink);
        assert_eq!(out.image.diff_ids()[..2], v2.diff_ids()[..]);
        assert_eq!(out.image.layers().len(), app.layers().len());
        assert_ne!(out.previous_launcher, out.launcher);
        assert_eq!(out.image.layers()[index].diff_id.as_str(), out.launcher);
        let none = rebase(app, None, &opts).unwrap_err();
        assert!(matches!(none, RebaseError::DecoupleWithoutRunImage));
    }

    #[test]
    fn launcher_swap_replaces_the_layer_in_place_and_respects_the_allow_list() {
        let (_, app, symlinked) = world();
        let swap = LauncherSwap::new(launcher("2.0.0", r#""0.10""#)).unwrap();
        let old = crate::app::lifecycle_metadata(&app).unwrap();
        let opts = RebaseOptions {
            launcher: Some(&swap),
            ..Default::default()
        };
        let out = rebase(app.clone(), None, &opts).unwrap();
        let (md, index) = crate::app::lifecycle_metadata(&out.image).unwrap();
        assert_eq!(index, old.1);
        assert_eq!(md.launcher.sha, swap.layer.diff_id.as_str());
        assert_eq!(out.image.history(), app.history());
        for (i, (a, b)) in app.layers().iter().zip(out.image.layers()).enumerate() {
            assert_eq!(i == index, a.descriptor != b.descriptor, "layer {i}");
        }
        // Again: unchanged, even with an allow-list that only names the old layer.
        let allow = [Digest::parse(&old.0.launcher.sha).unwrap()];
        let again = RebaseOptions {
            launcher: Some(&swap),
            launcher_must_match: &allow,
            ..Default::default()
        };
        assert!(rebase(out.image, None, &again).unwrap().unchanged);
        let other = [swap.layer.diff_id.clone()];
        let refused = RebaseOptions {
            launcher_must_match: &other,
            ..again.clone()
        };
        let e = rebase(app.clone(), None, &refused).unwrap_err();
        assert!(matches!(e, RebaseError::LauncherNotAllowed(_)), "{e}");
        // A too-narrow launcher is refused; a symlink-mode app cannot take one.
        let narrow = LauncherSwap::new(launcher("3.0.0", r#""0.12""#)).unwrap();
        let opts = RebaseOptions {
            launcher: Some(&narrow),
            ..Default::default()
        };
        let e = rebase(app, None, &opts).unwrap_err();
        assert!(matches!(e, RebaseError::LauncherIncompatible { .. }), "{e}");
        let e = rebase(symlinked, None, &opts).unwrap_err();
        assert!(matches!(e, RebaseError::SymlinkLauncherSwap(_)), "{e}");
    }
}
