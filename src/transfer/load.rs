//! The work for one destination: the pieces of the archive it lacks, as the fan-out
//! hands them over, into `docker load` there: over ssh, compressed (adaptive zstd, or
//! gzip where the remote has no zstd), or straight into this machine's engine; and what
//! came of it.
//!
//! Only a stream that reached the archive's end is closed normally. Any other ending
//! (the source failed, Ctrl-C, the other side went away) kills `docker load` (or the ssh
//! that feeds it) first: an engine whose `docker load` is cut off loads nothing, where a
//! stream closed early at an entry boundary would read as a shorter archive.

use super::Children;
use super::progress::Line;
use super::remote::{Codec, Engine};
use crate::dock::compress::AdaptiveZstd;
use crate::process::{Command, Stdio};
use std::io::{self, Write};
use std::process::ChildStdin;
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
    let mut cmd = match &target.engine {
        Engine::Local => {
            let mut cmd = Command::new("docker");
            cmd.arg("load");
            cmd
        }
        Engine::Remote(r) => r.command(&target.script()),
    };
    // Killed outright, we take it with us (this thread waits for it, so outlives it). Its
    // own process group: a Ctrl-C is ours to act on, not passed on. Before the archive's
    // end we cut it off (it loads nothing); after it, it finishes, and says whether it
    // loaded (docker's daemon goes on loading a whole upload whatever its client does).
    let mut child = match crate::process::spawn_in_own_group(cmd.stdin(Stdio::piped())) {
        Ok(child) => child,
        Err(e) => {
            return Outcome::failed(&name, format!("cannot run {:?}: {e}", cmd.get_program()));
        }
    };
    children.add(child.id());
    let wire = Arc::new(AtomicU64::new(0));
    let stdin = child.stdin.take().unwrap();
    let sink = match &target.engine {
        Engine::Local => Ok(Sink::Plain(stdin)),
        Engine::Remote(_) => {
            line.watch(wire.clone(), "sent");
            let counting = Counting {
                inner: stdin,
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
            cut_off(&mut child);
            children.remove(child.id());
            let _ = child.wait();
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
        match sink.write_all(&END_OF_ARCHIVE).and_then(|()| sink.finish()) {
            Ok(l) => {
                level = l;
                // The whole archive is there: a Ctrl-C from now on lets this `docker
                // load` finish and say whether it loaded, rather than kill it.
                children.remove(child.id());
            }
            // The other side ended (it refused the archive): its messages say why.
            Err(_) => gone = true,
        }
    } else if gone {
        // The other side ended before the archive did: what it said is the reason.
        drop(sink);
    } else {
        cut_off(&mut child);
        drop(sink);
    }
    // A write that failed because Ctrl-C killed the other side (the transfer kills
    // every child at once, which can come before this thread sees its feed end) is a
    // cut, not a refusal: the archive's end never got there.
    let cut = if gone {
        crate::process::interrupted()
    } else {
        !ended
    };
    // The counts are final now (the compressor is flushed, the source read to its end).
    line.finish(ended && !gone);
    children.remove(child.id());
    let status_ok = child.wait().map(|s| s.success()).unwrap_or(false);
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

/// Kills `docker load` (or the ssh in front of it) before its input is closed: cut off,
/// it loads nothing.
fn cut_off(child: &mut crate::process::Running) {
    let _ = crate::process::Child::kill(child);
}

/// Where the bytes go: straight into `docker load`, or through a compressor into ssh.
enum Sink {
    Plain(ChildStdin),
    Zstd(AdaptiveZstd<Counting<ChildStdin>>),
    Gzip(flate2::write::GzEncoder<Counting<ChildStdin>>),
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
