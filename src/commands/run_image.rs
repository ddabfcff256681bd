//! `run-image IMAGE`: start a container of a project image with its cfg section's options
//! (`crate::project::run`).

use crate::context::Context;
use crate::project::Project;
use crate::project::run::{Request, plan};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "run-image",
    version,
    about = "Run a container of a project image with the options of its dockerutils.cfg section",
    long_about = "Run a container of a project image (a subdirectory of docker/ or a synthetic image of \
        the cfg) with the options of its dockerutils.cfg section: environment, env, interactive, gpu, \
        network, volumes, ports, args, cmd (and their *_docked variants when docked).",
    after_help = "Examples:\n  run-image dev\n  run-image dev -c 'pytest -x' -e LOG_LEVEL=debug\n  run-image dev -k                 # detached, kept after it stops\n  run-image dev -a '-p 8080:80'    # extra docker run arguments\n  run-image dev --dry-run          # print the docker command only\n  run-image etl --log              # a pipeline: output to logs/etl/current, rotated (cron)\n  run-image etl --log /var/log/etl --log-size 5000000 --log-keep 10"
)]
pub(crate) struct Args {
    #[command(flatten)]
    pub request: Request,
    /// Print the command that would run, and run nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub(crate) fn main(args: Args) -> i32 {
    let ctx = Context::from_process();
    let planned = Project::discover_here(&ctx.user).and_then(|p| plan(&p, &args.request, &ctx));
    super::finish("run-image", args.dry_run, planned)
}
