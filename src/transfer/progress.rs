//! One progress line per destination. On a terminal, a bar each, redrawn in place one
//! under the other (indicatif's MultiProgress); otherwise (a log, a pipe, CI) a line
//! each time a destination passes a tenth, naming the destination when there are
//! several: lines of several destinations interleave, so each says whose it is.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) struct Lines {
    multi: MultiProgress,
    terminal: bool,
    several: bool,
}

impl Lines {
    pub(crate) fn new(several: bool) -> Lines {
        let terminal = std::io::stderr().is_terminal();
        Lines {
            multi: MultiProgress::with_draw_target(if terminal {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            }),
            terminal,
            several,
        }
    }

    /// The line of destination `name`, `total` bytes to go through it.
    pub(crate) fn line(&self, name: &str, total: u64) -> Line {
        let bar = if self.terminal {
            let bar = self.multi.add(ProgressBar::new(total));
            // `wide_bar` takes what the terminal's width leaves: the line never wraps
            // (a wrapped line is redrawn as a new one at each tick) at 80 columns.
            let template = if self.several {
                "{prefix} {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}"
            } else {
                "{wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}"
            };
            bar.set_style(ProgressStyle::with_template(template).unwrap());
            bar.set_prefix(name.to_string());
            bar
        } else {
            ProgressBar::hidden()
        };
        Line {
            bar,
            prefix: if self.several {
                format!("{name}: ")
            } else {
                String::new()
            },
            total: total.max(1),
            read: 0,
            tenth: 0,
            wire: None,
        }
    }
}

pub(crate) struct Line {
    bar: ProgressBar,
    prefix: String,
    total: u64,
    read: u64,
    tenth: u64,
    /// The bytes on the wire for this destination, and what they are ("sent", "received").
    wire: Option<(Arc<AtomicU64>, &'static str)>,
}

impl Line {
    pub(crate) fn watch(&mut self, wire: Arc<AtomicU64>, verb: &'static str) {
        self.wire = Some((wire, verb));
    }

    /// `n` more bytes of the archive went through (sent or left out).
    pub(crate) fn add(&mut self, n: u64) {
        self.read += n;
        let wire = self
            .wire
            .as_ref()
            .map(|(w, verb)| (w.load(Ordering::Relaxed), *verb));
        if !self.bar.is_hidden() {
            self.bar.set_position(self.read.min(self.total));
            if let Some((bytes, verb)) = wire {
                self.bar.set_message(format!("{} {verb}", mib(bytes)));
            }
            return;
        }
        // 100% is said by `finish`, with the final counts: the compressor still holds
        // bytes when the last piece is read.
        let tenth = (self.read * 10 / self.total).min(9);
        if tenth > self.tenth {
            self.tenth = tenth;
            self.say(&format!("{tenth}0%"), wire);
        }
    }

    fn say(&self, done: &str, wire: Option<(u64, &str)>) {
        let wire = wire
            .map(|(bytes, verb)| format!(", {} {verb}", mib(bytes)))
            .unwrap_or_default();
        eprintln!(
            "transfer-image: {}{done} ({} read{wire})",
            self.prefix,
            mib(self.read)
        );
    }

    /// The line ends; `complete`: the whole archive went through (the counts are
    /// final: what the summary says).
    pub(crate) fn finish(&self, complete: bool) {
        self.bar.finish_and_clear();
        if complete && self.bar.is_hidden() {
            let wire = self
                .wire
                .as_ref()
                .map(|(w, verb)| (w.load(Ordering::Relaxed), *verb));
            self.say("100%", wire);
        }
    }
}

pub(crate) fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / 1048576.0)
}
