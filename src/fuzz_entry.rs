//! The entry points of the fuzz targets in `fuzz/` (cargo-fuzz), one per reader of input
//! that comes from outside: the cfg reader, the webhook payload parser, the dock registry
//! file reader and the tar-split reader. Each takes the raw bytes and panics when
//! something the reader promises does not hold, beyond "it did not crash": what it
//! accepts reads back the same when written out again, and what it hands on (names,
//! paths, sizes) keeps the rules the rest of the tool relies on.
//!
//! Built only for the unit tests and for fuzzing (cargo-fuzz passes `--cfg fuzzing` to
//! every crate), so the tool carries none of it; the tests below run every seed of
//! `fuzz/corpus/` through these checks, which keeps the seeds and the checks honest in
//! `cargo test`.

use crate::commands::serve_hooks::{self, Hook, Source};
use crate::dock::{self, Dock};
use crate::engine::store::{self, Piece};
use crate::error::Error;
use crate::project::cfg::Cfg;
use std::path::{Component, Path, PathBuf};

/// `docker/dockerutils.cfg`: parsing never panics; an error names a line of the file; a
/// parsed cfg's keys name their own lines, every value can be asked for (interpolated,
/// split into words, read as a boolean) without a panic; and written out as Python
/// writes it, it reads back to the same sections, keys and values.
pub fn cfg(data: &[u8]) {
    // The file is read with read_to_string: text that is not UTF-8 is an I/O error.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("docker/dockerutils.cfg");
    let lines = text.lines().count();
    let parsed = match Cfg::parse(text, path) {
        Ok(cfg) => cfg,
        Err(Error::Cfg { line, .. }) => {
            assert!(
                (1..=lines).contains(&line),
                "error on line {line} of {lines}"
            );
            return;
        }
        Err(e) => panic!("not a cfg error: {e}"),
    };
    let mut sections: Vec<&str> = parsed.sections().collect();
    sections.push(crate::project::cfg::DEFAULT_SECTION);
    for section in &sections {
        let own = parsed.own_keys(section);
        assert!(
            own.windows(2).all(|w| w[0].1 < w[1].1)
                && own.iter().all(|(_, l)| (1..=lines).contains(l)),
            "key lines of [{section}] out of order or range: {own:?}"
        );
    }
    let reread = Cfg::parse(&parsed.write(), path).expect("a written cfg reads back");
    assert_eq!(
        parsed.write(),
        reread.write(),
        "written and read back, the cfg changed"
    );
    assert!(parsed.sections().eq(reread.sections()));
    for section in parsed.sections() {
        let keys = parsed.keys(section).expect("a listed section has keys");
        assert_eq!(Some(&keys), reread.keys(section).as_ref());
        for key in keys {
            let value = parsed.get(section, key).map_err(|e| e.to_string());
            assert_eq!(value, reread.get(section, key).map_err(|e| e.to_string()));
            let _ = parsed.get_words(section, key);
            let _ = parsed.get_bool(section, key);
        }
    }
}

/// A webhook request's body: parsing never panics; an error is one line with no control
/// characters (it is logged and sent back); every push it finds names a valid repository
/// and tag, once; a Docker Hub hook has one push; and the hook written as a payload of its
/// kind parses back to itself.
pub fn hook(data: &[u8]) {
    let hook = match serve_hooks::parse_hook(data) {
        Ok(hook) => hook,
        Err(e) => {
            assert!(
                !e.chars().any(char::is_control),
                "error with control characters: {e:?}"
            );
            return;
        }
    };
    for (i, (repo, tag)) in hook.pushes.iter().enumerate() {
        assert!(serve_hooks::valid_repository(repo), "{repo:?}");
        assert!(serve_hooks::valid_tag(tag), "{tag:?}");
        assert!(
            !hook.pushes[..i].contains(&(repo.clone(), tag.clone())),
            "twice: {repo}:{tag}"
        );
    }
    let payload = match hook.source {
        Source::DockerHub => {
            assert_eq!(hook.pushes.len(), 1, "{hook:?}");
            let (repo, tag) = &hook.pushes[0];
            serde_json::json!({"repository": {"repo_name": repo}, "push_data": {"tag": tag}})
        }
        Source::Registry => serde_json::json!({
            "events": hook.pushes.iter().map(|(repo, tag)| serde_json::json!({
                "action": "push", "target": {"repository": repo, "tag": tag},
            })).collect::<Vec<_>>(),
        }),
    };
    let again: Hook = serve_hooks::parse_hook(payload.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{payload} does not parse back: {e}"));
    assert_eq!(again, hook);
}

/// A dock's `connection_config.txt`: reading never panics; a dock read from it has an
/// address that is one entry of `~/.docker` (never a path out of it) and a destination
/// that ssh cannot take for an option; and rendered again, it reads back the same.
pub fn registry(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let registry = Path::new("/home/u/.docker");
    let Some(dock) = Dock::parse(text, &registry.join("10.0.0.1")) else {
        return;
    };
    let dir = registry.join(&dock.ip);
    assert!(
        dir.parent() == Some(registry) && dir.file_name() == Some(dock.ip.as_ref()),
        "{:?} is not one entry of the registry",
        dock.ip
    );
    assert!(dock::check_address(&dock.ip).is_ok() && dock::valid_user(&dock.user));
    assert!(
        !dock.destination().starts_with('-'),
        "{}",
        dock.destination()
    );
    let again = Dock::parse(&dock.render(), &dock.dir);
    assert_eq!(again.as_ref(), Some(&dock), "rendered: {:?}", dock.render());
}

/// A layer's tar-split stream (the JSON lines inside `tar-split.json.gz`): reading never
/// panics; a file piece's path is plain components only; the layer's size is the sum of
/// its pieces; the pieces written as tar-split lines read back the same; and put together
/// with a diff directory that holds links out of it, a layer is made of the diff's own
/// regular files only, and has the size that its tar header will say.
pub fn tar_split(data: &[u8]) {
    let Ok(pieces) = store::parse_tar_split(data, Path::new("tar-split.json.gz")) else {
        return;
    };
    let mut total: u128 = 0;
    let mut lines = String::new();
    for piece in &pieces {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        match piece {
            Piece::Bytes(bytes) => {
                total += bytes.len() as u128;
                lines += &serde_json::json!({"type": 2, "payload": b64.encode(bytes)}).to_string();
            }
            Piece::File { path, size } => {
                assert!(*size > 0, "a file piece of no bytes: {path:?}");
                assert!(
                    path.components().all(|c| matches!(c, Component::Normal(_))),
                    "{path:?} is not plain components"
                );
                total += *size as u128;
                let raw = b64.encode(path.as_os_str().as_encoded_bytes());
                lines += &serde_json::json!({"type": 1, "name_raw": raw, "size": size}).to_string();
            }
        }
        lines.push('\n');
    }
    let again = store::parse_tar_split(lines.as_bytes(), Path::new("again"))
        .expect("written tar-split reads back");
    assert_eq!(again, pieces);
    match store::layer_size(&pieces) {
        Ok(size) => assert_eq!(
            size as u128, total,
            "the layer's size is not the sum of its pieces"
        ),
        Err(_) => assert!(total > u64::MAX as u128, "sizes of {total} bytes refused"),
    }
    let files: Vec<PathBuf> = pieces
        .iter()
        .filter_map(|p| match p {
            Piece::File { path, .. } => Some(path.clone()),
            Piece::Bytes(_) => None,
        })
        .collect();
    if let Ok(tar) = store::assemble(pieces, &layer_dir()) {
        assert_eq!(tar.len() as u128, total);
        for path in files {
            assert!(
                LAYER_FILES.iter().any(|(name, _)| path == Path::new(name)),
                "{path:?} was read, which is not one of the layer's regular files"
            );
        }
    }
}

/// The regular files of the fuzzed layer's diff directory (beside them: `link` and
/// `dir/link` to a file outside, `up` to the directory above, `fifo`).
const LAYER_FILES: &[(&str, &str)] = &[("a", "abc"), ("dir/b", "0123456789"), ("c", "x")];

/// A diff directory with regular files, links out of it and a FIFO, made once per process.
fn layer_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let root = tempfile::Builder::new()
            .prefix("dockerutils-fuzz-")
            .tempdir()
            .expect("a temporary directory")
            .keep();
        let diff = root.join("diff");
        std::fs::create_dir_all(diff.join("dir")).unwrap();
        std::fs::write(root.join("secret"), "SECRET").unwrap();
        for (name, text) in LAYER_FILES {
            std::fs::write(diff.join(name), text).unwrap();
        }
        std::os::unix::fs::symlink(root.join("secret"), diff.join("link")).unwrap();
        std::os::unix::fs::symlink(root.join("secret"), diff.join("dir/link")).unwrap();
        std::os::unix::fs::symlink(&root, diff.join("up")).unwrap();
        let fifo = std::ffi::CString::new(diff.join("fifo").into_os_string().into_encoded_bytes())
            .unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        diff
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed of `fuzz/corpus/<target>/` through its target's checks.
    fn seeds(target: &str, check: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let run = std::panic::catch_unwind(|| check(&data));
            assert!(run.is_ok(), "{} fails its check", path.display());
            n += 1;
        }
        assert!(n > 0, "no seeds in {}", dir.display());
    }

    #[test]
    fn the_fuzz_seeds_pass_their_checks() {
        seeds("cfg", cfg);
        seeds("hook", hook);
        seeds("registry", registry);
        seeds("tar_split", tar_split);
    }

    /// The checks can fail: a reader that lost a value, a path out of the registry or the
    /// layer, would be caught.
    #[test]
    fn the_checks_see_what_they_are_for() {
        // A layer made of the diff's files, with the size its pieces say.
        let split = concat!(
            r#"{"type":2,"payload":"SERSMQ=="}"#,
            "\n",
            r#"{"type":1,"name":"./a","size":3}"#,
            "\n",
            r#"{"type":1,"name_raw":"ZGlyL2I=","size":10}"#,
        );
        let pieces = store::parse_tar_split(split.as_bytes(), Path::new("t")).unwrap();
        assert_eq!(store::layer_size(&pieces).unwrap(), 17);
        assert_eq!(
            store::assemble(pieces, &layer_dir()).unwrap(),
            b"HDR1abc0123456789"
        );
        // Links out of the layer and a FIFO are never read.
        for name in ["link", "dir/link", "up/secret", "fifo", "../secret"] {
            let line = format!(r#"{{"type":1,"name":"{name}","size":6}}"#);
            let pieces = store::parse_tar_split(line.as_bytes(), Path::new("t")).unwrap();
            assert!(store::assemble(pieces, &layer_dir()).is_err(), "{name}");
            tar_split(line.as_bytes());
        }
        // Hostile registry entries are no docks; a plain one reads back.
        registry(b"DOCK_USER=u\nDOCK_IP=../../etc\n");
        assert!(Dock::parse("DOCK_USER=u\nDOCK_IP=../../etc\n", Path::new("/r/x")).is_none());
        registry(b"DOCK_USER=u\nDOCK_IP=10.0.0.5\nDOCK_MONIKER=$(id)\n X = y \n");
        // A cfg written out keeps continuation lines, a `[` that starts one, `%%`.
        let text = "[DEFAULT]\nroot=/srv\n[dev]\ncmd=python -c\n  [1]\n\n  x\nv=%(root)s 100%%\n";
        let parsed = Cfg::parse(text, Path::new("c")).unwrap();
        assert_eq!(
            parsed.write(),
            "[DEFAULT]\nroot = /srv\n\n[dev]\ncmd = python -c\n\t[1]\n\t\n\tx\nv = %(root)s 100%%\n\n"
        );
        cfg(text.as_bytes());
        hook(br#"{"events":[{"action":"push","target":{"repository":"a/b","tag":"v1"}}]}"#);
    }
}
