//! `run-notebook [-g]`: Jupyter on the project, here or on the current dock.
//!
//! With `docker/notebook`, it builds that image (`-f`: base first) and runs it with its cfg
//! section, as `build-image -f notebook` then `run-image notebook` would. Without one, it
//! runs a default notebook image on the current directory. Docked, the project is synced
//! up before and down after. Once the server answers, the URL with its token is printed
//! (and opened where there is a desktop).

use super::{build_image, run_image, sync};
use crate::cfg::keys;
use crate::context::Context;
use crate::dock::{self, Dock};
use crate::docker;
use crate::error::Result;
use crate::plan::{Invocation, Plan};
use crate::project::Project;
use clap::Parser;
use std::path::Path;

pub const DEFAULT_IMAGE: &str = "quay.io/jupyter/scipy-notebook:latest";
pub const DEFAULT_GPU_IMAGE: &str = "quay.io/jupyter/pytorch-notebook:cuda12-latest";

#[derive(Debug, Parser)]
#[command(
    name = "run-notebook",
    version,
    about = "Run Jupyter Lab on the project: its docker/notebook image, or a default notebook image",
    long_about = "Run Jupyter Lab on the project. With docker/notebook: build it (base first) and run it \
        with its dockerutils.cfg section. Without: run a default notebook image (the Jupyter \
        project's scipy-notebook; -g: pytorch-notebook with CUDA) with the current directory at \
        /home/jovyan/project, ~/.aws and /data mounted when they exist, on port 8888. Docked, the \
        project is synced to the dock before and back after. The URL with its token is printed \
        once the server answers.",
    after_help = "Examples:\n  run-notebook\n  run-notebook -g                    # GPU\n  source dock gpu-box && run-notebook\n\n\
Default image: [run_notebook] image= (gpu_image= for -g) in dockerutils.cfg, or\n\
DOCKERUTILS_NOTEBOOK_IMAGE / DOCKERUTILS_NOTEBOOK_GPU_IMAGE. DOCKER_DS_DONT_PULL=1: do not\n\
pull it first. DOCKER_DS_DIFFS=1: passed to the container (-e DOCKER_DS_DIFFS=1)."
)]
pub struct Args {
    /// GPU: the GPU image and --runtime=nvidia -e NVIDIA_VISIBLE_DEVICES=all
    #[arg(short = 'g', long = "use-gpu", visible_alias = "gpu")]
    pub gpu: bool,
    /// Host port for the default image's 8888 [default: 8888]
    #[arg(short = 'p', long, default_value_t = 8888)]
    pub port: u16,
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
pub struct NotebookPlan {
    pub prepare: Plan,
    pub run: Plan,
    /// Where the server will answer, and the container to read the token from.
    pub watch: Option<Watch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub host: String,
    pub port: u16,
    pub container: String,
}

fn section_value(project: Option<&Project>, key: &str) -> Result<Option<String>> {
    match project {
        Some(p) if p.cfg.has_section(keys::RUN_NOTEBOOK) => p.cfg.get(keys::RUN_NOTEBOOK, key),
        _ => Ok(None),
    }
}

/// The default image: the cfg, then the environment, then ours.
pub fn default_image(project: Option<&Project>, ctx: &Context, gpu: bool) -> Result<String> {
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

/// Where a `docker run`'s `-p` publishes container port 8888: (host ip, host port).
pub fn published_8888(inv: &Invocation) -> Option<(Option<String>, u16)> {
    let argv = inv.argv();
    argv.iter().enumerate().find_map(|(i, a)| {
        let spec = match *a {
            "-p" | "--publish" => argv.get(i + 1).copied()?,
            _ => a
                .strip_prefix("--publish=")
                .or_else(|| a.strip_prefix("-p"))?,
        };
        let spec = spec.split('/').next()?;
        let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
        // parts: [container, host port, host ip]
        if parts.first() != Some(&"8888") || parts.len() < 2 {
            return None;
        }
        let port = parts[1].parse().ok()?;
        let ip = parts.get(2).map(|s| s.trim_matches(['[', ']']).to_string());
        Some((ip, port))
    })
}

fn container_name(inv: &Invocation) -> Option<String> {
    let argv = inv.argv();
    argv.iter()
        .position(|a| *a == "--name")
        .and_then(|i| argv.get(i + 1))
        .map(|s| s.to_string())
}

pub fn plan(
    project: Option<&Project>,
    here: &Path,
    args: &Args,
    ctx: &Context,
    docked: Option<&Dock>,
) -> Result<NotebookPlan> {
    let mut out = NotebookPlan::default();
    let own = project.filter(|p| p.docker_dir().join("notebook").is_dir());
    let run_inv = if let Some(project) = own {
        let build = build_image::Args {
            image: "notebook".into(),
            force_build_base: true,
            image_name: None,
            image_tag: None,
            pull_base: false,
            with_deps: false,
            if_changed: false,
            jobs: 1,
            dry_run: args.dry_run,
        };
        let built = build_image::plan(project, &build, ctx)?;
        out.prepare.steps.extend(built.steps);
        out.prepare.cleanup.extend(built.cleanup);
        let run = run_image::Args {
            image: "notebook".into(),
            args: None,
            keep: false,
            command: None,
            network: None,
            use_gpu: args.gpu,
            env: vec![],
            latest: false,
            logging: Default::default(),
            dry_run: args.dry_run,
        };
        let mut ran = run_image::plan(project, &run, ctx)?;
        // The watch reads the token from the container by the name planned: no other name
        // is tried (a notebook started in the same second would want port 8888 too).
        for step in &mut ran.steps {
            if let crate::plan::Step::Run(inv) = step {
                inv.unique_name = None;
            }
        }
        out.run.steps.extend(ran.steps);
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
            out.prepare.run(docker::docker(here).args(["pull", &image]));
        }
        let mut inv = docker::docker(here).arg("run");
        if args.gpu {
            inv = inv.args(run_image::GPU_ARGS);
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
            for name in run_image::AWS_ENV {
                if ctx.var(name).is_some() {
                    inv = inv.args(["-e", name]);
                }
            }
        }
        inv = inv.arg("--rm");
        inv = inv.args(run_image::tty_rule(vec!["-it".into()], ctx.stdin_is_tty));
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
                let aws = Path::new(&ctx.home).join(".aws");
                if aws.is_dir() {
                    inv = inv.args(mount(&aws.to_string_lossy(), "/home/jovyan/.aws"));
                }
            }
            Some(dock) => {
                let remote = dock.code_dir(&ctx.user, here);
                inv = inv.args(mount(&remote, "/home/jovyan/project"));
                inv = inv.args(["-v", "/data:/data"]);
            }
        }
        inv = inv.args(["-p", &format!("{}:8888", args.port)]).arg(image);
        out.run.run(inv.clone());
        Some(inv)
    };
    if let Some(dock) = docked {
        out.prepare
            .steps
            .extend(sync::plan(dock, sync::Direction::Up, ctx).steps);
        out.run
            .cleanup
            .extend(sync::plan(dock, sync::Direction::Down, ctx).steps);
    }
    if let Some(inv) = run_inv {
        if let (Some((ip, port)), Some(container)) = (published_8888(&inv), container_name(&inv)) {
            let host = match (docked, ip) {
                (Some(dock), _) => dock.ip.clone(),
                (None, Some(ip)) if !ip.is_empty() && ip != "0.0.0.0" && ip != "::" => ip,
                _ => "127.0.0.1".into(),
            };
            out.watch = Some(Watch {
                host,
                port,
                container,
            });
        }
    }
    Ok(out)
}

/// In the background: once the server answers, print the URL with the token from the
/// container's output, and open it.
fn watch(w: Watch, open: bool) {
    std::thread::spawn(move || {
        let limit = std::time::Duration::from_secs(600);
        if crate::notebook::wait_until_answers(&w.host, w.port, limit, || None).is_err() {
            return;
        }
        let logs = std::process::Command::new("docker")
            .args(["logs", &w.container])
            .output()
            .map(|o| {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                text
            })
            .unwrap_or_default();
        let url = crate::notebook::lab_url(
            &w.host,
            w.port,
            crate::notebook::find_token(&logs).as_deref(),
        );
        eprintln!("\nrun-notebook: Jupyter is ready: {url}\n");
        if open {
            crate::notebook::open_in_browser(&url);
        }
    });
}

pub fn main(argv: Vec<std::ffi::OsString>) -> i32 {
    let args = Args::parse_from(argv);
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
        print!("{}{}", planned.prepare.script(), planned.run.script());
        return 0;
    }
    let rc = crate::exec::execute("run-notebook", &planned.prepare);
    if rc != 0 {
        return rc;
    }
    if let Some(w) = planned.watch.clone() {
        watch(w, !args.no_browser);
    }
    crate::exec::execute("run-notebook", &planned.run)
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
