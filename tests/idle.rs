//! The idle watcher of EC2 docks (templates/dockerutils-idle), installed the way docks get
//! it and run for real on the test dock of tests/dock-env.sh, over ssh as the dock's user.
//! No systemd there: the tests run its `check` themselves, with the time they choose
//! (`DOCKERUTILS_IDLE_NOW`), and a `poweroff` of their own first on PATH that records the
//! call. The test dock is shared (other tests log in as the same user and run containers
//! on the same engine), so each test counts only what it made: the sessions of an sshd
//! of its own (`DOCKERUTILS_IDLE_SSHD`) and containers with a label of its own
//! (`DOCKERUTILS_IDLE_DOCKER_FILTER`). What our commands read of it (ls-dock, idle-stop)
//! is tested here too, with moto (tests/common/moto.rs) for the dock's EC2 side.

mod common;

use common::moto::{Moto, moto};
use common::{BUSYBOX_DOCKERFILE, Helper, Project, require_engine};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A word for the dock user's shell, quoted.
fn q(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with `bash tests/run.sh`, which starts the test dock"
        )
    })
}

/// The dock user's uid and gid.
fn ids(user: &str) -> (u32, u32) {
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, user]).output().unwrap();
        assert!(out.status.success(), "no user {user} (tests/dock-env.sh)");
        text(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

/// The watcher installed under a directory of the test dock, with an sshd of its own.
struct Watcher {
    ip: String,
    user: String,
    engine: String,
    /// `DOCKERUTILS_IDLE_ROOT`: a name with a space, a quote and `$(…)` in it.
    root: PathBuf,
    /// Holds `poweroff`, which appends its arguments to `<root>/poweroff.calls`.
    fakebin: PathBuf,
    /// Only containers with this label count.
    label: String,
    sshd: Helper,
    sshd_port: u16,
    _dir: tempfile::TempDir,
}

impl Watcher {
    /// The watcher installed with this limit, as the installer does it.
    fn new(limit: &str) -> Watcher {
        let w = Watcher::bare();
        w.install(limit);
        w
    }

    /// A directory for the watcher (none installed yet) and the test's own sshd.
    fn bare() -> Watcher {
        require_engine();
        let (ip, user, engine) = (
            var("DOCKERUTILS_TEST_DOCK_IP"),
            var("DOCKERUTILS_TEST_DOCK_USER"),
            var("DOCKERUTILS_TEST_DOCK_ENGINE"),
        );
        let (uid, gid) = ids(&user);
        let dir = tempfile::tempdir().unwrap();
        let chown = |path: &Path| {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
        };
        chown(dir.path());
        let root = dir.path().join("idle root; it's $(touch pwned)");
        std::fs::create_dir(&root).unwrap();
        chown(&root);
        let fakebin = dir.path().join("fakebin");
        std::fs::create_dir(&fakebin).unwrap();
        let poweroff = fakebin.join("poweroff");
        std::fs::write(
            &poweroff,
            format!(
                "#!/bin/sh\necho \"poweroff $*\" >> {}\n",
                q(&root.join("poweroff.calls").to_string_lossy())
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &poweroff,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();

        // The test's own sshd, as the dock user, for the same keys as the dock's.
        let keys = Path::new(&var("DOCKERUTILS_TEST_DOCK_SSHD_LOG"))
            .parent()
            .unwrap()
            .join("authorized_keys");
        let host_key = dir.path().join("host_key");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        chown(&host_key);
        let listener = std::net::TcpListener::bind((ip.as_str(), 0)).unwrap();
        let sshd_port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut sshd = Command::new("/usr/sbin/sshd");
        sshd.args(["-D", "-e", "-f", "/dev/null"])
            .args(["-o", &format!("ListenAddress={ip}")])
            .args(["-o", &format!("Port={sshd_port}")])
            .args(["-o", &format!("HostKey={}", host_key.display())])
            .args(["-o", &format!("AuthorizedKeysFile={}", keys.display())])
            .args([
                "-o",
                "PidFile=none",
                "-o",
                "UsePAM=no",
                "-o",
                "StrictModes=no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("sshd.log")).unwrap())
            .uid(uid)
            .gid(gid);
        let mut sshd = sshd.spawn().expect("/usr/sbin/sshd");
        let start = Instant::now();
        while std::net::TcpStream::connect((ip.as_str(), sshd_port)).is_err() {
            assert!(
                sshd.try_wait().unwrap().is_none(),
                "the test's sshd exited: {}",
                std::fs::read_to_string(dir.path().join("sshd.log")).unwrap_or_default()
            );
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sshd never listened"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Watcher {
            label: format!("dutest-idle={}-{}", std::process::id(), sshd_port),
            ip,
            user,
            engine,
            root,
            fakebin,
            sshd: Helper(sshd),
            sshd_port,
            _dir: dir,
        }
    }

    /// ssh to the test dock as its user (the shared sshd), running `line` there.
    fn ssh(&self, line: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=error"])
            .args(["-o", "ControlPath=none"])
            .arg(format!("{}@{}", self.user, self.ip))
            .arg(line);
        cmd
    }

    /// What `create-dock` puts in the user data and `idle-stop --set` sends: the installer,
    /// run by sh with its text on stdin.
    fn install(&self, limit: &str) {
        let limit = dockerutils::testing::Limit::parse(limit).unwrap();
        let script = dockerutils::testing::installer(limit);
        let mut child = self
            .ssh(&format!(
                "DOCKERUTILS_IDLE_ROOT={} sh -s",
                q(&self.root.to_string_lossy())
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains(&format!("dockerutils-idle: limit {limit}")),
            "{}",
            text(&out.stdout)
        );
    }

    /// `dockerutils-idle ARGS` on the dock, at time `now` (the clock when None).
    fn run(&self, args: &str, now: Option<u64>) -> Output {
        let root = self.root.to_string_lossy();
        let mut line = format!(
            "env PATH={}:\"$PATH\" DOCKERUTILS_IDLE_ROOT={} DOCKERUTILS_IDLE_SSHD={} \
             DOCKERUTILS_IDLE_DOCKER_FILTER={}",
            q(&self.fakebin.to_string_lossy()),
            q(&root),
            self.sshd.0.id(),
            q(&format!("label={}", self.label)),
        );
        if let Some(now) = now {
            line.push_str(&format!(" DOCKERUTILS_IDLE_NOW={now}"));
        }
        line.push_str(&format!(
            " {}/usr/local/sbin/dockerutils-idle {args}",
            q(&root)
        ));
        let out = self.ssh(&line).output().unwrap();
        assert!(
            out.status.success(),
            "dockerutils-idle {args}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }

    fn check(&self, now: Option<u64>) -> String {
        text(&self.run("check", now).stdout)
    }

    fn state(&self) -> HashMap<String, String> {
        let path = self.root.join("var/lib/dockerutils-idle/state");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn last_active(&self) -> u64 {
        self.state()["last_active"].parse().unwrap()
    }

    /// What the stand-in `poweroff` recorded.
    fn poweroffs(&self) -> String {
        std::fs::read_to_string(self.root.join("poweroff.calls")).unwrap_or_default()
    }

    /// A first check: it starts the idle time (a boot it had not seen); its time.
    fn first_check(&self) -> u64 {
        self.check(None);
        assert_eq!(self.state()["active"], "boot");
        self.last_active()
    }

    /// docker on the dock's engine, directly.
    fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker")
            .env("DOCKER_HOST", &self.engine)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout).trim().to_string()
    }
}

#[test]
fn idle_past_the_limit_it_powers_off_and_says_why() {
    let w = Watcher::new("1h");
    assert!(
        !w.root.parent().unwrap().join("pwned").exists() && !Path::new("pwned").exists(),
        "the directory's name is never run"
    );
    let units = w.root.join("etc/systemd/system");
    let timer = std::fs::read_to_string(units.join("dockerutils-idle.timer")).unwrap();
    assert!(timer.contains("OnUnitActiveSec=1min"), "{timer}");
    let service = std::fs::read_to_string(units.join("dockerutils-idle.service")).unwrap();
    assert!(service.contains("dockerutils-idle check"), "{service}");

    let t = w.first_check();
    w.check(Some(t + 3599));
    assert_eq!(w.poweroffs(), "", "not yet: idle for 3599 s of 3600");
    assert_eq!(w.state()["idle"], "3599");
    let out = w.check(Some(t + 3600));
    assert_eq!(w.poweroffs(), "poweroff \n");
    assert!(
        out.contains("stopping this machine: idle for 1h00m (limit 1h00m): no ssh session"),
        "what the journal gets: {out}"
    );
    let state = w.state();
    assert_eq!(state["stopped_at"], (t + 3600).to_string());
    assert!(
        state["stop_reason"].starts_with("idle for 1h00m"),
        "{state:?}"
    );

    // After a new boot (start-dock) the idle time starts afresh.
    let path = w.root.join("var/lib/dockerutils-idle/state");
    let before = std::fs::read_to_string(&path).unwrap();
    let old = format!("boot_id={}", state["boot_id"]);
    std::fs::write(&path, before.replace(&old, "boot_id=an-earlier-boot")).unwrap();
    w.check(Some(t + 7200));
    assert_eq!(w.state()["active"], "boot");
    assert_eq!(w.last_active(), t + 7200);
    assert_eq!(w.poweroffs(), "poweroff \n", "no second poweroff");

    // off: it keeps recording, and never stops the dock.
    let out = w.run("set off", None);
    assert!(text(&out.stdout).contains("limit off"));
    let t = w.last_active();
    w.check(Some(t + 86_400 * 3));
    assert_eq!(w.poweroffs(), "poweroff \n");
    assert_eq!(w.state()["limit"], "off");
    assert_eq!(w.state()["idle"], (86_400 * 3).to_string());
    // A limit it cannot read is refused, and the one it has is kept.
    let out = w
        .ssh(&format!(
            "DOCKERUTILS_IDLE_ROOT={} {}/usr/local/sbin/dockerutils-idle set '1h; reboot'",
            q(&w.root.to_string_lossy()),
            q(&w.root.to_string_lossy())
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(w.state()["limit"], "off");
}

#[test]
fn an_ssh_session_keeps_the_dock_awake() {
    let w = Watcher::new("30m");
    let t = w.first_check();
    // A session on the test's own sshd: a command that runs until it is killed.
    let mut session = Command::new("ssh");
    session
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=error"])
        .args(["-o", "ControlPath=none", "-p", &w.sshd_port.to_string()])
        .arg(format!("{}@{}", w.user, w.ip))
        .arg("echo started; exec sleep 300")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut session = Helper(session.spawn().unwrap());
    let mut line = String::new();
    BufReader::new(session.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "started\n");

    w.check(Some(t + 3600));
    assert_eq!(w.poweroffs(), "", "a session is open");
    assert_eq!(w.state()["active"], "ssh:1");
    assert_eq!(w.last_active(), t + 3600);

    // Closed: idle from the last check that saw it.
    drop(session);
    let start = Instant::now();
    while children(w.sshd.0.id()) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the session never ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    w.check(Some(t + 3600 + 1800));
    assert_eq!(w.state()["active"], "none");
    assert_eq!(w.poweroffs(), "poweroff \n");
}

#[test]
fn running_containers_and_docker_events_keep_the_dock_awake_unless_keep_awake_false() {
    let w = Watcher::new("30m");
    let project = Project::new("idle");
    project.dockerfile("idle", BUSYBOX_DOCKERFILE);
    let image = format!("{}-idle:tester", project.name);
    let out = Command::new("docker")
        .env("DOCKER_HOST", &w.engine)
        .current_dir(&project.root)
        .args([
            "build",
            "-q",
            "-t",
            &image,
            "-f",
            "docker/idle/Dockerfile",
            ".",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    struct Cleanup<'a>(&'a Watcher, Vec<String>, String);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            for c in &self.1 {
                let _ = Command::new("docker")
                    .env("DOCKER_HOST", &self.0.engine)
                    .args(["rm", "-f", c])
                    .output();
            }
            let _ = Command::new("docker")
                .env("DOCKER_HOST", &self.0.engine)
                .args(["rmi", &self.2])
                .output();
        }
    }
    let service = format!("du-idle-service-{}", w.sshd_port);
    let job = format!("du-idle-job-{}", w.sshd_port);
    let _cleanup = Cleanup(&w, vec![service.clone(), job.clone()], image.clone());
    // A service meant to run for good says it does not keep the dock awake.
    w.docker(&[
        "run",
        "-d",
        "--name",
        &service,
        "--label",
        &w.label,
        "--label",
        "dockerutils.keep-awake=false",
        &image,
        "sleep",
        "600",
    ]);
    let t = w.first_check();
    w.docker(&[
        "run", "-d", "--name", &job, "--label", &w.label, &image, "sleep", "600",
    ]);
    w.check(Some(t + 3600));
    assert_eq!(w.poweroffs(), "", "a job runs");
    let state = w.state();
    assert!(
        state["active"].starts_with("containers:1"),
        "the job only: {state:?}"
    );

    // The job is over: docker's events since the last check (kill, die, destroy) are
    // activity too, once; then only the service runs, and the dock stops.
    w.docker(&["rm", "-f", &job]);
    let t = w.last_active();
    let_a_second_pass();
    w.check(Some(t + 60));
    let active = w.state()["active"].clone();
    assert!(active.starts_with("docker-events:"), "{active}");
    // What the service does (its health checks, restarts, execs) is not activity either.
    w.docker(&["pause", &service]);
    w.docker(&["unpause", &service]);
    w.docker(&["exec", &service, "true"]);
    let_a_second_pass();
    w.check(Some(t + 60 + 1800));
    assert_eq!(w.state()["active"], "none");
    assert_eq!(w.poweroffs(), "poweroff \n", "{:?}", w.state());
}

/// The processes whose parent is `pid` (the test's sshd: one per session).
fn children(pid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid …: comm may hold spaces and parentheses.
            let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            after.split_whitespace().nth(1) == Some(&pid.to_string())
        })
        .count()
}

/// Lets the wall clock pass the next whole second: a check reads docker's events up to the
/// second before its own.
fn let_a_second_pass() {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let target = now() + 2;
    while now() < target {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A listener on port 22 of a loopback address of its own that accepts connections and
/// never says a word: a dock that does not answer (a hung machine, a dropped network).
fn silent_dock() -> (std::net::TcpListener, String) {
    let start = 100 + (std::process::id() % 100) as u8;
    for n in 0..100u8 {
        let ip = format!("127.0.{}.{}", 100 + n % 50, start.wrapping_add(n) % 250 + 3);
        if let Ok(l) = std::net::TcpListener::bind((ip.as_str(), 22)) {
            return (l, ip);
        }
    }
    panic!("no free loopback address for a silent dock (binding port 22 needs root)");
}

/// Registers a dock in the moto home, as create-dock would (with its instance id).
fn register(aws: &Moto, ip: &str, moniker: &str, user: &str, instance: &str) {
    let dir = aws.home().join(".docker").join(ip);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("connection_config.txt"),
        format!(
            "DOCK_USER={user}\nDOCK_MONIKER={moniker}\nDOCK_HOSTNAME={ip}\nDOCK_IP={ip}\nDOCK_INSTANCE_ID={instance}\n"
        ),
    )
    .unwrap();
}

/// Closes the shared connection our commands left to the test dock (kept 10 minutes).
fn close_shared_connection(aws: &Moto, w: &Watcher) {
    let _ = Command::new("ssh")
        .arg("-o")
        .arg(format!(
            "ControlPath={}/.docker/.dockerutils/cm/%C",
            aws.home().display()
        ))
        .args(["-O", "exit"])
        .arg(format!("{}@{}", w.user, w.ip))
        .stderr(Stdio::null())
        .output();
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn ls_dock_shows_the_idle_time_the_watcher_records_and_a_question_mark_for_a_silent_dock() {
    let w = Watcher::new("1h");
    // Unused for twelve minutes.
    w.run("set 1h", Some(now() - 720));
    let aws = moto();
    let ids = aws.boto(
        "img = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
         out = [i['InstanceId'] for i in ec2.run_instances(ImageId=img, MinCount=2, MaxCount=2, InstanceType='t3.micro')['Instances']]",
    );
    let (_silent, silent_ip) = silent_dock();
    register(&aws, &w.ip, "answers", &w.user, ids[0].as_str().unwrap());
    register(
        &aws,
        &silent_ip,
        "silent",
        "ubuntu",
        ids[1].as_str().unwrap(),
    );
    std::fs::write(aws.home().join(".docker/dock.cfg"), "price_per_hour=0.1\n").unwrap();
    let out = aws
        .cmd("ls-dock")
        .args(["--timeout", "3"])
        .env("DOCKERUTILS_IDLE_ROOT", &w.root)
        .output()
        .unwrap();
    close_shared_connection(&aws, &w);
    let listing = text(&out.stdout);
    assert!(out.status.success(), "{listing}{}", text(&out.stderr));
    let header = listing.lines().next().unwrap();
    let at = header.find("IDLE").unwrap();
    let idle = |name: &str| {
        let row = listing
            .lines()
            .find(|l| l[2..].starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in\n{listing}"));
        row[at..].split_whitespace().next().unwrap().to_string()
    };
    assert_eq!(idle("answers"), "12m/1h00m", "{listing}");
    assert_eq!(idle("silent"), "?", "{listing}");
}

#[test]
fn idle_stop_set_installs_the_watcher_on_a_running_ec2_dock_and_off_disables_it() {
    let w = Watcher::bare();
    let aws = moto();
    // An instance made by hand: a shutdown from inside would terminate it.
    let id = aws.boto(
        "img = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
         out = ec2.run_instances(ImageId=img, MinCount=1, MaxCount=1, InstanceInitiatedShutdownBehavior='terminate')['Instances'][0]['InstanceId']",
    );
    let id = id.as_str().unwrap();
    register(&aws, &w.ip, "answers", &w.user, id);
    let idle_stop = |args: &[&str]| {
        let out = aws
            .cmd("dockerutils")
            .arg("idle-stop")
            .arg("answers")
            .args(args)
            .env("DOCKERUTILS_IDLE_ROOT", &w.root)
            .output()
            .unwrap();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let behaviour = || {
        aws.boto(&format!(
            "out = ec2.describe_instance_attribute(InstanceId='{id}', Attribute='instanceInitiatedShutdownBehavior')['InstanceInitiatedShutdownBehavior']['Value']"
        ))
    };
    let state_file = w.root.join("var/lib/dockerutils-idle/state");

    // Not a duration: refused before anything.
    let (code, _, err) = idle_stop(&["--set", "2h; reboot"]);
    assert_eq!(code, Some(2), "{err}");
    // --dry-run: says what it would do, does nothing.
    let (code, out, err) = idle_stop(&["--set", "2h", "--dry-run"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!(
            "# would set the InstanceInitiatedShutdownBehavior of {id} to stop (it is terminate)"
        )),
        "{out}"
    );
    assert!(out.contains("< dockerutils-idle-installer.sh"), "{out}");
    assert!(!state_file.exists());
    assert_eq!(behaviour(), "terminate");

    aws.actions();
    let (code, out, err) = idle_stop(&["--set", "2h"]);
    close_shared_connection(&aws, &w);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("stops after 2h00m"), "{out}");
    assert_eq!(
        behaviour(),
        "stop",
        "a shutdown from inside must stop the dock"
    );
    assert_eq!(
        aws.actions(),
        [
            "DescribeInstances",
            "DescribeInstanceAttribute",
            "ModifyInstanceAttribute"
        ]
    );
    assert!(
        err.contains("ssh ") && err.contains("< dockerutils-idle-installer.sh"),
        "the command is shown as it runs: {err}"
    );
    assert_eq!(w.state()["limit"], "7200");
    assert!(
        w.root
            .join("etc/systemd/system/dockerutils-idle.timer")
            .is_file()
    );
    // What it installed works: idle past the limit, it stops the dock.
    let t = w.first_check();
    w.check(Some(t + 7200));
    assert_eq!(w.poweroffs(), "poweroff \n");

    // off: it keeps recording and never stops the dock. AWS is only asked whether the dock
    // runs (a stopped one is said at once, not after ssh gives up).
    let (code, out, err) = idle_stop(&["--set", "off"]);
    close_shared_connection(&aws, &w);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(aws.actions(), ["DescribeInstances"]);
    assert_eq!(w.state()["limit"], "off");
    let t = w.last_active();
    w.check(Some(t + 86_400));
    assert_eq!(w.poweroffs(), "poweroff \n", "no second poweroff");

    // Without --set: what the watcher says.
    let (code, out, err) = idle_stop(&[]);
    close_shared_connection(&aws, &w);
    assert_eq!(code, Some(0), "{err}");
    // (Idle by the dock's clock since `--set off`, which counts as use.)
    assert!(
        out.starts_with("Dock answers: idle for ") && out.contains("s; idle stop off"),
        "{out}"
    );
}

#[test]
fn idle_stop_refuses_what_it_could_not_start_again_and_a_user_without_sudo() {
    let w = Watcher::bare();
    let aws = moto();
    let idle_stop = |name: &str, root: bool| {
        let mut cmd = aws.cmd("dockerutils");
        cmd.args(["idle-stop", name, "--set", "1h"]);
        if root {
            cmd.env("DOCKERUTILS_IDLE_ROOT", &w.root);
        }
        let out = cmd.output().unwrap();
        (out.status.code(), text(&out.stderr))
    };
    let state_file = w.root.join("var/lib/dockerutils-idle/state");
    // Registered by register-dock, no EC2 instance has its address: powering it off would
    // leave it off.
    let plain = aws.home().join(".docker").join(&w.ip);
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(
        plain.join("connection_config.txt"),
        format!(
            "DOCK_USER={u}\nDOCK_MONIKER=server\nDOCK_HOSTNAME={ip}\nDOCK_IP={ip}\n",
            u = w.user,
            ip = w.ip
        ),
    )
    .unwrap();
    let (code, err) = idle_stop("server", true);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("dock server is not an EC2 dock (registered with register-dock")
            && err.contains("idle stop is for EC2 docks")
            && err.contains("`--set off` installs a watcher that only records"),
        "{err}"
    );
    assert!(!state_file.exists());
    // Read, it says the same plainly, not that `--set 1h` would install a watcher.
    aws.actions();
    let out = aws
        .cmd("dockerutils")
        .args(["idle-stop", "server"])
        .env("DOCKERUTILS_IDLE_ROOT", &w.root)
        .output()
        .unwrap();
    close_shared_connection(&aws, &w);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", text(&out.stderr));
    assert!(
        said.contains("Dock server: no idle watcher. Idle stop is for EC2 docks")
            && said.contains("registered with register-dock, without an EC2 instance"),
        "{said}"
    );
    assert!(
        aws.actions().is_empty(),
        "no AWS for a dock registered without one"
    );
    // --dry-run reads nothing, so without --set it is refused.
    let out = aws
        .cmd("dockerutils")
        .args(["idle-stop", "server", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--dry-run goes with --set"),
        "{}",
        text(&out.stderr)
    );

    // A stopped dock: start it first.
    let ids = aws.boto(
        "img = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
         r = ec2.run_instances(ImageId=img, MinCount=2, MaxCount=2)['Instances']\n\
         ec2.stop_instances(InstanceIds=[r[1]['InstanceId']])\n\
         out = [i['InstanceId'] for i in r]",
    );
    register(&aws, &w.ip, "answers", &w.user, ids[0].as_str().unwrap());
    register(
        &aws,
        "127.0.0.250",
        "parked",
        "ubuntu",
        ids[1].as_str().unwrap(),
    );
    let (code, err) = idle_stop("parked", true);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("dock parked is stopped: `start-dock parked` first"),
        "{err}"
    );
    // Read, or switched off: the same, from EC2's state, without trying ssh (the parked
    // dock's address is a silent one: ssh would wait for its timeout).
    let (_silent, silent_ip) = silent_dock();
    let parked = aws.home().join(".docker/127.0.0.250");
    std::fs::rename(&parked, aws.home().join(".docker").join(&silent_ip)).unwrap();
    let cfg = aws
        .home()
        .join(".docker")
        .join(&silent_ip)
        .join("connection_config.txt");
    let moved = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("127.0.0.250", &silent_ip);
    std::fs::write(&cfg, moved).unwrap();
    for args in [
        &["idle-stop", "parked"][..],
        &["idle-stop", "parked", "--set", "off"],
    ] {
        let out = aws.cmd("dockerutils").args(args).output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("dock parked is stopped: `start-dock parked` first"),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("did not answer") && !err.contains("ssh: "),
            "{args:?}: no ssh was tried: {err}"
        );
    }
    // A terminated dock: unregister it.
    let gone = aws.boto(
        "img = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
         i = ec2.run_instances(ImageId=img, MinCount=1, MaxCount=1)['Instances'][0]['InstanceId']\n\
         ec2.terminate_instances(InstanceIds=[i])\n\
         out = i",
    );
    register(
        &aws,
        "127.0.0.251",
        "gone",
        "ubuntu",
        gone.as_str().unwrap(),
    );
    let out = aws
        .cmd("dockerutils")
        .args(["idle-stop", "gone"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("dock gone is terminated") && err.contains("`unregister-dock gone`"),
        "{err}"
    );

    // The dock's user may not become root (the test dock's has no sudo): said, and nothing
    // installed.
    let (code, err) = idle_stop("answers", false);
    close_shared_connection(&aws, &w);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("cannot become root without a password (sudo -n)")
            && err.contains("hint: let the dock's user run sudo without a password"),
        "{err}"
    );
}
