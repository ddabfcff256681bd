//! An image archive cut into labelled pieces, byte for byte: every piece is raw tar
//! bytes of one entry (its header, or part of its data), labelled with the layer it is
//! the file of. Each destination of a fan-out keeps the pieces of the layers it lacks and
//! drops the others, and what it keeps is still a valid archive (entries are whole).
//!
//! Hand-written over the 512-byte block format rather than re-serialised with the `tar`
//! crate: the bytes that reach `docker load` are exactly the source's, headers included,
//! and a piece never has to be parsed twice.

use std::collections::HashMap;
use std::io::{self, Read};

/// The most data bytes in one piece.
const PIECE: u64 = 1 << 20;
const BLOCK: usize = 512;

/// Raw tar bytes of one entry, and the index (bottom = 0) of the layer it is the file
/// of, if it is one.
pub(crate) struct Piece {
    pub layer: Option<usize>,
    pub bytes: Vec<u8>,
}

/// Cuts an archive read from `input` into [`Piece`]s; `labels` maps a layer file's path
/// in the archive to its layer's index.
pub(crate) struct Splitter<R> {
    input: R,
    labels: HashMap<String, usize>,
    /// Data bytes (padding included) left in the current entry, and its label.
    left: u64,
    layer: Option<usize>,
    ended: bool,
}

impl<R: Read> Splitter<R> {
    pub(crate) fn new(input: R, labels: HashMap<String, usize>) -> Self {
        Splitter {
            input,
            labels,
            left: 0,
            layer: None,
            ended: false,
        }
    }

    /// What is left of the input after the end of the archive (to drain it).
    pub(crate) fn into_inner(self) -> R {
        self.input
    }

    /// The next piece; `None` at the archive's end (its zero block). An input that stops
    /// before that is an error, never a shorter archive.
    pub(crate) fn next_piece(&mut self) -> io::Result<Option<Piece>> {
        if self.ended {
            return Ok(None);
        }
        if self.left > 0 {
            let n = self.left.min(PIECE);
            let bytes = self.read(n)?;
            self.left -= n;
            return Ok(Some(Piece {
                layer: self.layer,
                bytes,
            }));
        }
        // Extension headers (GNU long names, pax records) go with the entry they describe.
        let mut bytes = Vec::new();
        let mut long_name = None;
        loop {
            let header = self.read(BLOCK as u64)?;
            if header.iter().all(|&b| b == 0) {
                if !bytes.is_empty() {
                    return Err(bad("an extension header with no entry after it"));
                }
                self.ended = true;
                return Ok(None);
            }
            let size = entry_size(&header)?;
            let kind = header[156];
            let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64;
            bytes.extend_from_slice(&header);
            match kind {
                b'L' | b'x' | b'K' | b'g' => {
                    if padded > 1 << 20 {
                        return Err(bad("an extension header over 1 MiB"));
                    }
                    let data = self.read(padded)?;
                    let data_only = &data[..size as usize];
                    match kind {
                        b'L' => {
                            let end = data_only.iter().position(|&b| b == 0);
                            long_name = Some(
                                String::from_utf8_lossy(&data_only[..end.unwrap_or(size as usize)])
                                    .into_owned(),
                            );
                        }
                        b'x' => {
                            if let Some(path) = pax_path(data_only) {
                                long_name = Some(path);
                            }
                        }
                        _ => {}
                    }
                    bytes.extend_from_slice(&data);
                }
                _ => {
                    let name = long_name.unwrap_or_else(|| header_name(&header));
                    self.layer = self.labels.get(name.trim_end_matches('/')).copied();
                    // As Go's archive/tar (docker's): these types carry no data, whatever
                    // their size field says.
                    let header_only = matches!(kind, b'1' | b'2' | b'3' | b'4' | b'5' | b'6');
                    self.left = if header_only { 0 } else { padded };
                    return Ok(Some(Piece {
                        layer: self.layer,
                        bytes,
                    }));
                }
            }
        }
    }

    /// Exactly `n` bytes, or an error saying the archive ended early.
    fn read(&mut self, n: u64) -> io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(n as usize);
        (&mut self.input).take(n).read_to_end(&mut buf)?;
        if (buf.len() as u64) < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ended before its end (cut short)",
            ));
        }
        Ok(buf)
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not an image archive: {what}"),
    )
}

/// The size field: octal digits, or base-256 (a leading 0x80 byte) for large sizes.
fn entry_size(header: &[u8]) -> io::Result<u64> {
    let field = &header[124..136];
    if field[0] & 0x80 != 0 {
        let mut n: u64 = (field[0] & 0x7f) as u64;
        for &b in &field[1..] {
            n = n
                .checked_mul(256)
                .and_then(|n| n.checked_add(b as u64))
                .ok_or_else(|| bad("a size beyond 64 bits"))?;
        }
        return Ok(n);
    }
    let text: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| !matches!(c, ' ' | '\0'))
        .collect();
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(&text, 8).map_err(|_| bad("a size field that is not a number"))
}

/// The name field, with the ustar prefix when there is one.
fn header_name(header: &[u8]) -> String {
    let field = |range: std::ops::Range<usize>| {
        let f = &header[range];
        let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
        String::from_utf8_lossy(&f[..end]).into_owned()
    };
    let name = field(0..100);
    if &header[257..262] == b"ustar" {
        let prefix = field(345..500);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

/// The `path` record of a pax header ("LEN path=VALUE\n" records).
fn pax_path(mut data: &[u8]) -> Option<String> {
    let mut path = None;
    while !data.is_empty() {
        let space = data.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&data[..space]).ok()?.parse().ok()?;
        if len <= space || len > data.len() {
            return None;
        }
        let record = &data[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(value) = record.strip_prefix(b"path=") {
            path = Some(String::from_utf8_lossy(value).into_owned());
        }
        data = &data[len..];
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn pieces(input: &[u8], labels: &[(&str, usize)]) -> io::Result<Vec<Piece>> {
        let labels = labels.iter().map(|(p, i)| (p.to_string(), *i)).collect();
        let mut s = Splitter::new(input, labels);
        let mut out = Vec::new();
        while let Some(p) = s.next_piece()? {
            out.push(p);
        }
        Ok(out)
    }

    /// Whatever is dropped, what is kept (plus the end blocks) is the archive of the rest.
    #[test]
    fn the_pieces_kept_are_the_archive_of_those_entries() {
        let long = format!("{}/layer.tar", "d".repeat(120));
        let big = vec![7u8; 3 << 20];
        let input = archive(&[
            ("a/layer.tar", b"AAAA"),
            (&long, &big),
            ("manifest.json", b"[]"),
        ]);
        let got = pieces(&input, &[("a/layer.tar", 0), (&long, 1)]).unwrap();
        // The long name's GNU header travels with its entry, and 3 MiB of data in pieces.
        assert!(got.iter().filter(|p| p.layer == Some(1)).count() >= 4);
        let mut kept: Vec<u8> = got
            .iter()
            .filter(|p| p.layer != Some(0))
            .flat_map(|p| p.bytes.clone())
            .collect();
        kept.extend([0u8; 1024]);
        assert_eq!(kept, archive(&[(&long, &big), ("manifest.json", b"[]")]));
        let all: Vec<u8> = got.iter().flat_map(|p| p.bytes.clone()).collect();
        assert_eq!(all[..], input[..all.len()]);
    }

    #[test]
    fn an_archive_cut_short_is_an_error() {
        let input = archive(&[("a/layer.tar", &[1u8; 5000]), ("manifest.json", b"[]")]);
        // Cut in the middle of the data, and cut exactly after an entry (no end block).
        for cut in [700, 512 + 5120] {
            let err = pieces(&input[..cut], &[]).err().expect("an error");
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
        }
        assert!(
            pieces(
                b"not a tar at all, but 512 bytes long"
                    .repeat(14)
                    .as_slice(),
                &[]
            )
            .is_err()
        );
    }

    #[test]
    fn pax_paths_are_read() {
        assert_eq!(
            pax_path(b"16 path=a/b/c/d\n20 mtime=1234567890\n").as_deref(),
            Some("a/b/c/d")
        );
        assert_eq!(pax_path(b"99 path=x\n"), None);
    }
}
