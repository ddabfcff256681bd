//! The reader on a dock: a pull back (`transfer-image DOCK:IMAGE`) reads the image from
//! the dock engine's storage with crates/reader's static binary, run there in a throwaway
//! container, instead of `docker save`.
//!
//! Why: the dock's user cannot read the engine's storage, and `docker save` on a classic
//! engine exports the whole image to a temporary directory before its first byte (1.7 s of
//! the benchmark's 231 MB image), then a second `docker save` is needed to learn the
//! archive's layer names before layers can be left out. The docker group can do what the
//! user cannot: a container with the storage mounted read-only. The binary goes there
//! once, as a one-file image made by `docker import` and tagged with its sha256 (a changed
//! binary is another tag; the tag is checked before each pull), and each pull runs
//! `docker run --rm` of it: ~0.3 s to start, then layers stream as they are read, the
//! bottom ones the destination holds left out, zstd at the pace of the link.
//!
//! It is used when this machine has the static binary (installed beside the commands, or
//! named by `DOCKERUTILS_READER`), and the dock's engine keeps the image in overlay2 on the
//! classic store, on this machine's architecture. `--docker-save` turns it off; a failure
//! to put it there, or to read the image with it, falls back to `docker save`.

use super::Children;
use super::remote::{Engine, Remote};
use crate::dock::session::Io;
use crate::engine::store;
use crate::error::{Error, Result};
use crate::plan::quote;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

/// The image the binary becomes on a dock (tagged with the binary's sha256).
const REPOSITORY: &str = "dockerutils-reader";
/// Its path in that image.
const IN_IMAGE: &str = "/dockerutils-reader";
/// What names it in `DOCKERUTILS_READER`, and on disk.
const FILE: &str = "dockerutils-reader";

/// The static binary on this machine, and the tag it has on a dock.
#[derive(Debug, Clone)]
pub(crate) struct Reader {
    binary: PathBuf,
    pub tag: String,
}

impl Reader {
    /// The static reader beside this program (`$PREFIX/lib/dockerutils/`, where install.sh
    /// puts it; in a cargo tree, the host target's build of it), or the one that
    /// `DOCKERUTILS_READER` names; `None` when there is none, or it is not static (it
    /// must run in an empty container).
    pub(crate) fn find() -> Option<Reader> {
        let binary = match std::env::var_os("DOCKERUTILS_READER") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => {
                let exe = std::env::current_exe().ok()?;
                let dir = exe.parent()?;
                let cargo = dir.parent()?.join(host_triple()).join(dir.file_name()?);
                [dir.join("../lib/dockerutils").join(FILE), cargo.join(FILE)]
                    .into_iter()
                    .find(|p| p.is_file())?
            }
        };
        let binary = std::fs::canonicalize(&binary).unwrap_or(binary);
        let bytes = std::fs::read(&binary).ok()?;
        if !is_static_elf(&bytes) {
            return None;
        }
        Some(Reader {
            tag: format!("{REPOSITORY}:{:x}", Sha256::digest(&bytes)),
            binary,
        })
    }

    /// Puts the binary on the dock as the image [`Reader::tag`]: `docker import` of a
    /// one-file archive sent on ssh's stdin.
    pub(crate) fn import(&self, remote: &Remote, children: &Children) -> Result<()> {
        let bytes = std::fs::read(&self.binary)
            .map_err(|e| Error::io(format!("reading {}", self.binary.display()), e))?;
        let mut archive = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o755);
        header.set_entry_type(tar::EntryType::Regular);
        archive
            .append_data(&mut header, &IN_IMAGE[1..], bytes.as_slice())
            .map_err(|e| Error::io("an archive in memory", e))?;
        let archive = archive
            .into_inner()
            .map_err(|e| Error::io("an archive in memory", e))?;
        let script = self.import_script(&remote.docker);
        let mut child = remote.mux()?.spawn_script(&script, Io::Socket, Io::Null)?;
        let key = children.add_remote(child.cutter());
        let mut stdin = child.stdin.take().expect("a socket");
        let wrote = stdin
            .write_all(&archive)
            .and_then(|()| child.cutter().end_input());
        drop(stdin);
        let code = child.wait();
        children.remove_remote(key);
        match (wrote, code) {
            (Ok(()), Ok(Some(0))) => Ok(()),
            (wrote, code) => Err(Error::Remote(format!(
                "`{script}` on {} failed ({}){}",
                remote.name,
                match code {
                    Ok(Some(c)) => format!("exit status {c}: its message above"),
                    Ok(None) => "no exit status".to_string(),
                    Err(e) => e.to_string(),
                },
                wrote.err().map(|e| format!(": {e}")).unwrap_or_default()
            ))),
        }
    }

    /// The import as the ssh line that does the same.
    pub(crate) fn import_shown(&self, remote: &Remote) -> String {
        format!(
            "{} < {}  # a tar of the one file",
            remote.shown(&self.import_script(&remote.docker)),
            quote(&self.binary.display().to_string())
        )
    }

    fn import_script(&self, docker: &str) -> String {
        format!("{docker} import - {}", quote(&self.tag))
    }

    /// What `--dry-run` says of it.
    pub(crate) fn note(&self) -> String {
        format!(
            "when the dock's engine keeps the image in overlay2 (the classic store), on \
             this machine's architecture, the real run reads it from the engine's storage \
             with {} (put there once: `{}`), then `docker run --rm` of it; --docker-save \
             runs the pipeline as shown",
            self.binary.display(),
            self.import_script("docker")
        )
    }
}

/// What a dock needs to run the reader on an image, from its probe.
#[derive(Debug)]
pub(crate) struct OnDock {
    pub reader: Reader,
    /// The dock has the reader's image (already, or since this transfer put it there).
    pub present: AtomicBool,
    /// The engine's root directory (mounted read-only at the same path).
    root: String,
    /// The image's id, and the tag it is loaded with here.
    id: String,
    tag: String,
}

impl OnDock {
    /// Whether the dock can run `reader` on `reference`, the image `inspect` describes:
    /// the overlay2 driver, the dock's `uname -m` this machine's architecture, and a
    /// reference that is one of the image's tags (by id or digest, `docker save` knows
    /// best what to call it); if not, why.
    pub(crate) fn new(
        reader: Reader,
        present: bool,
        arch: Option<&str>,
        inspect: &serde_json::Value,
        reference: &str,
    ) -> std::result::Result<OnDock, String> {
        if arch != Some(std::env::consts::ARCH) {
            return Err(format!(
                "the dock is {} (`uname -m`), this machine {}",
                arch.unwrap_or("of an unknown architecture"),
                std::env::consts::ARCH
            ));
        }
        let driver = inspect["GraphDriver"]["Name"].as_str().unwrap_or("unknown");
        if driver != "overlay2" {
            return Err(format!(
                "its engine keeps the image in `{driver}`, not overlay2 on the classic image store"
            ));
        }
        let tag = store::tagged(reference);
        let tags = inspect["RepoTags"].as_array();
        if !tags.is_some_and(|t| t.iter().any(|t| t.as_str() == Some(tag.as_str()))) {
            return Err(format!(
                "`{reference}` is not one of the image's NAME:TAG names (by id or digest, \
                 `docker save` names what it loads)"
            ));
        }
        let root = store::engine_root(inspect).and_then(|r| r.to_str().map(str::to_owned));
        let (Some(root), Some(id)) = (root, inspect["Id"].as_str()) else {
            return Err("its engine did not say where the image's layers are".into());
        };
        Ok(OnDock {
            reader,
            present: AtomicBool::new(present),
            root,
            id: id.to_owned(),
            tag,
        })
    }

    /// The dock's command that writes the image's archive, its `skip` bottom layers left
    /// out, zstd-compressed, on stdout. No network, no logs kept; the storage read-only.
    pub(crate) fn script(&self, docker: &str, skip: usize) -> String {
        let volume = format!("{}:{}:ro", self.root, self.root);
        [
            docker,
            "run",
            "--rm",
            "--network",
            "none",
            "--log-driver",
            "none",
            "-v",
            &quote(&volume),
            "--entrypoint",
            IN_IMAGE,
            &quote(&self.reader.tag),
            "archive",
            &skip.to_string(),
            &quote(&self.root),
            &quote(&self.id),
            &quote(&self.tag),
        ]
        .join(" ")
    }
}

/// `Engine`'s probe asks whether the dock has the reader's image: `tag`, if there is a
/// reader here to ask about.
pub(crate) fn probe_script(engine: &Engine, tag: Option<&str>) -> String {
    let mut script = "printf 'arch %s\\n' \"$(uname -m)\"".to_string();
    if let Some(tag) = tag {
        script.push_str(&format!(
            "; if {} image inspect --format x {} >/dev/null 2>&1; then echo reader; fi",
            engine.docker(),
            quote(tag)
        ));
    }
    script
}

/// This machine's target triple, as cargo names its directory under target/.
fn host_triple() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// An ELF executable with no program interpreter (`PT_INTERP`): it needs no libc from the
/// container it runs in.
fn is_static_elf(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    // 64-bit little-endian ELF only: the architectures docks run on.
    if bytes.get(..6) != Some(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum as usize).all(|i| {
        let at = phoff as usize + i * phentsize as usize;
        bytes.get(at..at + 4).is_some_and(|t| t != [3, 0, 0, 0])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_static_elf_is_taken() {
        let sh = std::fs::read("/bin/sh").unwrap();
        assert!(!is_static_elf(&sh), "/bin/sh is dynamic");
        assert!(!is_static_elf(b"#!/bin/sh\necho hi\n"));
        assert!(!is_static_elf(&sh[..40]), "cut short");
        if let Ok(busybox) = std::fs::read("/bin/busybox") {
            assert!(is_static_elf(&busybox), "Debian's busybox-static");
        }
    }

    #[test]
    fn the_dock_runs_it_only_on_overlay2_the_same_architecture_and_a_tag() {
        let reader = Reader {
            binary: "/r".into(),
            tag: "dockerutils-reader:ab".into(),
        };
        let inspect = serde_json::json!({
            "Id": "sha256:1", "RepoTags": ["a b:1", "c;$(x):2"],
            "GraphDriver": {"Name": "overlay2", "Data": {
                "UpperDir": "/var/lib/my docker/overlay2/c1/diff"}},
        });
        let arch = Some(std::env::consts::ARCH);
        let on = OnDock::new(reader.clone(), true, arch, &inspect, "c;$(x):2").unwrap();
        let why = |r: std::result::Result<OnDock, String>| r.err().unwrap_or_default();
        assert_eq!(on.root, "/var/lib/my docker");
        let script = on.script("docker", 2);
        assert_eq!(
            script,
            "docker run --rm --network none --log-driver none \
             -v '/var/lib/my docker:/var/lib/my docker:ro' --entrypoint \
             /dockerutils-reader dockerutils-reader:ab archive 2 '/var/lib/my docker' \
             sha256:1 'c;$(x):2'"
        );
        // One word each, whatever the names hold.
        let words = shlex::split(&script).unwrap();
        assert_eq!(words.len(), 17);
        assert_eq!(words[16], "c;$(x):2");
        assert!(why(OnDock::new(reader.clone(), true, arch, &inspect, "a b")).contains("NAME:TAG"));
        assert!(
            why(OnDock::new(
                reader.clone(),
                true,
                arch,
                &inspect,
                "sha256:1"
            ))
            .contains("NAME:TAG")
        );
        assert!(
            why(OnDock::new(
                reader.clone(),
                true,
                Some("riscv64"),
                &inspect,
                "a b:1"
            ))
            .contains("riscv64")
        );
        assert!(OnDock::new(reader.clone(), true, None, &inspect, "a b:1").is_err());
        let mut other = inspect.clone();
        other["GraphDriver"]["Name"] = "overlayfs".into();
        assert!(
            why(OnDock::new(reader.clone(), true, arch, &other, "a b:1")).contains("overlayfs")
        );
        other["GraphDriver"]["Name"] = "overlay2".into();
        other["GraphDriver"]["Data"]["UpperDir"] = "/overlay2/c1/diff".into();
        assert!(OnDock::new(reader, true, arch, &other, "a b:1").is_err());
    }
}
