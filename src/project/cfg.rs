//! `docker/dockerutils.cfg`, read exactly the way Python's `configparser.ConfigParser`
//! (with `optionxform = str`, as dockerutils 2.0.7 sets it) reads it.
//!
//! Why not the `configparser` crate: it strips `#`/`;` anywhere in a line (Python keeps
//! `a=b # c` whole), takes a continuation line that starts with `[` for a section header,
//! accepts keys without a value, and reports no line numbers. Existing cfg files must mean
//! the same thing here as under the Python tool, and a malformed one must be reported with
//! its file and line, so the reader below follows `RawConfigParser._read` line for line:
//!
//! - `[section]` headers; `[DEFAULT]` holds keys every section sees;
//! - `key = value` or `key: value` (first `=` or `:`), key and value trimmed, keys
//!   case-sensitive;
//! - a line indented deeper than its key line continues the value (joined with `\n`);
//! - full-line comments start with `#` or `;` (after indentation); no inline comments;
//! - errors: a key before any section, a line that is neither, an empty key, a section or
//!   key given twice (Python's `strict=True`);
//! - `%(name)s` interpolation and `%%` on read (`BasicInterpolation`).

pub(crate) mod keys;

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub(crate) const DEFAULT_SECTION: &str = "DEFAULT";

/// The longest value that `%(name)s` interpolation may make (1 MiB), and the most
/// references it may resolve for one value.
const MAX_VALUE: usize = 1 << 20;
const MAX_REFERENCES: usize = 10_000;

#[derive(Debug, Clone, Default)]
struct Section {
    name: String,
    /// Keys in file order, with their raw (uninterpolated) values.
    entries: Vec<(String, String)>,
    /// The line of each key in the file (for `entries[i]`, `lines[i]`).
    lines: Vec<usize>,
}

impl Section {
    fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Cfg {
    path: PathBuf,
    defaults: Section,
    sections: Vec<Section>,
}

impl Cfg {
    /// Reads the file; a missing file is an empty configuration (as in Python).
    pub(crate) fn load(path: &Path) -> Result<Cfg> {
        match std::fs::read_to_string(path) {
            Ok(text) => Cfg::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Cfg {
                path: path.to_owned(),
                ..Cfg::default()
            }),
            Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
        }
    }

    pub(crate) fn parse(text: &str, path: &Path) -> Result<Cfg> {
        let mut cfg = Cfg {
            path: path.to_owned(),
            defaults: Section {
                name: DEFAULT_SECTION.into(),
                ..Section::default()
            },
            sections: vec![],
        };
        let err = |line: usize, message: String| Error::Cfg {
            path: path.to_owned(),
            line,
            message,
        };
        // Where we are: which section (None before the first header; usize::MAX for
        // DEFAULT), which key a continuation line would extend, and that key's indent.
        let mut current: Option<usize> = None;
        let mut key_index: Option<usize> = None;
        let mut indent_level = 0usize;
        // Continuation values keep their empty lines (Python's empty_lines_in_values).
        let mut pending_blank = 0usize;

        for (i, line) in text.lines().enumerate() {
            let lineno = i + 1;
            let stripped = line.trim();
            if stripped.starts_with('#') || stripped.starts_with(';') {
                continue;
            }
            if stripped.is_empty() {
                if key_index.is_some() {
                    pending_blank += 1;
                }
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if let (Some(sect), Some(k)) = (current, key_index)
                && indent > indent_level
            {
                let section = cfg.section_mut(sect);
                let value = &mut section.entries[k].1;
                for _ in 0..=pending_blank {
                    value.push('\n');
                }
                value.push_str(stripped);
                pending_blank = 0;
                continue;
            }
            pending_blank = 0;
            indent_level = indent;
            if let Some(header) = section_header(stripped) {
                key_index = None;
                if header == DEFAULT_SECTION {
                    current = Some(usize::MAX);
                } else if cfg.has_section(header) {
                    return Err(err(
                        lineno,
                        format!("section [{header}] appears twice; merge the two"),
                    ));
                } else {
                    cfg.sections.push(Section {
                        name: header.to_owned(),
                        ..Section::default()
                    });
                    current = Some(cfg.sections.len() - 1);
                }
                continue;
            }
            let Some(sect) = current else {
                return Err(err(
                    lineno,
                    format!(
                        "`{stripped}` comes before any [section] header; add one above it, e.g. [dev]"
                    ),
                ));
            };
            let Some(delim) = stripped.find(['=', ':']) else {
                return Err(err(
                    lineno,
                    format!(
                        "`{stripped}` is not a `key = value` line, a [section] header or a comment"
                    ),
                ));
            };
            let key = stripped[..delim].trim_end();
            let value = stripped[delim + 1..].trim();
            if key.is_empty() {
                return Err(err(
                    lineno,
                    format!(
                        "`{stripped}` has no key before `{}`",
                        &stripped[delim..delim + 1]
                    ),
                ));
            }
            let section = cfg.section_mut(sect);
            if section.get(key).is_some() {
                let name = section.name.clone();
                return Err(err(
                    lineno,
                    format!("key `{key}` appears twice in [{name}]"),
                ));
            }
            section.entries.push((key.to_owned(), value.to_owned()));
            section.lines.push(lineno);
            key_index = Some(section.entries.len() - 1);
        }
        // Python strips trailing whitespace (and so trailing blank lines) off joined values.
        for section in std::iter::once(&mut cfg.defaults).chain(cfg.sections.iter_mut()) {
            for (_, value) in &mut section.entries {
                let trimmed = value.trim_end().len();
                value.truncate(trimmed);
            }
        }
        Ok(cfg)
    }

    /// The configuration as Python's `ConfigParser.write` writes it (`key = value`, a
    /// value's further lines indented by a tab), raw values as read: what the fuzz target
    /// reads back to check that parsing keeps every section, key and value.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn write(&self) -> String {
        let mut out = String::new();
        let written = (!self.defaults.entries.is_empty()).then_some(&self.defaults);
        for section in written.into_iter().chain(&self.sections) {
            out.push_str(&format!("[{}]\n", section.name));
            for (key, value) in &section.entries {
                out.push_str(&format!("{key} = {}\n", value.replace('\n', "\n\t")));
            }
            out.push('\n');
        }
        out
    }

    fn section_mut(&mut self, index: usize) -> &mut Section {
        if index == usize::MAX {
            &mut self.defaults
        } else {
            &mut self.sections[index]
        }
    }

    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Is there a `[name]` section (DEFAULT is not one, as in Python)?
    pub(crate) fn has_section(&self, name: &str) -> bool {
        self.section(name).is_some()
    }

    /// The names of the sections, in file order (`DEFAULT` is none of them).
    pub(crate) fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|s| s.name.as_str())
    }

    /// The keys written in a section itself (`DEFAULT` included), each with its line in
    /// the file; not those it sees from `[DEFAULT]`.
    pub(crate) fn own_keys(&self, section: &str) -> Vec<(&str, usize)> {
        let found = match section {
            DEFAULT_SECTION => Some(&self.defaults),
            _ => self.section(section),
        };
        found
            .map(|s| {
                s.entries
                    .iter()
                    .zip(&s.lines)
                    .map(|((k, _), line)| (k.as_str(), *line))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The keys of a section in Python's order: its own, then DEFAULT's it does not override.
    /// `None` when the section does not exist.
    pub(crate) fn keys(&self, section: &str) -> Option<Vec<&str>> {
        let own = self.section(section)?;
        let mut keys: Vec<&str> = own.entries.iter().map(|(k, _)| k.as_str()).collect();
        for (k, _) in &self.defaults.entries {
            if own.get(k).is_none() {
                keys.push(k);
            }
        }
        Some(keys)
    }

    fn raw(&self, section: &str, key: &str) -> Option<&str> {
        self.section(section)?
            .get(key)
            .or_else(|| self.defaults.get(key))
    }

    /// The interpolated value of `key` in `section` (falling back on DEFAULT), or `None`
    /// when the section or the key is absent.
    pub(crate) fn get(&self, section: &str, key: &str) -> Result<Option<String>> {
        match self.raw(section, key) {
            None => Ok(None),
            Some(raw) => {
                let mut budget = MAX_REFERENCES;
                self.interpolate(section, key, raw, 1, &mut budget)
                    .map(Some)
            }
        }
    }

    /// The value split into words with shell rules (quotes, backslashes), never run
    /// through a shell.
    pub(crate) fn get_words(&self, section: &str, key: &str) -> Result<Option<Vec<String>>> {
        match self.get(section, key)? {
            None => Ok(None),
            Some(value) => split_words(&value)
                .map(Some)
                .map_err(|m| self.value_error(section, key, m)),
        }
    }

    /// A boolean the way configparser's `getboolean` reads it.
    pub(crate) fn get_bool(&self, section: &str, key: &str) -> Result<Option<bool>> {
        let Some(value) = self.get(section, key)? else {
            return Ok(None);
        };
        match value.to_ascii_lowercase().as_str() {
            "1" | "yes" | "true" | "on" => Ok(Some(true)),
            // Empty: false (2.0.7 tests the string's truth, and "" is false there).
            "" | "0" | "no" | "false" | "off" => Ok(Some(false)),
            _ => Err(self.value_error(
                section,
                key,
                format!("`{value}` is not a boolean (use True or False)"),
            )),
        }
    }

    pub(crate) fn value_error(&self, section: &str, key: &str, message: String) -> Error {
        Error::CfgValue {
            path: self.path.clone(),
            section: section.into(),
            key: key.into(),
            message,
        }
    }

    /// `raw` with its references resolved; `budget`: how many more references this value
    /// may resolve.
    fn interpolate(
        &self,
        section: &str,
        key: &str,
        raw: &str,
        depth: usize,
        budget: &mut usize,
    ) -> Result<String> {
        if depth > 10 {
            return Err(self.value_error(
                section,
                key,
                "%(…)s references nest too deep (a loop?)".into(),
            ));
        }
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(pos) = rest.find('%') {
            out.push_str(&rest[..pos]);
            rest = &rest[pos..];
            if let Some(after) = rest.strip_prefix("%%") {
                out.push('%');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("%(") {
                let Some(close) = after.find(")s") else {
                    return Err(self.value_error(
                        section,
                        key,
                        format!(
                            "bad interpolation `{rest}`: write %(name)s, or %% for a literal %"
                        ),
                    ));
                };
                let name = &after[..close];
                let Some(value) = self.raw(section, name) else {
                    return Err(self.value_error(
                        section,
                        key,
                        format!("%({name})s names no key of [{section}] or [DEFAULT]"),
                    ));
                };
                // Ten levels of keys that each name the one below several times multiply:
                // a 500-byte cfg could ask for gigabytes, or a billion references to an
                // empty key, and hang the command (as it hangs Python). No real value comes
                // near either cap, and with both the work stays bounded.
                let multiplies = |what: String| {
                    self.value_error(
                        section,
                        key,
                        format!(
                            "its %(…)s references {what}; a key that names another several \
                             times, at every level, multiplies"
                        ),
                    )
                };
                if *budget == 0 {
                    return Err(multiplies(format!("number more than {MAX_REFERENCES}")));
                }
                *budget -= 1;
                out.push_str(&self.interpolate(section, key, value, depth + 1, budget)?);
                if out.len() > MAX_VALUE {
                    return Err(multiplies(format!(
                        "expand to more than {} MiB",
                        MAX_VALUE >> 20
                    )));
                }
                rest = &after[close + 2..];
            } else {
                return Err(self.value_error(
                    section,
                    key,
                    format!("`%` must be written %% (or %(name)s to insert a key): `{raw}`"),
                ));
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Splits a value into words with shell rules; an unclosed quote is an error.
pub(crate) fn split_words(value: &str) -> std::result::Result<Vec<String>, String> {
    shlex::split(value).ok_or_else(|| format!("unbalanced quotes in `{value}`"))
}

/// `[name]` as Python's `SECTCRE` (`\[(?P<header>.+)\]`, matched at the start) sees it.
fn section_header(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('[')?;
    let end = inner.rfind(']')?;
    (end > 0).then(|| &inner[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Cfg> {
        Cfg::parse(text, Path::new("docker/dockerutils.cfg"))
    }

    #[test]
    fn reads_keys_case_sensitively_with_both_delimiters() {
        let cfg = parse("[dev]\nNOTEBOOK_MODE = lab\npull_FROM_on_force: True\n").unwrap();
        assert_eq!(
            cfg.get("dev", "NOTEBOOK_MODE").unwrap().as_deref(),
            Some("lab")
        );
        assert_eq!(cfg.get("dev", "notebook_mode").unwrap(), None);
        assert_eq!(
            cfg.get_bool("dev", "pull_FROM_on_force").unwrap(),
            Some(true)
        );
    }

    #[test]
    fn keeps_inline_hash_and_joins_continuation_lines() {
        let cfg = parse(
            "# comment\n[dev]\nvolumes=-v a#b:/x\n    ; a comment inside the value\n    -v c:/y\n\n  -v d:/z\nports=-p 1:1\n",
        )
        .unwrap();
        assert_eq!(
            cfg.get("dev", "volumes").unwrap().as_deref(),
            Some("-v a#b:/x\n-v c:/y\n\n-v d:/z")
        );
        assert_eq!(cfg.get("dev", "ports").unwrap().as_deref(), Some("-p 1:1"));
    }

    #[test]
    fn continuation_starting_with_bracket_is_not_a_header() {
        let cfg = parse("[dev]\ncmd=python -c\n  [1]\n").unwrap();
        assert_eq!(
            cfg.get("dev", "cmd").unwrap().as_deref(),
            Some("python -c\n[1]")
        );
        assert!(!cfg.has_section("1"));
    }

    #[test]
    fn default_section_is_seen_by_all_and_listed_last() {
        let cfg = parse("[DEFAULT]\nb=2\na=0\n[env]\na=1\n").unwrap();
        assert_eq!(cfg.keys("env").unwrap(), vec!["a", "b"]);
        assert_eq!(cfg.get("env", "b").unwrap().as_deref(), Some("2"));
        assert!(!cfg.has_section("DEFAULT"));
        assert_eq!(cfg.keys("nope"), None);
    }

    #[test]
    fn interpolates_like_basic_interpolation() {
        let cfg = parse("[dev]\nroot=/srv\nvolumes=-v %(root)s/data:/data\npct=100%%\nbad=50%\n")
            .unwrap();
        assert_eq!(
            cfg.get("dev", "volumes").unwrap().as_deref(),
            Some("-v /srv/data:/data")
        );
        assert_eq!(cfg.get("dev", "pct").unwrap().as_deref(), Some("100%"));
        let err = cfg.get("dev", "bad").unwrap_err().to_string();
        assert!(err.contains("[dev] bad") && err.contains("%%"), "{err}");
    }

    /// Found by the cfg fuzz target's reach (crafted inputs: timeouts); references that
    /// multiply at every level end in an error, not in gigabytes of value or a billion
    /// references to an empty key.
    #[test]
    fn interpolation_that_multiplies_stops_at_the_caps() {
        let multiplying = |leaf: &str| {
            let mut text = format!("[s]\nk0={leaf}\n");
            for i in 1..=8 {
                text.push_str(&format!("k{i}={}\n", format!("%(k{})s", i - 1).repeat(8)));
            }
            parse(&text).unwrap()
        };
        // 1 KiB leaves: 8^3 of them (512 KiB) fit, 8^4 (4 MiB) do not.
        let cfg = multiplying(&"x".repeat(1024));
        assert_eq!(cfg.get("s", "k3").unwrap().unwrap().len(), 512 * 1024);
        let err = cfg.get("s", "k8").unwrap_err().to_string();
        assert!(
            err.contains("[s] k8") && err.contains("more than 1 MiB"),
            "{err}"
        );
        // Empty leaves: 8^4 = 4096 references resolve, 8^6 are too many.
        let cfg = multiplying("");
        assert_eq!(cfg.get("s", "k4").unwrap().as_deref(), Some(""));
        let err = cfg.get("s", "k6").unwrap_err().to_string();
        assert!(
            err.contains("[s] k6") && err.contains("more than 10000"),
            "{err}"
        );
    }

    #[test]
    fn malformed_lines_are_reported_with_file_and_line() {
        let cases = [
            ("key=value\n[dev]\n", 1, "before any [section]"),
            ("[dev]\nvolumes -v /data\n", 2, "not a `key = value` line"),
            ("[dev]\n=x\n", 2, "no key"),
            ("[dev]\na=1\n\n[dev]\n", 4, "section [dev] appears twice"),
            ("[dev]\na=1\na=2\n", 3, "key `a` appears twice"),
        ];
        for (text, line, needle) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("docker/dockerutils.cfg:{line}: "))
                    && err.contains(needle),
                "{text:?} gave {err}"
            );
        }
    }
}
