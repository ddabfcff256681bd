//! serve-hooks as users run it: a child process on a free 127.0.0.1 port in a real project,
//! driven over HTTP (Docker Hub webhook payloads, and a real registry's notifications),
//! deploying a busybox HTTP service on the real engine.

mod common;
mod service;

use common::{Project, USER, bin_dir, free_port, wait_exit};
use serde_json::{Value, json};
use service::{Response, Service, request, text, web_dockerfile};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "test-hook-key-0123456789abcdef";

/// A child process, killed when dropped.
struct Helper(std::process::Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// serve-hooks running in the project, its log in a file; killed when dropped.
struct Server {
    port: u16,
    log: PathBuf,
    proc: Helper,
    _dir: tempfile::TempDir,
}

fn wait_listening(port: u16, child: &mut std::process::Child, log: &std::path::Path) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "exited ({status}) before listening on {port}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn serve(p: &Project, port: u16, env: &[(&str, &str)]) -> Server {
    serve_with(p, port, env, &["--settle", "2"])
}

impl Server {
    fn post(&self, target: &str, headers: &[(&str, &str)], body: &Value) -> Response {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        request(self.port, "POST", target, &all, body.to_string().as_bytes())
    }

    /// A hook with the key in the header.
    fn hook(&self, body: &Value) -> Response {
        self.post("/hooks", &[("X-Api-Key", KEY)], body)
    }

    fn status(&self) -> Value {
        let r = request(self.port, "GET", "/status", &[("X-Api-Key", KEY)], b"");
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }

    /// Waits until `image` has `n` finished deploys and none running; its status.
    fn wait_deploys(&self, image: &str, n: u64) -> Value {
        let start = Instant::now();
        loop {
            let s = self.status()["images"][image].clone();
            if s["deploys"].as_u64() >= Some(n) && s["deploying"] == false {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "{n} deploys of {image} did not finish: {s}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn hub(repo: &str, tag: &str) -> Value {
    json!({
        "callback_url": "https://registry.hub.docker.com/u/x/y/hook/1/",
        "push_data": {"pushed_at": 1417566161, "pusher": "trustedbuilder", "tag": tag},
        "repository": {"repo_name": repo, "name": "web", "namespace": "x", "status": "Active"}
    })
}

/// Debian's docker-registry on 127.0.0.1; with `notify`, it sends its notifications to
/// serve-hooks on that port with the key.
struct Registry {
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
    _proc: Helper,
}

fn registry(notify: Option<u16>) -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = format!(
        "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.path().join("data").display()
    );
    if let Some(hooks) = notify {
        config.push_str(&format!(
            "notifications:\n  endpoints:\n    - name: serve-hooks\n      url: http://127.0.0.1:{hooks}/hooks\n      headers:\n        X-Api-Key: [{KEY}]\n      timeout: 2s\n      threshold: 3\n      backoff: 1s\n      ignoredmediatypes:\n        - application/octet-stream\n"
        ));
    }
    let path = dir.path().join("config.yml");
    std::fs::write(&path, config).unwrap();
    let log = dir.path().join("registry.log");
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("docker-registry (Debian's; tests/run.sh installs it)");
    wait_listening(port, &mut child, &log);
    Registry {
        port,
        log,
        _dir: dir,
        _proc: Helper(child),
    }
}

fn docker(args: &[&str]) {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        text(&out.stderr)
    );
}

/// `p` with a `web` image `127.0.0.1:<registry>/<project>-web:latest`, deployed as a
/// service, listed for serve-hooks.
fn registry_project(p: Project, registry: u16) -> (Project, Service, String, String) {
    let svc = Service::new(&p);
    let repo = format!("{}-web", p.name);
    let reference = format!("127.0.0.1:{registry}/{repo}:latest");
    p.cfg(&format!(
        "[web]\nname=127.0.0.1:{registry}/{repo}\nprefix=False\ntag=latest\nservice={}\nports={}\n\
         [serve_hooks]\nimages=web\n",
        svc.name,
        svc.ports()
    ));
    svc.images.borrow_mut().push(reference.clone());
    (p, svc, repo, reference)
}

#[test]
fn a_docker_hub_hook_pulls_and_redeploys_only_with_the_key() {
    let reg = registry(None);
    // It deletes an image midway: no other test builds meanwhile.
    let (p, svc, repo, reference) = registry_project(Project::exclusive("hubhook"), reg.port);
    let v1 = svc.build(&p, &reference, &web_dockerfile("one", ""));
    docker(&["push", &reference]);
    let out = p
        .cmd("deploy-image")
        .args(["web", "--settle", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(svc.running_image(), v1);

    // v2 is pushed, and only the registry has it.
    let v2 = svc.build(&p, &reference, &web_dockerfile("two", ""));
    docker(&["push", &reference]);
    docker(&["rmi", &reference]);
    assert!(!common::image_exists(&reference));

    // The key from the cfg here (and a different DOCKERUTILS_HOOK_KEY would win over it).
    p.cfg(&format!(
        "{}api_key={KEY}\n",
        std::fs::read_to_string(p.root.join("docker/dockerutils.cfg")).unwrap()
    ));
    let server = serve(&p, free_port(), &[]);

    // A wrong or missing key: 401, nothing deployed.
    for (target, headers) in [
        (
            "/hooks",
            vec![("X-Api-Key", "test-hook-key-0123456789abcdeX")],
        ),
        ("/hooks?key=wrong", vec![]),
        ("/hooks", vec![]),
    ] {
        let r = server.post(target, &headers, &hub(&repo, "latest"));
        assert_eq!(r.status, 401, "{target}: {}", r.body);
    }
    let r = request(server.port, "GET", "/status", &[], b"");
    assert_eq!(r.status, 401);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.wait_deploys("web", 0)["deploys"], 0);
    assert_eq!(svc.running_image(), v1);

    // The key as ?key= (how Docker Hub sends it): 202 at once, the deploy in the background.
    let r = server.post(&format!("/hooks?key={KEY}"), &[], &hub(&repo, "latest"));
    assert_eq!(r.status, 202, "{}", r.body);
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["deploys"][0]["image"], "web");
    let done = server.wait_deploys("web", 1);
    assert_eq!(done["last"]["ok"], true, "{done}\n{}", server.log());
    assert_eq!(svc.running_image(), v2, "{}", server.log());
    assert_eq!(svc.page(), "two\n");
    assert_eq!(svc.containers(), [svc.name.clone()]);

    let log = server.log();
    assert!(log.contains(&format!("docker pull {reference}")), "{log}");
    assert!(
        log.contains("POST /hooks (missing or wrong API key) -> 401"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "POST /hooks docker-hub {repo}:latest: deploy web -> 202"
        )),
        "{log}"
    );
    assert!(!log.contains(KEY), "the key is in the log:\n{log}");
}

#[test]
fn refused_and_ignored_hooks() {
    let p = Project::new("hookerr");
    let svc = Service::new(&p);
    p.dockerfile("web", &web_dockerfile("x", ""));
    p.cfg(&format!(
        "[web]\nname=registry.example.com/team/web\nprefix=False\ntag=latest\nservice={}\n\
         [serve_hooks]\nimages=web\napi_key=not-this-one-but-the-environment-s\n",
        svc.name
    ));
    let server = serve(&p, free_port(), &[("DOCKERUTILS_HOOK_KEY", KEY)]);

    // The environment's key wins over the cfg's.
    let r = server.post(
        "/hooks",
        &[("X-Api-Key", "not-this-one-but-the-environment-s")],
        &hub("team/web", "latest"),
    );
    assert_eq!(r.status, 401);
    // Unknown image: 404, naming the repositories served.
    let r = server.hook(&hub("team/api", "latest"));
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("team/web"), "{}", r.body);
    // The image, another tag: ignored.
    let r = server.hook(&hub("team/web", "dev"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("ignored") && r.body.contains("the deployed tag is latest"));
    // A registry's notification of other repositories, or of pulls: 2xx (a registry
    // retries anything else forever).
    let r = server.hook(&json!({"events": [
        {"action": "push", "target": {"repository": "team/api", "tag": "latest"}},
        {"action": "pull", "target": {"repository": "team/web", "tag": "latest"}}
    ]}));
    assert_eq!(r.status, 200, "{}", r.body);
    // Too big: 413.
    let big = json!({"events": [], "padding": "x".repeat(70 * 1024)});
    let r = server.hook(&big);
    assert_eq!(r.status, 413, "{}", r.body);
    // Not JSON, or not a hook: 400; a tag that is no tag: 400.
    let r = request(
        server.port,
        "POST",
        "/hooks",
        &[("X-Api-Key", KEY)],
        b"{\"events\": [",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("malformed JSON"), "{}", r.body);
    assert_eq!(server.hook(&json!({"hello": "world"})).status, 400);
    assert_eq!(server.hook(&hub("team/web", "$(reboot)")).status, 400);

    // Nothing was deployed.
    let status = server.status();
    assert_eq!(status["images"]["web"]["deploys"], 0, "{status}");
    assert!(svc.containers().is_empty());
    let log = server.log();
    assert!(log.contains("-> 413") && log.contains("-> 404"), "{log}");
    assert!(!log.contains(KEY), "{log}");
}

#[test]
fn two_hooks_at_once_deploy_one_after_the_other() {
    let p = Project::new("twohooks");
    let svc = Service::new(&p);
    let image = p.image("web");
    p.cfg(&format!(
        "[web]\nservice={}\nports={}\n[serve_hooks]\nimages=web\n",
        svc.name,
        svc.ports()
    ));
    let v1 = svc.build(&p, &image, &web_dockerfile("one", ""));
    assert!(
        p.cmd("deploy-image")
            .args(["web", "--settle", "1"])
            .output()
            .unwrap()
            .status
            .success()
    );
    assert_eq!(svc.running_image(), v1);
    let v2 = svc.build(&p, &image, &web_dockerfile("two", ""));
    let server = serve(&p, free_port(), &[("DOCKERUTILS_HOOK_KEY", KEY)]);

    // A project image is deployed from the local engine (its name names no registry).
    let repo = format!("{}-web", p.name);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let hooks: Vec<_> = (0..2)
        .map(|_| {
            let barrier = barrier.clone();
            let port = server.port;
            let body = hub(&repo, USER).to_string();
            std::thread::spawn(move || {
                barrier.wait();
                request(
                    port,
                    "POST",
                    "/hooks",
                    &[("X-Api-Key", KEY), ("Content-Type", "application/json")],
                    body.as_bytes(),
                )
            })
        })
        .collect();
    let answers: Vec<Response> = hooks.into_iter().map(|h| h.join().unwrap()).collect();
    let mut queued = vec![];
    for r in &answers {
        assert_eq!(r.status, 202, "{}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        queued.push(v["deploys"][0]["queued"].as_bool().unwrap());
    }
    queued.sort();
    assert_eq!(
        queued,
        [false, true],
        "one deploys, the other waits its turn"
    );

    let done = server.wait_deploys("web", 2);
    let log = server.log();
    assert_eq!(done["failed"], 0, "{done}\n{log}");
    assert_eq!(done["deploys"], 2, "{done}");
    // Serialized: each deploy finished before the next started.
    let steps: Vec<&str> = log
        .lines()
        .filter_map(|l| {
            if l.contains("deploy web: start") {
                Some("start")
            } else if l.contains("deploy web: done") {
                Some("done")
            } else {
                None
            }
        })
        .collect();
    assert_eq!(steps, ["start", "done", "start", "done"], "{log}");
    assert!(log.contains("replaced: image"), "{log}");
    assert!(
        log.contains("nothing to do"),
        "the second found v2 running:\n{log}"
    );
    // The service runs once, the new version.
    assert_eq!(svc.containers(), [svc.name.clone()]);
    assert_eq!(svc.running_image(), v2);
    assert_eq!(svc.page(), "two\n");
}

#[test]
fn a_registry_push_notifies_and_the_service_is_redeployed() {
    let hooks_port = free_port();
    let reg = registry(Some(hooks_port));
    let (p, svc, repo, reference) = registry_project(Project::new("notify"), reg.port);
    let v1 = svc.build(&p, &reference, &web_dockerfile("one", ""));
    let server = serve(&p, hooks_port, &[("DOCKERUTILS_HOOK_KEY", KEY)]);

    // The first push starts the service; the second replaces it.
    docker(&["push", &reference]);
    let first = server.wait_deploys("web", 1);
    assert_eq!(first["last"]["ok"], true, "{first}\n{}", server.log());
    assert_eq!(svc.running_image(), v1, "{}", server.log());
    assert_eq!(svc.page(), "one\n");

    let v2 = svc.build(&p, &reference, &web_dockerfile("two", ""));
    docker(&["push", &reference]);
    let start = Instant::now();
    while svc.running_image() != v2 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "v2 was not deployed:\n{}\nregistry:\n{}",
            server.log(),
            std::fs::read_to_string(&reg.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = server.wait_deploys("web", 2);
    assert_eq!(status["failed"], 0, "{status}\n{}", server.log());
    assert_eq!(svc.page(), "two\n");
    assert_eq!(svc.containers(), [svc.name.clone()]);
    let log = server.log();
    assert!(
        log.contains(&format!("registry {repo}:latest: deploy web -> 202")),
        "{log}"
    );
}

#[test]
fn sigterm_lets_the_running_deploy_finish() {
    let p = Project::new("hookstop");
    let svc = Service::new(&p);
    let image = p.image("web");
    p.cfg(&format!(
        "[web]\nservice={}\nports={}\n[serve_hooks]\nimages=web\n",
        svc.name,
        svc.ports()
    ));
    let v1 = svc.build(&p, &image, &web_dockerfile("one", ""));
    let mut server = serve(&p, free_port(), &[("DOCKERUTILS_HOOK_KEY", KEY)]);
    let repo = format!("{}-web", p.name);
    assert_eq!(server.hook(&hub(&repo, USER)).status, 202);
    // The deploy is watching the new container (settle 2 s) when SIGTERM comes.
    let start = Instant::now();
    while !server.log().contains("Watching") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &server.proc.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let code = wait_exit(&mut server.proc.0, Duration::from_secs(60), || {});
    let log = server.log();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(
        log.contains("waiting for the deploy of web to finish"),
        "{log}"
    );
    let done = log.find("deploy web: done").expect(&log);
    assert!(log.trim_end().ends_with(" stopped"), "{log}");
    assert!(done < log.rfind(" stopped").unwrap(), "{log}");
    assert_eq!(svc.running_image(), v1);
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
}

#[test]
fn a_server_without_a_key_or_images_does_not_start() {
    let p = Project::new("hooknokey");
    p.dockerfile("web", &web_dockerfile("x", ""));
    p.cfg("[web]\nservice=x-web\n[serve_hooks]\nimages=web\n");
    let out = p.cmd("serve-hooks").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("needs an API key"),
        "{}",
        text(&out.stderr)
    );
    let out = p
        .cmd("serve-hooks")
        .env("DOCKERUTILS_HOOK_KEY", "short")
        .output()
        .unwrap();
    assert!(
        text(&out.stderr).contains("shorter than 16"),
        "{}",
        text(&out.stderr)
    );
    p.cfg("[web]\nports=-p 80:80\n[serve_hooks]\nimages=web\n");
    let out = p
        .cmd("serve-hooks")
        .env("DOCKERUTILS_HOOK_KEY", KEY)
        .output()
        .unwrap();
    assert!(
        text(&out.stderr).contains("[web] has no service="),
        "{}",
        text(&out.stderr)
    );
    p.cfg("[web]\nservice=x-web\n");
    let out = p
        .cmd("serve-hooks")
        .env("DOCKERUTILS_HOOK_KEY", KEY)
        .output()
        .unwrap();
    assert!(
        text(&out.stderr).contains("no image to deploy"),
        "{}",
        text(&out.stderr)
    );
    // --dry-run: what it would serve.
    p.cfg("[web]\nservice=x-web\n[serve_hooks]\nimages=web\n");
    let out = p
        .cmd("serve-hooks")
        .args(["--dry-run", "--listen", "127.0.0.1:9999"])
        .env("DOCKERUTILS_HOOK_KEY", KEY)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("http://127.0.0.1:9999/hooks"), "{shown}");
    assert!(
        shown.contains(&format!(
            "pushes of {0}-web:{USER} deploy {0}-web:{USER} as container x-web",
            p.name
        )),
        "{shown}"
    );
}

/// serve-hooks with extra flags.
fn serve_with(p: &Project, port: u16, env: &[(&str, &str)], flags: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve-hooks.log");
    let mut cmd = Command::new(bin_dir().join("serve-hooks"));
    cmd.args(["--listen", &format!("127.0.0.1:{port}")])
        .args(flags)
        .current_dir(&p.root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    common::with_clean_env(&mut cmd);
    cmd.env_remove("DOCKERUTILS_HOOK_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    wait_listening(port, &mut child, &log);
    Server {
        port,
        log,
        proc: Helper(child),
        _dir: dir,
    }
}

/// A client that sends half a request header, then nothing.
fn slow_client(port: u16) -> std::net::TcpStream {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"POST /hooks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-")
        .unwrap();
    s
}

/// Has the server closed this connection (within `limit`)?
fn closed_by_server(s: &mut std::net::TcpStream, limit: Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // hyper may answer 408 before it closes: read on to the end.
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// A bounded slow-client load on 127.0.0.1 (slowloris: half a header each, then
/// silence): /status still answers while it runs, a connection over the cap is answered
/// 503 at once, and every slow connection is closed by the header timeout, after which
/// the server answers as before. Before, such connections stayed open indefinitely.
#[test]
fn slow_clients_are_cut_off_and_over_the_cap_get_503() {
    let p = Project::new("slowloris");
    p.dockerfile("web", common::BUSYBOX_DOCKERFILE)
        .cfg("[web]\nservice=du-slowloris-web\n[serve_hooks]\nimages=web\n");
    let port = free_port();
    let server = serve_with(
        &p,
        port,
        &[("DOCKERUTILS_HOOK_KEY", KEY)],
        &["--header-timeout", "5", "--max-connections", "40"],
    );
    let started = Instant::now();
    let mut slow: Vec<_> = (0..30).map(|_| slow_client(port)).collect();
    assert_eq!(server.status()["images"]["web"]["deploys"], 0);
    slow.extend((0..10).map(|_| slow_client(port)));
    // Let the last status connection's slot free and the slow ones be accepted.
    std::thread::sleep(Duration::from_millis(300));
    let over = request(port, "GET", "/status", &[("X-Api-Key", KEY)], b"");
    assert_eq!(
        over.status,
        503,
        "{} ({:?} after the load started)",
        over.body,
        started.elapsed()
    );
    for (i, s) in slow.iter_mut().enumerate() {
        assert!(
            closed_by_server(s, Duration::from_secs(10)),
            "slow connection {i} still open {:?} after it started\n{}",
            started.elapsed(),
            server.log()
        );
    }
    // The slots are free again.
    assert_eq!(server.status()["images"]["web"]["deploys"], 0);
    assert!(
        server.log().contains("refused: 40 connections open -> 503"),
        "{}",
        server.log()
    );
}
