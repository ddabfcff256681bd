//! `dockerutils init` on a real Docker engine: what it writes builds and runs with the
//! project's own commands. Nothing can be pulled here, so each test swaps only the FROM
//! images for a busybox image with a stand-in `pip`, and keeps everything else init wrote.

mod common;

use common::{BUSYBOX_DOCKERFILE, Project, image_exists, require_engine};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stand-in for pip (nothing can be downloaded): logs its arguments in /tmp/pip.log;
/// `pip wheel … --wheel-dir DIR` makes a wheel in DIR.
const FAKE_PIP: &str = r#"#!/bin/sh
echo "pip $*" >> /tmp/pip.log
if [ "$1" = wheel ]; then
  while [ $# -gt 0 ]; do
    if [ "$1" = --wheel-dir ]; then mkdir -p "$2" && touch "$2/fake-0-py3-none-any.whl"; fi
    shift
  done
fi
"#;

/// `<project>-pybase:tester`: busybox with the stand-in pip and a /tmp, to build FROM.
fn python_stand_in(p: &Project) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("busybox")).unwrap();
    let pip = dir.path().join("pip");
    std::fs::write(&pip, FAKE_PIP).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pip, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("{BUSYBOX_DOCKERFILE}RUN mkdir -m 1777 /tmp\nCOPY pip /usr/local/bin/pip\n"),
    )
    .unwrap();
    let image = p.image("pybase");
    let out = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &image])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    image
}

/// Replaces the image of every FROM line of docker/<image>/Dockerfile with `base`
/// (keeping `AS <stage>`), after checking that init wrote the images `expected`.
fn swap_from(p: &Project, image: &str, expected: &[&str], base: &str) {
    let path = p.root.join(format!("docker/{image}/Dockerfile"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut froms = vec![];
    let swapped: Vec<String> = text
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first() == Some(&"FROM") {
                froms.push(words[1].to_string());
                let mut w = words.clone();
                w[1] = base;
                w.join(" ")
            } else {
                line.to_string()
            }
        })
        .collect();
    assert_eq!(froms, expected, "the FROM images of docker/{image}");
    std::fs::write(&path, swapped.join("\n") + "\n").unwrap();
}

fn init(p: &Project, templates: &[&str]) -> std::process::Output {
    let out = p
        .cmd("dockerutils")
        .arg("init")
        .args(templates)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

/// What `run-image IMAGE -c COMMAND` prints.
fn run(p: &Project, image: &str, command: &str) -> String {
    let out = p
        .cmd("run-image")
        .args([image, "-c", command])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn dev_template_builds_and_runs_with_the_project_mounted_live() {
    require_engine();
    let p = Project::new("init-dev");
    // No template named: dev.
    let out = init(&p, &[]);
    let said = stdout(&out);
    for line in [
        "wrote docker/dev/Dockerfile",
        "wrote .dockerignore",
        "wrote docker/dockerutils.cfg",
        "Next:\n  build-image dev\n  run-image dev\n",
    ] {
        assert!(said.contains(line), "missing `{line}` in:\n{said}");
    }
    let cfg = std::fs::read_to_string(p.root.join("docker/dockerutils.cfg")).unwrap();
    assert!(
        cfg.contains("volumes=-v {project_root}:/home/app/project"),
        "{cfg}"
    );
    assert!(cfg.contains("volumes_docked="), "{cfg}");

    let base = python_stand_in(&p);
    swap_from(&p, "dev", &["python:3.12-slim"], &base);
    let built = p.cmd("build-image").arg("dev").output().unwrap();
    assert!(built.status.success(), "{}", stderr(&built));
    assert!(image_exists(&p.image("dev")));

    // The code is not in the image: it is the project, mounted, so host edits are live.
    // A Python project is installed in editable mode as the container starts.
    p.file("marker", "first\n")
        .file("pyproject.toml", "[project]\nname='x'\n");
    let shown = run(
        &p,
        "dev",
        "sh -c 'pwd; cat /home/app/project/marker /tmp/pip.log'",
    );
    assert_eq!(
        shown,
        "/home/app/project\nfirst\npip install --quiet --no-deps -e .\n"
    );
    p.file("marker", "edited on the host\n");
    std::fs::remove_file(p.root.join("pyproject.toml")).unwrap();
    // Without pyproject.toml/setup.py, no pip: the command just runs.
    assert_eq!(
        run(&p, "dev", "sh -c 'cat marker; ls /tmp'"),
        "edited on the host\n"
    );
}

#[test]
fn notebook_template_publishes_8888_and_mounts_the_project_in_jupyters_work_dir() {
    require_engine();
    let p = Project::new("init-nb");
    let said = stdout(&init(&p, &["notebook"]));
    assert!(
        said.contains("build-image notebook\n  run-image notebook"),
        "{said}"
    );
    let base = python_stand_in(&p);
    swap_from(
        &p,
        "notebook",
        &["quay.io/jupyter/minimal-notebook:latest"],
        &base,
    );
    p.cmd("build-image").arg("notebook").assert().success();

    let dry = p
        .cmd("run-image")
        .args(["notebook", "--dry-run"])
        .output()
        .unwrap();
    let line = stdout(&dry);
    assert!(
        line.contains(&format!(
            "-v {}:/home/jovyan/work -p 8888:8888 {}",
            p.root.display(),
            p.image("notebook")
        )),
        "{line}"
    );
    // For the real run, any free host port (8888 may be taken on a test machine).
    let cfg_path = p.root.join("docker/dockerutils.cfg");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(
        &cfg_path,
        cfg.replace("ports=-p 8888:8888", "ports=-p 127.0.0.1::8888"),
    )
    .unwrap();
    p.file("analysis.ipynb", "{}\n");
    assert_eq!(
        run(&p, "notebook", "cat /home/jovyan/work/analysis.ipynb"),
        "{}\n"
    );
}

#[test]
fn prod_template_builds_its_builder_stage_then_a_final_stage_without_the_build() {
    require_engine();
    let p = Project::new("init-prod");
    init(&p, &["prod"]);
    let dockerfile = std::fs::read_to_string(p.root.join("docker/prod/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("FROM python:3.12 AS builder\n"),
        "{dockerfile}"
    );
    let base = python_stand_in(&p);
    swap_from(&p, "prod", &["python:3.12", "python:3.12-slim"], &base);
    p.file("pyproject.toml", "[project]\nname='x'\n");

    let out = p.cmd("build-image").arg("prod").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let builder = format!("{}-prod-builder:tester", p.name);
    assert!(
        stderr(&out).contains(&format!(
            "-t {builder} -f docker/prod/Dockerfile --target builder ."
        )),
        "{}",
        stderr(&out)
    );
    assert!(image_exists(&builder) && image_exists(&p.image("prod")));

    // The builder made wheels of the project; the final stage installed them, kept no
    // copy, and runs as nobody.
    let shown = run(
        &p,
        "prod",
        "sh -c 'id -u; cat /tmp/pip.log; ls /wheels /src 2>&1 | wc -l'",
    );
    assert_eq!(
        shown,
        "65534\npip install --no-cache-dir --no-index /wheels/fake-0-py3-none-any.whl\n2\n"
    );
    let in_builder = std::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            &builder,
            "sh",
            "-c",
            "cat /tmp/pip.log; ls /wheels; ls /src/pyproject.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&in_builder),
        "pip wheel --no-cache-dir --wheel-dir /wheels .\nfake-0-py3-none-any.whl\n/src/pyproject.toml\n"
    );
}

#[test]
fn init_never_overwrites_and_adds_only_missing_cfg_sections() {
    let p = Project::new("init-keep");
    p.dockerfile("dev", "FROM mine\n")
        .file(".dockerignore", "only-mine\n")
        .cfg("[dev]\ncmd=pytest\n");
    let out = init(&p, &["dev"]);
    let said = stdout(&out);
    for line in [
        "kept  docker/dev/Dockerfile (it exists)",
        "kept  .dockerignore (it exists)",
        "kept  docker/dockerutils.cfg (it has a [dev] section already)",
    ] {
        assert!(said.contains(line), "missing `{line}` in:\n{said}");
    }
    assert!(!said.contains("wrote"), "{said}");
    let read = |rel: &str| std::fs::read_to_string(p.root.join(rel)).unwrap();
    assert_eq!(read("docker/dev/Dockerfile"), "FROM mine\n");
    assert_eq!(read(".dockerignore"), "only-mine\n");
    assert_eq!(read("docker/dockerutils.cfg"), "[dev]\ncmd=pytest\n");

    // Another template: its files and its section, after the user's.
    let said = stdout(&init(&p, &["dev", "prod"]));
    assert!(said.contains("wrote docker/prod/Dockerfile"), "{said}");
    assert!(
        said.contains("added [prod] to docker/dockerutils.cfg"),
        "{said}"
    );
    let cfg = read("docker/dockerutils.cfg");
    assert!(cfg.starts_with("[dev]\ncmd=pytest\n\n[prod]\n"), "{cfg}");
    // The cfg still reads: the project's commands take it.
    let dry = p
        .cmd("run-image")
        .args(["dev", "--dry-run"])
        .output()
        .unwrap();
    assert!(
        stdout(&dry).trim_end().ends_with(" pytest"),
        "{}",
        stdout(&dry)
    );

    // Run again: nothing changes.
    let before = read("docker/dockerutils.cfg");
    let said = stdout(&init(&p, &["prod"]));
    assert!(!said.contains("wrote") && !said.contains("added"), "{said}");
    assert_eq!(read("docker/dockerutils.cfg"), before);
}

#[test]
fn unknown_template_is_a_usage_error_naming_the_templates_and_writes_nothing() {
    let p = Project::new("init-bad");
    let out = p
        .cmd("dockerutils")
        .args(["init", "dev", "web"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("'web'") && err.contains("dev, notebook, prod"),
        "{err}"
    );
    assert!(!p.root.join("docker/dev").exists());
    assert!(!p.root.join(".dockerignore").exists());

    // A cfg that does not read is not appended to.
    p.cfg("[dev\n");
    let out = p
        .cmd("dockerutils")
        .args(["init", "prod"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("dockerutils.cfg:1"),
        "{}",
        stderr(&out)
    );
    assert!(!p.root.join("docker/prod").exists());
}

#[test]
fn list_help_dry_run_and_a_project_above() {
    let p = Project::new("init-misc");
    let list = p
        .cmd("dockerutils")
        .args(["init", "--list"])
        .output()
        .unwrap();
    let text = stdout(&list);
    for t in ["dev ", "notebook ", "prod "] {
        assert!(text.contains(t), "{text}");
    }
    let help = p
        .cmd("dockerutils")
        .args(["init", "--help"])
        .output()
        .unwrap();
    assert!(stdout(&help).contains("Usage: dockerutils init [OPTIONS] [TEMPLATE]..."));
    assert!(stdout(&help).contains("dockerutils init dev notebook prod"));

    let dry = p
        .cmd("dockerutils")
        .args(["init", "notebook", "--dry-run"])
        .output()
        .unwrap();
    assert!(
        stdout(&dry).contains("would write docker/notebook/Dockerfile"),
        "{}",
        stdout(&dry)
    );
    assert!(!p.root.join("docker/notebook").exists());

    // Below a project root: scaffolds here, and says where the other docker/ is.
    let sub = p.root.join("services/api");
    std::fs::create_dir_all(&sub).unwrap();
    let out = p.cmd_in("dockerutils", &sub).arg("init").output().unwrap();
    assert!(out.status.success());
    assert!(sub.join("docker/dev/Dockerfile").is_file());
    assert!(
        stderr(&out).contains(&format!("{} holds a docker/ tree", p.root.display())),
        "{}",
        stderr(&out)
    );
}
