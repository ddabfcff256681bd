//! `dockerutils man`: roff pages made from the commands' clap definitions, one per command.

mod common;

use std::process::Command;

fn dockerutils(args: &[&str]) -> std::process::Output {
    Command::new(common::bin_dir().join("dockerutils"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_commands_page_has_its_title_flags_and_examples() {
    let out = dockerutils(&["man", "build-image"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(
        page.contains("\n.TH build-image 1  \"dockerutils "),
        "{page}"
    );
    for flag in [
        r"\-\-force_build_base",
        r"\-\-image_name",
        r"\-\-image_tag",
        r"\-\-pull_base",
        r"\-\-dry\-run",
    ] {
        assert!(page.contains(flag), "{flag} missing:\n{page}");
    }
    assert!(page.contains("build\\-image all \\-t v1.2"), "{page}");

    // It reads as a man page: man(1) formats it without a warning.
    let formatted = Command::new("sh")
        .args([
            "-c",
            "dockerutils man run-image | MANWIDTH=100 man --nj --nh --warnings -l - 2>&1",
        ])
        .env("PATH", path())
        .output()
        .unwrap();
    let shown = text(&formatted.stdout);
    assert!(shown.contains("run-image - Run a container"), "{shown}");
    assert!(shown.contains("-c, --command <COMMAND>"), "{shown}");
    assert!(!shown.contains("warning"), "{shown}");
}

fn path() -> String {
    format!(
        "{}:{}",
        common::bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn the_tools_page_lists_the_commands_and_init_has_its_own() {
    let page = text(&dockerutils(&["man"]).stdout);
    assert!(page.contains("\n.TH dockerutils 1 "), "{page}");
    assert!(page.contains("\\fBbuild\\-image\\fR(1)"), "{page}");
    assert!(page.contains("\\fBdockerutils\\-init\\fR(1)"), "{page}");
    let init = text(&dockerutils(&["man", "init"]).stdout);
    assert!(init.contains("\n.TH dockerutils-init 1 "), "{init}");
    assert!(init.contains("dockerutils init"), "{init}");
}

#[test]
fn dir_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("share/man/man1");
    let out = dockerutils(&["man", "--dir", target.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let linked = text(&dockerutils(&["--list-commands"]).stdout);
    let mut want: Vec<String> = linked.lines().map(|n| format!("{n}.1")).collect();
    want.extend(
        [
            "dockerutils",
            "dockerutils-init",
            "dockerutils-completions",
            "dockerutils-man",
            "dockerutils-ssh-config",
            "dockerutils-idle-stop",
        ]
        .map(|n| format!("{n}.1")),
    );
    want.sort();
    let mut got: Vec<String> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, want);
    for file in &got {
        let page = std::fs::read_to_string(target.join(file)).unwrap();
        let title = file.trim_end_matches(".1");
        assert!(page.contains(&format!("\n.TH {title} 1 ")), "{file}");
    }
    assert_eq!(
        text(&out.stdout).lines().count(),
        got.len(),
        "one `wrote` line per page"
    );

    // `man` finds them there by name.
    let shown = Command::new("man")
        .args([
            "--nj",
            "-M",
            dir.path().join("share/man").to_str().unwrap(),
            "ssh-dock",
        ])
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    assert!(
        text(&shown.stdout).contains("ssh-dock - Open a shell on a dock"),
        "{}",
        text(&shown.stderr)
    );
}

#[test]
fn an_unknown_page_is_a_usage_error_naming_the_pages() {
    let out = dockerutils(&["man", "build-images"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("no man page `build-images`") && err.contains("build-image, "),
        "{err}"
    );
}

#[test]
fn install_sh_links_the_commands_and_installs_the_man_pages() {
    // install.sh with a stand-in `cargo install` that puts the tested binary in place.
    let dir = tempfile::tempdir().unwrap();
    let stubs = dir.path().join("stubs");
    std::fs::create_dir_all(&stubs).unwrap();
    let cargo = stubs.join("cargo");
    // `cargo build --target T` (the static reader, crates/reader/build-static.sh): busybox
    // stands in for it, put where that build would.
    std::fs::write(
        &cargo,
        "#!/bin/sh\n# cargo install … --root ROOT\n\
         if [ \"$1\" = build ]; then\n\
           while [ $# -gt 0 ]; do [ \"$1\" = --target ] && t=$2; shift; done\n\
           mkdir -p \"$CARGO_TARGET_DIR/$t/release\" && cp /bin/busybox \"$CARGO_TARGET_DIR/$t/release/dockerutils-reader\"\n\
           exit\n\
         fi\n\
         while [ $# -gt 0 ]; do [ \"$1\" = --root ] && root=$2; shift; done\n\
         mkdir -p \"$root/bin\" && cp \"$DOCKERUTILS_BIN\" \"$root/bin/dockerutils\" \
         && cp \"$DOCKERUTILS_DAILY_BIN\" \"$root/bin/dockerutils-daily\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    let prefix = dir.path().join("prefix");
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh"))
        .env("PREFIX", &prefix)
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .env("DOCKERUTILS_BIN", env!("CARGO_BIN_EXE_dockerutils"))
        .env(
            "DOCKERUTILS_DAILY_BIN",
            env!("CARGO_BIN_EXE_dockerutils-daily"),
        )
        .env(
            "PATH",
            format!("{}:{}", stubs.display(), std::env::var("PATH").unwrap()),
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The reader a pull back runs on a dock, where transfer-image looks for it.
    let reader = prefix.join("lib/dockerutils/dockerutils-reader");
    assert_eq!(
        std::fs::read(&reader).unwrap(),
        std::fs::read("/bin/busybox").unwrap(),
        "{}",
        reader.display()
    );
    let bin = prefix.join("bin");
    for (name, binary) in [
        ("build-image", "dockerutils-daily"),
        ("run-image", "dockerutils-daily"),
        ("ssh-dock", "dockerutils"),
        ("ls-dock", "dockerutils"),
    ] {
        assert_eq!(
            std::fs::read_link(bin.join(name)).unwrap(),
            std::path::Path::new(binary),
            "{name}"
        );
    }
    // The daily binary serves its commands, hands anything else to the full binary…
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(bin.join(program)).args(args).output().unwrap();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, help, _) = run("build-image", &["--help"]);
    assert_eq!(code, Some(0));
    assert!(help.contains("Usage: build-image"), "{help}");
    let (code, version, err) = run("dockerutils-daily", &["--version"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(version.starts_with("dockerutils "), "{version}");
    let (code, _, err) = run("dockerutils-daily", &["no-such-command"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown command `no-such-command`"), "{err}");
    assert!(!err.contains("tip:"), "nothing is close to it: {err}");
    let (code, _, err) = run("dockerutils", &["biuld-image"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("unknown command `biuld-image`")
            && err.contains("tip: a similar command exists: `build-image`"),
        "{err}"
    );
    let (code, _, err) = run("dockerutils", &["--bogus"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown option `--bogus`"), "{err}");
    // … and says what to do when the full binary is not beside it.
    std::fs::remove_file(bin.join("dockerutils")).unwrap();
    let (code, _, err) = run("dockerutils-daily", &["ls-dock"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("dockerutils is not there") && err.contains("bash install.sh"),
        "{err}"
    );
    let (code, help, _) = run("run-image", &["--help"]);
    assert_eq!(
        code,
        Some(0),
        "the daily commands need only their own binary"
    );
    assert!(help.contains("Usage: run-image"), "{help}");
    for name in ["init", "completions", "man", "ssh-config", "idle-stop"] {
        assert!(!bin.join(name).exists(), "{name} must not be linked");
    }
    // The reference the man pages point to.
    let doc = prefix.join("share/doc/dockerutils");
    for file in ["README.md", "cfg.md", "images.md", "docks.md"] {
        assert!(doc.join(file).is_file(), "{file}");
    }
    let man1 = prefix.join("share/man/man1");
    for page in ["dockerutils.1", "build-image.1", "dockerutils-init.1"] {
        assert!(man1.join(page).is_file(), "{page}");
    }
    assert!(
        text(&out.stdout).contains("completions bash"),
        "{}",
        text(&out.stdout)
    );
}
