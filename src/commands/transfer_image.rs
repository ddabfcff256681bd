//! `transfer-image IMAGE DEST`: send a local image to a dock (or any `[user@]host[:port]`
//! that runs docker) over SSH, sending only the layers the remote does not have.
//!
//! The image archive is streamed through this process into zstd (gzip when the remote has
//! no zstd) and over ssh into `docker load` on the remote. Where this process can read the
//! local engine's storage (root, overlay2), the archive is put together from it directly
//! ([`crate::engine_store`]): byte for byte what `docker save` gives, without the daemon
//! first writing the whole archive to a temporary directory; elsewhere, or with
//! `--docker-save`, it is `docker save IMAGE`. Before that, the remote's images are listed
//! (their layer chains, by diff id): the layers of IMAGE whose chain the remote already
//! holds are left out of the archive, which the classic `docker load` accepts (it only
//! opens the file of a layer it does not have). If the remote refuses that archive,
//! `docker save` is sent whole. Nothing is written to disk on either side but what
//! `docker load` itself keeps; an interrupted transfer leaves the remote as it was. The
//! work itself is in [`crate::transfer`].

use crate::dock;
use crate::error::{Error, Result};
use crate::project::Project;
use crate::tags;
use crate::transfer::load;
use crate::transfer::remote::Remote;
use crate::transfer::source::local_image;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "transfer-image",
    version,
    about = "Send a local image to a dock or an ssh host running docker, only the layers it lacks",
    after_help = "Examples:\n  transfer-image dev gpu-box                     # in a project: its dev image\n  transfer-image myproj-base:ann gpu-box\n  transfer-image myproj-base:ann admin@10.0.0.7:2222 --sudo\n  transfer-image myproj-base:ann gpu-box --full   # send every layer"
)]
pub struct Args {
    /// The image: inside a project, one of its images (a docker/ subdirectory or a
    /// synthetic image of the cfg); else NAME[:TAG] or an image id
    pub image: String,
    /// A registered dock (moniker or IP), or [user@]host[:port]
    pub dest: String,
    /// Run docker on the remote with `sudo -n`
    #[arg(long)]
    pub sudo: bool,
    /// Send every layer, even those the remote has
    #[arg(long)]
    pub full: bool,
    /// Read the image with `docker save`, even where this process can read the engine's
    /// storage (by default the layers are read from it directly: faster)
    #[arg(long)]
    pub docker_save: bool,
    /// Print what would run, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// IMAGE as every other command takes it: inside a project, the name of one of its
/// images (a `docker/` subdirectory or a synthetic image of the cfg) means that image,
/// `name:tag` as its section designates it, the newest build for `tag=timestamp`;
/// anything else (or outside a project) is a docker reference.
fn resolve_image(given: &str, user: &str) -> Result<String> {
    let project = match Project::discover_here(user) {
        Ok(project) => project,
        Err(Error::NoProject { .. }) => return Ok(given.to_string()),
        Err(e) => return Err(e),
    };
    if !project.image_names()?.iter().any(|n| n == given) {
        return Ok(given.to_string());
    }
    let image = tags::newest_here(project.image_ref(given)?)?;
    if image.tag == tags::TIMESTAMP {
        return Err(Error::Usage(format!(
            "no build of {} here ([{given}] tag=timestamp): build-image {given}",
            image.name
        )));
    }
    Ok(image.to_string())
}

fn run(args: &Args) -> Result<i32> {
    let image = resolve_image(&args.image, &crate::project::user_name())?;
    let remote = Remote::for_dest(&args.dest, args.sudo)?;
    let local = local_image(&image, args.docker_save)?;
    if args.dry_run {
        println!("{}", load::shown(&local, &remote, true));
        return Ok(0);
    }
    let outcome = load::to_destination(&local, &remote, args.full)?;
    if !outcome.loaded {
        eprintln!(
            "transfer-image: error: {} did not load the image (see the messages above)",
            remote.name
        );
        return Ok(1);
    }
    eprintln!(
        "transfer-image: sent {} ({} bytes) to {} in {:.1}s{}",
        load::mib(outcome.sent),
        outcome.sent,
        remote.name,
        outcome.elapsed.as_secs_f64(),
        match outcome.level {
            Some(level) => format!(" (zstd level {level} at the end)"),
            None => " (gzip)".to_string(),
        }
    );
    Ok(0)
}

pub fn main(argv: Vec<std::ffi::OsString>) -> i32 {
    let args = Args::parse_from(argv);
    // In a docked shell DOCKER_HOST points at the dock, but what transfer-image sends is
    // this machine's image (run-image's hint says `transfer-image IMAGE DOCK` to a docked
    // shell): the DOCKER_HOST that `source dock` set is not the source.
    if let Some(dock) = dock::current()
        && std::env::var("DOCKER_HOST").ok() == Some(dock.ssh_url())
    {
        eprintln!(
            "transfer-image: docked to {}: the image is read from this machine's engine",
            dock.name()
        );
        // SAFETY: at the start of main, before this process starts any thread.
        unsafe { std::env::remove_var("DOCKER_HOST") };
    }
    super::exit_code("transfer-image", run(&args))
}
