//! The registry of docks: one directory per dock, `~/.docker/<ip>/connection_config.txt`,
//! in the Python tool's format so that docks registered by either tool work with both:
//!
//! ```text
//! DOCK_USER=ubuntu
//! DOCK_MONIKER=gpu-box
//! DOCK_HOSTNAME=10.0.0.12
//! DOCK_IP=10.0.0.12
//! ```
//!
//! (`DOCK_INSTANCE_ID` / `DOCK_PROVISIONED_PRODUCT` / `DOCK_WORKSPACE` / `DOCK_IDENTITY`
//! when present.) Our files are 0600 and the directories 0700; the directory also holds
//! the dock's own `known_hosts`. The SSH control sockets of all docks are in
//! `~/.docker/.dockerutils/cm/`, named by ssh's `%C`, so that the shim, `ssh-dock` and
//! the generated ssh config (`crate::dock::ssh_config`) all reuse the same connection.

pub(crate) mod cfg;
pub(crate) use dockerutils_reader::compress;
pub(crate) mod context;
pub(crate) mod hosts;
pub(crate) mod idle;
pub(crate) mod session;
pub(crate) mod ssh;
pub(crate) mod ssh_config;
pub(crate) mod sync;

use crate::error::{Error, Result};
use crate::plan::quote;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub(crate) const CONFIG_FILE: &str = "connection_config.txt";

/// The workspace of a dock registered without `--workspace` (as 2.0.7).
pub(crate) const DEFAULT_WORKSPACE: &str = "/data/workspaces";
/// ssh's `ConnectTimeout` for docks, in seconds.
pub(crate) const CONNECT_TIMEOUT: u32 = 10;
/// ssh's `ServerAliveInterval` for docks, in seconds.
pub(crate) const SERVER_ALIVE_INTERVAL: u32 = 30;

/// The directory of the docks' SSH control sockets (0700): `<registry>/.dockerutils/cm`.
pub(crate) fn control_dir(registry: &Path) -> PathBuf {
    registry.join(".dockerutils").join("cm")
}

/// `DIR/%C` (made, 0700, if missing) when it fits a socket path once ssh expands `%C` (40
/// characters).
pub(crate) fn control_path_in(dir: &Path) -> Option<PathBuf> {
    let path = dir.join("%C");
    if path.as_os_str().len() - 2 + 40 > MAX_CONTROL_PATH {
        return None;
    }
    if !dir.is_dir() {
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    Some(path)
}

/// The longest control socket path, its tokens expanded: a Unix socket path has at most
/// 107 bytes, and ssh binds `<path>.<16 random characters>` first. A longer one (or one
/// in a missing directory) is not a lost optimisation: ssh then exits with 255.
const MAX_CONTROL_PATH: usize = 107 - 17;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dock {
    pub user: String,
    pub moniker: String,
    pub hostname: String,
    pub ip: String,
    /// Other `KEY=value` lines, kept as they are (instance id, provisioned product…).
    pub extra: Vec<(String, String)>,
    /// `~/.docker/<ip>`
    pub dir: PathBuf,
}

/// `~/.docker`, where docks are registered.
pub(crate) fn registry_dir() -> PathBuf {
    dirs::home_dir()
        .unwrap_or_else(|| PathBuf::from("/"))
        .join(".docker")
}

impl Dock {
    pub(crate) fn parse(text: &str, dir: &Path) -> Option<Dock> {
        let mut dock = Dock {
            user: String::new(),
            moniker: String::new(),
            hostname: String::new(),
            ip: String::new(),
            extra: vec![],
            dir: dir.to_owned(),
        };
        for line in text.lines() {
            let Some((key, value)) = line.trim().split_once('=') else {
                continue;
            };
            let value = value.trim().to_owned();
            match key.trim() {
                "DOCK_USER" => dock.user = value,
                "DOCK_MONIKER" => dock.moniker = value,
                "DOCK_HOSTNAME" => dock.hostname = value,
                "DOCK_IP" => dock.ip = value,
                other => dock.extra.push((other.to_owned(), value)),
            }
        }
        // What goes on ssh's, rsync's and docker's command lines comes from here, and a
        // registry file can be written by anything: an entry whose address or user could
        // be taken for an option, or climb out of ~/.docker, is not a dock.
        (check_address(&dock.ip).is_ok() && valid_user(&dock.user)).then_some(dock)
    }

    pub(crate) fn render(&self) -> String {
        let mut out = format!(
            "DOCK_USER={}\nDOCK_MONIKER={}\nDOCK_HOSTNAME={}\nDOCK_IP={}\n",
            self.user, self.moniker, self.hostname, self.ip
        );
        for (k, v) in &self.extra {
            out.push_str(&format!("{k}={v}\n"));
        }
        out
    }

    /// `ssh://user@ip` for DOCKER_HOST and docker contexts, an IPv6 address in brackets.
    pub(crate) fn ssh_url(&self) -> String {
        if self.ip.contains(':') {
            format!("ssh://{}@[{}]", self.user, self.ip)
        } else {
            format!("ssh://{}", self.destination())
        }
    }

    /// `user@ip`, as ssh and `DOCKER_HOST=ssh://` take it.
    pub(crate) fn destination(&self) -> String {
        format!("{}@{}", self.user, self.ip)
    }

    pub(crate) fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// The registry the dock is in (`~/.docker`).
    pub(crate) fn registry(&self) -> &Path {
        self.dir.parent().unwrap_or(Path::new("/"))
    }

    /// The private key registered for the dock (`DOCK_IDENTITY`), if any.
    pub(crate) fn identity(&self) -> Option<PathBuf> {
        self.extra
            .iter()
            .find(|(k, v)| k == "DOCK_IDENTITY" && !v.is_empty())
            .map(|(_, v)| PathBuf::from(v))
    }

    /// The SSH control socket: one connection that every ssh to this dock reuses, with
    /// ssh's tokens in it. `<registry>/.dockerutils/cm/%C` (`%C`: ssh's 40-character hash
    /// of local host, host, port and user), which the generated ssh config uses too, so
    /// that `ssh gpu-box`, the shim and `ssh-dock` share it; with a home too long for that
    /// to fit a socket path, `~/.docker/<ip>/cm-%r` (one per remote user: a session for
    /// another user must not ride this one; the port is always 22); `None` (no reuse)
    /// when even that is too long.
    pub(crate) fn control_path(&self) -> Option<PathBuf> {
        if let Some(shared) = control_path_in(&control_dir(self.registry())) {
            return Some(shared);
        }
        let own = self.dir.join("cm-%r");
        (own.as_os_str().len() - 2 + self.user.len() <= MAX_CONTROL_PATH).then_some(own)
    }

    /// The control socket options (`ControlMaster`, `ControlPath` as ssh reads it back,
    /// `ControlPersist`), none without a control path; makes the socket's directory
    /// (0700) when it is missing, since ssh fails without it.
    pub(crate) fn control_options(&self) -> Vec<(&'static str, String)> {
        let Some(path) = self.control_path() else {
            return vec![];
        };
        let dir = path.parent().unwrap_or(Path::new("/"));
        if !dir.is_dir() {
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir);
        }
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        let spelled = crate::dock::ssh_config::path_word(dir, &format!("/{file}"))
            .unwrap_or_else(|| path.display().to_string());
        vec![
            ("ControlMaster", "auto".to_string()),
            ("ControlPath", spelled),
            ("ControlPersist", "10m".to_string()),
        ]
    }

    /// Options for every ssh to this dock: reuse one connection (kept 10 minutes after its
    /// last use), learn the host key on first contact and refuse a changed one, time out;
    /// the registered identity, if any. Paths are spelled as ssh reads them back (`%`
    /// doubled, quoted when they hold spaces).
    pub(crate) fn ssh_options(&self) -> Vec<String> {
        let spell = |path: &Path| {
            crate::dock::ssh_config::path_word(path, "")
                .unwrap_or_else(|| path.display().to_string())
        };
        let mut opts: Vec<String> = self
            .control_options()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        opts.extend([
            "StrictHostKeyChecking=accept-new".to_string(),
            format!("UserKnownHostsFile={}", spell(&self.known_hosts())),
            format!("ConnectTimeout={CONNECT_TIMEOUT}"),
            format!("ServerAliveInterval={SERVER_ALIVE_INTERVAL}"),
        ]);
        if let Some(identity) = self.identity() {
            opts.push(format!("IdentityFile={}", spell(&identity)));
        }
        opts.into_iter()
            .flat_map(|o| ["-o".to_string(), o])
            .collect()
    }

    /// Where `sync-up` puts projects on this dock: the registered `--workspace`
    /// (`DOCK_WORKSPACE`), else [`DEFAULT_WORKSPACE`].
    pub(crate) fn workspace(&self) -> &str {
        self.extra
            .iter()
            .find(|(k, _)| k == "DOCK_WORKSPACE")
            .map_or(DEFAULT_WORKSPACE, |(_, v)| v.as_str())
    }

    /// The dock's copy of a local project directory, kept by `sync-up`:
    /// `<workspace>/<user>/code/<name>`, `<name>` being the local directory's base name as
    /// it is (not lower-cased). One function for every command that needs it (sync-up and
    /// sync-down, run-image's `{dock_project_root}`, run-notebook).
    pub(crate) fn code_dir(&self, user: &str, local: &Path) -> String {
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{}/{user}/code/{name}", self.workspace())
    }

    /// What to do when the dock's user cannot create its directory in the workspace
    /// (`<workspace>/<user>`, `user` being the local user whose projects go there): a
    /// workspace it can write, in its home, or that directory made for it by an admin.
    pub(crate) fn workspace_hint(&self, user: &str) -> String {
        let mut register = format!("register-dock {}", quote(&self.ip));
        if !self.moniker.is_empty() && self.moniker != "none" {
            register.push(' ');
            register.push_str(&quote(&self.moniker));
        }
        format!(
            "register the dock with a workspace that {who} can write, e.g. in its home on the \
             dock: `{register} -u {who} --workspace '~/workspaces'`; or have it made there for \
             {who}: `sudo install -d -o {who} {dir}`",
            who = quote(&self.user),
            dir = quote(&format!("{}/{user}", self.workspace())),
        )
    }

    pub(crate) fn name(&self) -> &str {
        if self.moniker.is_empty() || self.moniker == "none" {
            &self.ip
        } else {
            &self.moniker
        }
    }
}

/// Every registered dock, in the order a listing shows them: by moniker (ignoring case),
/// then the docks without one by address (10.0.0.9 before 10.0.0.10), then by host name.
pub(crate) fn all() -> Vec<Dock> {
    all_in(&registry_dir())
}

pub(crate) fn all_in(registry: &Path) -> Vec<Dock> {
    let Ok(entries) = std::fs::read_dir(registry) else {
        return vec![];
    };
    let mut docks: Vec<Dock> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let dir = e.path();
            let text = std::fs::read_to_string(dir.join(CONFIG_FILE)).ok()?;
            Dock::parse(&text, &dir)
        })
        .collect();
    docks.sort_by_cached_key(|d| {
        let name = d.name();
        match name.parse::<std::net::IpAddr>() {
            _ if name != d.ip => (0, name.to_lowercase(), None),
            Ok(addr) => (1, String::new(), Some(addr)),
            Err(_) => (2, name.to_lowercase(), None),
        }
    });
    docks
}

/// The dock whose moniker or IP is `name`.
pub(crate) fn find(name: &str) -> Result<Dock> {
    let docks = all();
    // An address names the dock at that address, whatever another dock's (old, 2.0.7)
    // moniker says: unregister-dock 10.0.0.5 must not remove another dock.
    if name.parse::<std::net::IpAddr>().is_ok()
        && let Some(d) = docks.iter().find(|d| d.ip == name)
    {
        return Ok(d.clone());
    }
    // `none` is how 2.0.7 writes "no moniker": never a name to find a dock by.
    let named: Vec<&Dock> = docks
        .iter()
        .filter(|d| d.moniker == name && name != "none")
        .collect();
    if named.len() > 1 {
        let which: Vec<String> = named
            .iter()
            .map(|d| format!("{} ({})", d.ip, d.destination()))
            .collect();
        return Err(Error::Usage(format!(
            "the moniker `{name}` names {} docks: {}; name one by its address, and \
             `unregister-dock ADDRESS` the one you do not want",
            named.len(),
            which.join(", ")
        )));
    }
    named
        .first()
        .copied()
        .or_else(|| docks.iter().find(|d| d.ip == name || d.hostname == name))
        .cloned()
        .ok_or_else(|| {
            let mut known: Vec<String> = docks.iter().map(|d| d.name().to_string()).collect();
            known.sort();
            Error::UnknownDock {
                name: name.into(),
                known,
            }
        })
}

/// The dock the shell is docked to (`DOCKER_IP`), if any.
pub(crate) fn current() -> Option<Dock> {
    let ip = std::env::var("DOCKER_IP").ok().filter(|s| !s.is_empty())?;
    find(&ip).ok()
}

/// The dock named on the command line, else the current one.
pub(crate) fn named_or_current(name: Option<&str>) -> Result<Dock> {
    match name {
        Some(name) => find(name),
        None => current().ok_or_else(|| {
            Error::Usage(
                "not docked: name a dock (a moniker or an IP), or `source dock NAME` first".into(),
            )
        }),
    }
}

/// Writes (or rewrites) a dock's registration: directory 0700, file 0600.
/// Entries of `~/.docker` that belong to docker and its plugins: never a dock's
/// directory, whatever a registration says.
const NOT_DOCKS: &[&str] = &[
    "contexts",
    "buildx",
    "cli-plugins",
    "machine",
    "trust",
    "scan",
    "run",
    "config.json",
    "features.json",
    "daemon.json",
    "dockerutils",
];

/// A dock user: what ssh's `-l` and `user@` take in practice (letters, digits, `.`, `_`,
/// `-`, and `@`, `+` of directory users such as `ann@corp`; `-` not first). One rule for
/// registering, reading the registry and writing the ssh config.
pub(crate) fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && !user.starts_with('-')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@+".contains(c))
}

/// A moniker: letters, digits, `_`, `-`, starting with a letter or digit (it names the
/// dock in prompts, ssh configs and docker contexts, and is typed on command lines).
pub(crate) fn check_moniker(moniker: &str) -> Result<()> {
    let ok = !moniker.is_empty()
        && moniker.len() <= 64
        && moniker.starts_with(|c: char| c.is_ascii_alphanumeric())
        && moniker
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c));
    if !ok {
        return Err(Error::Usage(format!(
            "`{}` is not a moniker: use letters, digits, `_` and `-` (up to 64, starting \
             with a letter or digit)",
            moniker.escape_debug()
        )));
    }
    // A moniker becomes an ssh Host and a docker context: never a real host's name (an
    // address), nor docker's own context. ssh resolves a Host with the C library, whose
    // inet_aton takes `123` (0.0.0.123), `0x7f` and `017` for IPv4 addresses: all digits,
    // and 0x with hex digits, are addresses too. (Dots and colons are not moniker
    // characters, so dotted and IPv6 addresses never get here.)
    let hex = moniker
        .get(..2)
        .is_some_and(|p| p.eq_ignore_ascii_case("0x"))
        && moniker[2..].chars().all(|c| c.is_ascii_hexdigit());
    if moniker.chars().all(|c| c.is_ascii_digit()) || hex {
        return Err(Error::Usage(format!(
            "`{moniker}` is not a moniker: ssh would read it as an IPv4 address (as \
             inet_aton reads all digits and 0x…); choose a name (gpu-box, lab-2)"
        )));
    }
    if moniker.eq_ignore_ascii_case("default") {
        return Err(Error::Usage(format!(
            "`{moniker}` is not a moniker: it is docker's own context name; choose a name \
             (gpu-box, lab-2)"
        )));
    }
    Ok(())
}

/// The registered dock, other than the one at `except_ip`, whose moniker is `moniker` in
/// any case: ssh Host names are case-insensitive, so `REALDOCK` would be a second Host
/// `realdock`.
pub(crate) fn moniker_taken(moniker: &str, except_ip: Option<&str>) -> Option<Dock> {
    all()
        .into_iter()
        .find(|d| d.moniker.eq_ignore_ascii_case(moniker) && Some(d.ip.as_str()) != except_ip)
}

/// An address: an IP (v4 or v6) or a host name (RFC 1123 labels). It is also the name of
/// the dock's directory in `~/.docker`, so nothing else may pass: no `/`, no `..`, none of
/// docker's own entries there.
pub(crate) fn check_address(address: &str) -> Result<()> {
    let is_ip = address.parse::<std::net::IpAddr>().is_ok();
    // All digits and dots is an IPv4 address or nothing (999.1.1.1 is no host name).
    let numeric = address.chars().all(|c| c.is_ascii_digit() || c == '.');
    let is_host = !numeric
        && address.len() <= 253
        && address.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !(is_ip || is_host) {
        return Err(Error::Usage(format!(
            "`{}` is not an address: give an IP address (v4 or v6) or a host name",
            address.escape_debug()
        )));
    }
    if NOT_DOCKS.contains(&address.to_ascii_lowercase().as_str()) {
        return Err(Error::Usage(format!(
            "`{address}` names docker's own ~/.docker/{address}, not a dock: give the \
             dock's IP address or its full host name"
        )));
    }
    Ok(())
}

/// Is this registry entry a dock's own directory (`<registry>/<valid address>`)?
fn owns_its_directory(dock: &Dock) -> bool {
    let name = dock.dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    check_address(name).is_ok() && dock.dir.parent() == Some(registry_dir().as_path())
}

pub(crate) fn register(dock: &Dock) -> Result<()> {
    check_address(&dock.ip)?;
    if dock.moniker != "none" {
        check_moniker(&dock.moniker)?;
    }
    if !owns_its_directory(dock) {
        return Err(Error::Usage(format!(
            "{} is not a dock's directory in {}",
            dock.dir.display(),
            registry_dir().display()
        )));
    }
    let registry = registry_dir();
    for dir in [&registry, &dock.dir] {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    }
    let path = dock.dir.join(CONFIG_FILE);
    let tmp = dock.dir.join(format!(".{CONFIG_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(dock.render().as_bytes())?;
        std::fs::rename(&tmp, &path)?;
        // ssh would make the dock's known_hosts 0644 on first contact: made here, 0600, as
        // every file of the registry (an existing one is left as it is).
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(dock.known_hosts())
            .map(drop)
    };
    write().map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// Forgets the dock's host key (a new machine at the same address has a new one): its
/// known_hosts emptied, 0600 like every file of the registry.
pub(crate) fn forget_host_key(dock: &Dock) {
    use std::os::unix::fs::PermissionsExt;
    let path = dock.known_hosts();
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path);
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
}

/// Moves a dock's registration to a new address (an EC2 dock registered by its public IP
/// gets a new one when it starts again): `~/.docker/<new ip>/` with the same moniker,
/// user and settings, then the old directory removed. Refused when another dock is
/// registered at the new address.
pub(crate) fn readdress(dock: &Dock, ip: &str) -> Result<Dock> {
    let mut moved = dock.clone();
    if moved.hostname == dock.ip {
        moved.hostname = ip.to_string();
    }
    moved.ip = ip.to_string();
    moved.dir = dock.registry().join(ip);
    if moved.dir.join(CONFIG_FILE).exists() {
        return Err(Error::Usage(format!(
            "dock {} now has the address {ip}, where another dock is registered ({}): \
             unregister-dock one of them",
            dock.name(),
            moved.dir.display()
        )));
    }
    register(&moved)?;
    close_connection(dock);
    std::fs::remove_dir_all(&dock.dir)
        .map_err(|e| Error::io(format!("cannot remove {}", dock.dir.display()), e))?;
    Ok(moved)
}

/// Removes a dock's registration, closing its shared ssh connection first.
pub(crate) fn unregister(dock: &Dock) -> Result<()> {
    // Only ever `~/.docker/<address>`: a connection_config.txt found in docker's own
    // `contexts` (or anywhere else) does not make that a dock to delete.
    if !owns_its_directory(dock) {
        return Err(Error::Usage(format!(
            "{} is not a dock's directory (its name is no address, or docker's own): \
             not removed; delete its connection_config.txt by hand if it is stale",
            dock.dir.display()
        )));
    }
    close_connection(dock);
    std::fs::remove_dir_all(&dock.dir)
        .map_err(|e| Error::io(format!("cannot remove {}", dock.dir.display()), e))
}

/// Closes the dock's shared ssh connection, if one is open (also one opened by an earlier
/// version, whose socket was `~/.docker/<ip>/cm`).
pub(crate) fn close_connection(dock: &Dock) {
    let mut paths: Vec<String> = dock
        .control_options()
        .into_iter()
        .filter(|(k, _)| *k == "ControlPath")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if dock.dir.join("cm").exists() {
        paths.push(format!("ControlPath={}", dock.dir.join("cm").display()));
    }
    for path in paths {
        let _ = crate::process::run(
            crate::process::Command::new("ssh")
                .args(["-o", &path, "-O", "exit"])
                .arg(dock.destination())
                .stdout(crate::process::Stdio::null())
                .stderr(crate::process::Stdio::null()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docks_are_listed_by_moniker_then_by_address_as_numbers_then_by_host_name() {
        let registry = tempfile::tempdir().unwrap();
        for (ip, moniker) in [
            ("10.0.0.10", "none"),
            ("gpu.example.com", ""),
            ("10.0.0.9", ""),
            ("10.0.0.1", "zeta"),
            ("10.0.0.2", "Alpha"),
            ("fd00::1", "none"),
            ("10.0.0.3", "beta"),
        ] {
            let dir = registry.path().join(ip);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join(CONFIG_FILE),
                format!("DOCK_USER=ann\nDOCK_MONIKER={moniker}\nDOCK_HOSTNAME=\nDOCK_IP={ip}\n"),
            )
            .unwrap();
        }
        let names: Vec<String> = all_in(registry.path())
            .iter()
            .map(|d| d.name().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "Alpha",
                "beta",
                "zeta",
                "10.0.0.9",
                "10.0.0.10",
                "fd00::1",
                "gpu.example.com"
            ]
        );
    }

    #[test]
    fn reads_and_writes_the_python_tools_format() {
        let text = "DOCK_USER=ubuntu\nDOCK_MONIKER=gpu\nDOCK_HOSTNAME=10.0.0.5\nDOCK_IP=10.0.0.5\nDOCK_INSTANCE_ID=i-0abc\n";
        let dock = Dock::parse(text, Path::new("/h/.docker/10.0.0.5")).unwrap();
        assert_eq!(dock.destination(), "ubuntu@10.0.0.5");
        assert_eq!(dock.name(), "gpu");
        assert_eq!(
            dock.extra,
            vec![("DOCK_INSTANCE_ID".to_string(), "i-0abc".to_string())]
        );
        assert_eq!(dock.render(), text);
        assert!(Dock::parse("DOCK_USER=x\n", Path::new("/")).is_none());
        // A directory user (`ann@corp`) registered by register-dock reads back.
        let ad = Dock::parse("DOCK_USER=ann@corp\nDOCK_IP=10.0.0.5\n", Path::new("/")).unwrap();
        assert_eq!(ad.destination(), "ann@corp@10.0.0.5");
        for hostile in [
            "DOCK_USER=-oProxyCommand=touch_F\nDOCK_IP=10.0.0.5\n",
            "DOCK_USER=a b\nDOCK_IP=10.0.0.5\n",
            "DOCK_USER=u\nDOCK_IP=-oProxyCommand=x\n",
            "DOCK_USER=u\nDOCK_IP=../../etc\n",
        ] {
            assert!(Dock::parse(hostile, Path::new("/")).is_none(), "{hostile}");
        }
    }

    #[test]
    fn monikers_and_addresses_are_checked() {
        for m in ["gpu-box", "lab_2", "X9", "0xg", "1a", "x0x7f"] {
            assert!(check_moniker(m).is_ok(), "{m}");
        }
        // What inet_aton reads as an IPv4 address: refused as one, nothing else said.
        for m in ["123", "017", "0x7f", "0XFF", "0x"] {
            let e = check_moniker(m).unwrap_err().to_string();
            assert!(
                e.contains("ssh would read it as an IPv4 address") && !e.contains("context"),
                "{m}: {e}"
            );
        }
        let e = check_moniker("Default").unwrap_err().to_string();
        assert!(
            e.contains("docker's own context name") && !e.contains("address"),
            "{e}"
        );
        for m in [
            "x$(touch F)",
            "a b",
            "-x",
            ".x",
            "",
            "a/b",
            "é",
            "`id`",
            "%F{red}",
        ] {
            assert!(check_moniker(m).is_err(), "{m}");
        }
        for a in [
            "10.0.0.7",
            "::1",
            "fe80::1",
            "gpu.example.com",
            "localhost",
            "h-1",
        ] {
            assert!(check_address(a).is_ok(), "{a}");
        }
        for a in [
            "../../x",
            "a/b",
            "..",
            ".",
            "",
            "-oProxyCommand=x",
            "a..b",
            "contexts",
            "Buildx",
            "h_1",
            "a b",
        ] {
            assert!(check_address(a).is_err(), "{a}");
        }
    }

    #[test]
    fn ssh_options_spell_paths_as_ssh_reads_them_and_share_one_socket_directory() {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("50% off");
        let dock = Dock {
            user: "ubuntu".into(),
            moniker: "gpu".into(),
            hostname: "10.0.0.5".into(),
            ip: "10.0.0.5".into(),
            extra: vec![("DOCK_IDENTITY".into(), "/keys/my key".into())],
            dir: registry.join("10.0.0.5"),
        };
        let opts = dock.ssh_options();
        let value = |key: &str| {
            opts.iter()
                .find_map(|o| o.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{key} in {opts:?}"))
                .to_string()
        };
        let reg = registry.display().to_string().replace('%', "%%");
        assert_eq!(
            value("ControlPath"),
            format!("\"{reg}/.dockerutils/cm/%C\"")
        );
        assert_eq!(
            value("UserKnownHostsFile"),
            format!("\"{reg}/10.0.0.5/known_hosts\"")
        );
        assert_eq!(value("IdentityFile"), "\"/keys/my key\"");
        // ssh fails without the socket's directory: made, private.
        use std::os::unix::fs::PermissionsExt;
        let cm = control_dir(&registry);
        assert_eq!(
            std::fs::metadata(&cm).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // A home too long for `%C` there: a socket per dock and remote user.
        let long = dir.path().join("x".repeat(40));
        let far = Dock {
            dir: long.join("10.0.0.5"),
            ..dock.clone()
        };
        assert_eq!(far.control_path(), Some(long.join("10.0.0.5/cm-%r")));
        let too_far = Dock {
            dir: dir.path().join("y".repeat(90)).join("10.0.0.5"),
            ..dock
        };
        assert_eq!(too_far.control_path(), None);
        assert!(
            !too_far
                .ssh_options()
                .iter()
                .any(|o| o.starts_with("Control"))
        );
    }
}
