//! The engines an image moves between: this machine's, or a remote one reached over ssh
//! (a registered dock, or any `[user@]host[:port]` running docker); and what an engine
//! holds (its layer chains) and has (zstd, GNU tar), asked in one command.
//!
//! A remote engine is reached through the SSH layer (`dock::session::Mux`: openssh's
//! native multiplexing over the control master of `ssh OPTIONS -- DEST`, a registered
//! dock's shared one or one for a plain host), connected on first use and shared by every
//! command and stream of the transfer. Each remote command is one `sh -c SCRIPT` whose
//! words `plan::quote` quoted; [`Remote::shown`] is the same as an `ssh` command line a
//! user can paste.

use crate::dock::session::Mux;
use crate::dock::{self, Dock};
use crate::error::{Error, Result};
use crate::plan::quote;
use crate::process::Command;
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

/// How to reach the remote: ssh with these options to this destination.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    /// ssh's options (`-o …`, `-p PORT`): a registered dock's (its shared connection), or
    /// those of a plain `[user@]host[:port]`.
    pub options: Vec<String>,
    /// `[user@]host`, given to ssh after `--`.
    pub dest: String,
    pub docker: String,
    pub name: String,
    /// The user, host and port it reaches (22 unless given; the user name here unless
    /// given, as ssh does): two spellings of one dock reach the same.
    reach: (String, String, u16),
    /// A plain host's: the master is this command's own (its options say where), ended
    /// when the last clone of this value drops.
    own_master: bool,
    /// Its connection, made on first use and shared by the clones of this value (an
    /// interruption while connecting is remembered as one).
    mux: Arc<OnceLock<Connected>>,
}

/// A remote's connection, or why there is none (`true`: an interruption).
type Connected = std::result::Result<Arc<Mux>, (bool, String)>;

impl PartialEq for Remote {
    fn eq(&self, other: &Remote) -> bool {
        (
            &self.options,
            &self.dest,
            &self.docker,
            &self.name,
            &self.reach,
        ) == (
            &other.options,
            &other.dest,
            &other.docker,
            &other.name,
            &other.reach,
        )
    }
}

impl Eq for Remote {}

impl Remote {
    /// A registered dock (moniker or address), else `[user@]host[:port]`. Checked here,
    /// before anything runs: never an ssh option, and a host form only of a user name,
    /// an address or host name, and a port.
    pub(crate) fn for_dest(dest: &str, sudo: bool) -> Result<Remote> {
        let docker = if sudo { "sudo -n docker" } else { "docker" }.to_string();
        // A destination is a host, never an ssh option (`-oProxyCommand=…` would run a
        // local command); ssh also gets `--` before it below.
        if dest.starts_with('-') {
            return Err(Error::Usage(format!(
                "{} is not a destination: name a dock, or [user@]host[:port]",
                quote(dest)
            )));
        }
        match dock::find(dest) {
            Ok(d) => Ok(Remote::for_dock(&d, docker)),
            Err(e) if !looks_like_host(dest) => Err(e),
            Err(_) => {
                let HostDest { user, host, port } = split_host(dest)?;
                let own = dock::registry_dir()
                    .join(".dockerutils")
                    .join("known_hosts");
                let users = dirs::home_dir()
                    .unwrap_or_default()
                    .join(".ssh")
                    .join("known_hosts");
                let mut options: Vec<String> = [
                    "-o",
                    "StrictHostKeyChecking=accept-new",
                    "-o",
                    "ConnectTimeout=10",
                    "-o",
                    "LogLevel=error",
                ]
                .map(String::from)
                .to_vec();
                options.push("-o".into());
                options.push(format!(
                    "UserKnownHostsFile={} {}",
                    own.display(),
                    users.display()
                ));
                // A control master of the command's own (the SSH layer's commands are its
                // channels): in the printed lines too, which then paste as they run.
                options.extend(crate::dock::session::plain_host_options()?);
                if let Some(port) = port {
                    options.extend(["-p".to_string(), port.to_string()]);
                }
                let login = match user {
                    Some(user) => format!("{user}@{host}"),
                    None => host.to_string(),
                };
                let _ = std::fs::create_dir_all(dock::registry_dir().join(".dockerutils"));
                let user = user.map_or_else(crate::project::user_name, str::to_string);
                let port = port.unwrap_or(22);
                Ok(Remote {
                    options,
                    dest: login,
                    docker,
                    name: dest.to_string(),
                    reach: (user, host.to_ascii_lowercase(), port),
                    own_master: true,
                    mux: Arc::default(),
                })
            }
        }
    }

    fn for_dock(d: &Dock, docker: String) -> Remote {
        let mut options = d.ssh_options();
        options.extend(["-o".to_string(), "LogLevel=error".to_string()]);
        Remote {
            options,
            dest: d.destination(),
            docker,
            name: d.name().to_string(),
            reach: (d.user.clone(), d.ip.to_ascii_lowercase(), 22),
            own_master: false,
            mux: Arc::default(),
        }
    }

    /// Its connection: the control master's, started if none answers (once: a failure
    /// is remembered for the rest of the transfer).
    pub(crate) fn mux(&self) -> Result<Arc<Mux>> {
        self.mux
            .get_or_init(|| {
                Mux::connect(&self.options, &self.dest, &self.name, None, self.own_master)
                    .map(Arc::new)
                    .map_err(|e| (matches!(e, Error::Interrupted(_)), e.to_string()))
            })
            .clone()
            .map_err(|(interrupted, e)| {
                if interrupted {
                    Error::Interrupted(format!("connecting to {}", self.name))
                } else {
                    Error::Remote(e)
                }
            })
    }

    /// `ssh OPTIONS EXTRA… -- DEST [SCRIPT]`, SCRIPT run by the remote's shell.
    pub(crate) fn argv(&self, extra: &[&str], remote_script: Option<&str>) -> Vec<String> {
        let mut argv = vec!["ssh".to_string()];
        argv.extend(self.options.iter().cloned());
        argv.extend(extra.iter().map(|s| s.to_string()));
        argv.extend(["--".to_string(), self.dest.clone()]);
        argv.extend(remote_script.map(str::to_owned));
        argv
    }

    /// `ssh … 'SCRIPT'` as it can be pasted into a shell.
    pub(crate) fn shown(&self, remote_script: &str) -> String {
        self.argv(&[], Some(remote_script))
            .iter()
            .map(|w| quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether `self` and `other` are the same engine: the same user on the same host
    /// and port, however each was named (a moniker, `user@ip`, `user@ip:22`).
    pub(crate) fn same_as(&self, other: &Remote) -> bool {
        self.reach == other.reach
    }
}

fn looks_like_host(dest: &str) -> bool {
    dest.contains(['.', '@', ':']) || dest == "localhost"
}

/// A destination of the form `[user@]host[:port]`.
#[derive(Debug, PartialEq, Eq)]
struct HostDest<'a> {
    user: Option<&'a str>,
    /// An address (IPv6 without its brackets) or host name.
    host: &'a str,
    port: Option<u16>,
}

/// `[user@]host[:port]`, each part checked: ssh is given nothing else. An IPv6 address
/// is written `[::1]` (then a port may follow) or bare (`::1`, no port), as ssh and scp
/// take them.
fn split_host(dest: &str) -> Result<HostDest<'_>> {
    let wrong = || {
        Error::Usage(format!(
            "{} is not a destination: name a dock, or [user@]host[:port] (a user name, an \
             address or host name, a port number; an IPv6 address in brackets when a port \
             follows)",
            quote(dest)
        ))
    };
    let (user, rest) = match dest.rsplit_once('@') {
        Some((user, rest)) => {
            if !dock::valid_user(user) {
                return Err(wrong());
            }
            (Some(user), rest)
        }
        None => (None, dest),
    };
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(wrong)?;
        if !host.contains(':') {
            return Err(wrong());
        }
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(wrong)?)),
        }
    } else if rest.matches(':').count() > 1 {
        (rest, None)
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if p.chars().all(|c| c.is_ascii_digit()) => match p.parse::<u16>() {
            Ok(p @ 1..) => Some(p),
            _ => return Err(wrong()),
        },
        Some(_) => return Err(wrong()),
    };
    if dock::check_address(host).is_err() && host != "localhost" {
        return Err(wrong());
    }
    Ok(HostDest { user, host, port })
}

/// An engine: this machine's, or a remote one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Engine {
    Local,
    Remote(Remote),
}

/// What this machine's engine is called in messages.
pub(crate) const HERE: &str = "this machine";

impl Engine {
    pub(crate) fn name(&self) -> &str {
        match self {
            Engine::Local => HERE,
            Engine::Remote(r) => &r.name,
        }
    }

    pub(crate) fn docker(&self) -> &str {
        match self {
            Engine::Local => "docker",
            Engine::Remote(r) => &r.docker,
        }
    }

    /// `script` run by a POSIX shell there, stdin closed: its exit code (`None`: it had
    /// none) and output.
    pub(crate) fn output(&self, script: &str) -> Result<(Option<i32>, String, String)> {
        match self {
            Engine::Local => {
                let out = crate::process::output(
                    Command::new("sh")
                        .arg("-c")
                        .arg(script)
                        .stdin(crate::process::Stdio::null()),
                )
                .map_err(|e| Error::spawn("sh", e))?;
                Ok((
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                    String::from_utf8_lossy(&out.stderr).trim().to_string(),
                ))
            }
            Engine::Remote(r) => {
                let ran = r.mux()?.script_output(script)?;
                Ok((ran.code, ran.stdout, ran.stderr))
            }
        }
    }
}

/// How the engine's side compresses and decompresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// zstd with `--adapt` (1.3.6 and later): the level follows the link.
    ZstdAdapt,
    Zstd,
    Gzip,
}

impl Codec {
    pub(crate) fn is_zstd(self) -> bool {
        self != Codec::Gzip
    }

    /// The command that decompresses on that side.
    pub(crate) fn decompress(self) -> &'static str {
        if self.is_zstd() {
            "zstd -dc"
        } else {
            "gzip -dc"
        }
    }

    /// The command that compresses on that side (a dock sending an image).
    pub(crate) fn compress(self) -> &'static str {
        match self {
            // From a fast level: --adapt raises it while the link makes zstd wait, but
            // from its default (3) it is the bottleneck on a fast link, behind the
            // dock's `docker save` (a pull back of 231 MB over loopback: ~0.25 s).
            Codec::ZstdAdapt => "zstd -q -c --fast=1 --adapt",
            Codec::Zstd => "zstd -q -c",
            Codec::Gzip => "gzip -1 -c",
        }
    }
}

/// What an engine has and holds.
pub(crate) struct EngineState {
    pub codec: Codec,
    /// GNU tar is there (`tar --delete` can leave layers out of a stream).
    pub gnu_tar: bool,
    /// The layer chains of its images (when asked).
    pub chains: HashSet<Vec<String>>,
    /// `docker image inspect`'s JSON of the image asked about.
    pub image: Option<serde_json::Value>,
    /// Its `uname -m` (when an image was asked about).
    pub arch: Option<String>,
    /// It has the image of the reader asked about (transfer::dock_reader).
    pub reader: bool,
}

/// What the probe asks.
pub(crate) enum Ask<'a> {
    /// The layer chains of every image (a destination).
    Chains,
    /// One image's inspect (a source), and whether the engine has the reader's image
    /// with this tag.
    Image(&'a str, Option<&'a str>),
}

/// One command there: is docker there, zstd, GNU tar; and the chains or the image.
pub(crate) fn probe(engine: &Engine, ask: Ask) -> Result<EngineState> {
    let d = engine.docker();
    let what = match ask {
        // An image removed between the listing and its inspection (another user of the
        // engine) is no error: what is listed is what is there.
        Ask::Chains => format!(
            "ids=$({d} image ls -q --no-trunc) || exit 5; printf '%s\\n' \"$ids\" | sort -u | \
             xargs -r {d} image inspect --format '{{{{range .RootFS.Layers}}}}{{{{.}}}} {{{{end}}}}' 2>/dev/null; true"
        ),
        Ask::Image(image, reader) => format!(
            "{}; printf 'image '; {d} image inspect --format '{{{{json .}}}}' {} || exit 4",
            super::dock_reader::probe_script(engine, reader),
            quote(image)
        ),
    };
    let script = format!(
        "command -v docker >/dev/null 2>&1 || {{ echo 'docker: command not found' >&2; exit 3; }}; \
         if zstd -q --adapt -c </dev/null >/dev/null 2>&1; then echo zstd-adapt; \
         elif command -v zstd >/dev/null 2>&1; then echo zstd; else echo gzip; fi; \
         if tar --version 2>/dev/null | grep -q 'GNU tar'; then echo gnutar; else echo tar; fi; \
         {what}"
    );
    let (code, stdout, stderr) = engine.output(&script)?;
    let name = engine.name();
    if code != Some(0) {
        let what = match (code, &ask) {
            (Some(3), _) => format!("{name} has no docker on its PATH"),
            (Some(4), Ask::Image(image, _)) => {
                format!("image `{image}` is not on {name} ({stderr})")
            }
            _ => format!("listing the images on {name} failed: {stderr}"),
        };
        return Err(Error::Remote(what));
    }
    let mut lines = stdout.lines();
    let codec = match lines.next() {
        Some("zstd-adapt") => Codec::ZstdAdapt,
        Some("zstd") => Codec::Zstd,
        _ => Codec::Gzip,
    };
    let gnu_tar = lines.next() == Some("gnutar");
    let mut chains = HashSet::new();
    let mut image = None;
    let mut arch = None;
    let mut reader = false;
    for line in lines {
        if let Some(a) = line.strip_prefix("arch ") {
            arch = Some(a.to_owned());
            continue;
        }
        if line == "reader" {
            reader = true;
            continue;
        }
        if let Some(json) = line.strip_prefix("image ") {
            image = Some(
                serde_json::from_str(json)
                    .map_err(|e| Error::Remote(format!("docker image inspect on {name}: {e}")))?,
            );
            continue;
        }
        let layers: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        for n in 1..=layers.len() {
            chains.insert(layers[..n].to_vec());
        }
    }
    Ok(EngineState {
        codec,
        gnu_tar,
        chains,
        image,
        arch,
        reader,
    })
}

/// How many bottom layers of `layers` the engine already holds (by chain).
pub(crate) fn layers_present(layers: &[String], chains: &HashSet<Vec<String>>) -> usize {
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

    #[test]
    fn a_host_destination_is_a_user_a_host_and_a_port_only() {
        let dest = |user, host, port| HostDest { user, host, port };
        assert_eq!(
            split_host("admin@10.0.0.7:2222").unwrap(),
            dest(Some("admin"), "10.0.0.7", Some(2222))
        );
        assert_eq!(
            split_host("gpu.example.com").unwrap(),
            dest(None, "gpu.example.com", None)
        );
        assert_eq!(
            split_host("ann@corp@gpu.example.com").unwrap(),
            dest(Some("ann@corp"), "gpu.example.com", None)
        );
        assert_eq!(
            split_host("ann@[::1]:2222").unwrap(),
            dest(Some("ann"), "::1", Some(2222))
        );
        assert_eq!(
            split_host("[fd00::7]").unwrap(),
            dest(None, "fd00::7", None)
        );
        assert_eq!(
            split_host("ann@fd00::7").unwrap(),
            dest(Some("ann"), "fd00::7", None)
        );
        for bad in [
            "u@[::1]x",
            "u@[::1]:",
            "u@[10.0.0.7]:22",
            "u@[::1",
            "u@10.0.0.7:",
            "x;touch /tmp/F@10.0.0.7",
            "$(touch F)@10.0.0.7",
            "u@host name",
            "u@10.0.0.7:0",
            "u@10.0.0.7:99999",
            "'u'@10.0.0.7",
            "u@../etc",
        ] {
            assert!(split_host(bad).is_err(), "{bad}");
        }
    }
}
