//! `run-notebook [-g]`: Jupyter on the project, here or on the current dock.
//!
//! With `docker/notebook`, it builds that image (`-f`: base first) and runs it with its cfg
//! section, as `build-image -f notebook` then `run-image notebook` would. Without one, it
//! runs a default notebook image on the current directory. Docked, the project is synced
//! up before and down after. Once the server answers, the URL with its token is printed
//! (and opened where there is a desktop).
//!
//! Jupyter's token is all that guards a notebook, which runs code as you with your
//! credentials: the server is published on 127.0.0.1 unless `--bind` says otherwise, and
//! `~/.aws` is mounted read-only. Docked, the container is published on the dock's
//! 127.0.0.1 only and reached through an SSH tunnel from a local port (as nb-dock does),
//! which is a step of the plan and is closed when the notebook ends.

use crate::context::Context;
use crate::dock::sync;
use crate::dock::{self, Dock};
use crate::engine;
use crate::error::Result;
use crate::plan::{Invocation, Plan, Step};
use crate::project::Project;
use crate::project::build;
use crate::project::cfg::keys;
use crate::project::run;
use clap::Parser;
use std::path::Path;

pub(crate) const DEFAULT_IMAGE: &str = "quay.io/jupyter/scipy-notebook:latest";
pub(crate) const DEFAULT_GPU_IMAGE: &str = "quay.io/jupyter/pytorch-notebook:cuda12-latest";
const LOOPBACK: &str = "127.0.0.1";
/// The port the default image's 8888 is published on when docked and the tunnel's local
/// port are preferred.
const DEFAULT_PORT: u16 = 8888;

#[derive(Debug, Parser)]
#[command(
    name = "run-notebook",
    version,
    about = "Run Jupyter Lab on the project: its docker/notebook image, or a default notebook image",
    long_about = "Run Jupyter Lab on the project. With docker/notebook: build it (base first) and run it \
        with its dockerutils.cfg section. Without: run a default notebook image (the Jupyter \
        project's scipy-notebook; -g: pytorch-notebook with CUDA) with the current directory at \
        /home/jovyan/project, ~/.aws (read-only) and /data mounted when they exist, on port 8888 \
        of 127.0.0.1 (--bind to widen). Docked, the project is synced to the dock before and back \
        after, the notebook is published on the dock's 127.0.0.1 only, and reached through an \
        SSH tunnel from a local port, closed when the notebook ends. The URL with its token is \
        printed once the server answers.",
    after_help = "Examples:\n  run-notebook\n  run-notebook -g                    # GPU\n  run-notebook --bind 0.0.0.0        # reachable from other machines (see --bind)\n  source dock gpu-box && run-notebook\n\n\
Default image: [run_notebook] image= (gpu_image= for -g) in dockerutils.cfg, or\n\
DOCKERUTILS_NOTEBOOK_IMAGE / DOCKERUTILS_NOTEBOOK_GPU_IMAGE. DOCKER_DS_DONT_PULL=1: do not\n\
pull it first. DOCKER_DS_DIFFS=1: passed to the container (-e DOCKER_DS_DIFFS=1)."
)]
pub(crate) struct Args {
    /// GPU: the GPU image and --runtime=nvidia -e NVIDIA_VISIBLE_DEVICES=all
    #[arg(short = 'g', long = "use-gpu", visible_alias = "gpu")]
    pub gpu: bool,
    /// Port of the URL: the host port of the default image's 8888; docked, the local end
    /// of the SSH tunnel [default: 8888; docked, a free one when 8888 is taken]
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    /// Docked: the port on the dock's 127.0.0.1 that the default image's 8888 is
    /// published on (the tunnel's far end)
    #[arg(long, default_value_t = 8888, value_name = "PORT")]
    pub remote_port: u16,
    /// Address the notebook listens on: the host address its port is published on
    /// (docked: the tunnel's local end). The default, 127.0.0.1, keeps it to this
    /// machine: anyone who can reach the port and learns the token runs code as you, with
    /// your mounted files and credentials. 0.0.0.0 (all interfaces) or a LAN address
    /// opens it to the network. A cfg `ports=` that names its own address is kept
    #[arg(long, value_name = "ADDR", default_value = LOOPBACK)]
    pub bind: String,
    /// Print the URL only; do not open a browser
    #[arg(long)]
    pub no_browser: bool,
    /// Print the commands, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Two phases: `prepare` (build, sync-up) must succeed before `run` (the container, then
/// sync-down in its cleanup, which runs however the container ends).
#[derive(Debug, Default)]
pub(crate) struct NotebookPlan {
    pub prepare: Plan,
    /// Docked: `ssh -N -L` from a local port to the container's port on the dock's
    /// loopback, started after `prepare` and ended after `run`.
    pub tunnel: Option<Invocation>,
    pub run: Plan,
    /// Where the server will answer, and the container to read the token from.
    pub watch: Option<Watch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Watch {
    pub host: String,
    pub port: u16,
    pub container: String,
}

impl NotebookPlan {
    /// The `--dry-run` listing: the preparation, the tunnel (in the background, ended with
    /// the notebook), the run, and where the URL will be.
    pub(crate) fn script(&self) -> String {
        let mut out = self.prepare.script();
        if let Some(tunnel) = &self.tunnel {
            out.push_str(&format!(
                "{} &  # the SSH tunnel, closed when the notebook ends\n",
                tunnel.display()
            ));
        }
        out.push_str(&self.run.script());
        if self.tunnel.is_some() {
            out.push_str("kill %1  # the tunnel\n");
        }
        if let Some(w) = &self.watch {
            out.push_str(&format!(
                "# once it answers: {} (token from the output of {})\n",
                crate::service::notebook::lab_url(&w.host, w.port, Some("…")),
                w.container
            ));
        }
        out
    }
}

/// `-p` host address of `addr` (`[::1]` for IPv6).
fn publish_addr(addr: &str) -> String {
    if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.to_string()
    }
}

fn is_wildcard(addr: &str) -> bool {
    matches!(addr, "" | "0.0.0.0" | "::")
}

fn section_value(project: Option<&Project>, key: &str) -> Result<Option<String>> {
    match project {
        Some(p) if p.cfg.has_section(keys::RUN_NOTEBOOK) => p.cfg.get(keys::RUN_NOTEBOOK, key),
        _ => Ok(None),
    }
}

/// The default image: the cfg, then the environment, then ours.
pub(crate) fn default_image(project: Option<&Project>, ctx: &Context, gpu: bool) -> Result<String> {
    let (key, var, fallback) = if gpu {
        (
            keys::GPU_IMAGE,
            "DOCKERUTILS_NOTEBOOK_GPU_IMAGE",
            DEFAULT_GPU_IMAGE,
        )
    } else {
        (keys::IMAGE, "DOCKERUTILS_NOTEBOOK_IMAGE", DEFAULT_IMAGE)
    };
    Ok(section_value(project, key)?
        .filter(|v| !v.is_empty())
        .or_else(|| ctx.var(var).map(str::to_string))
        .unwrap_or_else(|| fallback.to_string()))
}

/// `date "+%Y_%m_%d_%H.%M.%S"`, as 2.0.7's container names.
fn date_stamp(ctx: &Context) -> String {
    // ctx.timestamp() is yy-mm-dd_HH.MM.SS local time.
    let t = ctx.timestamp();
    format!("20{}", t.replacen('-', "_", 2))
}

/// A `-p` of container port 8888 in a `docker run`: which word, its text before the
/// spec (`--publish=`, `-p` or nothing), the host ip, the host port, and the protocol.
struct Publish8888 {
    word: usize,
    lead: String,
    ip: Option<String>,
    port: u16,
    proto: Option<String>,
}

fn find_8888(inv: &Invocation) -> Option<Publish8888> {
    let argv = inv.argv();
    argv.iter().enumerate().find_map(|(i, a)| {
        let (word, lead, spec) = match *a {
            "-p" | "--publish" => (i + 1, "", argv.get(i + 1).copied()?),
            _ => {
                let lead = ["--publish=", "-p"]
                    .into_iter()
                    .find(|l| a.starts_with(l))?;
                (i, lead, &a[lead.len()..])
            }
        };
        let (spec, proto) = match spec.split_once('/') {
            Some((s, p)) => (s, Some(p.to_string())),
            None => (spec, None),
        };
        let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
        // parts: [container, host port, host ip]
        if parts.first() != Some(&"8888") || parts.len() < 2 {
            return None;
        }
        let port = parts[1].parse().ok()?;
        let ip = parts.get(2).map(|s| s.trim_matches(['[', ']']).to_string());
        Some(Publish8888 {
            word,
            lead: lead.to_string(),
            ip,
            port,
            proto,
        })
    })
}

/// Where a `docker run`'s `-p` publishes container port 8888: (host ip, host port).
pub(crate) fn published_8888(inv: &Invocation) -> Option<(Option<String>, u16)> {
    find_8888(inv).map(|p| (p.ip, p.port))
}

/// The `docker run` with its `-p …:8888` published on `addr`: always when `force`,
/// else only when the `-p` names no address (a cfg that names one is kept).
fn publish_8888_on(mut inv: Invocation, addr: &str, force: bool) -> Invocation {
    if let Some(p) = find_8888(&inv)
        && (force || p.ip.as_deref().is_none_or(str::is_empty))
    {
        let proto = p.proto.map(|p| format!("/{p}")).unwrap_or_default();
        inv.args[p.word].value = format!("{}{}:{}:8888{proto}", p.lead, publish_addr(addr), p.port);
    }
    inv
}

fn container_name(inv: &Invocation) -> Option<String> {
    let argv = inv.argv();
    argv.iter()
        .position(|a| *a == "--name")
        .and_then(|i| argv.get(i + 1))
        .map(|s| s.to_string())
}

pub(crate) fn plan(
    project: Option<&Project>,
    here: &Path,
    args: &Args,
    ctx: &Context,
    docked: Option<&Dock>,
) -> Result<NotebookPlan> {
    let mut out = NotebookPlan::default();
    let own = project.filter(|p| p.docker_dir().join("notebook").is_dir());
    let run_inv = if let Some(project) = own {
        let build = build::Request {
            image: "notebook".into(),
            force_build_base: true,
            image_name: None,
            image_tag: None,
            pull_base: false,
            with_deps: false,
            if_changed: false,
            jobs: 1,
        };
        let built = build::plan(project, &build, ctx)?;
        out.prepare.steps.extend(built.steps);
        out.prepare.cleanup.extend(built.cleanup);
        let run = run::Request {
            image: "notebook".into(),
            args: None,
            keep: false,
            command: None,
            network: None,
            use_gpu: args.gpu,
            env: vec![],
            latest: false,
            logging: Default::default(),
        };
        let ran = run::plan(project, &run, ctx)?;
        // The cfg's ports (the `notebook` template says `-p 8888:8888`) are published on
        // the address run-notebook binds; docked, on the dock's loopback whatever they
        // say, since the notebook is reached through the tunnel.
        let (addr, force) = match docked {
            Some(_) => (LOOPBACK, true),
            None => (args.bind.as_str(), false),
        };
        for step in ran.steps {
            out.run.steps.push(match step {
                Step::Run(mut inv) if inv.is_docker && inv.argv().first() == Some(&"run") => {
                    // The watch reads the token from the container by the name planned:
                    // no other name is tried (a notebook started in the same second
                    // would want the same port too).
                    inv.unique_name = None;
                    Step::Run(publish_8888_on(inv, addr, force))
                }
                other => other,
            });
        }
        // The container's `docker run`: the plan's last step (a docked run checks its
        // mounts on the dock first).
        out.run
            .invocations()
            .filter(|inv| inv.is_docker && inv.argv().first() == Some(&"run"))
            .last()
            .cloned()
    } else {
        let image = default_image(project, ctx, args.gpu)?;
        if ctx.var("DOCKER_DS_DONT_PULL").is_none_or(|v| v == "pull") {
            out.prepare.run(engine::docker(here).args(["pull", &image]));
        }
        let mut inv = engine::docker(here).arg("run");
        if args.gpu {
            inv = inv.args(run::GPU_ARGS);
        }
        inv = inv.args(["--init", "--name"]).arg(format!(
            "{}_notebook_{}",
            ctx.user,
            date_stamp(ctx)
        ));
        if ctx.var("DOCKER_DS_DIFFS").is_some_and(|v| v != "no_diffs") {
            inv = inv.args(["-e", "DOCKER_DS_DIFFS=1"]);
        }
        inv = inv.args(["-e", "NOTEBOOK_MODE=lab"]);
        if docked.is_none() {
            for name in run::AWS_ENV {
                if ctx.var(name).is_some() {
                    inv = inv.args(["-e", name]);
                }
            }
        }
        inv = inv.arg("--rm");
        inv = inv.args(run::tty_rule(vec!["-it".into()], ctx.stdin_is_tty));
        let mount = |source: &str, target: &str| {
            vec![
                "--mount".to_string(),
                format!("type=bind,source={source},target={target}"),
            ]
        };
        match docked {
            None => {
                inv = inv.args(mount(&here.to_string_lossy(), "/home/jovyan/project"));
                if Path::new("/data").is_dir() {
                    inv = inv.args(["-v", "/data:/data"]);
                }
                // Read-only: a third-party image gets to read the credentials it needs,
                // not to change them (or plant a credential_process).
                let aws = Path::new(&ctx.home).join(".aws");
                if aws.is_dir() {
                    let mut words = mount(&aws.to_string_lossy(), "/home/jovyan/.aws");
                    words[1].push_str(",readonly");
                    inv = inv.args(words);
                }
            }
            Some(dock) => {
                let remote = dock.code_dir(&ctx.user, here);
                inv = inv.args(mount(&remote, "/home/jovyan/project"));
                inv = inv.args(["-v", "/data:/data"]);
            }
        }
        let publish = match docked {
            Some(_) => format!("{LOOPBACK}:{}:8888", args.remote_port),
            None => format!(
                "{}:{}:8888",
                publish_addr(&args.bind),
                args.port.unwrap_or(DEFAULT_PORT)
            ),
        };
        inv = inv.args(["-p", &publish]).arg(image);
        out.run.run(inv.clone());
        Some(inv)
    };
    if let Some(dock) = docked {
        out.prepare
            .steps
            .extend(sync::plan(dock, sync::Direction::Up, ctx)?.steps);
        out.run
            .cleanup
            .extend(sync::plan(dock, sync::Direction::Down, ctx)?.steps);
    }
    if let Some(inv) = run_inv
        && let (Some((ip, port)), Some(container)) = (published_8888(&inv), container_name(&inv))
    {
        let (host, port) = match (docked, ip) {
            (Some(dock), _) => {
                // Never the dock's address: its port is on its loopback only.
                let local = args
                    .port
                    .unwrap_or_else(|| crate::service::notebook::free_local_port(DEFAULT_PORT));
                out.tunnel = Some(crate::dock::ssh::tunnel(
                    dock,
                    Some(&args.bind),
                    local,
                    port,
                ));
                let host = if is_wildcard(&args.bind) {
                    LOOPBACK
                } else {
                    &args.bind
                };
                (host.to_string(), local)
            }
            (None, Some(ip)) if !is_wildcard(&ip) => (ip, port),
            _ => (LOOPBACK.into(), port),
        };
        out.watch = Some(Watch {
            host,
            port,
            container,
        });
    }
    Ok(out)
}

/// In the background: once the server answers, print the URL with the token from the
/// container's output, and open it.
fn watch(w: Watch, open: bool, tunnel_ended: Option<Box<dyn Fn() -> bool + Send>>) {
    std::thread::spawn(move || {
        let limit = std::time::Duration::from_secs(600);
        let gone = || {
            let ended = tunnel_ended.as_ref().is_some_and(|ended| ended());
            ended.then(|| "the SSH tunnel ended: the notebook is not reachable from here".into())
        };
        match crate::service::notebook::wait_until_answers(&w.host, w.port, limit, gone) {
            Ok(_) => {}
            Err(e @ crate::error::Error::Remote(_)) => {
                crate::error::report("run-notebook", &e);
                return;
            }
            Err(_) => return,
        }
        let logs = crate::process::output(
            crate::process::Command::new("docker").args(["logs", &w.container]),
        )
        .map(|o| {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            text
        })
        .unwrap_or_default();
        let url = crate::service::notebook::lab_url(
            &w.host,
            w.port,
            crate::service::notebook::find_token(&logs).as_deref(),
        );
        eprintln!("\nrun-notebook: Jupyter is ready: {url}\n");
        if open {
            crate::service::notebook::open_in_browser(&url);
        }
    });
}

pub(crate) fn main(args: Args) -> i32 {
    let ctx = Context::from_process();
    let here = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let project = Project::discover_here(&ctx.user).ok();
    let planned = (|| {
        let docked = match ctx.var("DOCKER_IP") {
            Some(_) => Some(dock::named_or_current(None)?),
            None => None,
        };
        plan(project.as_ref(), &here, &args, &ctx, docked.as_ref())
    })();
    let planned = match planned {
        Ok(p) => p,
        Err(e) => return super::fail("run-notebook", &e),
    };
    if args.dry_run {
        print!("{}", planned.script());
        return 0;
    }
    let rc = crate::exec::execute("run-notebook", &planned.prepare);
    if rc != 0 {
        return rc;
    }
    let tunnel = match &planned.tunnel {
        None => None,
        Some(inv) => {
            eprintln!("{}  # tunnel", inv.display());
            match crate::service::notebook::Tunnel::open("run-notebook", inv) {
                Ok(t) => Some(t),
                Err(e) => return super::fail("run-notebook", &e),
            }
        }
    };
    if let Some(w) = planned.watch.clone() {
        let ended = tunnel
            .as_ref()
            .map(|t| Box::new(t.ended()) as Box<dyn Fn() -> bool + Send>);
        watch(w, !args.no_browser, ended);
    }
    let rc = crate::exec::execute("run-notebook", &planned.run);
    // However the notebook ended (Ctrl-C too: exec survives it), the tunnel goes with it.
    drop(tunnel);
    rc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_where_8888_is_published() {
        let inv = |a: &[&str]| Invocation::new("docker", "/".into()).args(a.iter().copied());
        assert_eq!(
            published_8888(&inv(&["run", "-p", "8888:8888", "img"])),
            Some((None, 8888))
        );
        assert_eq!(
            published_8888(&inv(&["run", "-p", "127.0.0.1:9999:8888/tcp"])),
            Some((Some("127.0.0.1".into()), 9999))
        );
        assert_eq!(
            published_8888(&inv(&["run", "--publish=8000:8888"])),
            Some((None, 8000))
        );
        assert_eq!(published_8888(&inv(&["run", "-p", "8080:80"])), None);
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use clap::Parser;

    fn ctx(home: &Path) -> Context {
        Context {
            user: "ann".into(),
            home: home.to_string_lossy().into_owned(),
            env: [("DOCKER_DS_DONT_PULL".to_string(), "1".to_string())].into(),
            stdin_is_tty: false,
            superuser: false,
        }
    }

    fn dock() -> Dock {
        Dock {
            user: "dockuser".into(),
            moniker: "gpu".into(),
            hostname: "10.0.0.5".into(),
            ip: "10.0.0.5".into(),
            extra: vec![],
            dir: "/h/.docker/10.0.0.5".into(),
        }
    }

    fn args(extra: &[&str]) -> Args {
        Args::parse_from(["run-notebook"].iter().chain(extra))
    }

    #[test]
    fn locally_the_port_is_on_loopback_and_credentials_are_read_only() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".aws")).unwrap();
        let planned = plan(None, home.path(), &args(&[]), &ctx(home.path()), None).unwrap();
        let run = planned.run.invocations().next().unwrap().argv().join(" ");
        assert!(run.contains("-p 127.0.0.1:8888:8888"), "{run}");
        let aws = format!(
            "--mount type=bind,source={}/.aws,target=/home/jovyan/.aws,readonly",
            home.path().display()
        );
        assert!(run.contains(&aws), "{run}");
        assert_eq!(planned.tunnel, None);
        // Widened on purpose.
        let wide = plan(
            None,
            home.path(),
            &args(&["--bind", "0.0.0.0", "-p", "9000"]),
            &ctx(home.path()),
            None,
        )
        .unwrap();
        let run = wide.run.invocations().next().unwrap().argv().join(" ");
        assert!(run.contains("-p 0.0.0.0:9000:8888"), "{run}");
        assert_eq!(wide.watch.unwrap().host, "127.0.0.1");
    }

    #[test]
    fn a_cfg_port_without_an_address_is_bound_to_loopback() {
        let p = |a: &[&str]| Invocation::new("docker", "/".into()).args(a.iter().copied());
        let bound = |a: &[&str], addr, force| publish_8888_on(p(a), addr, force).argv().join(" ");
        assert_eq!(
            bound(&["run", "-p", "8888:8888", "i"], "127.0.0.1", false),
            "run -p 127.0.0.1:8888:8888 i"
        );
        assert_eq!(
            bound(&["run", "--publish=9:8888/tcp"], "::1", false),
            "run --publish=[::1]:9:8888/tcp"
        );
        assert_eq!(
            bound(&["run", "-p0.0.0.0:9:8888"], "127.0.0.1", false),
            "run -p0.0.0.0:9:8888",
            "an address the cfg names is kept"
        );
        assert_eq!(
            bound(&["run", "-p", "0.0.0.0:9:8888"], "127.0.0.1", true),
            "run -p 127.0.0.1:9:8888"
        );
        assert_eq!(
            bound(&["run", "-p", "80:80"], "127.0.0.1", true),
            "run -p 80:80"
        );
    }

    #[test]
    fn docked_the_notebook_is_reached_through_a_tunnel_to_the_docks_loopback() {
        let home = tempfile::tempdir().unwrap();
        let a = args(&["-p", "9999", "--remote-port", "8899"]);
        let planned = plan(None, home.path(), &a, &ctx(home.path()), Some(&dock())).unwrap();
        let run = planned
            .run
            .invocations()
            .find(|i| i.program == "docker")
            .unwrap()
            .argv()
            .join(" ");
        assert!(run.contains("-p 127.0.0.1:8899:8888"), "{run}");
        let tunnel = planned.tunnel.as_ref().unwrap().argv().join(" ");
        assert!(
            tunnel.ends_with("-N -L 127.0.0.1:9999:127.0.0.1:8899 dockuser@10.0.0.5"),
            "{tunnel}"
        );
        let w = planned.watch.clone().unwrap();
        assert_eq!((w.host.as_str(), w.port), ("127.0.0.1", 9999));
        let script = planned.script();
        assert!(
            script.contains("-L 127.0.0.1:9999:127.0.0.1:8899 dockuser@10.0.0.5 &"),
            "{script}"
        );
        assert!(
            script.contains("http://127.0.0.1:9999/lab?token="),
            "{script}"
        );
        assert!(!script.contains("http://10.0.0.5"), "{script}");
    }
}
