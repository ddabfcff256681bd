//! transfer-image's registry path (src/commands/transfer_registry.rs) against the test dock
//! of tests/dock-env.sh: the dock's engine (the classic store on this machine) pulls the
//! image from this process through an `ssh -R` forward. Forced with `--via-registry`,
//! except where `wrapdock`'s `docker` reports the containerd image store.

mod common;

use common::{BUSYBOX_DOCKERFILE, Project, USER, bin_dir, require_engine};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

/// One transfer at a time: each checks what is left on the dock afterwards.
static SERIAL: Mutex<()> = Mutex::new(());

/// The test dock, and a home of the test's own in which it is registered as `testdock`.
struct Dock {
    ip: String,
    user: String,
    engine: String,
    home: tempfile::TempDir,
}

fn dock() -> Dock {
    require_engine();
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with `bash tests/run.sh`, which starts the test dock")
        })
    };
    Dock {
        ip: var("DOCKERUTILS_TEST_DOCK_IP"),
        user: var("DOCKERUTILS_TEST_DOCK_USER"),
        engine: var("DOCKERUTILS_TEST_DOCK_ENGINE"),
        home: tempfile::tempdir().unwrap(),
    }
}

impl Dock {
    /// One of our commands with the test's home, the commands on PATH, the local engine.
    fn cmd(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("HOME", self.home.path())
            .env(
                "PATH",
                format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap()),
            )
            .env("LOGNAME", USER)
            .env("USER", USER)
            .env_remove("DOCKER_HOST")
            .env_remove("_DOCK_MONIKER");
        cmd
    }

    fn register(&self) {
        let out = self
            .cmd("register-dock")
            .args([&self.ip, "testdock", "-u", &self.user])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    /// `docker ARGS` on the dock's engine: its stdout.
    fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker")
            .env("DOCKER_HOST", &self.engine)
            .args(args)
            .output()
            .unwrap();
        text(&out.stdout).trim().to_owned()
    }

    fn remove(&self, refs: &[&str]) {
        let _ = Command::new("docker")
            .env("DOCKER_HOST", &self.engine)
            .arg("rmi")
            .arg("-f")
            .args(refs)
            .output();
    }

    /// The temporary references (tags, repo digests) on the dock.
    fn temporary_refs(&self) -> String {
        self.docker(&[
            "images",
            "--digests",
            "--format",
            "{{.Repository}} {{.Tag}} {{.Digest}}",
        ])
        .lines()
        .filter(|l| l.contains("dockerutils-transfer"))
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// What the registry path promises to leave behind: no temporary reference (tag or
    /// repo digest) on the dock, no pull running there, and the forward closed.
    fn assert_nothing_left(&self, stderr: &str) {
        assert_eq!(self.temporary_refs(), "");
        let port = forwarded_port(stderr);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the dock's end of the forward, 127.0.0.1:{port}, still accepts connections"
        );
        assert_eq!(pulls_from(port), Vec::<String>::new());
    }

    /// Closes the dock's shared connection (and with it any forward on it).
    fn close_connection(&self) {
        let _ = Command::new("ssh")
            .arg("-o")
            .arg(format!(
                "ControlPath={}/.docker/.dockerutils/cm/%C",
                self.home.path().display()
            ))
            .args(["-O", "exit", &format!("{}@{}", self.user, self.ip)])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Dock {
    /// The shared connection would otherwise stay 10 minutes after the test.
    fn drop(&mut self) {
        self.close_connection();
    }
}

/// The processes pulling from the dock's end of a forward (the dock is this machine: its
/// processes are ours to see).
fn pulls_from(port: u16) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&format!("127.0.0.1:{port}/dockerutils-transfer")))
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The dock's end of the forward, from "ssh … -O forward … # testdock's 127.0.0.1:PORT".
fn forwarded_port(stderr: &str) -> u16 {
    stderr
        .lines()
        .find_map(|l| l.split("'s 127.0.0.1:").nth(1)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no forward in: {stderr}"))
}

/// The byte count of "transfer-image: sent X MiB (N bytes) to …".
fn bytes_sent(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("transfer-image: sent "))
        .unwrap_or_else(|| panic!("no summary line in: {stderr}"));
    line[line.find('(').unwrap() + 1..line.find(" bytes)").unwrap()]
        .parse()
        .unwrap()
}

/// Builds the project's `image` with build-image; its name.
fn build(p: &Project, image: &str) -> String {
    let out = p.cmd("build-image").arg(image).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    p.image(image)
}

/// A project whose `big` image has a layer of `mb` MB of random bytes under a small top
/// layer saying `top`: 4 layers.
fn big_image(label: &str, top: &str, mb: usize) -> (Project, String) {
    let p = Project::new(label);
    let mut random = vec![0u8; mb * 1_000_000];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut random)
        .unwrap();
    std::fs::write(p.root.join("big.bin"), random).unwrap();
    rebuild(&p, top);
    let image = p.image("big");
    (p, image)
}

fn rebuild(p: &Project, top: &str) {
    p.dockerfile(
        "big",
        &format!("{BUSYBOX_DOCKERFILE}COPY big.bin /big.bin\nRUN echo {top} > /top\n"),
    );
    build(p, "big");
}

fn transfer(d: &Dock, args: &[&str]) -> (Output, String) {
    let out = d.cmd("transfer-image").args(args).output().unwrap();
    let stderr = text(&out.stderr);
    (out, stderr)
}

/// Forced through the registry: first the whole image, then after a change to the small
/// top layer only that layer (the dock's engine asks for the blobs it lacks), and the
/// image runs on the dock; nothing temporary is left either time.
fn fetches_only_the_layers_the_dock_lacks(label: &str, extra: &[&str], read_as: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = dock();
    d.register();
    let (p, image) = big_image(label, "one", 8);
    d.remove(&[&image]);
    let first_id = common::image_id(&image);

    let mut args = vec![image.as_str(), "testdock", "--via-registry"];
    args.extend(extra);
    let (out, err) = transfer(&d, &args);
    assert!(out.status.success(), "{err}");
    assert!(err.starts_with(read_as), "{err}");
    // The 8 MB layer and the top at least (the busybox layers may be there already).
    assert!(
        ["2", "3", "4"]
            .iter()
            .any(|n| err.contains(&format!("(through a registry: {n} of 4 layers fetched"))),
        "{err}"
    );
    assert_eq!(
        d.docker(&["image", "inspect", "--format", "{{.Id}}", &image]),
        first_id
    );
    let full = bytes_sent(&err);
    assert!(full > 7_000_000, "the 8 MB layer travels first: {full}");
    d.assert_nothing_left(&err);

    rebuild(&p, "two");
    let (out, err) = transfer(&d, &args);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("(through a registry: 1 of 4 layers fetched"),
        "{err}"
    );
    let delta = bytes_sent(&err);
    assert!(
        delta * 10 < full,
        "{delta} bytes after a one-layer change, {full} the first time"
    );
    assert_eq!(
        d.docker(&["image", "inspect", "--format", "{{.Id}}", &image]),
        common::image_id(&image)
    );
    assert_eq!(
        d.docker(&["run", "--rm", "--pull=never", &image, "cat", "/top"]),
        "two"
    );
    d.assert_nothing_left(&err);
    d.remove(&[&image, &first_id]);
    common::cleanup().remove_later([first_id]);
}

#[test]
fn through_a_registry_from_the_engine_storage_only_missing_layers_travel() {
    // As root the engine's storage is read directly.
    fetches_only_the_layers_the_dock_lacks("xregstore", &[], "(the layers of ");
}

#[test]
fn through_a_registry_from_docker_save_only_missing_layers_travel() {
    fetches_only_the_layers_the_dock_lacks("xregsave", &["--docker-save"], "docker save ");
}

/// Ctrl-C (SIGINT) while the dock pulls: exit 130, and the dock as it was: no image, no
/// temporary tag or repo digest, no pull still running, the forward closed. SIGKILL: the
/// dock cleans up by itself.
#[test]
fn an_interrupted_registry_transfer_leaves_the_dock_as_it_was() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = dock();
    d.register();
    let (_p, image) = big_image("xregstop", "one", 150);
    d.remove(&[&image]);
    let id = common::image_id(&image);

    let (status, err) = stopped_midway(&d, &image, "-INT");
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("transfer-image: error: interrupted: testdock was left as it was"),
        "{err}"
    );
    assert!(!err.contains("transfer-image: sent "), "{err}");
    assert_eq!(
        d.docker(&["image", "inspect", "--format", "{{.Id}}", &image]),
        ""
    );
    assert_eq!(
        d.docker(&["image", "inspect", "--format", "{{.Id}}", &id]),
        ""
    );
    d.assert_nothing_left(&err);

    // Killed outright: the dock's script sees its input end with the connection, stops
    // the pull and removes the temporary references by itself (only the forward stays, on
    // the shared connection, until that closes).
    let (status, err) = stopped_midway(&d, &image, "-KILL");
    assert_eq!(status.code(), None, "{err}");
    let port = forwarded_port(&err);
    let cleaned = common::wait_until(std::time::Duration::from_secs(30), || {
        pulls_from(port).is_empty() && d.temporary_refs().is_empty()
    });
    d.close_connection();
    assert!(
        cleaned,
        "still pulling: {:?}; left: {}",
        pulls_from(port),
        d.temporary_refs()
    );
    assert_eq!(
        d.docker(&["image", "inspect", "--format", "{{.Id}}", &id]),
        ""
    );
}

/// Starts a registry transfer of `image`, sends it `signal` once part of the image has gone;
/// how it ended, and its stderr.
fn stopped_midway(d: &Dock, image: &str, signal: &str) -> (std::process::ExitStatus, String) {
    let mut child = d
        .cmd("transfer-image")
        .args([image, "testdock", "--via-registry"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut err = String::new();
    // The first progress line short of 100% (a line per tenth read, the last tenth only
    // when several passed between two looks): the dock cannot have the image yet.
    let midway = |line: &str| {
        line.strip_prefix("transfer-image: ")
            .and_then(|rest| rest.split_once("0% ("))
            .is_some_and(|(tenths, _)| {
                matches!(tenths, "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9")
            })
    };
    let mut stopped = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        err.push_str(&line);
        err.push('\n');
        if midway(&line) {
            stopped = true;
            break;
        }
    }
    assert!(stopped, "no progress short of 100%: {err}");
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    for line in lines {
        err.push_str(&line.unwrap());
        err.push('\n');
    }
    (child.wait().unwrap(), err)
}

/// `docker save` of an engine with the containerd image store (Docker Desktop, Engine 29+)
/// writes an OCI layout: read as well. Made here from this engine's classic archive (the
/// same configuration, the layers gzip-compressed as such an engine keeps them) and given
/// by a `docker` first on PATH whose `save` prints it; the dock gets the same image.
#[test]
fn through_a_registry_from_an_oci_layout() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = dock();
    d.register();
    let p = Project::new("xregoci");
    p.dockerfile("oci", &format!("{BUSYBOX_DOCKERFILE}RUN echo oci > /top\n"));
    let image = build(&p, "oci");
    d.remove(&[&image]);
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("oci.tar");
    std::fs::write(&archive, oci_archive(&image)).unwrap();
    let docker = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v docker"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let wrapper = work.path().join("docker");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ \"$1\" = save ]; then exec cat '{}'; fi\nexec '{}' \"$@\"\n",
            archive.display(),
            docker.trim()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let out = d
        .cmd("transfer-image")
        .env(
            "PATH",
            format!(
                "{}:{}:{}",
                work.path().display(),
                bin_dir().display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .args([&image, "testdock", "--via-registry", "--docker-save"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.starts_with(&format!("docker save {image}")), "{err}");
    // The layers are gzip blobs already: sent as they are.
    assert!(err.contains(" layers fetched, as stored)"), "{err}");
    assert_eq!(
        d.docker(&["image", "inspect", "--format", "{{.Id}}", &image]),
        common::image_id(&image)
    );
    assert_eq!(
        d.docker(&["run", "--rm", "--pull=never", &image, "cat", "/top"]),
        "oci"
    );
    d.assert_nothing_left(&err);
    d.remove(&[&image]);
}

/// The OCI layout of `image`: index.json → an OCI manifest → the configuration (as it is)
/// and the layers of the classic `docker save`, gzip-compressed.
fn oci_archive(image: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let digest = |b: &[u8]| format!("sha256:{:x}", Sha256::digest(b));
    let saved = Command::new("docker")
        .args(["save", image])
        .output()
        .unwrap();
    assert!(saved.status.success());
    let mut files = std::collections::HashMap::new();
    let mut tar = tar::Archive::new(&saved.stdout[..]);
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.insert(path, bytes);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let config = files[manifest[0]["Config"].as_str().unwrap()].clone();
    let mut blobs = vec![config.clone()];
    let mut layers = vec![];
    for path in manifest[0]["Layers"].as_array().unwrap() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &files[path.as_str().unwrap()]).unwrap();
        let gz = gz.finish().unwrap();
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest(&gz), "size": gz.len()}));
        blobs.push(gz);
    }
    let oci_manifest = serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(&config), "size": config.len()},
        "layers": layers})
    .to_string()
    .into_bytes();
    let index = serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(&oci_manifest), "size": oci_manifest.len(),
            "annotations": {"io.containerd.image.name": format!("docker.io/library/{image}")}}]});
    blobs.push(oci_manifest);
    let mut out = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        out.append_data(&mut h, name, bytes).unwrap();
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    for blob in &blobs {
        add(&format!("blobs/sha256/{}", &digest(blob)[7..]), blob);
    }
    add("index.json", index.to_string().as_bytes());
    out.into_inner().unwrap()
}

/// The home of `wrapdock` (tests/dock-env.sh), whose PATH on the dock starts with ~/bin.
fn wrapdock_bin() -> PathBuf {
    let entry = text(
        &Command::new("getent")
            .args(["passwd", "wrapdock"])
            .output()
            .unwrap()
            .stdout,
    );
    Path::new(
        entry
            .trim()
            .split(':')
            .nth(5)
            .expect("the wrapdock user of tests/dock-env.sh"),
    )
    .join("bin")
}

/// A dock whose engine reports the containerd image store gets the registry path without
/// being asked (`--full` keeps the load path); here a plain `user@host`, which has no
/// shared connection: the transfer opens one of its own and closes it.
#[test]
fn a_containerd_store_dock_gets_the_registry_path_by_itself() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = dock();
    let bin = wrapdock_bin();
    std::fs::create_dir_all(&bin).unwrap();
    // `docker info` as an engine with the containerd image store answers it.
    std::fs::write(
        bin.join("docker"),
        "#!/bin/sh\ncase \"$*\" in info*DriverStatus*) echo '[[\"driver-type\",\"io.containerd.snapshotter.v1\"]]'; exit 0;; esac\nexec /usr/bin/docker \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("docker"), std::fs::Permissions::from_mode(0o755)).unwrap();
    Command::new("chown")
        .args(["-R", "wrapdock:wrapdock"])
        .arg(bin.parent().unwrap())
        .status()
        .unwrap();
    let p = Project::new("xregauto");
    p.dockerfile("small", BUSYBOX_DOCKERFILE);
    let image = build(&p, "small");
    d.remove(&[&image]);
    let dest = format!("wrapdock@{}", d.ip);

    let (out, err) = transfer(&d, &[&image, &dest]);
    assert!(out.status.success(), "{err}");
    assert!(
        err.starts_with(&format!(
            "transfer-image: {dest} uses the containerd image store"
        )),
        "{err}"
    );
    assert!(err.contains("(through a registry: "), "{err}");
    // The printed forward names the master it is asked of: it pastes as it ran.
    let forward = err
        .lines()
        .find(|l| l.contains(" -O forward -R "))
        .unwrap_or_else(|| panic!("no forward line: {err}"));
    assert!(
        forward.contains(&format!(
            "ControlPath={}/.docker/.dockerutils/cm/%C",
            d.home.path().display()
        )),
        "{forward}"
    );
    assert_eq!(
        d.docker(&["image", "inspect", "--format", "{{.Id}}", &image]),
        common::image_id(&image)
    );
    d.assert_nothing_left(&err);
    // The connection of its own that the plain host got (in the home's socket
    // directory) is closed with the command: no master answers there.
    let check = Command::new("ssh")
        .arg("-o")
        .arg(format!(
            "ControlPath={}/.docker/.dockerutils/cm/%C",
            d.home.path().display()
        ))
        .args(["-O", "check", &dest])
        .output()
        .unwrap();
    assert!(!check.status.success(), "{}", text(&check.stderr));

    // --full: every layer, by `docker load`, as asked.
    d.remove(&[&image]);
    let (out, err) = transfer(&d, &[&image, &dest, "--full"]);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("registry"), "{err}");
    assert_eq!(
        d.docker(&["image", "inspect", "--format", "{{.Id}}", &image]),
        common::image_id(&image)
    );
    let _ = std::fs::remove_file(bin.join("docker"));
    d.remove(&[&image]);
}

/// `--dry-run` shows the four steps, with placeholders for what only the run knows; the
/// path needs the image by name, and sends what the dock asks for (no `--full`).
#[test]
fn the_registry_path_dry_run_and_what_it_refuses() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = dock();
    d.register();
    let p = Project::new("xregdry");
    p.dockerfile("small", BUSYBOX_DOCKERFILE);
    let image = build(&p, "small");
    let out = d
        .cmd("transfer-image")
        .args([&image, "testdock", "--via-registry", "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(
        lines[0],
        format!(
            "(the layers of {image} from the engine's storage) | a read-only registry of \
             {image} on 127.0.0.1:LOCALPORT"
        )
    );
    let dest = format!("-- {}@{}", d.user, d.ip);
    assert!(
        lines[1].ends_with(&format!(
            "-O forward -R 127.0.0.1:PORT:127.0.0.1:LOCALPORT {dest}   # PORT: a free port of testdock's loopback"
        )),
        "{}",
        lines[1]
    );
    let pull = shlex::split(lines[2]).unwrap();
    let script = shlex::split(&pull.last().unwrap()[6..]).unwrap();
    assert!(
        script[0].contains("$d pull -q 127.0.0.1:PORT/dockerutils-transfer/RANDOM:transfer")
            && script[0].contains(&format!(
                "$d tag 127.0.0.1:PORT/dockerutils-transfer/RANDOM:transfer {image} "
            ))
            && script[0].contains("RANDOM@MANIFEST_DIGEST"),
        "{script:?}"
    );
    assert!(
        lines[3].ends_with(&format!(
            "-O cancel -R 127.0.0.1:PORT:127.0.0.1:LOCALPORT {dest}"
        )),
        "{}",
        lines[3]
    );

    // Without the flag a dry run shows the load path: it asks the dock nothing, and says
    // what a containerd-store dock would get.
    let (out, err) = transfer(&d, &[&image, "testdock", "--dry-run"]);
    assert!(out.status.success(), "{err}");
    assert!(
        text(&out.stdout).starts_with(&format!("docker save {image} | zstd | ssh ")),
        "{}",
        text(&out.stdout)
    );
    assert!(
        err.contains("reads the layers of") && err.contains("--docker-save runs the pipeline"),
        "{err}"
    );
    assert!(
        err.contains("if testdock's engine uses the containerd image store, the image goes through a registry instead: --via-registry --dry-run shows how"),
        "{err}"
    );

    let (out, err) = transfer(&d, &[&image, "testdock", "--via-registry", "--full"]);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
    let id = common::image_id(&image);
    let (out, err) = transfer(&d, &[&id, "testdock", "--via-registry"]);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "the registry path gives the image its name on testdock: `{id}` is not one of its \
             NAME:TAG names; name it by NAME:TAG"
        )),
        "{err}"
    );
}
