//! The image to move, read once: from this machine's engine (its storage when this
//! process can read it, else `docker save`), or from a dock's engine (its storage, by the
//! reader run there: [`super::dock_reader`]; else `docker save` there, the layers that
//! every destination holds left out by GNU tar on the dock).
//!
//! A source gives an uncompressed archive stream and the labels of its layer files
//! (archive path → layer index), which is what each destination filters on.

use super::Children;
use super::dock_reader::{OnDock, Reader};
use super::remote::{self, Ask, Codec, Engine, Remote};
use crate::dock::session::{Io, RemoteChild};
use crate::engine::store::{self, StoredImage};
use crate::error::{Error, Result};
use crate::plan::quote;
use crate::process::Running;
use crate::process::{Command, Stdio};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The image: its reference, layers (diff ids, bottom first), size, and where it is.
pub(crate) struct Image {
    pub reference: String,
    pub layers: Vec<String>,
    pub size: u64,
    pub origin: Origin,
}

pub(crate) enum Origin {
    /// This machine's engine, and the image in its storage when that is readable.
    Local { store: Option<Arc<StoredImage>> },
    /// A dock's engine: the reader there (its storage), else `docker save` there,
    /// compressed with what it has.
    Dock {
        remote: Remote,
        codec: Codec,
        gnu_tar: bool,
        reader: Option<Box<OnDock>>,
    },
}

impl Image {
    /// The name of the engine it is on.
    pub(crate) fn origin_name(&self) -> &str {
        match &self.origin {
            Origin::Local { .. } => super::remote::HERE,
            Origin::Dock { remote, .. } => &remote.name,
        }
    }

    /// Where the layers come from when nothing is left out (as `--dry-run` shows it).
    pub(crate) fn shown(&self) -> String {
        match &self.origin {
            Origin::Local { store: Some(_) } => {
                format!(
                    "(the layers of {} from the engine's storage)",
                    self.reference
                )
            }
            Origin::Local { store: None } => format!("docker save {}", quote(&self.reference)),
            Origin::Dock { remote, codec, .. } => format!(
                "{} | {}",
                remote.shown(&format!(
                    "{} save {} | {}",
                    remote.docker,
                    quote(&self.reference),
                    codec.compress()
                )),
                codec.decompress()
            ),
        }
    }

    /// Whether a pass that leaves nothing out for a destination sends `docker save` as
    /// it is (then sending it again whole would change nothing): not when the layers are
    /// read from an engine's storage, here or by the reader on a dock.
    pub(crate) fn saved_as_is(&self) -> bool {
        !matches!(
            self.origin,
            Origin::Local { store: Some(_) }
                | Origin::Dock {
                    reader: Some(_),
                    ..
                }
        )
    }
}

fn diff_ids(inspect: &serde_json::Value) -> Vec<String> {
    inspect["RootFS"]["Layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// How the image is named from now on (what `docker save` is given, and the messages):
/// NAME:TAG for a name, `name` alone being `name:latest` as every docker command but
/// `docker save` reads it (`docker save name` exports every tag of the repository); an
/// id or digest as given. `tags`: the image's RepoTags, when known (else a name is told
/// from an id by its form).
pub(crate) fn named(reference: &str, tags: Option<&serde_json::Value>) -> String {
    let tagged = store::tagged(reference);
    let id_like = reference.contains('@')
        || reference.starts_with("sha256:")
        || (reference.len() >= 12 && reference.bytes().all(|b| b.is_ascii_hexdigit()));
    match tags.and_then(|t| t.as_array()) {
        Some(tags) if tags.iter().any(|t| t.as_str() == Some(tagged.as_str())) => tagged,
        Some(_) => reference.to_string(),
        None if id_like => reference.to_string(),
        None => tagged,
    }
}

pub(crate) fn local_image(image: &str, docker_save: bool) -> Result<Image> {
    let text =
        crate::engine::inspect_image(image, "{{json .}}")?.ok_or_else(|| Error::NoImage {
            image: image.into(),
        })?;
    let inspect: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Engine(format!("docker image inspect {image}: {e}")))?;
    Ok(Image {
        reference: named(image, Some(&inspect["RepoTags"])),
        layers: diff_ids(&inspect),
        size: inspect["Size"].as_u64().unwrap_or(0),
        origin: Origin::Local {
            store: if docker_save {
                None
            } else {
                store::open(&inspect, image).map(Arc::new)
            },
        },
    })
}

/// The image on a dock: one ssh says what it is and what the dock has (the reader's
/// image, unless `docker_save`).
pub(crate) fn dock_image(remote: Remote, image: &str, docker_save: bool) -> Result<Image> {
    let reader = if docker_save { None } else { Reader::find() };
    let tag = reader.as_ref().map(|r| r.tag.as_str());
    let state = remote::probe(&Engine::Remote(remote.clone()), Ask::Image(image, tag))?;
    let inspect = state.image.unwrap_or_default();
    let reader = reader.and_then(|r| {
        match OnDock::new(r, state.reader, state.arch.as_deref(), &inspect, image) {
            Ok(on) => Some(Box::new(on)),
            Err(why) => {
                eprintln!(
                    "transfer-image: reading {image} on {} with `docker save`, not the reader: {why}",
                    remote.name
                );
                None
            }
        }
    });
    Ok(Image {
        reference: named(image, Some(&inspect["RepoTags"])),
        layers: diff_ids(&inspect),
        size: inspect["Size"].as_u64().unwrap_or(0),
        origin: Origin::Dock {
            remote,
            codec: state.codec,
            gnu_tar: state.gnu_tar,
            reader,
        },
    })
}

/// An open archive stream.
pub(crate) struct Stream {
    /// The uncompressed archive.
    pub input: Box<dyn Read + Send>,
    /// Layer file path in the archive → layer index (bottom = 0); empty when no
    /// destination leaves anything out.
    pub labels: HashMap<String, usize>,
    /// The bytes of the layers the source itself left out (every destination has them).
    pub left_out: u64,
    /// Compressed bytes received from a dock.
    pub received: Option<Arc<AtomicU64>>,
    /// The command line, as the user could type it.
    pub shown: String,
    producer: Producer,
}

enum Producer {
    Thread(std::thread::JoinHandle<io::Result<()>>),
    Child {
        child: Running,
        what: String,
    },
    Remote {
        child: Box<RemoteChild>,
        key: u64,
        what: String,
    },
}

impl Stream {
    /// Waits for what produced the archive: its failure, if it failed.
    pub(crate) fn finish(self, children: &Children) -> io::Result<()> {
        drop(self.input);
        match self.producer {
            Producer::Thread(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the reading thread panicked"))),
            Producer::Child { mut child, what } => {
                children.remove(child.id());
                let status = child.wait()?;
                if status.success() {
                    Ok(())
                } else {
                    Err(io::Error::other(format!("{what} failed ({status})")))
                }
            }
            Producer::Remote { child, key, what } => {
                children.remove_remote(key);
                match child.wait()? {
                    Some(0) => Ok(()),
                    Some(code) => Err(io::Error::other(format!(
                        "{what} failed (exit status: {code})"
                    ))),
                    None => Err(io::Error::other(format!(
                        "{what} ended without an exit status"
                    ))),
                }
            }
        }
    }

    /// Stops what produces the archive; the reading thread's own error, if it failed
    /// for a reason of its own (not because the reading stopped).
    pub(crate) fn abort(self, children: &Children) -> Option<io::Error> {
        drop(self.input);
        match self.producer {
            Producer::Thread(t) => match t.join() {
                Ok(Err(e)) if e.kind() != io::ErrorKind::BrokenPipe => Some(e),
                _ => None,
            },
            Producer::Child { mut child, .. } => {
                // SIGKILL, and reaped.
                child.kill();
                children.remove(child.id());
                None
            }
            Producer::Remote { child, key, .. } => {
                // Cut off, and not waited for: the remote command ends when it next
                // writes (a `docker save` still exporting would keep us).
                child.cutter().cut();
                children.remove_remote(key);
                None
            }
        }
    }
}

/// Opens the image's archive for a pass: the files of its `skip` bottom layers left out
/// where the source can (the engine's storage; GNU tar on a dock), labels when `labels`
/// (some destination leaves layers out), and with `whole`, `docker save` as it is.
pub(crate) fn open(
    image: &Image,
    skip: usize,
    labels: bool,
    whole: bool,
    children: &Children,
) -> Result<Stream> {
    match &image.origin {
        Origin::Local { store: Some(store) } if !whole => {
            let files = store.layer_files();
            let (reader, writer) = io::pipe().map_err(|e| Error::io("a pipe", e))?;
            let stored = store.clone();
            let thread = std::thread::spawn(move || {
                stored.write_archive(skip, writer, &mut |_| {}).map(drop)
            });
            Ok(Stream {
                input: Box::new(reader),
                left_out: files[..skip].iter().map(|(_, size)| size).sum(),
                labels: files
                    .into_iter()
                    .enumerate()
                    .map(|(i, (path, _))| (path, i))
                    .collect(),
                received: None,
                shown: image.shown(),
                producer: Producer::Thread(thread),
            })
        }
        Origin::Local { .. } => {
            let labels = if labels && !whole {
                layer_paths(&image.reference, &image.layers)?
            } else {
                HashMap::new()
            };
            let mut child = crate::process::spawn(
                Command::new("docker")
                    .args(["save", &image.reference])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped()),
            )
            .map_err(|e| Error::spawn("docker", e))?;
            children.add(child.id());
            Ok(Stream {
                input: Box::new(child.stdout.take().unwrap()),
                labels,
                left_out: 0,
                received: None,
                shown: format!("docker save {}", quote(&image.reference)),
                producer: Producer::Child {
                    child,
                    what: "docker save".into(),
                },
            })
        }
        Origin::Dock {
            remote,
            reader: Some(reader),
            ..
        } if !whole && reader_is_there(reader, remote, children) => {
            let script = reader.script(&remote.docker, skip);
            let (mut child, key) = spawn_reading(remote, &script, children)?;
            let received = Arc::new(AtomicU64::new(0));
            let counted = Counted {
                inner: child.stdout.take().unwrap(),
                count: received.clone(),
            };
            Ok(Stream {
                input: Box::new(
                    zstd::stream::read::Decoder::new(counted).map_err(|e| Error::io("zstd", e))?,
                ),
                labels: store::layer_file_names(&image.layers)
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (p, i))
                    .collect(),
                // The reader knows the skipped layers' sizes, this side does not: the
                // progress line counts what crosses.
                left_out: 0,
                received: Some(received),
                shown: format!("{} | zstd -dc", remote.shown(&script)),
                producer: Producer::Remote {
                    child: Box::new(child),
                    key,
                    what: format!("the reader on {}", remote.name),
                },
            })
        }
        Origin::Dock {
            remote,
            codec,
            gnu_tar,
            ..
        } => {
            let d = &remote.docker;
            let save = format!("{d} save {}", quote(&image.reference));
            let skip = if *gnu_tar && !whole { skip } else { 0 };
            let index = if (labels || skip > 0) && !whole {
                dock_index(image, remote, *gnu_tar, children)?
            } else {
                Index::default()
            };
            let mut script = save;
            let mut left_out = 0;
            if skip > 0 {
                script.push_str(" | tar --delete -f -");
                for path in &index.paths[..skip] {
                    script.push(' ');
                    script.push_str(&quote(path));
                    left_out += index.sizes.get(path).copied().unwrap_or(0);
                }
            }
            script.push_str(" | ");
            script.push_str(codec.compress());
            let (mut child, key) = spawn_reading(remote, &script, children)?;
            let received = Arc::new(AtomicU64::new(0));
            let counted = Counted {
                inner: child.stdout.take().unwrap(),
                count: received.clone(),
            };
            let input: Box<dyn Read + Send> = if codec.is_zstd() {
                Box::new(
                    zstd::stream::read::Decoder::new(counted).map_err(|e| Error::io("zstd", e))?,
                )
            } else {
                Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(
                    counted,
                )))
            };
            Ok(Stream {
                input,
                labels: index
                    .paths
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (p, i))
                    .collect(),
                left_out,
                received: Some(received),
                shown: format!("{} | {}", remote.shown(&script), codec.decompress()),
                producer: Producer::Remote {
                    child: Box::new(child),
                    key,
                    what: format!("`{script}` on {}", remote.name),
                },
            })
        }
    }
}

/// `script` on the dock, its stdout ours to read, listed in `children` (by the key).
fn spawn_reading(remote: &Remote, script: &str, children: &Children) -> Result<(RemoteChild, u64)> {
    let child = remote.mux()?.spawn_script(script, Io::Null, Io::Socket)?;
    let key = children.add_remote(child.cutter());
    Ok((child, key))
}

/// Whether the dock has the reader's image, putting it there if not; a failure to is
/// said, and `docker save` does instead.
fn reader_is_there(reader: &OnDock, remote: &Remote, children: &Children) -> bool {
    if reader.present.load(Ordering::Relaxed) {
        return true;
    }
    eprintln!(
        "transfer-image: putting the reader on {} (once: {})",
        remote.name, reader.reader.tag
    );
    eprintln!("{}", reader.reader.import_shown(remote));
    match reader.reader.import(remote, children) {
        Ok(()) => {
            reader.present.store(true, Ordering::Relaxed);
            true
        }
        Err(e) => {
            if !crate::process::interrupted() {
                eprintln!("transfer-image: {e}; reading the image with `docker save` instead");
            }
            false
        }
    }
}

/// The layer files of a dock's `docker save` archive: the path of each layer (bottom
/// first) and, with GNU tar, their sizes.
#[derive(Default)]
struct Index {
    paths: Vec<String>,
    sizes: HashMap<String, u64>,
}

/// A first pass over `docker save` on the dock, which nothing crosses but the archive's
/// manifest and its layer files' sizes. The archive names layers by ids of its own,
/// known only from its manifest, and the manifest comes last: before a stream can leave
/// layers out, their names must be known.
fn dock_index(image: &Image, remote: &Remote, gnu_tar: bool, children: &Children) -> Result<Index> {
    let save = format!("{} save {}", remote.docker, quote(&image.reference));
    let script = if gnu_tar {
        format!(
            "{save} | tar -xf - --to-command='if [ \"$TAR_FILENAME\" = manifest.json ]; then cat; echo; \
             else echo \"$TAR_SIZE $TAR_FILENAME\"; cat >/dev/null; fi'"
        )
    } else {
        format!("{save} | tar -xOf - manifest.json")
    };
    eprintln!("{}", remote.shown(&script));
    // Listed while it runs: Ctrl-C cuts it off, as it does the streams.
    let (mut child, key) = spawn_reading(remote, &script, children)?;
    let mut text = String::new();
    let read = child.stdout.take().unwrap().read_to_string(&mut text);
    children.remove_remote(key);
    let code = child.wait().ok().flatten();
    let failed = |why: String| {
        Error::Remote(format!(
            "reading the layers of {} on {} failed: {why}",
            image.reference, remote.name
        ))
    };
    if read.is_err() || code != Some(0) {
        if crate::process::interrupted() {
            return Err(Error::Interrupted(format!(
                "stopped reading the layers of {} on {}; nothing was sent",
                image.reference, remote.name
            )));
        }
        return Err(failed(format!(
            "exit status {} (its message above)",
            code.map_or("none".to_string(), |c| c.to_string())
        )));
    }
    let mut index = Index::default();
    for line in text.lines() {
        if line.starts_with('[') {
            let manifest: serde_json::Value =
                serde_json::from_str(line).map_err(|e| failed(format!("its manifest: {e}")))?;
            index.paths = manifest[0]["Layers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
        } else if let Some((size, path)) = line.split_once(' ')
            && let Ok(size) = size.parse()
        {
            index.sizes.insert(path.to_string(), size);
        }
    }
    if index.paths.len() != image.layers.len() {
        return Err(failed(format!(
            "its manifest names {} layers, the image has {}",
            index.paths.len(),
            image.layers.len()
        )));
    }
    Ok(index)
}

/// The archive paths of the image's layer files, by layer index: a pass over `docker
/// save` that hashes every layer file (an archive names layers by ids of its own). A
/// layer whose content is also another layer's gets the higher index: it is left out
/// only where both are present.
fn layer_paths(image: &str, layers: &[String]) -> Result<HashMap<String, usize>> {
    let mut save = crate::process::spawn(
        Command::new("docker")
            .args(["save", image])
            .stdout(Stdio::piped()),
    )
    .map_err(|e| Error::spawn("docker", e))?;
    let mut archive = tar::Archive::new(save.stdout.take().unwrap());
    let mut paths = HashMap::new();
    let io = |e| Error::io("reading docker save", e);
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.to_string_lossy().into_owned();
        if !is_layer_file(&path) {
            continue;
        }
        let mut hasher = Sha256::new();
        io::copy(&mut entry, &mut hasher).map_err(io)?;
        let digest = format!("sha256:{:x}", hasher.finalize());
        if let Some(i) = layers.iter().rposition(|l| *l == digest) {
            paths.insert(path, i);
        }
    }
    let _ = save.wait();
    Ok(paths)
}

/// `<id>/layer.tar` (classic archives) or `blobs/sha256/<hex>` (OCI archives).
fn is_layer_file(path: &str) -> bool {
    path.ends_with("/layer.tar") || path.starts_with("blobs/")
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_named_with_its_tag_an_id_as_given() {
        let tags = serde_json::json!(["app:latest", "app:v1"]);
        assert_eq!(named("app", Some(&tags)), "app:latest");
        assert_eq!(named("app:v1", Some(&tags)), "app:v1");
        // An id (prefix), or a name the image does not have: as given.
        assert_eq!(named("9e179e0bc948", Some(&tags)), "9e179e0bc948");
        assert_eq!(
            named("other", Some(&serde_json::json!(["other:v2"]))),
            "other"
        );
        // Not known (a dry run): told by its form.
        assert_eq!(named("app", None), "app:latest");
        assert_eq!(named("9e179e0bc948", None), "9e179e0bc948");
        assert_eq!(named("app@sha256:00", None), "app@sha256:00");
        assert_eq!(named("host:5000/app", None), "host:5000/app:latest");
    }
}
