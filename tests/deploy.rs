//! deploy-image on a real Docker engine: a busybox HTTP service started, replaced by a new
//! version, and rolled back when the new version exits or turns unhealthy.

mod common;
mod service;

use common::Project;
use predicates::prelude::*;
use service::{Service, text, web_dockerfile};

/// A project whose `web` section makes a service of the image.
fn project(label: &str) -> (Project, Service) {
    let p = Project::new(label);
    let svc = Service::new(&p);
    p.cfg(&format!(
        "[web]\nservice={}\nports={}\nenv=webenv\n[webenv]\nGREETING=hello\n",
        svc.name,
        svc.ports()
    ));
    (p, svc)
}

fn deploy(p: &Project, extra: &[&str]) -> std::process::Output {
    p.cmd("deploy-image")
        .arg("web")
        .args(["--settle", "2"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_service_is_started_then_replaced_by_the_new_version() {
    let (p, svc) = project("deploy");
    let image = p.image("web");
    let v1 = svc.build(&p, &image, &web_dockerfile("one", ""));

    // No service yet: it is started.
    let out = deploy(&p, &[]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Not pulling:"), "{err}");
    assert!(err.contains(&format!(
        "docker run -d --name {} --restart unless-stopped --init -e GREETING=hello -p 127.0.0.1:{}:8080 {image}",
        svc.name, svc.port
    )), "{err}");
    assert!(!err.contains("rename"), "{err}");
    assert_eq!(svc.running_image(), v1);
    assert_eq!(svc.page(), "one\n");
    assert_eq!(
        svc.inspect("{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );
    assert_eq!(svc.inspect("{{.HostConfig.AutoRemove}}"), "false");
    assert!(
        svc.inspect("{{json .Config.Env}}")
            .contains("GREETING=hello")
    );

    // The plan names every step, and changes nothing.
    let plan = p
        .cmd("deploy-image")
        .args(["web", "--dry-run"])
        .output()
        .unwrap();
    let plan = text(&plan.stdout);
    let previous = format!("{}-previous", svc.name);
    for step in [
        format!("docker rename {} {previous}", svc.name),
        format!("docker stop {previous}"),
        format!("docker rm -v {previous}"),
    ] {
        assert!(plan.contains(&step), "{step}\n{plan}");
    }
    assert_eq!(svc.running_image(), v1);

    // A new version (with a HEALTHCHECK that passes) replaces it.
    let check =
        "HEALTHCHECK --interval=1s --timeout=2s CMD wget -q -O /dev/null http://127.0.0.1:8080/";
    let v2 = svc.build(&p, &image, &web_dockerfile("two", check));
    assert_ne!(v1, v2);
    let out = deploy(&p, &[]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("docker rename {} {previous}", svc.name)),
        "{err}"
    );
    assert!(err.contains(&format!("docker stop {previous}")), "{err}");
    assert!(err.contains("HEALTHCHECK report healthy"), "{err}");
    assert!(err.contains(&format!("docker rm -v {previous}")), "{err}");
    assert!(err.contains("replaced: image"), "{err}");
    assert_eq!(svc.running_image(), v2);
    assert_eq!(svc.inspect("{{.State.Health.Status}}"), "healthy");
    assert_eq!(svc.page(), "two\n");
    assert_eq!(
        svc.containers(),
        [svc.name.clone()],
        "the old one is removed"
    );

    // --if-changed: the service already runs this image, nothing is touched.
    let started = svc.inspect("{{.State.StartedAt}}");
    let out = deploy(&p, &["--if-changed"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nothing to do"));
    assert_eq!(svc.inspect("{{.State.StartedAt}}"), started);
}

#[test]
fn a_version_that_exits_is_rolled_back() {
    let (p, svc) = project("rollback");
    let image = p.image("web");
    let v1 = svc.build(&p, &image, &web_dockerfile("good", ""));
    assert!(deploy(&p, &[]).status.success());
    let first_id = svc.inspect("{{.Id}}");

    // The bad version says something, then exits after 1 s.
    let cmd =
        r#"CMD ["sh", "-c", "echo bad version starting; sleep 1; echo giving up >&2; exit 3"]"#;
    svc.build(&p, &image, &web_dockerfile("bad", cmd));
    let out = p
        .cmd("deploy-image")
        .args(["web", "--settle", "3"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("deploy of web failed"), "{err}");
    assert!(err.contains("exited with code 3"), "{err}");
    assert!(err.contains("rolled back: the previous container"), "{err}");
    assert!(err.contains("| bad version starting"), "{err}");
    assert!(err.contains("| giving up"), "{err}");
    assert!(
        err.contains(&format!("docker rename {0}-previous {0}", svc.name)),
        "{err}"
    );
    // The previous container itself runs again, with the previous image.
    assert_eq!(svc.inspect("{{.Id}}"), first_id);
    assert_eq!(svc.running_image(), v1);
    assert_eq!(svc.page(), "good\n");
    assert_eq!(svc.containers(), [svc.name.clone()]);
}

#[test]
fn an_unhealthy_version_is_rolled_back() {
    let (p, svc) = project("unhealthy");
    let image = p.image("web");
    let v1 = svc.build(&p, &image, &web_dockerfile("healthy", ""));
    assert!(deploy(&p, &[]).status.success());

    svc.build(
        &p,
        &image,
        &web_dockerfile("sick", "HEALTHCHECK --interval=1s --retries=1 CMD false"),
    );
    let out = deploy(&p, &["--health-timeout", "20"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("reported unhealthy"), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(svc.running_image(), v1);
    assert_eq!(svc.page(), "healthy\n");
    assert_eq!(svc.containers(), [svc.name.clone()]);
}

#[test]
fn a_first_deploy_that_fails_leaves_nothing_behind() {
    let (p, svc) = project("firstfail");
    svc.build(
        &p,
        &p.image("web"),
        &web_dockerfile("x", "CMD [\"sh\", \"-c\", \"exit 5\"]"),
    );
    let out = deploy(&p, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("exited with code 5"), "{err}");
    assert!(err.contains("did not exist before"), "{err}");
    assert!(svc.containers().is_empty(), "{:?}", svc.containers());
}

#[test]
fn refusals_change_nothing() {
    let (p, svc) = project("deployerr");
    p.dockerfile("web", &web_dockerfile("x", ""));
    // Unknown image: the valid ones are listed.
    p.cmd("deploy-image")
        .arg("nope")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown image `nope`"))
        .stderr(predicate::str::contains("valid images: web"));
    // No service= in the section: how to set it.
    p.file("docker/dockerutils.cfg", "[web]\nports=-p 80:80\n");
    p.cmd("deploy-image")
        .arg("web")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("[web] has no service="))
        .stderr(predicate::str::contains(
            "add `service=NAME` to the [web] section",
        ));
    // The image is not there (a project image is not pulled).
    p.cfg(&format!("[web]\nservice={}\n", svc.name));
    p.cmd("deploy-image")
        .arg("web")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not in the local engine"));
    // A registry that does not answer: the pull fails, nothing changes.
    p.cfg(&format!(
        "[web]\nservice={}\nname=127.0.0.1:1/nothing/here\nprefix=False\ntag=v1\n",
        svc.name
    ));
    p.cmd("deploy-image")
        .arg("web")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "docker pull 127.0.0.1:1/nothing/here:v1",
        ))
        .stderr(predicate::str::contains("nothing was changed"))
        .stderr(predicate::str::contains("--no-pull"));
    assert!(svc.containers().is_empty());
}

#[test]
fn a_leftover_previous_container_is_not_overwritten() {
    let (p, svc) = project("leftover");
    let image = p.image("web");
    svc.build(&p, &image, &web_dockerfile("one", ""));
    assert!(deploy(&p, &[]).status.success());
    // A deploy killed midway leaves NAME-previous: a person decides which one runs.
    let previous = format!("{}-previous", svc.name);
    let made = std::process::Command::new("docker")
        .args(["create", "--name", &previous, &image])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    p.cmd("deploy-image")
        .args(["web", "--settle", "1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "a container {previous} exists"
        )))
        .stderr(predicate::str::contains(format!("docker rm {previous}")));
    assert_eq!(svc.containers(), [svc.name.clone(), previous]);
}

/// A directory whose `docker` runs the real one, except that once `docker run` has been
/// called (the new container started), every `inspect` first runs `on_inspect` (shell).
fn docker_wrapper(on_inspect: &str) -> tempfile::TempDir {
    let real = std::process::Command::new("sh")
        .args(["-c", "command -v docker"])
        .output()
        .unwrap();
    let real = text(&real.stdout).trim().to_string();
    assert!(!real.is_empty(), "no docker on PATH");
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("started");
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in run) touch '{mark}';; esac\n\
         case \" $* \" in *' inspect '*) if [ -e '{mark}' ]; then {on_inspect}; fi;; esac\n\
         exec '{real}' \"$@\"\n",
        mark = mark.display()
    );
    let path = dir.path().join("docker");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn path_with(dir: &std::path::Path) -> String {
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap())
}

#[test]
fn a_hung_docker_fails_the_deploy_within_the_bound_and_rolls_back() {
    let (p, svc) = project("hung");
    let image = p.image("web");
    let v1 = svc.build(&p, &image, &web_dockerfile("one", ""));
    assert!(deploy(&p, &[]).status.success());
    svc.build(&p, &image, &web_dockerfile("two", ""));
    // The new container's inspects never answer.
    let wrapper = docker_wrapper("exec sleep 600");
    let out = p
        .cmd("deploy-image")
        .args(["web", "--settle", "20"])
        .env("PATH", path_with(wrapper.path()))
        .env("DOCKERUTILS_DOCKER_TIMEOUT", "2")
        // A hang check, not a timing assertion: unbounded, it would wait 600 s.
        .timeout(std::time::Duration::from_secs(90))
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("docker did not answer within 2 s"), "{err}");
    assert!(err.contains("rolled back: the previous container"), "{err}");
    assert_eq!(svc.running_image(), v1);
    assert_eq!(svc.containers(), [svc.name.clone()]);
}

#[test]
fn ctrl_c_during_the_watch_rolls_back_without_failing_an_inspect() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let (p, svc) = project("ctrlc");
    let image = p.image("web");
    let v1 = svc.build(&p, &image, &web_dockerfile("one", ""));
    assert!(deploy(&p, &[]).status.success());
    svc.build(&p, &image, &web_dockerfile("two", ""));
    // Slow inspects: the Ctrl-C lands while one runs.
    let wrapper = docker_wrapper("sleep 1");
    let mut cmd = std::process::Command::new(common::bin_dir().join("deploy-image"));
    common::with_clean_env(&mut cmd);
    let mut child = cmd
        .args(["web", "--settle", "30"])
        .current_dir(&p.root)
        .env("PATH", path_with(wrapper.path()))
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        // A job of its own, as a shell runs it: SIGINT to its group is a terminal's Ctrl-C.
        .process_group(0)
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("Watching") {
            break;
        }
    }
    assert!(seen.contains("Watching"), "{seen}");
    // Into the next inspect (each takes a second here).
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: kill(2) of the process group of the child we started.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let reader = std::thread::spawn(move || {
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        rest.join("\n")
    });
    let code = common::wait_exit(&mut child, std::time::Duration::from_secs(60), || {});
    seen.push_str(&reader.join().unwrap());
    assert_eq!(code, Some(130), "{seen}");
    assert!(!seen.contains("could not be inspected"), "{seen}");
    assert!(
        seen.contains("was not yet confirmed when the deploy was interrupted"),
        "{seen}"
    );
    assert!(
        seen.contains("rolled back: the previous container"),
        "{seen}"
    );
    assert_eq!(svc.running_image(), v1);
    assert_eq!(svc.containers(), [svc.name.clone()]);
}
