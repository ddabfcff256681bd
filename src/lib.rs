//! dockerutils: a project-convention tool for Docker.
//!
//! Most commands turn (project, cfg, flags, context) into a [`plan::Plan`], a plain value
//! that `--dry-run` prints, tests inspect and [`exec`] runs. The ones that must react to
//! what they see are not yet in that shape: `transfer-image` streams through this
//! process, `deploy-image` runs its steps one at a time around a watch, `serve-hooks` is
//! a server (ARCHITECTURE.md, "Where the shape is not yet kept").

mod aws;
mod cli;
mod commands;
mod context;
mod dock;
mod engine;
mod error;
mod exec;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzz_entry;
mod plan;
mod process;
mod project;
mod service;
mod time;
mod transfer;

pub use cli::{daily_main, main};

/// What the integration tests use of the library itself (the idle watcher's installer,
/// run for real on the test dock); everything else is tested through the commands.
#[doc(hidden)]
pub mod testing {
    pub use crate::dock::idle::{Limit, installer};
}
