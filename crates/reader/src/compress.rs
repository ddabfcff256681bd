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

/// gzip members (a gzip file may be several, one after the other, and is read as one
/// stream: gzip(1), Go's `gzip.Reader`, flate2's `MultiGzDecoder`). Level 0 stores the
/// data (deflate's stored blocks, written here: a copy and a CRC, at memory speed: the
/// level for a link faster than deflate); 1 to 6 are deflate's.
pub struct Gzip(i32);

impl Codec for Gzip {
    const MIN_LEVEL: i32 = 0;
    const MAX_LEVEL: i32 = 6;
    const START_LEVEL: i32 = 1;
    fn new(level: i32) -> io::Result<Self> {
        Ok(Gzip(level))
    }
    fn set_level(&mut self, level: i32) -> io::Result<()> {
        self.0 = level;
        Ok(())
    }
    fn frame(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        if self.0 > 0 {
            let level = flate2::Compression::new(self.0 as u32);
            let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 2), level);
            gz.write_all(data)?;
            return gz.finish();
        }
        // RFC 1952 header (deflate, no flags, no time, unknown OS), then RFC 1951 stored
        // blocks of at most 65535 bytes (a byte with BFINAL, BTYPE 00; LEN; NLEN; the bytes),
        // then the CRC-32 and the length modulo 2^32.
        let mut out = Vec::with_capacity(data.len() + data.len() / 65535 * 5 + 32);
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let mut blocks = data.chunks(65535).peekable();
        if blocks.peek().is_none() {
            out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        }
        while let Some(block) = blocks.next() {
            let len = block.len() as u16;
            out.push(u8::from(blocks.peek().is_none()));
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(block);
        }
        let mut crc = flate2::Crc::new();
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        Ok(out)
    }
}

/// gzip whose level follows the link.
pub type AdaptiveGzip<W> = Adaptive<W, Gzip>;

/// The level of the next chunk, from what the last one cost: we waited for the link
/// (it is the bottleneck: compress harder), or the link waited for us (we are: compress
/// less), each measured against a quarter of the time compressing took.
fn next_level<C: Codec>(
    level: i32,
    compressing: Duration,
    waited: Duration,
    link_idle: Duration,
) -> i32 {
    if waited > compressing / 4 {
        level + 1
    } else if link_idle > compressing / 4 {
        level - 1
    } else {
        level
    }
    .clamp(C::MIN_LEVEL, C::MAX_LEVEL)
}

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
        let next = next_level::<C>(self.level, compressing, waited, link_idle);
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
    fn the_level_follows_the_link_and_the_stream_is_the_input_at_any_level() {
        let input = data(2_000_000);
        // Whatever levels the clock of this machine chose, the stream is the input.
        for delay in [Duration::ZERO, Duration::from_millis(40)] {
            let (sent, _) = send(delay, &input);
            assert_eq!(zstd::stream::decode_all(&sent[..]).unwrap(), input);
        }
        // The decision itself, without a clock.
        let ms = Duration::from_millis;
        type Z = Zstd;
        assert_eq!(
            next_level::<Z>(START_LEVEL, ms(8), ms(0), ms(5)),
            START_LEVEL - 1
        );
        assert_eq!(
            next_level::<Z>(START_LEVEL, ms(8), ms(5), ms(0)),
            START_LEVEL + 1
        );
        assert_eq!(
            next_level::<Z>(START_LEVEL, ms(8), ms(1), ms(1)),
            START_LEVEL
        );
        assert_eq!(next_level::<Z>(MIN_LEVEL, ms(8), ms(0), ms(5)), MIN_LEVEL);
        assert_eq!(next_level::<Gzip>(0, ms(8), ms(0), ms(5)), 0);
    }

    #[test]
    fn gzip_members_decompress_to_the_input_as_one_stream_at_every_level() {
        let input = data(300_000);
        for level in Gzip::MIN_LEVEL..=Gzip::MAX_LEVEL {
            let mut gzip = Gzip::new(level).unwrap();
            // Several members, one of them empty; blocks of 65535 bytes and a short one.
            let mut stream = Vec::new();
            for part in [&input[..100_000], &[][..], &input[100_000..]] {
                stream.extend(gzip.frame(part).unwrap());
            }
            let mut out = Vec::new();
            io::Read::read_to_end(
                &mut flate2::read::MultiGzDecoder::new(&stream[..]),
                &mut out,
            )
            .unwrap();
            assert_eq!(out, input, "level {level}");
            // Stored: a few bytes more than the input; deflate: fewer.
            if level == 0 {
                assert!(stream.len() < input.len() + 100, "{}", stream.len());
            } else {
                assert!(
                    stream.len() < input.len() / 2,
                    "level {level}: {}",
                    stream.len()
                );
            }
        }
        // The adaptive stream, at whatever levels it chose, decompresses the same.
        let link = Link {
            got: Arc::default(),
            delay: Duration::ZERO,
        };
        let mut z = AdaptiveGzip::with_chunk(link.clone(), 64 << 10).unwrap();
        for piece in data(1_000_000).chunks(10_000) {
            z.write_all(piece).unwrap();
        }
        z.finish().unwrap();
        let got = link.got.lock().unwrap().clone();
        let mut out = Vec::new();
        io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&got[..]), &mut out).unwrap();
        assert_eq!(out, data(1_000_000));
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
