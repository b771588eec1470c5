//! Exit codes and `ERROR:` lines of the built binary for bad input (reference §1.14, §2):
//! nothing panics, every failure names what is wrong.

mod common;

use std::os::unix::process::CommandExt;

use common::{display, is_root, run, Fixture};

const B12: &str = r#"[[buildpacks]]
id = "a/b"
api = "0.12"
"#;

fn with_metadata(md: &str) -> Fixture {
    let f = Fixture::new("errors");
    f.file("layers/config/metadata.toml", md);
    f.dir("workspace");
    f
}

/// Every case here runs at the latest Platform API.
fn launch(f: &Fixture, entrypoint: &str, args: &[&str]) -> std::process::Command {
    f.launch(entrypoint, "0.15", args)
}

fn web(command: &str, extra: &str) -> String {
    format!("{B12}[[processes]]\ntype = \"web\"\ncommand = {command}\ndirect = true\nbuildpack-id = \"a/b\"\n{extra}")
}

#[test]
fn platform_api_messages_exit_11() {
    let f = with_metadata(B12);
    for (api, msg) in [
        ("  ", "ERROR: failed to get platform API version; please set 'CNB_PLATFORM_API' to specify the desired platform API version\n"),
        ("bad-api", "ERROR: failed to parse platform API 'bad-api'\n"),
        ("0.6", "ERROR: failed to set platform API: platform API version '0.6' is incompatible with the lifecycle\n"),
        ("0.16", "ERROR: failed to set platform API: platform API version '0.16' is incompatible with the lifecycle\n"),
    ] {
        let out = run(launch(&f, "launcher", &["--", "true"]).env("CNB_PLATFORM_API", api));
        out.assert_code(11);
        assert_eq!(out.text, msg, "exactly one line");
        assert_eq!(out.stdout, msg.as_bytes(), "on stdout, like the reference logger");
    }
}

#[test]
fn platform_api_checked_before_metadata() {
    let f = Fixture::new("errors-order");
    let out = run(launch(&f, "launcher", &["--", "true"]).env("CNB_PLATFORM_API", "0.3"));
    out.assert_code(11);
}

#[test]
fn metadata_missing_or_malformed_exit_1() {
    let f = Fixture::new("errors-md");
    f.dir("workspace");
    let out = run(&mut launch(&f, "launcher", &["--", "true"]));
    out.assert_code(1);
    assert_eq!(
        out.text,
        format!(
            "ERROR: failed to read metadata: open {}: no such file or directory\n",
            display(&f.path("layers/config/metadata.toml"))
        )
    );
    for bad in [
        "[[processes]]\ncommand = 5\n",
        "processes = \"x\"",
        "[[buildpacks]]\napi = 0.9\n",
        "not toml at all",
        "[[processes]\n",
    ] {
        f.file("layers/config/metadata.toml", bad);
        let out = run(&mut launch(&f, "launcher", &["--", "true"]));
        out.assert_code(1)
            .assert_contains("ERROR: failed to read metadata: toml: line ");
        assert_eq!(out.text.lines().count(), 1, "{}", out.text);
    }
    f.file(
        "layers/config/metadata.toml",
        b"[[processes]]\ntype = \"\xff\"\n",
    );
    let out = run(&mut launch(&f, "launcher", &["--", "true"]));
    out.assert_code(1);
    assert_eq!(
        out.text,
        "ERROR: failed to read metadata: toml: line 2: invalid UTF-8 byte: 0xff\n"
    );
    // A command that is neither a string nor an array, in the reference's words.
    f.file(
        "layers/config/metadata.toml",
        "[[processes]]\ntype = \"web\"\ncommand = {a = 1.5}\n",
    );
    let out = run(&mut launch(&f, "launcher", &["--", "true"]));
    out.assert_code(1);
    assert_eq!(
        out.text,
        "ERROR: failed to read metadata: toml: line 3 (last key \"processes.command\"): unknown command type map[string]interface {} with data map[a:1.5]\n"
    );
}

#[test]
fn exec_d_failures_exit_82() {
    let f = with_metadata(&web("[\"true\"]", ""));
    let script = f.exe(
        "layers/a_b/l/exec.d/0-fail",
        "#!/bin/sh\necho 'A = \"x\"' >&3\nexit 3\n",
    );
    run(&mut launch(&f, "web", &[])).assert_code(82).assert_contains(&format!(
        "ERROR: failed to launch: exec.d: failed to execute exec.d file at path '{}': exit status 3\n",
        display(&script)
    ));
    std::fs::remove_file(&script).unwrap();

    let script = f.exe(
        "layers/a_b/l/exec.d/1-garbage",
        "#!/bin/sh\nprintf '\\377 = = garbage' >&3\n",
    );
    run(&mut launch(&f, "web", &[]))
        .assert_code(82)
        .assert_contains(&format!(
        "ERROR: failed to launch: exec.d: failed to decode output from exec.d file at path '{}': ",
        display(&script)
    ));
    f.exe(
        "layers/a_b/l/exec.d/1-garbage",
        "#!/bin/sh\necho 'A = 1' >&3\n",
    );
    run(&mut launch(&f, "web", &[]))
        .assert_code(82)
        .assert_contains("failed to decode output from exec.d file")
        .assert_contains("toml: line 1 (last key \"A\"): incompatible types: TOML value has type int64; destination has type string");
    std::fs::remove_file(&script).unwrap();

    let plain = f.file("layers/a_b/l/exec.d/2-not-executable", "A=1\n");
    let out = run(&mut launch(&f, "web", &[]));
    out.assert_code(82).assert_contains(&format!(
        "ERROR: failed to launch: exec.d: failed to execute exec.d file at path '{0}': fork/exec {0}: permission denied\n",
        display(&plain)
    ));
}

#[test]
fn env_file_values_are_bytes_and_huge_values_fail_cleanly() {
    let f = with_metadata(B12);
    f.file("layers/a_b/l/env/BYTES", b"\xff\xfe raw\n");
    let out = run(&mut launch(&f, "launcher", &["--", "printenv", "BYTES"]));
    out.assert_code(0);
    assert_eq!(out.stdout, b"\xff\xfe raw\n\n");

    // One env string over the kernel's 128 KiB limit: execve fails with E2BIG.
    f.file("layers/a_b/l/env/HUGE", vec![b'x'; 200 * 1024]);
    run(&mut launch(&f, "launcher", &["--", "true"]))
        .assert_code(82)
        .assert_contains("ERROR: failed to launch: direct exec: argument list too long\n");
    std::fs::remove_file(f.path("layers/a_b/l/env/HUGE")).unwrap();

    // A value with a NUL byte cannot be passed to execve.
    f.file("layers/a_b/l/env/NUL", b"a\0b");
    run(&mut launch(&f, "launcher", &["--", "true"]))
        .assert_code(82)
        .assert_contains("ERROR: failed to launch: direct exec: invalid argument\n");
    std::fs::remove_file(f.path("layers/a_b/l/env/NUL")).unwrap();

    // A large (but legal) value goes through untouched.
    f.file("layers/a_b/l/env/BIG", vec![b'y'; 100 * 1024]);
    let out = run(&mut launch(&f, "launcher", &["--", "printenv", "BIG"]));
    out.assert_code(0);
    assert_eq!(out.stdout.len(), 100 * 1024 + 1);
}

#[test]
fn ten_megabyte_env_values_are_handled() {
    const TEN_MB: usize = 10 * 1024 * 1024;
    let f = with_metadata(B12);
    // From an env file: appended, then overridden by a later layer, so the launch works.
    f.file("layers/a_b/l1/env/BIG.append", vec![b'x'; TEN_MB]);
    f.file("layers/a_b/l1/env.launch/BIG.append", vec![b'y'; TEN_MB]);
    f.file("layers/a_b/l2/env/BIG.override", "small");
    let out = run(&mut launch(&f, "launcher", &["--", "printenv", "BIG"]));
    out.assert_code(0);
    assert_eq!(out.stdout, b"small\n");
    // Not overridden: too big for execve, a clean error (direct and shell alike).
    std::fs::remove_file(f.path("layers/a_b/l2/env/BIG.override")).unwrap();
    run(&mut launch(&f, "launcher", &["--", "true"]))
        .assert_code(82)
        .assert_contains("ERROR: failed to launch: direct exec: argument list too long\n");
    run(&mut launch(&f, "launcher", &["true"]))
        .assert_code(82)
        .assert_contains("ERROR: failed to launch: bash exec: argument list too long\n");
    std::fs::remove_dir_all(f.path("layers/a_b/l1")).unwrap();

    // From exec.d output: 10 MB read from fd 3 and decoded into the env, which the
    // next exec.d (and then the process) cannot be started with.
    f.exe(
        "layers/a_b/l2/exec.d/0-big",
        "#!/bin/sh\n{ printf 'BIG = \"'; head -c 10485760 /dev/zero | tr '\\0' z; printf '\"\\n'; } >&3\n",
    );
    let next = f.exe("layers/a_b/l2/exec.d/1-next", "#!/bin/sh\n");
    run(&mut launch(&f, "launcher", &["--", "true"]))
        .assert_code(82)
        .assert_contains(&format!(
            "ERROR: failed to launch: exec.d: failed to execute exec.d file at path '{0}': fork/exec {0}: argument list too long\n",
            display(&next)
        ));
    std::fs::remove_file(&next).unwrap();
    run(&mut launch(&f, "launcher", &["--", "true"]))
        .assert_code(82)
        .assert_contains("ERROR: failed to launch: direct exec: argument list too long\n");
}

#[test]
fn dangling_env_symlink_and_file_in_place_of_dir() {
    let f = with_metadata(B12);
    f.dir("layers/a_b/l/env");
    std::os::unix::fs::symlink("/nonexistent", f.path("layers/a_b/l/env/DANGLING")).unwrap();
    run(&mut launch(&f, "launcher", &["--", "true"])).assert_code(82).assert_contains(&format!(
        "ERROR: failed to launch: modify env: add layer env: apply env files from dir '{0}': stat {0}/DANGLING: no such file or directory\n",
        display(&f.path("layers/a_b/l/env"))
    ));
    std::fs::remove_file(f.path("layers/a_b/l/env/DANGLING")).unwrap();
    f.file("layers/a_b/l/env.launch", "a file");
    run(&mut launch(&f, "launcher", &["--", "true"]))
        .assert_code(82)
        .assert_contains(
            "ERROR: failed to launch: modify env: add layer env: apply env files from dir '",
        )
        .assert_contains("env.launch': open ");
}

/// Runs the launcher as `nobody` when root, so that mode 000 really denies access.
fn unprivileged(cmd: &mut std::process::Command) -> &mut std::process::Command {
    if is_root() {
        cmd.uid(65534).gid(65534);
    }
    cmd
}

#[test]
fn unreadable_directories() {
    use std::os::unix::fs::PermissionsExt;
    let f = with_metadata(B12);
    f.file("layers/a_b/l/env/A", "1");
    f.dir("layers/a_b/l/exec.d");
    // Each directory in turn is made unreadable; `{0}` in the message is its path.
    for (dir, message) in [
        ("layers/a_b/l/env", "modify env: add layer env: apply env files from dir '{0}': open {0}: permission denied"),
        ("layers/a_b", "modify env: add layer root: failed to list files in dir '{0}': open {0}: permission denied"),
        ("layers/a_b/l/exec.d", "exec.d: failed to list files in dir '{0}': open {0}: permission denied"),
    ] {
        let dir = f.path(dir);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o000)).unwrap();
        let out = run(unprivileged(&mut launch(&f, "launcher", &["--", "true"])));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        out.assert_code(82).assert_contains(&format!(
            "ERROR: failed to launch: {}\n",
            message.replace("{0}", &display(&dir))
        ));
    }
    run(unprivileged(&mut launch(&f, "launcher", &["--", "true"]))).assert_code(0);
}

#[test]
fn colour_unless_no_color() {
    // CNB_NO_COLOR is parsed with Go's strconv.ParseBool; unparsable means false.
    let f = with_metadata(B12);
    let plain = "ERROR: failed to launch: determine start command";
    let coloured = "\x1b[31;1mERROR: \x1b[0mfailed to launch: determine start command";
    let out = run(launch(&f, "launcher", &[]).env_remove("CNB_NO_COLOR"));
    out.assert_code(82).assert_contains(coloured);
    for (value, want) in [
        ("1", plain),
        ("t", plain),
        ("T", plain),
        ("TRUE", plain),
        ("True", plain),
        ("true", plain),
        ("0", coloured),
        ("false", coloured),
        ("yes", coloured),
        ("tRuE", coloured),
        ("", coloured),
    ] {
        let out = run(launch(&f, "launcher", &[]).env("CNB_NO_COLOR", value));
        out.assert_code(82);
        assert!(
            out.text.starts_with(want),
            "CNB_NO_COLOR={value:?}: {:?}",
            out.text
        );
    }
}

#[test]
fn deprecation_mode_error_with_supported_apis_launches() {
    // Nothing is deprecated today: every mode (and junk) launches normally.
    let f = with_metadata(B12);
    for mode in ["error", "quiet", "warn", "junk"] {
        let out =
            run(launch(&f, "launcher", &["--", "echo", "ok"]).env("CNB_DEPRECATION_MODE", mode));
        out.assert_code(0);
        assert_eq!(out.text, "ok\n", "{mode}");
    }
}

#[test]
fn shell_process_errors_exit_82() {
    let f = with_metadata(&format!(
        "{B12}[[processes]]\ntype = \"web\"\ncommand = \"echo\"\nargs = [\"hi\"]\ndirect = false\nbuildpack-id = \"gone\"\n"
    ));
    run(&mut launch(&f, "web", &[]))
        .assert_code(82)
        .assert_contains(
            "ERROR: failed to launch: process type 'web' provided by unknown buildpack 'gone'\n",
        );

    let f = with_metadata(B12);
    let profile = f.path("workspace/.profile");
    std::os::unix::fs::symlink(".profile", &profile).unwrap();
    run(&mut launch(&f, "launcher", &["echo", "hi"]))
        .assert_code(82)
        .assert_contains(&format!(
            "ERROR: failed to launch: find profiles: failed to determine if app profile script exists at path '{0}': stat {0}: too many levels of symbolic links\n",
            display(&profile)
        ));
}
