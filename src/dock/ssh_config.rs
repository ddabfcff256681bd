//! Docks as ssh hosts for every tool: one generated ssh config with a `Host` block per
//! registered dock (`~/.docker/.dockerutils/ssh_config`, kept in step with the registry),
//! and the one `Include` line in the user's `~/.ssh/config` that makes ssh, scp, rsync,
//! VS Code Remote-SSH and the docker CLI (`ssh://gpu-box`, `docker --context gpu-box`)
//! read it.
//!
//! A dock's block carries the options `Dock::ssh_options` gives on the command line (the
//! dock's own known_hosts with accept-new, one control master per dock kept 10 minutes),
//! so that `ssh gpu-box` and the ssh the docker CLI starts share the connection the shim
//! and `ssh-dock` use (`ControlPath` by `%C` is the same path for all of them).
//!
//! Nothing here runs a program: the file is rendered from the registry and the user's own
//! `Host` names (a dock whose moniker is already a `Host` of the user is left out, so the
//! user's `ssh gpu-box` keeps going where it went), then written atomically.

use crate::dock::{self, Dock};
use crate::error::{Error, Result};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The generated file's name, in `~/.docker/.dockerutils/`.
pub(crate) const FILE: &str = "ssh_config";

/// `~/.docker/.dockerutils`: the tool's own files (the ssh shim, the known_hosts of plain
/// hosts, the generated ssh config, the control sockets).
pub(crate) fn own_dir() -> PathBuf {
    dock::registry_dir().join(".dockerutils")
}

/// The generated ssh config.
pub(crate) fn path() -> PathBuf {
    own_dir().join(FILE)
}

/// The user's ssh config, as the tool sees it (`$HOME/.ssh/config`).
pub(crate) fn user_config() -> PathBuf {
    dirs::home_dir()
        .unwrap_or_else(|| PathBuf::from("/"))
        .join(".ssh")
        .join("config")
}

/// A moniker that can be a `Host` name (and a docker context name): the registry's one
/// rule, [`crate::dock::check_moniker`] (letters, digits, `_`, `-`, starting with a
/// letter or digit; never an address, a dotted name such as `github.com` that ssh would
/// then send to the dock, nor docker's `default`).
pub(crate) fn valid_moniker(name: &str) -> bool {
    crate::dock::check_moniker(name).is_ok()
}

/// An address for `HostName` and a `Host` pattern: the registry's own rule (an IPv4 or
/// IPv6 address, or a host name).
pub(crate) fn valid_address(addr: &str) -> bool {
    crate::dock::check_address(addr).is_ok()
}

/// A login name for `User`: no whitespace, quotes, `%` (ssh expands tokens) or `#`.
pub(crate) fn valid_user(user: &str) -> bool {
    crate::dock::valid_user(user)
}

/// One word of an ssh config line (or of `-o Keyword=value`), as ssh reads it back:
/// plain when it is, else in double quotes with `"` and `\` escaped. `None` for what has
/// no safe spelling: a control character (a newline would start a new line).
pub(crate) fn word(s: &str) -> Option<String> {
    if s.is_empty() || s.chars().any(char::is_control) {
        return None;
    }
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=~".contains(c))
    {
        return Some(s.to_string());
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// A path for an option where ssh expands `%` tokens and `${VAR}` (ControlPath,
/// IdentityFile, UserKnownHostsFile), followed by `suffix` (taken as is, e.g. `/%C`).
/// `%` is doubled; `${` cannot be spelled, so such a path is `None`.
pub(crate) fn path_word(path: &Path, suffix: &str) -> Option<String> {
    let text = path.to_str()?;
    if text.contains("${") {
        return None;
    }
    word(&format!("{}{suffix}", text.replace('%', "%%")))
}

/// A `Host` name of the user's own ssh config (ours excluded), where it is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserHost {
    pub name: String,
    pub file: PathBuf,
    pub line: usize,
}

/// The literal `Host` names (no wildcard, no `!`) of the user's ssh config and of the
/// files it includes, except the generated file. A dock whose moniker is one of them
/// would shadow the user's own host (ours is included first).
#[derive(Debug, Clone, Default)]
pub(crate) struct UserHosts(pub Vec<UserHost>);

impl UserHosts {
    /// Reads `~/.ssh/config` and what it includes; a missing file has no hosts.
    pub(crate) fn load() -> Result<UserHosts> {
        let mut hosts = UserHosts::default();
        let home = dirs::home_dir().unwrap_or_else(|| PathBuf::from("/"));
        hosts.read(&user_config(), &home, &path(), 0)?;
        Ok(hosts)
    }

    fn read(&mut self, file: &Path, home: &Path, ours: &Path, depth: usize) -> Result<()> {
        // ssh stops at 16 levels of Include.
        if depth > 16 {
            return Ok(());
        }
        let text = match std::fs::read(file) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if depth > 0 && e.kind() == std::io::ErrorKind::IsADirectory => return Ok(()),
            Err(e) => return Err(Error::io(format!("cannot read {}", file.display()), e)),
        };
        for (n, line) in text.lines().enumerate() {
            let Some((keyword, args)) = split_line(line) else {
                continue;
            };
            match keyword.to_ascii_lowercase().as_str() {
                "host" => {
                    for pattern in args {
                        if !pattern.starts_with('!') && !pattern.contains(['*', '?']) {
                            self.0.push(UserHost {
                                name: pattern,
                                file: file.to_owned(),
                                line: n + 1,
                            });
                        }
                    }
                }
                "include" => {
                    for arg in args {
                        let pattern = if let Some(rest) = arg.strip_prefix("~/") {
                            home.join(rest)
                        } else if arg.starts_with('/') {
                            PathBuf::from(&arg)
                        } else {
                            // Relative to ~/.ssh, as ssh takes them in a user config.
                            home.join(".ssh").join(&arg)
                        };
                        let found: Vec<PathBuf> = glob::glob(&pattern.to_string_lossy())
                            .map(|paths| paths.filter_map(|p| p.ok()).collect())
                            .unwrap_or_default();
                        for included in found {
                            if same_file(&included, ours) {
                                continue;
                            }
                            self.read(&included, home, ours, depth + 1)?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The user's `Host` that `name` would shadow (ssh lowercases the host it is given).
    pub(crate) fn clash(&self, name: &str) -> Option<&UserHost> {
        self.0.iter().find(|h| h.name.eq_ignore_ascii_case(name))
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => a == b,
    }
}

/// A config line's keyword and arguments, split as ssh splits them (whitespace, `=`
/// after the keyword, double or single quotes, `\` escapes); `None` for a blank line or
/// a comment.
fn split_line(line: &str) -> Option<(String, Vec<String>)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let keyword = line[..end].to_string();
    let mut rest = line[end..].trim_start();
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start();
    }
    let mut args = vec![];
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        match chars.peek() {
            None | Some('#') => break,
            _ => {}
        }
        let mut arg = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match c {
                '\\' if matches!(chars.peek(), Some('\'' | '"' | '\\'))
                    || (quote.is_none() && chars.peek() == Some(&' ')) =>
                {
                    arg.push(chars.next().unwrap_or('\\'));
                }
                ' ' | '\t' if quote.is_none() => break,
                '"' | '\'' if quote.is_none() => quote = Some(c),
                c if Some(c) == quote => quote = None,
                c => arg.push(c),
            }
        }
        args.push(arg);
    }
    Some((keyword, args))
}

/// A dock as the generated config holds it: its block's `Host` names, the first being
/// the name tools use (the moniker, else the address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub dock: Dock,
    pub names: Vec<String>,
}

impl Entry {
    pub(crate) fn name(&self) -> &str {
        &self.names[0]
    }
}

/// A registered dock that has no block, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    pub dock: Dock,
    pub why: String,
}

/// The generated file: its text, the docks it holds and those it leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Generated {
    pub text: String,
    pub entries: Vec<Entry>,
    pub skipped: Vec<Skipped>,
}

fn has_moniker(dock: &Dock) -> bool {
    !dock.moniker.is_empty() && dock.moniker != "none"
}

/// Why a dock cannot have a block (bad moniker, address or user), if it cannot.
pub(crate) fn unfit(dock: &Dock) -> Option<String> {
    if has_moniker(dock) && !valid_moniker(&dock.moniker) {
        return Some(format!(
            "its moniker `{}` cannot be an ssh Host here (letters, digits, `_`, `-`, starting \
             with a letter or digit; not an address, no dot, not `default`: it could be a real \
             host's name)",
            dock.moniker
        ));
    }
    if !valid_address(&dock.ip) {
        return Some(format!(
            "its address `{}` is not a host name or IP",
            dock.ip
        ));
    }
    if !valid_user(&dock.user) {
        return Some(format!(
            "its user `{}` cannot be written in an ssh config",
            dock.user
        ));
    }
    None
}

/// The options of a dock's block, in order (keyword, value as written).
fn block_options(dock: &Dock) -> std::result::Result<Vec<(&'static str, String)>, String> {
    let unwritable = |what: &str, p: &Path| {
        format!(
            "its {what} path {} cannot be written in an ssh config (a control character or `${{`)",
            p.display()
        )
    };
    let mut opts = vec![
        ("HostName", dock.ip.clone()),
        ("User", dock.user.clone()),
        ("Port", "22".to_string()),
    ];
    if let Some(identity) = dock.identity() {
        let value = path_word(&identity, "").ok_or_else(|| unwritable("identity", &identity))?;
        opts.push(("IdentityFile", value));
    }
    let known = dock.known_hosts();
    opts.push((
        "UserKnownHostsFile",
        path_word(&known, "").ok_or_else(|| unwritable("known_hosts", &known))?,
    ));
    opts.push(("StrictHostKeyChecking", "accept-new".into()));
    if let Some(cm) = dock.control_path() {
        let dir = cm.parent().unwrap_or(Path::new("/"));
        if path_word(dir, "").is_none() {
            return Err(unwritable("control socket", dir));
        }
        opts.extend(dock.control_options());
    }
    opts.push(("ConnectTimeout", dock::CONNECT_TIMEOUT.to_string()));
    opts.push((
        "ServerAliveInterval",
        dock::SERVER_ALIVE_INTERVAL.to_string(),
    ));
    Ok(opts)
}

/// Renders the generated config for `docks` (in registry order), leaving out the docks
/// that cannot have a block or whose moniker is one of the user's own `Host`s. A moniker
/// registered twice names the first dock only, as `dock::find` does.
pub(crate) fn render(docks: &[Dock], user: &UserHosts, registry: &Path) -> Generated {
    let mut text = format!(
        "# Generated by dockerutils from the docks registered in {}: do not edit.\n\
         # register-dock, unregister-dock, create-dock, destroy-dock, start-dock, ls-dock and\n\
         # `dockerutils ssh-config --sync` rewrite it; `dockerutils ssh-config --install` adds\n\
         # the line that includes it to ~/.ssh/config.\n",
        registry.display()
    );
    let mut entries: Vec<Entry> = vec![];
    let mut skipped = vec![];
    let mut taken = std::collections::HashSet::new();
    for dock in docks {
        let skip = |why: String| Skipped {
            dock: dock.clone(),
            why,
        };
        if let Some(why) = unfit(dock) {
            skipped.push(skip(why));
            continue;
        }
        let mut names = vec![];
        if has_moniker(dock) {
            if let Some(host) = user.clash(&dock.moniker) {
                skipped.push(skip(format!(
                    "its moniker `{}` is already a Host of yours ({}:{})",
                    dock.moniker,
                    host.file.display(),
                    host.line
                )));
                continue;
            }
            if taken.contains(&dock.moniker.to_ascii_lowercase()) {
                skipped.push(skip(format!(
                    "its moniker `{}` names another dock registered before it",
                    dock.moniker
                )));
                continue;
            }
            names.push(dock.moniker.clone());
        }
        for addr in [&dock.ip, &dock.hostname] {
            if valid_address(addr)
                && !names.contains(addr)
                && !taken.contains(&addr.to_ascii_lowercase())
            {
                names.push(addr.clone());
            }
        }
        if names.is_empty() {
            skipped.push(skip(format!(
                "its address `{}` names another dock registered before it",
                dock.ip
            )));
            continue;
        }
        let options = match block_options(dock) {
            Ok(o) => o,
            Err(why) => {
                skipped.push(skip(why));
                continue;
            }
        };
        for n in &names {
            taken.insert(n.to_ascii_lowercase());
        }
        text.push_str(&format!("\nHost {}\n", names.join(" ")));
        if dock.control_path().is_none() {
            text.push_str(
                "  # No connection reuse: the home directory's path is too long for ssh's \
                 control socket (107 bytes at most).\n",
            );
        }
        for (keyword, value) in options {
            text.push_str(&format!("  {keyword} {value}\n"));
        }
        entries.push(Entry {
            dock: dock.clone(),
            names,
        });
    }
    for s in &skipped {
        // One line, whatever the moniker holds: a newline in it cannot start a line here.
        let label = format!("{} ({})", s.dock.ip, s.dock.moniker).replace(char::is_control, "?");
        let why = s.why.replace(char::is_control, "?");
        text.push_str(&format!("\n# left out: {label}: {why}\n"));
    }
    Generated {
        text,
        entries,
        skipped,
    }
}

/// Writes `text` to `path` atomically (a temporary file in the same directory, renamed
/// over it), with `mode`, unless it already holds exactly that.
pub(crate) fn write_atomic(path: &Path, text: &[u8], mode: u32) -> Result<bool> {
    if std::fs::read(path).ok().as_deref() == Some(text) {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The mode asked for, whatever the umask.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(format!("cannot write {}", path.display()), e)
    })?;
    Ok(true)
}

/// Makes `dir` (and its parents) with mode 0700 for what this tool creates.
pub(crate) fn private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))
}

/// Writes the generated config (0600: ssh refuses an included file others can write);
/// the control socket directory (0700) is made as the blocks are rendered. Returns what
/// was written.
pub(crate) fn write(docks: &[Dock], user: &UserHosts) -> Result<Generated> {
    let registry = dock::registry_dir();
    let generated = render(docks, user, &registry);
    private_dir(&own_dir())?;
    write_atomic(&path(), generated.text.as_bytes(), 0o600)?;
    Ok(generated)
}

/// The `Host` names of the generated file as it is on disk (what ssh reads now).
pub(crate) fn hosts_on_disk() -> Vec<String> {
    let text = std::fs::read_to_string(path()).unwrap_or_default();
    text.lines()
        .filter_map(split_line)
        .filter(|(k, _)| k.eq_ignore_ascii_case("host"))
        .flat_map(|(_, names)| names)
        .collect()
}

// ---- the Include line in ~/.ssh/config -------------------------------------------------

/// The comment line `--install` puts before the Include (`--uninstall` looks for it).
const MARK: &str = "# dockerutils: the docks you register (ssh gpu-box, docker --context gpu-box); `dockerutils ssh-config --uninstall` removes this";
/// The same when `--install` created the file (`--uninstall` then deletes it if nothing
/// else is left).
const MARK_CREATED: &str = "# dockerutils: the docks you register (ssh gpu-box, docker --context gpu-box); `dockerutils ssh-config --uninstall` removes this (and the file, which it created)";

/// `Include <the generated file>`: an absolute path, since ssh expands `~` to the home of
/// the passwd entry, which need not be `$HOME`.
pub(crate) fn include_line() -> Result<String> {
    let file = path();
    let text = file.to_string_lossy();
    // Include takes glob patterns: a path with wildcards would name other files.
    if text.contains(['*', '?', '[']) {
        return Err(Error::Usage(format!(
            "{} holds a wildcard (`*`, `?`, `[`): ssh's Include would read it as a pattern",
            file.display()
        )));
    }
    let w = word(&text).ok_or_else(|| {
        Error::Usage(format!(
            "{} holds a control character: it cannot be written in ~/.ssh/config",
            file.display()
        ))
    })?;
    Ok(format!("Include {w}"))
}

/// The text `--install` puts at the top of ~/.ssh/config.
fn block(created: bool) -> Result<String> {
    Ok(format!(
        "{}\n{}\n\n",
        if created { MARK_CREATED } else { MARK },
        include_line()?
    ))
}

/// What `--install` or `--uninstall` would do to ~/.ssh/config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// Already so: nothing to write.
    Nothing,
    /// Write this text (`None`: delete the file, which `--install` had created).
    Write {
        before: Option<Vec<u8>>,
        after: Option<Vec<u8>>,
    },
}

/// Is our Include line in ~/.ssh/config (in `text`)?
fn has_include(text: &str, include: &str) -> bool {
    text.lines().any(|l| l.trim() == include)
}

/// What `--install` changes: the Include block at the very top (an Include after a `Host`
/// line would only apply to that host).
pub(crate) fn install_change(current: Option<&[u8]>) -> Result<Change> {
    let include = include_line()?;
    match current {
        Some(bytes) if has_include(&String::from_utf8_lossy(bytes), &include) => {
            Ok(Change::Nothing)
        }
        Some(bytes) => {
            let mut after = block(false)?.into_bytes();
            after.extend_from_slice(bytes);
            Ok(Change::Write {
                before: Some(bytes.to_vec()),
                after: Some(after),
            })
        }
        None => Ok(Change::Write {
            before: None,
            after: Some(block(true)?.into_bytes()),
        }),
    }
}

/// What `--uninstall` changes: the block `--install` put at the top, removed byte for
/// byte (the file it created, deleted); moved elsewhere, the two lines wherever they are.
pub(crate) fn uninstall_change(current: Option<&[u8]>) -> Result<Change> {
    let Some(bytes) = current else {
        return Ok(Change::Nothing);
    };
    for (created, block) in [(false, block(false)?), (true, block(true)?)] {
        if let Some(rest) = bytes.strip_prefix(block.as_bytes()) {
            let after = (!(created && rest.is_empty())).then(|| rest.to_vec());
            return Ok(Change::Write {
                before: Some(bytes.to_vec()),
                after,
            });
        }
    }
    let include = include_line()?;
    let text = String::from_utf8_lossy(bytes);
    if !has_include(&text, &include) {
        return Ok(Change::Nothing);
    }
    let kept: String = text
        .split_inclusive('\n')
        .filter(|l| {
            let l = l.trim();
            l != include && l != MARK && l != MARK_CREATED
        })
        .collect();
    Ok(Change::Write {
        before: Some(bytes.to_vec()),
        after: Some(kept.into_bytes()),
    })
}

/// Is the Include in ~/.ssh/config?
pub(crate) fn installed() -> bool {
    let Ok(include) = include_line() else {
        return false;
    };
    std::fs::read(user_config())
        .map(|b| has_include(&String::from_utf8_lossy(&b), &include))
        .unwrap_or(false)
}

/// The home directory of the user's passwd entry: where ssh (and the docker CLI's ssh)
/// read `~/.ssh/config`, whatever `$HOME` says.
pub(crate) fn passwd_home() -> Option<PathBuf> {
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into pwd and buf, which outlive the call; pw_dir points
    // into buf and is copied before buf goes.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
        return None;
    }
    let dir = unsafe { std::ffi::CStr::from_ptr(pwd.pw_dir) };
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes())))
}

use std::os::unix::ffi::OsStrExt;

/// Does ssh read the ~/.ssh/config this tool writes? Not when `$HOME` is not the passwd
/// entry's home (`sudo -E`, a test's HOME): then ssh reads the other one.
pub(crate) fn ssh_reads_user_config() -> bool {
    let Some(home) = dirs::home_dir() else {
        return false;
    };
    match passwd_home() {
        Some(pw) => same_file(&pw, &home),
        None => false,
    }
}

/// Do ssh and the docker CLI see the docks by their monikers? (The Include is installed
/// in the ~/.ssh/config ssh reads.)
pub(crate) fn active() -> bool {
    installed() && ssh_reads_user_config()
}

/// Applies a change to ~/.ssh/config (resolving a symlink, so that a dotfile manager's
/// link stays a link): the new text written next to the real file and renamed over it,
/// with the file's mode (0600 for a new file, in a 0700 ~/.ssh made if missing); before
/// that, on install, a copy of the old text in `config.dockerutils-backup`. Nothing is
/// changed when any step fails.
pub(crate) fn apply(change: &Change, backup: bool) -> Result<Option<PathBuf>> {
    let Change::Write { before, after } = change else {
        return Ok(None);
    };
    let link = user_config();
    let file = std::fs::canonicalize(&link).unwrap_or_else(|_| link.clone());
    let dir = file.parent().unwrap_or(Path::new("/")).to_owned();
    if !dir.exists() {
        private_dir(&dir)?;
    }
    let mode = std::fs::metadata(&file)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o600);
    let mut saved = None;
    match after {
        Some(text) => {
            // Check that the new file can be written before the backup is made.
            let probe = dir.join(format!(".config.dockerutils.{}.tmp", std::process::id()));
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&probe)
                .map_err(|e| Error::io(format!("cannot write in {}", dir.display()), e))?;
            let _ = std::fs::remove_file(&probe);
            if let (true, Some(old)) = (backup, before) {
                let path = dir.join("config.dockerutils-backup");
                write_atomic(&path, old, 0o600)?;
                saved = Some(path);
            }
            write_atomic(&file, text, mode)?;
        }
        None => std::fs::remove_file(&file)
            .map_err(|e| Error::io(format!("cannot remove {}", file.display()), e))?,
    }
    Ok(saved)
}

/// Checks a new registration before anything is written: its moniker and address must
/// be able to be `Host` names, its user a `User`, and the moniker must not be one of the
/// user's own `Host`s.
pub(crate) fn check_new(dock: &Dock) -> Result<()> {
    if has_moniker(dock) {
        check_moniker(&dock.moniker)?;
    }
    if !valid_address(&dock.ip) {
        return Err(Error::Usage(format!(
            "`{}` is not a host name or an IP address",
            dock.ip
        )));
    }
    check_user(&dock.user)
}

/// A user that can be written as `User`.
pub(crate) fn check_user(user: &str) -> Result<()> {
    if valid_user(user) {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "`{user}` cannot be an ssh user name here: use letters, digits, `.`, `_`, `-`, `@`, `+`"
    )))
}

/// A moniker for a new dock: a valid `Host` name that is not one of the user's own.
pub(crate) fn check_moniker(moniker: &str) -> Result<()> {
    crate::dock::check_moniker(moniker)?;
    if let Some(host) = UserHosts::load()?.clash(moniker) {
        return Err(Error::Usage(format!(
            "the moniker `{moniker}` is already a Host in your ssh config ({}:{}): a dock by \
             that name would take `ssh {moniker}` over; choose another moniker, or rename \
             that Host",
            host.file.display(),
            host.line,
        )));
    }
    Ok(())
}

/// A private key to register (`register-dock -i`): its absolute path, which must be a
/// file ssh can be given.
pub(crate) fn identity(key: &Path) -> Result<String> {
    let abs = std::path::absolute(key)
        .map_err(|e| Error::io(format!("cannot resolve {}", key.display()), e))?;
    if !abs.is_file() {
        return Err(Error::Usage(format!(
            "no private key at {} (-i takes the key file, e.g. ~/.ssh/id_ed25519)",
            abs.display()
        )));
    }
    if path_word(&abs, "").is_none() {
        return Err(Error::Usage(format!(
            "{} cannot be given to ssh (a control character or `${{` in the path)",
            abs.display()
        )));
    }
    Ok(abs.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dock(ip: &str, moniker: &str, user: &str) -> Dock {
        Dock {
            user: user.into(),
            moniker: moniker.into(),
            hostname: ip.into(),
            ip: ip.into(),
            extra: vec![],
            dir: PathBuf::from("/h/.docker").join(ip),
        }
    }

    #[test]
    fn monikers_addresses_and_users_that_can_be_written() {
        for ok in ["gpu-box", "gpu_2", "G1", "lab-10"] {
            assert!(valid_moniker(ok), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "x;y",
            "$(touch x)",
            "-oProxyCommand=x",
            "a*",
            "\"q\"",
            "a\nb",
            ".x",
            "é",
            "a.b",
            "github.com",
            "10.0.0.5",
            "::1",
            "default",
        ] {
            assert!(!valid_moniker(bad), "{bad:?}");
        }
        assert!(valid_address("fe80::1") && valid_address("build.example.com"));
        assert!(valid_address("::1") && !valid_address("999.1.1.1"));
        assert!(!valid_address("10.0.0.5 evil") && !valid_address("-x"));
        assert!(valid_user("ec2-user") && valid_user("ann@corp"));
        assert!(!valid_user("a b") && !valid_user("%u") && !valid_user("-l"));
    }

    #[test]
    fn words_read_back_as_ssh_splits_them() {
        for s in [
            "/plain/path",
            "/home/a b/x",
            "/q\"uote/'single'/back\\slash/#hash/$(x);y",
        ] {
            let w = word(s).unwrap();
            let (_, args) = split_line(&format!("Key {w}")).unwrap();
            assert_eq!(args, [s], "{w}");
        }
        assert_eq!(word("a\nb"), None);
        assert_eq!(
            path_word(Path::new("/h/50% off"), "/%C").unwrap(),
            "\"/h/50%% off/%C\""
        );
        assert_eq!(path_word(Path::new("/h/${X}"), ""), None);
        let (k, args) = split_line("  HostName=10.0.0.1 # comment").unwrap();
        assert_eq!(
            (k.as_str(), args),
            ("HostName", vec!["10.0.0.1".to_string()])
        );
        assert!(split_line("   # only a comment").is_none());
    }

    #[test]
    fn renders_one_block_per_dock_and_leaves_out_what_cannot_be_one() {
        let mut with_key = dock("10.0.0.5", "gpu", "ubuntu");
        with_key
            .extra
            .push(("DOCK_IDENTITY".into(), "/h/.ssh/ml key".into()));
        let docks = [
            with_key,
            dock("10.0.0.6", "none", "admin"),
            dock("10.0.0.7", "bad name", "ubuntu"),
            dock("10.0.0.8", "mine", "ubuntu"),
            dock("10.0.0.9", "gpu", "ubuntu"),
        ];
        let user = UserHosts(vec![UserHost {
            name: "MINE".into(),
            file: "/h/.ssh/config".into(),
            line: 3,
        }]);
        let g = render(&docks, &user, Path::new("/h/.docker"));
        let names: Vec<&str> = g.entries.iter().map(Entry::name).collect();
        assert_eq!(names, ["gpu", "10.0.0.6"]);
        let skipped: Vec<&str> = g.skipped.iter().map(|s| s.dock.ip.as_str()).collect();
        assert_eq!(skipped, ["10.0.0.7", "10.0.0.8", "10.0.0.9"]);
        assert!(
            g.skipped[1].why.contains("/h/.ssh/config:3"),
            "{:?}",
            g.skipped
        );
        assert!(
            g.skipped[2].why.contains("names another dock"),
            "{:?}",
            g.skipped
        );
        let expected = "\nHost gpu 10.0.0.5\n  HostName 10.0.0.5\n  User ubuntu\n  Port 22\n  \
             IdentityFile \"/h/.ssh/ml key\"\n  UserKnownHostsFile /h/.docker/10.0.0.5/known_hosts\n  \
             StrictHostKeyChecking accept-new\n  ControlMaster auto\n  \
             ControlPath /h/.docker/.dockerutils/cm/%C\n  ControlPersist 10m\n  \
             ConnectTimeout 10\n  ServerAliveInterval 30\n";
        assert!(g.text.contains(expected), "{}", g.text);
        assert!(
            g.text
                .contains("\nHost 10.0.0.6\n  HostName 10.0.0.6\n  User admin\n")
        );
        assert!(!g.text.contains("bad name\n"), "{}", g.text);
        assert!(
            g.text
                .contains("# left out: 10.0.0.7 (bad name): its moniker")
        );
        // Every line is a comment, blank, a Host line or an indented option.
        for line in g.text.lines() {
            assert!(
                line.is_empty()
                    || line.starts_with('#')
                    || line.starts_with("Host ")
                    || line.starts_with("  "),
                "{line:?}"
            );
        }
    }
}
