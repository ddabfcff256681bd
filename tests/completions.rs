//! Shell completions in real shells: `dockerutils completions bash|zsh|fish` is sourced,
//! and TAB after a command offers the project's images or the registered docks, which the
//! binary computes when asked.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A project (in a subdirectory of which the shells run) and a HOME with registered docks.
struct World {
    _dir: tempfile::TempDir,
    home: PathBuf,
    root: PathBuf,
    /// Where the shells run: below the root, so the root is found upward.
    cwd: PathBuf,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let root = dir.path().join("proj");
    for image in ["base", "dev", "prod"] {
        std::fs::create_dir_all(root.join("docker").join(image)).unwrap();
    }
    std::fs::write(
        root.join("docker/dockerutils.cfg"),
        "[run_image]\nsynthetic_images=shell, tests\n[shell]\nname=dev\n",
    )
    .unwrap();
    let cwd = root.join("src/pkg");
    std::fs::create_dir_all(&cwd).unwrap();
    for (ip, moniker) in [
        ("10.0.0.5", "gpu-box"),
        ("10.0.0.6", "cpu-box"),
        ("10.0.0.7", "none"),
    ] {
        let d = home.join(".docker").join(ip);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("connection_config.txt"),
            format!("DOCK_USER=ubuntu\nDOCK_MONIKER={moniker}\nDOCK_HOSTNAME={ip}\nDOCK_IP={ip}\n"),
        )
        .unwrap();
    }
    World {
        _dir: dir,
        home,
        root,
        cwd,
    }
}

/// `dockerutils completions SHELL`, written to a file.
fn script(w: &World, shell: &str) -> PathBuf {
    let out = Command::new(common::bin_dir().join("dockerutils"))
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = w.home.join(format!("completions.{shell}"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

fn shell(program: &str, w: &World, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    let path = format!(
        "{}:{}",
        common::bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.current_dir(dir)
        .env("HOME", &w.home)
        .env("PATH", path)
        .env_remove("DOCKER_IP")
        .env_remove("_DOCKERUTILS_COMPLETE");
    cmd
}

/// Bash: what the registered completion function puts in COMPREPLY for `words` (the last
/// one being completed), as bash calls it at TAB.
const BASH_HARNESS: &str = r#"
source "$1"; shift
offer() {
  COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9
  local spec fn
  spec=$(complete -p "$1") || { echo "no completion for $1"; return; }
  fn=${spec##*-F }; fn=${fn%% *}
  COMPREPLY=()
  "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  printf '%s\n' "${COMPREPLY[@]}" | grep -v '^-' | tr '\n' ' '; echo
}
"#;

fn bash_offers(w: &World, dir: &Path, words: &[&str]) -> Vec<String> {
    let out = shell("bash", w, dir)
        .arg("-c")
        .arg(format!("{BASH_HARNESS}\noffer \"$@\""))
        .arg("bash")
        .arg(script(w, "bash"))
        .args(words)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_registers_every_command_name() {
    let w = world();
    let names = Command::new(common::bin_dir().join("dockerutils"))
        .arg("--list-commands")
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&names.stdout).into_owned();
    assert!(names.contains("build-image\n") && names.contains("ssh-dock\n"));
    // Only `dockerutils <command>`: not linked, so not completed under their own name.
    for own in ["init", "completions", "man", "ssh-config", "idle-stop"] {
        assert!(!names.lines().any(|n| n == own), "{own} is listed");
    }
    let out = shell("bash", &w, &w.cwd)
        .arg("-c")
        .arg(
            "source \"$1\"; shift; for n in \"$@\" dockerutils; do complete -p \"$n\" >/dev/null || echo \"missing $n\"; done",
        )
        .arg("bash")
        .arg(script(&w, "bash"))
        .args(names.lines())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn bash_completes_project_images_for_the_image_commands() {
    let w = world();
    assert_eq!(
        bash_offers(&w, &w.cwd, &["build-image", ""]),
        ["base", "dev", "prod", "all", "clean"]
    );
    assert_eq!(bash_offers(&w, &w.cwd, &["build-image", "d"]), ["dev"]);
    assert_eq!(
        bash_offers(&w, &w.cwd, &["run-image", ""]),
        ["base", "dev", "prod", "shell", "tests"]
    );
    assert_eq!(bash_offers(&w, &w.cwd, &["publish-image", "p"]), ["prod"]);
    // transfer-image's IMAGE: the project's images (any docker reference is taken too).
    assert_eq!(bash_offers(&w, &w.cwd, &["transfer-image", "d"]), ["dev"]);
    // Through the tool's own name, and after flags.
    assert_eq!(
        bash_offers(&w, &w.cwd, &["dockerutils", "build-image", "-f", "p"]),
        ["prod"]
    );
    // Images follow the tree as it changes.
    std::fs::create_dir_all(w.root.join("docker/gpu")).unwrap();
    assert_eq!(bash_offers(&w, &w.cwd, &["build-image", "g"]), ["gpu"]);
    // Outside a project: no images (bash falls back to file names).
    assert_eq!(
        bash_offers(&w, &w.home, &["build-image", "a"]),
        Vec::<String>::new()
    );
}

#[test]
fn bash_completes_registered_docks_for_the_dock_commands() {
    let w = world();
    let all = ["cpu-box", "gpu-box", "10.0.0.5", "10.0.0.6", "10.0.0.7"];
    for cmd in [
        "ssh-dock",
        "unregister-dock",
        "start-dock",
        "stop-dock",
        "destroy-dock",
        "dock-env",
        "nb-dock",
    ] {
        let mut got = bash_offers(&w, &w.cwd, &[cmd, ""]);
        got.sort();
        let mut want = all.to_vec();
        want.sort();
        assert_eq!(got, want, "{cmd}");
    }
    assert_eq!(bash_offers(&w, &w.cwd, &["ssh-dock", "g"]), ["gpu-box"]);
    assert_eq!(
        bash_offers(&w, &w.cwd, &["transfer-image", "myimg:tag", "c"]),
        ["cpu-box"]
    );
    assert_eq!(
        bash_offers(&w, &w.cwd, &["sync-up", "--dock", "10.0.0.6"]),
        ["10.0.0.6"]
    );
    // And the tool's own subcommands.
    assert_eq!(
        bash_offers(&w, &w.cwd, &["dockerutils", "init", ""]),
        ["dev", "notebook", "prod"]
    );
    assert_eq!(
        bash_offers(&w, &w.cwd, &["dockerutils", "completions", ""]),
        ["bash", "zsh", "fish"]
    );
}

#[test]
fn zsh_script_is_valid_and_tab_offers_images_in_a_real_zsh() {
    let w = world();
    let path = script(&w, "zsh");
    let check = shell("zsh", &w, &w.cwd)
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "zsh -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // An interactive zsh on a pseudo-terminal (zsh/zpty): TAB after `build-image `
    // lists what the binary answered, with each image's description.
    let driver = format!(
        r#"
zmodload zsh/zpty
zpty -b z 'zsh -f -i'
zpty -w z 'PS1="> "; autoload -U compinit; compinit -u -D; source {script}; print -r READY$((40+2))'
zpty -r -m z out '*READY42*'
zpty -w -n z $'build-image \t'
all=""
for i in {{1..100}}; do
  sleep 0.1
  while zpty -r -t z chunk; do all+=$chunk; done
  [[ $all == *clean* ]] && break
done
print -r -- "$all"
zpty -d z
"#,
        script = path.display()
    );
    let out = shell("zsh", &w, &w.cwd)
        .args(["-f", "-c", &driver])
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    for line in [
        "dev",
        "-- docker/dev",
        "prod",
        "all",
        "-- every image",
        "clean",
    ] {
        assert!(screen.contains(line), "`{line}` not offered:\n{screen}");
    }
}

#[test]
fn fish_script_is_valid_and_completes_docks_and_images() {
    let w = world();
    let path = script(&w, "fish");
    let found = Command::new("fish").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "fish is missing: `apt-get install fish` (tests/run.sh installs it)"
    );
    let check = shell("fish", &w, &w.cwd)
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "fish -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let out = shell("fish", &w, &w.cwd)
        .arg("-c")
        .arg(format!(
            "source {}; complete -C 'ssh-dock '; echo ==; complete -C 'run-image s'",
            path.display()
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let (docks, images) = text.split_once("==\n").expect(&text);
    assert!(
        docks.contains("gpu-box\tubuntu@10.0.0.5\n") && docks.contains("10.0.0.7\t"),
        "{docks}"
    );
    assert_eq!(images, "shell\tsynthetic image (runs dev)\n");
}

#[test]
fn the_completion_protocol_answers_directly_and_fast() {
    // What the shells' functions run at TAB: the env var, `--`, the words typed.
    let w = world();
    let start = Instant::now();
    let out = shell(
        common::bin_dir().join("build-image").to_str().unwrap(),
        &w,
        &w.cwd,
    )
    .env("_DOCKERUTILS_COMPLETE", "zsh")
    .env("_CLAP_COMPLETE_INDEX", "1")
    .args(["--", "build-image", "c"])
    .output()
    .unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "clean:remove the project's images"
    );
    // Without the variable, `--` is an ordinary argument.
    let plain = shell(
        common::bin_dir().join("build-image").to_str().unwrap(),
        &w,
        &w.cwd,
    )
    .args(["--", "nope"])
    .output()
    .unwrap();
    assert_eq!(plain.status.code(), Some(2));
}
