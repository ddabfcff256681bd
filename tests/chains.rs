//! Image chains on the real engine: dependency-ordered builds, --with-deps, cycles, -j
//! with a failing image, and --if-changed skipping what has not changed (the input
//! digest in a label on the image).

mod common;

use common::{BUSYBOX_DOCKERFILE, Project, USER, image_id};
use std::collections::HashMap;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// zbase ← mid ← app (alphabetical order is the reverse of the build order); `other`
/// stands alone.
fn chain_project(label: &str) -> Project {
    let p = Project::new(label);
    let name = p.name.clone();
    p.dockerfile(
        "zbase",
        &format!("{BUSYBOX_DOCKERFILE}COPY zbase.txt /zbase.txt\n"),
    )
    .dockerfile(
        "mid",
        &format!("FROM {name}-zbase:{USER}\nCOPY mid/ /mid/\n"),
    )
    .dockerfile(
        "app",
        "ARG PARENT=nothing\nFROM ${PARENT}\nCOPY app.txt /app.txt\n",
    )
    .file("zbase.txt", "z1\n")
    .file("mid/m.txt", "m1\n")
    .file("mid/cache.tmp", "ignored\n")
    .file("app.txt", "a1\n")
    .file("unrelated.txt", "u1\n")
    .file(".dockerignore", "**/*.tmp\n")
    .cfg(&format!(
        "[app]\nbuild_args=--build-arg PARENT={name}-mid:{USER}\n"
    ));
    p
}

fn ids(p: &Project) -> HashMap<&'static str, String> {
    ["zbase", "mid", "app"]
        .into_iter()
        .map(|i| (i, image_id(&p.image(i))))
        .collect()
}

fn build(p: &Project, args: &[&str]) -> (i32, String) {
    let out = p.cmd("build-image").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stderr) + &text(&out.stdout),
    )
}

/// The order of the `docker build … -t NAME` lines in the output.
fn built_order(p: &Project, output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|l| l.starts_with("docker build"))
        .filter_map(|l| {
            let after = l.split(" -t ").nth(1)?;
            let name = after.split_whitespace().next()?;
            Some(
                name.trim_start_matches(&format!("{}-", p.name))
                    .trim_end_matches(&format!(":{USER}"))
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn a_chain_builds_in_order_and_if_changed_rebuilds_only_what_changed() {
    common::require_engine();
    let p = chain_project("chain");
    let (rc, out) = build(&p, &["all", "--if-changed"]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(built_order(&p, &out), ["zbase", "mid", "app"], "{out}");
    assert!(out.contains("--label dockerutils.inputs=sha256:"), "{out}");
    let first = ids(&p);

    // Nothing changed: nothing built.
    let (rc, out) = build(&p, &["all", "--if-changed"]);
    assert_eq!(rc, 0, "{out}");
    assert!(built_order(&p, &out).is_empty(), "{out}");
    assert!(out.contains("0 built, 3 up to date, 0 failed"), "{out}");
    assert_eq!(ids(&p), first);

    // A file no image copies, or one .dockerignore leaves out: still nothing.
    p.file("unrelated.txt", "u2\n")
        .file("mid/cache.tmp", "changed\n");
    let (_, out) = build(&p, &["all", "--if-changed"]);
    assert!(built_order(&p, &out).is_empty(), "{out}");

    // A change to the last image's input rebuilds it alone.
    p.file("app.txt", "a2\n");
    let (rc, out) = build(&p, &["all", "--if-changed"]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(built_order(&p, &out), ["app"], "{out}");
    let second = ids(&p);
    assert_eq!(second["zbase"], first["zbase"]);
    assert_eq!(second["mid"], first["mid"]);
    assert_ne!(second["app"], first["app"]);

    // A change to the first rebuilds all three: each parent's new id changes the child's inputs.
    p.file("zbase.txt", "z2\n");
    let (rc, out) = build(&p, &["all", "--if-changed", "-j", "2"]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(built_order(&p, &out), ["zbase", "mid", "app"], "{out}");
    let third = ids(&p);
    for i in ["zbase", "mid", "app"] {
        assert_ne!(third[i], second[i], "{i} rebuilt");
    }
    let out = std::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            &p.image("app"),
            "cat",
            "/zbase.txt",
            "/app.txt",
        ])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "z2\na2\n");

    // A dry run says what would be skipped, and builds nothing.
    p.file("mid/m.txt", "m2\n");
    let (rc, out) = build(&p, &["all", "--if-changed", "--dry-run"]);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains(&format!("# {}-zbase:{USER} is up to date", p.name)),
        "{out}"
    );
    assert_eq!(built_order(&p, &out), ["mid", "app"], "{out}");
    assert_eq!(ids(&p), third);

    // The cfg switch makes it the default.
    p.cfg(&format!(
        "[build_image]\nif_changed=True\n[app]\nbuild_args=--build-arg PARENT={}-mid:{USER}\n",
        p.name
    ));
    let (rc, out) = build(&p, &["all"]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(built_order(&p, &out), ["mid", "app"], "{out}");
}

#[test]
fn with_deps_builds_the_ancestors_first() {
    common::require_engine();
    let p = chain_project("withdeps");
    let (rc, out) = build(&p, &["app", "--with-deps", "--dry-run"]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(built_order(&p, &out), ["zbase", "mid", "app"], "{out}");
    let (_, out) = build(&p, &["app", "--dry-run"]);
    assert_eq!(
        built_order(&p, &out),
        ["app"],
        "without it, only the image named"
    );
    let (rc, out) = build(&p, &["mid", "--with-deps"]);
    assert_eq!(rc, 0, "{out}");
    assert!(common::image_exists(&p.image("zbase")) && common::image_exists(&p.image("mid")));
    assert!(!common::image_exists(&p.image("app")));
}

#[test]
fn a_cycle_is_an_error_that_names_it() {
    let p = Project::new("cycle");
    let name = p.name.clone();
    p.dockerfile("x", &format!("FROM {name}-y:{USER}\n"))
        .dockerfile("y", &format!("FROM {name}-x AS base\nRUN true\n"))
        .dockerfile("ok", BUSYBOX_DOCKERFILE);
    let (rc, out) = build(&p, &["all"]);
    assert_eq!(rc, 2, "{out}");
    assert!(
        out.contains("the images are built from each other in a cycle: x → y → x"),
        "{out}"
    );
    assert!(!out.contains("docker build"), "nothing half-done: {out}");
}

#[test]
fn parallel_builds_go_on_past_a_failure_and_skip_its_dependents() {
    common::require_engine();
    let p = Project::new("parallel");
    let name = p.name.clone();
    p.dockerfile("bad", &format!("{BUSYBOX_DOCKERFILE}RUN exit 7\n"))
        .dockerfile("child", &format!("FROM {name}-bad:{USER}\n"))
        .dockerfile("good", BUSYBOX_DOCKERFILE)
        .dockerfile(
            "good2",
            &format!("{BUSYBOX_DOCKERFILE}RUN echo two > /two\n"),
        );
    let (rc, out) = build(&p, &["all", "-j", "2"]);
    assert_ne!(rc, 0, "{out}");
    assert!(
        out.contains(&format!(
            "{name}-child:{USER}: not built, because bad failed"
        )),
        "{out}"
    );
    assert!(
        out.contains("2 built, 0 up to date, 1 failed (bad), 1 skipped (child)"),
        "{out}"
    );
    assert!(common::image_exists(&p.image("good")) && common::image_exists(&p.image("good2")));
    assert!(!common::image_exists(&p.image("child")));
}

#[test]
fn all_goes_on_past_a_failure_in_every_mode() {
    common::require_engine();
    let p = Project::new("allfail");
    let name = p.name.clone();
    // `abad` sorts before `dev`: a run that stops at the first failure never builds dev.
    p.dockerfile("abad", &format!("{BUSYBOX_DOCKERFILE}RUN exit 7\n"))
        .dockerfile(
            "dev",
            &format!("{BUSYBOX_DOCKERFILE}COPY dev.txt /dev.txt\n"),
        )
        .dockerfile("dev2", &format!("FROM {name}-abad:{USER}\n"));
    for (i, mode) in [&["all"][..], &["all", "-j", "2"], &["all", "--if-changed"]]
        .into_iter()
        .enumerate()
    {
        // A new input each time: dev is built (not up to date) in every mode.
        p.file("dev.txt", &format!("{i}\n"));
        let (rc, out) = build(&p, mode);
        assert_ne!(rc, 0, "{mode:?}: {out}");
        // With -j 2 both start at once, in either order.
        let mut order = built_order(&p, &out);
        if mode.contains(&"-j") {
            order.sort();
        }
        assert_eq!(order, ["abad", "dev"], "{mode:?}: {out}");
        assert!(
            out.contains(&format!(
                "{name}-dev2:{USER}: not built, because abad failed"
            )),
            "{mode:?}: {out}"
        );
        let summaries: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("build-image: ") && l.contains(" built, "))
            .collect();
        assert_eq!(
            summaries,
            ["build-image: 1 built, 0 up to date, 1 failed (abad), 1 skipped (dev2)"],
            "{mode:?}: {out}"
        );
        let dev = std::process::Command::new("docker")
            .args(["run", "--rm", &p.image("dev"), "cat", "/dev.txt"])
            .output()
            .unwrap();
        assert_eq!(text(&dev.stdout), format!("{i}\n"), "{mode:?}: {out}");
        assert!(!common::image_exists(&p.image("dev2")), "{mode:?}");
    }
}

#[test]
fn a_tagless_from_of_a_project_image_means_the_image_as_the_project_tags_it() {
    common::require_engine();
    let p = Project::new("tagless");
    let name = p.name.clone();
    p.dockerfile(
        "base",
        &format!("{BUSYBOX_DOCKERFILE}COPY base.txt /base.txt\n"),
    )
    .dockerfile(
        "dev",
        &format!("FROM {name}-base\nRUN cp /base.txt /dev.txt\n"),
    )
    .file("base.txt", "b1\n");
    let cat = |file: &str| {
        let out = std::process::Command::new("docker")
            .args(["run", "--rm", &p.image("dev"), "cat", file])
            .output()
            .unwrap();
        text(&out.stdout)
    };

    // The parent is not built: said before anything runs, with what to do.
    let (rc, out) = build(&p, &["dev"]);
    assert_eq!(rc, 1, "{out}");
    assert!(
        out.contains(&format!("{name}-base:{USER} is not in the local engine")),
        "{out}"
    );
    assert!(out.contains("build-image dev --with-deps"), "{out}");
    assert!(out.contains("build-image dev -f"), "{out}");
    assert!(!out.contains("docker build"), "nothing tried: {out}");
    // The dry run shows the check, and the resolved Dockerfile the build would read.
    let (rc, out) = build(&p, &["dev", "--dry-run"]);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains(&format!(
            "docker image inspect --format '{{{{.Id}}}}' {name}-base:{USER} >/dev/null\n"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("FROM {name}-base:{USER}")), "{out}");

    // Built: the FROM is the user's tag (the resolved Dockerfile on stdin).
    let (rc, out) = build(&p, &["base"]);
    assert_eq!(rc, 0, "{out}");
    let (rc, out) = build(&p, &["dev"]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains(" -f - "), "{out}");
    assert!(out.contains(&format!("FROM {name}-base:{USER}")), "{out}");
    assert_eq!(cat("/dev.txt"), "b1\n");

    // --if-changed follows the parent that FROM means: a rebuilt base rebuilds dev.
    let (rc, out) = build(&p, &["all", "--if-changed"]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(built_order(&p, &out), ["base", "dev"], "{out}");
    let (_, out) = build(&p, &["all", "--if-changed"]);
    assert!(built_order(&p, &out).is_empty(), "{out}");
    p.file("base.txt", "b2\n");
    let (_, out) = build(&p, &["base", "--if-changed"]);
    assert_eq!(built_order(&p, &out), ["base"], "{out}");
    let (_, out) = build(&p, &["dev", "--if-changed", "--dry-run"]);
    assert_eq!(built_order(&p, &out), ["dev"], "{out}");
    let (rc, out) = build(&p, &["dev", "--if-changed"]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(built_order(&p, &out), ["dev"], "{out}");
    assert_eq!(cat("/dev.txt"), "b2\n");

    // A cfg tag on base: the FROM means that tag, also when this run builds base.
    p.file("base.txt", "b3\n").cfg("[base]\ntag=v1\n");
    let (rc, out) = build(&p, &["dev", "--with-deps"]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains(&format!("FROM {name}-base:v1")), "{out}");
    assert_eq!(cat("/dev.txt"), "b3\n");
    p.file("base.txt", "b4\n");
    let (rc, out) = build(&p, &["base"]);
    assert_eq!(rc, 0, "{out}");
    let (rc, out) = build(&p, &["dev"]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(cat("/dev.txt"), "b4\n");

    // A run that builds base with -t builds dev on that tag.
    let (rc, out) = build(&p, &["all", "-t", "t9", "--dry-run"]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains(&format!("FROM {name}-base:t9")), "{out}");
    assert!(!out.contains("docker image inspect"), "{out}");

    // An explicit tag other than the project's is left as written.
    p.dockerfile(
        "dev",
        &format!("FROM {name}-base:nosuchtag\nRUN cp /base.txt /dev.txt\n"),
    );
    let (_, out) = build(&p, &["dev", "--dry-run"]);
    assert!(
        out.contains("-f docker/dev/Dockerfile") && !out.contains(" -f - "),
        "{out}"
    );
}
