//! Launch semantics of the built binary beyond the acceptance fixture: env ordering and
//! precedence across buildpacks and layers (§6 items 2–5), argument rules per Platform
//! API, direct-exec details.

mod common;

use std::ffi::OsStr;
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;

use common::{run, Fixture};

fn two_buildpacks() -> Fixture {
    let f = Fixture::new("behaviour");
    f.dir("workspace");
    f.file(
        "layers/config/metadata.toml",
        r#"[[buildpacks]]
id = "first/bp"
api = "0.12"
[[buildpacks]]
id = "second/bp"
api = "0.8"
[[processes]]
type = "typed"
command = ["printenv"]
direct = true
buildpack-id = "first/bp"
"#,
    );
    for (layer, tag) in [
        ("first_bp/l1", "f1"),
        ("first_bp/l2", "f2"),
        ("second_bp/l1", "s1"),
    ] {
        f.dir(&format!("layers/{layer}/bin"));
        f.dir(&format!("layers/{layer}/lib"));
        f.file(&format!("layers/{layer}/env/PRE.prepend"), tag);
        f.file(&format!("layers/{layer}/env/PRE.delim"), ":");
        f.file(&format!("layers/{layer}/env/APP.append"), tag);
        f.file(&format!("layers/{layer}/env/APP.delim"), ",");
        f.file(&format!("layers/{layer}/env/DEF.default"), tag);
        f.file(&format!("layers/{layer}/env/OVR.override"), tag);
    }
    // Within one layer: env, env.launch, env.launch/<type>.
    let l = "layers/second_bp/l1";
    f.file(&format!("{l}/env.launch/OVR"), "s1-launch");
    f.file(&format!("{l}/env.launch/typed/OVR"), "s1-typed");
    f.file(&format!("{l}/env.launch/PRE.prepend"), "s1-launch");
    f.file(&format!("{l}/env.launch/typed/PRE.prepend"), "s1-typed");
    f.file(&format!("{l}/env.launch/DEF.default"), "s1-launch");
    f.file(&format!("{l}/env.build/OVR"), "never-at-launch");
    // A symlink to a layer dir is not a layer.
    std::os::unix::fs::symlink(
        f.path("layers/first_bp/l1"),
        f.path("layers/first_bp/l0-link"),
    )
    .unwrap();
    f
}

fn env_map(out: &[u8]) -> std::collections::BTreeMap<String, String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn env_order_across_buildpacks_and_layers() {
    let f = two_buildpacks();
    let out = run(f
        .launch("launcher", "0.15", &["--", "env"])
        .env("PRE", "orig")
        .env("APP", "orig")
        .env("LD_LIBRARY_PATH", "/orig-lib"));
    out.assert_code(0);
    let env = env_map(&out.stdout);
    let l = |p: &str| format!("{}/layers/{p}", f.root.display());
    // Later buildpacks first; within a buildpack layers end up descending (G-3).
    assert_eq!(
        env["PATH"],
        format!(
            "{}:{}:{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            l("second_bp/l1/bin"),
            l("first_bp/l2/bin"),
            l("first_bp/l1/bin")
        )
    );
    assert_eq!(
        env["LD_LIBRARY_PATH"],
        format!(
            "{}:{}:{}:/orig-lib",
            l("second_bp/l1/lib"),
            l("first_bp/l2/lib"),
            l("first_bp/l1/lib")
        )
    );
    // `.delim` applies only within its own directory: env.launch/ has none here.
    assert_eq!(
        env["PRE"], "s1-launchs1:f2:f1:orig",
        "untyped: no env.launch/<type>"
    );
    assert_eq!(env["APP"], "orig,f1,f2,s1");
    assert_eq!(env["DEF"], "f1", "earliest default wins");
    assert_eq!(
        env["OVR"], "s1-launch",
        "env.launch overrides env; env.build never applies"
    );
}

#[test]
fn typed_process_gets_env_launch_type_dir() {
    let f = two_buildpacks();
    let out = run(&mut f.launch("typed", "0.15", &[]));
    out.assert_code(0);
    let env = env_map(&out.stdout);
    assert_eq!(env["OVR"], "s1-typed");
    assert_eq!(env["PRE"], "s1-typeds1-launchs1:f2:f1");
    assert_eq!(env["DEF"], "f1");
}

#[test]
fn direct_exec_details() {
    let f = two_buildpacks();
    // argv[0] is the command as written; SIGPIPE is back at its default.
    let out = run(&mut f.launch(
        "launcher",
        "0.15",
        &[
            "--",
            "sh",
            "-c",
            "echo \"$0\"; grep SigIgn /proc/self/status; pwd",
        ],
    ));
    out.assert_code(0)
        .assert_contains("sh\nSigIgn:\t")
        .assert_contains(&format!("{}\n", f.path("workspace").display()));
    let ignored = out
        .text
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:\t"))
        .unwrap();
    let mask = u64::from_str_radix(ignored, 16).unwrap();
    assert_eq!(
        mask & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE ignored in the process"
    );
    // User args need not be UTF-8.
    let out = run(f
        .launch("launcher", "0.15", &["--", "printf", "%s"])
        .arg(OsStr::from_bytes(b"\xff-arg")));
    out.assert_code(0);
    assert_eq!(out.stdout, b"\xff-arg");
    // CNB_EXEC_ENV is passed through; the launcher's own CNB_* are not.
    let out = run(f
        .launch("launcher", "0.15", &["--", "env"])
        .env("CNB_EXEC_ENV", "test")
        .env("CNB_DEPRECATION_MODE", "quiet")
        .env("CNB_PROCESS_TYPE", ""));
    let env = env_map(&out.stdout);
    assert_eq!(env.get("CNB_EXEC_ENV").map(String::as_str), Some("test"));
    for k in [
        "CNB_DEPRECATION_MODE",
        "CNB_PROCESS_TYPE",
        "CNB_APP_DIR",
        "CNB_LAYERS_DIR",
        "CNB_PLATFORM_API",
    ] {
        assert!(!env.contains_key(k), "{k} leaked");
    }
}

#[test]
fn exec_d_sees_the_launch_env_only() {
    let f = two_buildpacks();
    f.exe(
        "layers/first_bp/l1/exec.d/probe",
        "#!/bin/sh\nprintf 'SEEN = \"%s|%s|%s\"\\n' \"${CNB_APP_DIR:-none}\" \"$OVR\" \"${FROM_PARENT:-none}\" >&3\n",
    );
    let out = run(f
        .launch("launcher", "0.15", &["--", "printenv", "SEEN"])
        .env("FROM_PARENT", "kept"));
    // No CNB_APP_DIR; env files of every layer already applied; user env passed on.
    out.assert_code(0).assert_stdout("none|s1-launch|kept\n");
}

#[test]
fn exec_d_reads_dev_null_not_the_apps_stdin() {
    // Issue 11 item 1: `printf 'one\ntwo\n' | launcher -- cat` with an exec.d that reads
    // a line must leave both lines to the app, as the reference does.
    use std::io::Write;
    let f = two_buildpacks();
    f.exe(
        "layers/first_bp/l1/exec.d/reader",
        "#!/bin/sh\nif read -r l; then printf 'GOT = \"%s\"\\n' \"$l\" >&3; fi\n",
    );
    let mut child = f
        .launch(
            "launcher",
            "0.15",
            &["--", "sh", "-c", "cat; echo \"GOT=${GOT:-none}\""],
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\nGOT=none\n");
}

#[test]
fn directories_are_listed_when_the_reference_reaches_them() {
    // Issue 11 item 6: side effects and errors in the reference's order.
    let setup = || {
        let f = Fixture::new("order");
        f.dir("workspace");
        f.file(
            "layers/config/metadata.toml",
            "[[buildpacks]]\nid = \"a\"\napi = \"0.12\"\n[[buildpacks]]\nid = \"b\"\napi = \"0.12\"\n",
        );
        f
    };
    let root = |f: &Fixture| f.root.display().to_string();

    // An earlier layer's exec.d runs (and prints) before a later layer's exec.d is listed.
    let f = setup();
    f.exe("layers/a/l/exec.d/hello", "#!/bin/sh\necho ran\n");
    f.file("layers/b/l/exec.d", "not a directory");
    let out = run(&mut f.launch("launcher", "0.15", &["--", "true"]));
    out.assert_code(82).assert_stdout(&format!(
        "ran\nERROR: failed to launch: exec.d: failed to list files in dir '{0}/layers/b/l/exec.d': open {0}/layers/b/l/exec.d: not a directory\n",
        root(&f)
    ));

    // Buildpack a's env error comes before buildpack b's directory being a file.
    let f = setup();
    std::os::unix::fs::symlink("nowhere", f.dir("layers/a/l/env").join("DANGLING")).unwrap();
    f.file("layers/b", "not a directory");
    let out = run(&mut f.launch("launcher", "0.15", &["--", "true"]));
    out.assert_code(82).assert_stdout(&format!(
        "ERROR: failed to launch: modify env: add layer env: apply env files from dir '{0}/layers/a/l/env': stat {0}/layers/a/l/env/DANGLING: no such file or directory\n",
        root(&f)
    ));

    // A profile.d that an exec.d program created (in a new layer) is sourced.
    let f = setup();
    f.exe(
        "layers/a/l/exec.d/make-profile",
        "#!/bin/sh\nmkdir -p ../layers/b/new/profile.d && echo 'echo sourced' > ../layers/b/new/profile.d/p\n",
    );
    let out = run(&mut f.launch("launcher", "0.15", &["echo", "app"]));
    out.assert_code(0).assert_stdout("sourced\napp\n");
}

#[test]
fn inherited_signal_state_is_left_as_the_go_runtime_leaves_it() {
    // Found by the differential fuzzer: the reference's runtime resets inherited ignored
    // signals (but SIGHUP, SIGINT, the job-control four, 32 and 34) and unblocks the ones
    // it needs; the app and exec.d programs see that state.
    use std::os::unix::process::CommandExt;
    let f = two_buildpacks();
    let mut cmd = f.launch(
        "launcher",
        "0.15",
        &["--", "grep", "^Sig[BI]", "/proc/self/status"],
    );
    // SAFETY: only raw syscalls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // A defined start whatever the test runner inherited, then the test's state.
            common::signals::set_signal_state(
                &[1, 3, 10, 13, 18, 32, 33, 34, 40],
                &[2, 5, 10, 15, 23, 34, 40],
            );
            Ok(())
        });
    }
    let out = run(&mut cmd);
    // Kept ignored: 1, 18, 32, 34. Kept blocked: 10, 40.
    out.assert_code(0)
        .assert_stdout("SigBlk:\t0000008000000200\nSigIgn:\t0000000280020001\n");
}

#[test]
fn writing_to_a_closed_stdout_ends_by_sigpipe_like_the_reference() {
    // The reference's Go runtime dies of SIGPIPE when its `ERROR:` line hits a closed pipe;
    // with the signal state reset at start-up ours does too (it used to exit 11).
    use std::os::unix::process::ExitStatusExt;
    let f = two_buildpacks();
    let mut fds = [0; 2];
    // SAFETY: a valid two-element array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors are ours; the read end is closed so writes raise SIGPIPE.
    let write_end = unsafe {
        libc::close(fds[0]);
        std::os::fd::OwnedFd::from_raw_fd(fds[1])
    };
    let status = f
        .launch("launcher", "bad-api", &["--", "true"])
        .stdout(write_end)
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?}");
}

fn args_fixture(command: &str, bp_api: &str) -> Fixture {
    let f = Fixture::new("args");
    f.dir("workspace/sub");
    f.file(
        "layers/config/metadata.toml",
        format!(
            r#"[[buildpacks]]
id = "bp"
api = "{bp_api}"
[[processes]]
type = "web"
command = {command}
args = ["default-arg"]
direct = true
buildpack-id = "bp"
working-dir = "sub"
"#
        ),
    );
    f
}

#[test]
fn argument_rules_by_platform_and_buildpack_api() {
    let always = r#"["echo", "always"]"#;
    // (command, buildpack API, platform API, user args, output)
    let cases: [(&str, &str, &str, &[&str], &str); 7] = [
        (always, "0.12", "0.15", &[], "always default-arg\n"),
        (always, "0.12", "0.15", &["user"], "always user\n"),
        // Platform < 0.10: command left as written, user args appended.
        (
            always,
            "0.12",
            "0.9",
            &["user"],
            "always default-arg user\n",
        ),
        (always, "0.12", "0.7", &[], "always default-arg\n"),
        // One command entry: B >= 0.9 replaces the args, B < 0.9 appends.
        ("\"echo\"", "0.12", "0.15", &["user"], "user\n"),
        ("[\"echo\"]", "0.8", "0.15", &["user"], "default-arg user\n"),
        ("[\"echo\"]", "0.8", "0.15", &[], "default-arg\n"),
    ];
    for (command, bp_api, platform, args, want) in cases {
        let f = args_fixture(command, bp_api);
        run(&mut f.launch("web", platform, args))
            .assert_code(0)
            .assert_stdout(want);
    }
    // working-dir is relative to <app>.
    let f = args_fixture("[\"pwd\"]", "0.12");
    run(&mut f.launch("web", "0.15", &[]))
        .assert_stdout(&format!("{}\n", f.path("workspace/sub").display()));
}

#[test]
fn shell_process_caller_and_dash_dash_alone() {
    let f = Fixture::new("shell");
    f.dir("workspace");
    f.file(
        "layers/config/metadata.toml",
        "[[buildpacks]]\nid = \"bp\"\napi = \"0.8\"\n",
    );
    f.file("layers/bp/l/profile.d/argv0", "echo \"profile \\$0: $0\"\n");
    let launcher = f.path("cnb/lifecycle/launcher");
    let out = run(&mut f.launch("launcher", "0.15", &["echo", "hi"]));
    out.assert_code(0)
        .assert_contains(&format!("profile $0: {}\nhi\n", launcher.display()));
    // `--` alone is a shell command named `--` (G-11): in script mode it becomes
    // `bash -c --`, which bash rejects (exit 2) after the profiles ran.
    let out = run(&mut f.launch("launcher", "0.15", &["--"]));
    out.assert_code(2)
        .assert_contains(&format!(
            "profile $0: {}
",
            launcher.display()
        ))
        .assert_contains("bash: -c: option requires an argument");
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// examples/sample-app (used by scripts/demo-launcher.sh) launches as documented.
#[test]
fn sample_app_web_process() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new("sample");
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sample-app");
    copy_tree(&sample, &f.root);
    for script in ["bin/hello-server", "exec.d/build-info"] {
        let p = f.path(&format!("layers/examples_hello/runtime/{script}"));
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = run(&mut f.launch("web", "0.15", &[]));
    out.assert_code(0)
        .assert_contains("exec.d build-info: computing BUILD_INFO\n")
        .assert_contains("/layers/examples_hello/runtime/bin/hello-server --listen 0.0.0.0:8080\n")
        .assert_contains("GREETING:      Hello, world\n")
        .assert_contains("APP_ENV:       production\n")
        .assert_contains("PORT:          8080\n")
        .assert_contains("BUILD_INFO:    production on Linux\n")
        .assert_contains("CNB_APP_DIR:   <removed by the launcher>\n");
    let out = run(f.launch("worker", "0.15", &[]).env("CNB_EXEC_ENV", "test"));
    out.assert_code(82)
        .assert_contains("process type worker was not found");
    let out = run(&mut f.launch("worker", "0.15", &[]));
    out.assert_code(0).assert_contains(&format!(
        "working dir:   {}\n",
        f.path("workspace/jobs").display()
    ));
}

/// One buildpack `bp` (API 0.12) with `processes`, an empty `<app>` and no layers.
fn processes_fixture(processes: &str) -> Fixture {
    let f = Fixture::new("procs");
    f.dir("workspace");
    f.file(
        "layers/config/metadata.toml",
        format!("[[buildpacks]]\nid = \"bp\"\napi = \"0.12\"\n{processes}"),
    );
    f
}

#[test]
fn process_type_named_launcher_is_not_rejected() {
    // G-8: RFC 0045 forbids the type, the reference does not enforce it, so
    // `/cnb/lifecycle/launcher` itself selects it.
    let f = processes_fixture(
        "[[processes]]\ntype = \"launcher\"\ncommand = [\"echo\", \"the launcher process\"]\ndirect = true\nbuildpack-id = \"bp\"\n",
    );
    run(&mut f.launch("launcher", "0.15", &[]))
        .assert_code(0)
        .assert_stdout("the launcher process\n");
    // User args are the process's args, `--` included.
    run(&mut f.launch("launcher", "0.15", &["--", "echo", "user"]))
        .assert_stdout("the launcher process -- echo user\n");
}

#[test]
fn argv0_basename_through_a_chain_of_symlinks() {
    // L-10: the basename of argv[0] counts, not the link target nor /proc/self/exe.
    let f = processes_fixture(
        "[[processes]]\ntype = \"web\"\ncommand = [\"echo\", \"web\"]\ndirect = true\nbuildpack-id = \"bp\"\n[[processes]]\ntype = \"worker\"\ncommand = [\"echo\", \"worker\"]\ndirect = true\nbuildpack-id = \"bp\"\n",
    );
    f.process_link("web");
    f.dir("aliases/deeper");
    std::os::unix::fs::symlink("../cnb/process/web", f.path("aliases/web")).unwrap();
    std::os::unix::fs::symlink("../web", f.path("aliases/deeper/web")).unwrap();
    std::os::unix::fs::symlink("../web", f.path("aliases/deeper/worker")).unwrap();
    for (link, want) in [
        ("aliases/deeper/web", "web\n"),
        ("aliases/deeper/worker", "worker\n"),
    ] {
        let mut cmd = f.command_at(&f.path(link), "layers", "workspace");
        run(cmd.env("CNB_PLATFORM_API", "0.15"))
            .assert_code(0)
            .assert_stdout(want);
    }
}

#[test]
fn working_dir_relative_absolute_and_for_shell_processes() {
    // L-28: relative to <app>; absolute as is; shell processes `cd` after the profiles.
    let f = Fixture::new("wd");
    f.dir("workspace/sub");
    let abs = f.dir("elsewhere");
    f.file(
        "layers/config/metadata.toml",
        format!(
            r#"[[buildpacks]]
id = "bp"
api = "0.8"
[[processes]]
type = "rel"
command = ["pwd"]
direct = true
buildpack-id = "bp"
working-dir = "sub"
[[processes]]
type = "abs"
command = ["pwd"]
direct = true
buildpack-id = "bp"
working-dir = "{}"
[[processes]]
type = "shell"
command = "pwd"
direct = false
buildpack-id = "bp"
working-dir = "sub"
"#,
            abs.display()
        ),
    );
    f.file("workspace/.profile", "echo \"profile in $(pwd)\"\n");
    let ws = f.path("workspace");
    for (t, want) in [
        ("rel", format!("{}/sub\n", ws.display())),
        ("abs", format!("{}\n", abs.display())),
        ("shell", format!("profile in {0}\n{0}/sub\n", ws.display())),
    ] {
        run(&mut f.launch(t, "0.15", &[]))
            .assert_code(0)
            .assert_stdout(&want);
    }
    // User commands always run in <app>.
    run(&mut f.launch("launcher", "0.15", &["--", "pwd"]))
        .assert_stdout(&format!("{}\n", ws.display()));
}

#[test]
fn app_profile_that_is_a_directory_is_not_sourced() {
    let f = processes_fixture("");
    f.dir("workspace/.profile");
    let out = run(&mut f.launch("launcher", "0.15", &["echo", "no profile"]));
    out.assert_code(0);
    assert_eq!(out.text, "no profile\n", "not even a bash error on stderr");
}

#[test]
fn path_loses_cnb_dirs_wherever_they_are() {
    // L-29 / EN-12: exact element match anywhere; an emptied PATH stays set (empty).
    let f = processes_fixture("");
    let printenv = |path: &str| {
        let out = run(f
            .launch("launcher", "0.15", &["--", "/usr/bin/env"])
            .env("PATH", path));
        out.assert_code(0);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("PATH=").map(str::to_owned))
    };
    assert_eq!(
        printenv("/a:/cnb/process:/b:/cnb/lifecycle:/cnb/process/x:/cnb/lifecycle/"),
        Some("/a:/b:/cnb/process/x:/cnb/lifecycle/".into())
    );
    assert_eq!(printenv("/cnb/lifecycle:/cnb/process"), Some(String::new()));
}

#[test]
fn replaces_the_launcher_process_without_fork() {
    // L-30: direct processes and bash (which `exec`s the nested bash) keep the PID.
    let f = processes_fixture("");
    for args in [&["--", "sh", "-c", "echo $$"][..], &["echo $$"][..]] {
        let mut cmd = f.launch("launcher", "0.15", args);
        let child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{pid}\n"),
            "{args:?}"
        );
    }
}

#[test]
fn platform_variables_pass_through_untouched() {
    // L-25 / L-29: HOME, BPL_*, CNB_EXEC_ENV, CNB_NO_COLOR and other CNB_* reach the process.
    let f = processes_fixture("");
    let out = run(f
        .launch("launcher", "0.15", &["--", "env"])
        .env("HOME", "/home/app")
        .env("BPL_DEBUG", "on")
        .env("CNB_EXEC_ENV", "test")
        .env("CNB_OTHER", "a=b"));
    out.assert_code(0);
    let env = env_map(&out.stdout);
    for (k, v) in [
        ("HOME", "/home/app"),
        ("BPL_DEBUG", "on"),
        ("CNB_EXEC_ENV", "test"),
        ("CNB_NO_COLOR", "true"),
        ("CNB_OTHER", "a=b"),
    ] {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
    }
    let cnb: Vec<_> = env.keys().filter(|k| k.starts_with("CNB_")).collect();
    assert_eq!(
        cnb,
        ["CNB_EXEC_ENV", "CNB_NO_COLOR", "CNB_OTHER"],
        "nothing set, nothing else kept"
    );
}
