//! Image chains: which of the project's images an image is built from (its `FROM` lines
//! and `COPY --from` images, with `ARG` defaults and build args substituted, every stage),
//! the Dockerfile with those references rewritten (`rewrite`: one reading of the
//! Dockerfile for both), the order to build them in, and the digest of a build's inputs
//! that `--if-changed` compares with the label of the image already built.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The label that holds a build's input digest.
pub(crate) const INPUTS_LABEL: &str = "dockerutils.inputs";

/// What a Dockerfile builds from and copies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Dockerfile {
    /// Images (not stages) named by `FROM` and `COPY --from`, resolved, in order.
    pub bases: Vec<String>,
    /// Sources of `COPY`/`ADD` from the build context (globs relative to the context).
    pub sources: Vec<String>,
}

/// `--build-arg K=V` words (and `--build-arg=K=V`) of a build's arguments.
pub(crate) fn build_arg_values(args: &[String]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut words = args.iter();
    while let Some(w) = words.next() {
        let kv = match w.strip_prefix("--build-arg=") {
            Some(kv) => Some(kv.to_string()),
            None if w == "--build-arg" => words.next().cloned(),
            None => None,
        };
        if let Some((k, v)) = kv.as_deref().and_then(|kv| kv.split_once('=')) {
            out.insert(k.to_string(), v.to_string());
        }
    }
    out
}

/// `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME:+alt}` with the known values.
fn substitute(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                out.push_str(&rest[i..]);
                return out;
            };
            let expr = &body[..end];
            let value = if let Some((name, def)) = expr.split_once(":-") {
                vars.get(name)
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .unwrap_or(def.into())
            } else if let Some((name, alt)) = expr.split_once(":+") {
                vars.get(name)
                    .filter(|v| !v.is_empty())
                    .map(|_| alt.to_string())
                    .unwrap_or_default()
            } else {
                vars.get(expr).cloned().unwrap_or_default()
            };
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(vars.get(&after[..len]).map(String::as_str).unwrap_or(""));
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

/// One instruction of a Dockerfile: its keyword (upper case), its arguments (continuation
/// lines joined), and the lines of the text it spans.
struct Instruction {
    keyword: String,
    args: String,
    lines: std::ops::Range<usize>,
}

/// Reads a Dockerfile's instructions: continuation lines joined, comments dropped.
fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = vec![];
    let mut current = String::new();
    let mut start = 0;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if current.is_empty() {
            start = i;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        if !trimmed.starts_with('#') {
            current.push_str(trimmed);
        }
        let full = std::mem::take(&mut current);
        let (keyword, rest) = full.split_once(char::is_whitespace).unwrap_or((&full, ""));
        out.push(Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: rest.trim().to_string(),
            lines: start..i + 1,
        });
    }
    out
}

/// The words of an instruction's arguments: a JSON array, or whitespace-separated.
fn words(args: &str) -> Vec<String> {
    if args.starts_with('[')
        && let Some(list) = json_array(args)
    {
        return list;
    }
    args.split_whitespace().map(str::to_string).collect()
}

/// `["a", "b"]` (the exec form); None when it is not one.
fn json_array(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut out = vec![];
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        match chars.next() {
            None => return Some(out),
            Some('"') => {
                let mut s = String::new();
                loop {
                    match chars.next()? {
                        '\\' => s.push(chars.next()?),
                        '"' => break,
                        c => s.push(c),
                    }
                }
                out.push(s);
            }
            Some(_) => return None,
        }
    }
}

/// An image a Dockerfile names: in a `FROM`, or in a `COPY`/`ADD --from=` that names no
/// stage.
struct Reference {
    /// As written (`${BASE}`, `proj-base`).
    written: String,
    /// With the `ARG` values substituted: what docker builds from.
    value: String,
    /// Written as `--from=…`.
    from_flag: bool,
    /// The lines of its instruction.
    lines: std::ops::Range<usize>,
}

/// The images a Dockerfile names, and the sources its `COPY`/`ADD` take from the context.
fn read(text: &str, build_args: &HashMap<String, String>) -> (Vec<Reference>, Vec<String>) {
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut stages: Vec<String> = vec![];
    let mut references = vec![];
    let mut sources = vec![];
    let arg = |rest: &str, vars: &mut HashMap<String, String>| {
        for decl in rest.split_whitespace() {
            let (name, default) = decl.split_once('=').unwrap_or((decl, ""));
            let default = default.trim_matches('"');
            let value = build_args
                .get(name)
                .cloned()
                .unwrap_or_else(|| substitute(default, vars));
            vars.insert(name.to_string(), value);
        }
    };
    for Instruction {
        keyword,
        args: rest,
        lines,
    } in instructions(text)
    {
        match keyword.as_str() {
            "ARG" => arg(&rest, &mut vars),
            "FROM" => {
                let w: Vec<String> = words(&rest)
                    .into_iter()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let Some(written) = w.first() else { continue };
                let value = substitute(written, &vars);
                if !stages.contains(&value.to_ascii_lowercase()) && value != "scratch" {
                    references.push(Reference {
                        written: written.clone(),
                        value,
                        from_flag: false,
                        lines,
                    });
                }
                if w.len() >= 3 && w[1].eq_ignore_ascii_case("as") {
                    stages.push(w[2].to_ascii_lowercase());
                }
            }
            "COPY" | "ADD" => {
                let all = words(&rest);
                let from = all.iter().find_map(|w| w.strip_prefix("--from="));
                match from {
                    Some(written) => {
                        let value = substitute(written, &vars);
                        let stage = stages.contains(&value.to_ascii_lowercase())
                            || value.chars().all(|c| c.is_ascii_digit());
                        if !stage {
                            references.push(Reference {
                                written: written.to_string(),
                                value,
                                from_flag: true,
                                lines,
                            });
                        }
                    }
                    None => {
                        let plain: Vec<&String> =
                            all.iter().filter(|w| !w.starts_with("--")).collect();
                        if plain.len() >= 2 {
                            for src in &plain[..plain.len() - 1] {
                                sources.push(substitute(src, &vars));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    (references, sources)
}

pub(crate) fn parse(text: &str, build_args: &HashMap<String, String>) -> Dockerfile {
    let (references, sources) = read(text, build_args);
    Dockerfile {
        bases: references.into_iter().map(|r| r.value).collect(),
        sources,
    }
}

/// The Dockerfile with each image it names (as `parse` finds them: `ARG` values
/// substituted) that `resolve` maps to another reference written as that reference; the
/// rest of the text as it is. Also says whether anything changed.
pub(crate) fn rewrite(
    text: &str,
    build_args: &HashMap<String, String>,
    mut resolve: impl FnMut(&str) -> Result<Option<String>>,
) -> Result<(String, bool)> {
    let (references, _) = read(text, build_args);
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let mut changed = false;
    for r in references {
        let Some(new) = resolve(&r.value)? else {
            continue;
        };
        let (old, new) = if r.from_flag {
            (format!("--from={}", r.written), format!("--from={new}"))
        } else {
            (r.written, new)
        };
        for line in &mut lines[r.lines] {
            if let Some(replaced) = replace_word(line, &old, &new) {
                *line = replaced;
                changed = true;
                break;
            }
        }
    }
    Ok((lines.concat(), changed))
}

/// `line` with its first whitespace-delimited word `old` replaced by `new`.
fn replace_word(line: &str, old: &str, new: &str) -> Option<String> {
    let mut start = None;
    for (i, c) in line.char_indices().chain([(line.len(), ' ')]) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                if &line[s..i] == old {
                    return Some(format!("{}{new}{}", &line[..s], &line[i..]));
                }
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    None
}

/// The name part of an image reference (no tag, no digest).
pub(crate) fn reference_name(reference: &str) -> &str {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// Orders `images` so that each comes after the images it is built from (`parents`: image
/// → its parents among the project's images). Ties keep the given order. A cycle is an
/// error that names it.
pub(crate) fn order(
    images: &[String],
    parents: &HashMap<String, Vec<String>>,
) -> Result<Vec<String>> {
    let mut done: Vec<String> = vec![];
    let mut left: Vec<String> = images.to_vec();
    while !left.is_empty() {
        let ready = left.iter().position(|i| {
            parents
                .get(i)
                .into_iter()
                .flatten()
                .all(|p| done.contains(p) || !left.contains(p))
        });
        match ready {
            Some(pos) => done.push(left.remove(pos)),
            None => {
                // Every image left waits for another: walk parents until one repeats.
                let mut path = vec![left[0].clone()];
                loop {
                    let last = path.last().unwrap();
                    let next = parents[last]
                        .iter()
                        .find(|p| left.contains(p))
                        .unwrap()
                        .clone();
                    if let Some(start) = path.iter().position(|p| *p == next) {
                        let mut cycle = path[start..].to_vec();
                        cycle.push(next);
                        return Err(Error::Usage(format!(
                            "the images are built from each other in a cycle: {}",
                            cycle.join(" → ")
                        )));
                    }
                    path.push(next);
                }
            }
        }
    }
    Ok(done)
}

/// The images `image` is built from, transitively, in build order, ending with it.
pub(crate) fn with_ancestors(image: &str, parents: &HashMap<String, Vec<String>>) -> Vec<String> {
    let mut seen = vec![];
    fn visit(i: &str, parents: &HashMap<String, Vec<String>>, seen: &mut Vec<String>) {
        if seen.iter().any(|s| s == i) {
            return;
        }
        for p in parents.get(i).into_iter().flatten() {
            visit(p, parents, seen);
        }
        seen.push(i.to_string());
    }
    visit(image, parents, &mut seen);
    seen
}

/// `.dockerignore` rules: a path is left out when the last pattern matching it (or one of
/// its parent directories) is not a `!` exception.
#[derive(Debug, Default)]
pub(crate) struct Ignore {
    rules: Vec<(glob::Pattern, bool)>,
}

impl Ignore {
    pub(crate) fn load(root: &Path) -> Ignore {
        let text = std::fs::read_to_string(root.join(".dockerignore")).unwrap_or_default();
        Ignore::parse(&text)
    }

    pub(crate) fn parse(text: &str) -> Ignore {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                let (exception, p) = match l.strip_prefix('!') {
                    Some(p) => (true, p.trim()),
                    None => (false, l),
                };
                let p = p
                    .trim_start_matches("./")
                    .trim_start_matches('/')
                    .trim_end_matches('/');
                glob::Pattern::new(p).ok().map(|g| (g, exception))
            })
            .collect();
        Ignore { rules }
    }

    pub(crate) fn excludes(&self, rel: &str) -> bool {
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let mut excluded = false;
        for (pattern, exception) in &self.rules {
            let hit = std::iter::successors(Some(rel), |p| p.rsplit_once('/').map(|(d, _)| d))
                .any(|p| pattern.matches_with(p, opts));
            if hit {
                excluded = !exception;
            }
        }
        excluded
    }
}

/// The context files that the sources name (globs; directories walked), minus what
/// `.dockerignore` leaves out: sorted paths relative to the root.
pub(crate) fn context_files(root: &Path, sources: &[String], ignore: &Ignore) -> Vec<String> {
    let mut files = BTreeSet::new();
    for src in sources {
        if src.contains("://") {
            continue; // ADD of a URL: no file of the context
        }
        let rel = src.trim_start_matches("./").trim_start_matches('/');
        let pattern = root.join(if rel.is_empty() { "." } else { rel });
        let matches: Vec<PathBuf> = match glob::glob(&pattern.to_string_lossy()) {
            Ok(paths) => paths.filter_map(|p| p.ok()).collect(),
            Err(_) => vec![pattern],
        };
        for path in matches {
            walk(root, &path, ignore, &mut files);
        }
    }
    files.into_iter().collect()
}

fn walk(root: &Path, path: &Path, ignore: &Ignore, out: &mut BTreeSet<String>) {
    let Ok(rel) = path.strip_prefix(root) else {
        return;
    };
    let rel = rel.to_string_lossy().into_owned();
    if !rel.is_empty() && ignore.excludes(&rel) {
        // A directory left out may still hold `!` exceptions: keep walking it.
        if !path.is_dir() {
            return;
        }
    }
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for e in entries.filter_map(|e| e.ok()) {
            walk(root, &e.path(), ignore, out);
        }
    } else if !rel.is_empty() && !ignore.excludes(&rel) {
        out.insert(rel);
    }
}

/// The digest of a build's inputs: the Dockerfile, the build arguments, the ids of the
/// images it is built from, and the content of the context files it copies.
pub(crate) fn inputs_digest(
    root: &Path,
    dockerfile: &str,
    build_args: &[String],
    base_ids: &[(String, String)],
    files: &[String],
) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut field = |tag: &str, bytes: &[u8]| {
        h.update(tag.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field("dockerfile", dockerfile.as_bytes());
    for a in build_args {
        field("arg", a.as_bytes());
    }
    for (reference, id) in base_ids {
        field("base", reference.as_bytes());
        field("id", id.as_bytes());
    }
    for rel in files {
        field("file", rel.as_bytes());
        let path = root.join(rel);
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.file_type().is_symlink() {
            field(
                "link",
                std::fs::read_link(&path)?.to_string_lossy().as_bytes(),
            );
            continue;
        }
        use std::os::unix::fs::PermissionsExt;
        field("mode", &meta.permissions().mode().to_le_bytes());
        field("content", &file_hash(&path, &meta)?);
    }
    hashes().save();
    Ok(format!("sha256:{:x}", h.finalize()))
}

/// The sha256 of a file's content, from the hash cache when the file's size, times and
/// inode are those recorded (as git's index does), else read and recorded.
fn file_hash(path: &Path, meta: &std::fs::Metadata) -> std::io::Result<[u8; 32]> {
    use std::os::unix::fs::MetadataExt;
    let key = Stat {
        size: meta.size(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ctime: (meta.ctime(), meta.ctime_nsec()),
        ino: meta.ino(),
    };
    if let Some(hash) = hashes().get(path, &key) {
        return Ok(hash);
    }
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    let hash: [u8; 32] = hasher.finalize().into();
    // A file changed within the last seconds could change again within the same
    // timestamp: not cached ("racily clean", as git calls it).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if key.mtime.0 < now - 2 && key.ctime.0 < now - 2 {
        hashes().put(path, key, hash);
    }
    Ok(hash)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
}

/// Content hashes of context files already read, kept in the user's cache directory
/// (`~/.cache/dockerutils/file-hashes`): a speed-up only, never the state of record (the
/// digest lives in the image's label); a missing or damaged file is just rebuilt.
struct HashCache {
    path: Option<PathBuf>,
    entries: HashMap<PathBuf, (Stat, [u8; 32])>,
    dirty: bool,
}

struct Hashes(std::sync::Mutex<HashCache>);

fn hashes() -> &'static Hashes {
    static CACHE: std::sync::OnceLock<Hashes> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| {
        let path = std::env::var_os("DOCKERUTILS_HASH_CACHE")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("dockerutils").join("file-hashes")));
        let entries = path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|text| text.lines().filter_map(parse_entry).collect())
            .unwrap_or_default();
        Hashes(std::sync::Mutex::new(HashCache {
            path,
            entries,
            dirty: false,
        }))
    })
}

fn parse_entry(line: &str) -> Option<(PathBuf, (Stat, [u8; 32]))> {
    let mut f = line.splitn(8, '\t');
    let mut num = || f.next()?.parse::<i64>().ok();
    let stat = Stat {
        size: num()? as u64,
        mtime: (num()?, num()?),
        ctime: (num()?, num()?),
        ino: num()? as u64,
    };
    let hex = f.next()?;
    let path = f.next()?;
    let mut hash = [0u8; 32];
    for (i, b) in hash.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((PathBuf::from(path), (stat, hash)))
}

impl Hashes {
    fn get(&self, path: &Path, key: &Stat) -> Option<[u8; 32]> {
        let cache = self.0.lock().ok()?;
        cache
            .entries
            .get(path)
            .filter(|(stat, _)| stat == key)
            .map(|(_, h)| *h)
    }

    fn put(&self, path: &Path, key: Stat, hash: [u8; 32]) {
        if let Ok(mut cache) = self.0.lock() {
            cache.entries.insert(path.to_path_buf(), (key, hash));
            cache.dirty = true;
        }
    }

    /// Writes the cache if it changed (whole file, replaced atomically); errors ignored.
    fn save(&self) {
        let Ok(mut cache) = self.0.lock() else { return };
        let Some(path) = cache.path.clone().filter(|_| cache.dirty) else {
            return;
        };
        // Keep it bounded: forget files that are gone.
        cache.entries.retain(|p, _| p.exists());
        let mut text = String::new();
        for (p, (s, h)) in &cache.entries {
            let Some(p) = p.to_str().filter(|p| !p.contains(['\n', '\t'])) else {
                continue;
            };
            let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
            text.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{hex}\t{p}\n",
                s.size, s.mtime.0, s.mtime.1, s.ctime.0, s.ctime.1, s.ino
            ));
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = path
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|()| std::fs::write(&tmp, text))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_ok() {
            cache.dirty = false;
        } else {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_every_stage_with_args_substituted() {
        let text = "ARG BASE=proj-base\nARG TAG\n# comment\nFROM ${BASE}:${TAG:-latest} AS build\nCOPY --chown=1:1 src/ \\\n    setup.py /app/\nRUN make\nFROM --platform=linux/amd64 python:3.12-slim\nCOPY --from=build /app /app\nCOPY --from=proj-tools:1 /bin/t /bin/t\nADD [\"data dir/\", \"/data\"]\n";
        let args = build_arg_values(&s(&["--build-arg", "TAG=ann", "--build-arg=X=1"]));
        let df = parse(text, &args);
        assert_eq!(
            df.bases,
            s(&["proj-base:ann", "python:3.12-slim", "proj-tools:1"])
        );
        assert_eq!(df.sources, s(&["src/", "setup.py", "data dir/"]));
        assert_eq!(reference_name("reg:5000/a/b:tag"), "reg:5000/a/b");
        assert_eq!(reference_name("reg:5000/a/b"), "reg:5000/a/b");
    }

    #[test]
    fn rewrites_the_references_parse_finds_and_nothing_else() {
        let text = "ARG PARENT\n# FROM proj-base in a comment\nFROM ${PARENT} AS build\nCOPY --from=proj-tools /t /t\nCOPY --from=build /a /a\nFROM  --platform=x \\\n   proj-base\r\nRUN echo proj-base\n";
        let args = build_arg_values(&s(&["--build-arg", "PARENT=proj-dev"]));
        let mut seen = vec![];
        let (out, changed) = rewrite(text, &args, |r| {
            seen.push(r.to_string());
            Ok((r != "proj-tools").then(|| format!("{r}:t1")))
        })
        .unwrap();
        assert_eq!(seen, s(&["proj-dev", "proj-tools", "proj-base"]));
        assert!(changed);
        assert_eq!(
            out,
            "ARG PARENT\n# FROM proj-base in a comment\nFROM proj-dev:t1 AS build\nCOPY --from=proj-tools /t /t\nCOPY --from=build /a /a\nFROM  --platform=x \\\n   proj-base:t1\r\nRUN echo proj-base\n"
        );
        let (same, changed) = rewrite(text, &args, |_| Ok(None)).unwrap();
        assert_eq!((same.as_str(), changed), (text, false));
    }

    #[test]
    fn orders_by_dependency_and_names_a_cycle() {
        let images = s(&["base", "app", "dev", "tools"]);
        let parents = map(&[("dev", &["app"]), ("app", &["base", "tools"])]);
        assert_eq!(
            order(&images, &parents).unwrap(),
            s(&["base", "tools", "app", "dev"])
        );
        assert_eq!(
            with_ancestors("dev", &parents),
            s(&["base", "tools", "app", "dev"])
        );
        let cyclic = map(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]);
        let err = order(&s(&["a", "b", "c"]), &cyclic).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the images are built from each other in a cycle: a → b → c → a"
        );
    }

    #[test]
    fn dockerignore_rules_and_exceptions() {
        let ig = Ignore::parse("# x\n*.log\ndata/\n!data/keep.csv\n**/__pycache__\n");
        assert!(ig.excludes("a.log"));
        assert!(!ig.excludes("src/a.log"), "`*` does not cross directories");
        assert!(ig.excludes("data/big.bin"));
        assert!(!ig.excludes("data/keep.csv"));
        assert!(ig.excludes("src/pkg/__pycache__/m.pyc"));
        assert!(!ig.excludes("src/pkg/m.py"));
    }
}
