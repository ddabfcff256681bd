//! auto-build on the real engine, from a git repository made in the test: rebuilds what
//! changed (an image's sealed source branch, its inputs, its parent), publishes what it
//! built to a real registry on 127.0.0.1, keeps overlapping runs apart, says what became
//! of each image, and fails when one fails.

mod common;

use common::{BUSYBOX_DOCKERFILE, Project, USER, image_id, registry};
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::process::Command;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn git(p: &Project, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(&p.root)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
}

fn lock_hash(p: &Project) -> String {
    use sha2::Digest;
    format!(
        "{:x}",
        sha2::Sha256::digest(p.root.to_string_lossy().as_bytes())
    )
}

/// The runtime directory the test's auto-build runs get (where its lock lives).
fn runtime_dir(p: &Project) -> PathBuf {
    use std::os::unix::fs::DirBuilderExt;
    let dir = p.root.parent().unwrap().join("runtime");
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    dir
}

fn auto_build(p: &Project, args: &[&str]) -> (i32, String) {
    let out = p
        .cmd("auto-build")
        .env("XDG_RUNTIME_DIR", runtime_dir(p))
        .args(args)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), text(&out.stderr))
}

/// The line auto-build says about an image (without its time stamp).
fn said<'a>(out: &'a str, image: &str) -> Vec<&'a str> {
    out.lines()
        .filter(|l| l.contains(&format!("auto-build: {image} (")))
        .map(|l| l.split_once("): ").map(|(_, s)| s).unwrap_or(l))
        .collect()
}

fn cat(image: &str, file: &str) -> String {
    let out = Command::new("docker")
        .args(["run", "--rm", image, "cat", file])
        .output()
        .unwrap();
    text(&out.stdout)
}

#[test]
fn auto_build_rebuilds_what_changed_from_the_sealed_branch_and_publishes_it() {
    common::require_engine();
    let reg = registry();
    let p = Project::new("auto");
    let name = p.name.clone();
    p.dockerfile("base", &format!("{BUSYBOX_DOCKERFILE}COPY base.txt /base.txt\n"))
        .dockerfile("app", &format!("FROM {name}-base:{USER}\nCOPY app.txt /app.txt\n"))
        .file("base.txt", "b1\n")
        .file("app.txt", "committed 1\n")
        .cfg(&format!(
            "[app]\nsource_branch=main\nimage_repo=registry\npublication_tag=127.0.0.1:{}/{{image}}:{{tag}}\n",
            reg.port
        ));
    git(&p, &["init", "-q", "-b", "main"]);
    git(&p, &["add", "."]);
    git(&p, &["commit", "-qm", "one"]);

    let (rc, out) = auto_build(&p, &["--publish"]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(
        said(&out, "base"),
        [
            "built: its inputs changed",
            "not published: [base] has no image_repo"
        ],
        "{out}"
    );
    assert_eq!(
        said(&out, "app"),
        ["built from branch main: its inputs changed", "published"],
        "{out}"
    );
    assert!(
        reg.get(&format!("/v2/{name}-app/tags/list"))
            .contains(&format!("\"{USER}\""))
    );
    let first = (image_id(&p.image("base")), image_id(&p.image("app")));

    // Nothing changed: nothing built, nothing published.
    let (rc, out) = auto_build(&p, &["--publish"]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(said(&out, "base"), ["up to date: nothing changed"], "{out}");
    assert_eq!(
        said(&out, "app"),
        ["up to date from branch main: nothing changed"],
        "{out}"
    );

    // The working copy is not the sealed branch: an uncommitted edit changes nothing.
    p.file("app.txt", "work in progress\n");
    let (_, out) = auto_build(&p, &[]);
    assert_eq!(
        said(&out, "app"),
        ["up to date from branch main: nothing changed"],
        "{out}"
    );

    // A commit on the branch does.
    p.file("app.txt", "committed 2\n");
    git(&p, &["commit", "-qam", "two"]);
    let (rc, out) = auto_build(&p, &[]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(said(&out, "base"), ["up to date: nothing changed"], "{out}");
    assert_eq!(
        said(&out, "app"),
        ["built from branch main: its inputs changed"],
        "{out}"
    );
    assert_eq!(cat(&p.image("app"), "/app.txt"), "committed 2\n");
    assert_eq!(image_id(&p.image("base")), first.0);

    // A changed parent rebuilds its child.
    p.file("base.txt", "b2\n");
    let (rc, out) = auto_build(&p, &[]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(said(&out, "base"), ["built: its inputs changed"], "{out}");
    assert_eq!(
        said(&out, "app"),
        ["built from branch main: its inputs changed"],
        "{out}"
    );
    assert_eq!(cat(&p.image("app"), "/base.txt"), "b2\n");

    // Another run holding the lock: this one does nothing, and says so.
    let lock = {
        use sha2::Digest;
        let hash = format!(
            "{:x}",
            sha2::Sha256::digest(p.root.to_string_lossy().as_bytes())
        );
        runtime_dir(&p).join(format!("dockerutils/auto-build-{}.lock", &hash[..16]))
    };
    assert!(
        lock.exists(),
        "the first runs took their lock at {}",
        lock.display()
    );
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .unwrap();
    // SAFETY: flock(2) on a descriptor we own.
    assert_eq!(
        unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    p.file("base.txt", "b3\n");
    let (rc, out) = auto_build(&p, &[]);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains("another auto-build of") && out.contains("nothing done"),
        "{out}"
    );
    assert!(said(&out, "base").is_empty(), "{out}");
    drop(held);
    // Nothing in the shared temp directory, which another user could have made first.
    assert!(
        !std::env::temp_dir()
            .join(format!(
                "dockerutils-auto-build-{}.lock",
                &lock_hash(&p)[..16]
            ))
            .exists()
    );

    // A failing image fails the run, and what is built from it is not tried.
    p.dockerfile(
        "base",
        &format!("{BUSYBOX_DOCKERFILE}COPY base.txt /base.txt\nRUN exit 3\n"),
    );
    let (rc, out) = auto_build(&p, &[]);
    assert_ne!(rc, 0, "{out}");
    assert_eq!(
        said(&out, "base"),
        ["FAILED: the build exited with 3"],
        "{out}"
    );
    assert_eq!(
        said(&out, "app"),
        ["FAILED: not built, because base failed"],
        "{out}"
    );
    // Removed once no test of this binary builds (see common::Cleanup).
    common::cleanup().remove_later([format!("127.0.0.1:{}/{name}-app:{USER}", reg.port)]);
}

#[test]
fn a_tagless_from_means_what_build_image_means_by_it_also_from_the_sealed_branch() {
    common::require_engine();
    let p = Project::new("autotagless");
    let name = p.name.clone();
    p.dockerfile(
        "base",
        &format!("{BUSYBOX_DOCKERFILE}COPY base.txt /base.txt\n"),
    )
    .dockerfile(
        "app",
        &format!("FROM {name}-base\nRUN echo committed > /app.txt\n"),
    )
    .file("base.txt", "b1\n")
    .cfg("[base]\ntag=v1\n[app]\nsource_branch=main\n");
    git(&p, &["init", "-q", "-b", "main"]);
    git(&p, &["add", "."]);
    git(&p, &["commit", "-qm", "one"]);
    // Work in progress, not committed: the build must not take this Dockerfile.
    p.dockerfile(
        "app",
        &format!("FROM {name}-base\nRUN echo work in progress > /app.txt\n"),
    );

    let (rc, out) = auto_build(&p, &[]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(
        said(&out, "app"),
        ["built from branch main: its inputs changed"],
        "{out}"
    );
    assert!(out.contains(&format!("FROM {name}-base:v1")), "{out}");
    assert_eq!(cat(&p.image("app"), "/app.txt"), "committed\n");
    assert_eq!(cat(&p.image("app"), "/base.txt"), "b1\n");

    let (_, out) = auto_build(&p, &[]);
    assert_eq!(
        said(&out, "app"),
        ["up to date from branch main: nothing changed"],
        "{out}"
    );
    // The parent the tagless FROM means was rebuilt: so is the child.
    p.file("base.txt", "b2\n");
    let (rc, out) = auto_build(&p, &[]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(said(&out, "base"), ["built: its inputs changed"], "{out}");
    assert_eq!(
        said(&out, "app"),
        ["built from branch main: its inputs changed"],
        "{out}"
    );
    assert_eq!(cat(&p.image("app"), "/base.txt"), "b2\n");
}

/// A source_branch that looks like an option never reaches git as one: with
/// `--output=FILE` git archive would write FILE (anywhere the user can write).
#[test]
fn a_source_branch_that_looks_like_an_option_is_refused() {
    common::require_engine();
    let p = Project::new("autoopt");
    let target = p.root.parent().unwrap().join("written-by-git");
    p.dockerfile("app", BUSYBOX_DOCKERFILE).cfg(&format!(
        "[app]\nsource_branch=--output={}\n",
        target.display()
    ));
    git(&p, &["init", "-q", "-b", "main"]);
    git(&p, &["add", "."]);
    git(&p, &["commit", "-qm", "one"]);
    let (rc, out) = auto_build(&p, &[]);
    assert_ne!(rc, 0, "{out}");
    assert!(out.contains("cannot start with `-`"), "{out}");
    assert!(!target.exists(), "git took the branch for an option");
}

/// A source_branch git cannot archive is git's failure, reported in git's words, not a
/// usage error (exit 1, not 2).
#[test]
fn a_source_branch_git_cannot_archive_fails_with_gits_words() {
    common::require_engine();
    let p = Project::new("autonobranch");
    p.dockerfile("app", BUSYBOX_DOCKERFILE)
        .cfg("[app]\nsource_branch=no-such-branch\n");
    git(&p, &["init", "-q", "-b", "main"]);
    git(&p, &["add", "."]);
    git(&p, &["commit", "-qm", "one"]);
    let (rc, out) = auto_build(&p, &[]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("git archive no-such-branch"), "{out}");
}
