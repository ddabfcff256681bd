//! `nb-dock [NAME]`: Jupyter Lab on a dock, reached through an SSH tunnel.
//!
//! Jupyter listens on the dock's loopback only (nothing is exposed on the dock's
//! network); a local port is forwarded to it by a control master of the tunnel's own
//! (`dock::session::OwnTunnel`: started by ssh, kept until told to end; the forward asked
//! of it through openssh). The tunnel's socket and ports are kept in
//! `~/.docker/<ip>/notebook`, and `nb-dock --stop` ends both.

use crate::dock::session::{OwnTunnel, Session};
use crate::dock::{self, Dock};
use crate::error::{Error, Result};
use crate::service::notebook;
use clap::Parser;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(
    name = "nb-dock",
    version,
    about = "Start Jupyter Lab on a dock and reach it through an SSH tunnel (--stop ends both)",
    long_about = "Start Jupyter Lab on a dock (the current one when docked), listening on the dock's \
        loopback only, forward a local port to it over SSH, wait until it answers and print (or \
        open) the URL with its token. `jupyter` runs in a login shell on the dock, so a PATH set \
        in ~/.profile (conda, pip --user) is honoured; its output goes to ~/.dockerutils/jupyter.out \
        there.",
    after_help = "Examples:\n  nb-dock gpu-box\n  nb-dock                      # the current dock\n  nb-dock gpu-box --port 9999  # local port 9999\n  nb-dock gpu-box --stop"
)]
pub(crate) struct Args {
    /// Moniker or IP of the dock [default: the current dock]
    pub name: Option<String>,
    /// Stop Jupyter on the dock and close the tunnel
    #[arg(long)]
    pub stop: bool,
    /// Local port of the tunnel [default: 8888, else a free one]
    #[arg(long)]
    pub port: Option<u16>,
    /// Port Jupyter listens on, on the dock's loopback
    #[arg(long, default_value_t = 8888)]
    pub remote_port: u16,
    /// Seconds to wait for Jupyter to answer
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Print the URL only; do not open a browser
    #[arg(long)]
    pub no_browser: bool,
}

/// The running tunnel of a dock, as recorded: the socket of its master (or, recorded by
/// an earlier version, the pid of its `ssh -N -L`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tunnel {
    ctl: Option<std::path::PathBuf>,
    pid: Option<u32>,
    local_port: u16,
    remote_port: u16,
}

fn record_path(dock: &Dock) -> std::path::PathBuf {
    dock.dir.join("notebook")
}

fn read_record(dock: &Dock) -> Option<Tunnel> {
    let text = std::fs::read_to_string(record_path(dock)).ok()?;
    let value = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::trim)
    };
    let number = |k: &str| value(k).and_then(|v| v.parse::<u32>().ok());
    Some(Tunnel {
        ctl: value("ctl").map(std::path::PathBuf::from),
        pid: number("pid"),
        local_port: number("local_port")? as u16,
        remote_port: number("remote_port")? as u16,
    })
}

/// Is the recorded tunnel still there: its master answers (or the recorded pid is still
/// our ssh, not a recycled pid)?
fn alive(t: &Tunnel) -> bool {
    if let Some(ctl) = &t.ctl {
        return OwnTunnel::alive(ctl);
    }
    let Some(pid) = t.pid else { return false };
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            let c = String::from_utf8_lossy(&c);
            c.contains("ssh")
                && c.contains(&format!("{}:127.0.0.1:{}", t.local_port, t.remote_port))
        })
        .unwrap_or(false)
}

/// Where the tunnel's master listens: `~/.docker/<ip>/nb.sock`, or in a short directory
/// of ours when that path is too long for a socket.
fn tunnel_socket(dock: &Dock) -> Result<std::path::PathBuf> {
    let path = dock.dir.join("nb.sock");
    // ssh binds `<path>.<16 random characters>` first; a socket path has 107 bytes.
    if path.as_os_str().len() + 17 <= 107 {
        return Ok(path);
    }
    Ok(crate::dock::session::short_socket_dir()?.join(format!("nb-{}.sock", dock.ip)))
}

/// A script run by the dock user's login shell over the dock's shared connection: did it
/// succeed, its stdout, its stderr.
fn on_dock(session: &Session, script: &str) -> Result<(bool, String, String)> {
    let ran = session.script(script)?;
    Ok((ran.success(), ran.stdout, ran.stderr))
}

const STATE_DIR: &str = "$HOME/.dockerutils";

fn start(args: &Args, dock: &Dock, session: &Session) -> Result<i32> {
    if let Some(t) = read_record(dock).filter(alive) {
        let (_, out, _) = on_dock(session, &format!("cat {STATE_DIR}/jupyter.out"))?;
        let url = notebook::lab_url(
            "127.0.0.1",
            t.local_port,
            notebook::find_token(&out).as_deref(),
        );
        println!(
            "Jupyter already runs on {} through a tunnel: {url}",
            dock.name()
        );
        return Ok(0);
    }
    let rp = args.remote_port;
    eprintln!(
        "Starting Jupyter Lab on {} ({})",
        dock.name(),
        dock.destination()
    );
    let script = format!(
        "mkdir -p {STATE_DIR} && cd || exit 1; \
         nohup jupyter lab --no-browser --ip=127.0.0.1 --port={rp} \
         >{STATE_DIR}/jupyter.out 2>&1 </dev/null & echo $! >{STATE_DIR}/jupyter.pid"
    );
    let (ok, _, err) = on_dock(session, &script)?;
    if !ok {
        return Err(Error::Remote(format!(
            "cannot start Jupyter on {}: {err}",
            dock.name()
        )));
    }
    let lp = args.port.unwrap_or_else(|| notebook::free_local_port(8888));
    // The real ssh, not the shim a docked shell puts first on PATH: through the shim the
    // master would be the shared one (see ssh::real_ssh_program).
    let ctl = tunnel_socket(dock)?;
    let program = crate::dock::ssh::real_ssh_program();
    if let Err(e) = OwnTunnel::open(
        std::path::Path::new(&program),
        &dock.ssh_options(),
        &dock.destination(),
        &format!("dock {}", dock.name()),
        &ctl,
        lp,
        rp,
    ) {
        let _ = stop(dock, Some(session), false);
        return Err(e);
    }
    std::fs::write(
        record_path(dock),
        format!("ctl={}\nlocal_port={lp}\nremote_port={rp}\n", ctl.display()),
    )
    .map_err(|e| Error::io("cannot record the tunnel", e))?;
    eprintln!("Waiting for Jupyter to answer through localhost:{lp}…");
    let mut last_check = Instant::now();
    let waited = notebook::wait_until_answers(
        "127.0.0.1",
        lp,
        Duration::from_secs(args.timeout),
        || {
            if last_check.elapsed() < Duration::from_secs(2) {
                return None;
            }
            last_check = Instant::now();
            if !OwnTunnel::alive(&ctl) {
                return Some(format!("the ssh tunnel to {} ended", dock.name()));
            }
            let check = format!(
                "kill -0 $(cat {STATE_DIR}/jupyter.pid) 2>/dev/null || tail -n 5 {STATE_DIR}/jupyter.out"
            );
            match on_dock(session, &check) {
                Ok((_, out, _)) if !out.trim().is_empty() => Some(format!(
                    "Jupyter stopped on {}: {}",
                    dock.name(),
                    out.trim()
                )),
                _ => None,
            }
        },
    );
    if let Err(e) = waited {
        let _ = stop(dock, Some(session), false);
        return Err(match e {
            Error::Remote(m) => Error::Remote(format!(
                "{m}\n(is Jupyter installed on the dock, on the PATH of a login shell? \
                 `ssh-dock {} -- sh -lc \"jupyter --version\"` tells)",
                dock.name()
            )),
            other => other,
        });
    }
    let (_, out, _) = on_dock(session, &format!("cat {STATE_DIR}/jupyter.out"))?;
    let url = notebook::lab_url("127.0.0.1", lp, notebook::find_token(&out).as_deref());
    println!("Jupyter Lab on {}: {url}", dock.name());
    println!("(stop it with: nb-dock {} --stop)", dock.name());
    if !args.no_browser {
        notebook::open_in_browser(&url);
    }
    Ok(0)
}

/// Stops Jupyter on the dock and the local tunnel; `loud` says what it did.
fn stop(dock: &Dock, session: Option<&Session>, loud: bool) -> Result<i32> {
    let mut did = vec![];
    if let Some(t) = read_record(dock) {
        if alive(&t) {
            match (&t.ctl, t.pid) {
                (Some(ctl), _) => OwnTunnel::close(ctl),
                // SAFETY: kill(2) of the tunnel ssh an earlier version started (checked
                // by its command line).
                (None, Some(pid)) => unsafe {
                    libc::kill(pid as i32, libc::SIGTERM);
                },
                (None, None) => {}
            }
            did.push(format!("closed the tunnel on localhost:{}", t.local_port));
        }
        let _ = std::fs::remove_file(record_path(dock));
    }
    // The local tunnel is closed above even when the dock does not answer.
    let owned;
    let session = match session {
        Some(session) => session,
        None => {
            owned = Session::shared(dock)?;
            &owned
        }
    };
    let (_, out, _) = on_dock(
        session,
        &format!(
            "p=$(cat {STATE_DIR}/jupyter.pid 2>/dev/null) && kill $p 2>/dev/null && echo stopped; \
             rm -f {STATE_DIR}/jupyter.pid"
        ),
    )?;
    if out.contains("stopped") {
        did.push("stopped Jupyter".into());
    }
    if loud {
        if did.is_empty() {
            println!("No notebook was running on {}", dock.name());
        } else {
            println!("{}: {}", dock.name(), did.join(", "));
        }
    }
    Ok(0)
}

pub(crate) fn main(args: Args) -> i32 {
    // One session for every command on the dock (the poll while Jupyter starts included):
    // finding the shared connection costs two ssh processes, a command then a channel.
    let result = dock::named_or_current(args.name.as_deref()).and_then(|dock| {
        if args.stop {
            stop(&dock, None, true)
        } else {
            start(&args, &dock, &Session::shared(&dock)?)
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => super::fail("nb-dock", &e),
    }
}
