//! `transfer-image IMAGE DEST`: send a local image to a dock (or any `[user@]host[:port]`
//! that runs docker) over SSH, sending only the layers the remote does not have.
//!
//! The image archive is streamed through this process into zstd (gzip when the remote has
//! no zstd) and over ssh into `docker load` on the remote. Where this process can read the
//! local engine's storage (root, overlay2), the archive is put together from it directly
//! ([`crate::engine_store`]): byte for byte what `docker save` gives, without the daemon
//! first writing the whole archive to a temporary directory; elsewhere, or with
//! `--docker-save`, it is `docker save IMAGE`. Before that, the remote's images are listed
//! (their layer chains, by diff id): the layers of IMAGE whose chain the remote already
//! holds are left out of the archive, which the classic `docker load` accepts (it only
//! opens the file of a layer it does not have). If the remote refuses that archive,
//! `docker save` is sent whole. Nothing is written to disk on either side but what
//! `docker load` itself keeps; an interrupted transfer leaves the remote as it was.

use crate::compress::AdaptiveZstd;
use crate::dock::{self, Dock};
use crate::engine_store::{self, StoredImage};
use crate::error::{Error, Result};
use crate::plan::quote;
use crate::project::Project;
use crate::tags;
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{IsTerminal, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Parser)]
#[command(
    name = "transfer-image",
    version,
    about = "Send a local image to a dock or an ssh host running docker, only the layers it lacks",
    after_help = "Examples:\n  transfer-image dev gpu-box                     # in a project: its dev image\n  transfer-image myproj-base:ann gpu-box\n  transfer-image myproj-base:ann admin@10.0.0.7:2222 --sudo\n  transfer-image myproj-base:ann gpu-box --full   # send every layer"
)]
pub struct Args {
    /// The image: inside a project, one of its images (a docker/ subdirectory or a
    /// synthetic image of the cfg); else NAME[:TAG] or an image id
    pub image: String,
    /// A registered dock (moniker or IP), or [user@]host[:port]
    pub dest: String,
    /// Run docker on the remote with `sudo -n`
    #[arg(long)]
    pub sudo: bool,
    /// Send every layer, even those the remote has
    #[arg(long)]
    pub full: bool,
    /// Read the image with `docker save`, even where this process can read the engine's
    /// storage (by default the layers are read from it directly: faster)
    #[arg(long)]
    pub docker_save: bool,
    /// Send the image through a temporary read-only registry that the remote's engine
    /// pulls from (what an engine with the containerd image store gets by default)
    #[arg(long, conflicts_with = "full")]
    pub via_registry: bool,
    /// Print what would run, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// How to reach the remote: the ssh command line up to and including the destination.
pub struct Remote {
    pub ssh: Vec<String>,
    pub docker: String,
    pub name: String,
}

impl Remote {
    pub fn for_dest(dest: &str, sudo: bool) -> Result<Remote> {
        let docker = if sudo { "sudo -n docker" } else { "docker" }.to_string();
        // A destination is a host, never an ssh option (`-oProxyCommand=…` would run a
        // local command); ssh also gets `--` before it below.
        if dest.starts_with('-') {
            return Err(Error::Usage(format!(
                "`{dest}` is not a destination: name a dock, or [user@]host[:port]"
            )));
        }
        match dock::find(dest) {
            Ok(d) => Ok(Remote::for_dock(&d, docker)),
            Err(e) if !looks_like_host(dest) => Err(e),
            Err(_) => {
                let (login, port) = match dest.rsplit_once(':') {
                    Some((l, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
                        (l, Some(p))
                    }
                    _ => (dest, None),
                };
                let own = dock::registry_dir()
                    .join(".dockerutils")
                    .join("known_hosts");
                let users = dirs::home_dir()
                    .unwrap_or_default()
                    .join(".ssh")
                    .join("known_hosts");
                let mut ssh: Vec<String> = [
                    "ssh",
                    "-o",
                    "StrictHostKeyChecking=accept-new",
                    "-o",
                    "ConnectTimeout=10",
                    "-o",
                    "LogLevel=error",
                ]
                .map(String::from)
                .to_vec();
                ssh.push("-o".into());
                ssh.push(format!(
                    "UserKnownHostsFile={} {}",
                    own.display(),
                    users.display()
                ));
                if let Some(port) = port {
                    ssh.extend(["-p".to_string(), port.to_string()]);
                }
                ssh.extend(["--".to_string(), login.to_string()]);
                let _ = std::fs::create_dir_all(dock::registry_dir().join(".dockerutils"));
                Ok(Remote {
                    ssh,
                    docker,
                    name: dest.to_string(),
                })
            }
        }
    }

    fn for_dock(d: &Dock, docker: String) -> Remote {
        let mut ssh = vec!["ssh".to_string()];
        ssh.extend(d.ssh_options());
        ssh.extend([
            "-o".to_string(),
            "LogLevel=error".to_string(),
            "--".to_string(),
            d.destination(),
        ]);
        Remote {
            ssh,
            docker,
            name: d.name().to_string(),
        }
    }

    fn command(&self, remote_script: &str) -> Command {
        let mut cmd = Command::new(&self.ssh[0]);
        cmd.args(&self.ssh[1..]).arg(remote_script);
        cmd
    }
}

fn looks_like_host(dest: &str) -> bool {
    dest.contains(['.', '@', ':']) || dest == "localhost"
}

/// The local image: its layers (diff ids, in order), its size, and, when this process can
/// read the engine's storage, the image there (sent without `docker save`).
struct Local {
    layers: Vec<String>,
    size: u64,
    store: Option<StoredImage>,
}

fn local_image(image: &str, docker_save: bool) -> Result<Local> {
    let text =
        crate::docker::inspect_image(image, "{{json .}}")?.ok_or_else(|| Error::NoImage {
            image: image.into(),
        })?;
    let inspect: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Remote(format!("docker image inspect {image}: {e}")))?;
    let layers = inspect["RootFS"]["Layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    Ok(Local {
        layers,
        size: inspect["Size"].as_u64().unwrap_or(0),
        store: if docker_save {
            None
        } else {
            engine_store::open(&inspect, image)
        },
    })
}

/// What the remote has: its compressor and the layer chains of its images.
struct RemoteState {
    zstd: bool,
    chains: HashSet<Vec<String>>,
}

/// One ssh: is docker there, is zstd, and every image's layer chain.
fn probe(remote: &Remote) -> Result<RemoteState> {
    let script = format!(
        "command -v docker >/dev/null 2>&1 || {{ echo 'docker: command not found' >&2; exit 3; }}; \
         if command -v zstd >/dev/null 2>&1; then echo zstd; else echo gzip; fi; \
         {d} image ls -q --no-trunc | sort -u | xargs -r {d} image inspect --format '{{{{range .RootFS.Layers}}}}{{{{.}}}} {{{{end}}}}'",
        d = remote.docker
    );
    let out = remote
        .command(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("cannot run ssh", e))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let what = match out.status.code() {
            Some(3) => format!("{} has no docker on its PATH", remote.name),
            Some(255) => format!("cannot reach {} over ssh: {stderr}", remote.name),
            _ => format!("listing the images on {} failed: {stderr}", remote.name),
        };
        return Err(Error::Remote(what));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let zstd = lines.next() == Some("zstd");
    let mut chains = HashSet::new();
    for line in lines {
        let layers: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        for n in 1..=layers.len() {
            chains.insert(layers[..n].to_vec());
        }
    }
    Ok(RemoteState { zstd, chains })
}

/// How many bottom layers of `layers` the remote already holds (by chain).
fn layers_present(layers: &[String], chains: &HashSet<Vec<String>>) -> usize {
    (1..=layers.len())
        .take_while(|&n| chains.contains(&layers[..n].to_vec()))
        .last()
        .unwrap_or(0)
}

fn docker_save(image: &str) -> std::io::Result<std::process::Child> {
    Command::new("docker")
        .args(["save", image])
        .stdout(Stdio::piped())
        .spawn()
}

/// The archive paths of the layer files whose content is one of `diff_ids`: a pass over
/// `docker save` that hashes every layer file (an archive names layers by its own ids).
fn layer_paths(image: &str, diff_ids: &HashSet<String>) -> Result<HashSet<String>> {
    let mut save = docker_save(image).map_err(|e| Error::spawn("docker", e))?;
    let mut archive = tar::Archive::new(save.stdout.take().unwrap());
    let mut paths = HashSet::new();
    let io = |e| Error::io("reading docker save", e);
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.to_string_lossy().into_owned();
        if !is_layer_file(&path) {
            continue;
        }
        let mut hasher = Sha256::new();
        std::io::copy(&mut entry, &mut hasher).map_err(io)?;
        let digest = format!("sha256:{:x}", hasher.finalize());
        if diff_ids.contains(&digest) {
            paths.insert(path);
        }
    }
    let _ = save.wait();
    Ok(paths)
}

/// `<id>/layer.tar` (classic archives) or `blobs/sha256/<hex>` (OCI archives).
fn is_layer_file(path: &str) -> bool {
    path.ends_with("/layer.tar") || path.starts_with("blobs/")
}

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    count: Arc<AtomicU64>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reports progress: a bar on a terminal, a line per tenth otherwise.
struct Progress {
    bar: ProgressBar,
    total: u64,
    read: u64,
    tenth: u64,
    wire: Arc<AtomicU64>,
}

impl Progress {
    fn new(total: u64, wire: Arc<AtomicU64>) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if std::io::stderr().is_terminal() {
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
                )
                .unwrap(),
            );
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        Progress {
            bar,
            total: total.max(1),
            read: 0,
            tenth: 0,
            wire,
        }
    }

    fn add(&mut self, n: u64) {
        self.read += n;
        let sent = self.wire.load(Ordering::Relaxed);
        self.bar.set_position(self.read);
        self.bar.set_message(format!("({} on the wire)", mib(sent)));
        let tenth = (self.read * 10 / self.total).min(10);
        if self.bar.is_hidden() && tenth > self.tenth {
            self.tenth = tenth;
            eprintln!(
                "transfer-image: {}0% ({} read, {} sent)",
                tenth,
                mib(self.read),
                mib(sent)
            );
        }
    }
}

fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / 1048576.0)
}

/// Where the archive comes from.
enum Source<'a> {
    /// `docker save`, leaving out these layer files.
    Save { omit: HashSet<String> },
    /// The engine's storage, leaving out the files of this many bottom layers.
    Store { image: &'a StoredImage, skip: usize },
}

/// Streams the archive compressed into `docker load` on the remote. Returns the bytes
/// sent, whether the remote loaded it, and the zstd level the stream ended at.
fn send(
    image: &str,
    remote: &Remote,
    zstd: bool,
    source: &Source,
    total: u64,
) -> Result<(u64, bool, Option<i32>)> {
    let decompress = if zstd { "zstd -dc" } else { "gzip -dc" };
    let mut ssh = remote
        .command(&format!("{decompress} | {} load", remote.docker))
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("cannot run ssh", e))?;
    let wire = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: ssh.stdin.take().unwrap(),
        count: wire.clone(),
    };
    let mut progress = Progress::new(total, wire.clone());
    let streamed = (|| -> std::io::Result<Option<i32>> {
        let out = if zstd {
            Compressor::Zstd(AdaptiveZstd::new(counting)?)
        } else {
            Compressor::Gzip(flate2::write::GzEncoder::new(
                counting,
                flate2::Compression::fast(),
            ))
        };
        let out = match source {
            Source::Store { image, skip } => {
                image.write_archive(*skip, out, &mut |n| progress.add(n))?
            }
            Source::Save { omit } => rewrite_saved(image, omit, out, &mut progress)?,
        };
        out.finish()
    })();
    let loaded = ssh.wait().map(|s| s.success()).unwrap_or(false);
    progress.bar.finish_and_clear();
    let sent = wire.load(Ordering::Relaxed);
    match streamed {
        Ok(level) => Ok((sent, loaded, level)),
        // A broken pipe means the remote side ended: ssh's own message says why.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok((sent, false, None)),
        // The stream stopped before the archive's manifest (written last): the remote
        // loads nothing, and the caller sends `docker save` instead.
        Err(e) if matches!(source, Source::Store { .. }) => {
            eprintln!("transfer-image: reading {image} from the engine's storage failed: {e}");
            Ok((sent, false, None))
        }
        Err(e) => Err(Error::io("streaming the image", e)),
    }
}

/// `docker save IMAGE` copied into `out`, without the files in `omit`.
fn rewrite_saved<W: Write>(
    image: &str,
    omit: &HashSet<String>,
    out: W,
    progress: &mut Progress,
) -> std::io::Result<W> {
    let mut save = docker_save(image)?;
    let copied = (|| {
        let mut builder = tar::Builder::new(out);
        let mut archive = tar::Archive::new(save.stdout.take().unwrap());
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.to_string_lossy().into_owned();
            let size = entry.header().size()?;
            if omit.contains(&path) {
                progress.add(size);
                continue;
            }
            let header = entry.header().clone();
            let mut reader = ProgressReader {
                inner: &mut entry,
                progress: &mut *progress,
            };
            builder.append(&header, &mut reader)?;
        }
        builder.into_inner()
    })();
    // The pipe is closed by now (the archive is gone): docker save cannot block on it.
    let _ = save.wait();
    copied
}

/// The compressor in front of the link: adaptive zstd, or gzip for a remote without zstd.
enum Compressor<W: Write + Send + 'static> {
    Zstd(AdaptiveZstd<W>),
    Gzip(flate2::write::GzEncoder<W>),
}

impl<W: Write + Send + 'static> Compressor<W> {
    /// Ends the stream; the zstd level it ended at.
    fn finish(self) -> std::io::Result<Option<i32>> {
        match self {
            Compressor::Zstd(z) => {
                let level = z.level();
                z.finish()?;
                Ok(Some(level))
            }
            Compressor::Gzip(g) => g.finish().map(|_| None),
        }
    }
}

impl<W: Write + Send + 'static> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Compressor::Zstd(z) => z.write(buf),
            Compressor::Gzip(g) => g.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Compressor::Zstd(z) => z.flush(),
            Compressor::Gzip(g) => g.flush(),
        }
    }
}

struct ProgressReader<'a, R> {
    inner: R,
    progress: &'a mut Progress,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

/// IMAGE as every other command takes it: inside a project, the name of one of its
/// images (a `docker/` subdirectory or a synthetic image of the cfg) means that image,
/// `name:tag` as its section designates it, the newest build for `tag=timestamp`;
/// anything else (or outside a project) is a docker reference.
fn resolve_image(given: &str, user: &str) -> Result<String> {
    let project = match Project::discover_here(user) {
        Ok(project) => project,
        Err(Error::NoProject { .. }) => return Ok(given.to_string()),
        Err(e) => return Err(e),
    };
    if !project.image_names()?.iter().any(|n| n == given) {
        return Ok(given.to_string());
    }
    let image = tags::newest_here(project.image_ref(given)?)?;
    if image.tag == tags::TIMESTAMP {
        return Err(Error::Usage(format!(
            "no build of {} here ([{given}] tag=timestamp): build-image {given}",
            image.name
        )));
    }
    Ok(image.to_string())
}

fn run(args: &Args) -> Result<i32> {
    let image = resolve_image(&args.image, &crate::project::user_name())?;
    let args = &Args {
        image,
        dest: args.dest.clone(),
        ..*args
    };
    let remote = Remote::for_dest(&args.dest, args.sudo)?;
    let local = local_image(&args.image, args.docker_save)?;
    // Engines whose `docker load` takes only whole images (the containerd store) pull the
    // image from a registry instead (src/commands/transfer_registry.rs).
    if let Some(code) = super::transfer_registry::maybe_send(
        &args.image,
        &remote,
        local.store.as_ref(),
        args.via_registry,
        !args.full,
        args.dry_run,
    )? {
        return Ok(code);
    }
    let layers = &local.layers;
    let shown = |zstd: bool| {
        format!(
            "{} | {} | {} '{} | {} load'",
            match &local.store {
                Some(_) => format!("(the layers of {} from the engine's storage)", args.image),
                None => format!("docker save {}", quote(&args.image)),
            },
            if zstd { "zstd" } else { "gzip" },
            remote
                .ssh
                .iter()
                .map(|w| quote(w))
                .collect::<Vec<_>>()
                .join(" "),
            if zstd { "zstd -dc" } else { "gzip -dc" },
            remote.docker
        )
    };
    if args.dry_run {
        println!("{}", shown(true));
        return Ok(0);
    }
    let state = probe(&remote)?;
    let present = if args.full {
        0
    } else {
        layers_present(layers, &state.chains)
    };
    let source = match &local.store {
        Some(image) => Source::Store {
            image,
            skip: present,
        },
        None if present > 0 => {
            let ids: HashSet<String> = layers[..present].iter().cloned().collect();
            Source::Save {
                omit: layer_paths(&args.image, &ids)?,
            }
        }
        None => Source::Save {
            omit: HashSet::new(),
        },
    };
    eprintln!("{}", shown(state.zstd));
    let what = match layers.len() - present {
        0 => "the image's configuration only".to_string(),
        missing => format!("{missing} of {} layers", layers.len()),
    };
    eprintln!(
        "{present} of {} layers already on {}: sending {what}",
        layers.len(),
        remote.name
    );
    let started = std::time::Instant::now();
    let (mut sent, mut loaded, mut level) =
        send(&args.image, &remote, state.zstd, &source, local.size)?;
    let whole = matches!(&source, Source::Save { omit } if omit.is_empty());
    if !loaded && !whole {
        eprintln!(
            "transfer-image: {} did not take the archive; sending `docker save {}` whole",
            remote.name, args.image
        );
        let full = Source::Save {
            omit: HashSet::new(),
        };
        let (more, ok, last) = send(&args.image, &remote, state.zstd, &full, local.size)?;
        sent += more;
        loaded = ok;
        level = last;
    }
    if !loaded {
        eprintln!(
            "transfer-image: error: {} did not load the image (see the messages above)",
            remote.name
        );
        return Ok(1);
    }
    eprintln!(
        "transfer-image: sent {} ({} bytes) to {} in {:.1}s{}",
        mib(sent),
        sent,
        remote.name,
        started.elapsed().as_secs_f64(),
        match level {
            Some(level) => format!(" (zstd level {level} at the end)"),
            None => " (gzip)".to_string(),
        }
    );
    Ok(0)
}

pub fn main(argv: Vec<std::ffi::OsString>) -> i32 {
    let args = Args::parse_from(argv);
    // In a docked shell DOCKER_HOST points at the dock, but what transfer-image sends is
    // this machine's image (run-image's hint says `transfer-image IMAGE DOCK` to a docked
    // shell): the DOCKER_HOST that `source dock` set is not the source.
    if let Some(dock) = dock::current()
        && std::env::var("DOCKER_HOST").ok() == Some(dock.ssh_url())
    {
        eprintln!(
            "transfer-image: docked to {}: the image is read from this machine's engine",
            dock.name()
        );
        // SAFETY: at the start of main, before this process starts any thread.
        unsafe { std::env::remove_var("DOCKER_HOST") };
    }
    super::exit_code("transfer-image", run(&args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_bottom_layers_the_remote_holds() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut chains = HashSet::new();
        for n in 1..=2 {
            chains.insert(l(&["a", "b", "x"])[..n].to_vec());
        }
        assert_eq!(layers_present(&l(&["a", "b", "c"]), &chains), 2);
        assert_eq!(
            layers_present(&l(&["b", "c"]), &chains),
            0,
            "same layer, other chain"
        );
        assert_eq!(layers_present(&l(&["a"]), &chains), 1);
        assert!(looks_like_host("admin@10.0.0.7:2222") && !looks_like_host("gpu-box"));
    }
}
