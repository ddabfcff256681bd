//! run-notebook on the real engine with a stand-in notebook image (busybox's httpd on 8888,
//! printing a Jupyter-style URL with a token: nothing can be pulled here), genversion and
//! `{version}`, and nb-dock against the SSH test dock of tests/dock-env.sh with a fake
//! `jupyter` on the dock user's PATH.

mod common;

use common::{BUSYBOX_DOCKERFILE, Project, USER, bin_dir, free_port, require_engine, wait_exit};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// GET a path on 127.0.0.1:port; the body, or None when nothing answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// A stand-in notebook server: says a Jupyter-style URL with a token, then serves DIR
/// on 8888 (after a moment, as a real server takes its time).
fn standin(dir: &str) -> String {
    format!(
        "{BUSYBOX_DOCKERFILE}CMD [\"sh\", \"-c\", \"echo '    http://127.0.0.1:8888/lab?token=tok'$((6*7)); mkdir -p {dir}; sleep 1; exec httpd -f -p 8888 -h {dir}\"]\n"
    )
}

/// Reads the child's stderr until a line contains `needle`; returns that line.
fn wait_for_line(child: &mut Child, needle: &'static str) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            // Keep reading after the line: a closed pipe would fail the child's next write.
            if line.contains(needle) {
                let _ = tx.send(Ok(line));
            }
        }
        let _ = tx.send(Err(seen));
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(line)) => line,
        Ok(Err(seen)) => panic!("never said {needle:?}; stderr:\n{seen}"),
        Err(_) => panic!("never said {needle:?} within 60 s"),
    }
}

/// Where `docker port` says the container publishes 8888 (`DOCKER_HOST` = `engine`).
fn published_8888(container: &str, engine: Option<&str>) -> String {
    let mut cmd = Command::new("docker");
    if let Some(engine) = engine {
        cmd.env("DOCKER_HOST", engine);
    }
    let out = cmd.args(["port", container, "8888"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The name of the running container of `image`.
fn container_of(image: &str, engine: Option<&str>) -> String {
    let mut cmd = Command::new("docker");
    if let Some(engine) = engine {
        cmd.env("DOCKER_HOST", engine);
    }
    let out = cmd
        .args(["ps", "--filter", &format!("ancestor={image}")])
        .args(["--format", "{{.Names}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no container of {image} runs"))
        .to_string()
}

fn stop_containers(prefix: &str) {
    stop_matching(&format!("name={prefix}"));
}

fn stop_containers_of(image: &str) {
    stop_matching(&format!("ancestor={image}"));
}

fn stop_matching(filter: &str) {
    let out = Command::new("docker")
        .args(["ps", "-q", "--filter", filter])
        .output()
        .unwrap();
    for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let _ = Command::new("docker")
            .args(["stop", "-t", "1", id])
            .output();
    }
}

#[test]
fn run_notebook_builds_the_projects_notebook_image_and_prints_the_url_once_it_answers() {
    require_engine();
    let port = free_port();
    let project = Project::new("nbown");
    project
        .dockerfile("notebook", &standin("/www"))
        // As the `notebook` template writes it: no address.
        .cfg(&format!("[notebook]\nports=-p {port}:8888\n"));
    let mut cmd = Command::new(bin_dir().join("run-notebook"));
    common::with_clean_env(&mut cmd);
    let mut child = cmd
        .current_dir(&project.root)
        .arg("--no-browser")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = wait_for_line(&mut child, "Jupyter is ready");
    let url = format!("http://127.0.0.1:{port}/lab?token=tok42");
    assert!(line.ends_with(&url), "{line}");
    // It said so because the server answers.
    assert!(http_get(port, "/").is_some(), "the server answers at {url}");
    assert!(
        common::image_exists(&project.image("notebook")),
        "built first"
    );
    // Published on the loopback only, though the cfg names no address.
    let name = container_of(&project.image("notebook"), None);
    assert_eq!(published_8888(&name, None), format!("127.0.0.1:{port}"));
    stop_containers_of(&project.image("notebook"));
    let code = wait_exit(&mut child, Duration::from_secs(30), || {});
    assert!(code.is_some(), "run-notebook ends with its container");
}

#[test]
fn run_notebook_runs_the_default_image_on_the_current_directory() {
    require_engine();
    let image_project = Project::new("nbstandin");
    image_project.dockerfile("srv", &standin("/home/jovyan/project"));
    let out = image_project
        .cmd("build-image")
        .arg("srv")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("marker.txt"), "from the host\n").unwrap();
    std::fs::create_dir(work.path().join(".aws")).unwrap();
    std::fs::write(work.path().join(".aws/credentials"), "[default]\n").unwrap();
    let port = free_port();
    let mut cmd = Command::new(bin_dir().join("run-notebook"));
    cmd.current_dir(work.path())
        .env("USER", USER)
        .env("LOGNAME", USER)
        .env("HOME", work.path())
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_IP")
        .env("DOCKERUTILS_NOTEBOOK_IMAGE", image_project.image("srv"))
        .env("DOCKER_DS_DONT_PULL", "1")
        .env("DOCKER_DS_DIFFS", "1")
        .args(["--port", &port.to_string(), "--no-browser"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let line = wait_for_line(&mut child, "Jupyter is ready");
    assert!(
        line.ends_with(&format!("http://127.0.0.1:{port}/lab?token=tok42")),
        "{line}"
    );
    assert_eq!(
        http_get(port, "/marker.txt").as_deref(),
        Some("from the host\n")
    );
    let out = Command::new("docker")
        .args([
            "ps",
            "--filter",
            &format!("ancestor={}", image_project.image("srv")),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    let name = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    let env = Command::new("docker")
        .args(["inspect", "--format", "{{json .Config.Env}}", &name])
        .output()
        .unwrap();
    let env = String::from_utf8_lossy(&env.stdout);
    assert!(
        env.contains("DOCKER_DS_DIFFS=1") && env.contains("NOTEBOOK_MODE=lab"),
        "{env}"
    );
    assert_eq!(published_8888(&name, None), format!("127.0.0.1:{port}"));
    // ~/.aws is there to read, not to write.
    let exec = |script: &str| {
        Command::new("docker")
            .args(["exec", &name, "sh", "-c", script])
            .output()
            .unwrap()
    };
    let read = exec("cat /home/jovyan/.aws/credentials");
    assert_eq!(String::from_utf8_lossy(&read.stdout), "[default]\n");
    let write = exec("echo planted >> /home/jovyan/.aws/credentials");
    assert!(!write.status.success(), "a write to ~/.aws succeeded");
    assert_eq!(
        std::fs::read_to_string(work.path().join(".aws/credentials")).unwrap(),
        "[default]\n"
    );
    stop_containers(&name);
    assert!(wait_exit(&mut child, Duration::from_secs(30), || {}).is_some());
}

#[test]
fn build_args_get_the_projects_version_and_genversion_needs_versioneer() {
    require_engine();
    let project = Project::new("version");
    project
        .dockerfile(
            "app",
            &format!("{BUSYBOX_DOCKERFILE}ARG VERSION\nRUN echo \"$VERSION\" > /version\n"),
        )
        .cfg("[app]\nbuild_args=--build-arg VERSION={version}\n");
    // Outside git: unknown.
    let out = project
        .cmd("build-image")
        .args(["app", "--dry-run"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--build-arg VERSION=unknown"));
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&project.root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "first"]);
    git(&["tag", "v1.2.3"]);
    let out = project.cmd("build-image").arg("app").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("docker")
        .args(["run", "--rm", &project.image("app"), "cat", "/version"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "v1.2.3\n",
        "sealed into the image"
    );

    let out = project.cmd("genversion").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("does not use versioneer"));
    assert!(!project.root.join("_version.py.bld").exists());
}

/// The SSH test dock, as tests/docks.rs uses it.
struct Dock {
    ip: String,
    user: String,
    home: tempfile::TempDir,
    remote_home: PathBuf,
}

fn dock() -> Dock {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with `bash tests/run.sh`, which starts the test dock")
        })
    };
    let user = var("DOCKERUTILS_TEST_DOCK_USER");
    let passwd = Command::new("getent")
        .args(["passwd", &user])
        .output()
        .unwrap();
    let remote_home = String::from_utf8_lossy(&passwd.stdout)
        .split(':')
        .nth(5)
        .expect("the dock user's home")
        .to_string();
    Dock {
        ip: var("DOCKERUTILS_TEST_DOCK_IP"),
        user,
        home: tempfile::tempdir().unwrap(),
        remote_home: remote_home.into(),
    }
}

impl Dock {
    fn cmd(&self, program: &str) -> Command {
        let mut cmd = Command::new(bin_dir().join(program));
        cmd.env("HOME", self.home.path())
            .env("USER", USER)
            .env("LOGNAME", USER)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_IP")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null());
        cmd
    }

    /// A fake `jupyter` in ~/bin on the dock (on a login shell's PATH via Debian's
    /// ~/.profile): prints a URL with a token and serves a page on --port.
    fn fake_jupyter(&self, www: &Path) {
        let bin = self.remote_home.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let script = format!(
            "#!/bin/sh\nport=8888\nfor a in \"$@\"; do case $a in --port=*) port=${{a#--port=}};; esac; done\n\
             echo \"[I ServerApp] http://127.0.0.1:$port/lab?token=faketoken42\"\n\
             exec /bin/busybox httpd -f -p 127.0.0.1:$port -h {}\n",
            www.display()
        );
        std::fs::write(bin.join("jupyter"), script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("jupyter"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let _ = Command::new("chown")
            .args(["-R", &self.user])
            .arg(&bin)
            .output();
    }

    fn remove_fake_jupyter(&self) {
        let _ = std::fs::remove_file(self.remote_home.join("bin/jupyter"));
    }
}

#[test]
fn nb_dock_starts_jupyter_on_the_dock_behind_a_tunnel_and_stops_it() {
    let d = dock();
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "lab page\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(www.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d.fake_jupyter(www.path());
    let out = d
        .cmd("register-dock")
        .args([&d.ip, "nbdock", "-u", &d.user])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (local, remote) = (free_port(), free_port());
    let out = d
        .cmd("nb-dock")
        .args([
            "nbdock",
            "--port",
            &local.to_string(),
            "--remote-port",
            &remote.to_string(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "Jupyter Lab on nbdock: http://127.0.0.1:{local}/lab?token=faketoken42"
        )),
        "{stdout}"
    );
    // Through the tunnel: the local port answers with the dock's server.
    assert_eq!(http_get(local, "/").as_deref(), Some("lab page\n"));
    let record =
        std::fs::read_to_string(d.home.path().join(".docker").join(&d.ip).join("notebook"))
            .unwrap();
    // The tunnel is a control master of its own (not the shared one, nor the shim's):
    // it answers on the recorded socket, and it forwards the local port.
    let ctl = record
        .lines()
        .find_map(|l| l.strip_prefix("ctl="))
        .unwrap_or_else(|| panic!("no ctl= in {record}"))
        .to_string();
    assert!(!ctl.contains("/cm/"), "not the shared master: {ctl}");
    let check = Command::new("ssh")
        .args(["-o", &format!("ControlPath={ctl}"), "-O", "check", "x"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // Again: it says where it already runs.
    let out = d.cmd("nb-dock").arg("nbdock").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!(
        "already runs on nbdock through a tunnel: http://127.0.0.1:{local}/lab?token=faketoken42"
    )));

    let out = d
        .cmd("nb-dock")
        .args(["nbdock", "--stop"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        stdout.contains("closed the tunnel") && stdout.contains("stopped Jupyter"),
        "{stdout}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(http_get(local, "/").is_none(), "tunnel closed");
    assert!(!Path::new(&ctl).exists(), "its master ended: {ctl}");
    assert!(http_get(remote, "/").is_none(), "jupyter stopped");

    // No jupyter on the dock: a clear error, soon, and no tunnel left behind.
    d.remove_fake_jupyter();
    let out = d
        .cmd("nb-dock")
        .args([
            "nbdock",
            "--port",
            &local.to_string(),
            "--remote-port",
            &remote.to_string(),
            "--timeout",
            "30",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Jupyter stopped on nbdock") && err.contains("jupyter"),
        "{err}"
    );
    assert!(err.contains("is Jupyter installed on the dock"), "{err}");
    assert!(
        !d.home
            .path()
            .join(".docker")
            .join(&d.ip)
            .join("notebook")
            .exists()
    );
    assert!(http_get(local, "/").is_none());
    let _ = d.cmd("unregister-dock").arg("nbdock").output();
}

#[test]
fn run_notebook_when_docked_syncs_up_runs_on_the_dock_and_syncs_down() {
    let d = dock();
    let engine = std::env::var("DOCKERUTILS_TEST_DOCK_ENGINE").unwrap();
    let ws = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(ws.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = d
        .cmd("register-dock")
        .args([&d.ip, "nbrun", "-u", &d.user, "--workspace"])
        .arg(ws.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    // The stand-in image, built on the dock's engine.
    let image_project = Project::new("nbdocked");
    image_project.dockerfile("srv", &standin("/home/jovyan/project"));
    let image = image_project.image("srv");
    let out = Command::new("docker")
        .env("DOCKER_HOST", &engine)
        .args([
            "build",
            "-q",
            "-t",
            &image,
            "-f",
            "docker/srv/Dockerfile",
            ".",
        ])
        .current_dir(&image_project.root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let work = tempfile::tempdir().unwrap();
    let here = work.path().join("analysis");
    std::fs::create_dir_all(&here).unwrap();
    std::fs::write(here.join("marker.txt"), "synced up\n").unwrap();
    // The test dock shares this machine's network: the tunnel's local port and the
    // container's port on the dock's loopback must differ.
    let port = free_port();
    let remote_port = std::iter::repeat_with(free_port)
        .find(|p| *p != port)
        .unwrap();
    // Docked as a user docks: `source dock` (here its eval form) in a shell.
    let dry = format!(
        "eval \"$(dock-env nbrun)\" && exec run-notebook --dry-run --port {port} --remote-port {remote_port}"
    );
    let base = d.cmd("run-notebook");
    let envs: Vec<_> = base
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect();
    let shell = |line: &str| {
        let mut cmd = Command::new("bash");
        cmd.args(["-c", line])
            .envs(envs.clone())
            .env(
                "PATH",
                format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap()),
            )
            .env("DOCKERUTILS_NOTEBOOK_IMAGE", &image)
            .env("DOCKER_DS_DONT_PULL", "1")
            .env("DOCKERUTILS_DISABLE_PROMPT", "1")
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_IP")
            .current_dir(&here)
            .stdin(Stdio::null());
        cmd
    };
    let out = shell(&dry).output().unwrap();
    let plan = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{plan}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        plan.contains(&format!(
            "-N -L 127.0.0.1:{port}:127.0.0.1:{remote_port} {}@{} &",
            d.user, d.ip
        )),
        "the tunnel is a step: {plan}"
    );
    assert!(
        plan.contains(&format!("-p 127.0.0.1:{remote_port}:8888")),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("http://127.0.0.1:{port}/lab?token=")),
        "{plan}"
    );
    assert!(!plan.contains(&format!("http://{}", d.ip)), "{plan}");

    let line = format!(
        "eval \"$(dock-env nbrun)\" && exec run-notebook --no-browser --port {port} --remote-port {remote_port}"
    );
    // The dock test's user environment (its HOME holds the registration), in bash, in a
    // process group of its own (a terminal's job) for the Ctrl-C below.
    use std::os::unix::process::CommandExt;
    let mut child = shell(&line)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = wait_for_line(&mut child, "Jupyter is ready");
    assert!(
        ready.ends_with(&format!("http://127.0.0.1:{port}/lab?token=tok42")),
        "through the tunnel: {ready}"
    );
    // The tunnel: a control master of its own, on a socket named by the local port.
    let master = Command::new("pgrep")
        .args(["-f", &format!("tunnel-[0-9]*-{port}.sock")])
        .output()
        .unwrap();
    assert!(!master.stdout.is_empty(), "the tunnel's master runs");
    // On the dock, the notebook is on its loopback only; here, the tunnel serves it.
    let name = container_of(&image, Some(&engine));
    assert_eq!(
        published_8888(&name, Some(&engine)),
        format!("127.0.0.1:{remote_port}")
    );
    assert!(
        TcpStream::connect((d.ip.as_str(), remote_port)).is_err(),
        "the dock's address does not expose the notebook"
    );
    assert_eq!(
        http_get(port, "/marker.txt").as_deref(),
        Some("synced up\n")
    );
    let remote = ws.path().join(USER).join("code").join("analysis");
    assert_eq!(
        std::fs::read_to_string(remote.join("marker.txt")).unwrap(),
        "synced up\n"
    );
    // A notebook saved on the dock comes back when the server ends: here on Ctrl-C (SIGINT
    // to the job's process group, as a terminal sends it).
    std::fs::write(remote.join("result.ipynb"), "{}\n").unwrap();
    // SAFETY: kill(2) of the process group of the child we started.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let ended = wait_exit(&mut child, Duration::from_secs(60), || {
        let _ = Command::new("docker")
            .env("DOCKER_HOST", &engine)
            .args(["rm", "-f", &name])
            .output();
    });
    assert!(ended.is_some(), "run-notebook ends on Ctrl-C");
    assert_eq!(
        std::fs::read_to_string(here.join("result.ipynb")).unwrap(),
        "{}\n"
    );
    assert!(http_get(port, "/").is_none(), "the tunnel is closed");
    // The tunnel is a master of its own on a socket named by the local port: ended.
    let tunnels = Command::new("pgrep")
        .args(["-f", &format!("tunnel-[0-9]*-{port}.sock")])
        .output()
        .unwrap();
    assert!(
        tunnels.stdout.is_empty(),
        "no tunnel ssh is left: {}",
        String::from_utf8_lossy(&tunnels.stdout)
    );
    let _ = Command::new("docker")
        .env("DOCKER_HOST", &engine)
        .args(["rmi", "-f", &image])
        .output();
}
