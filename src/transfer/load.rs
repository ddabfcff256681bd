//! The work for one destination: the pieces of the archive it lacks, as the fan-out
//! hands them over, into `docker load` there: over ssh, compressed (adaptive zstd, or
//! gzip where the remote has no zstd), or straight into this machine's engine; and what
//! came of it.
//!
//! Only a stream that reached the archive's end is closed normally. Any other ending
//! (the source failed, Ctrl-C, the other side went away) cuts `docker load` off first
//! (killed here; on a remote, its socket shut down both ways, so that the master closes
//! its channel): an engine whose `docker load` is cut off loads nothing, where a stream
//! closed early at an entry boundary would read as a shorter archive.

use super::Children;
use super::progress::Line;
use super::remote::{Codec, Engine};
use crate::dock::compress::AdaptiveZstd;
use crate::dock::session::{Io, RemoteChild};
use crate::process::{Command, Stdio};
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A destination, and what it holds.
pub(crate) struct Target {
    pub engine: Engine,
    /// How it decompresses (a remote engine).
    pub codec: Codec,
    /// How many bottom layers of the image it holds (left out of what it is sent).
    pub present: usize,
}

impl Target {
    pub(crate) fn name(&self) -> &str {
        self.engine.name()
    }

    /// The receiving half of the pipeline, as the user could type it.
    pub(crate) fn shown(&self) -> String {
        match &self.engine {
            Engine::Local => "docker load".to_string(),
            Engine::Remote(r) => format!(
                "{} | {}",
                if self.codec.is_zstd() { "zstd" } else { "gzip" },
                r.shown(&self.script())
            ),
        }
    }

    fn script(&self) -> String {
        format!(
            "{} | {} load",
            self.codec.decompress(),
            self.engine.docker()
        )
    }
}

/// What the fan-out hands each destination.
pub(crate) enum Msg {
    /// Archive bytes to send.
    Bytes(Arc<Vec<u8>>),
    /// Archive bytes this destination does without (it holds the layer): progress only.
    Skip(u64),
    /// The archive is complete (the source ended well).
    End,
}

/// What came of one destination.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub name: String,
    /// Whether its `docker load` took the image.
    pub loaded: bool,
    /// Compressed bytes sent to it over ssh (None: this machine's engine).
    pub sent: Option<u64>,
    /// The zstd level its stream ended at.
    pub level: Option<i32>,
    pub elapsed: Duration,
    /// The stream to it was cut (the source failed, or Ctrl-C): nothing was loaded, and
    /// sending again would not help.
    pub cut: bool,
    /// Why it failed, when no message of docker's or ssh's said it already.
    pub error: Option<String>,
}

impl Outcome {
    pub(crate) fn failed(name: &str, error: String) -> Outcome {
        Outcome {
            name: name.to_string(),
            loaded: false,
            sent: None,
            level: None,
            elapsed: Duration::ZERO,
            cut: false,
            error: Some(error),
        }
    }
}

/// Two zero blocks: the end of a tar archive (the source's own are not forwarded).
const END_OF_ARCHIVE: [u8; 1024] = [0; 1024];

/// Sends what `feed` hands over into `docker load` on `target`.
pub(crate) fn send(
    target: &Target,
    feed: Receiver<Msg>,
    mut line: Line,
    children: &Children,
) -> Outcome {
    let started = Instant::now();
    let name = target.name().to_string();
    let mut loader = match Loader::start(target, children) {
        Ok(loader) => loader,
        Err(e) => return Outcome::failed(&name, e),
    };
    let wire = Arc::new(AtomicU64::new(0));
    let input = loader.input();
    let sink = match &target.engine {
        Engine::Local => Ok(Sink::Plain(input)),
        Engine::Remote(_) => {
            line.watch(wire.clone(), "sent");
            let counting = Counting {
                inner: input,
                count: wire.clone(),
            };
            if target.codec.is_zstd() {
                AdaptiveZstd::new(counting).map(Sink::Zstd)
            } else {
                Ok(Sink::Gzip(flate2::write::GzEncoder::new(
                    counting,
                    flate2::Compression::fast(),
                )))
            }
        }
    };
    let mut sink = match sink {
        Ok(sink) => sink,
        Err(e) => {
            loader.cut_off();
            let _ = loader.wait(children);
            return Outcome::failed(&name, format!("cannot start the compressor: {e}"));
        }
    };
    // The archive's end came (`ended`); the other side went away first (`gone`).
    let (mut ended, mut gone) = (false, false);
    loop {
        match feed.recv() {
            Ok(Msg::Bytes(bytes)) => {
                if sink.write_all(&bytes).is_err() {
                    gone = true;
                    break;
                }
                line.add(bytes.len() as u64);
            }
            Ok(Msg::Skip(n)) => line.add(n),
            Ok(Msg::End) => {
                ended = true;
                break;
            }
            Err(_) => break,
        }
    }
    // Given up on or done: the fan-out stops handing this destination anything.
    drop(feed);
    let mut level = None;
    if ended {
        match sink
            .write_all(&END_OF_ARCHIVE)
            .and_then(|()| sink.finish())
            .and_then(|l| loader.end_input().map(|()| l))
        {
            Ok(l) => {
                level = l;
                // The whole archive is there: a Ctrl-C from now on lets this `docker
                // load` finish and say whether it loaded, rather than cut it off.
                loader.unlist(children);
            }
            // The other side ended (it refused the archive): its messages say why.
            Err(_) => gone = true,
        }
    } else if gone {
        // The other side ended before the archive did: what it said is the reason.
        drop(sink);
    } else {
        loader.cut_off();
        drop(sink);
    }
    // A write that failed because Ctrl-C cut the other side off (the transfer cuts
    // every child at once, which can come before this thread sees its feed end) is a
    // cut, not a refusal: the archive's end never got there.
    let cut = if gone {
        crate::process::interrupted()
    } else {
        !ended
    };
    // The counts are final now (the compressor is flushed, the source read to its end).
    line.finish(ended && !gone);
    let status_ok = loader.wait(children);
    Outcome {
        loaded: ended && !gone && status_ok,
        sent: matches!(target.engine, Engine::Remote(_)).then(|| wire.load(Ordering::Relaxed)),
        level,
        elapsed: started.elapsed(),
        cut,
        error: None,
        name,
    }
}

/// A destination's `docker load`: a process here, or a command on the remote (its
/// stdin a socket whose other end the SSH layer's master holds).
enum Loader {
    Local(crate::process::Running),
    Remote { child: Box<RemoteChild>, key: u64 },
}

impl Loader {
    fn start(target: &Target, children: &Children) -> Result<Loader, String> {
        match &target.engine {
            Engine::Local => {
                // Killed outright, we take it with us (this thread waits for it, so
                // outlives it). Its own process group: a Ctrl-C is ours to act on, not
                // passed on. Before the archive's end we cut it off (it loads nothing);
                // after it, it finishes, and says whether it loaded (docker's daemon goes
                // on loading a whole upload whatever its client does).
                let mut cmd = Command::new("docker");
                cmd.arg("load").stdin(Stdio::piped());
                let child = crate::process::spawn_in_own_group(&mut cmd)
                    .map_err(|e| format!("cannot run docker: {e}"))?;
                children.add(child.id());
                Ok(Loader::Local(child))
            }
            // No process here: a channel of the remote's master, nothing for a Ctrl-C
            // at the terminal to reach.
            Engine::Remote(r) => {
                let child = r
                    .mux()
                    .and_then(|m| m.spawn_script(&target.script(), Io::Socket, Io::Inherit))
                    .map_err(|e| e.to_string())?;
                let key = children.add_remote(child.cutter());
                Ok(Loader::Remote {
                    child: Box::new(child),
                    key,
                })
            }
        }
    }

    /// Where the archive goes.
    fn input(&mut self) -> Box<dyn Write + Send> {
        match self {
            Loader::Local(child) => Box::new(child.stdin.take().expect("piped")),
            Loader::Remote { child, .. } => Box::new(child.stdin.take().expect("a socket")),
        }
    }

    /// Closes the input for the other side (a remote's socket is shut down for writing:
    /// the master holds a copy of it, so dropping ours would not end it).
    fn end_input(&self) -> io::Result<()> {
        match self {
            Loader::Local(_) => Ok(()),
            Loader::Remote { child, .. } => child.cutter().end_input(),
        }
    }

    /// Cuts it off before its input is closed: cut off, it loads nothing.
    fn cut_off(&mut self) {
        match self {
            Loader::Local(child) => {
                let _ = crate::process::Child::kill(child);
            }
            Loader::Remote { child, .. } => child.cutter().cut(),
        }
    }

    /// Takes it off the list a Ctrl-C cuts off.
    fn unlist(&self, children: &Children) {
        match self {
            Loader::Local(child) => children.remove(child.id()),
            Loader::Remote { key, .. } => children.remove_remote(*key),
        }
    }

    /// Waits for it: whether it loaded.
    fn wait(self, children: &Children) -> bool {
        self.unlist(children);
        match self {
            Loader::Local(mut child) => child.wait().map(|s| s.success()).unwrap_or(false),
            Loader::Remote { child, .. } => matches!(child.wait(), Ok(Some(0))),
        }
    }
}

/// Where the bytes go: straight into `docker load` here, or through a compressor to the
/// remote's.
enum Sink {
    Plain(Box<dyn Write + Send>),
    Zstd(AdaptiveZstd<Counting<Box<dyn Write + Send>>>),
    Gzip(flate2::write::GzEncoder<Counting<Box<dyn Write + Send>>>),
}

impl Sink {
    /// Ends the stream (closing the input); the zstd level it ended at.
    fn finish(self) -> io::Result<Option<i32>> {
        match self {
            Sink::Plain(mut w) => w.flush().map(|()| None),
            Sink::Zstd(z) => {
                let level = z.level();
                z.finish()?;
                Ok(Some(level))
            }
            Sink::Gzip(g) => g.finish().map(|_| None),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Zstd(z) => z.write(buf),
            Sink::Gzip(g) => g.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Zstd(z) => z.flush(),
            Sink::Gzip(g) => g.flush(),
        }
    }
}

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    count: Arc<AtomicU64>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
