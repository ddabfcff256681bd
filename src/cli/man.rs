//! `dockerutils man [COMMAND] [--dir DIR]`: man pages (roff), made from the same clap
//! definitions as `--help`: one per command (`build-image.1`, …), `dockerutils-init.1` and
//! the like for the commands that are only `dockerutils <command>`, and `dockerutils.1`.

use super::{definitions as cli, entries};
use crate::error::{Error, Result};
use clap::Parser;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(
    name = "man",
    bin_name = "dockerutils man",
    display_name = "dockerutils-man",
    version,
    about = "Print the man page of a command, or write every page into a directory",
    long_about = "Print the man page (roff) of a command: COMMAND is one of the commands \
        (build-image, run-image, …, init) or dockerutils (the default). With --dir, write the \
        pages into DIR instead: every page, or COMMAND's only. install.sh installs them into \
        $PREFIX/share/man/man1.",
    after_help = "Examples:\n  dockerutils man build-image | man -l -\n  dockerutils man --dir ~/.local/share/man/man1   # then: man build-image"
)]
pub(super) struct Args {
    /// The command whose page to print [default: dockerutils]
    pub command: Option<String>,
    /// Write the pages into this directory (made if missing) instead of printing one
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub dir: Option<PathBuf>,
}

/// Every page's command name: the tool, then its commands.
pub(super) fn page_names() -> Vec<String> {
    std::iter::once("dockerutils".to_string())
        .chain(entries().into_iter().map(|e| e.name))
        .collect()
}

/// The page of `name`: its file name (`build-image.1`) and its roff text.
pub(super) fn page(name: &str) -> Result<(String, Vec<u8>)> {
    let source = format!("dockerutils {}", env!("CARGO_PKG_VERSION"));
    let mut out = Vec::new();
    let io = |e| Error::io(format!("cannot render the man page of {name}"), e);
    if name == "dockerutils" {
        let man = Man::new(cli::dockerutils())
            .source(source)
            .manual("dockerutils");
        // Rendered section by section (each starts with roff's apostrophe preamble, which
        // is kept once).
        let mut part = Vec::new();
        man.render_title(&mut out).map_err(io)?;
        man.render_name_section(&mut part).map_err(io)?;
        man.render_synopsis_section(&mut part).map_err(io)?;
        man.render_description_section(&mut part).map_err(io)?;
        // clap_mangen would name the pages `dockerutils-build-image(1)`: the commands'
        // pages are under their own names.
        let mut roff = Roff::default();
        roff.control("SH", ["COMMANDS"]);
        for e in entries() {
            roff.control("TP", []);
            roff.text([bold(page_title(&e.name)), roman("(1)")]);
            roff.text([roman(e.about())]);
        }
        roff.control("SH", ["SEE ALSO"]);
        roff.text([roman(
            "`<command> --help`; the reference installed next to these pages, \
             share/doc/dockerutils (docs/ in the source): images.md for the project \
             conventions, cfg.md for docker/dockerutils.cfg (its keys and how values are \
             written), docks.md, services.md.",
        )]);
        roff.to_writer(&mut part).map_err(io)?;
        let preamble = preamble();
        let part = String::from_utf8_lossy(&part).replace(&preamble, "");
        out.extend_from_slice(part.as_bytes());
        return Ok(("dockerutils.1".into(), out));
    }
    let Some(entry) = super::entry(name) else {
        return Err(Error::Usage(format!(
            "no man page `{name}`; pages: {}",
            page_names().join(", ")
        )));
    };
    let cmd = entry.command().display_name(page_title(name));
    let man = Man::new(cmd).source(source).manual("dockerutils");
    man.render(&mut out).map_err(io)?;
    Ok((man.get_filename(), out))
}

/// What roff puts before every rendering (it defines the apostrophe string).
fn preamble() -> String {
    let mut empty = Vec::new();
    let _ = Roff::default().to_writer(&mut empty);
    String::from_utf8_lossy(&empty).into_owned()
}

/// `build-image`, but `dockerutils-init` for a command that is only `dockerutils init`.
fn page_title(name: &str) -> String {
    if super::entry(name).is_some_and(|e| e.subcommand_only) {
        format!("dockerutils-{name}")
    } else {
        name.to_string()
    }
}

fn write_pages(dir: &Path, names: &[&str]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let mut written = vec![];
    for name in names {
        let (file, text) = page(name)?;
        let path = dir.join(file);
        std::fs::write(&path, text)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        written.push(path);
    }
    Ok(written)
}

pub(super) fn main(args: Args) -> i32 {
    let result = match (&args.dir, &args.command) {
        (Some(dir), Some(name)) => write_pages(dir, &[name]),
        (Some(dir), None) => {
            let names = page_names();
            write_pages(dir, &names.iter().map(String::as_str).collect::<Vec<_>>())
        }
        (None, name) => page(name.as_deref().unwrap_or("dockerutils")).map(|(_, text)| {
            use std::io::Write;
            let _ = std::io::stdout().write_all(&text);
            vec![]
        }),
    };
    match result {
        Ok(written) => {
            for path in written {
                println!("wrote {}", path.display());
            }
            0
        }
        Err(e) => crate::commands::fail("man", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_a_page_with_its_title() {
        for name in page_names() {
            let (file, text) = page(&name).unwrap();
            let text = String::from_utf8(text).unwrap();
            let title = if name == "dockerutils" {
                name.to_string()
            } else {
                page_title(&name)
            };
            assert_eq!(file, format!("{title}.1"));
            assert!(text.contains(&format!("\n.TH {title} 1 ")), "{text}");
            assert_eq!(text.matches(&preamble()).count(), 1, "{text}");
        }
        assert!(page("nope").is_err());
    }
}
