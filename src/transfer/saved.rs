//! An image as `docker save` writes it, unpacked into a private temporary directory and
//! read in either of its layouts: the classic one (`manifest.json`, `<id>.json`,
//! `<id>/layer.tar`), or the OCI image layout (`index.json`, `blobs/sha256/<hex>`) that
//! engines with the containerd image store write (Docker Desktop, Docker Engine 29+).
//! transfer-image's registry path serves it when it cannot read the engine's storage
//! directly ([`crate::engine::store`]).
//!
//! The whole archive is written to disk once (the registry must know every blob's digest
//! and size before the first request, and serve blobs in any order): the cost is the
//! image's size in the temporary directory for as long as the transfer runs, which the
//! [`SavedImage`] removes when dropped.

use serde_json::Value;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// Layer media types: the classic archive's layers are uncompressed tars.
pub(crate) const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// An unpacked `docker save` of one image.
#[derive(Debug)]
pub(crate) struct SavedImage {
    /// Where it is unpacked (removed with the value).
    _dir: tempfile::TempDir,
    /// The image manifest as the archive has it (OCI layout): served as is. `None` for a
    /// classic archive, which has none (the registry writes one).
    pub manifest: Option<(Vec<u8>, String)>,
    pub config: Vec<u8>,
    pub layers: Vec<SavedLayer>,
}

/// One layer blob of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SavedLayer {
    pub path: PathBuf,
    /// `sha256:<hex>`: the blob's digest (for an uncompressed layer, its diff id).
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

impl SavedLayer {
    /// Is the blob an uncompressed tar (worth compressing on the way)?
    pub(crate) fn uncompressed(&self) -> bool {
        self.media_type == DOCKER_LAYER
            || self.media_type == "application/vnd.oci.image.layer.v1.tar"
    }
}

/// Unpacks `archive` (a `docker save` stream) into a new private temporary directory and
/// reads it. Only plain files and directories under plain relative paths are written:
/// links (the classic part of a newer engine's archive links its layer files into the OCI
/// part) and anything else are left out. `stop` is asked between entries: when it says
/// so, unpacking ends with an `Interrupted` error.
pub(crate) fn unpack(archive: impl Read, stop: &dyn Fn() -> bool) -> io::Result<SavedImage> {
    let dir = tempfile::Builder::new()
        .prefix("dockerutils-save-")
        .tempdir()?;
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries()? {
        if stop() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        let mut entry = entry?;
        let Some(rel) = plain(&entry.path()?) else {
            continue;
        };
        let to = dir.path().join(&rel);
        match entry.header().entry_type() {
            tar::EntryType::Directory => std::fs::create_dir_all(&to)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut file = std::fs::File::create(&to)?;
                io::copy(&mut entry, &mut file)?;
            }
            _ => {}
        }
    }
    let (manifest, config, layers) = read_layout(dir.path())?;
    Ok(SavedImage {
        _dir: dir,
        manifest,
        config,
        layers,
    })
}

type Layout = (Option<(Vec<u8>, String)>, Vec<u8>, Vec<SavedLayer>);

/// Reads an unpacked archive: the OCI layout when there is one (the classic part of an
/// archive that has both may consist of links, which are not unpacked), else the
/// classic `manifest.json`.
pub(crate) fn read_layout(dir: &Path) -> io::Result<Layout> {
    if dir.join("index.json").is_file() {
        read_oci(dir)
    } else if dir.join("manifest.json").is_file() {
        read_classic(dir)
    } else {
        Err(bad(
            "neither index.json nor manifest.json: not a `docker save` archive",
        ))
    }
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// A relative path of plain components only (`./` dropped), else `None`.
fn plain(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

fn read_json(path: &Path) -> io::Result<(Vec<u8>, Value)> {
    let bytes = std::fs::read(path)?;
    let value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    Ok((bytes, value))
}

/// `<dir>/blobs/sha256/<hex>` for a `sha256:<hex>` digest (nothing else is a path).
fn blob_path(dir: &Path, digest: &str) -> io::Result<PathBuf> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(dir.join("blobs/sha256").join(hex))
        }
        _ => Err(bad(format!("`{digest}` is not a sha256 digest"))),
    }
}

/// The classic archive: the configuration and the layer tars (uncompressed; a layer's
/// digest is its diff id, from the configuration).
fn read_classic(dir: &Path) -> io::Result<Layout> {
    let (_, manifest) = read_json(&dir.join("manifest.json"))?;
    let entry = manifest
        .as_array()
        .and_then(|a| a.first())
        .ok_or_else(|| bad("manifest.json names no image"))?;
    let file = |key: &Value| -> io::Result<PathBuf> {
        key.as_str()
            .and_then(|s| plain(Path::new(s)))
            .map(|p| dir.join(p))
            .ok_or_else(|| bad(format!("manifest.json: bad path {key}")))
    };
    let (config, parsed) = read_json(&file(&entry["Config"])?)?;
    let diff_ids = diff_ids(&parsed)?;
    let paths = entry["Layers"]
        .as_array()
        .ok_or_else(|| bad("manifest.json: no Layers"))?;
    if paths.len() != diff_ids.len() {
        return Err(bad(format!(
            "manifest.json has {} layers, the configuration {}",
            paths.len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (path, digest) in paths.iter().zip(diff_ids) {
        let path = file(path)?;
        let size = std::fs::metadata(&path)
            .map_err(|e| bad(format!("{}: {e}", path.display())))?
            .len();
        layers.push(SavedLayer {
            path,
            digest,
            size,
            media_type: DOCKER_LAYER.into(),
        });
    }
    Ok((None, config, layers))
}

/// The configuration's `rootfs.diff_ids`.
pub(crate) fn diff_ids(config: &Value) -> io::Result<Vec<String>> {
    config["rootfs"]["diff_ids"]
        .as_array()
        .ok_or_else(|| bad("the image configuration has no rootfs.diff_ids"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad("a diff id that is not a string"))
        })
        .collect()
}

/// The OCI layout: index.json's image, through an index if it is one (the manifest for
/// this machine's platform, or else the first one whose blobs are all in the archive).
fn read_oci(dir: &Path) -> io::Result<Layout> {
    let (_, index) = read_json(&dir.join("index.json"))?;
    let mut candidates = Vec::new();
    collect_manifests(dir, &index, 0, &mut candidates)?;
    let complete = |(_, m, _): &(Vec<u8>, Value, Option<String>)| {
        let mut digests = vec![m["config"]["digest"].clone()];
        digests.extend(
            m["layers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| l["digest"].clone()),
        );
        digests.iter().all(|d| {
            d.as_str()
                .and_then(|d| blob_path(dir, d).ok())
                .is_some_and(|p| p.is_file())
        })
    };
    let here = format!("linux/{}", go_arch());
    let chosen = candidates
        .iter()
        .filter(|c| complete(c))
        .find(|c| c.2.as_deref() == Some(here.as_str()))
        .or_else(|| candidates.iter().find(|c| complete(c)))
        .ok_or_else(|| bad("index.json: no image manifest whose blobs are all in the archive"))?;
    let (bytes, manifest, _) = chosen;
    let media_type = manifest["mediaType"]
        .as_str()
        .unwrap_or(OCI_MANIFEST)
        .to_owned();
    let config_digest = manifest["config"]["digest"].as_str().unwrap_or_default();
    let config = std::fs::read(blob_path(dir, config_digest)?)?;
    let mut layers = Vec::new();
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        let digest = layer["digest"].as_str().unwrap_or_default().to_owned();
        let path = blob_path(dir, &digest)?;
        layers.push(SavedLayer {
            size: std::fs::metadata(&path)?.len(),
            path,
            digest,
            media_type: layer["mediaType"].as_str().unwrap_or_default().to_owned(),
        });
    }
    Ok((Some((bytes.clone(), media_type)), config, layers))
}

/// The image manifests an index leads to (through nested indexes), each with its bytes
/// and its platform (`os/arch`) when the index says it. Attestations (platform
/// `unknown/unknown`) are not images.
fn collect_manifests(
    dir: &Path,
    index: &Value,
    depth: usize,
    out: &mut Vec<(Vec<u8>, Value, Option<String>)>,
) -> io::Result<()> {
    if depth > 4 {
        return Err(bad("index.json: indexes nested too deep"));
    }
    for desc in index["manifests"].as_array().into_iter().flatten() {
        let platform = desc["platform"]["os"]
            .as_str()
            .zip(desc["platform"]["architecture"].as_str())
            .map(|(os, arch)| format!("{os}/{arch}"));
        if platform.as_deref() == Some("unknown/unknown") {
            continue;
        }
        let Some(path) = desc["digest"].as_str().and_then(|d| blob_path(dir, d).ok()) else {
            continue;
        };
        // An index may name platforms whose content the engine never had: skipped.
        let Ok((bytes, value)) = read_json(&path) else {
            continue;
        };
        let media_type = desc["mediaType"]
            .as_str()
            .or(value["mediaType"].as_str())
            .unwrap_or_default();
        if media_type == OCI_INDEX || media_type == DOCKER_LIST {
            collect_manifests(dir, &value, depth + 1, out)?;
        } else if value["config"].is_object() {
            out.push((bytes, value, platform));
        }
    }
    Ok(())
}

/// This machine's architecture as Go (and so image platforms) names it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// A tar of `files` (name, content), as an archive or a layer (for the tests of this
/// folder).
#[cfg(test)]
pub(crate) fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *content).unwrap();
    }
    b.into_inner().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn digest(bytes: &[u8]) -> String {
        format!("sha256:{:x}", Sha256::digest(bytes))
    }

    fn config_for(layers: &[&[u8]]) -> Vec<u8> {
        let ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
        serde_json::json!({"architecture": go_arch(), "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ids}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_classic_archive_is_read_with_diff_ids_as_digests() {
        let l1 = tar_of(&[("a", b"one")]);
        let l2 = tar_of(&[("b", b"two")]);
        let config = config_for(&[&l1, &l2]);
        let manifest = serde_json::json!([{"Config": "cfg.json", "RepoTags": ["x:1"],
            "Layers": ["l1/layer.tar", "./l2/layer.tar"]}])
        .to_string();
        let archive = tar_of(&[
            ("l1/layer.tar", &l1),
            ("l2/layer.tar", &l2),
            ("cfg.json", &config),
            ("manifest.json", manifest.as_bytes()),
        ]);
        let saved = unpack(&archive[..], &|| false).unwrap();
        assert_eq!(saved.manifest, None);
        assert_eq!(saved.config, config);
        assert_eq!(saved.layers.len(), 2);
        assert_eq!(saved.layers[1].digest, digest(&l2));
        assert_eq!(saved.layers[1].size, l2.len() as u64);
        assert!(saved.layers[1].uncompressed());
        assert_eq!(std::fs::read(&saved.layers[0].path).unwrap(), l1);
        // Removed with the value.
        let dir = saved.layers[0]
            .path
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .to_owned();
        drop(saved);
        assert!(!dir.exists());
    }

    /// An OCI layout as a containerd-store engine writes it: an index pointing at a
    /// multi-platform index (one platform's content present, an attestation), gzip layers.
    #[test]
    fn an_oci_layout_is_read_through_its_indexes() {
        let gz = |data: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, data).unwrap();
            e.finish().unwrap()
        };
        let l1 = tar_of(&[("a", b"one")]);
        let l2 = tar_of(&[("b", b"two")]);
        let config = config_for(&[&l1, &l2]);
        let (g1, g2) = (gz(&l1), gz(&l2));
        let layer = |b: &[u8]| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest(b), "size": b.len()})
        };
        let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": digest(&config), "size": config.len()},
            "layers": [layer(&g1), layer(&g2)]})
        .to_string()
        .into_bytes();
        let missing = "sha256:".to_string() + &"0".repeat(64);
        let attestation = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"digest": digest(b"{}"), "size": 2}, "layers": []})
        .to_string()
        .into_bytes();
        let inner = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": missing, "size": 10,
             "platform": {"os": "linux", "architecture": "s390x"}},
            {"mediaType": OCI_MANIFEST, "digest": digest(&attestation), "size": attestation.len(),
             "platform": {"os": "unknown", "architecture": "unknown"}},
            {"mediaType": OCI_MANIFEST, "digest": digest(&manifest), "size": manifest.len(),
             "platform": {"os": "linux", "architecture": go_arch()}}]})
        .to_string()
        .into_bytes();
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": OCI_INDEX, "digest": digest(&inner), "size": inner.len(),
             "annotations": {"io.containerd.image.name": "docker.io/library/x:1"}}]})
        .to_string();
        let blob = |b: &[u8]| format!("blobs/sha256/{}", &digest(b)[7..]);
        let names = [
            blob(&g1),
            blob(&g2),
            blob(&config),
            blob(&manifest),
            blob(&inner),
            blob(&attestation),
            blob(b"{}"),
        ];
        let contents: [&[u8]; 7] = [&g1, &g2, &config, &manifest, &inner, &attestation, b"{}"];
        let mut files: Vec<(&str, &[u8])> =
            names.iter().map(String::as_str).zip(contents).collect();
        files.push(("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#));
        files.push(("index.json", index.as_bytes()));
        // The classic part of a newer engine's archive: links, never followed or written.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "l1/layer.tar", "/etc/passwd")
            .unwrap();
        let mut archive = b.into_inner().unwrap();
        archive.truncate(archive.len() - 1024); // no end-of-archive blocks yet
        archive.extend(tar_of(&files));
        let saved = unpack(&archive[..], &|| false).unwrap();
        let (bytes, media_type) = saved.manifest.clone().unwrap();
        assert_eq!((bytes, media_type.as_str()), (manifest, OCI_MANIFEST));
        assert_eq!(saved.config, config);
        let digests: Vec<&str> = saved.layers.iter().map(|l| l.digest.as_str()).collect();
        assert_eq!(digests, [digest(&g1), digest(&g2)]);
        assert!(!saved.layers[0].uncompressed());
        assert_eq!(std::fs::read(&saved.layers[1].path).unwrap(), g2);
        assert!(saved.layers[0].path.starts_with(saved._dir.path()));
        assert!(!saved._dir.path().join("l1/layer.tar").exists());
    }

    #[test]
    fn paths_outside_the_archive_and_bad_digests_are_refused() {
        assert_eq!(plain(Path::new("./a/b")), Some(PathBuf::from("a/b")));
        assert_eq!(plain(Path::new("../a")), None);
        assert_eq!(plain(Path::new("/etc/passwd")), None);
        assert_eq!(plain(Path::new("a/../../b")), None);
        let dir = Path::new("/x");
        assert!(blob_path(dir, "sha256:../../etc/passwd").is_err());
        assert!(blob_path(dir, "md5:abc").is_err());
        let evil = tar_of(&[(
            "manifest.json",
            br#"[{"Config":"../../etc/passwd","Layers":[]}]"#,
        )]);
        let err = unpack(&evil[..], &|| false).unwrap_err();
        assert!(err.to_string().contains("bad path"), "{err}");
        let err = unpack(&tar_of(&[("x", b"y")])[..], &|| false).unwrap_err();
        assert!(
            err.to_string().contains("not a `docker save` archive"),
            "{err}"
        );
        let err = unpack(&tar_of(&[("x", b"y")])[..], &|| true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Interrupted);
    }
}
