//! `sync-up` / `sync-down`: the project to and from the dock's copy of it
//! (`crate::dock::sync` plans the rsync).

use crate::context::Context;
use crate::dock::{
    self,
    sync::{Direction, plan},
};
use crate::error::Result;
use crate::plan::Plan;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Copy the project to (sync-up) or back from (sync-down) the current dock",
    after_help = "Examples (docked with `source dock NAME`):\n  sync-up                 # <workspace>/<user>/code/<project> on the dock\n  sync-down\n  sync-up --dock gpu-box  # without docking"
)]
pub(crate) struct Args {
    /// The dock [default: the current one]
    #[arg(long)]
    pub dock: Option<String>,
    /// Print the commands, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

fn main_for(name: &str, direction: Direction, args: Args) -> i32 {
    let ctx = Context::from_process();
    let dock = match args.dock.as_deref() {
        None if dock::current().is_none() => Err(crate::error::Error::Usage(format!(
            "not docked: `source dock NAME` first, or name the dock: {name} --dock NAME"
        ))),
        given => dock::named_or_current(given),
    };
    let planned: Result<Plan> = dock.and_then(|d| plan(&d, direction, &ctx));
    let rc = super::finish(name, args.dry_run, planned);
    if rc == 0 && !args.dry_run {
        eprintln!("Sync complete");
    }
    rc
}

pub(crate) fn main_up(args: Args) -> i32 {
    main_for("sync-up", Direction::Up, args)
}

pub(crate) fn main_down(args: Args) -> i32 {
    main_for("sync-down", Direction::Down, args)
}
