//! `publish-image IMAGE`: tag a project image with its section's `publication_tag` and
//! push it (`crate::project::publish`).

use crate::context::Context;
use crate::error::Result;
use crate::project::Project;
use crate::project::publish::{Request, publish};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "publish-image",
    version,
    about = "Tag a project image with its cfg section's publication_tag and push it (ECR or any registry)",
    after_help = "dockerutils.cfg:\n  [prod]\n  image_repo=aws\n  publication_tag={account}.dkr.ecr.{region}.amazonaws.com/{image}:{tag}\n\n  [api]\n  image_repo=docker_hub            # or `registry`, for any other registry\n  publication_tag=myorg/api:$RELEASE\n\nExamples:\n  publish-image prod\n  publish-image prod --dry-run     # show the login, tag and push, change nothing"
)]
pub(crate) struct Args {
    #[command(flatten)]
    pub request: Request,
}

fn run(args: &Args) -> Result<i32> {
    let ctx = Context::from_process();
    let project = Project::discover_here(&ctx.user)?;
    publish(&project, &args.request, &ctx)
}

pub(crate) fn main(args: Args) -> i32 {
    super::exit_code("publish-image", run(&args))
}
