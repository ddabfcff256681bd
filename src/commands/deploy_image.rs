//! `deploy-image IMAGE`: replace the running container of a service with one of the newest
//! image, and put the old one back when it fails (`crate::service::deploy`).

use crate::context::Context;
use crate::error::Result;
use crate::project::Project;
use crate::service::deploy::{Options, Report, current, deploy, plan, service};
use clap::Parser;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "deploy-image",
    version,
    about = "Replace a service's running container with one of the newest image, rolling back if it does not stay up",
    long_about = "Replace the running container of a service (the cfg section's service=NAME) with one \
        of the newest image: pull it, rename NAME to NAME-previous and stop it, start the new NAME \
        (docker run -d --restart unless-stopped with the section's run-image options), watch it for \
        the settle time (and until healthy when the image has a HEALTHCHECK), then remove \
        NAME-previous. When the new container exits, restarts or turns unhealthy, it is removed \
        and NAME-previous runs again under its name; the command fails, showing the end of the \
        failed container's log.",
    after_help = "dockerutils.cfg:\n  [web]\n  name=registry.example.com/team/web\n  prefix=False\n  tag=latest\n  service=web                      # the container's name\n  ports=-p 80:8080\n\nExamples:\n  deploy-image web\n  deploy-image web --settle 30     # watch the new container for 30 s\n  deploy-image web --no-pull       # the image in the local engine\n  deploy-image web --dry-run       # print the plan, change nothing\n\n\
Ctrl-C during the watch rolls back (the new container is not yet confirmed); after it, the \
deploy finishes. Every docker call has a bound: DOCKERUTILS_DOCKER_TIMEOUT seconds (60; \
pull: 20 times that), then docker is deemed hung and the deploy fails."
)]
pub(crate) struct Args {
    /// Image to deploy: a subdirectory of docker/ or a synthetic image whose section has service=NAME
    pub image: String,
    /// Seconds the new container must keep running, without a restart, before the old one is removed
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub settle: u64,
    /// With a HEALTHCHECK: seconds the new container has to report healthy
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub health_timeout: u64,
    /// Do not pull: deploy the image in the local engine
    #[arg(long)]
    pub no_pull: bool,
    /// Change nothing when the service already runs the image (after the pull)
    #[arg(long)]
    pub if_changed: bool,
    /// Print the plan, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

fn run(args: &Args) -> Result<i32> {
    let ctx = Context::from_process();
    let project = Project::discover_here(&ctx.user)?;
    let svc = service(&project, &args.image, args.no_pull, &ctx)?;
    let opts = Options {
        settle: Duration::from_secs(args.settle),
        health_timeout: Duration::from_secs(args.health_timeout),
        if_changed: args.if_changed,
    };
    if args.dry_run {
        let now = current(&svc.name)?;
        print!("{}", plan(&svc, now.as_ref(), &opts).script());
        return Ok(0);
    }
    crate::process::install_signal_handlers();
    let deployed = deploy(&svc, &opts, &Report::terminal())?;
    eprintln!("Deployed {} as {}: {deployed}", svc.reference, svc.name);
    Ok(0)
}

pub(crate) fn main(args: Args) -> i32 {
    crate::commands::exit_code("deploy-image", run(&args))
}
