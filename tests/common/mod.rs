//! Shared test fixtures: throwaway projects with busybox-based images on the real engine,
//! and the user commands under their installed names.
#![allow(dead_code)]

pub(crate) mod moto;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The user every test runs as (images are tagged with it).
pub(crate) const USER: &str = "tester";

/// A Dockerfile for a tiny image: busybox on scratch (nothing can be pulled here).
pub(crate) const BUSYBOX_DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";

/// Panics unless a Docker engine answers: a missing engine is a failure, never a skip
/// (`bash tests/run.sh` installs and starts one).
pub(crate) fn require_engine() {
    static OK: OnceLock<Result<(), String>> = OnceLock::new();
    let ok = OK.get_or_init(|| {
        let out = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output();
        match out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
            Err(e) => Err(e.to_string()),
        }
    });
    if let Err(e) = ok {
        panic!(
            "no Docker engine answers ({e}); run the tests with `bash tests/run.sh`, which starts one"
        );
    }
}

/// A directory holding the user commands under their own names, as the install makes them.
pub(crate) fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bin");
        std::fs::create_dir_all(&dir).unwrap();
        let target = Path::new(env!("CARGO_BIN_EXE_dockerutils"));
        let names = Command::new(target)
            .arg("--list-commands")
            .output()
            .unwrap();
        let mut names: Vec<String> = String::from_utf8_lossy(&names.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        names.push("dockerutils".into());
        // build-image and run-image go to the daily binary, as install.sh links them.
        let daily = Path::new(env!("CARGO_BIN_EXE_dockerutils-daily"));
        let daily_names = Command::new(daily).arg("--list-commands").output().unwrap();
        let daily_names: Vec<String> = String::from_utf8_lossy(&daily_names.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        assert!(
            !daily_names.is_empty(),
            "the daily binary lists its commands"
        );
        for name in names {
            let target = if daily_names.contains(&name) {
                daily
            } else {
                target
            };
            let link = dir.join(&name);
            // Test binaries run side by side: only (re)make a link that is not right.
            if std::fs::read_link(&link).ok().as_deref() != Some(target) {
                let tmp = dir.join(format!(".{name}.{}", std::process::id()));
                std::os::unix::fs::symlink(target, &tmp).unwrap();
                std::fs::rename(&tmp, &link).unwrap();
            }
        }
        // `source dock` finds the script on PATH, as install.sh puts it.
        let dock = dir.join("dock");
        let tmp = dir.join(format!(".dock.{}", std::process::id()));
        std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/dock"), &tmp).unwrap();
        std::fs::rename(&tmp, &dock).unwrap();
        dir
    })
}

/// A project in a temporary directory, named uniquely so tests can run in parallel.
pub(crate) struct Project {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub name: String,
}

impl Project {
    /// `label` becomes part of the project (and so image) name.
    pub(crate) fn new(label: &str) -> Project {
        Project::start(label, false)
    }

    /// A project for a test that deletes images while it runs (`build-image clean`,
    /// `docker rmi`): it waits until no other test of this binary has a project, and none
    /// starts until it is done (see [`Cleanup`]).
    pub(crate) fn exclusive(label: &str) -> Project {
        Project::start(label, true)
    }

    fn start(label: &str, exclusive: bool) -> Project {
        {
            let me = std::thread::current().id();
            let (lock, changed) = &CLEANUP;
            let mut c = changed
                .wait_while(lock.lock().unwrap_or_else(|e| e.into_inner()), |c| {
                    matches!(c.exclusive, Some(owner) if owner != me) || (exclusive && c.live > 0)
                })
                .unwrap_or_else(|e| e.into_inner());
            c.live += 1;
            if exclusive {
                c.exclusive = Some(me);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let name = format!("du-{label}-{}", std::process::id());
        let root = dir.path().join(&name);
        std::fs::create_dir_all(root.join("docker")).unwrap();
        std::fs::copy("/bin/busybox", root.join("busybox"))
            .expect("/bin/busybox (Debian busybox-static; tests/run.sh installs it)");
        Project {
            _dir: dir,
            root,
            name,
        }
    }

    pub(crate) fn file(&self, rel: &str, content: &str) -> &Self {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    pub(crate) fn dockerfile(&self, image: &str, content: &str) -> &Self {
        self.file(&format!("docker/{image}/Dockerfile"), content)
    }

    pub(crate) fn cfg(&self, text: &str) -> &Self {
        self.file("docker/dockerutils.cfg", text)
    }

    /// `<project>-<image>:tester`
    pub(crate) fn image(&self, image: &str) -> String {
        format!("{}-{image}:{USER}", self.name)
    }

    /// A user command, run in the project root with a clean, known environment.
    pub(crate) fn cmd(&self, name: &str) -> assert_cmd::Command {
        self.cmd_in(name, &self.root)
    }

    pub(crate) fn cmd_in(&self, name: &str, dir: &Path) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(bin_dir().join(name));
        cmd.current_dir(dir);
        clean_env(&mut cmd);
        cmd
    }
}

/// Environment of every command under test: known user, not docked, no AWS credentials.
pub(crate) fn clean_env(cmd: &mut assert_cmd::Command) {
    for var in ["DOCKER_IP", "DOCKER_HOST", "LNAME", "USERNAME"] {
        cmd.env_remove(var);
    }
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("LOGNAME", USER).env("USER", USER);
}

impl Drop for Project {
    fn drop(&mut self) {
        // Every image this project made, once no other test of this binary is building.
        let mut c = cleanup();
        c.live -= 1;
        if c.live == 0 {
            c.exclusive = None;
        }
        c.filters.push(format!("reference={}-*", self.name));
        c.remove_if_idle();
        CLEANUP.1.notify_all();
    }
}

/// Images wait for removal until no project of this test binary is alive. The legacy
/// builder's cache lookup for a `FROM scratch` step walks every parentless image of the
/// engine (and for any other step, every child of the parent image) and fails ("unable to
/// find image sha256:…") when one is deleted under it, so removing a finished test's images
/// while another test builds breaks that build (seen in CI). A new project waits while a
/// removal runs; a test that must delete images as it runs takes [`Project::exclusive`].
pub(crate) struct Cleanup {
    live: usize,
    /// The thread of the test that runs alone, if one does.
    exclusive: Option<std::thread::ThreadId>,
    filters: Vec<String>,
    refs: Vec<String>,
}

static CLEANUP: (Mutex<Cleanup>, Condvar) = (
    Mutex::new(Cleanup {
        live: 0,
        exclusive: None,
        filters: Vec::new(),
        refs: Vec::new(),
    }),
    Condvar::new(),
);

pub(crate) fn cleanup() -> std::sync::MutexGuard<'static, Cleanup> {
    CLEANUP.0.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cleanup {
    /// Removes `refs` now if no project is alive, else with the last one.
    pub(crate) fn remove_later(&mut self, refs: impl IntoIterator<Item = String>) {
        self.refs.extend(refs);
        self.remove_if_idle();
    }

    fn remove_if_idle(&mut self) {
        if self.live > 0 {
            return;
        }
        let mut refs = std::mem::take(&mut self.refs);
        for filter in std::mem::take(&mut self.filters) {
            if let Ok(out) = Command::new("docker")
                .args([
                    "images",
                    "--format",
                    "{{.Repository}}:{{.Tag}}",
                    "--filter",
                    &filter,
                ])
                .output()
            {
                refs.extend(
                    String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .map(str::to_owned),
                );
            }
        }
        if !refs.is_empty() {
            let _ = Command::new("docker")
                .arg("rmi")
                .arg("-f")
                .args(&refs)
                .output();
        }
    }
}

/// Does the engine have this image?
pub(crate) fn image_exists(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The image's id (to tell rebuilt images apart).
pub(crate) fn image_id(image: &str) -> String {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `line` run by sh in a real terminal (script(1)), in `dir`, with the clean environment.
pub(crate) fn in_terminal(line: &str, dir: &Path) -> Command {
    let mut script = Command::new("script");
    script.args(["-qfec", line, "/dev/null"]).current_dir(dir);
    with_clean_env(&mut script);
    script
}

pub(crate) fn with_clean_env(cmd: &mut Command) -> &mut Command {
    for var in [
        "DOCKER_IP",
        "DOCKER_HOST",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("LOGNAME", USER).env("USER", USER)
}

/// What the signal tests' containers print once they run: computed by the container's
/// shell, so it cannot match the printed command line.
pub(crate) const READY_CMD: &str = "sh -c 'echo READY_$((6*7)); sleep 60'";

/// Waits until the container says READY_42 on the child's stdout.
pub(crate) fn wait_for_ready(child: &mut std::process::Child) {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(Ok(line)) = lines.next() {
            if line.contains("READY_42") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the container never said ready");
}

/// The child's exit code, or None (after killing it and calling `clean_up`) when it has
/// not exited within `limit`.
pub(crate) fn wait_exit(
    child: &mut std::process::Child,
    limit: Duration,
    clean_up: impl FnOnce(),
) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            use std::os::unix::process::ExitStatusExt;
            return Some(
                status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap()),
            );
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            clean_up();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP port free on 127.0.0.1 just now (for a helper server or a published port).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn wait_listening(port: u16, what: &str, child: &mut Child) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited ({status}) before listening on {port}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A helper process, killed when dropped.
pub(crate) struct Helper(pub Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A registry (Debian's docker-registry) on 127.0.0.1, stopped when dropped.
pub(crate) struct Registry {
    pub port: u16,
    _dir: tempfile::TempDir,
    _proc: Helper,
}

pub(crate) fn registry() -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
        .spawn()
        .expect("docker-registry (Debian's; tests/run.sh installs it)");
    wait_listening(port, "docker-registry", &mut child);
    Registry {
        port,
        _dir: dir,
        _proc: Helper(child),
    }
}

impl Registry {
    /// GET a registry API path; the body.
    pub(crate) fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        resp.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

/// A project with one busybox image `image`, built with plain docker (for tests about
/// running it). Each test uses its own image name: container names are
/// `<user>_<image>_<time>`, unique per image and second.
pub(crate) fn project_with(image: &str, cfg: &str) -> Project {
    require_engine();
    let p = Project::new(image);
    p.dockerfile(image, BUSYBOX_DOCKERFILE).cfg(cfg);
    let out = Command::new("docker")
        .current_dir(&p.root)
        .args(["build", "-q", "-t", &p.image(image), "-f"])
        .arg(format!("docker/{image}/Dockerfile"))
        .arg(".")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p
}

/// Names of the containers run-image made of this image (`<user>_<image>_<time>`), kept
/// or stopped.
pub(crate) fn containers(image: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-a", "--format", "{{.Names}}", "--filter"])
        .arg(format!("name=^{USER}_{image}_"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

pub(crate) fn remove_containers(image: &str) {
    for c in containers(image) {
        let _ = Command::new("docker").args(["rm", "-f", &c]).output();
    }
}

/// Takes the names run-image gives to containers of `image` (`tester_<image>_<local time>`)
/// for the next `seconds` seconds, with created (never started) containers of `reference`:
/// a run of the image started meanwhile finds its name taken, as when another run started
/// in the same second. `containers(image)` lists them too; `remove_containers` removes them.
pub(crate) fn take_names(image: &str, reference: &str, seconds: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for second in now..now + seconds {
        // The local time as run-image writes it (the same TZ: ours is the child's).
        let stamp = Command::new("date")
            .arg("-d")
            .arg(format!("@{second}"))
            .arg("+%y-%m-%d_%H.%M.%S")
            .output()
            .unwrap();
        let name = format!(
            "{USER}_{image}_{}",
            String::from_utf8_lossy(&stamp.stdout).trim()
        );
        let out = Command::new("docker")
            .args(["create", "--name", &name, reference, "true"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker create {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let end = now + seconds;
    let left = end.saturating_sub(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    assert!(
        left >= seconds / 2,
        "taking the names took too long: {left}s of {seconds} are left"
    );
}

/// Polls `done` every 100 ms until it holds or `limit` has passed; whether it held.
pub(crate) fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
