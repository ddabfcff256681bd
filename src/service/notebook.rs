//! What run-notebook and nb-dock share: waiting until a Jupyter server answers HTTP,
//! finding its token in its output, opening the URL where there is a desktop, and running
//! the SSH tunnel (`ssh::tunnel`) through which a docked notebook is reached.

use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Does an HTTP server answer on host:port? (Any HTTP response counts: Jupyter answers
/// `/` with a redirect.)
pub(crate) fn answers(host: &str, port: u16) -> bool {
    let Some(addr) = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(s, "GET / HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 5];
    s.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

/// Polls until the server answers, `gone` says the server died (its reason), the time is
/// up, or Ctrl-C. Polls quickly at first, then every second.
pub(crate) fn wait_until_answers(
    host: &str,
    port: u16,
    limit: Duration,
    mut gone: impl FnMut() -> Option<String>,
) -> Result<Duration> {
    crate::process::install_signal_handlers();
    let start = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        if answers(host, port) {
            return Ok(start.elapsed());
        }
        if crate::process::interrupted() {
            return Err(Error::Interrupted(format!(
                "stopped waiting for the notebook server on {host}:{port}"
            )));
        }
        if let Some(why) = gone() {
            return Err(Error::Remote(why));
        }
        if start.elapsed() > limit {
            return Err(Error::Remote(format!(
                "the notebook server did not answer on {host}:{port} within {} s",
                limit.as_secs()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// The token of the last `…?token=XYZ` URL in a Jupyter server's output.
pub(crate) fn find_token(output: &str) -> Option<String> {
    output.rmatch_indices("token=").find_map(|(i, _)| {
        let token: String = output[i + 6..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        (!token.is_empty()).then_some(token)
    })
}

/// The URL to give the user: Jupyter Lab on host:port, with the token when there is one.
pub(crate) fn lab_url(host: &str, port: u16, token: Option<&str>) -> String {
    match token {
        Some(t) => format!("http://{host}:{port}/lab?token={t}"),
        None => format!("http://{host}:{port}/lab"),
    }
}

/// Opens the URL in a browser when there is a desktop (macOS, or a Linux session with a
/// display); says whether it did.
pub(crate) fn open_in_browser(url: &str) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        "xdg-open"
    } else {
        return false;
    };
    // Not waited for: a browser may run for as long as the user keeps it.
    crate::process::spawn_detached(
        crate::process::Command::new(opener)
            .arg(url)
            .stdin(crate::process::Stdio::null())
            .stdout(crate::process::Stdio::null())
            .stderr(crate::process::Stdio::null()),
    )
    .is_ok()
}

/// A free TCP port on 127.0.0.1 (for a tunnel's local end).
pub(crate) fn free_local_port(preferred: u16) -> u16 {
    if std::net::TcpListener::bind(("127.0.0.1", preferred)).is_ok() {
        return preferred;
    }
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(preferred)
}

/// A running SSH tunnel (`ssh::tunnel`) that lives as long as this value: dropping it
/// ends it. It is a control master of its own (`ssh -N`, no command), started through
/// `crate::process` in a process group of its own (a Ctrl-C at the terminal leaves it to
/// us: it is closed once the notebook has ended, not while the container is still
/// stopping), told to end if we die; the forward is asked of it through openssh
/// (`dock::session::OwnTunnel::forward`).
pub(crate) struct Tunnel {
    child: crate::process::Running,
    ctl: std::path::PathBuf,
    ended: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// How long the master has to answer on its socket.
const MASTER_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Tunnel {
    /// Starts the tunnel `inv` describes; `prog` prefixes what ssh says on stderr.
    pub(crate) fn open(prog: &str, inv: &crate::plan::Invocation) -> Result<Tunnel> {
        use crate::dock::session::OwnTunnel;
        use crate::process::{Command, Stdio};
        use std::io::BufRead;
        use std::sync::atomic::{AtomicBool, Ordering};
        let Some(remote) = inv.on_dock.as_deref() else {
            return Err(Error::Remote(format!("`{}` is no tunnel", inv.display())));
        };
        let Some((bind, local, port)) = remote.forward.clone() else {
            return Err(Error::Remote(format!("`{}` is no tunnel", inv.display())));
        };
        let ctl = crate::dock::session::short_socket_dir()?
            .join(format!("tunnel-{}-{local}.sock", std::process::id()));
        // The real ssh, not a docked shell's shim; a master that ends with its process.
        let mut cmd = Command::new(crate::dock::ssh::real_ssh_program());
        cmd.args(OwnTunnel::master_options(&ctl, "no")?)
            .args(&remote.options)
            .args(["-N", "--", &remote.dest])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = crate::process::spawn_in_own_group(&mut cmd)
            .map_err(|e| Error::io("cannot start the ssh tunnel", e))?;
        let ended = std::sync::Arc::new(AtomicBool::new(false));
        let stderr = child.stderr.take().expect("piped");
        let (who, flag) = (prog.to_string(), ended.clone());
        // Read ssh's stderr (a full pipe would stop it). Until the server listens, each
        // poll through the tunnel makes ssh say "channel N: open failed: connect failed":
        // expected, not shown.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(std::result::Result::ok)
            {
                if !line.contains("open failed") {
                    eprintln!("{who}: ssh tunnel: {line}");
                }
            }
            flag.store(true, Ordering::SeqCst);
        });
        let tunnel = Tunnel { child, ctl, ended };
        let started = std::time::Instant::now();
        while !OwnTunnel::alive(&tunnel.ctl) {
            if tunnel.ended.load(Ordering::SeqCst) || started.elapsed() > MASTER_LIMIT {
                return Err(Error::Remote(format!(
                    "the ssh tunnel to dock {} did not start (its message above)",
                    remote.name
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        OwnTunnel::forward(&tunnel.ctl, bind.as_deref(), local, port)?;
        Ok(tunnel)
    }

    /// Has the ssh ended (it failed: the dock does not answer)?
    pub(crate) fn ended(&self) -> impl Fn() -> bool + Send + 'static {
        let flag = self.ended.clone();
        move || flag.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        // SAFETY: kill(2) of our own child, not yet reaped (so its pid is not reused).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.ctl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_token_of_jupyters_url_lines() {
        let out = "[I 12:00] Jupyter Server is running at:\n[I 12:00] http://abc:8888/lab?token=0f1e2d3c\n[I]     http://127.0.0.1:8888/lab?token=0f1e2d3c\n";
        assert_eq!(find_token(out).as_deref(), Some("0f1e2d3c"));
        assert_eq!(find_token("no url here"), None);
        assert_eq!(
            lab_url("10.0.0.5", 8888, Some("t1")),
            "http://10.0.0.5:8888/lab?token=t1"
        );
    }
}
