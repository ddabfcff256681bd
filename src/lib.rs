//! dockerutils: a project-convention tool for Docker.
//!
//! Most commands turn (project, cfg, flags, context) into a [`plan::Plan`], a plain value
//! that `--dry-run` prints, tests inspect and [`exec`] runs. The ones that must react to
//! what they see are not yet in that shape: `transfer-image` streams through this
//! process, `deploy-image` runs its steps one at a time around a watch, `serve-hooks` is
//! a server (ARCHITECTURE.md, "Where the shape is not yet kept").

pub mod aws;
pub mod cli;
pub mod commands;
pub mod context;
pub mod dock;
pub mod engine;
pub mod error;
pub mod exec;
pub mod plan;
pub mod process;
pub mod project;
pub mod service;
pub mod time;
pub mod transfer;

pub use cli::main;
