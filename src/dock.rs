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
//! the generated ssh config (`crate::ssh_config`) all reuse the same connection.

use crate::error::{Error, Result};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "connection_config.txt";

/// ssh's `ConnectTimeout` for docks, in seconds.
pub const CONNECT_TIMEOUT: u32 = 10;
/// ssh's `ServerAliveInterval` for docks, in seconds.
pub const SERVER_ALIVE_INTERVAL: u32 = 30;

/// The directory of the docks' SSH control sockets (0700): `<registry>/.dockerutils/cm`.
pub fn control_dir(registry: &Path) -> PathBuf {
    registry.join(".dockerutils").join("cm")
}

/// The longest control socket path, its tokens expanded: a Unix socket path has at most
/// 107 bytes, and ssh binds `<path>.<16 random characters>` first. A longer one (or one
/// in a missing directory) is not a lost optimisation: ssh then exits with 255.
const MAX_CONTROL_PATH: usize = 107 - 17;

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
        (!dock.ip.is_empty()).then_some(dock)
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

    /// The registry the dock is in (`~/.docker`).
    pub fn registry(&self) -> &Path {
        self.dir.parent().unwrap_or(Path::new("/"))
    }

    /// The private key registered for the dock (`DOCK_IDENTITY`), if any.
    pub fn identity(&self) -> Option<PathBuf> {
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
    pub fn control_path(&self) -> Option<PathBuf> {
        let shared = control_dir(self.registry()).join("%C");
        if shared.as_os_str().len() - 2 + 40 <= MAX_CONTROL_PATH {
            return Some(shared);
        }
        let own = self.dir.join("cm-%r");
        (own.as_os_str().len() - 2 + self.user.len() <= MAX_CONTROL_PATH).then_some(own)
    }

    /// The control socket options (`ControlMaster`, `ControlPath` as ssh reads it back,
    /// `ControlPersist`), none without a control path; makes the socket's directory
    /// (0700) when it is missing, since ssh fails without it.
    pub fn control_options(&self) -> Vec<(&'static str, String)> {
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
        let spelled = crate::ssh_config::path_word(dir, &format!("/{file}"))
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
    pub fn ssh_options(&self) -> Vec<String> {
        let spell = |path: &Path| {
            crate::ssh_config::path_word(path, "").unwrap_or_else(|| path.display().to_string())
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
    docks
        .iter()
        .find(|d| d.moniker == name)
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
pub fn register(dock: &Dock) -> Result<()> {
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

/// Moves a dock's registration to a new address (an EC2 dock registered by its public IP
/// gets a new one when it starts again): `~/.docker/<new ip>/` with the same moniker,
/// user and settings, then the old directory removed. Refused when another dock is
/// registered at the new address.
pub fn readdress(dock: &Dock, ip: &str) -> Result<Dock> {
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
pub fn unregister(dock: &Dock) -> Result<()> {
    close_connection(dock);
    std::fs::remove_dir_all(&dock.dir)
        .map_err(|e| Error::io(format!("cannot remove {}", dock.dir.display()), e))
}

/// Closes the dock's shared ssh connection, if one is open (also one opened by an earlier
/// version, whose socket was `~/.docker/<ip>/cm`).
pub fn close_connection(dock: &Dock) {
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
        let _ = std::process::Command::new("ssh")
            .args(["-o", &path, "-O", "exit"])
            .arg(dock.destination())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
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
