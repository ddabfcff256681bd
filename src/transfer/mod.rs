//! Moving an image from one Docker engine to others over SSH, each receiving only the
//! layers it lacks (the domain of `transfer-image`).
//!
//! - [`remote`]: the engines (this machine's, or a dock or `[user@]host[:port]` over
//!   ssh) and what each holds and has, asked in one command;
//! - [`source`]: the image, read once: from this machine's engine (its storage, or
//!   `docker save`), or from a dock (its storage, by [`dock_reader`] run there; or
//!   `docker save` there, GNU tar leaving layers out);
//! - [`split`]: that archive cut into pieces labelled by layer;
//! - [`load`]: the work for one destination: the pieces it lacks into its `docker load`;
//! - [`progress`]: a progress line per destination;
//! - [`via_registry`]: the other path, for engines whose `docker load` takes only whole
//!   images (the containerd store): this process serves the image as a read-only
//!   [`registry`] (its layers from the engine's storage or from [`saved`], `docker save`
//!   read in either layout) through an `ssh -R` forward, and the dock pulls from it.
//!
//! [`run`] is the fan-out: every destination is asked what it holds (in parallel), the
//! source is opened once without the layers all of them hold, and each piece is handed
//! to every destination's thread (bounded channels: the slowest paces the reading),
//! which drops the pieces of layers it holds. A destination that fails does not stop the
//! others. A destination that refused an archive without some layers is sent the image
//! again, whole, in a second pass for those destinations only.

pub(crate) mod dock_reader;
pub(crate) mod load;
pub(crate) mod progress;
pub(crate) mod registry;
pub(crate) mod remote;
pub(crate) mod saved;
pub(crate) mod source;
pub(crate) mod split;
pub(crate) mod via_registry;

use crate::dock::session::Cut;
use load::{Msg, Outcome, Target};
use remote::{Ask, Engine};
use source::Image;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::sync::mpsc::sync_channel;
use std::time::Duration;

/// Pieces waiting for one destination: with 1 MiB pieces, a few MiB per destination.
const QUEUE: usize = 8;

/// What a transfer runs (`docker save` and `docker load` here, commands on remotes):
/// cut off at once on Ctrl-C, so that nothing is left half-done on either side.
#[derive(Default)]
pub(crate) struct Children(Mutex<Vec<Running>>);

enum Running {
    /// A process here: killed.
    Pid(u32),
    /// A command on a remote (by its key): its sockets shut down.
    Remote(u64, Cut),
}

impl Children {
    pub(crate) fn add(&self, pid: u32) {
        self.lock().push(Running::Pid(pid));
    }

    pub(crate) fn remove(&self, pid: u32) {
        self.lock()
            .retain(|r| !matches!(r, Running::Pid(p) if *p == pid));
    }

    /// Lists a remote command; the key to take it off the list again.
    pub(crate) fn add_remote(&self, cut: Cut) -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let key = NEXT.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Running::Remote(key, cut));
        key
    }

    pub(crate) fn remove_remote(&self, key: u64) {
        self.lock()
            .retain(|r| !matches!(r, Running::Remote(k, _) if *k == key));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Running>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn kill_all(&self) {
        for running in self.lock().iter() {
            match running {
                // SAFETY: kill(2) on a child of ours that has not been waited for.
                Running::Pid(pid) => unsafe {
                    libc::kill(*pid as i32, libc::SIGKILL);
                },
                Running::Remote(_, cut) => cut.cut(),
            }
        }
    }
}

/// What came of a transfer.
pub(crate) struct Report {
    /// One per destination, in the order given.
    pub outcomes: Vec<Outcome>,
    /// Compressed bytes received from the source dock (None: the source is here).
    pub received: Option<u64>,
    pub elapsed: Duration,
    pub interrupted: bool,
}

/// Sends `image` to every destination, each only the layers it lacks (every layer with
/// `full`). `several`: more than one destination was named (progress lines name theirs,
/// even when only one of them is left to send to).
pub(crate) fn run(image: &Image, dests: Vec<Engine>, full: bool, several: bool) -> Report {
    let started = std::time::Instant::now();
    crate::process::install_signal_handlers();
    let children = Children::default();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // Ctrl-C (or a signal to us alone): every child is killed, which ends every
        // stream with an error, never with a clean end.
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if crate::process::interrupted() {
                    children.kill_all();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let report = transfer(image, dests, full, several, &children, started);
        done.store(true, Ordering::SeqCst);
        report
    })
}

fn transfer(
    image: &Image,
    dests: Vec<Engine>,
    full: bool,
    several: bool,
    children: &Children,
    started: std::time::Instant,
) -> Report {
    // Every destination is asked what it holds, all at once.
    let states: Vec<_> = std::thread::scope(|s| {
        let asks: Vec<_> = dests
            .iter()
            .map(|engine| s.spawn(move || remote::probe(engine, Ask::Chains)))
            .collect();
        asks.into_iter().map(|a| a.join().unwrap()).collect()
    });
    let mut outcomes: Vec<Option<Outcome>> = Vec::new();
    let mut targets = Vec::new();
    for (engine, state) in dests.into_iter().zip(states) {
        match state {
            Ok(state) => {
                let present = if full {
                    0
                } else {
                    remote::layers_present(&image.layers, &state.chains)
                };
                targets.push((
                    outcomes.len(),
                    Target {
                        engine,
                        codec: state.codec,
                        present,
                    },
                ));
                outcomes.push(None);
            }
            Err(e) => {
                eprintln!("transfer-image: error: {e}");
                // Ctrl-C while connecting: cut off before anything was sent.
                let cut = crate::process::interrupted();
                outcomes.push(Some(Outcome {
                    cut,
                    ..Outcome::failed(engine.name(), e.to_string())
                }));
            }
        }
    }
    let mut received = None;
    if !targets.is_empty() && !crate::process::interrupted() {
        let first: Vec<&Target> = targets.iter().map(|(_, t)| t).collect();
        let (got, bytes, as_is) = pass(image, &first, false, several, children);
        received = bytes;
        // A destination that did not take an archive without some layers is sent
        // `docker save` whole; so is every destination when the source could not be
        // read as the pass read it (the engine's storage, or the index on a dock).
        let mut again = Vec::new();
        for ((i, target), outcome) in targets.iter().zip(got) {
            let retry = if crate::process::interrupted() || outcome.loaded {
                false
            } else if outcome.cut {
                !as_is
            } else {
                !(image.saved_as_is() && target.present == 0)
            };
            if !retry {
                outcomes[*i] = Some(outcome);
                continue;
            }
            if outcome.cut {
                eprintln!(
                    "transfer-image: sending `docker save {}` whole to {} instead",
                    image.reference,
                    target.name()
                );
            } else {
                eprintln!(
                    "transfer-image: {} did not take the archive; sending `docker save {}` whole",
                    target.name(),
                    image.reference
                );
            }
            again.push((*i, target, outcome));
        }
        if !again.is_empty() {
            let retry: Vec<&Target> = again.iter().map(|(_, t, _)| *t).collect();
            let (got, bytes, _) = pass(image, &retry, true, several, children);
            if let Some(b) = bytes {
                received = Some(received.unwrap_or(0) + b);
            }
            for ((i, _, before), mut outcome) in again.into_iter().zip(got) {
                outcome.sent = match (before.sent, outcome.sent) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.or(b),
                };
                outcome.elapsed += before.elapsed;
                outcomes[i] = Some(outcome);
            }
        }
    }
    let interrupted = crate::process::interrupted();
    for (i, target) in &targets {
        if outcomes[*i].is_none() {
            outcomes[*i] = Some(Outcome::failed(
                target.name(),
                "interrupted before it started".into(),
            ));
        }
    }
    Report {
        outcomes: outcomes.into_iter().flatten().collect(),
        received,
        elapsed: started.elapsed(),
        interrupted,
    }
}

/// One reading of the image, handed to `targets` (each leaving out what it holds;
/// nothing left out with `whole`). Their outcomes, in order; the bytes received from a
/// source dock; and whether the source was read as `docker save` gives it (reading it
/// again whole would change nothing).
fn pass(
    image: &Image,
    targets: &[&Target],
    whole: bool,
    several: bool,
    children: &Children,
) -> (Vec<Outcome>, Option<u64>, bool) {
    let present = |t: &Target| if whole { 0 } else { t.present };
    let skip = targets.iter().map(|t| present(t)).min().unwrap_or(0);
    let labels = targets.iter().any(|t| present(t) > 0);
    let as_is = whole || (image.saved_as_is() && skip == 0 && !labels);
    let mut stream = match source::open(image, skip, labels, whole, children) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!("transfer-image: error: {e}");
            let failed = targets
                .iter()
                .map(|t| Outcome {
                    cut: true,
                    ..Outcome::failed(t.name(), e.to_string())
                })
                .collect();
            return (failed, None, as_is);
        }
    };
    let layers = image.layers.len();
    for t in targets {
        eprintln!("{} | {}", stream.shown, t.shown());
        let present = present(t);
        let what = match layers - present {
            0 => "the image's configuration only".to_string(),
            missing => format!("{missing} of {layers} layers"),
        };
        let verb = match t.engine {
            Engine::Local => "receiving",
            Engine::Remote(_) => "sending",
        };
        eprintln!(
            "transfer-image: {present} of {layers} layers already on {}: {verb} {what}",
            t.name()
        );
    }
    let lines = progress::Lines::new(several || targets.len() > 1);
    let received = stream.received.clone();
    let input = std::mem::replace(&mut stream.input, Box::new(std::io::empty()));
    let labels = std::mem::take(&mut stream.labels);
    let outcomes = std::thread::scope(|s| {
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for t in targets {
            let (tx, rx) = sync_channel(QUEUE);
            let mut line = lines.line(t.name(), image.size);
            if let (Engine::Local, Some(r)) = (&t.engine, &received) {
                line.watch(r.clone(), "received");
            }
            let _ = tx.send(Msg::Skip(stream.left_out));
            threads.push(s.spawn(move || load::send(t, rx, line, children)));
            senders.push(Some(tx));
        }
        let mut splitter = split::Splitter::new(input, labels);
        let read: std::io::Result<()> = loop {
            if crate::process::interrupted() {
                break Err(std::io::Error::other("interrupted"));
            }
            match splitter.next_piece() {
                Ok(Some(piece)) => {
                    let n = piece.bytes.len() as u64;
                    let bytes = Arc::new(piece.bytes);
                    for (t, sender) in targets.iter().zip(senders.iter_mut()) {
                        let Some(tx) = sender else { continue };
                        let msg = match piece.layer {
                            Some(layer) if layer < present(t) => Msg::Skip(n),
                            _ => Msg::Bytes(bytes.clone()),
                        };
                        if tx.send(msg).is_err() {
                            *sender = None;
                        }
                    }
                    if senders.iter().all(Option::is_none) {
                        // Each said why it stopped: there is nothing to read for.
                        break Err(std::io::Error::new(
                            std::io::ErrorKind::BrokenPipe,
                            "no destination is taking the image",
                        ));
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        // The archive ended: what is left of the input (padding) is read to its end
        // (a compressed stream checks its own end), and its producer must have done well,
        // before any destination's stream is closed.
        let mut rest = splitter.into_inner();
        let read = read.and_then(|()| std::io::copy(&mut rest, &mut std::io::sink()).map(drop));
        drop(rest);
        let read = match read {
            Ok(()) => stream.finish(children),
            // The producer's own error says more than "the archive was cut short".
            Err(e) => Err(stream.abort(children).unwrap_or(e)),
        };
        match read {
            Ok(()) => {
                for tx in senders.iter().flatten() {
                    let _ = tx.send(Msg::End);
                }
            }
            // Said already: by the signal, or by each destination that stopped.
            Err(e)
                if crate::process::interrupted() || e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => eprintln!(
                "transfer-image: reading {} from {} failed: {e}",
                image.reference,
                match &image.origin {
                    source::Origin::Local { store: Some(_) } if !whole => "the engine's storage",
                    _ => image.origin_name(),
                }
            ),
        }
        drop(senders);
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    });
    (outcomes, received.map(|r| r.load(Ordering::Relaxed)), as_is)
}
