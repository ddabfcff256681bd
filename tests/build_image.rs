//! build-image on a real Docker engine.

mod common;

use common::{BUSYBOX_DOCKERFILE, Project, image_exists, require_engine};
use predicates::prelude::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a container of `image` prints for `cmd`.
fn run_in(image: &str, cmd: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(["run", "--rm", image])
        .args(cmd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker run {image} {cmd:?}: {}",
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn builds_the_convention_name_with_the_root_as_context_from_any_subdirectory() {
    require_engine();
    let p = Project::new("plain");
    p.dockerfile("dev", BUSYBOX_DOCKERFILE)
        .file("src/app.txt", "app\n")
        .dockerfile(
            "dev",
            &format!("{BUSYBOX_DOCKERFILE}COPY src/app.txt /app.txt\n"),
        );
    std::fs::create_dir_all(p.root.join("src/deep")).unwrap();

    let out = p
        .cmd_in("build-image", &p.root.join("src/deep"))
        .arg("dev")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = format!(
        "docker build --compress --force-rm -t {} -f docker/dev/Dockerfile .",
        p.image("dev")
    );
    assert!(
        stderr(&out).contains(&expected),
        "printed command missing: {}",
        stderr(&out)
    );
    assert_eq!(run_in(&p.image("dev"), &["cat", "/app.txt"]), "app\n");
}

#[test]
fn all_builds_base_first_and_skips_directories_without_a_dockerfile() {
    require_engine();
    let p = Project::new("all");
    p.dockerfile("base", BUSYBOX_DOCKERFILE)
        // `app` is built FROM base: it only builds when base was built first.
        .dockerfile(
            "app",
            &format!("FROM {}\nRUN echo app > /which\n", p.image("base")),
        )
        .file("docker/notes/README", "not an image\n");

    let out = p.cmd("build-image").arg("all").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("skipping docker/notes: it has no Dockerfile"));
    assert!(image_exists(&p.image("base")));
    assert_eq!(run_in(&p.image("app"), &["cat", "/which"]), "app\n");
}

#[test]
fn clean_removes_the_project_images_and_a_missing_one_is_not_an_error() {
    require_engine();
    // It deletes images midway: no other test builds meanwhile.
    let p = Project::exclusive("clean");
    p.dockerfile("dev", BUSYBOX_DOCKERFILE).dockerfile(
        "prod",
        "FROM scratch AS builder\nCOPY busybox /bin/busybox\nFROM scratch\nCOPY --from=builder /bin/busybox /bin/busybox\n",
    );
    p.cmd("build-image").arg("all").assert().success();
    let builder = format!("{}-prod-builder:tester", p.name);
    assert!(
        image_exists(&p.image("dev")) && image_exists(&p.image("prod")) && image_exists(&builder)
    );

    p.cmd("build-image").arg("clean").assert().success();
    for image in [p.image("dev"), p.image("prod"), builder] {
        assert!(!image_exists(&image), "{image} still there");
    }
    let again = p.cmd("build-image").arg("clean").output().unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains(&format!("{} is not present", p.image("dev"))));
}

#[test]
fn multi_stage_builder_is_tagged_so_a_prune_keeps_its_layers() {
    require_engine();
    let p = Project::new("stages");
    p.dockerfile(
        "prod",
        "FROM scratch AS builder\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo built > /out\"]\n\
         FROM scratch\nCOPY --from=builder /out /out\n",
    );
    let out = p.cmd("build-image").arg("prod").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let builder = format!("{}-prod-builder:tester", p.name);
    let err = stderr(&out);
    let first = err
        .find(&format!(
            "-t {builder} -f docker/prod/Dockerfile --target builder ."
        ))
        .expect("builder build");
    let second = err
        .find(&format!(
            "-t {} -f docker/prod/Dockerfile .",
            p.image("prod")
        ))
        .expect("image build");
    assert!(first < second);
    assert!(image_exists(&builder) && image_exists(&p.image("prod")));
}

#[test]
fn force_build_base_pulls_only_when_the_cfg_says_so() {
    require_engine();
    let p = Project::new("force");
    let scratch = "FROM scratch\nCOPY busybox /bin/busybox\n";
    p.dockerfile("base", scratch).dockerfile("dev", scratch);

    // -f builds base first; no --pull without pull_FROM_on_force.
    let out = p.cmd("build-image").args(["dev", "-f"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let base = err
        .find(&format!("-t {} ", p.image("base")))
        .expect("base built");
    let dev = err
        .find(&format!("-t {} ", p.image("dev")))
        .expect("dev built");
    assert!(base < dev, "base must come first: {err}");
    assert!(!err.contains("--pull"));

    // pull_FROM_on_force=True: --pull, but only when forcing. FROM scratch pulls nothing,
    // so this runs offline.
    p.cfg("[base]\npull_FROM_on_force=True\n[dev]\npull_FROM_on_force=True\n");
    let forced = p
        .cmd("build-image")
        .args(["dev", "--force_build_base"])
        .output()
        .unwrap();
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(
        stderr(&forced)
            .matches("docker build --pull --compress")
            .count(),
        2
    );
    let plain = p
        .cmd("build-image")
        .args(["dev", "--dry-run"])
        .output()
        .unwrap();
    assert!(!stdout(&plain).contains("--pull"), "{}", stdout(&plain));
    let pulled = p.cmd("build-image").args(["dev", "-p"]).output().unwrap();
    assert!(pulled.status.success(), "{}", stderr(&pulled));
    assert!(stderr(&pulled).contains("docker build --pull --compress"));
}

#[test]
fn name_tag_and_build_args_come_from_the_cfg_and_flags_override_them() {
    require_engine();
    let p = Project::new("naming");
    let custom = format!("{}-custom", p.name);
    p.dockerfile(
        "dev",
        &format!("{BUSYBOX_DOCKERFILE}ARG GREETING\nARG OTHER\nRUN echo \"$GREETING $OTHER\" > /greeting\n"),
    )
    .cfg(&format!(
        "[dev]\nname={custom}\nprefix=False\ntag=t1\nbuild_args=--build-arg GREETING=hello --build-arg 'OTHER=big world'\n"
    ));
    p.cmd("build-image").arg("dev").assert().success();
    assert_eq!(
        run_in(&format!("{custom}:t1"), &["cat", "/greeting"]),
        "hello big world\n"
    );

    let other = format!("{}-flagged", p.name);
    p.cmd("build-image")
        .args(["dev", "-i", &other, "-t", "v2"])
        .assert()
        .success();
    assert!(image_exists(&format!("{other}:v2")));

    p.cmd("build-image")
        .args(["all", "-i", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("-i/--image_name names one image"));
}

#[test]
fn pre_and_post_build_scripts_run_at_the_root_around_the_build() {
    require_engine();
    let p = Project::new("scripts");
    p.dockerfile("dev", "FROM scratch\nCOPY pre.txt /pre.txt\n").cfg(
        "[dev]\npre_build_script=echo $((20+22)) > pre.txt && test ! -e post.txt\npost_build_script=cp pre.txt post.txt\n",
    );
    let out = p.cmd("build-image").arg("dev").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(p.root.join("post.txt")).unwrap(),
        "42\n"
    );
    assert!(image_exists(&p.image("dev")));

    // A failing pre-script stops everything with its exit code.
    let q = Project::new("prefail");
    q.dockerfile("dev", "FROM scratch\nCOPY busybox /b\n")
        .cfg("[dev]\npre_build_script=exit 3\npost_build_script=touch post.txt\n");
    q.cmd("build-image").arg("dev").assert().code(3);
    assert!(!image_exists(&q.image("dev")));
    assert!(!q.root.join("post.txt").exists());
}

#[test]
fn pip_conf_template_is_there_for_the_build_only() {
    require_engine();
    let p = Project::new("pipconf");
    p.file(
        "pip.conf.template",
        "[global]\nindex-url = http://127.0.0.1/simple\n",
    )
    .dockerfile("dev", "FROM scratch\nCOPY pip.conf /etc/pip.conf\n");
    p.cmd("build-image").arg("dev").assert().success();
    assert!(!p.root.join("pip.conf").exists(), "pip.conf left behind");

    // Removed after a failed build too.
    p.dockerfile(
        "bad",
        "FROM scratch\nCOPY pip.conf /etc/pip.conf\nCOPY no-such-file /x\n",
    );
    p.cmd("build-image").arg("bad").assert().failure();
    assert!(
        !p.root.join("pip.conf").exists(),
        "pip.conf left behind after a failure"
    );

    // A pip.conf of the user's own is kept.
    p.file("pip.conf", "mine\n");
    p.cmd("build-image").arg("dev").assert().success();
    assert_eq!(
        std::fs::read_to_string(p.root.join("pip.conf")).unwrap(),
        "mine\n"
    );
}

#[test]
fn versioneer_projects_get_version_py_bld() {
    require_engine();
    let p = Project::new("versioneer");
    p.file("setup.cfg", "[versioneer]\nVCS = git\nstyle = pep440\n")
        .file(
            "versioneer.py",
            "def get_versions():\n    return {'version': '1.2.3', 'full-revisionid': 'abc', 'dirty': False, 'error': None}\n",
        )
        .dockerfile("dev", "FROM scratch\nCOPY _version.py.bld /_version.py\n");
    let out = p.cmd("build-image").arg("dev").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let written = std::fs::read_to_string(p.root.join("_version.py.bld")).unwrap();
    assert!(written.contains("\"version\": \"1.2.3\""), "{written}");
    assert!(written.contains("def get_versions():\n    return json.loads(version_json)"));
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    require_engine();
    let p = Project::new("dryrun");
    p.dockerfile("dev", BUSYBOX_DOCKERFILE)
        .cfg("[dev]\npre_build_script=touch ran.txt\n");
    let out = p
        .cmd("build-image")
        .args(["dev", "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        format!(
            "cd {}\nsh -c 'touch ran.txt'\ndocker build --compress --force-rm -t {} -f docker/dev/Dockerfile .\n",
            p.root.display(),
            p.image("dev")
        )
    );
    assert!(!p.root.join("ran.txt").exists());
    assert!(!image_exists(&p.image("dev")));
}

#[test]
fn bad_input_gets_a_clear_error_and_nothing_half_done() {
    require_engine();
    let nowhere = tempfile::tempdir().unwrap();
    let p = Project::new("errors");
    p.dockerfile("dev", BUSYBOX_DOCKERFILE);
    std::fs::create_dir_all(p.root.join("docker/empty")).unwrap();

    p.cmd_in("build-image", nowhere.path())
        .arg("dev")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "no `docker/` directory in {}",
            nowhere.path().display()
        )))
        .stderr(predicate::str::contains("docker/<image>/Dockerfile"));

    p.cmd("build-image")
        .arg("nope")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown image `nope`"))
        .stderr(predicate::str::contains(
            "valid images: all, clean, dev, empty",
        ));

    p.cmd("build-image")
        .arg("empty")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no Dockerfile for image `empty`"));

    p.cfg("[dev]\ntag=x\nthis line is wrong\n");
    p.cmd("build-image")
        .arg("dev")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "{}:3: `this line is wrong` is not a `key = value` line",
            p.root.join("docker/dockerutils.cfg").display()
        )));
    p.cfg("");

    p.cmd("build-image").arg("--bogus").assert().code(2);
    assert!(!image_exists(&p.image("dev")));
}

#[test]
fn docker_missing_or_not_answering_is_explained() {
    require_engine();
    let p = Project::new("nodocker");
    p.dockerfile("dev", BUSYBOX_DOCKERFILE);
    let empty_path = tempfile::tempdir().unwrap();
    p.cmd("build-image")
        .arg("dev")
        .env("PATH", empty_path.path())
        .assert()
        .code(127)
        .stderr(predicate::str::contains("`docker` was not found on PATH"))
        .stderr(predicate::str::contains("hint: install the Docker CLI"));

    p.cmd("build-image")
        .arg("dev")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("Cannot connect to the Docker daemon"))
        .stderr(predicate::str::contains(
            "hint: the Docker daemon is not answering at DOCKER_HOST=unix:///nonexistent/docker.sock",
        ));
}

#[test]
fn a_failing_build_exits_with_dockers_code_and_stops() {
    require_engine();
    let p = Project::new("failing");
    p.dockerfile("base", "FROM scratch\nCOPY missing-file /x\n")
        .dockerfile("dev", BUSYBOX_DOCKERFILE);
    p.cmd("build-image").args(["dev", "-f"]).assert().code(1);
    // base failed, so dev was not built.
    assert!(!image_exists(&p.image("dev")));
}

/// Presses ^C in the terminal of `child` (a command run by [`common::in_terminal`]) and
/// returns its exit code.
fn press_ctrl_c(child: &mut std::process::Child) -> Option<i32> {
    // The terminal is in cooked mode: ^C becomes SIGINT for the whole foreground group.
    // Under load, script(1) sometimes loses a byte written while it is still setting up
    // the terminal (seen in CI: the whole group kept running): a second ^C, as a user
    // would press, after a few seconds. Both lost would mean ^C does not work.
    for _ in 0..2 {
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"\x03").unwrap();
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(5) {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    common::wait_exit(child, std::time::Duration::from_secs(10), || {})
}

#[test]
fn ctrl_c_during_a_build_stops_it_and_still_cleans_up() {
    require_engine();
    let p = Project::new("ctrlcbuild");
    p.file("pip.conf.template", "[global]\n")
        .dockerfile("dev", BUSYBOX_DOCKERFILE)
        .cfg(&format!("[dev]\npre_build_script={}\n", common::READY_CMD));
    let line = format!("{} dev", common::bin_dir().join("build-image").display());
    let mut child = common::in_terminal(&line, &p.root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_for_ready(&mut child);
    assert!(
        p.root.join("pip.conf").exists(),
        "pip.conf is there during the build"
    );
    assert_eq!(press_ctrl_c(&mut child), Some(130));
    assert!(
        !p.root.join("pip.conf").exists(),
        "pip.conf left behind: cleanup did not run"
    );
    assert!(
        !image_exists(&p.image("dev")),
        "the build went on after Ctrl-C"
    );
}

/// `build-image ARGS` at a terminal in `p` (stderr to a log file, whose path is returned
/// with the child), once a pre-build script has said READY_42.
fn build_image_at_a_terminal(p: &Project, args: &str) -> (std::process::Child, std::path::PathBuf) {
    let log = p.root.join("out.log");
    let line = format!(
        "{} {args} 2>{}",
        common::bin_dir().join("build-image").display(),
        log.display()
    );
    let mut child = common::in_terminal(&line, &p.root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_for_ready(&mut child);
    (child, log)
}

#[test]
fn ctrl_c_during_all_stops_the_run_instead_of_going_on_to_the_next_image() {
    require_engine();
    let p = Project::new("ctrlcall");
    // `all` goes on past a failed image; an interrupted one ends the run.
    p.dockerfile("a", BUSYBOX_DOCKERFILE)
        .dockerfile("b", BUSYBOX_DOCKERFILE)
        .cfg(&format!("[a]\npre_build_script={}\n", common::READY_CMD));
    let (mut child, log) = build_image_at_a_terminal(&p, "all");
    assert_eq!(press_ctrl_c(&mut child), Some(130));
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(
        !err.contains(&format!("-t {} ", p.image("b"))),
        "the next image was started after Ctrl-C: {err}"
    );
    assert!(!image_exists(&p.image("a")) && !image_exists(&p.image("b")));
}

/// Ctrl-C in a parallel `all` after one image had failed: the exit code is the
/// interruption's (130), as a shell's loop must see it, and the summary tells the image
/// that failed by itself from the one whose build was cut off.
#[test]
fn ctrl_c_after_a_failure_exits_130_and_says_which_build_was_interrupted() {
    require_engine();
    let p = Project::new("ctrlcfail");
    p.dockerfile("broken", "FROM scratch\nCOPY missing-file /x\n")
        .dockerfile("slow", BUSYBOX_DOCKERFILE)
        .cfg("[slow]\npre_build_script=sh -c 'sleep 2; echo READY_$((6*7)); sleep 60'\n");
    let (mut child, log) = build_image_at_a_terminal(&p, "all -j 2");
    let err = || std::fs::read_to_string(&log).unwrap_or_default();
    // broken fails at once (its file is missing); slow waits in its pre-build script.
    assert!(
        common::wait_until(std::time::Duration::from_secs(20), || err()
            .contains("missing-file")),
        "{}",
        err()
    );
    assert_eq!(press_ctrl_c(&mut child), Some(130), "{}", err());
    let err = err();
    assert!(
        err.contains("0 built, 0 up to date, 1 failed (broken), 1 interrupted (slow)"),
        "{err}"
    );
    assert!(!image_exists(&p.image("slow")));
}

#[test]
fn a_failed_run_leaves_no_container_behind() {
    require_engine();
    let p = Project::new("forcerm");
    // The failed RUN's container inherits the image's labels: this one is the test's own.
    let label = format!("dutest.forcerm={}", p.name);
    p.dockerfile(
        "dev",
        &format!("{BUSYBOX_DOCKERFILE}LABEL {label}\nRUN echo failing; exit 3\n"),
    );
    let out = p.cmd("build-image").arg("dev").output().unwrap();
    let listed = std::process::Command::new("docker")
        .args(["ps", "-a", "-q", "--filter", &format!("label={label}")])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", stderr(&listed));
    let left: Vec<String> = stdout(&listed).lines().map(str::to_owned).collect();
    if !left.is_empty() {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f"])
            .args(&left)
            .output();
    }
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(left.is_empty(), "containers left behind: {left:?}");
    assert!(stderr(&out).contains("--force-rm"), "{}", stderr(&out));
}

#[test]
fn misspelt_cfg_keys_are_warned_about_once_even_with_parallel_builds() {
    require_engine();
    let p = Project::new("spelljobs");
    p.dockerfile("one", BUSYBOX_DOCKERFILE)
        .dockerfile("two", BUSYBOX_DOCKERFILE)
        .cfg(
            "[DEFAULT]\nbuild_arg=--build-arg X=1\n\
             [one]\npre_build_scrpt=touch pre\n\
             [two]\ntag_=x\n\
             [build_image]\nif_changd=True\n",
        );
    let out = p
        .cmd("build-image")
        .args(["all", "-j", "2"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let cfg = p.root.join("docker/dockerutils.cfg");
    for warning in [
        "2: [DEFAULT] build_arg: unknown key; did you mean build_args?",
        "4: [one] pre_build_scrpt: unknown key; did you mean pre_build_script?",
        "6: [two] tag_: unknown key; did you mean tag?",
        "8: [build_image] if_changd: unknown key; did you mean if_changed?",
    ] {
        let line = format!("{}:{warning}\n", cfg.display());
        assert_eq!(err.matches(&line).count(), 1, "{line} in {err}");
    }
    // Misspelt keys are ignored, as before.
    assert!(!p.root.join("pre").exists());
    assert!(image_exists(&p.image("one")) && image_exists(&p.image("two")));
}
