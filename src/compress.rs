//! Compression whose level follows the link: for `transfer-image`, the same code must suit
//! a loopback or a LAN (where compressing harder only slows the transfer down) and a slow
//! uplink to a cloud dock (where every byte saved is time saved).
//!
//! The input is cut into chunks, each compressed as an independent frame of its [`Codec`]
//! (zstd: `zstd -dc` reads concatenated frames as one stream) and handed to a writer thread
//! that feeds the link. After each chunk the level moves one step: up when this side had to wait for the
//! link (the link is the bottleneck: spend more CPU to send fewer bytes), down when the link
//! sat idle waiting for data (compression is the bottleneck). The zstd command's `--adapt`
//! works the same way.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// zstd's levels it moves between: the fast (negative) levels for links faster than
/// compression, up to what still compresses at tens of MB/s on a small machine.
pub const MIN_LEVEL: i32 = -5;
pub const MAX_LEVEL: i32 = 9;
pub const START_LEVEL: i32 = 3;
const CHUNK: usize = 4 << 20;

/// A compression format whose independent frames, concatenated, decompress as one stream.
pub trait Codec: Sized {
    /// The levels it moves between, and the first.
    const MIN_LEVEL: i32;
    const MAX_LEVEL: i32;
    const START_LEVEL: i32;
    fn new(level: i32) -> io::Result<Self>;
    fn set_level(&mut self, level: i32) -> io::Result<()>;
    /// `data` as one frame.
    fn frame(&mut self, data: &[u8]) -> io::Result<Vec<u8>>;
}

/// zstd frames.
pub struct Zstd(zstd::bulk::Compressor<'static>);

impl Codec for Zstd {
    const MIN_LEVEL: i32 = MIN_LEVEL;
    const MAX_LEVEL: i32 = MAX_LEVEL;
    const START_LEVEL: i32 = START_LEVEL;
    fn new(level: i32) -> io::Result<Self> {
        Ok(Zstd(zstd::bulk::Compressor::new(level)?))
    }
    fn set_level(&mut self, level: i32) -> io::Result<()> {
        self.0.set_compression_level(level)
    }
    fn frame(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        self.0.compress(data)
    }
}

/// zstd whose level follows the link.
pub type AdaptiveZstd<W> = Adaptive<W, Zstd>;

pub struct Adaptive<W: Write + Send + 'static, C: Codec> {
    buf: Vec<u8>,
    chunk: usize,
    level: i32,
    compressor: C,
    /// Microseconds the writer has spent waiting for frames, and the count at the last chunk.
    idle: Arc<AtomicU64>,
    idle_seen: u64,
    tx: Option<SyncSender<Vec<u8>>>,
    writer: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static, C: Codec> Adaptive<W, C> {
    pub fn new(out: W) -> io::Result<Self> {
        Self::with_chunk(out, CHUNK)
    }

    fn with_chunk(mut out: W, chunk: usize) -> io::Result<Self> {
        let (tx, rx) = sync_channel::<Vec<u8>>(2);
        let idle = Arc::new(AtomicU64::new(0));
        let in_writer = idle.clone();
        let writer = std::thread::spawn(move || -> io::Result<W> {
            loop {
                let waiting = Instant::now();
                let Ok(frame) = rx.recv() else { break };
                in_writer.fetch_add(waiting.elapsed().as_micros() as u64, Ordering::Relaxed);
                out.write_all(&frame)?;
            }
            out.flush()?;
            Ok(out)
        });
        Ok(Adaptive {
            buf: Vec::with_capacity(chunk),
            chunk,
            level: C::START_LEVEL,
            compressor: C::new(C::START_LEVEL)?,
            idle,
            idle_seen: 0,
            tx: Some(tx),
            writer: Some(writer),
        })
    }

    /// The level the next chunk will be compressed at.
    pub fn level(&self) -> i32 {
        self.level
    }

    /// Compresses the buffered chunk, hands it to the writer, and adapts the level.
    fn send_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let frame = self.compressor.frame(&self.buf)?;
        let compressing = started.elapsed();
        self.buf.clear();
        let tx = self.tx.as_ref().expect("send after finish");
        let mut waited = Duration::ZERO;
        match tx.try_send(frame) {
            Ok(()) => {}
            Err(TrySendError::Full(frame)) => {
                let blocked = Instant::now();
                if tx.send(frame).is_err() {
                    return Err(self.writer_error());
                }
                waited = blocked.elapsed();
            }
            Err(TrySendError::Disconnected(_)) => return Err(self.writer_error()),
        }
        // How long the link sat idle, waiting for us, since the last chunk.
        let idle = self.idle.load(Ordering::Relaxed);
        let link_idle = Duration::from_micros(idle - self.idle_seen);
        self.idle_seen = idle;
        let next = if waited > compressing / 4 {
            self.level + 1
        } else if link_idle > compressing / 4 {
            self.level - 1
        } else {
            self.level
        }
        .clamp(C::MIN_LEVEL, C::MAX_LEVEL);
        if next != self.level {
            self.level = next;
            self.compressor.set_level(next)?;
        }
        Ok(())
    }

    /// The writer thread's error (it stopped: the link is gone).
    fn writer_error(&mut self) -> io::Error {
        self.tx = None;
        match self.writer.take().map(|w| w.join()) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::new(io::ErrorKind::BrokenPipe, "the link's writer stopped"),
        }
    }

    /// Sends what is left and waits until the link has taken everything.
    pub fn finish(mut self) -> io::Result<W> {
        self.send_chunk()?;
        self.tx = None;
        match self.writer.take().expect("finish once").join() {
            Ok(result) => result,
            Err(_) => Err(io::Error::other("the link's writer panicked")),
        }
    }
}

impl<W: Write + Send + 'static, C: Codec> Write for Adaptive<W, C> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(self.chunk - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.chunk {
            self.send_chunk()?;
        }
        Ok(n)
    }

    /// Chunks go out whole; `finish` sends the last one.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Some compressible, not trivially repetitive, bytes.
    fn data(len: usize) -> Vec<u8> {
        let mut x: u32 = 1;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                if i % 8 == 0 {
                    (x >> 24) as u8
                } else {
                    b'a' + (i % 7) as u8
                }
            })
            .collect()
    }

    /// Collects what it is given, optionally slowly (a slow link).
    #[derive(Clone)]
    struct Link {
        got: Arc<Mutex<Vec<u8>>>,
        delay: Duration,
    }

    impl Write for Link {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            std::thread::sleep(self.delay);
            self.got.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn send(delay: Duration, input: &[u8]) -> (Vec<u8>, i32) {
        let link = Link {
            got: Arc::default(),
            delay,
        };
        let mut z = AdaptiveZstd::with_chunk(link.clone(), 64 << 10).unwrap();
        for piece in input.chunks(10_000) {
            z.write_all(piece).unwrap();
        }
        let level = z.level();
        z.finish().unwrap();
        let got = link.got.lock().unwrap().clone();
        (got, level)
    }

    #[test]
    fn the_frames_decompress_to_the_input_as_one_stream() {
        let input = data(1_000_000);
        let (sent, _) = send(Duration::ZERO, &input);
        assert!(sent.len() < input.len() / 2, "{} bytes", sent.len());
        assert_eq!(zstd::stream::decode_all(&sent[..]).unwrap(), input);
    }

    #[test]
    fn the_level_goes_down_on_a_fast_link_and_up_on_a_slow_one() {
        let input = data(2_000_000);
        let (fast, fast_level) = send(Duration::ZERO, &input);
        assert_eq!(
            fast_level, MIN_LEVEL,
            "an idle link wants the fastest level"
        );
        let (slow, slow_level) = send(Duration::from_millis(40), &input);
        assert!(
            slow_level > START_LEVEL,
            "a busy link wants more: {slow_level}"
        );
        assert!(slow.len() < fast.len(), "{} vs {}", slow.len(), fast.len());
        assert_eq!(zstd::stream::decode_all(&slow[..]).unwrap(), input);
    }

    #[test]
    fn a_link_that_goes_away_is_an_error_not_a_hang() {
        struct Gone;
        impl Write for Gone {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut z = AdaptiveZstd::with_chunk(Gone, 1000).unwrap();
        let err = (0..100)
            .try_for_each(|_| z.write_all(&data(1000)))
            .and_then(|_| z.finish().map(drop))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
