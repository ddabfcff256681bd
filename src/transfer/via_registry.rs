//! transfer-image's registry path: the image is served by this process as a read-only
//! registry ([`super::registry`]), the dock's engine pulls it, and so fetches only
//! the blobs it lacks, whatever its image store. It is what engines with the containerd
//! image store need (their `docker load` refuses an archive without the layers they
//! already have, so the load path would send the whole image), and it is chosen for them
//! automatically (`docker info` reports `driver-type io.containerd.snapshotter.v1`), or
//! forced with `--via-registry`.
//!
//! The steps, each a command of its own (`--dry-run` prints them):
//! 1. the registry listens on this machine's 127.0.0.1, on a port the system picks;
//! 2. `ssh -O forward -R 127.0.0.1:0:127.0.0.1:PORT` adds a forward from the dock's 127.0.0.1 (a
//!    port sshd picks there) to it, on the dock's shared connection (a plain
//!    `[user@]host` gets a connection of its own for the transfer). A loopback registry
//!    needs no TLS for docker;
//! 3. on the dock, `docker pull` of a temporary reference (a random repository name on
//!    that port), `docker tag` to the image's name, and `docker rmi` of the temporary tag
//!    and the repo digest the pull recorded, whatever happened;
//! 4. `ssh -O cancel` of the forward, and the registry stops.
//!
//! Interrupted (Ctrl-C, SIGTERM): the remote script's standard input is closed, on which it
//! stops the pull (`kill -INT`) and removes the temporary references; then the forward is
//! cancelled and the registry stopped. The same happens on the dock when this process or
//! its connection dies outright (the script's input ends with the connection); only the
//! forward then stays on the shared connection until it closes (its target port is closed
//! by then).

use super::registry::{Image, Server};
use super::remote::Remote;
use crate::engine::store::{self, StoredImage};
use crate::error::{Error, Result};
use crate::plan::quote;
use crate::process::{Command, Stdio};
use crate::process::{Ended, bounded as run_bounded};
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long an ssh control command (check, forward, cancel) may take.
const CONTROL_LIMIT: Duration = Duration::from_secs(60);
/// How long the dock has to stop its pull and clean up after an interruption.
const STOP_LIMIT: Duration = Duration::from_secs(60);
/// The temporary repository's name on the dock: this prefix and 32 random hex digits.
pub(crate) const TEMP_REPO_PREFIX: &str = "dockerutils-transfer/";
const TEMP_TAG: &str = "transfer";

/// transfer-image's entry, before its own (`docker load`) path: `Some(exit code)` when
/// the image went through the registry path (or `--dry-run` showed it), `None` to go on
/// with `docker load`: not forced, and the dock's engine uses the classic store (or the
/// forward is refused, or the image has no name to give it there).
pub(crate) fn maybe_send(
    image: &str,
    remote: &Remote,
    store: Option<&StoredImage>,
    forced: bool,
    automatic: bool,
    dry_run: bool,
    several: bool,
) -> Result<Option<i32>> {
    if !forced && dry_run && automatic {
        // A dry run asks the dock nothing, so it cannot tell which path it would take.
        eprintln!(
            "transfer-image: (if {}'s engine uses the containerd image store, the image goes \
             through a registry instead: --via-registry --dry-run shows how)",
            remote.name
        );
    }
    if !forced && (dry_run || !automatic || !containerd_store(remote)) {
        return Ok(None);
    }
    let Some(real) = tagged_name(image)? else {
        let why = format!(
            "the registry path gives the image its name on {}: `{image}` is not one of its \
             NAME:TAG names",
            remote.name
        );
        if forced {
            return Err(Error::Usage(format!(
                "{why}; name it by NAME:TAG (`docker image ls` lists them)"
            )));
        }
        eprintln!("transfer-image: {why}; sending it with `docker load`");
        return Ok(None);
    };
    if dry_run {
        for line in shown_steps(image, &real, remote, store.is_some()) {
            println!("{line}");
        }
        return Ok(Some(0));
    }
    if !forced {
        eprintln!(
            "transfer-image: {} uses the containerd image store (its `docker load` takes only \
             whole images): sending through a registry, from which it pulls only the layers it lacks",
            remote.name
        );
    }
    match send(image, &real, remote, store, several) {
        Ok(code) => Ok(Some(code)),
        Err(Refused(why)) if !forced => {
            eprintln!("transfer-image: {why}; sending the image with `docker load` instead");
            Ok(None)
        }
        Err(Refused(why)) => Err(Error::Remote(format!(
            "{why}; without --via-registry the image goes by `docker load`"
        ))),
        Err(Failed(e)) => Err(e),
    }
}

/// Does the remote engine keep its images in the containerd store? One ssh; any failure
/// says no (the load path's own probe then says what is wrong).
fn containerd_store(remote: &Remote) -> bool {
    let mut cmd = remote.command(&format!(
        "{} info --format '{{{{json .DriverStatus}}}}'",
        remote.docker
    ));
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    match run_bounded(cmd, CONTROL_LIMIT, true) {
        Ok(Ended::Exited(out)) if out.status.success() => {
            is_containerd_store(&String::from_utf8_lossy(&out.stdout))
        }
        _ => false,
    }
}

/// `docker info`'s DriverStatus (JSON) of an engine with the containerd image store has
/// `["driver-type", "io.containerd.snapshotter.v1"]`.
fn is_containerd_store(driver_status: &str) -> bool {
    serde_json::from_str::<Vec<Vec<String>>>(driver_status.trim())
        .unwrap_or_default()
        .iter()
        .any(|pair| {
            pair.first().map(String::as_str) == Some("driver-type")
                && pair
                    .get(1)
                    .is_some_and(|v| v.starts_with("io.containerd.snapshotter"))
        })
}

/// The image's `NAME:TAG` (`name` is `name:latest`), if the local engine knows it by that
/// name; `None` for an id, a digest reference or a name that is not one of its tags.
fn tagged_name(image: &str) -> Result<Option<String>> {
    let tagged = store::tagged(image);
    let text = crate::engine::inspect_image(image, "{{json .RepoTags}}")?.ok_or_else(|| {
        Error::NoImage {
            image: image.into(),
        }
    })?;
    let tags: Vec<String> = serde_json::from_str(text.trim()).unwrap_or_default();
    Ok(tags.contains(&tagged).then_some(tagged))
}

/// How the registry path ended short.
enum Stop {
    /// The dock (or its sshd) does not do what the path needs: the load path may.
    Refused(String),
    Failed(Error),
}
use Stop::{Failed, Refused};

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Failed(e)
    }
}

/// ssh to the remote for this transfer: the remote, and a control connection of the
/// transfer's own when its options have none (`-O forward` needs a master).
struct Link {
    remote: Remote,
    /// The directory of our own control socket, when the remote has no shared connection.
    own: Option<tempfile::TempDir>,
}

impl Link {
    fn new(remote: &Remote) -> Result<Link> {
        let mut remote = remote.clone();
        let shared = remote.options.iter().any(|o| o.starts_with("ControlPath="));
        let own = if shared {
            None
        } else {
            let dir = tempfile::Builder::new()
                .prefix("dockerutils-cm-")
                .tempdir()
                .map_err(|e| Error::io("cannot make a directory for the ssh connection", e))?;
            let path = dir.path().join("cm");
            remote.options.extend(
                [
                    "ControlMaster=auto".to_string(),
                    format!(
                        "ControlPath={}",
                        crate::dock::ssh_config::path_word(&path, "")
                            .unwrap_or_else(|| path.display().to_string())
                    ),
                    // It ends by itself a minute after its last use, should `-O exit` never come.
                    "ControlPersist=60".to_string(),
                ]
                .into_iter()
                .flat_map(|o| ["-o".to_string(), o]),
            );
            Some(dir)
        };
        Ok(Link { remote, own })
    }

    fn argv(&self, control: &[&str], remote_command: Option<&str>) -> Vec<String> {
        self.remote.argv(control, remote_command)
    }

    fn command(&self, control: &[&str], remote_command: Option<&str>) -> Command {
        let argv = self.argv(control, remote_command);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd
    }

    fn shown(&self, control: &[&str], remote_command: Option<&str>) -> String {
        self.argv(control, remote_command)
            .iter()
            .map(|w| quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs an ssh command within CONTROL_LIMIT, its own process group (Ctrl-C is ours to
    /// handle), stdout and stderr captured.
    fn run(&self, control: &[&str], remote_command: Option<&str>) -> Result<std::process::Output> {
        let mut cmd = self.command(control, remote_command);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        match run_bounded(cmd, CONTROL_LIMIT, false).map_err(|e| Error::spawn("ssh", e))? {
            Ended::Exited(out) => Ok(out),
            _ => Err(Error::Remote(format!(
                "`{}` did not end within {} s",
                self.shown(control, remote_command),
                CONTROL_LIMIT.as_secs()
            ))),
        }
    }

    /// Makes sure the control connection is up (the shared one may have closed since the
    /// last command; our own is opened here).
    fn connect(&self, name: &str) -> Result<()> {
        if self.run(&["-O", "check"], None)?.status.success() {
            return Ok(());
        }
        let out = self.run(&[], Some("true"))?;
        if !out.status.success() {
            return Err(Error::Remote(format!(
                "cannot reach {name} over ssh: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// `-R 127.0.0.1:0:127.0.0.1:LOCAL`: a port sshd picks on the remote's loopback
    /// (`-O forward` prints it), forwarded to LOCAL here. The bind address is said, so an
    /// sshd with `GatewayPorts clientspecified` does not open it to the network.
    fn spec(local: &str) -> String {
        format!("127.0.0.1:0:127.0.0.1:{local}")
    }

    /// Adds the forward from a port on the dock's loopback to `local`: that port.
    fn forward(&self, local: u16, name: &str) -> Result<u16, Stop> {
        let spec = Self::spec(&local.to_string());
        let args = ["-O", "forward", "-R", &spec];
        let out = self.run(&args, None)?;
        let port = String::from_utf8_lossy(&out.stdout).trim().parse::<u16>();
        match port {
            Ok(port) if out.status.success() && port > 0 => {
                eprintln!("{}   # {name}'s 127.0.0.1:{port}", self.shown(&args, None));
                Ok(port)
            }
            _ => Err(Refused(format!(
                "{name}'s sshd did not open a forward to this machine ({}): remote forwarding \
                 (AllowTcpForwarding) is needed for the registry path",
                String::from_utf8_lossy(&out.stderr).trim()
            ))),
        }
    }

    fn cancel(&self, local: u16) {
        let spec = Self::spec(&local.to_string());
        let args = ["-O", "cancel", "-R", &spec];
        eprintln!("{}", self.shown(&args, None));
        match self.run(&args, None) {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "transfer-image: warning: the forward to 127.0.0.1:{local} was not cancelled: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => eprintln!("transfer-image: warning: {e}"),
        }
    }
}

impl Drop for Link {
    /// Our own control connection ends with the transfer.
    fn drop(&mut self) {
        if self.own.is_some() {
            let _ = self.run(&["-O", "exit"], None);
        }
    }
}

/// The forward, cancelled when dropped (on every way out).
struct Forward<'a> {
    link: &'a Link,
    local: u16,
    remote: u16,
}

impl Drop for Forward<'_> {
    fn drop(&mut self) {
        self.link.cancel(self.local);
    }
}

/// The remote script: pull the temporary reference, tag it with the image's name, remove
/// the temporary references whatever happened (the tag, and the repo digest the pull
/// recorded: docker 20.10 drops that with the repository's last tag, an engine that does
/// not would keep it). Its standard input is the transfer's
/// connection: when it ends (Ctrl-C here, this process or the connection gone), the pull
/// is stopped. One line, run by `sh` whatever the login shell.
fn pull_script(docker: &str, temp: &str, temp_digest: &str, real: &str) -> String {
    let script = format!(
        "exec 3<&0; d={docker}; \
         $d pull -q {temp} >/dev/null & pull=$!; \
         {{ while read -r _; do :; done <&3; kill -INT $pull; }} >/dev/null 2>&1 & watch=$!; \
         wait $pull; rc=$?; kill $watch 2>/dev/null; \
         if [ $rc -eq 0 ]; then $d tag {temp} {real} || rc=$?; fi; \
         $d rmi {temp} {temp_digest} >/dev/null 2>&1; exit $rc",
        docker = quote(docker),
        real = quote(real),
    );
    format!("sh -c {}", quote(&script))
}

/// The first step as it is shown: where the image is read, and the registry's port here.
fn source_line(image: &str, real: &str, from_store: bool, local: &str) -> String {
    format!(
        "{} | a read-only registry of {} on 127.0.0.1:{local}",
        if from_store {
            format!("(the layers of {image} from the engine's storage)")
        } else {
            format!(
                "docker save {} (unpacked in a temporary directory)",
                quote(image)
            )
        },
        quote(real)
    )
}

/// `--dry-run`: the steps, with the ports and the temporary name as placeholders.
fn shown_steps(image: &str, real: &str, remote: &Remote, from_store: bool) -> Vec<String> {
    let link = match Link::new(remote) {
        Ok(link) => link,
        Err(e) => return vec![e.to_string()],
    };
    let temp = format!("127.0.0.1:PORT/{TEMP_REPO_PREFIX}RANDOM:{TEMP_TAG}");
    let digest = format!("127.0.0.1:PORT/{TEMP_REPO_PREFIX}RANDOM@MANIFEST_DIGEST");
    vec![
        source_line(image, real, from_store, "LOCALPORT"),
        format!(
            "{}   # prints PORT, the forward's end on {}",
            link.shown(&["-O", "forward", "-R", &Link::spec("LOCALPORT")], None),
            remote.name
        ),
        link.shown(
            &[],
            Some(&pull_script(&remote.docker, &temp, &digest, real)),
        ),
        link.shown(&["-O", "cancel", "-R", &Link::spec("LOCALPORT")], None),
    ]
}

/// A random name: 32 hex digits.
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if read.is_err() {
        // Unique enough for a name that lives as long as the transfer.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = (t ^ ((std::process::id() as u128) << 64)).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The image served (from the engine's storage, else `docker save`), and whether it is
/// the storage.
fn served_image(image: &str, store: Option<&StoredImage>, repo: &str) -> Result<(Image, bool)> {
    if let Some(store) = store {
        match Image::from_store(store.clone(), repo, TEMP_TAG) {
            Ok(served) => return Ok((served, true)),
            Err(e) => eprintln!(
                "transfer-image: reading {image} from the engine's storage failed ({e}): using docker save"
            ),
        }
    }
    let mut save = crate::process::spawn(
        Command::new("docker")
            .args(["save", image])
            .stdout(Stdio::piped()),
    )
    .map_err(|e| Error::spawn("docker", e))?;
    let stdout = save.stdout.take().expect("piped");
    let saved = super::saved::unpack(stdout, &crate::process::interrupted);
    if saved.is_err() {
        save.kill();
    }
    let status = save.wait();
    if crate::process::interrupted() {
        return Err(Error::Interrupted(format!(
            "docker save {image} stopped; nothing was sent"
        )));
    }
    let saved = saved.map_err(|e| Error::io(format!("reading `docker save {image}`"), e))?;
    if !status.map(|s| s.success()).unwrap_or(false) {
        return Err(Error::Remote(format!("docker save {image} failed")));
    }
    Ok((Image::from_saved(saved, repo, TEMP_TAG), false))
}

fn send(
    image: &str,
    real: &str,
    remote: &Remote,
    store: Option<&StoredImage>,
    several: bool,
) -> Result<i32, Stop> {
    crate::process::install_signal_handlers();
    let started = Instant::now();
    let repo = format!("{TEMP_REPO_PREFIX}{}", random_hex());
    let (served, from_store) = served_image(image, store, &repo)?;
    let layers = served.layers().to_vec();
    let total = served.layer_bytes();
    let digest = served.manifest_digest().to_string();
    let server = Server::start(served).map_err(|e| Error::io("cannot start the registry", e))?;
    let stats = server.stats().clone();
    let local = server.port();
    eprintln!(
        "{}",
        source_line(image, real, from_store, &local.to_string())
    );
    let link = Link::new(remote)?;
    link.connect(&remote.name)?;
    if crate::process::interrupted() {
        return Err(Failed(Error::Interrupted("nothing was sent".into())));
    }
    let port = link.forward(local, &remote.name)?;
    let forward = Forward {
        link: &link,
        local,
        remote: port,
    };
    let temp = format!("127.0.0.1:{}/{repo}:{TEMP_TAG}", forward.remote);
    let temp_digest = format!("127.0.0.1:{}/{repo}@{digest}", forward.remote);
    let script = pull_script(&remote.docker, &temp, &temp_digest, real);
    eprintln!("{}", link.shown(&[], Some(&script)));
    // Its own process group: a Ctrl-C here reaches us, and we end the pull (and what it
    // left on the dock) ourselves.
    let mut pull = crate::process::spawn_in_own_group(
        link.command(&[], Some(&script))
            .stdin(Stdio::piped())
            .stdout(Stdio::null()),
    )
    .map_err(|e| Error::spawn("ssh", e))?;
    // Open as long as the pull may go on: closing it stops the pull on the dock.
    let mut input = pull.stdin.take();
    let mut progress = Progress::new(total, several.then_some(remote.name.as_str()));
    let mut deadline = None;
    let status = loop {
        if let Some(status) = pull
            .try_wait()
            .map_err(|e| Error::io("waiting for ssh", e))?
        {
            break Some(status);
        }
        if crate::process::interrupted() && input.is_some() {
            // The bar goes before the line that says why it stops.
            progress.stop();
            eprintln!(
                "transfer-image: interrupted: stopping the pull on {}",
                remote.name
            );
            input = None;
            deadline = Some(Instant::now() + STOP_LIMIT);
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            // SAFETY: kill(2) of our child's own process group; the child is not reaped.
            unsafe { libc::kill(-(pull.id() as i32), libc::SIGKILL) };
            let _ = pull.wait();
            break None;
        }
        progress.show(
            stats.read.load(Ordering::Relaxed),
            stats.sent.load(Ordering::Relaxed),
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(input);
    // The pull ended: the counts are final (the last tenth may have passed between two
    // looks), and the line says them, as the summary will.
    progress.finish(
        stats.read.load(Ordering::Relaxed),
        stats.sent.load(Ordering::Relaxed),
        status.as_ref().is_some_and(|s| s.success()),
    );
    drop(forward);
    drop(server);
    let fetched = stats.fetched.lock().unwrap().clone();
    for error in stats.errors.lock().unwrap().iter() {
        eprintln!("transfer-image: reading layer {error}");
    }
    let sent = stats.sent.load(Ordering::Relaxed);
    let ok = status.as_ref().is_some_and(|s| s.success());
    if status.is_none() {
        return Err(Failed(Error::Interrupted(format!(
            "{} did not say within {} s that its pull stopped; the forward is cancelled, but \
             look there for `{TEMP_REPO_PREFIX}` images (`docker images`)",
            remote.name,
            STOP_LIMIT.as_secs()
        ))));
    }
    if !ok && crate::process::interrupted() {
        return Err(Failed(Error::Interrupted(format!(
            "{} was left as it was (the pull stopped, the temporary references removed, the \
             forward cancelled)",
            remote.name
        ))));
    }
    if !ok {
        eprintln!(
            "transfer-image: error: {} did not pull the image (see the messages above)",
            remote.name
        );
        return Ok(status
            .and_then(|s| s.code())
            .filter(|&c| c != 0)
            .unwrap_or(1));
    }
    let fetched_layers = layers.iter().filter(|l| fetched.contains(l)).count();
    let mut encodings = stats.encodings.lock().unwrap().clone();
    encodings.sort();
    encodings.dedup();
    eprintln!(
        "transfer-image: sent {} ({sent} bytes) to {} in {:.1}s (through a registry: {fetched_layers} \
         of {} layers fetched{})",
        mib(sent),
        remote.name,
        started.elapsed().as_secs_f64(),
        layers.len(),
        if encodings.is_empty() {
            String::new()
        } else {
            format!(", {}", encodings.join(" and "))
        }
    );
    Ok(0)
}

fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / 1048576.0)
}

/// Progress of the layers read: a bar on a terminal, a line per tenth otherwise, named
/// after the destination when there are several (each has its own registry path, one
/// after the other, and lines of the load path may come between).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    tenth: u64,
    prefix: String,
    stopped: bool,
}

impl Progress {
    fn new(total: u64, name: Option<&str>) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::stderr(),
            );
            // `wide_bar` takes what the terminal's width leaves: the line never wraps.
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{prefix}{wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
            ) {
                bar.set_style(style);
            }
            bar.set_prefix(name.map(|n| format!("{n} ")).unwrap_or_default());
            bar
        });
        Progress {
            bar,
            total: total.max(1),
            tenth: 0,
            prefix: name.map(|n| format!("{n}: ")).unwrap_or_default(),
            stopped: false,
        }
    }

    fn show(&mut self, read: u64, sent: u64) {
        if self.stopped {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.set_position(read);
            bar.set_message(format!("{} sent", mib(sent)));
            return;
        }
        // 100% is said by `finish`, with the final counts.
        let tenth = (read * 10 / self.total).min(9);
        if tenth > self.tenth {
            self.tenth = tenth;
            self.say(&format!("{tenth}0%"), read, sent);
        }
    }

    fn say(&self, done: &str, read: u64, sent: u64) {
        eprintln!(
            "transfer-image: {}{done} ({} read, {} sent)",
            self.prefix,
            mib(read),
            mib(sent)
        );
    }

    /// The bar is cleared; without one, a last line with the final counts when the pull
    /// succeeded.
    /// Nothing more is shown (an interruption): the bar is cleared now.
    fn stop(&mut self) {
        self.stopped = true;
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn finish(&self, read: u64, sent: u64, ok: bool) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None if ok => self.say("100%", read, sent),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_containerd_store_is_told_by_its_driver_type() {
        assert!(is_containerd_store(
            r#"[["driver-type","io.containerd.snapshotter.v1"]]"#
        ));
        assert!(!is_containerd_store(
            r#"[["Backing Filesystem","extfs"],["Supports d_type","true"]]"#
        ));
        assert!(!is_containerd_store("null\n"));
        assert!(!is_containerd_store(""));
    }

    #[test]
    fn the_pull_script_quotes_the_name_and_runs_in_sh() {
        let script = pull_script(
            "sudo -n docker",
            "127.0.0.1:5/r:t",
            "127.0.0.1:5/r@sha256:ab",
            "we'ird;$(x):1",
        );
        let words = shlex::split(&script).unwrap();
        assert_eq!(words[..2], ["sh", "-c"]);
        let inner = &words[2];
        assert!(
            inner.starts_with("exec 3<&0; d='sudo -n docker'; "),
            "{inner}"
        );
        // The name is one word for sh, as it is.
        let inner_words = shlex::split(inner).unwrap();
        let tag = inner_words.iter().position(|w| w == "tag").unwrap();
        assert_eq!(
            inner_words[tag + 1..tag + 3],
            ["127.0.0.1:5/r:t", "we'ird;$(x):1"]
        );
        assert!(
            inner.contains("rmi 127.0.0.1:5/r:t 127.0.0.1:5/r@sha256:ab"),
            "{inner}"
        );
    }
}
