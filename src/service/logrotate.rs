//! Size-rotated log files, in the manner of daemontools' `multilog s1000000 n30`, which the
//! original deployments piped their pipelines into (`run-image IMAGE --log`).
//!
//! A log directory holds `current`, the file being written, and the rotated files, named by
//! the UTC time of their rotation, `20240501T030000.123456Z.log`, so that their names sort
//! in the order they were written (`cat DIR/*Z.log DIR/current` reads the whole log).
//!
//! - `current` never grows past the size: a line that does not fit starts the next file,
//!   so a line is never split across files, unless it is longer than the size by itself
//!   (then it is cut into pieces of the size, each starting a file). A line is written once
//!   its newline has come (or at the end of the run); what is written is never dropped.
//! - Several streams (a program's stdout and stderr) are merged a whole line at a time, in
//!   the order their lines complete: docker delivers output in pieces that may cut a line,
//!   and a line of one stream is never cut by a line of the other.
//! - At most `keep` files are kept, `current` included (multilog's `n`): after a rotation
//!   the oldest rotated files beyond that are removed. Other files in the directory are
//!   never touched.
//! - A run appends to the `current` of the runs before it. One run at a time: the directory
//!   is locked (`flock` on DIR/lock) while a run writes to it.

use crate::time::{civil, days_from_civil, duration_text, micros_since_epoch, utc_text};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// multilog's `s1000000`: 1 MB files.
pub(crate) const DEFAULT_MAX_SIZE: u64 = 1_000_000;
/// multilog's `n30`: 30 files, `current` included.
pub(crate) const DEFAULT_KEEP: u64 = 30;
/// The fewest files a log may keep (multilog's floor too): `current` and one rotated file.
pub(crate) const MIN_KEEP: u64 = 2;
pub(crate) const CURRENT: &str = "current";
const LOCK: &str = "lock";
/// Streams merged into one log: stdout (0) and stderr (1).
pub(crate) const STREAMS: usize = 2;

/// The writer of one log directory, holding its lock.
pub(crate) struct RotatingLog {
    dir: PathBuf,
    max_size: u64,
    keep: u64,
    file: File,
    /// Bytes in `current`, those in `out` included.
    len: u64,
    /// Bytes for `current` not yet written (one write per call of `write`).
    out: Vec<u8>,
    /// For each stream, the start of a line whose newline has not come yet.
    partial: [Vec<u8>; STREAMS],
    _lock: File,
}

impl RotatingLog {
    /// Opens DIR (made if missing) for appending. Another writer holding the directory is
    /// an error of kind `WouldBlock`.
    pub(crate) fn open(dir: &Path, max_size: u64, keep: u64) -> io::Result<RotatingLog> {
        assert!(max_size >= 1 && keep >= MIN_KEEP, "checked by the caller");
        std::fs::create_dir_all(dir)?;
        let lock = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(dir.join(LOCK))?
        };
        // SAFETY: flock(2) on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let file = open_current(dir)?;
        let len = file.metadata()?.len();
        let mut log = RotatingLog {
            dir: dir.to_owned(),
            max_size,
            keep,
            file,
            len,
            out: vec![],
            partial: Default::default(),
            _lock: lock,
        };
        // A run that died mid-line left `current` without its last newline: end that line
        // (unless the file is full anyway: then the next line starts a new one).
        if len > 0 && len < max_size && last_byte(&log.dir.join(CURRENT))? != Some(b'\n') {
            log.append(b"\n");
            log.flush_out()?;
        }
        Ok(log)
    }

    pub(crate) fn current_path(&self) -> PathBuf {
        self.dir.join(CURRENT)
    }

    /// The last line written to the log, without its newline: `current`'s, or the newest
    /// rotated file's when `current` is empty (a rotation was the last thing done). `None`
    /// when there is none.
    pub(crate) fn last_line(&self) -> io::Result<Option<String>> {
        let mut file = self.dir.join(CURRENT);
        if self.len == 0 {
            match rotated_files(&self.dir)?.pop() {
                Some(name) => file = self.dir.join(name),
                None => return Ok(None),
            }
        }
        last_line_of(&file)
    }

    /// Adds output of one stream: every complete line goes to the files now; the rest
    /// waits for its newline (or, once it is as long as a file, is written in pieces of
    /// the size).
    pub(crate) fn write_stream(&mut self, stream: usize, data: &[u8]) -> io::Result<()> {
        let mut rest = data;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(pos + 1);
            if self.partial[stream].is_empty() {
                self.put_line(line)?;
            } else {
                let mut whole = std::mem::take(&mut self.partial[stream]);
                whole.extend_from_slice(line);
                self.put_line(&whole)?;
            }
            rest = after;
        }
        self.partial[stream].extend_from_slice(rest);
        let max = self.max_size as usize;
        if self.partial[stream].len() >= max {
            // Longer than a file: it will be split whatever comes next.
            let whole = std::mem::take(&mut self.partial[stream]);
            let cut = whole.len() - whole.len() % max;
            self.put_pieces(&whole[..cut])?;
            self.partial[stream] = whole[cut..].to_vec();
        }
        self.flush_out()
    }

    /// Adds output (of the one stream there is).
    #[cfg(test)]
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_stream(0, data)
    }

    /// Writes a line of our own (a banner), after ending any unfinished line of the output.
    pub(crate) fn line(&mut self, text: &str) -> io::Result<()> {
        self.end_partial_lines()?;
        let mut line = text.replace('\n', " ").into_bytes();
        line.push(b'\n');
        self.put_line(&line)?;
        self.flush_out()
    }

    /// Writes what is left: an unfinished last line, as it is (ended by a newline only
    /// when another stream's unfinished line follows it).
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        let mut partials: Vec<Vec<u8>> = self
            .partial
            .iter_mut()
            .map(std::mem::take)
            .filter(|p| !p.is_empty())
            .collect();
        let last = partials.pop();
        for mut partial in partials {
            partial.push(b'\n');
            self.put_line(&partial)?;
        }
        if let Some(partial) = last {
            self.put_line(&partial)?;
        }
        self.flush_out()?;
        self.file.flush()
    }

    fn end_partial_lines(&mut self) -> io::Result<()> {
        for stream in 0..STREAMS {
            if !self.partial[stream].is_empty() {
                let mut whole = std::mem::take(&mut self.partial[stream]);
                whole.push(b'\n');
                self.put_line(&whole)?;
            }
        }
        Ok(())
    }

    /// One line (or an unfinished one at the end), placed whole in a file if it can be.
    fn put_line(&mut self, line: &[u8]) -> io::Result<()> {
        let size = line.len() as u64;
        if self.len + size <= self.max_size {
            self.append(line);
        } else if size <= self.max_size {
            self.rotate()?;
            self.append(line);
        } else {
            self.put_pieces(line)?;
        }
        Ok(())
    }

    /// A line longer than a file: pieces of the size, each starting a file.
    fn put_pieces(&mut self, line: &[u8]) -> io::Result<()> {
        for piece in line.chunks(self.max_size as usize) {
            if self.len > 0 {
                self.rotate()?;
            }
            self.append(piece);
        }
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        self.len += bytes.len() as u64;
    }

    fn flush_out(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.file.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// `current` becomes a rotated file (its content on disk first), a new `current` is
    /// started, and the oldest rotated files beyond `keep` are removed.
    fn rotate(&mut self) -> io::Result<()> {
        self.flush_out()?;
        self.file.sync_data()?;
        let mut rotated = rotated_files(&self.dir)?;
        let mut micros = micros_since_epoch(SystemTime::now());
        // Names must sort in the order of the files: never reuse or go back (the clock may).
        if let Some(newest) = rotated.last().and_then(|n| micros_of_name(n)) {
            micros = micros.max(newest + 1);
        }
        let name = name_for_micros(micros);
        std::fs::rename(self.dir.join(CURRENT), self.dir.join(&name))?;
        rotated.push(name);
        self.file = open_current(&self.dir)?;
        self.len = 0;
        let allowed = (self.keep - 1) as usize;
        if rotated.len() > allowed {
            for old in &rotated[..rotated.len() - allowed] {
                match std::fs::remove_file(self.dir.join(old)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// `current`, never through a symbolic link: the log directory may be shared (a cron
/// job's), and a link placed there by someone else must not make a run as root append
/// to a file of its choosing.
fn open_current(dir: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(CURRENT);
    OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is a symbolic link: not followed", path.display()),
            ),
            _ => e,
        })
}

fn last_byte(path: &Path) -> io::Result<Option<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    if f.metadata()?.len() == 0 {
        return Ok(None);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut b = [0u8];
    f.read_exact(&mut b)?;
    Ok(Some(b[0]))
}

/// The last line of a file, without its newline (`None` when the file is empty). Only its
/// end is read: a line longer than 4 KiB is cut to its last 4 KiB, which is never a banner.
fn last_line_of(path: &Path) -> io::Result<Option<String>> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 4096;
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(TAIL)))?;
    let mut tail = Vec::with_capacity(TAIL as usize);
    f.read_to_end(&mut tail)?;
    let text = tail.strip_suffix(b"\n").unwrap_or(&tail);
    if text.is_empty() && tail.is_empty() {
        return Ok(None);
    }
    let start = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    Ok(Some(String::from_utf8_lossy(&text[start..]).into_owned()))
}

/// The rotated files of DIR, oldest first (their names sort by time).
pub(crate) fn rotated_files(dir: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| micros_of_name(n).is_some())
        .collect();
    names.sort();
    Ok(names)
}

/// `20240501T030000.123456Z.log`
pub(crate) fn name_for_micros(micros: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(micros / 1_000_000);
    format!(
        "{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}.{:06}Z.log",
        micros % 1_000_000
    )
}

/// The time a rotated file's name says, or None for any other name.
pub(crate) fn micros_of_name(name: &str) -> Option<u64> {
    let b = name.as_bytes();
    // ASCII first: the ranges below are byte ranges, and a multi-byte character across
    // one of them would be a panic on slicing (any name can be in the directory).
    if !name.is_ascii()
        || b.len() != 27
        || b[8] != b'T'
        || b[15] != b'.'
        || !name.ends_with("Z.log")
    {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u64> {
        let s = &name[r];
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (y, mo, d) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (h, mi, s, us) = (
        digits(9..11)?,
        digits(11..13)?,
        digits(13..15)?,
        digits(16..22)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y as i64, mo as u32, d as u32);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + mi * 60 + s;
    Some(secs * 1_000_000 + us)
}

/// The lines that open a run in its log: when, which image (and its id), which command
/// (as printed, secrets masked).
pub(crate) fn start_banner(
    prog: &str,
    image: &str,
    id: &str,
    command: &str,
    at: SystemTime,
) -> [String; 3] {
    [
        format!("==== {prog} start {}", utc_text(at)),
        format!("==== image {image} {id}"),
        format!("==== command {command}"),
    ]
}

/// When the last line of a log is not a run's end banner, the line that says so, written
/// before the next run's start banner: the run before was killed (`kill -9`, which leaves
/// no chance to write it) or the machine stopped, and its output may stop short.
pub(crate) fn unended_note(prog: &str, last_line: &str) -> Option<String> {
    (!last_line.starts_with(&format!("==== {prog} end "))).then(|| {
        format!(
            "==== {prog}: the previous run ended without its end banner \
             ({prog} was killed, or the machine stopped); its output may stop short"
        )
    })
}

/// The line that closes a run in its log.
pub(crate) fn end_banner(prog: &str, outcome: &str, at: SystemTime, took: Duration) -> String {
    format!(
        "==== {prog} end {}: {outcome}, duration {}",
        utc_text(at),
        duration_text(took)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    /// Every file of the log, oldest first, `current` last.
    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut names = rotated_files(dir).unwrap();
        names.push(CURRENT.into());
        names
            .into_iter()
            .map(|n| {
                let bytes = std::fs::read(dir.join(&n)).unwrap();
                (n, bytes)
            })
            .collect()
    }

    fn numbered(n: usize) -> Vec<u8> {
        (1..=n)
            .map(|i| format!("line {i} {}\n", "x".repeat(i % 23)))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn lines_are_never_split_and_nothing_is_lost_whatever_the_chunks() {
        for chunk in [1, 7, 64, 5000] {
            let tmp = tempfile::tempdir().unwrap();
            let input = numbered(600);
            let mut log = RotatingLog::open(tmp.path(), 300, 1000).unwrap();
            for piece in input.chunks(chunk) {
                log.write(piece).unwrap();
            }
            log.finish().unwrap();
            let files = files(tmp.path());
            assert!(files.len() > 20, "{}", files.len());
            let mut all = vec![];
            for (name, bytes) in &files {
                assert!(bytes.len() <= 300, "{name}: {}", bytes.len());
                assert!(bytes.ends_with(b"\n"), "{name} ends mid-line");
                all.extend_from_slice(bytes);
            }
            assert_eq!(all, input, "chunks of {chunk}");
        }
    }

    #[test]
    fn a_line_longer_than_a_file_is_cut_at_the_size() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = RotatingLog::open(tmp.path(), 10, 10).unwrap();
        log.write(b"ab\n").unwrap();
        // 25 bytes without a newline yet: two full pieces go out at once.
        log.write(&[b'y'; 25]).unwrap();
        log.write(b"\nok\n").unwrap();
        log.finish().unwrap();
        let got: Vec<String> = files(tmp.path())
            .into_iter()
            .map(|(_, b)| String::from_utf8(b).unwrap())
            .collect();
        assert_eq!(got, ["ab\n", "yyyyyyyyyy", "yyyyyyyyyy", "yyyyy\nok\n"]);
    }

    #[test]
    fn only_the_newest_files_are_kept_and_other_files_are_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
        let mut log = RotatingLog::open(tmp.path(), 20, 3).unwrap();
        for i in 0..50 {
            log.write(format!("line {i:04}\n").as_bytes()).unwrap();
        }
        log.finish().unwrap();
        let files = files(tmp.path());
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        let text: String = files
            .iter()
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect();
        // Two lines a file: the three newest files hold the last six lines.
        assert_eq!(
            text,
            "line 0044\nline 0045\nline 0046\nline 0047\nline 0048\nline 0049\n"
        );
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("notes.txt")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn rotated_names_sort_in_order_even_within_a_microsecond() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = RotatingLog::open(tmp.path(), 2, 1000).unwrap();
        for _ in 0..200 {
            log.write(b"a\n").unwrap();
        }
        log.finish().unwrap();
        let names = rotated_files(tmp.path()).unwrap();
        assert_eq!(names.len(), 199);
        let times: Vec<u64> = names.iter().map(|n| micros_of_name(n).unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_later_run_appends_and_ends_an_unfinished_line_first() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(CURRENT), "cut off").unwrap();
        let mut log = RotatingLog::open(tmp.path(), 1000, 5).unwrap();
        log.line("==== banner").unwrap();
        log.write(b"no newline yet").unwrap();
        log.line("==== end").unwrap();
        log.finish().unwrap();
        drop(log);
        assert_eq!(
            std::fs::read_to_string(tmp.path().join(CURRENT)).unwrap(),
            "cut off\n==== banner\nno newline yet\n==== end\n"
        );
    }

    #[test]
    fn the_last_line_tells_whether_the_last_run_ended() {
        let tmp = tempfile::tempdir().unwrap();
        let end = end_banner("run-image", "exit code 0", UNIX_EPOCH, Duration::ZERO);
        {
            let log = RotatingLog::open(tmp.path(), 1000, 5).unwrap();
            assert_eq!(log.last_line().unwrap(), None);
        }
        let mut log = RotatingLog::open(tmp.path(), 1000, 5).unwrap();
        log.line("==== run-image start").unwrap();
        log.write(b"output\ncut off").unwrap();
        log.finish().unwrap();
        drop(log);
        // The next run ends the cut line first; the last line is the output's.
        let mut log = RotatingLog::open(tmp.path(), 1000, 5).unwrap();
        assert_eq!(log.last_line().unwrap().as_deref(), Some("cut off"));
        assert!(unended_note("run-image", "cut off").is_some());
        log.line(&end).unwrap();
        assert_eq!(log.last_line().unwrap().as_deref(), Some(end.as_str()));
        assert_eq!(unended_note("run-image", &end), None);
        log.finish().unwrap();
        drop(log);
        // Killed right after a rotation: `current` is empty, the newest rotated file has it.
        let rotated = tmp.path().join(name_for_micros(1_700_000_000_000_000));
        std::fs::rename(tmp.path().join(CURRENT), &rotated).unwrap();
        std::fs::write(tmp.path().join(CURRENT), "").unwrap();
        let log = RotatingLog::open(tmp.path(), 1000, 5).unwrap();
        assert_eq!(log.last_line().unwrap().as_deref(), Some(end.as_str()));
    }

    #[test]
    fn streams_are_merged_a_whole_line_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = RotatingLog::open(tmp.path(), 1000, 5).unwrap();
        // docker delivers stdout's "line 923" in two pieces, with stderr's line between.
        log.write_stream(0, b"line 922\nli").unwrap();
        log.write_stream(1, b"on-stderr\nerr ").unwrap();
        log.write_stream(0, b"ne 923\nno end").unwrap();
        log.write_stream(1, b"no end").unwrap();
        log.finish().unwrap();
        assert_eq!(
            std::fs::read_to_string(tmp.path().join(CURRENT)).unwrap(),
            "line 922\non-stderr\nline 923\nno end\nerr no end"
        );
    }

    #[test]
    fn one_writer_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let first = RotatingLog::open(tmp.path(), 100, 3).unwrap();
        let err = RotatingLog::open(tmp.path(), 100, 3).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(first);
        RotatingLog::open(tmp.path(), 100, 3).unwrap();
    }

    #[test]
    fn names_and_times() {
        // 2023-11-14 22:13:20 UTC
        let t = 1_700_000_000u64 * 1_000_000 + 42;
        assert_eq!(name_for_micros(t), "20231114T221320.000042Z.log");
        assert_eq!(micros_of_name(&name_for_micros(t)), Some(t));
        assert_eq!(
            micros_of_name("20240229T235959.999999Z.log"),
            Some((1_709_251_199) * 1_000_000 + 999_999)
        );
        for other in [
            "current",
            "lock",
            "20231114T221320Z.log",
            "2023111xT221320.000042Z.log",
        ] {
            assert_eq!(micros_of_name(other), None, "{other}");
        }
        assert_eq!(
            utc_text(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14 22:13:20 UTC"
        );
        assert_eq!(duration_text(Duration::from_millis(5204)), "5.204s");
        assert_eq!(duration_text(Duration::from_secs(247)), "4m07s");
        assert_eq!(duration_text(Duration::from_secs(7389)), "2h03m09s");
    }

    /// Names in the log directory are anyone's: one that is not ASCII but has the length
    /// of ours is not ours (it used to panic, slicing inside a character).
    #[test]
    fn a_name_that_is_not_ascii_is_not_a_log_file() {
        let name = "202é113T120000.000000Z.log";
        assert_eq!(name.len(), 27);
        assert_eq!(micros_of_name(name), None);
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(name), "x").unwrap();
        std::fs::write(tmp.path().join("ü".repeat(13) + "x"), "x").unwrap();
        let mut log = RotatingLog::open(tmp.path(), 10, MIN_KEEP).unwrap();
        for _ in 0..5 {
            log.line("0123456789").unwrap();
        }
        log.finish().unwrap();
        assert!(tmp.path().join(name).exists(), "not ours: left alone");
    }

    /// A `current` (or `lock`) that is a link is refused, and what it points to is untouched.
    #[test]
    fn a_linked_current_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("victim");
        std::fs::write(&target, "precious\n").unwrap();
        let dir = tmp.path().join("logs");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&target, dir.join(CURRENT)).unwrap();
        let err = RotatingLog::open(&dir, 1000, MIN_KEEP)
            .and_then(|mut log| log.line("x"))
            .unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        std::fs::remove_file(dir.join(CURRENT)).unwrap();
        std::fs::remove_file(dir.join(LOCK)).unwrap();
        std::os::unix::fs::symlink(&target, dir.join(LOCK)).unwrap();
        assert!(RotatingLog::open(&dir, 1000, MIN_KEEP).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    }
}
