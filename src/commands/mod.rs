//! One file per user command, each with its `Args` (clap) and a `main`. Most build a
//! [`crate::plan::Plan`] from the project, the cfg and the flags, then print or run it
//! (those with a `plan` function expose it to the tests); the AWS commands plan an API
//! call instead, and the exceptions are listed in ARCHITECTURE.md.

pub mod auto_build;
pub mod build_image;
pub mod create_dock;
pub mod deploy_image;
pub mod destroy_dock;
pub mod dock_env;
pub mod genversion;
pub mod idle_stop;
pub mod init;
pub mod ls_dock;
pub mod nb_dock;
pub mod publish_image;
pub mod register_dock;
pub mod run_image;
pub mod run_notebook;
pub mod serve_hooks;
pub mod ssh_config;
pub mod ssh_dock;
pub mod start_dock;
pub mod stop_dock;
pub mod sync;
pub mod transfer_image;
pub mod unregister_dock;

use crate::error::{self, Result};

/// A command's exit code: its own, or its error's (reported the usual way).
pub fn exit_code(prog: &str, result: Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => fail(prog, &e),
    }
}

pub use crate::error::fail;
pub use crate::exec::finish;

/// Asks before something that costs or destroys: yes with `-y`; at a terminal, the
/// user's answer; without a terminal and without `-y`, an error saying so.
pub fn confirm(question: &str, yes: bool) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(error::Error::Usage(format!(
            "stdin is not a terminal, so this cannot be asked: {question} Pass -y to confirm"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| error::Error::io("cannot read the answer", e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}
