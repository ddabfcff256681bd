//! Differential test: dockerutils 2.0.7 (the oracle, from PyPI) and ours run on the same
//! fixture projects with a fake `docker` that records its argv; the docker command lines
//! must be the same, apart from the container name's timestamp, the TTY flag, and the
//! differences that are ours on purpose (each asserted below, with the reason).

mod common;

use std::path::PathBuf;
use std::process::Command;

#[derive(Clone, Copy, Debug)]
enum Tool {
    Original,
    Ours,
}

fn oracle_dir() -> PathBuf {
    let dir = std::env::var("DOCKERUTILS_ORACLE").unwrap_or_else(|_| {
        panic!("DOCKERUTILS_ORACLE is not set: run the tests with `bash tests/run.sh`, which installs dockerutils 2.0.7")
    });
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("run-image").is_file(),
        "no 2.0.7 run-image in {}",
        dir.display()
    );
    dir
}

/// A project `MyProj` (upper case: the image prefix is lower-cased) in a temp dir, with
/// a fake docker and a home of its own.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    fake_bin: PathBuf,
    home: PathBuf,
}

const FAKE_DOCKER: &str = "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\037' \"$a\"; done >> \"$FAKE_DOCKER_LOG\"\nprintf '\\n' >> \"$FAKE_DOCKER_LOG\"\n";

impl Fixture {
    fn new(images: &[(&str, &str)], cfg: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("MyProj");
        for (image, dockerfile) in images {
            std::fs::create_dir_all(root.join("docker").join(image)).unwrap();
            std::fs::write(
                root.join("docker").join(image).join("Dockerfile"),
                dockerfile,
            )
            .unwrap();
        }
        std::fs::write(root.join("docker/dockerutils.cfg"), cfg).unwrap();
        let fake_bin = tmp.path().join("fakebin");
        std::fs::create_dir_all(&fake_bin).unwrap();
        let docker = fake_bin.join("docker");
        std::fs::write(&docker, FAKE_DOCKER).unwrap();
        let mut mode = std::fs::metadata(&docker).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o755);
        std::fs::set_permissions(&docker, mode).unwrap();
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        Fixture {
            _tmp: tmp,
            root,
            fake_bin,
            home,
        }
    }

    fn log(&self, tool: Tool) -> PathBuf {
        self.root.parent().unwrap().join(format!("{tool:?}.log"))
    }

    /// Runs `tool`'s `command args` against the fake docker.
    fn run(
        &self,
        tool: Tool,
        command: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> std::process::Output {
        let log = self.log(tool);
        let _ = std::fs::remove_file(&log);
        let program = match tool {
            Tool::Original => oracle_dir().join(command),
            Tool::Ours => common::bin_dir().join(command),
        };
        let mut cmd = Command::new(&program);
        cmd.args(args)
            .current_dir(&self.root)
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/local/bin:/usr/bin:/bin", self.fake_bin.display()),
            )
            .env("HOME", &self.home)
            .env("LOGNAME", common::USER)
            .env("USER", common::USER)
            .env("FAKE_DOCKER_LOG", &log)
            .envs(env.iter().copied());
        cmd.output().unwrap()
    }

    /// The docker calls `tool` makes for `command args`, normalised.
    fn calls(
        &self,
        tool: Tool,
        command: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Vec<Vec<String>> {
        let out = self.run(tool, command, args, env);
        assert!(
            out.status.success(),
            "{tool:?} {command} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(self.log(tool)).unwrap_or_default();
        text.lines()
            .map(|line| {
                let words: Vec<String> = line
                    .split('\x1f')
                    .filter(|w| !w.is_empty())
                    .map(normalise)
                    .collect();
                words
            })
            .collect()
    }

    /// Both tools' calls.
    fn both(
        &self,
        command: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
        (
            self.calls(Tool::Original, command, args, env),
            self.calls(Tool::Ours, command, args, env),
        )
    }

    fn root(&self) -> String {
        self.root.display().to_string()
    }
}

/// The container name's timestamp and the TTY flag (2.0.7 always says -it; we say -i
/// without a terminal, and these runs have none).
fn normalise(word: &str) -> String {
    if word == "-it" || word == "-i" {
        return "<tty>".into();
    }
    let stamp = "yy-mm-dd_HH.MM.SS".len();
    if word.starts_with(&format!("{}_", common::USER)) && word.len() > stamp {
        let (head, tail) = word.split_at(word.len() - stamp);
        if tail.chars().filter(|c| c.is_ascii_digit()).count() == 12 {
            return format!("{head}<time>");
        }
    }
    word.into()
}

fn words(line: &str) -> Vec<String> {
    line.split(' ').map(str::to_owned).collect()
}

const SCRATCH: &str = "FROM scratch\nCOPY x /x\n";

#[test]
fn build_image_same_commands() {
    let f = Fixture::new(
        &[
            ("base", SCRATCH),
            ("dev", SCRATCH),
            ("prod", "FROM scratch as builder\nFROM scratch\n"),
        ],
        "[dev]\nbuild_args=--build-arg A=1 --build-arg B=2\npull_FROM_on_force=True\n\
         [prod]\nname=release\ntag=1.0\n[base]\nname=myorg/base\nprefix=False\n",
    );
    let cases: &[&[&str]] = &[
        &["dev"],
        &["dev", "-p"],
        &["dev", "-t", "v9"],
        &["prod"],
        &["base"],
        &["prod", "-i", "other"],
    ];
    for args in cases {
        let (original, ours) = f.both("build-image", args, &[]);
        assert_eq!(ours, original, "build-image {args:?}");
        assert!(!ours.is_empty());
    }
    // The builder stage (lower-case `as builder`, which 2.0.7 sees) is built first.
    let (_, ours) = f.both("build-image", &["prod"], &[]);
    assert_eq!(
        ours,
        vec![
            words(
                "build --compress -t myproj-release-builder:1.0 -f docker/prod/Dockerfile --target builder ."
            ),
            words("build --compress -t myproj-release:1.0 -f docker/prod/Dockerfile ."),
        ]
    );
}

#[test]
fn build_image_all_force_and_clean() {
    let f = Fixture::new(
        &[("base", SCRATCH), ("dev", SCRATCH), ("web", SCRATCH)],
        "[dev]\npull_FROM_on_force=True\n",
    );
    // -f: base, then the image; pull_FROM_on_force=True adds --pull for dev only.
    let (original, ours) = f.both("build-image", &["dev", "-f"], &[]);
    assert_eq!(ours, original);
    assert_eq!(
        ours[0],
        words("build --compress -t myproj-base:tester -f docker/base/Dockerfile .")
    );

    // all: the same calls; 2.0.7 goes in directory-listing order, we go base first and
    // then by name (images are usually built on base), so compare as sets.
    let (mut original, ours) = f.both("build-image", &["all"], &[]);
    assert_eq!(ours.len(), 3);
    let mut sorted = ours.clone();
    sorted.sort();
    original.sort();
    assert_eq!(sorted, original);

    // clean: 2.0.7 crashes (`clean() got an unexpected keyword argument 'config'`) before
    // calling docker; we remove each image.
    let crashed = f.run(Tool::Original, "build-image", &["clean"], &[]);
    assert!(!crashed.status.success());
    assert!(
        String::from_utf8_lossy(&crashed.stderr).contains("unexpected keyword argument 'config'")
    );
    let mut ours = f.calls(Tool::Ours, "build-image", &["clean"], &[]);
    ours.sort();
    assert_eq!(
        ours,
        vec![
            words("rmi myproj-base:tester"),
            words("rmi myproj-dev:tester"),
            words("rmi myproj-web:tester")
        ]
    );
    let (_, ours) = f.both("build-image", &["all"], &[]);
    assert_eq!(ours[0][3], "myproj-base:tester", "base first");
}

#[test]
fn build_image_deliberate_differences() {
    // pull_FROM_on_force=False: 2.0.7 tests the string, which is truthy, and pulls.
    let f = Fixture::new(
        &[("base", SCRATCH), ("dev", SCRATCH)],
        "[dev]\npull_FROM_on_force=False\n",
    );
    let (original, ours) = f.both("build-image", &["dev", "-f"], &[]);
    assert_eq!(
        original[1],
        words("build --pull --compress -t myproj-dev:tester -f docker/dev/Dockerfile .")
    );
    assert_eq!(
        ours[1],
        words("build --compress -t myproj-dev:tester -f docker/dev/Dockerfile .")
    );

    // `AS builder` in upper case (the usual spelling): 2.0.7 looks for the substring
    // 'as builder' and misses the stage; we build and tag it.
    let f = Fixture::new(&[("prod", "FROM scratch AS builder\nFROM scratch\n")], "");
    let (original, ours) = f.both("build-image", &["prod"], &[]);
    assert_eq!(original.len(), 1);
    assert_eq!(ours.len(), 2);
    assert_eq!(ours[1], original[0]);
    assert!(ours[0].contains(&"--target".to_string()));

    // -i with -f: 2.0.7 gives base the same name as the image; we apply -i to the named image.
    let f = Fixture::new(&[("base", SCRATCH), ("dev", SCRATCH)], "");
    let (original, ours) = f.both("build-image", &["dev", "-f", "-i", "custom"], &[]);
    assert_eq!(original[0][3], "custom:tester");
    assert_eq!(ours[0][3], "myproj-base:tester");
    assert_eq!(ours[1], original[1]);
}

const RUN_CFG: &str = "[DEFAULT]\nnetwork=mynet\n\
[dev]\nports=-p 8888:8888\nvolumes=-v {project_root}:/src -v {home}/.aws:/root/.aws -v /data/{user}/{project}:/data -v $HOME/x:/x -v $USER:/u\n\
cmd=python -m app --flag\nargs=--shm-size 1g\nenv=dev_env\ngpu=--runtime=nvidia\n\
volumes_docked=-v /remote/{user}:/src\ncmd_docked=echo docked\n\
[dev_env]\nLOG=debug\nMODE=fast\n\
[run_image]\nsynthetic_images=shell\n\
[shell]\nname=dev\ncmd=bash\n";

#[test]
fn run_image_same_commands() {
    let f = Fixture::new(&[("dev", SCRATCH), ("prod", SCRATCH)], RUN_CFG);
    let cases: &[&[&str]] = &[
        &["dev"],
        &["prod"],
        &["shell"],
        &["dev", "-n", "other"],
        &["dev", "-c", "pytest -x"],
        &["dev", "-a", "-p 1:1"],
        &["dev", "-e", "EXTRA=1"],
        &["dev", "-g"],
    ];
    for args in cases {
        let (original, ours) = f.both("run-image", args, &[]);
        assert_eq!(ours, original, "run-image {args:?}");
        assert_eq!(ours.len(), 1);
    }
    let (_, ours) = f.both("run-image", &["dev"], &[]);
    let home = f.home.display().to_string();
    let root = f.root();
    let expected = format!(
        "run --init --name tester_dev_<time> -e LOG=debug -e MODE=fast -e network=mynet --rm <tty> --runtime=nvidia --network mynet \
         -v {root}:/src -v {home}/.aws:/root/.aws -v /data/tester/MyProj:/data -v {home}/x:/x -v tester:/u \
         -p 8888:8888 --shm-size 1g myproj-dev:tester python -m app --flag"
    );
    assert_eq!(ours[0], words(&expected));

    // Docked: the *_docked keys.
    let docked = [("DOCKER_IP", "10.0.0.5")];
    let (original, ours) = f.both("run-image", &["dev"], &docked);
    assert_eq!(ours, original);
    assert!(ours[0].ends_with(&words(
        "-v /remote/tester:/src -p 8888:8888 --shm-size 1g myproj-dev:tester echo docked"
    )));
}

#[test]
fn run_image_deliberate_differences() {
    let f = Fixture::new(&[("dev", SCRATCH)], RUN_CFG);

    // AWS credentials: 2.0.7 puts the values in docker's argv (visible in `ps`); we pass
    // `-e NAME` and docker reads the value from its environment. Not when docked (both).
    let aws = [
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
        ("AWS_REGION", "eu-west-1"),
    ];
    let (original, ours) = f.both("run-image", &["dev"], &aws);
    let strip_values = |call: &Vec<String>| -> Vec<String> {
        call.iter()
            .map(|w| match w.split_once('=') {
                Some((k, _)) if k.starts_with("AWS_") => k.to_string(),
                _ => w.clone(),
            })
            .collect()
    };
    assert!(original[0].contains(&"AWS_SECRET_ACCESS_KEY=s3cr3t".to_string()));
    assert!(!ours[0].iter().any(|w| w.contains("s3cr3t")));
    assert_eq!(ours[0], strip_values(&original[0]));
    let mut docked = aws.to_vec();
    docked.push(("DOCKER_IP", "10.0.0.5"));
    let (original, ours) = f.both("run-image", &["dev"], &docked);
    assert_eq!(ours, original);
    assert!(!ours[0].iter().any(|w| w.contains("AWS")));

    // Secret-looking env names: the value travels in docker's environment, not its argv.
    let (original, ours) = f.both("run-image", &["dev", "-e", "DB_PASSWORD=hunter2"], &[]);
    assert!(original[0].contains(&"DB_PASSWORD=hunter2".to_string()));
    assert_eq!(
        ours[0],
        original[0]
            .iter()
            .map(|w| if w == "DB_PASSWORD=hunter2" {
                "DB_PASSWORD".into()
            } else {
                w.clone()
            })
            .collect::<Vec<_>>()
    );

    // -k: 2.0.7 puts a stray `True` where `--rm` was (`args.keep or '--rm'`) and `-d`.
    let (original, ours) = f.both("run-image", &["dev", "-k"], &[]);
    let without_true: Vec<String> = original[0]
        .iter()
        .filter(|w| *w != "True")
        .cloned()
        .collect();
    assert!(original[0].contains(&"True".to_string()));
    assert_eq!(ours[0], without_true);
    assert!(ours[0].contains(&"-d".to_string()) && !ours[0].contains(&"--rm".to_string()));

    // -e A=b=c: 2.0.7 splits on every '=' and keeps `A=b`.
    let (original, ours) = f.both("run-image", &["dev", "-e", "A=b=c"], &[]);
    assert!(original[0].contains(&"A=b".to_string()));
    assert!(ours[0].contains(&"A=b=c".to_string()));

    // -e and the env section set the same key: 2.0.7 lets the section win, we let the
    // command line win (what you type now beats the file).
    let (original, ours) = f.both("run-image", &["dev", "-e", "LOG=cli"], &[]);
    assert!(original[0].contains(&"LOG=debug".to_string()));
    assert!(
        ours[0].contains(&"LOG=cli".to_string()) && !ours[0].contains(&"LOG=debug".to_string())
    );

    // An env value with spaces: 2.0.7 builds one string and splits it again, so the value
    // falls apart into words; we pass it whole.
    let f2 = Fixture::new(
        &[("dev", SCRATCH)],
        "[dev]\nenv=e\n[e]\nGREETING=hello world\n",
    );
    let (original, ours) = f2.both("run-image", &["dev"], &[]);
    assert!(
        original[0]
            .windows(2)
            .any(|w| w == ["GREETING=hello", "world"])
    );
    assert!(ours[0].contains(&"GREETING=hello world".to_string()));

    // The cfg's `environment` and `interactive`: 2.0.7's defaults are never empty, so it
    // never reads them; we do.
    let f = Fixture::new(
        &[("dev", SCRATCH)],
        "[dev]\nenvironment=-e FROM_CFG=1\ninteractive=-i --detach-keys ctrl-x\n",
    );
    let (original, ours) = f.both("run-image", &["dev"], &[]);
    assert!(!original[0].contains(&"FROM_CFG=1".to_string()));
    assert_eq!(
        ours[0],
        words(
            "run --init --name tester_dev_<time> -e FROM_CFG=1 --rm <tty> --detach-keys ctrl-x myproj-dev:tester"
        )
    );
}

#[test]
fn braced_variables_in_volumes() {
    // `${VAR}` in volumes: 2.0.7 runs str.format first, which takes `{VAR}` for a field
    // and crashes with KeyError, although its README documents the form; we expand it.
    let f = Fixture::new(
        &[("dev", SCRATCH)],
        "[dev]\nvolumes=-v ${HOME}/data:/data\n",
    );
    let crashed = f.run(Tool::Original, "run-image", &["dev"], &[]);
    assert!(String::from_utf8_lossy(&crashed.stderr).contains("KeyError: 'HOME'"));
    let ours = f.calls(Tool::Ours, "run-image", &["dev"], &[]);
    assert!(ours[0].ends_with(&words(&format!(
        "-v {}/data:/data myproj-dev:tester",
        f.home.display()
    ))));
}

#[test]
fn cfg_reading_matches_python_configparser() {
    // Continuation lines, `:` delimiter, full-line comments inside a value, `#` kept inside
    // a value, %-interpolation and %%: read the same way by both.
    let cfg = "[dev]\nroot: /srv\nvolumes=-v %(root)s/a:/a\n  # a comment line\n    -v /b#c:/b\nports = -p 80%%:80\n";
    let f = Fixture::new(&[("dev", SCRATCH)], cfg);
    let (original, ours) = f.both("run-image", &["dev"], &[]);
    assert_eq!(ours, original);
    assert!(ours[0].ends_with(&words(
        "-v /srv/a:/a -v /b#c:/b -p 80%:80 myproj-dev:tester"
    )));
}
