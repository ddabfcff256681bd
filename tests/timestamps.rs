//! `tag=timestamp` on the real engine and a real registry on 127.0.0.1: each build tagged
//! with its UTC time, the newest used by run-image, publish-image and a `FROM` of another
//! project image, and `run-image --latest` pulling the newest from the registry only when
//! it is not already here.

mod common;

use common::{BUSYBOX_DOCKERFILE, Project, USER, registry};
use std::process::Command;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn stamps(name: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["images", "--format", "{{.Tag}}", name])
        .output()
        .unwrap();
    let mut tags: Vec<String> = text(&out.stdout)
        .lines()
        .filter(|t| t.len() == 16 && t.ends_with('Z') && t.as_bytes()[8] == b'T')
        .map(str::to_string)
        .collect();
    tags.sort();
    tags
}

#[test]
fn timestamp_tags_and_the_newest_here_or_in_the_registry() {
    common::require_engine();
    let reg = registry();
    let p = Project::new("stamps");
    let name = p.name.clone();
    let app = format!("{name}-app");
    p.dockerfile("app", &format!("{BUSYBOX_DOCKERFILE}COPY v.txt /v.txt\n"))
        .dockerfile("child", &format!("FROM {app}\nRUN cp /v.txt /child.txt\n"))
        .file("v.txt", "v1\n")
        .cfg(&format!(
            "[app]\nservice=stamps-service\ntag=timestamp\nimage_repo=registry\npublication_tag=127.0.0.1:{}/{{image}}:{{tag}}\n",
            reg.port
        ));
    let ok = |args: &[&str]| {
        let out = p.cmd(args[0]).args(&args[1..]).output().unwrap();
        let all = text(&out.stderr) + &text(&out.stdout);
        assert!(out.status.success(), "{args:?}: {all}");
        all
    };

    ok(&["build-image", "app"]);
    let first = stamps(&app);
    assert_eq!(first.len(), 1, "{first:?}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    p.file("v.txt", "v2\n");
    ok(&["build-image", "app"]);
    let both = stamps(&app);
    assert_eq!(both.len(), 2, "{both:?}");
    let newest = both[1].clone();
    assert!(newest > first[0]);

    // run-image runs the newest build here.
    let out = ok(&["run-image", "app", "-c", "cat /v.txt"]);
    assert!(out.contains(&format!("{app}:{newest}")), "{out}");
    assert!(out.contains("v2"), "{out}");

    // deploy-image too (its plan, not run here).
    let out = ok(&["deploy-image", "app", "--dry-run", "--no-pull"]);
    assert!(out.contains(&format!("{app}:{newest}")), "{out}");

    // A FROM of the project image (no tag) builds on its newest.
    let out = ok(&["build-image", "child"]);
    assert!(
        out.contains(" -f - "),
        "the resolved Dockerfile goes on stdin: {out}"
    );
    assert!(out.contains(&format!("FROM {app}:{newest}")), "{out}");
    let child = Command::new("docker")
        .args(["run", "--rm", &p.image("child"), "cat", "/child.txt"])
        .output()
        .unwrap();
    assert_eq!(text(&child.stdout), "v2\n");

    // publish-image pushes the newest.
    ok(&["publish-image", "app"]);
    let listed = reg.get(&format!("/v2/{app}/tags/list"));
    assert!(listed.contains(&newest), "{listed}");

    // Nothing here: a clear error, and --latest pulls the newest from the registry.
    let out = ok(&["build-image", "clean"]);
    assert!(out.contains(&format!("docker rmi {app}:{newest}")), "{out}");
    assert!(stamps(&app).is_empty());
    let _ = Command::new("docker")
        .args(["rmi", &format!("127.0.0.1:{}/{app}:{newest}", reg.port)])
        .output();
    let out = p
        .cmd("run-image")
        .args(["app", "-c", "cat /v.txt"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("no build of") && err.contains("--latest"),
        "{err}"
    );
    let out = ok(&["run-image", "app", "--latest", "-c", "cat /v.txt"]);
    assert!(
        out.contains(&format!(
            "docker pull 127.0.0.1:{}/{app}:{newest}",
            reg.port
        )),
        "{out}"
    );
    assert!(out.contains("v2"), "{out}");
    assert_eq!(stamps(&app), [newest.clone()]);
    // Already here: no pull.
    let out = ok(&["run-image", "app", "--latest", "-c", "cat /v.txt"]);
    assert!(!out.contains("docker pull"), "{out}");
    assert!(out.contains("v2"), "{out}");
    let _ = Command::new("docker")
        .args(["rmi", &format!("127.0.0.1:{}/{app}:{newest}", reg.port)])
        .output();
    let _ = USER;
}
