//! The image to send, read once from the local engine: its layers (diff ids, in order),
//! its size, and, when this process can read the engine's storage, the image there (sent
//! without `docker save`).

use crate::engine_store::{self, StoredImage};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::process::{Command, Stdio};

/// The local image: its reference, layers (diff ids, in order), size, and the image in
/// the engine's storage when that is readable.
pub struct LocalImage {
    pub reference: String,
    pub layers: Vec<String>,
    pub size: u64,
    pub store: Option<StoredImage>,
}

pub fn local_image(image: &str, docker_save: bool) -> Result<LocalImage> {
    let text =
        crate::docker::inspect_image(image, "{{json .}}")?.ok_or_else(|| Error::NoImage {
            image: image.into(),
        })?;
    let inspect: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Remote(format!("docker image inspect {image}: {e}")))?;
    let layers = inspect["RootFS"]["Layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    Ok(LocalImage {
        reference: image.to_string(),
        layers,
        size: inspect["Size"].as_u64().unwrap_or(0),
        store: if docker_save {
            None
        } else {
            engine_store::open(&inspect, image)
        },
    })
}

pub fn docker_save(image: &str) -> std::io::Result<std::process::Child> {
    Command::new("docker")
        .args(["save", image])
        .stdout(Stdio::piped())
        .spawn()
}

/// The archive paths of the layer files whose content is one of `diff_ids`: a pass over
/// `docker save` that hashes every layer file (an archive names layers by its own ids).
pub fn layer_paths(image: &str, diff_ids: &HashSet<String>) -> Result<HashSet<String>> {
    let mut save = docker_save(image).map_err(|e| Error::spawn("docker", e))?;
    let mut archive = tar::Archive::new(save.stdout.take().unwrap());
    let mut paths = HashSet::new();
    let io = |e| Error::io("reading docker save", e);
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.to_string_lossy().into_owned();
        if !is_layer_file(&path) {
            continue;
        }
        let mut hasher = Sha256::new();
        std::io::copy(&mut entry, &mut hasher).map_err(io)?;
        let digest = format!("sha256:{:x}", hasher.finalize());
        if diff_ids.contains(&digest) {
            paths.insert(path);
        }
    }
    let _ = save.wait();
    Ok(paths)
}

/// `<id>/layer.tar` (classic archives) or `blobs/sha256/<hex>` (OCI archives).
fn is_layer_file(path: &str) -> bool {
    path.ends_with("/layer.tar") || path.starts_with("blobs/")
}
