//! run-image --log on a real Docker engine: pipelines whose output goes to size-rotated log
//! files framed by banners, as the original's `pipeline` script piped into
//! `multilog s1000000 n30`.

mod common;

use common::{
    BUSYBOX_DOCKERFILE, Project, bin_dir, containers, image_id, project_with, remove_containers,
    require_engine,
};
use common::{READY_CMD, in_terminal, take_names, wait_exit, wait_until, with_clean_env};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A container command printing `line 1` … `line N` on stdout and `err 100`, `err 200` …
/// on stderr, and exiting with `code`.
fn numbered(n: usize, code: i32) -> String {
    format!(
        "sh -c 'i=1; while [ $i -le {n} ]; do echo \"line $i\"; [ $((i % 100)) = 0 ] && echo \"err $i\" >&2; i=$((i+1)); done; exit {code}'"
    )
}

/// Is this the name of a rotated file (`20240501T030000.123456Z.log`)?
fn is_rotated(name: &str) -> bool {
    let b = name.as_bytes();
    name.len() == 27
        && name.ends_with("Z.log")
        && b[8] == b'T'
        && b[15] == b'.'
        && b.iter()
            .enumerate()
            .all(|(i, c)| [8, 15].contains(&i) || i >= 22 || c.is_ascii_digit())
}

/// The log's files, oldest first and `current` last, with their contents; panics on any
/// other file than those and `lock`.
fn log_files(dir: &Path) -> Vec<(String, String)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "current" && n != "lock")
        .collect();
    for n in &names {
        assert!(is_rotated(n), "unexpected file {n} in {}", dir.display());
    }
    names.sort();
    names.push("current".into());
    names
        .into_iter()
        .map(|n| {
            let content = std::fs::read_to_string(dir.join(&n)).unwrap();
            (n, content)
        })
        .collect()
}

/// Every file within the size and ending at a line's end (no line split across files).
fn assert_whole_lines(files: &[(String, String)], max: usize) {
    for (name, content) in files {
        assert!(content.len() <= max, "{name} has {} bytes", content.len());
        assert!(content.ends_with('\n'), "{name} ends mid-line: {content:?}");
    }
}

/// The numbers of the `line N` lines, in order.
fn numbers(lines: &[&str]) -> Vec<usize> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("line "))
        .map(|n| n.parse().unwrap())
        .collect()
}

/// Waits until the log's `current` holds `needle`.
fn wait_for_log(current: &Path, needle: &str) {
    let start = Instant::now();
    while !std::fs::read_to_string(current).is_ok_and(|c| c.contains(needle)) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{needle} never reached {}",
            current.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_line_is_logged_once_in_order_across_rotated_files_between_banners() {
    let p = project_with(
        "plog",
        "[plog]\nenv=plog_env\n[plog_env]\nDB_PASSWORD=hunter2\nLEVEL=info\n",
    );
    let dir = p.root.join("all");
    let cmd = numbered(1000, 3);
    let out = p
        .cmd("run-image")
        .args(["plog", "--log"])
        .arg(&dir)
        .args(["--log-size", "2000", "--log-keep", "1000", "-c", &cmd])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    // Not at a terminal (cron): only the failure is told, with where the output is.
    assert_eq!(
        err,
        format!(
            "run-image: exit code 3; the output is in {}\n",
            dir.join("current").display()
        )
    );

    let files = log_files(&dir);
    assert!(files.len() >= 5, "only {} files", files.len());
    assert_whole_lines(&files, 2000);
    let all: String = files.iter().map(|(_, c)| c.as_str()).collect();
    assert!(!all.contains("hunter2"), "a secret reached the log");
    let lines: Vec<&str> = all.lines().collect();

    // The start banner: time, image and id, the command as printed (secret masked).
    let image = p.image("plog");
    assert!(
        lines[0].starts_with("==== run-image start ") && lines[0].ends_with(" UTC"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1], format!("==== image {image} {}", image_id(&image)));
    assert!(
        lines[2].starts_with("==== command DB_PASSWORD=**** docker run --init --name tester_plog_"),
        "{}",
        lines[2]
    );
    assert!(
        lines[2].ends_with(&format!(" -e DB_PASSWORD -e LEVEL=info --rm {image} {cmd}")),
        "{}",
        lines[2]
    );
    // The end banner: time, exit code, duration.
    let last = lines[lines.len() - 1];
    assert!(
        last.starts_with("==== run-image end ")
            && last.contains(" UTC: exit code 3, duration ")
            && last.ends_with('s'),
        "{last}"
    );
    assert!(files.last().unwrap().1.ends_with(&format!("{last}\n")));

    // Between them, stdout and stderr, merged a whole line at a time: each line once, and
    // each stream's in order.
    let output = &lines[3..lines.len() - 1];
    assert_eq!(output.len(), 1010, "{output:?}");
    assert_eq!(numbers(output), (1..=1000).collect::<Vec<_>>());
    let errs: Vec<&str> = output
        .iter()
        .copied()
        .filter(|l| !l.starts_with("line "))
        .collect();
    let want: Vec<String> = (1..=10).map(|k| format!("err {}", k * 100)).collect();
    assert_eq!(errs, want);
}

#[test]
fn with_a_small_keep_only_the_newest_files_are_left() {
    let p = project_with("pkeep", "");
    let dir = p.root.join("few");
    p.cmd("run-image")
        .args(["pkeep", "--log"])
        .arg(&dir)
        .args([
            "--log-size",
            "2000",
            "--log-keep",
            "3",
            "-c",
            &numbered(1000, 3),
        ])
        .assert()
        .code(3);
    let files = log_files(&dir);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_whole_lines(&files, 2000);
    // The run ends in `current`; what is left is the newest part of the output, in order.
    let current = &files[2].1;
    let end = current.lines().last().unwrap();
    assert!(end.contains("exit code 3"), "{end}");
    let all: String = files.iter().map(|(_, c)| c.as_str()).collect();
    let lines: Vec<&str> = all.lines().collect();
    assert!(
        !all.contains("==== run-image start"),
        "the oldest files were not removed"
    );
    let nums = numbers(&lines);
    let first = nums[0];
    assert!(first > 1, "{first}");
    assert_eq!(nums, (first..=1000).collect::<Vec<_>>());
}

#[test]
fn the_cfg_says_where_and_how_big_and_a_later_run_appends() {
    let p = project_with(
        "pcfg",
        "[pcfg]\nlog_dir=var/{image}-logs\nlog_max_size=500\nlog_keep=2\n",
    );
    let sub = p.root.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let cmd = "sh -c 'i=1; while [ $i -le 100 ]; do echo \"line $i\"; i=$((i+1)); done'";
    // From a subdirectory: log_dir is relative to the project root.
    let out = p
        .cmd_in("run-image", &sub)
        .args(["pcfg", "--log", "-c", cmd])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "",
        "a successful run is quiet under cron"
    );
    assert_eq!(text(&out.stdout), "");
    let dir = p.root.join("var/pcfg-logs");
    let files = log_files(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    assert_whole_lines(&files, 500);
    let first_end = files[1].1.lines().last().unwrap().to_string();
    assert!(
        first_end.contains(": exit code 0, duration "),
        "{first_end}"
    );

    // The flags win over the cfg; the second run goes on in the same `current`.
    p.cmd("run-image")
        .args(["pcfg", "--log", "--log-size", "100000", "-c", cmd])
        .assert()
        .success();
    let files = log_files(&dir);
    assert_eq!(files.len(), 2);
    let current = &files[1].1;
    let (before, after) = current.split_once(&format!("{first_end}\n")).unwrap();
    assert!(!before.contains("==== run-image start"));
    assert!(after.starts_with("==== run-image start "), "{after}");
    assert_eq!(
        numbers(&after.lines().collect::<Vec<_>>()),
        (1..=100).collect::<Vec<_>>()
    );
}

#[test]
fn dry_run_shows_where_the_output_goes_and_bad_values_are_refused() {
    require_engine();
    let p = Project::new("pdry");
    p.dockerfile("pdry", BUSYBOX_DOCKERFILE)
        .cfg("[pdry]\nlog_keep=7\ncmd=echo hi\n");
    let root = p.root.display().to_string();
    let image = p.image("pdry");

    let plain = p
        .cmd("run-image")
        .args(["pdry", "--dry-run"])
        .output()
        .unwrap();
    assert!(text(&plain.stdout).contains(&format!(" --rm -i {image} echo hi\n")));
    let out = p
        .cmd("run-image")
        .args(["pdry", "--log", "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // No terminal and stdin not attached (no -i), and where the output goes.
    assert!(
        text(&out.stdout).ends_with(&format!(
            " --rm {image} echo hi >> {root}/logs/pdry/current 2>&1  \
             # rotated in {root}/logs/pdry: files of 1000000 bytes, 7 kept\n"
        )),
        "{}",
        text(&out.stdout)
    );

    let out = p
        .cmd("run-image")
        .args([
            "pdry",
            "--log",
            "rel/dir",
            "--log-size",
            "5000",
            "--log-keep",
            "4",
        ])
        .arg("--dry-run")
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).ends_with(&format!(
            ">> {root}/rel/dir/current 2>&1  # rotated in {root}/rel/dir: files of 5000 bytes, 4 kept\n"
        )),
        "{}",
        text(&out.stdout)
    );

    for bad in [
        &["pdry", "--log", "-k"][..],
        &["pdry", "--log-size", "10"],
        &["pdry", "--log", "--log-keep", "1"],
        &["pdry", "--log", "--log-size", "0"],
    ] {
        p.cmd("run-image").args(bad).assert().code(2);
    }
    p.cfg("[pdry]\nlog_max_size=1MB\n");
    p.cmd("run-image")
        .args(["pdry", "--log"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "[pdry] log_max_size: `1MB` is not a whole number of at least 1",
        ));
    assert!(!p.root.join("logs").exists() && !p.root.join("rel").exists());
}

#[test]
fn sigterm_reaches_the_container_and_the_end_banner_is_still_written() {
    let p = project_with("pterm", "");
    let dir = p.root.join("t");
    let mut cmd = Command::new(bin_dir().join("run-image"));
    cmd.args(["pterm", "-c", READY_CMD, "--log"])
        .arg(&dir)
        .current_dir(&p.root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = with_clean_env(&mut cmd).spawn().unwrap();
    wait_for_log(&dir.join("current"), "READY_42");
    // One run at a time writes to a log directory.
    p.cmd("run-image")
        .args(["pterm", "-c", "true", "--log"])
        .arg(&dir)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(format!(
            "another run is writing to the log in {}",
            dir.display()
        )));
    // As a supervisor or `kill PID` would: to our process only.
    let rc = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(rc.success());
    let code = wait_exit(&mut child, Duration::from_secs(30), || {
        remove_containers("pterm")
    });
    assert_eq!(code, Some(143), "the container's exit code passes through");
    let current = std::fs::read_to_string(dir.join("current")).unwrap();
    let end = current.lines().last().unwrap();
    assert!(
        end.starts_with("==== run-image end ") && end.contains("exit code 143 (interrupted)"),
        "{current}"
    );
    assert!(containers("pterm").is_empty(), "container left behind");
}

#[test]
fn ctrl_c_at_a_terminal_reaches_the_container_and_the_end_banner_is_still_written() {
    let p = project_with("pintr", &format!("[pintr]\ncmd={READY_CMD}\n"));
    let dir = p.root.join("i");
    let line = format!(
        "{} pintr --log {}",
        bin_dir().join("run-image").display(),
        dir.display()
    );
    let mut child = in_terminal(&line, &p.root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_log(&dir.join("current"), "READY_42");
    child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    let code = wait_exit(&mut child, Duration::from_secs(30), || {
        remove_containers("pintr")
    });
    let mut shown = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut shown).unwrap();
    assert_eq!(code, Some(130), "{shown}");
    // At a terminal the command line is shown, and where the output goes.
    assert!(shown.contains("docker run --init"), "{shown}");
    assert!(
        shown.contains(&format!("output to {}/current", dir.display())),
        "{shown}"
    );
    let current = std::fs::read_to_string(dir.join("current")).unwrap();
    let end = current.lines().last().unwrap();
    assert!(end.contains("exit code 130 (interrupted)"), "{current}");
    assert!(containers("pintr").is_empty(), "container left behind");
}

#[test]
fn a_killed_run_stops_its_container_and_the_next_run_says_it_ended_without_its_banner() {
    let p = project_with("pkill", "");
    let dir = p.root.join("k");
    let mut cmd = Command::new(bin_dir().join("run-image"));
    cmd.args(["pkill", "-c", READY_CMD, "--log"])
        .arg(&dir)
        .current_dir(&p.root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = with_clean_env(&mut cmd).spawn().unwrap();
    wait_for_log(&dir.join("current"), "READY_42");
    // As the OOM killer or `kill -9` would: run-image can write no end banner.
    let rc = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(rc.success());
    let _ = child.wait();
    let gone = wait_until(Duration::from_secs(30), || containers("pkill").is_empty());
    remove_containers("pkill");
    assert!(
        gone,
        "the container ran on after run-image was killed, its output going nowhere"
    );

    p.cmd("run-image")
        .args(["pkill", "-c", "echo next", "--log"])
        .arg(&dir)
        .assert()
        .success();
    let current = std::fs::read_to_string(dir.join("current")).unwrap();
    let lines: Vec<&str> = current.lines().collect();
    let ready = lines.iter().position(|l| *l == "READY_42").unwrap();
    assert!(
        lines[ready + 1].starts_with(
            "==== run-image: the previous run ended without its end banner (run-image was killed"
        ),
        "{current}"
    );
    assert!(
        lines[ready + 2].starts_with("==== run-image start "),
        "{current}"
    );
    assert_eq!(lines[lines.len() - 2], "next", "{current}");
    // A run that ended as it should is not said to have ended without its banner.
    p.cmd("run-image")
        .args(["pkill", "-c", "true", "--log"])
        .arg(&dir)
        .assert()
        .success();
    let current = std::fs::read_to_string(dir.join("current")).unwrap();
    assert_eq!(
        current.matches("without its end banner").count(),
        1,
        "{current}"
    );
}

#[test]
fn a_logged_run_whose_container_name_is_taken_runs_under_the_next() {
    let p = project_with("ptaken", "");
    take_names("ptaken", &p.image("ptaken"), 16);
    let dir = p.root.join("t");
    let out = p
        .cmd("run-image")
        .args(["ptaken", "-c", "echo logged", "--log"])
        .arg(&dir)
        .output()
        .unwrap();
    let names = containers("ptaken");
    remove_containers("ptaken");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "",
        "a successful run is quiet under cron"
    );
    let current = std::fs::read_to_string(dir.join("current")).unwrap();
    assert!(!current.contains("Conflict"), "{current}");
    let lines: Vec<&str> = current.lines().collect();
    let name = |line: &str| {
        let after = line.split_once("--name ").unwrap().1;
        after.split(' ').next().unwrap().to_string()
    };
    assert!(lines[2].starts_with("==== command docker run"), "{current}");
    let first = name(lines[2]);
    assert!(names.contains(&first), "{first} was not taken: {names:?}");
    assert_eq!(
        lines[3],
        format!(
            "==== run-image: the container name {first} is taken (another run started in the \
             same second); trying {first}_2"
        ),
        "{current}"
    );
    // The command as it then ran, its output and its end.
    assert!(lines[4].starts_with("==== command docker run"), "{current}");
    assert_eq!(name(lines[4]), format!("{first}_2"), "{current}");
    assert_eq!(lines[5], "logged", "{current}");
    assert!(lines[6].contains(": exit code 0, duration "), "{current}");
    assert_eq!(lines.len(), 7, "{current}");
}
