//! An image read straight from the local engine's storage, as `docker save` would give it,
//! without `docker save`.
//!
//! The classic engine (overlay2 driver, not the containerd image store) keeps, per layer,
//! the files in `<root>/overlay2/<cache-id>/diff` and the layer's original tar headers in
//! `<root>/image/overlay2/layerdb/sha256/<chain-id>/tar-split.json.gz` (vbatts/tar-split:
//! one JSON object per line, raw header bytes or a file to read). Joining the two gives
//! back the exact layer tar, byte for byte, which is what `docker save` does too; but
//! `docker save` first writes the whole archive to a temporary directory of the daemon and
//! then reads it back. Reading the store directly needs read access to the engine's root
//! (root, as a rule); without it, or with any other layout, [`open`] says `None` and the
//! caller uses `docker save`. What it writes is checked where it lands: `docker load`
//! verifies each layer's digest against the image configuration.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// An image found in the local engine's storage.
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// The configuration's bytes (the image id is their digest).
    config: Vec<u8>,
    id_hex: String,
    /// The name it gets on the remote, as `docker save REFERENCE` would give it.
    tag: String,
    layers: Vec<StoredLayer>,
}

#[derive(Debug, Clone)]
struct StoredLayer {
    chain_hex: String,
    /// The bytes of its files (layerdb's `size`; what the image's size adds up).
    size: u64,
    tar_split: PathBuf,
    diff: PathBuf,
}

/// One piece of a layer tar: bytes kept in tar-split, or a file's content from the diff.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    Bytes(Vec<u8>),
    File { path: PathBuf, size: u64 },
}

/// The image that `inspect` (`docker image inspect`'s JSON for `reference`) describes, in
/// the engine's storage; `None` when it cannot be read there (another driver or image
/// store, no read access, a reference that is not one of its tags), and `docker save` is
/// the way.
pub fn open(inspect: &Value, reference: &str) -> Option<StoredImage> {
    if inspect["GraphDriver"]["Name"].as_str()? != "overlay2" {
        return None;
    }
    let upper = Path::new(inspect["GraphDriver"]["Data"]["UpperDir"].as_str()?);
    let top_cache = upper.parent()?.file_name()?.to_str()?.to_owned();
    let root = engine_root(inspect)?;
    // Referred to by id, digest or another spelling: `docker save` knows best.
    let tag = tagged(reference);
    if !inspect["RepoTags"]
        .as_array()?
        .iter()
        .any(|t| t.as_str() == Some(tag.as_str()))
    {
        return None;
    }
    let image = open_at(&root, inspect["Id"].as_str()?, &tag)?;
    // The store must be the one the engine described: the top layer is its UpperDir.
    let top = image.layers.last()?;
    if top.diff.parent()?.file_name()?.to_str()? != top_cache {
        return None;
    }
    Some(image)
}

/// The root directory of the engine whose overlay2 image `inspect` (`docker image
/// inspect`'s JSON) describes: its UpperDir is `<root>/overlay2/<cache-id>/diff`, the top
/// layer's files. An absolute path other than `/`, else `None`.
pub fn engine_root(inspect: &Value) -> Option<PathBuf> {
    let upper = Path::new(inspect["GraphDriver"]["Data"]["UpperDir"].as_str()?);
    let root = upper.parent()?.parent()?.parent()?;
    (root.is_absolute() && root != Path::new("/")).then(|| root.to_path_buf())
}

/// The image `id` (`sha256:…`) in the storage of the engine whose root directory is
/// `root`, to be tagged `tag` where it is loaded: its configuration (checked against the
/// id) gives its layers. What the reader on a dock opens (crates/reader/src/main.rs),
/// told the root and id by transfer-image.
pub fn open_at(root: &Path, id: &str, tag: &str) -> Option<StoredImage> {
    let store = root.join("image/overlay2");
    let id_hex = id.strip_prefix("sha256:")?.to_owned();
    if id_hex.len() != 64 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let config = std::fs::read(store.join("imagedb/content/sha256").join(&id_hex)).ok()?;
    if format!("{:x}", Sha256::digest(&config)) != id_hex {
        return None;
    }
    let parsed: Value = serde_json::from_slice(&config).ok()?;
    let diff_ids: Vec<&str> = parsed["rootfs"]["diff_ids"]
        .as_array()?
        .iter()
        .map(|v| v.as_str())
        .collect::<Option<_>>()?;
    let mut layers = Vec::new();
    for chain in chain_ids(&diff_ids) {
        let chain_hex = chain.strip_prefix("sha256:")?.to_owned();
        if chain_hex.len() != 64 || !chain_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let dir = store.join("layerdb/sha256").join(&chain_hex);
        let cache_id = std::fs::read_to_string(dir.join("cache-id")).ok()?;
        let cache_id = cache_id.trim();
        // A directory name, never a path out of the storage.
        if cache_id.is_empty() || cache_id.contains('/') || cache_id.starts_with('.') {
            return None;
        }
        let diff = root.join("overlay2").join(cache_id).join("diff");
        let size = std::fs::read_to_string(dir.join("size"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let tar_split = dir.join("tar-split.json.gz");
        if !tar_split.is_file() || std::fs::read_dir(&diff).is_err() {
            return None;
        }
        layers.push(StoredLayer {
            chain_hex,
            size,
            tar_split,
            diff,
        });
    }
    Some(StoredImage {
        config,
        id_hex,
        tag: tag.to_owned(),
        layers,
    })
}

/// The chain id of each layer (bottom first) of an image whose layers have these diff ids:
/// the bottom layer's diff id, then the digest of "<chain below> <diff id>".
pub fn chain_ids<S: AsRef<str>>(diff_ids: &[S]) -> Vec<String> {
    let mut chains: Vec<String> = Vec::new();
    for diff_id in diff_ids {
        let diff_id = diff_id.as_ref();
        chains.push(match chains.last() {
            None => diff_id.to_owned(),
            Some(below) => format!("sha256:{:x}", Sha256::digest(format!("{below} {diff_id}"))),
        });
    }
    chains
}

/// The path of each layer's file (bottom first) in the archive [`StoredImage::write_archive`]
/// writes of an image with these diff ids.
pub fn layer_file_names<S: AsRef<str>>(diff_ids: &[S]) -> Vec<String> {
    chain_ids(diff_ids)
        .iter()
        .map(|c| format!("{}/layer.tar", c.strip_prefix("sha256:").unwrap_or(c)))
        .collect()
}

/// `name` → `name:latest`; `name:tag` (or `name@digest`) as is.
pub fn tagged(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') || reference.contains('@') {
        reference.to_owned()
    } else {
        format!("{reference}:latest")
    }
}

impl StoredImage {
    /// Each layer's file in the archive [`StoredImage::write_archive`] writes, bottom
    /// first, with the size of its content.
    pub fn layer_files(&self) -> Vec<(String, u64)> {
        self.layers
            .iter()
            .map(|l| (format!("{}/layer.tar", l.chain_hex), l.size))
            .collect()
    }

    /// The image configuration's bytes (their sha256 is the image id).
    pub fn config(&self) -> &[u8] {
        &self.config
    }

    /// The number of layers, bottom first.
    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// The size of layer `i`'s tar, as its tar-split file adds it up (headers, padding and
    /// file contents): the layer as `docker save` gives it, whose sha256 is its diff id.
    pub fn layer_tar_size(&self, i: usize) -> io::Result<u64> {
        layer_size(&read_tar_split(&self.layers[i].tar_split)?)
    }

    /// Layer `i`'s tar, byte for byte as `docker save` gives it; `progress` is told the
    /// bytes as they are read.
    pub fn layer_tar<P: FnMut(u64)>(
        &self,
        i: usize,
        progress: P,
    ) -> io::Result<impl Read + use<P>> {
        let layer = &self.layers[i];
        Ok(LayerReader {
            pieces: read_tar_split(&layer.tar_split)?.into_iter(),
            diff: layer.diff.clone(),
            current: None,
            progress,
        })
    }

    /// Writes a `docker load` archive of the image, without the files of its `skip` bottom
    /// layers (which the receiving engine holds; their tar-split is not even read).
    /// `progress` is told the layer bytes as they are written, and the size of a skipped
    /// layer at once.
    pub fn write_archive<W: Write>(
        &self,
        skip: usize,
        out: W,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<W> {
        let mut tar = tar::Builder::new(out);
        let config_name = format!("{}.json", self.id_hex);
        append_bytes(&mut tar, &config_name, &self.config)?;
        let mut layer_names = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let name = format!("{}/layer.tar", layer.chain_hex);
            layer_names.push(name.clone());
            if i < skip {
                progress(layer.size);
                continue;
            }
            let pieces = read_tar_split(&layer.tar_split)?;
            let mut header = tar::Header::new_gnu();
            header.set_size(layer_size(&pieces)?);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            let reader = LayerReader {
                pieces: pieces.into_iter(),
                diff: layer.diff.clone(),
                current: None,
                progress: &mut *progress,
            };
            tar.append_data(&mut header, &name, reader)?;
        }
        // The manifest last: a stream cut short anywhere before it carries none, and
        // `docker load` takes nothing from it.
        let manifest = serde_json::json!([{
            "Config": config_name,
            "RepoTags": [self.tag],
            "Layers": layer_names,
        }]);
        append_bytes(&mut tar, "manifest.json", manifest.to_string().as_bytes())?;
        tar.into_inner()
    }
}

/// The bytes a layer tar made of these pieces has.
fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, bytes)
}

/// The layer tar's pieces, in order, from its tar-split file.
fn read_tar_split(path: &Path) -> io::Result<Vec<Piece>> {
    let file = std::fs::File::open(path)?;
    parse_tar_split(BufReader::new(flate2::read::GzDecoder::new(file)), path)
}

/// The pieces of a tar-split stream (its JSON lines, once gunzipped); `path` names it in
/// errors. A file's name keeps only its plain components: whatever the stream says, a
/// file is looked for beneath the layer's diff directory.
pub fn parse_tar_split(input: impl BufRead, path: &Path) -> io::Result<Vec<Piece>> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut pieces = Vec::new();
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let entry: Value =
            serde_json::from_str(&line).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        match entry["type"].as_u64() {
            // A segment: raw bytes of headers and padding.
            Some(2) => {
                let payload = entry["payload"].as_str().unwrap_or("");
                let bytes = b64
                    .decode(payload)
                    .map_err(|e| bad(format!("{}: {e}", path.display())))?;
                pieces.push(Piece::Bytes(bytes));
            }
            // A file: its content is in the diff directory.
            Some(1) => {
                let size = entry["size"].as_u64().unwrap_or(0);
                if size == 0 {
                    continue;
                }
                let name: PathBuf = match entry["name"].as_str() {
                    Some(name) => PathBuf::from(name),
                    None => {
                        let raw = b64
                            .decode(entry["name_raw"].as_str().unwrap_or(""))
                            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
                        use std::os::unix::ffi::OsStringExt;
                        PathBuf::from(std::ffi::OsString::from_vec(raw))
                    }
                };
                let rel = name
                    .components()
                    .filter(|c| matches!(c, std::path::Component::Normal(_)))
                    .collect::<PathBuf>();
                pieces.push(Piece::File { path: rel, size });
            }
            _ => return Err(bad(format!("{}: unknown entry {line}", path.display()))),
        }
    }
    Ok(pieces)
}

/// The length of the layer tar that the pieces make. File sizes come from the tar-split
/// file as they are: sizes that add up past 2^64 are an error, not a wrapped (or, in a
/// debug build, panicking) sum.
pub fn layer_size(pieces: &[Piece]) -> io::Result<u64> {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Bytes(b) => b.len() as u64,
            Piece::File { size, .. } => *size,
        })
        .try_fold(0u64, u64::checked_add)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the layer's file sizes add up to more than 2^64 bytes",
            )
        })
}

/// The layer tar that the pieces make with the files of `diff`, as `write_archive` streams
/// it; checks that the progress it reports adds up to what it gave. (For tests and the
/// fuzz target of the main crate, hence public.)
pub fn assemble(pieces: Vec<Piece>, diff: &Path) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut seen = 0;
    LayerReader {
        pieces: pieces.into_iter(),
        diff: diff.to_owned(),
        current: None,
        progress: &mut |n| seen += n,
    }
    .read_to_end(&mut out)?;
    assert_eq!(
        seen,
        out.len() as u64,
        "progress told of other bytes than were read"
    );
    Ok(out)
}

/// Reads the pieces one after the other: a layer tar as `docker save` gives it.
struct LayerReader<I, P> {
    pieces: I,
    /// The layer's diff directory: every file is opened beneath it.
    diff: PathBuf,
    current: Option<Box<dyn Read>>,
    progress: P,
}

impl<I: Iterator<Item = Piece>, P: FnMut(u64)> Read for LayerReader<I, P> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(r) = &mut self.current {
                let n = r.read(buf)?;
                if n > 0 {
                    (self.progress)(n as u64);
                    return Ok(n);
                }
                self.current = None;
            }
            match self.pieces.next() {
                None => return Ok(0),
                Some(Piece::Bytes(b)) => self.current = Some(Box::new(io::Cursor::new(b))),
                Some(Piece::File { path, size }) => {
                    let file = open_beneath(&self.diff, &path)?;
                    // Exactly `size` bytes: a file that changed length would shift the tar.
                    self.current = Some(Box::new(Exactly {
                        inner: file.take(size),
                        left: size,
                        path: self.diff.join(path),
                    }));
                }
            }
        }
    }
}

/// Opens `rel` (plain components only) beneath `dir` without following a symbolic link
/// at any step, and only if it is a regular file. The engine's storage is root's, but
/// what a layer holds is whoever built the image: a link there must not make us stream
/// a file from outside the layer, and a FIFO or device must not hang or feed the copy.
/// (A walk with O_NOFOLLOW rather than openat2's RESOLVE_BENEATH: the same guarantee
/// for plain components, and no kernel or seccomp filter that lacks openat2 to fall
/// back from.)
fn open_beneath(dir: &Path, rel: &Path) -> io::Result<std::fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    let shown = || dir.join(rel).display().to_string();
    let cstr = |p: &std::ffi::OsStr| {
        std::ffi::CString::new(p.as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a path with a NUL byte"))
    };
    let open_at = |at: libc::c_int, name: &std::ffi::CStr, flags: libc::c_int| {
        // SAFETY: a valid C string and flags; the descriptor is owned right away.
        let fd = unsafe { libc::openat(at, name.as_ptr(), flags | libc::O_CLOEXEC) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ELOOP | libc::ENOTDIR) => io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} goes through a symbolic link: not followed", shown()),
                ),
                _ => io::Error::new(e.kind(), format!("{}: {e}", shown())),
            });
        }
        // SAFETY: fd is a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let mut at = open_at(
        libc::AT_FDCWD,
        &cstr(dir.as_os_str())?,
        libc::O_RDONLY | libc::O_DIRECTORY,
    )?;
    let names: Vec<&std::ffi::OsStr> = rel
        .components()
        .map(|c| match c {
            std::path::Component::Normal(name) => Ok(name),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a plain path in the layer", shown()),
            )),
        })
        .collect::<io::Result<_>>()?;
    for (i, name) in names.iter().enumerate() {
        // O_NONBLOCK: opening a FIFO does not wait for a writer (it is refused below).
        let flags = if i + 1 == names.len() {
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK
        } else {
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_DIRECTORY
        };
        at = open_at(at.as_raw_fd(), &cstr(name)?, flags)?;
    }
    let file = std::fs::File::from(at);
    if !file.metadata()?.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a regular file", shown()),
        ));
    }
    Ok(file)
}

/// A reader that fails rather than end early.
struct Exactly<R> {
    inner: R,
    left: u64,
    path: PathBuf,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} is shorter than its layer says", self.path.display()),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layer tar put back together from a tar-split file and a diff directory.
    fn assemble(lines: &[&str], diff: &Path) -> io::Result<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let split = dir.path().join("tar-split.json.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&split).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(lines.join("\n").as_bytes()).unwrap();
        gz.finish().unwrap();
        super::assemble(read_tar_split(&split)?, diff)
    }

    #[test]
    fn segments_and_files_are_joined_in_order() {
        use std::os::unix::ffi::OsStrExt;
        let diff = tempfile::tempdir().unwrap();
        std::fs::create_dir(diff.path().join("d")).unwrap();
        std::fs::write(diff.path().join("d/a"), "abc").unwrap();
        // A name that is not UTF-8 comes as name_raw (base64 of its bytes).
        std::fs::write(
            diff.path().join(std::ffi::OsStr::from_bytes(b"b\xff")),
            "xy",
        )
        .unwrap();
        let lines = [
            r#"{"type":2,"payload":"SERSMQ==","position":0}"#, // "HDR1"
            r#"{"type":1,"name":"./d/a","size":3,"payload":"","position":1}"#,
            r#"{"type":1,"name":"d/","size":0,"position":2}"#,
            r#"{"type":2,"payload":"UEFE","position":3}"#, // "PAD"
            r#"{"type":1,"name_raw":"Yv8=","size":2,"position":4}"#,
        ];
        assert_eq!(assemble(&lines, diff.path()).unwrap(), b"HDR1abcPADxy");

        // A file shorter than its header says is an error, never a shifted tar.
        std::fs::write(diff.path().join("d/a"), "ab").unwrap();
        let err = assemble(&lines, diff.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("d/a is shorter"), "{err}");
    }

    /// A layer file that is a link (to a file or through a linked directory), a FIFO or
    /// outside the layer is refused, never followed or waited on.
    #[test]
    fn links_and_special_files_in_a_layer_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "SECRET").unwrap();
        let diff = tempfile::tempdir().unwrap();
        let d = diff.path();
        std::os::unix::fs::symlink(outside.path().join("secret"), d.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.join("dirlink")).unwrap();
        let fifo = std::ffi::CString::new(d.join("fifo").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        std::fs::write(d.join("plain"), "SECRET").unwrap();
        let entry = |name: &str| format!(r#"{{"type":1,"name":"{name}","size":6,"position":0}}"#);
        for (name, says) in [
            ("link", "symbolic link"),
            ("dirlink/secret", "symbolic link"),
            ("fifo", "not a regular file"),
        ] {
            let err = assemble(&[&entry(name)], d).unwrap_err();
            assert!(err.to_string().contains(says), "{name}: {err}");
        }
        // `..` is dropped from a name: it is looked for beneath the layer, not outside.
        let escape = format!(
            "../{}/secret",
            outside.path().file_name().unwrap().to_str().unwrap()
        );
        let err = assemble(&[&entry(&escape)], d).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert_eq!(assemble(&[&entry("plain")], d).unwrap(), b"SECRET");
    }

    /// Found while writing the tar-split fuzz target (not by its runs): two file sizes
    /// near 2^64 overflowed the layer's size, a panic in a debug build.
    #[test]
    fn sizes_that_add_up_past_u64_are_an_error() {
        let huge = r#"{"type":1,"name":"a","size":10000000000000000000}"#;
        let split = format!("{huge}\n{huge}\n");
        let pieces = parse_tar_split(split.as_bytes(), Path::new("t")).unwrap();
        let err = layer_size(&pieces).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            layer_size(&pieces[..1]).unwrap(),
            10_000_000_000_000_000_000
        );
    }

    #[test]
    fn chain_ids_are_dockers() {
        // The chain id of two layers, as docker computes it (image/spec: ChainID).
        let a = "sha256:aaaa";
        let b = "sha256:bbbb";
        let ab = format!("sha256:{:x}", Sha256::digest("sha256:aaaa sha256:bbbb"));
        assert_eq!(chain_ids(&[a, b]), [a.to_owned(), ab.clone()]);
        assert_eq!(
            layer_file_names(&[a, b]),
            [
                "aaaa/layer.tar".to_owned(),
                format!("{}/layer.tar", &ab[7..])
            ]
        );
        assert!(chain_ids::<&str>(&[]).is_empty());
    }

    #[test]
    fn a_reference_without_a_tag_is_latest() {
        assert_eq!(tagged("app"), "app:latest");
        assert_eq!(tagged("app:1"), "app:1");
        assert_eq!(tagged("127.0.0.1:5000/app"), "127.0.0.1:5000/app:latest");
        assert_eq!(tagged("127.0.0.1:5000/app:2"), "127.0.0.1:5000/app:2");
    }
}
