//! `unregister-dock NAME`: remove a dock from the registry (and its ssh config block and
//! docker context).

use crate::dock;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "unregister-dock",
    version,
    about = "Remove a dock (by moniker or IP) from the registry in ~/.docker/",
    after_help = "Example:\n  unregister-dock gpu-box"
)]
pub(crate) struct Args {
    /// Moniker or IP of the dock
    pub name: String,
}

pub(crate) fn main(args: Args) -> i32 {
    let dock = match dock::find(&args.name) {
        Ok(d) => d,
        Err(e) => return super::fail("unregister-dock", &e),
    };
    match dock::unregister(&dock) {
        Ok(()) => {
            println!("Removed dock {} ({})", dock.name(), dock.dir.display());
            crate::dock::hosts::after_change("unregister-dock", None);
            0
        }
        Err(e) => super::fail("unregister-dock", &e),
    }
}
