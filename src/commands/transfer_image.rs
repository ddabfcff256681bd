//! `transfer-image IMAGE DEST…`, `transfer-image DOCK:IMAGE [DEST…]`: move an image
//! between this machine's engine and docks (or any `[user@]host[:port]` that runs docker)
//! over SSH, each destination receiving only the layers it does not have.
//!
//! This file is the command: its arguments, the names checked before anything runs,
//! `--dry-run`, and the summary and exit code. The work is in [`crate::transfer`]: the
//! image is read once (from the engine's storage where this process can read it, else
//! `docker save`; on a dock, `docker save` there with the layers every destination holds
//! left out by GNU tar), and handed to each destination in parallel, into `docker load`
//! there (compressed over ssh), without the layers that destination holds.
//!
//! Exit code: 0 when every destination loaded the image; 1 when any did not (one line
//! per destination says which, and with several, a last line lists the failed ones);
//! 130 on Ctrl-C (128 + the signal: 143 for SIGTERM); 2 for a name that is refused
//! before anything runs.

use crate::dock;
use crate::engine::tags;
use crate::error::{Error, Result};
use crate::plan::quote;
use crate::project::Project;
use crate::transfer::dock_reader::Reader;
use crate::transfer::load::Target;
use crate::transfer::progress::mib;
use crate::transfer::remote::{Codec, Engine, HERE, Remote};
use crate::transfer::source::{self, Image, Origin};
use crate::transfer::via_registry;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "transfer-image",
    version,
    about = "Send an image to docks or ssh hosts running docker, or bring one back from a dock, only the layers each lacks",
    after_help = "Examples:\n  transfer-image dev gpu-box                     # in a project: its dev image\n  transfer-image myproj-base:ann gpu-box\n  transfer-image myproj-base:ann admin@10.0.0.7:2222 --sudo\n  transfer-image myproj-base:ann gpu-box --full   # send every layer\n  transfer-image myproj-base:ann gpu-box cpu-box  # to both at once\n  transfer-image gpu-box:myproj-base:ann          # bring it back from gpu-box\n  transfer-image gpu-box:myproj-base:ann cpu-box  # from one dock to another, through here\n  transfer-image --from admin@10.0.0.7:2222 myproj-base:ann\n\nExit code: 0 when every destination loaded the image; 1 when any did not (the last\nlines say which); 2 for a name refused before anything runs (an image, a destination\nor dock that is not registered, one dock named twice); 130 on Ctrl-C (128 + the\nsignal: 143 for SIGTERM)."
)]
pub(crate) struct Args {
    /// The image: inside a project, one of its images (a docker/ subdirectory or a
    /// synthetic image of the cfg); else NAME[:TAG] or an image id. DOCK:IMAGE (a
    /// registered dock, or user@host) takes it from that dock's engine
    pub image: String,
    /// Where to: one or more registered docks (moniker or IP) or [user@]host[:port];
    /// none when the image comes from a dock: this machine; none in a docked shell: its
    /// dock
    pub dest: Vec<String>,
    /// Take the image from this dock (or [user@]host[:port]) instead of this machine
    #[arg(long, value_name = "DOCK")]
    pub from: Option<String>,
    /// Run docker on the remotes with `sudo -n`
    #[arg(long)]
    pub sudo: bool,
    /// Send every layer, even those a destination has
    #[arg(long)]
    pub full: bool,
    /// Read the image with `docker save`: here, even where this process can read the
    /// engine's storage; on a dock, instead of the reader run there (by default the
    /// layers are read from the storage directly: faster)
    #[arg(long)]
    pub docker_save: bool,
    /// Send the image through a temporary read-only registry that the remote's engine
    /// pulls from (what an engine with the containerd image store gets by default)
    #[arg(long, conflicts_with = "full")]
    pub via_registry: bool,
    /// Print what would run for each destination, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// IMAGE as every other command takes it: inside a project, the name of one of its
/// images (a `docker/` subdirectory or a synthetic image of the cfg) means that image,
/// `name:tag` as its section designates it, the newest build for `tag=timestamp`;
/// anything else (or outside a project) is a docker reference. `on`: the dock the image
/// is taken from (whose builds this machine cannot list).
fn resolve_image(given: &str, user: &str, on: Option<&str>) -> Result<String> {
    let project = match Project::discover_here(user) {
        Ok(project) => project,
        Err(Error::NoProject { .. }) => return Ok(given.to_string()),
        Err(e) => return Err(e),
    };
    if !project.image_names()?.iter().any(|n| n == given) {
        return Ok(given.to_string());
    }
    let image = project.image_ref(given)?;
    if let Some(dock) = on {
        if image.tag == tags::TIMESTAMP {
            return Err(Error::Usage(format!(
                "[{given}] tag=timestamp: name the build to take from {dock}, \
                 `transfer-image {dock}:{}:TAG` (`docker images {}` there lists them)",
                image.name, image.name
            )));
        }
        return Ok(image.to_string());
    }
    let image = tags::newest_here(image)?;
    if image.tag == tags::TIMESTAMP {
        return Err(Error::Usage(format!(
            "no build of {} here ([{given}] tag=timestamp): build-image {given}",
            image.name
        )));
    }
    Ok(image.to_string())
}

/// `DOCK:IMAGE` → the dock and the image; anything else is a local image. DOCK is a
/// registered dock or `user@host`: `app:1` is the local image `app:1` unless a dock is
/// named `app`, and when both exist the command refuses to guess. When DOCK is no
/// registered dock and what follows it cannot be a tag (`a:b:c`), or nothing is to be
/// sent anywhere (`to_here`: a pull back is meant), and no such image is here either,
/// the name is refused as a dock that is not registered.
fn split_source(
    image: &str,
    from: Option<&str>,
    to_here: bool,
) -> Result<(Option<String>, String)> {
    if let Some(from) = from {
        return Ok((Some(from.to_string()), image.to_string()));
    }
    let local = || Ok((None, image.to_string()));
    let Some((dock, rest)) = image.split_once(':') else {
        return local();
    };
    if dock.is_empty() || rest.is_empty() {
        return local();
    }
    if dock.contains('@') {
        return Ok((Some(dock.to_string()), rest.to_string()));
    }
    match dock::find(dock) {
        Ok(_) => {}
        Err(Error::UnknownDock { known, .. }) => {
            // `registry:5000/app:1`: a registry's port, not a dock.
            let port = rest
                .split_once('/')
                .is_some_and(|(p, _)| p.chars().all(|c| c.is_ascii_digit()));
            let tag = !rest.contains([':', '@', '/']);
            if port || (tag && !to_here) || matches!(crate::engine::image_exists(image), Ok(true)) {
                return local();
            }
            return Err(not_a_dock(image, dock, &known));
        }
        Err(e) => return Err(e),
    }
    if matches!(crate::engine::image_exists(image), Ok(true)) {
        return Err(Error::Usage(format!(
            "`{image}` is both an image here and `{rest}` on the dock `{dock}`: \
             `transfer-image --from {dock} {rest}` takes it from the dock; an image id \
             (`docker images`) names the local one"
        )));
    }
    Ok((Some(dock.to_string()), rest.to_string()))
}

/// `DOCK:IMAGE` whose DOCK is not registered (and which is no image here).
fn not_a_dock(image: &str, dock: &str, known: &[String]) -> Error {
    let registered = if known.is_empty() {
        "no dock is registered: `register-dock IP [MONIKER]` adds one".to_string()
    } else {
        format!("registered docks: {}", known.join(", "))
    };
    Error::Usage(format!(
        "{} is not a registered dock ({registered}), and {} is not an image here; from a \
         host that is not registered, name its user: `transfer-image --from USER@{} IMAGE`",
        quote(dock),
        quote(image),
        quote(dock)
    ))
}

/// A docker image reference or id, and nothing a shell or ssh could take for more:
/// letters, digits and `._-/:@`, starting with a letter or digit. (docker checks the
/// rest of its grammar; this is what may reach a remote command line, quoted anyway.)
fn check_reference(image: &str) -> Result<()> {
    // The repository (before a tag or digest) is lower case, and a `:` or `@` is followed
    // by something: `dock:` (a dock named, the image forgotten) or `App:1` is no image.
    // One tag at most (`app:1:2` is none), one digest (`@sha256:` and 64 hex digits), and
    // a `:` inside the repository only as a registry's port (`host:5000/app`).
    let (named, digest) = match image.split_once('@') {
        Some((named, digest)) => (named, Some(digest)),
        None => (image, None),
    };
    let (repository, tag) = match named.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (named, None),
    };
    let mut parts = repository.split('/');
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let port_ok = !first.contains(':')
        || (!rest.is_empty()
            && first.split_once(':').is_some_and(|(_, port)| {
                !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
            }));
    let digest_ok = digest.is_none_or(|d| {
        d.strip_prefix("sha256:")
            .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    let ok = image.len() <= 512
        && image.starts_with(|c: char| c.is_ascii_alphanumeric())
        && image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c))
        && !image.ends_with([':', '@'])
        && !repository.chars().any(|c| c.is_ascii_uppercase())
        && rest.iter().all(|p| !p.contains(':'))
        && port_ok
        && tag.is_none_or(|t| !t.is_empty() && !t.contains('@'))
        && digest_ok;
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{} is not an image: NAME[:TAG], NAME@sha256:DIGEST or an image id (NAME in \
             lowercase letters, digits and `._-/`; a TAG may have capitals too)",
            quote(image)
        )))
    }
}

/// `docked`: the dock of this shell, whose DOCKER_HOST was set aside.
fn run(args: &Args, docked: Option<&str>) -> Result<i32> {
    if !args.dry_run {
        // From the first probe on, a Ctrl-C is ours to act on (exit 128 + the signal).
        crate::process::install_signal_handlers();
    }
    // Every name is checked before anything runs.
    let (from, given) = split_source(&args.image, args.from.as_deref(), args.dest.is_empty())?;
    if let Some(dock) = docked {
        let what = match (&from, args.dest.is_empty()) {
            (None, _) => "the image is read from this machine's engine",
            (Some(_), true) => "the image is loaded into this machine's engine",
            (Some(_), false) => "the image is relayed through this machine, not loaded here",
        };
        eprintln!("transfer-image: docked to {dock}: {what}");
    }
    let image = resolve_image(&given, &crate::project::user_name(), from.as_deref())?;
    check_reference(&image)?;
    let source = from.map(|f| Remote::for_dest(&f, args.sudo)).transpose()?;
    let mut dests: Vec<Remote> = Vec::new();
    for name in &args.dest {
        let remote = Remote::for_dest(name, args.sudo)?;
        if let Some(src) = &source
            && remote.same_as(src)
        {
            return Err(Error::Usage(format!(
                "{} is where the image comes from: name other destinations",
                quote(name)
            )));
        }
        if let Some(twice) = dests.iter().find(|d| d.same_as(&remote)) {
            return Err(Error::Usage(format!(
                "{} and {} are the same destination: name it once",
                quote(name),
                quote(&twice.name)
            )));
        }
        dests.push(remote);
    }
    let mut dests: Vec<Engine> = dests.into_iter().map(Engine::Remote).collect();
    // In a docked shell, an image from here goes to that dock by default.
    if dests.is_empty()
        && source.is_none()
        && let Some(docked) = dock::current()
    {
        eprintln!(
            "transfer-image: no destination named: sending to {}, the dock of this shell",
            docked.name()
        );
        dests.push(Engine::Remote(Remote::for_dest(&docked.ip, args.sudo)?));
    }
    if dests.is_empty() {
        if source.is_none() {
            return Err(Error::Usage(
                "name where to send it: `transfer-image IMAGE DOCK…`, or `transfer-image \
                 DOCK:IMAGE` to bring an image here from a dock"
                    .into(),
            ));
        }
        dests.push(Engine::Local);
    }
    let image = match source {
        None => source::local_image(&image, args.docker_save)?,
        // Nothing runs for a dry run: what the dock has is assumed (zstd, GNU tar).
        Some(remote) if args.dry_run => Image {
            reference: source::named(&image, None),
            layers: vec![],
            size: 0,
            origin: Origin::Dock {
                remote,
                codec: Codec::ZstdAdapt,
                gnu_tar: true,
                reader: None,
            },
        },
        Some(remote) => source::dock_image(remote, &image, args.docker_save)?,
    };
    // Engines whose `docker load` takes only whole images (the containerd store) pull an
    // image from here out of a registry instead (crate::transfer::via_registry), each
    // destination that needs it on its own; the others share one reading below.
    let mut failed_by_registry: Vec<String> = vec![];
    let several = dests.len() > 1;
    if let Origin::Local { store } = &image.origin {
        let mut rest = vec![];
        for engine in dests {
            let Engine::Remote(remote) = &engine else {
                rest.push(engine);
                continue;
            };
            match via_registry::maybe_send(
                &image.reference,
                remote,
                store.as_deref(),
                args.via_registry,
                !args.full,
                args.dry_run,
                several,
            ) {
                Ok(None) => rest.push(engine),
                Ok(Some(0)) => {}
                Ok(Some(crate::exec::INTERRUPTED)) => {
                    return Ok(crate::process::interrupted_code());
                }
                Ok(Some(_)) => failed_by_registry.push(remote.name.clone()),
                // A name refused, Ctrl-C, or the only destination: the command's error.
                Err(e) if !several || matches!(e, Error::Usage(_) | Error::Interrupted(_)) => {
                    return Err(e);
                }
                Err(e) => {
                    crate::error::report("transfer-image", &e);
                    failed_by_registry.push(remote.name.clone());
                }
            }
        }
        dests = rest;
    } else if args.via_registry {
        return Err(Error::Usage(
            "--via-registry sends an image from this machine; a dock's image comes back \
             with `docker save`"
                .into(),
        ));
    }
    if dests.is_empty() {
        if several && !failed_by_registry.is_empty() {
            eprintln!(
                "transfer-image: error: {} of {} destinations failed: {}",
                failed_by_registry.len(),
                args.dest.len().max(failed_by_registry.len()),
                failed_by_registry.join(", ")
            );
        }
        return Ok(if failed_by_registry.is_empty() { 0 } else { 1 });
    }
    if args.dry_run {
        // What the real run reads from the engine's storage is the archive `docker save`
        // gives: the pipeline shown is that one, which can be pasted.
        let source = match &image.origin {
            Origin::Local { store: Some(_) } => {
                eprintln!(
                    "transfer-image: the real run reads the layers of {} from the engine's \
                     storage, the archive `docker save` gives, faster (--docker-save runs the \
                     pipeline as shown)",
                    image.reference
                );
                format!("docker save {}", quote(&image.reference))
            }
            Origin::Dock { .. } => {
                if let Some(reader) = Reader::find().filter(|_| !args.docker_save) {
                    eprintln!("transfer-image: {}", reader.note());
                }
                image.shown()
            }
            _ => image.shown(),
        };
        for engine in dests {
            let target = Target {
                engine,
                codec: Codec::Zstd,
                present: 0,
            };
            println!("{source} | {}", target.shown());
        }
        return Ok(0);
    }
    let report = crate::transfer::run(&image, dests, args.full, several);
    // Interrupted after every destination had the whole image, nothing was cut off: each
    // loaded it (or said why not), and the exit code says so.
    let cut = report.interrupted && report.outcomes.iter().any(|o| o.cut);
    if let Some(bytes) = report.received.filter(|_| !cut) {
        eprintln!(
            "transfer-image: received {} ({bytes} bytes) from {} in {:.1}s",
            mib(bytes),
            image.origin_name(),
            report.elapsed.as_secs_f64()
        );
    }
    if cut {
        eprintln!(
            "transfer-image: interrupted: every transfer still running was cut off before the \
             image's end (its `docker load` takes nothing)"
        );
    } else if report.interrupted {
        eprintln!(
            "transfer-image: interrupted after the image's end had gone to every destination: \
             nothing was cut off"
        );
    }
    for o in &report.outcomes {
        match (o.loaded, o.sent) {
            (true, Some(sent)) => eprintln!(
                "transfer-image: sent {} ({sent} bytes) to {} in {:.1}s{}",
                mib(sent),
                o.name,
                o.elapsed.as_secs_f64(),
                match o.level {
                    Some(level) => format!(" (zstd level {level} at the end)"),
                    None => " (gzip)".to_string(),
                }
            ),
            (true, None) => eprintln!(
                "transfer-image: loaded {} into {HERE}'s engine in {:.1}s",
                image.reference,
                o.elapsed.as_secs_f64()
            ),
            // Its error was said when it happened.
            (false, _) if o.error.is_some() => {}
            (false, _) if cut => {}
            (false, _) => eprintln!(
                "transfer-image: error: {} did not load the image (see the messages above)",
                o.name
            ),
        }
    }
    if cut {
        return Ok(crate::process::interrupted_code());
    }
    let failed: Vec<&str> = failed_by_registry
        .iter()
        .map(String::as_str)
        .chain(
            report
                .outcomes
                .iter()
                .filter(|o| !o.loaded)
                .map(|o| o.name.as_str()),
        )
        .collect();
    if several && !failed.is_empty() {
        eprintln!(
            "transfer-image: error: {} of {} destinations failed: {}",
            failed.len(),
            report.outcomes.len() + failed_by_registry.len(),
            failed.join(", ")
        );
    }
    Ok(if failed.is_empty() { 0 } else { 1 })
}

pub(crate) fn main(args: Args) -> i32 {
    // In a docked shell DOCKER_HOST points at the dock, but this machine's engine is
    // this machine's (run-image's hint says `transfer-image IMAGE DOCK` to a docked
    // shell): the DOCKER_HOST that `source dock` set is not where images are read or
    // brought back to.
    let mut docked = None;
    if let Some(dock) = dock::current()
        && std::env::var("DOCKER_HOST").ok() == Some(dock.ssh_url())
    {
        docked = Some(dock.name().to_string());
        // SAFETY: at the start of main, before this process starts any thread.
        unsafe { std::env::remove_var("DOCKER_HOST") };
    }
    // A name that is no registered dock is a usage error (exit 2), an interruption exits
    // 128 + the signal: the errors' own exit codes.
    super::exit_code("transfer-image", run(&args, docked.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_are_plain() {
        for good in [
            "app",
            "app:1",
            "127.0.0.1:5000/team/app:v1.2-rc_3",
            "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "9e179e0bc948",
            "app:V1-Release",
            "localhost:5000/app",
        ] {
            assert!(check_reference(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-oProxyCommand=x",
            "app;touch F",
            "app$(touch F)",
            "app name",
            "app:v1:extra",
            "app@sha256:abc",
            "app@md5:0123",
            "team/a:1/app",
            "host:/app",
            "WalkPull:v1",
            "app'",
            "app\"",
            "app\n",
            "app`id`",
            ":tag",
        ] {
            assert!(check_reference(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_user_at_host_prefix_is_a_source_and_a_plain_name_an_image() {
        assert_eq!(
            split_source("ann@10.0.0.7:app:1", None, true).unwrap(),
            (Some("ann@10.0.0.7".to_string()), "app:1".to_string())
        );
        assert_eq!(
            split_source("app:1", Some("gpu"), true).unwrap(),
            (Some("gpu".to_string()), "app:1".to_string())
        );
        assert_eq!(
            split_source("app", None, true).unwrap(),
            (None, "app".to_string())
        );
    }
}
