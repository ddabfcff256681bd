//! `genversion`: write `_version.py.bld` with versioneer, as 2.0.7's `genversion` (and as
//! build-image does before each build of a versioneer project).

use crate::context::Context;
use crate::plan::Plan;
use crate::project::Project;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "genversion",
    version,
    about = "Write _version.py.bld at the project root with versioneer (for projects that use versioneer)",
    long_about = "Write _version.py.bld at the project root with the project's versioneer.py, so that \
        a Docker build, which has no git, can copy in the version (build-image does this before \
        every build of a versioneer project). A project without versioneer ([versioneer] in \
        setup.cfg and versioneer.py at the root) is left alone.",
    after_help = "Examples:\n  genversion\n  genversion --dry-run\n\nWithout versioneer, seal the version with a build arg instead:\n  [prod]\n  build_args=--build-arg VERSION={version}"
)]
pub(crate) struct Args {
    /// Print the command, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub(crate) fn main(args: Args) -> i32 {
    let ctx = Context::from_process();
    let planned = Project::discover_here(&ctx.user).and_then(|project| {
        let mut plan = Plan::default();
        crate::project::build::version_file_step(&project, &mut plan)?;
        Ok((project, plan))
    });
    match planned {
        Ok((project, plan)) if plan.steps.is_empty() => {
            println!(
                "{} does not use versioneer ([versioneer] in setup.cfg and versioneer.py): \
                 nothing to write",
                project.root.display()
            );
            0
        }
        Ok((_, plan)) => super::finish("genversion", args.dry_run, Ok(plan)),
        Err(e) => super::fail("genversion", &e),
    }
}
