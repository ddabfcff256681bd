//! The work for one destination: the image's archive, without the layers the destination
//! holds, compressed (adaptive zstd, or gzip where the remote has no zstd) into `docker
//! load` there over ssh; and what came of it.

use super::remote::{self, Remote};
use super::source::{LocalImage, docker_save, layer_paths};
use crate::compress::AdaptiveZstd;
use crate::engine_store::StoredImage;
use crate::error::{Error, Result};
use crate::plan::quote;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashSet;
use std::io::{IsTerminal, Read, Write};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What came of one destination.
pub struct Outcome {
    /// Whether the destination's `docker load` took the image.
    pub loaded: bool,
    /// Compressed bytes sent over the link.
    pub sent: u64,
    /// The zstd level the stream ended at (None: gzip).
    pub level: Option<i32>,
    pub elapsed: std::time::Duration,
}

/// The pipeline as the user would type it: how the archive is read, compressed, and
/// loaded on `remote`.
pub fn shown(image: &LocalImage, remote: &Remote, zstd: bool) -> String {
    format!(
        "{} | {} | {} '{} | {} load'",
        match &image.store {
            Some(_) => format!(
                "(the layers of {} from the engine's storage)",
                image.reference
            ),
            None => format!("docker save {}", quote(&image.reference)),
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
}

/// Sends `image` to `remote`: asks what it holds, sends the rest, and, if it refuses an
/// archive without the layers it holds (or the engine's storage could not be read),
/// `docker save` whole.
pub fn to_destination(image: &LocalImage, remote: &Remote, full: bool) -> Result<Outcome> {
    let layers = &image.layers;
    let state = remote::probe(remote)?;
    let present = if full {
        0
    } else {
        remote::layers_present(layers, &state.chains)
    };
    let source = match &image.store {
        Some(stored) => Source::Store {
            image: stored,
            skip: present,
        },
        None if present > 0 => {
            let ids: HashSet<String> = layers[..present].iter().cloned().collect();
            Source::Save {
                omit: layer_paths(&image.reference, &ids)?,
            }
        }
        None => Source::Save {
            omit: HashSet::new(),
        },
    };
    eprintln!("{}", shown(image, remote, state.zstd));
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
        send(&image.reference, remote, state.zstd, &source, image.size)?;
    let whole = matches!(&source, Source::Save { omit } if omit.is_empty());
    if !loaded && !whole {
        eprintln!(
            "transfer-image: {} did not take the archive; sending `docker save {}` whole",
            remote.name, image.reference
        );
        let full = Source::Save {
            omit: HashSet::new(),
        };
        let (more, ok, last) = send(&image.reference, remote, state.zstd, &full, image.size)?;
        sent += more;
        loaded = ok;
        level = last;
    }
    Ok(Outcome {
        loaded,
        sent,
        level,
        elapsed: started.elapsed(),
    })
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

pub fn mib(n: u64) -> String {
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
