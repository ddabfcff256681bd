//! A remote engine, reached over ssh: a registered dock, or any `[user@]host[:port]`
//! running docker; and what it holds (its layer chains), asked in one ssh.

use crate::dock::{self, Dock};
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::process::{Command, Stdio};

/// How to reach the remote: the ssh command line up to and including the destination.
pub struct Remote {
    pub ssh: Vec<String>,
    pub docker: String,
    pub name: String,
}

impl Remote {
    pub fn for_dest(dest: &str, sudo: bool) -> Result<Remote> {
        let docker = if sudo { "sudo -n docker" } else { "docker" }.to_string();
        // A destination is a host, never an ssh option (`-oProxyCommand=…` would run a
        // local command); ssh also gets `--` before it below.
        if dest.starts_with('-') {
            return Err(Error::Usage(format!(
                "`{dest}` is not a destination: name a dock, or [user@]host[:port]"
            )));
        }
        match dock::find(dest) {
            Ok(d) => Ok(Remote::for_dock(&d, docker)),
            Err(e) if !looks_like_host(dest) => Err(e),
            Err(_) => {
                let (login, port) = match dest.rsplit_once(':') {
                    Some((l, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
                        (l, Some(p))
                    }
                    _ => (dest, None),
                };
                let own = dock::registry_dir()
                    .join(".dockerutils")
                    .join("known_hosts");
                let users = dirs::home_dir()
                    .unwrap_or_default()
                    .join(".ssh")
                    .join("known_hosts");
                let mut ssh: Vec<String> = [
                    "ssh",
                    "-o",
                    "StrictHostKeyChecking=accept-new",
                    "-o",
                    "ConnectTimeout=10",
                    "-o",
                    "LogLevel=error",
                ]
                .map(String::from)
                .to_vec();
                ssh.push("-o".into());
                ssh.push(format!(
                    "UserKnownHostsFile={} {}",
                    own.display(),
                    users.display()
                ));
                if let Some(port) = port {
                    ssh.extend(["-p".to_string(), port.to_string()]);
                }
                ssh.extend(["--".to_string(), login.to_string()]);
                let _ = std::fs::create_dir_all(dock::registry_dir().join(".dockerutils"));
                Ok(Remote {
                    ssh,
                    docker,
                    name: dest.to_string(),
                })
            }
        }
    }

    fn for_dock(d: &Dock, docker: String) -> Remote {
        let mut ssh = vec!["ssh".to_string()];
        ssh.extend(d.ssh_options());
        ssh.extend([
            "-o".to_string(),
            "LogLevel=error".to_string(),
            "--".to_string(),
            d.destination(),
        ]);
        Remote {
            ssh,
            docker,
            name: d.name().to_string(),
        }
    }

    pub fn command(&self, remote_script: &str) -> Command {
        let mut cmd = Command::new(&self.ssh[0]);
        cmd.args(&self.ssh[1..]).arg(remote_script);
        cmd
    }
}

fn looks_like_host(dest: &str) -> bool {
    dest.contains(['.', '@', ':']) || dest == "localhost"
}

/// What the remote has: its compressor and the layer chains of its images.
pub struct RemoteState {
    pub zstd: bool,
    pub chains: HashSet<Vec<String>>,
}

/// One ssh: is docker there, is zstd, and every image's layer chain.
pub fn probe(remote: &Remote) -> Result<RemoteState> {
    let script = format!(
        "command -v docker >/dev/null 2>&1 || {{ echo 'docker: command not found' >&2; exit 3; }}; \
         if command -v zstd >/dev/null 2>&1; then echo zstd; else echo gzip; fi; \
         {d} image ls -q --no-trunc | sort -u | xargs -r {d} image inspect --format '{{{{range .RootFS.Layers}}}}{{{{.}}}} {{{{end}}}}'",
        d = remote.docker
    );
    let out = remote
        .command(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("cannot run ssh", e))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let what = match out.status.code() {
            Some(3) => format!("{} has no docker on its PATH", remote.name),
            Some(255) => format!("cannot reach {} over ssh: {stderr}", remote.name),
            _ => format!("listing the images on {} failed: {stderr}", remote.name),
        };
        return Err(Error::Remote(what));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let zstd = lines.next() == Some("zstd");
    let mut chains = HashSet::new();
    for line in lines {
        let layers: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        for n in 1..=layers.len() {
            chains.insert(layers[..n].to_vec());
        }
    }
    Ok(RemoteState { zstd, chains })
}

/// How many bottom layers of `layers` the remote already holds (by chain).
pub fn layers_present(layers: &[String], chains: &HashSet<Vec<String>>) -> usize {
    (1..=layers.len())
        .take_while(|&n| chains.contains(&layers[..n].to_vec()))
        .last()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_bottom_layers_the_remote_holds() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut chains = HashSet::new();
        for n in 1..=2 {
            chains.insert(l(&["a", "b", "x"])[..n].to_vec());
        }
        assert_eq!(layers_present(&l(&["a", "b", "c"]), &chains), 2);
        assert_eq!(
            layers_present(&l(&["b", "c"]), &chains),
            0,
            "same layer, other chain"
        );
        assert_eq!(layers_present(&l(&["a"]), &chains), 1);
        assert!(looks_like_host("admin@10.0.0.7:2222") && !looks_like_host("gpu-box"));
    }
}
