//! `ssh-dock [NAME] [-- COMMAND…]`: a shell (or a command) on a dock, as its registered user.

use crate::dock;
use clap::Parser;
use std::io::IsTerminal;

#[derive(Debug, Parser)]
#[command(
    name = "ssh-dock",
    version,
    about = "Open a shell on a dock (the current one when docked), as the dock's registered user",
    after_help = "Examples:\n  ssh-dock gpu-box\n  ssh-dock                  # the dock this shell is docked to\n  ssh-dock gpu-box -- nvidia-smi"
)]
pub(crate) struct Args {
    /// Moniker or IP of the dock [default: the current dock]
    pub name: Option<String>,
    /// A command to run instead of a shell
    #[arg(last = true)]
    pub command: Vec<String>,
    /// Print the ssh command, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub(crate) fn main(args: Args) -> i32 {
    let planned = dock::named_or_current(args.name.as_deref()).map(|dock| {
        let tty = args.command.is_empty() && std::io::stdin().is_terminal();
        let mut plan = crate::plan::Plan::default();
        let mut inv = crate::dock::ssh::to_dock(&dock, tty, &args.command);
        inv.note = Some(format!(
            "Opening ssh connection to {} ({})",
            dock.name(),
            dock.destination()
        ));
        plan.run(inv);
        plan
    });
    super::finish("ssh-dock", args.dry_run, planned)
}
