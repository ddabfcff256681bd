//! `dockerutils-reader`: the helper a pull back (`transfer-image DOCK:IMAGE`) runs on a
//! dock, in a throwaway container that sees the dock engine's storage read-only.
//!
//! On a classic engine, `docker save` exports the whole image to a temporary directory
//! before its first byte (1.7 s of a 231 MB image on the test dock): a pull would pay that
//! before anything moves, and again to learn the archive's layer names. This reads the
//! layers from the storage as they are sent, leaves out the bottom ones the other side
//! holds, and compresses at the pace of the link: the push's own reader, on the dock.
//! Built statically (no libc in the container: `FROM scratch`, made by `docker import`);
//! transfer-image puts it on a dock once, as an image tagged with its sha256.
//!
//! Not a command for people: its one use is
//! `dockerutils-reader archive SKIP ENGINE-ROOT IMAGE-ID TAG`, zstd on stdout.

use dockerutils_reader::compress::AdaptiveZstd;
use dockerutils_reader::store;
use std::io::Write;
use std::path::Path;

/// The exit code when the image cannot be read from the storage (nothing was written):
/// transfer-image then falls back to `docker save`.
const UNREADABLE: i32 = 3;

fn main() {
    std::process::exit(run(std::env::args().skip(1).collect()));
}

fn run(args: Vec<String>) -> i32 {
    let [cmd, skip, root, id, tag] = args.as_slice() else {
        if args.first().map(String::as_str) == Some("--version") {
            println!("dockerutils-reader {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        eprintln!(
            "usage: dockerutils-reader archive SKIP ENGINE-ROOT IMAGE-ID TAG\n\
             (transfer-image runs it on a dock to pull an image back; not a command of its own)"
        );
        return 2;
    };
    if cmd != "archive" {
        eprintln!("dockerutils-reader: unknown command `{cmd}` (the one command: archive)");
        return 2;
    }
    let Ok(skip) = skip.parse::<usize>() else {
        eprintln!("dockerutils-reader: SKIP must be a number of layers, not `{skip}`");
        return 2;
    };
    let Some(image) = store::open_at(Path::new(root), id, tag) else {
        eprintln!(
            "dockerutils-reader: image {id} cannot be read from the engine's storage in {root} \
             (another storage driver, the containerd image store, or no read access)"
        );
        return UNREADABLE;
    };
    if skip > image.layer_count() {
        eprintln!(
            "dockerutils-reader: SKIP {skip} is more than the image's {} layers",
            image.layer_count()
        );
        return 2;
    }
    let written = AdaptiveZstd::new(std::io::stdout())
        .and_then(|z| image.write_archive(skip, z, &mut |_| {}))
        .and_then(|z| z.finish())
        .and_then(|mut out| out.flush());
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("dockerutils-reader: reading {tag}: {e}");
            1
        }
    }
}
