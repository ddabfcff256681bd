//! An image read out of a Docker engine's storage as a `docker load` archive, and the
//! compression that sends it at the pace of the link.
//!
//! A crate of its own, with few dependencies, because the same code runs in two places:
//! in `transfer-image` on this machine (a push reads the local engine's storage), and as
//! a static helper on a dock (a pull back runs it there, in a container that sees the
//! dock engine's storage read-only; `src/main.rs`), where `docker save` would first
//! export the whole image to a temporary directory.

pub mod compress;
pub mod store;
