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
//! (`DOCK_INSTANCE_ID` / `DOCK_PROVISIONED_PRODUCT` when present.) Our files are 0600 and
//! the directories 0700; the directory also holds the dock's own `known_hosts` and the
//! SSH control socket.

use crate::error::{Error, Result};
use crate::plan::quote;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "connection_config.txt";

/// The workspace of a dock registered without `--workspace` (as 2.0.7).
pub const DEFAULT_WORKSPACE: &str = "/data/workspaces";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dock {
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
pub fn registry_dir() -> PathBuf {
    dirs::home_dir()
        .unwrap_or_else(|| PathBuf::from("/"))
        .join(".docker")
}

impl Dock {
    pub fn parse(text: &str, dir: &Path) -> Option<Dock> {
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

    pub fn render(&self) -> String {
        let mut out = format!(
            "DOCK_USER={}\nDOCK_MONIKER={}\nDOCK_HOSTNAME={}\nDOCK_IP={}\n",
            self.user, self.moniker, self.hostname, self.ip
        );
        for (k, v) in &self.extra {
            out.push_str(&format!("{k}={v}\n"));
        }
        out
    }

    /// `user@ip`, as ssh and `DOCKER_HOST=ssh://` take it.
    pub fn destination(&self) -> String {
        format!("{}@{}", self.user, self.ip)
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// The SSH control socket: one connection that every ssh to this dock reuses. The
    /// directory is the dock's own, so a short fixed name does: a unix socket path has at
    /// most 107 bytes, and ssh adds 17 to it while it sets the socket up.
    pub fn control_path(&self) -> PathBuf {
        self.dir.join("cm")
    }

    /// Options for every ssh to this dock: reuse one connection (kept 10 minutes after its
    /// last use), learn the host key on first contact and refuse a changed one, time out.
    pub fn ssh_options(&self) -> Vec<String> {
        let opts = [
            "ControlMaster=auto".to_string(),
            format!("ControlPath={}", self.control_path().display()),
            "ControlPersist=600".to_string(),
            "StrictHostKeyChecking=accept-new".to_string(),
            format!("UserKnownHostsFile={}", self.known_hosts().display()),
            "ConnectTimeout=10".to_string(),
            "ServerAliveInterval=30".to_string(),
        ];
        opts.into_iter()
            .flat_map(|o| ["-o".to_string(), o])
            .collect()
    }

    /// Where `sync-up` puts projects on this dock: the registered `--workspace`
    /// (`DOCK_WORKSPACE`), else [`DEFAULT_WORKSPACE`].
    pub fn workspace(&self) -> &str {
        self.extra
            .iter()
            .find(|(k, _)| k == "DOCK_WORKSPACE")
            .map_or(DEFAULT_WORKSPACE, |(_, v)| v.as_str())
    }

    /// The dock's copy of a local project directory, kept by `sync-up`:
    /// `<workspace>/<user>/code/<name>`, `<name>` being the local directory's base name as
    /// it is (not lower-cased). One function for every command that needs it (sync-up and
    /// sync-down, run-image's `{dock_project_root}`, run-notebook).
    pub fn code_dir(&self, user: &str, local: &Path) -> String {
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{}/{user}/code/{name}", self.workspace())
    }

    /// What to do when the dock's user cannot create its directory in the workspace
    /// (`<workspace>/<user>`, `user` being the local user whose projects go there): a
    /// workspace it can write, in its home, or that directory made for it by an admin.
    pub fn workspace_hint(&self, user: &str) -> String {
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

    pub fn name(&self) -> &str {
        if self.moniker.is_empty() || self.moniker == "none" {
            &self.ip
        } else {
            &self.moniker
        }
    }
}

/// Every registered dock, sorted by directory name.
pub fn all() -> Vec<Dock> {
    all_in(&registry_dir())
}

pub fn all_in(registry: &Path) -> Vec<Dock> {
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
    docks.sort_by(|a, b| a.dir.cmp(&b.dir));
    docks
}

/// The dock whose moniker or IP is `name`.
pub fn find(name: &str) -> Result<Dock> {
    let docks = all();
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
pub fn current() -> Option<Dock> {
    let ip = std::env::var("DOCKER_IP").ok().filter(|s| !s.is_empty())?;
    find(&ip).ok()
}

/// The dock named on the command line, else the current one.
pub fn named_or_current(name: Option<&str>) -> Result<Dock> {
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
/// `-`, not first).
pub fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && !user.starts_with('-')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// A moniker: letters, digits, `.`, `_`, `-` (it names the dock in prompts, ssh configs
/// and docker contexts, and is typed on command lines).
pub fn check_moniker(moniker: &str) -> Result<()> {
    let ok = !moniker.is_empty()
        && moniker.len() <= 64
        && !moniker.starts_with(['-', '.'])
        && moniker
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "`{}` is not a moniker: use letters, digits, `.`, `_` and `-` (up to 64, \
             not starting with `-` or `.`)",
            moniker.escape_debug()
        )))
    }
}

/// An address: an IP (v4 or v6) or a host name (RFC 1123 labels). It is also the name of
/// the dock's directory in `~/.docker`, so nothing else may pass: no `/`, no `..`, none of
/// docker's own entries there.
pub fn check_address(address: &str) -> Result<()> {
    let is_ip = address.parse::<std::net::IpAddr>().is_ok();
    let is_host = address.len() <= 253
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

pub fn register(dock: &Dock) -> Result<()> {
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
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// Ends the dock's shared ssh connection, if one is open (it stays logged in as the user
/// it was opened for, whatever the registration says next).
pub fn close_connection(dock: &Dock) {
    let _ = std::process::Command::new("ssh")
        .args([
            "-o",
            &format!("ControlPath={}", dock.control_path().display()),
            "-O",
            "exit",
        ])
        .arg(dock.destination())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Removes a dock's registration, closing its shared ssh connection first.
pub fn unregister(dock: &Dock) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        for m in ["gpu-box", "lab_2", "a.b", "X9"] {
            assert!(check_moniker(m).is_ok(), "{m}");
        }
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
}
