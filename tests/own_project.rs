//! This repository is a dockerutils project itself (docker/dev, docker/dockerutils.cfg):
//! its own commands plan its development image and its test run.

mod common;

use std::path::Path;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn this_repository_builds_its_dev_image_and_runs_its_tests_by_its_own_convention() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = |args: &[&str]| {
        let mut cmd = assert_cmd::Command::new(common::bin_dir().join(args[0]));
        common::clean_env(&mut cmd);
        let out = cmd
            .args(&args[1..])
            .current_dir(root.join("src"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(
            !text(&out.stderr).contains("unknown key"),
            "{}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let build = run(&["build-image", "all", "--dry-run"]);
    assert!(
        build.contains("docker build") && build.contains("-f docker/dev/Dockerfile"),
        "{build}"
    );
    let test = run(&["run-image", "test", "--dry-run"]);
    assert!(
        test.contains("--privileged")
            && test.contains("CI=true")
            && test.ends_with("bash tests/run.sh\n"),
        "{test}"
    );
    assert!(
        test.contains(&format!("{}:/src", root.display())),
        "the repository is mounted: {test}"
    );
}
