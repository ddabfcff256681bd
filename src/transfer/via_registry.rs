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
//! 2. a forward from a port on the dock's 127.0.0.1 to it (`-R`, asked of the remote's
//!    control master by the SSH layer, `dock::session`; shown as the `ssh -O forward`
//!    that does the same): a random port of the dock's ephemeral range, another if sshd
//!    refuses it. A loopback registry needs no TLS for docker;
//! 3. on the dock, `docker pull` of a temporary reference (a random repository name on
//!    that port), `docker tag` to the image's name, and `docker rmi` of the temporary tag
//!    and the repo digest the pull recorded, whatever happened;
//! 4. the forward is cancelled (`ssh -O cancel`), and the registry stops.
//!
//! Interrupted (Ctrl-C, SIGTERM): the remote script's standard input is closed, on which it
//! stops the pull (`kill -INT`) and removes the temporary references; then the forward is
//! cancelled and the registry stopped. The same happens on the dock when this process or
//! its connection dies outright (the script's input ends with the connection); only the
//! forward then stays on the shared connection until it closes (its target port is closed
//! by then).

use super::registry::{Image, Server};
use super::remote::Remote;
use crate::dock::session::{Io, Mux};
use crate::engine::store::{self, StoredImage};
use crate::error::{Error, Result};
use crate::plan::quote;
use crate::process::{Command, Stdio};
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

/// Does the remote engine keep its images in the containerd store? One command; any
/// failure says no (the load path's own probe then says what is wrong).
fn containerd_store(remote: &Remote) -> bool {
    let script = format!(
        "{} info --format '{{{{json .DriverStatus}}}}' 2>/dev/null",
        remote.docker
    );
    match remote
        .mux()
        .and_then(|m| m.script_output_within(&script, CONTROL_LIMIT))
    {
        Ok(ran) if ran.success() => is_containerd_store(&ran.stdout),
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

/// `ssh OPTIONS CONTROL… -- DEST [COMMAND]` as a user could paste it: what the SSH layer
/// does, said the way ssh's own command line says it.
fn shown(remote: &Remote, control: &[&str], command: Option<&str>) -> String {
    remote
        .argv(control, command)
        .iter()
        .map(|w| quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `-R 127.0.0.1:REMOTE:127.0.0.1:LOCAL`. The bind address is said, so an sshd with
/// `GatewayPorts clientspecified` does not open it to the network.
fn spec(remote: &str, local: &str) -> String {
    format!("127.0.0.1:{remote}:127.0.0.1:{local}")
}

/// Ports tried on the dock: its ephemeral range (Linux's default), where nothing listens
/// for long; another when sshd cannot listen on one.
const PORT_TRIES: usize = 8;

fn random_port() -> u16 {
    let hex = random_hex();
    let n = u32::from_str_radix(&hex[..8], 16).unwrap_or(0);
    32768 + (n % (60999 - 32768 + 1)) as u16
}

/// The forward from a port on the dock's loopback to `local` here, cancelled when
/// dropped (on every way out).
struct Forward {
    mux: std::sync::Arc<Mux>,
    shown: String,
    local: u16,
    remote: u16,
}

impl Forward {
    fn open(remote: &Remote, local: u16) -> Result<Forward, Stop> {
        let mux = remote.mux()?;
        let to = std::net::SocketAddr::from(([127, 0, 0, 1], local));
        let mut why = String::new();
        for _ in 0..PORT_TRIES {
            let port = random_port();
            match mux.remote_forward(true, port, to) {
                Ok(()) => {
                    let spec = spec(&port.to_string(), &local.to_string());
                    eprintln!(
                        "{}   # {}'s 127.0.0.1:{port}",
                        shown(remote, &["-O", "forward", "-R", &spec], None),
                        remote.name
                    );
                    return Ok(Forward {
                        shown: shown(remote, &["-O", "cancel", "-R", &spec], None),
                        mux,
                        local,
                        remote: port,
                    });
                }
                Err(e) => why = e.to_string(),
            }
        }
        Err(Refused(format!(
            "{}'s sshd did not open a forward to this machine ({why}): remote forwarding \
             (AllowTcpForwarding) is needed for the registry path",
            remote.name
        )))
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        eprintln!("{}", self.shown);
        let to = std::net::SocketAddr::from(([127, 0, 0, 1], self.local));
        if let Err(e) = self.mux.remote_forward(false, self.remote, to) {
            eprintln!(
                "transfer-image: warning: the forward to 127.0.0.1:{} was not cancelled: {e}",
                self.local
            );
        }
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
    let temp = format!("127.0.0.1:PORT/{TEMP_REPO_PREFIX}RANDOM:{TEMP_TAG}");
    let digest = format!("127.0.0.1:PORT/{TEMP_REPO_PREFIX}RANDOM@MANIFEST_DIGEST");
    vec![
        source_line(image, real, from_store, "LOCALPORT"),
        format!(
            "{}   # PORT: a free port of {}'s loopback",
            shown(
                remote,
                &["-O", "forward", "-R", &spec("PORT", "LOCALPORT")],
                None
            ),
            remote.name
        ),
        shown(
            remote,
            &[],
            Some(&pull_script(&remote.docker, &temp, &digest, real)),
        ),
        shown(
            remote,
            &["-O", "cancel", "-R", &spec("PORT", "LOCALPORT")],
            None,
        ),
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
    // The remote's connection (the dock's shared master, started if it is not up).
    remote.mux()?;
    if crate::process::interrupted() {
        return Err(Failed(Error::Interrupted("nothing was sent".into())));
    }
    let forward = Forward::open(remote, local)?;
    let temp = format!("127.0.0.1:{}/{repo}:{TEMP_TAG}", forward.remote);
    let temp_digest = format!("127.0.0.1:{}/{repo}@{digest}", forward.remote);
    let script = pull_script(&remote.docker, &temp, &temp_digest, real);
    eprintln!("{}", shown(remote, &[], Some(&script)));
    // A channel of the master (no process here for a Ctrl-C to reach): we end the pull,
    // and what it left on the dock, ourselves. Started and waited for by a thread of its
    // own, so that this one can watch for Ctrl-C and the deadline meanwhile.
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let mux = remote.mux()?;
    let pull = std::thread::spawn(
        move || match mux.spawn_script(&script, Io::Socket, Io::Null) {
            Ok(mut child) => {
                let stdin = child.stdin.take();
                let _ = started_tx.send(Ok((stdin, child.cutter())));
                child.wait().ok().flatten()
            }
            Err(e) => {
                let _ = started_tx.send(Err(e));
                None
            }
        },
    );
    let (stdin, cut) = started_rx
        .recv()
        .map_err(|_| Error::Remote("the pull did not start".into()))??;
    // Open as long as the pull may go on: ending it stops the pull on the dock.
    let mut input = Some(stdin);
    let mut progress = Progress::new(total, several.then_some(remote.name.as_str()));
    let mut deadline = None;
    let status: Option<Option<i32>> = loop {
        if pull.is_finished() {
            break Some(pull.join().unwrap_or(None));
        }
        if crate::process::interrupted() && input.is_some() {
            // The bar goes before the line that says why it stops.
            progress.stop();
            eprintln!(
                "transfer-image: interrupted: stopping the pull on {}",
                remote.name
            );
            let _ = cut.end_input();
            input = None;
            deadline = Some(Instant::now() + STOP_LIMIT);
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            // Given up on: its channel is cut, the thread left to end with it.
            cut.cut();
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
        status == Some(Some(0)),
    );
    drop(forward);
    drop(server);
    let fetched = stats.fetched.lock().unwrap().clone();
    for error in stats.errors.lock().unwrap().iter() {
        eprintln!("transfer-image: reading layer {error}");
    }
    let sent = stats.sent.load(Ordering::Relaxed);
    let ok = status == Some(Some(0));
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
        return Ok(status.flatten().filter(|&c| c != 0).unwrap_or(1));
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
