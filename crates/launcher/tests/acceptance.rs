//! The reference lifecycle's launcher acceptance fixture (catalogue §1.11) and cases
//! A-1 … A-25 (§1.12, §1.13), run against the built binary. The fixture's `/layers`,
//! `/workspace`, `/other-app`, `/other-layers` live in a temp dir instead.

mod common;

use common::{run, Fixture, Run};

const LATEST: &str = "0.15";

const METADATA: &str = r#"[[buildpacks]]
  id = "0.9/buildpack"
  version = "0.0.1"
  api = "0.9"

[[buildpacks]]
  id = "0.8/buildpack"
  version = "0.0.1"
  api = "0.8"

[[buildpacks]]
  id = "0.7/buildpack"
  version = "0.0.1"
  api = "0.7"

[[processes]]
  type = "web"
  command = "echo"
  args = ["Executing web process-type"]
  direct = false
  buildpack-id = "0.8/buildpack"

[[processes]]
  type = "direct-process"
  command = "echo"
  args = ["Executing direct-process process-type"]
  direct = true
  buildpack-id = "0.8/buildpack"

[[processes]]
  type = "indirect-process-with-args"
  command = "printf"
  args = ["'%s' '%s'", "$VAR1", "$VAR2"]
  direct = false
  buildpack-id = "0.8/buildpack"

[[processes]]
  type = "legacy-indirect-process-with-args"
  command = "printf \"'%s' '%s'\" \"$0\" \"$1\""
  args = ["arg", "arg with spaces"]
  direct = false
  buildpack-id = "0.7/buildpack"

[[processes]]
  type = "legacy-indirect-process-with-incorrect-args"
  command = "printf"
  args = ["'%s' '%s'", "arg", "arg with spaces"]
  direct = false
  buildpack-id = "0.7/buildpack"

[[processes]]
  type = "indirect-process-with-script"
  command = "printf \"'%s' '%s'\" \"$VAR1\" \"$VAR2\""
  direct = false
  buildpack-id = "0.8/buildpack"

[[processes]]
  type = "profile-checker"
  command = "echo"
  args = ["$VAR_FROM_PROFILE"]
  direct = false
  buildpack-id = "0.8/buildpack"

[[processes]]
  type = "exec.d-checker"
  command = "printf"
  args = ['VAR_FROM_EXEC_D: "%s"', "$VAR_FROM_EXEC_D"]
  direct = false
  buildpack-id = "0.9/buildpack"

[[processes]]
  type = "worker"
  command = "echo"
  args = ["$WORKER_VAR"]
  direct = false
  buildpack-id = "0.8/buildpack"

[[processes]]
  type = "process.with.period"
  command = "echo"
  args = ["Executing process.with.period process-type"]
  direct = false
  buildpack-id = "0.8/buildpack"
"#;

const OTHER_METADATA: &str = r#"[[buildpacks]]
  id = "some-buildpack"
  api = "0.9"

[[processes]]
  type = "web"
  command = "echo \"Executing other-layers web process-type\""
  direct = false
  buildpack-id = "some-buildpack"
"#;

/// The reference's Go exec.d helper, as the equivalent /bin/sh script from the catalogue.
const EXECD_HELPER: &str = r#"#!/bin/sh
echo "$0 was executed"
echo "Exec.d Working Dir: $(pwd)"
p=$(basename "$(dirname "$0")")
v=val-from-exec.d
[ "$p" != exec.d ] && v="val-from-exec.d-for-process-type-$p"
[ -n "$VAR_FROM_EXEC_D" ] && v="$VAR_FROM_EXEC_D:$v"
printf 'VAR_FROM_EXEC_D = "%s"' "$v" >&3
"#;

fn fixture() -> Fixture {
    let f = Fixture::new("acceptance");
    for t in [
        "direct-process",
        "indirect-process-with-args",
        "indirect-process-with-script",
        "legacy-indirect-process-with-args",
        "legacy-indirect-process-with-incorrect-args",
        "process.with.period",
        "profile-checker",
        "web",
        "worker",
        "exec.d-checker",
    ] {
        f.process_link(t);
    }
    let l8 = "layers/0.8_buildpack/some_layer";
    f.exe(
        &format!("{l8}/bin/bp-executable"),
        "#!/usr/bin/env bash\n\necho \"bp executable\"\n",
    );
    f.file(&format!("{l8}/env.launch/OTHER_VAR.append"), "other-bp-val");
    f.file(&format!("{l8}/env.launch/OTHER_VAR.delim"), "**");
    f.file(
        &format!("{l8}/env.launch/worker/WORKER_VAR"),
        "worker-process-val\n",
    );
    f.file(&format!("{l8}/env/SOME_VAR"), "some-bp-val");
    f.file(&format!("{l8}/env/WORKER_VAR"), "worker-no-process-val\n");
    f.file(
        &format!("{l8}/profile.d/0_bp_profile.sh"),
        "echo \"sourced bp profile\"\n",
    );
    f.file(
        &format!("{l8}/profile.d/profile-checker/0_bp_profile_checker.sh"),
        "echo \"sourced bp profile-checker profile\"\n",
    );
    let l9 = "layers/0.9_buildpack/some_layer";
    f.exe(&format!("{l9}/exec.d/helper"), EXECD_HELPER);
    f.exe(&format!("{l9}/exec.d/exec.d-checker/helper"), EXECD_HELPER);
    f.file("layers/config/metadata.toml", METADATA);
    f.file("other-app/.profile", "echo \"sourced other app profile\"\n");
    f.file("other-layers/config/metadata.toml", OTHER_METADATA);
    f.file(
        "workspace/.profile",
        "export VAR_FROM_PROFILE=val-from-profile\n\necho \"sourced app profile\"\n",
    );
    f
}

/// Every launch in this image first runs the generic exec.d helper.
fn execd_prefix(f: &Fixture) -> String {
    format!(
        "{}/layers/0.9_buildpack/some_layer/exec.d/helper was executed\nExec.d Working Dir: {}\n",
        f.root.display(),
        f.path("workspace").display()
    )
}

/// Launches `entrypoint` at the latest Platform API with `args`; asserts the exit code and
/// that the output contains `want`.
fn expect(f: &Fixture, entrypoint: &str, args: &[&str], code: i32, want: &str) -> Run {
    let out = run(&mut f.launch(entrypoint, LATEST, args));
    out.assert_code(code).assert_contains(want);
    out
}

#[test]
fn a01_exec_d_order_env_and_working_dir() {
    let f = fixture();
    let out = run(f
        .launch("exec.d-checker", "0.7", &[])
        .env("VAR_FROM_EXEC_D", "orig-val"));
    out.assert_code(0).assert_contains(&format!(
        "{}{}/layers/0.9_buildpack/some_layer/exec.d/exec.d-checker/helper was executed\nExec.d Working Dir: {}\nsourced bp profile\nsourced app profile\nVAR_FROM_EXEC_D: orig-val:val-from-exec.d:val-from-exec.d-for-process-type-exec.d-checker",
        execd_prefix(&f),
        f.root.display(),
        f.path("workspace").display()
    ));
}

#[test]
fn a02_a03_a04_process_types_and_appended_args() {
    let f = fixture();
    expect(&f, "web", &[], 0, "Executing web process-type").assert_contains(&execd_prefix(&f));
    expect(
        &f,
        "process.with.period",
        &[],
        0,
        "Executing process.with.period process-type",
    );
    expect(
        &f,
        "web",
        &["with user provided args"],
        0,
        "Executing web process-type with user provided args",
    );
}

#[test]
fn a05_a12_direct_user_command_sees_buildpack_env() {
    let f = fixture();
    let out = run(&mut f.launch("launcher", LATEST, &["--", "env"]));
    out.assert_code(0)
        .assert_contains("SOME_VAR=some-bp-val")
        .assert_contains("OTHER_VAR=other-bp-val");
    let path_line = out.text.lines().find(|l| l.starts_with("PATH=")).unwrap();
    assert_eq!(
        path_line,
        format!(
            "PATH={}/layers/0.8_buildpack/some_layer/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            f.root.display()
        ),
        "layer bin first, /cnb dirs removed"
    );
    assert!(!out.text.contains("CNB_LAYERS_DIR"), "{}", out.text);
    assert!(!out.text.contains("CNB_PLATFORM_API"), "{}", out.text);
    assert!(out.text.contains("CNB_NO_COLOR=true"), "passed through");
    assert!(!out.text.contains("sourced"), "direct: no profiles");
}

#[test]
fn a06_cnb_process_type_warnings() {
    let f = fixture();
    let out = run(f
        .launch("launcher", LATEST, &[])
        .env("CNB_PROCESS_TYPE", "direct-process"));
    out.assert_code(82).assert_contains(
        "Warning: CNB_PROCESS_TYPE is not supported in Platform API 0.15\nWarning: Run with ENTRYPOINT 'direct-process' to invoke the 'direct-process' process type\nERROR: failed to launch: determine start command: when there is no default process a command is required\n",
    );
    // The API is printed normalised (`major.minor`), and the warnings never select.
    let out = run(f
        .launch("web", "v0.9", &[])
        .env("CNB_PROCESS_TYPE", "direct-process"));
    out.assert_code(0)
        .assert_contains("Warning: CNB_PROCESS_TYPE is not supported in Platform API 0.9\nWarning: Run with ENTRYPOINT 'direct-process' to invoke the 'direct-process' process type\n")
        .assert_contains("Executing web process-type");
}

#[test]
fn a07_a08_a09_a10_shell_user_commands() {
    let f = fixture();
    expect(
        &f,
        "launcher",
        &["echo", "something"],
        0,
        "sourced bp profile\nsourced app profile\nsomething",
    );
    expect(
        &f,
        "launcher",
        &["echo", "$SOME_VAR", "$OTHER_VAR", "$WORKER_VAR"],
        0,
        "sourced bp profile\nsourced app profile\nsome-bp-val other-bp-val worker-no-process-val",
    );
    run(f
        .launch(
            "launcher",
            LATEST,
            &["echo", "$SOME_USER_VAR, $CNB_APP_DIR, $OTHER_VAR"],
        )
        .env("SOME_USER_VAR", "some-user-val")
        .env("OTHER_VAR", "other-user-val"))
    .assert_code(0)
    .assert_contains(
        "sourced bp profile\nsourced app profile\nsome-user-val, , other-user-val**other-bp-val",
    );
    expect(&f, "launcher", &["bp-executable"], 0, "bp executable");
}

#[test]
fn a11_a13_a14_direct_user_commands() {
    let f = fixture();
    let out = expect(&f, "launcher", &["--", "echo", "something"], 0, "something");
    assert!(!out.text.contains("sourced"));
    let out = run(f
        .launch("launcher", LATEST, &["--", "env"])
        .env("SOME_USER_VAR", "some-user-val"));
    out.assert_code(0)
        .assert_contains("SOME_USER_VAR=some-user-val");
    assert!(!out.text.contains("CNB_APP_DIR"), "{}", out.text);
    expect(&f, "launcher", &["--", "bp-executable"], 0, "bp executable");
}

#[test]
fn a15_a16_direct_process_and_typed_env() {
    let f = fixture();
    let out = expect(
        &f,
        "direct-process",
        &[],
        0,
        "Executing direct-process process-type",
    );
    assert!(!out.text.contains("sourced"));
    expect(
        &f,
        "worker",
        &[],
        0,
        "sourced bp profile\nsourced app profile\nworker-process-val",
    );
}

#[test]
fn a17_a18_script_and_token_modes() {
    let f = fixture();
    for t in ["indirect-process-with-script", "indirect-process-with-args"] {
        run(f
            .launch(t, LATEST, &[])
            .env("VAR1", "val1")
            .env("VAR2", "val with space"))
        .assert_code(0)
        .assert_contains("'val1' 'val with space'");
    }
}

#[test]
fn a19_typed_profiles() {
    let f = fixture();
    expect(&f, "profile-checker", &[], 0, "sourced bp profile\nsourced bp profile-checker profile\nsourced app profile\nval-from-profile");
}

#[test]
fn a20_other_app_and_layers_dirs() {
    let f = fixture();
    let mut cmd = f.command("web", "other-layers", "other-app");
    cmd.env("CNB_PLATFORM_API", LATEST);
    let out = run(&mut cmd);
    out.assert_code(0)
        .assert_contains("sourced other app profile\nExecuting other-layers web process-type");
    assert!(
        !out.text.contains("was executed"),
        "no exec.d: bp dir absent"
    );
}

#[test]
fn a21_a22_legacy_processes() {
    let f = fixture();
    expect(
        &f,
        "legacy-indirect-process-with-incorrect-args",
        &[],
        0,
        "'arg' 'arg with spaces'",
    );
    expect(
        &f,
        "legacy-indirect-process-with-args",
        &[],
        127,
        "command not found",
    );
}

#[test]
fn a23_no_default_process_and_no_command() {
    let f = fixture();
    expect(&f, "launcher", &[], 82, "ERROR: failed to launch: determine start command: when there is no default process a command is required");
}

#[test]
fn a24_buildpack_0_9_user_args_replace() {
    let f = fixture();
    let out = run(&mut f.launch("exec.d-checker", LATEST, &["x"]));
    out.assert_code(0);
    assert!(out.text.ends_with('x'), "{}", out.text);
}

#[test]
fn a25_platform_api_required() {
    let f = fixture();
    let mut cmd = f.command("web", "layers", "workspace");
    run(&mut cmd)
        .assert_code(11)
        .assert_contains("ERROR: failed to get platform API version; please set 'CNB_PLATFORM_API' to specify the desired platform API version");
}
