//! Moving an image from one Docker engine to another over SSH, only the layers the
//! receiving engine lacks (the domain of `transfer-image`).
//!
//! - [`remote`]: how a dock or `[user@]host[:port]` is reached, and what its engine holds
//!   (one ssh: docker there, zstd there, the layer chains of its images);
//! - [`source`]: the image as read once from the local engine (its layers, its size, and
//!   the engine's storage when this process can read it);
//! - [`load`]: the work for one destination: the archive, compressed, into `docker load`
//!   there, and what came of it ([`load::Outcome`]).

pub mod load;
pub mod remote;
pub mod source;
