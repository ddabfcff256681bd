//! `build-image IMAGE|all|clean`: build (or remove) the project's images
//! (`crate::project::build`).

use crate::context::Context;
use crate::project::Project;
use crate::project::build::{Request, dry_run_if_changed, parts, schedule};
use crate::project::cfg::keys;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "build-image",
    version,
    about = "Build a project image from docker/<IMAGE>/Dockerfile, named <project>-<IMAGE>:<user>",
    long_about = "Build a project image from docker/<IMAGE>/Dockerfile, named <project>-<IMAGE>:<user> \
        (or as its dockerutils.cfg section says). The build context is the project root. \
        `all` builds every image, each after those it is built FROM; `clean` removes the project's images.",
    after_help = "Examples:\n  build-image dev\n  build-image dev -f        # build docker/base first\n  build-image all -t v1.2\n  build-image clean\n  build-image dev --dry-run # print the docker commands only"
)]
pub(crate) struct Args {
    #[command(flatten)]
    pub request: Request,
    /// Print the commands that would run, and run nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub(crate) fn main(args: Args) -> i32 {
    let ctx = Context::from_process();
    let planned = Project::discover_here(&ctx.user).and_then(|p| {
        let parts = parts(&p, &args.request, &ctx)?;
        let from_cfg = p.cfg.has_section(keys::BUILD_IMAGE)
            && p.cfg
                .get_bool(keys::BUILD_IMAGE, keys::IF_CHANGED)?
                .unwrap_or(false);
        Ok((p, parts, from_cfg))
    });
    let (project, parts, from_cfg) = match planned {
        Ok(x) => x,
        Err(e) => return super::fail("build-image", &e),
    };
    let clean = args.request.image == "clean";
    let if_changed = (args.request.if_changed || from_cfg) && !clean;
    if args.dry_run && if_changed {
        return match dry_run_if_changed(&project, parts) {
            Ok(script) => {
                print!("{script}");
                0
            }
            Err(e) => super::fail("build-image", &e),
        };
    }
    // `clean` is one plan of removals; a dry run prints the plan of a build in order.
    if clean || args.dry_run {
        return super::finish("build-image", args.dry_run, Ok(parts.into_plan()));
    }
    schedule(&project, parts, args.request.jobs, if_changed).0
}
