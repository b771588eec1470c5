//! The generator's `<layers>` trees: buildpack directories, layers with `bin/`, `lib/`,
//! env directories, `profile.d` and exec.d programs (see `generate.rs`).

use super::{Gen, VARS};
use crate::case::Bytes;

impl Gen {
    pub(super) fn buildpack_dir(&mut self, dir: &str, types: &[&str]) {
        let base = format!("layers/{dir}");
        match self.rng.below(20) {
            0 => return self.file(&base, "not a directory", 0o644),
            1 => return, // no directory: skipped
            _ => {}
        }
        self.dir(&base);
        for n in 0..self.rng.below(3) {
            let layer = format!("{base}/layer{n}");
            if self.rng.chance(5) {
                self.symlink(&layer, &format!("@ROOT@/{base}"));
                continue;
            }
            self.dir(&layer);
            self.layer(&layer, types);
        }
        if self.rng.chance(5) {
            self.file(
                &format!("{base}/layer.toml"),
                "[types]\nlaunch = true\n",
                0o644,
            );
        }
    }

    fn layer(&mut self, layer: &str, types: &[&str]) {
        if self.rng.chance(25) {
            self.dir(&format!("{layer}/bin"));
            if self.rng.chance(50) {
                self.file(
                    &format!("{layer}/bin/tool"),
                    "#!/bin/sh\nexec probe tool \"$@\"\n",
                    0o755,
                );
            }
        }
        if self.rng.chance(15) {
            self.dir(&format!("{layer}/lib"));
        }
        for env_dir in ["env", "env.launch", "env.build"] {
            if self.rng.chance(35) {
                self.env_dir(&format!("{layer}/{env_dir}"));
            }
        }
        if !types.is_empty() && self.rng.chance(20) {
            let t = *self.rng.pick(types);
            self.env_dir(&format!("{layer}/env.launch/{t}"));
        }
        if self.rng.chance(25) {
            for n in 0..1 + self.rng.below(2) {
                let body = self.profile_script();
                self.file(&format!("{layer}/profile.d/{n}-prof"), body, 0o644);
            }
        }
        if !types.is_empty() && self.rng.chance(10) {
            let t = *self.rng.pick(types);
            let body = self.profile_script();
            self.file(&format!("{layer}/profile.d/{t}/typed"), body, 0o644);
        }
        if self.rng.chance(35) {
            if self.rng.chance(4) {
                self.file(&format!("{layer}/exec.d"), "not a directory", 0o644);
            } else {
                for n in 0..1 + self.rng.below(2) {
                    let body = self.exec_d_program();
                    self.script(&format!("{layer}/exec.d/{n}-prog"), &body);
                }
            }
        }
        if !types.is_empty() && self.rng.chance(10) {
            let t = *self.rng.pick(types);
            let body = self.exec_d_program();
            self.script(&format!("{layer}/exec.d/{t}/typed"), &body);
        }
    }

    fn env_dir(&mut self, dir: &str) {
        if self.rng.chance(3) {
            return self.file(dir, "not a directory", 0o644);
        }
        self.dir(dir);
        for _ in 0..1 + self.rng.below(3) {
            let var = *self.rng.pick(VARS);
            let suffix = *self.rng.pick(&[
                "",
                ".override",
                ".default",
                ".prepend",
                ".append",
                ".delim",
                ".",
                ".weird",
                ".prepend.x",
            ]);
            let contents: &[u8] = self.rng.pick::<&[u8]>(&[
                &b""[..],
                &b"v1"[..],
                &b"/opt/x"[..],
                &b":"[..],
                &b","[..],
                &b"with space"[..],
                &b"line\n"[..],
                &b"\xff\xfe"[..],
                &b"a=b"[..],
                &b"$FOO"[..],
            ]);
            let contents = if self.rng.chance(2) {
                b"a\0b".to_vec()
            } else {
                contents.to_vec()
            };
            self.file(&format!("{dir}/{var}{suffix}"), Bytes(contents), 0o644);
        }
        match self.rng.below(40) {
            0 => self.symlink(&format!("{dir}/DANGLING"), "nowhere"),
            1 => self.dir(&format!("{dir}/SUBDIR")),
            2 => self.symlink(&format!("{dir}/LINKED"), "@ROOT@/workspace"),
            _ => {}
        }
    }

    fn profile_script(&mut self) -> String {
        self.rng
            .pick(&[
                "export FOO=from-profile\n",
                "echo profile-ran\n",
                "echo \"profile argv0 $0\"\n",
                "export BAR=\"$FOO:profile\"\n",
                "echo profile-stderr >&2\n",
            ])
            .to_string()
    }

    fn exec_d_program(&mut self) -> String {
        self.rng
            .pick(&[
                "printf 'FOO = \"%s\"\\n' from-execd >&3",
                "echo 'BAZ = \"x\"' >&3",
                "echo 'not toml' >&3",
                "echo 'A = 1' >&3",
                "exit 2",
                "if read -r l; then printf 'GOT = \"%s\"\\n' \"$l\" >&3; fi",
                "echo execd-out; echo execd-err >&2",
                "printf 'SEEN = \"%s|%s\"\\n' \"$FOO\" \"${CNB_APP_DIR:-none}\" >&3",
                "printf '[t]\\nA = \"x\"\\n' >&3",
                "true",
                "printf 'N = \"a\\\\u0000b\"\\n' >&3",
                "printf 'PATH = \"%s\"\\n' \"$PATH:/execd\" >&3",
                "kill -9 $$",
                "mkdir -p @ROOT@/layers/c/late/profile.d && echo 'echo late-profile' > @ROOT@/layers/c/late/profile.d/p",
                "mkdir -p @ROOT@/layers/c/late/exec.d && printf '#!/bin/sh\\necho late-execd\\n' > @ROOT@/layers/c/late/exec.d/p && chmod +x @ROOT@/layers/c/late/exec.d/p",
                "pwd",
                // TOML corners in exec.d output.
                "printf 'a.b = \"x\"\\n' >&3",
                "printf '\"Q K\" = \"v\"\\nU = \"\\\\u00e9\\\\t\"\\n' >&3",
                "printf 'M = \"\"\"\\nmulti\\nline\"\"\"\\nL = \\047lit\\047\\n' >&3",
                "printf 'D = \"1\"\\nD = \"2\"\\n' >&3",
                "printf '\"\" = \"empty-key\"\\n' >&3",
                "printf 'T = {a = \"b\"}\\n' >&3",
                "printf 'PATH = \"\"\\n' >&3",
                "grep '^Sig[BI]' /proc/self/status",
                "ls /proc/self/fd",
                // Absolute paths: with two failing commands in a pipeline the order of their
                // messages would be up to the scheduler.
                "printf 'BIG = \"%s\"\\n' \"$(/usr/bin/head -c 200000 /dev/zero | /usr/bin/tr '\\0' x)\" >&3",
                "/usr/bin/head -c 100000 /dev/zero | /usr/bin/tr '\\0' y",
            ])
            .to_string()
    }
}
