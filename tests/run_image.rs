//! run-image on a real Docker engine.

mod common;

use common::{BUSYBOX_DOCKERFILE, Project, bin_dir, project_with, require_engine};
use common::{
    READY_CMD, containers, in_terminal, remove_containers, take_names, wait_exit, wait_for_ready,
    with_clean_env,
};
use predicates::prelude::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn inspect(container: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "--format", format, container])
        .output()
        .unwrap();
    text(&out.stdout).trim().to_owned()
}

#[test]
fn kept_container_has_the_cfg_volumes_ports_and_command() {
    let p = project_with(
        "keep",
        "[keep]\nvolumes=-v {project_root}:/src\n  -v '{project_root}/with space:/space'\nports=-p 127.0.0.1::8080\ncmd=sleep 60\n",
    );
    std::fs::create_dir_all(p.root.join("with space")).unwrap();
    let out = p.cmd("run-image").args(["keep", "-k"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let names = containers("keep");
    assert_eq!(names.len(), 1, "{names:?}");
    let c = &names[0];
    let checks = [
        ("{{.State.Running}}", "true".to_string()),
        ("{{.HostConfig.AutoRemove}}", "false".to_string()),
        ("{{.HostConfig.Init}}", "true".to_string()),
        ("{{json .Config.Cmd}}", r#"["sleep","60"]"#.to_string()),
        (
            "{{json .HostConfig.Binds}}",
            format!(r#"["{0}:/src","{0}/with space:/space"]"#, p.root.display()),
        ),
        (
            "{{json .HostConfig.PortBindings}}",
            r#"{"8080/tcp":[{"HostIp":"127.0.0.1","HostPort":""}]}"#.to_string(),
        ),
    ];
    let results: Vec<(String, String)> = checks
        .iter()
        .map(|(f, _)| (f.to_string(), inspect(c, f)))
        .collect();
    let _ = Command::new("docker").args(["rm", "-f", c]).output();
    // docker keeps the binds in no fixed order: compared as sets.
    let sorted = |json: &str| {
        let mut v: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
        v.sort_by_key(|x| x.to_string());
        v
    };
    for ((format, want), (_, got)) in checks.iter().zip(&results) {
        if format.contains("Binds") {
            assert_eq!(sorted(got), sorted(want), "{format}: {got}");
        } else {
            assert_eq!(got, want, "{format}");
        }
    }
    // The name follows <user>_<image>_<yy-mm-dd_HH.MM.SS>.
    let stamp = c.strip_prefix("tester_keep_").unwrap();
    assert_eq!(stamp.len(), "26-11-23_14.31.51".len(), "{c}");
}

#[test]
fn network_env_section_and_literal_volume_paths() {
    let p = project_with(
        "net",
        "[net]\nnetwork=none\nvolumes=-v '{project_root}/a;b$(touch pwned):/data'\nenv=netenv\n\
         cmd=sh -c 'ls /sys/class/net; cat /data/marker; echo LOG=$$LOG PW=$$DB_PASSWORD'\n\
         [netenv]\nLOG=debug\nDB_PASSWORD=hunter2\n",
    );
    p.file("a;b$(touch pwned)/marker", "marker\n");
    let out = p.cmd("run-image").arg("net").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "lo\nmarker\nLOG=debug PW=hunter2\n");
    let err = text(&out.stderr);
    assert!(!err.contains("hunter2"), "secret printed: {err}");
    assert!(err.contains("DB_PASSWORD=**** docker run --init"), "{err}");
    assert!(err.contains("--network none"), "{err}");
    assert!(
        !p.root.join("pwned").exists(),
        "a cfg value went through a shell"
    );
}

#[test]
fn aws_credentials_are_passed_in_never_printed_and_not_when_docked() {
    let p = project_with(
        "aws",
        "[aws]\ncmd=sh -c 'echo \"[$$AWS_SECRET_ACCESS_KEY] [$$AWS_REGION]\"'\ncmd_docked=echo docked\n",
    );
    let out = p
        .cmd("run-image")
        .arg("aws")
        .env("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
        .env("AWS_REGION", "eu-west-1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "[s3cr3t-value] [eu-west-1]\n");
    assert!(
        !text(&out.stderr).contains("s3cr3t"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("-e AWS_SECRET_ACCESS_KEY -e AWS_REGION --rm"));

    // Docked (DOCKER_IP set, engine still local here): *_docked keys, no AWS variables.
    let docked = p
        .cmd("run-image")
        .args(["aws", "--dry-run"])
        .env("DOCKER_IP", "127.0.0.1")
        .env("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
        .output()
        .unwrap();
    let plan = text(&docked.stdout);
    assert!(!plan.contains("AWS_"), "{plan}");
    let ran = p
        .cmd("run-image")
        .arg("aws")
        .env("DOCKER_IP", "127.0.0.1")
        .output()
        .unwrap();
    assert_eq!(text(&ran.stdout), "docked\n");
}

#[test]
fn flags_override_the_cfg() {
    let p = project_with(
        "flags",
        "[flags]\nenv=flagenv\nargs=--hostname fromcfg\ncmd=echo from-cfg\nnetwork=none\n[flagenv]\nLOG=cfg\nKEEP=yes\n",
    );
    let out = p
        .cmd("run-image")
        .args([
            "flags",
            "-a",
            "--hostname myhost",
            "-e",
            "LOG=cli",
            "-e",
            "EXTRA=a=b",
            "-n",
            "bridge",
        ])
        .args([
            "-c",
            "sh -c 'hostname; echo $LOG $KEEP $EXTRA; ls /sys/class/net | grep -c eth0'",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "myhost\ncli yes a=b\n1\n");
}

#[test]
fn the_exit_code_of_the_container_is_the_exit_code() {
    let p = project_with("exitcode", "");
    p.cmd("run-image")
        .args(["exitcode", "-c", "sh -c 'exit 7'"])
        .assert()
        .code(7);
    p.cmd("run-image")
        .args(["exitcode", "-c", "true"])
        .assert()
        .code(0);
}

#[test]
fn tty_only_when_stdin_is_a_terminal() {
    let p = project_with("tty", "");
    // No terminal (as under cron): -i, no -t, and stdin still reaches the container.
    let out = p
        .cmd("run-image")
        .args(["tty", "-c", "sh -c 'tty; cat'"])
        .write_stdin("piped\n")
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        "not a tty\npiped\n",
        "{}",
        text(&out.stderr)
    );

    // A real terminal (script(1) gives one): -it.
    let line = format!("{} tty -c tty", bin_dir().join("run-image").display());
    let out = in_terminal(&line, &p.root).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("/dev/pts/"),
        "{}",
        text(&out.stdout)
    );

    // The cfg's `interactive` is honoured: empty means stdin is not attached.
    p.cfg("[tty]\ninteractive=\n");
    let out = p
        .cmd("run-image")
        .args(["tty", "-c", "cat"])
        .write_stdin("lost\n")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn ctrl_c_at_a_terminal_reaches_the_container() {
    let p = project_with("ctrlc", &format!("[ctrlc]\ncmd={READY_CMD}\n"));
    let line = format!("{} ctrlc", bin_dir().join("run-image").display());
    let mut child = in_terminal(&line, &p.root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_ready(&mut child);
    child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    let code = wait_exit(&mut child, Duration::from_secs(20), || {
        remove_containers("ctrlc")
    });
    assert_eq!(
        code,
        Some(130),
        "the container's SIGINT exit code passes through"
    );
    assert!(containers("ctrlc").is_empty(), "container left behind");
}

#[test]
fn a_signal_sent_to_run_image_alone_is_passed_to_docker() {
    let p = project_with("sigterm", &format!("[sigterm]\ncmd={READY_CMD}\n"));
    let mut cmd = Command::new(bin_dir().join("run-image"));
    cmd.arg("sigterm")
        .current_dir(&p.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut child = with_clean_env(&mut cmd).spawn().unwrap();
    wait_for_ready(&mut child);
    // As a supervisor or `kill PID` would: to our process only, not its group.
    let rc = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(rc.success());
    let code = wait_exit(&mut child, Duration::from_secs(30), || {
        remove_containers("sigterm")
    });
    assert_eq!(
        code,
        Some(143),
        "the container got SIGTERM and its exit code passes through"
    );
    assert!(containers("sigterm").is_empty(), "container left behind");
}

#[test]
fn synthetic_images_and_default_section() {
    let p = project_with(
        "synth",
        "[DEFAULT]\ncmd=echo from-default\n[run_image]\nsynthetic_images=shell, other\n\
         [shell]\nname=synth\ncmd=echo synthetic\n[other]\nname=synth\n",
    );
    let out = p.cmd("run-image").arg("shell").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "synthetic\n");
    assert!(text(&out.stderr).contains(&"--name tester_shell_".to_string()));
    assert!(text(&out.stderr).contains(&format!(" {} echo synthetic", p.image("synth"))));
    let out = p.cmd("run-image").arg("other").output().unwrap();
    assert_eq!(text(&out.stdout), "from-default\n", "{}", text(&out.stderr));
}

#[test]
fn bad_input_is_refused_before_docker_runs() {
    let p = project_with(
        "runerr",
        "[run_image]\nsynthetic_images=shell\n[shell]\nname=runerr\n[runerr]\nenv=missing\n",
    );
    p.cmd("run-image")
        .arg("nope")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown image `nope`"))
        .stderr(predicate::str::contains("valid images: runerr, shell"));
    p.cmd("run-image")
        .arg("runerr")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "[runerr] env: names the section [missing]",
        ));
    p.cfg("[runerr]\nvolumes=-v '{project_root}:/x\n");
    p.cmd("run-image")
        .arg("runerr")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "[runerr] volumes: unbalanced quotes",
        ));
    p.cfg("[runerr]\nvolumes=-v {nope}:/x\n");
    p.cmd("run-image")
        .arg("runerr")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "unknown replacement variable `{nope}`",
        ));
    p.cfg("[runerr]\nports=-p $NO_SUCH_PORT_VAR:80\n");
    p.cmd("run-image")
        .arg("runerr")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("$NO_SUCH_PORT_VAR is not set"));
    p.cfg("");
    p.cmd("run-image")
        .args(["runerr", "-e", "=x"])
        .assert()
        .code(2);
    assert!(containers("runerr").is_empty());
}

#[test]
fn gpu_flag_reaches_docker_and_dockers_own_failure_code_passes_through() {
    let p = project_with("gpu", "");
    // No NVIDIA runtime here: docker itself refuses, with its exit code 125.
    p.cmd("run-image")
        .args(["gpu", "-g", "-c", "true"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains(
            "--runtime=nvidia -e NVIDIA_VISIBLE_DEVICES=all",
        ));
    p.cfg("[gpu]\ngpu=--runtime=custom-gpu\n");
    let plan = p
        .cmd("run-image")
        .args(["gpu", "--dry-run"])
        .output()
        .unwrap();
    assert!(
        text(&plan.stdout).contains("--runtime=custom-gpu"),
        "{}",
        text(&plan.stdout)
    );
}

#[test]
fn environment_and_args_keys_of_the_cfg() {
    let p = project_with(
        "cfgenv",
        "[cfgenv]\nenvironment=-e FROM_CFG=yes -e 'SPACED=a b'\nargs=--hostname cfghost --workdir /bin\n\
         cmd=sh -c 'echo $$FROM_CFG/$$SPACED; hostname; pwd'\n",
    );
    let out = p.cmd("run-image").arg("cfgenv").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "yes/a b\ncfghost\n/bin\n");
}

/// `run-image IMAGE ARGS…` started now, its output piped.
fn start(p: &common::Project, args: &[&str]) -> std::process::Child {
    let mut cmd = Command::new(bin_dir().join("run-image"));
    cmd.args(args)
        .current_dir(&p.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    with_clean_env(&mut cmd).spawn().unwrap()
}

#[test]
fn runs_started_in_the_same_second_all_get_a_container() {
    let p = project_with("same", "[same]\ncmd=sleep 60\n");
    // Every name of the next seconds is taken already: each run below meets a taken name,
    // as it would after another run of the same second.
    take_names("same", &p.image("same"), 16);
    let taken = containers("same");
    // Two started at the same instant, and a kept run then a plain one.
    let both = [start(&p, &["same", "-k"]), start(&p, &["same", "-k"])];
    let mut outs: Vec<std::process::Output> = both.map(|c| c.wait_with_output().unwrap()).into();
    outs.push(p.cmd("run-image").args(["same", "-k"]).output().unwrap());
    let plain = p
        .cmd("run-image")
        .args(["same", "-c", "echo plain"])
        .output()
        .unwrap();
    let all = containers("same");
    let running: Vec<String> = all
        .iter()
        .filter(|c| inspect(c, "{{.State.Running}}") == "true")
        .cloned()
        .collect();
    remove_containers("same");

    for out in outs.iter().chain([&plain]) {
        let err = text(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("is taken (another run started in the same second); trying tester_same_"),
            "{err}"
        );
        // docker's refusal of the name is not shown: a retry is no error.
        assert!(!err.contains("Conflict"), "{err}");
    }
    assert_eq!(text(&plain.stdout), "plain\n", "{}", text(&plain.stderr));
    // The three kept runs are running, each under a taken name with a suffix.
    assert_eq!(running.len(), 3, "{all:?}");
    for name in &running {
        let (base, n) = name.rsplit_once('_').unwrap();
        assert!(taken.iter().any(|t| t == base), "{name} in {taken:?}");
        assert!(n.parse::<usize>().unwrap() >= 2, "{name}");
    }
    // The printed command is the one that ran.
    let retried = text(&plain.stderr);
    let last = retried.lines().last().unwrap();
    assert!(
        last.starts_with("docker run --init --name tester_same_")
            && last.ends_with(&format!(" --rm -i {} echo plain", p.image("same"))),
        "{retried}"
    );
    // --dry-run says that the name may get a suffix.
    let plan = p
        .cmd("run-image")
        .args(["same", "--dry-run"])
        .output()
        .unwrap();
    assert!(
        text(&plan.stdout).contains("\n# the container name tester_same_"),
        "{}",
        text(&plan.stdout)
    );
}

#[test]
fn a_killed_run_image_takes_its_container_with_it() {
    let p = project_with("killed", &format!("[killed]\ncmd={READY_CMD}\n"));
    let mut child = start(&p, &["killed"]);
    wait_for_ready(&mut child);
    // As the OOM killer or `kill -9` would: no chance to pass anything on.
    let rc = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(rc.success());
    let _ = child.wait();
    let gone = common::wait_until(Duration::from_secs(30), || containers("killed").is_empty());
    remove_containers("killed");
    assert!(
        gone,
        "the container outlived run-image (docker was not stopped with it)"
    );
}

#[test]
fn a_missing_image_is_said_with_how_to_build_it() {
    require_engine();
    // Never built: docker tries to pull it, and no registry has it.
    let p = Project::new("unbuilt");
    p.dockerfile("unbuilt", BUSYBOX_DOCKERFILE);
    let out = p
        .cmd("run-image")
        .args(["unbuilt", "-c", "true"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains(&format!(
            "run-image: hint: {} is not in the local engine, so docker tried to pull it: \
             build it first (`build-image unbuilt`)",
            p.image("unbuilt")
        )),
        "{err}"
    );
    assert!(containers("unbuilt").is_empty());
}

#[test]
fn misspelt_cfg_keys_are_warned_about_once_with_the_closest_key() {
    let p = project_with(
        "spelt",
        "[run_image]\nsynthetic_images=spshell\n\
         [spelt]\nvolume=-v /nowhere:/x\ncommand=echo hi\nenv=spelt_env\nmy_note=mine\n\
         [spelt_env]\nvolume=kept\ncomand=kept too\n\
         [spshell]\nname=spelt\nnetwrok=none\n\
         [another_tool]\nvolume=theirs\n",
    );
    let out = p
        .cmd("run-image")
        .args(["spelt", "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cfg = p.root.join("docker/dockerutils.cfg");
    assert_eq!(
        text(&out.stderr),
        format!(
            "{0}:4: [spelt] volume: unknown key; did you mean volumes?\n\
             {0}:5: [spelt] command: unknown key; did you mean cmd?\n\
             {0}:13: [spshell] netwrok: unknown key; did you mean network?\n",
            cfg.display()
        )
    );
    // Ignored as before: only the keys of the env= section become variables.
    let plan = text(&out.stdout);
    assert!(
        plan.contains(" -e volume=kept -e 'comand=kept too' --rm"),
        "{plan}"
    );
    assert!(
        !plan.contains("/nowhere") && !plan.ends_with("echo hi\n"),
        "{plan}"
    );
}

/// Secret-named values in the cfg's `environment=` and `args=` and in `-a` reach the
/// container, but neither the printed command nor docker's argv: they travel in docker's
/// environment, as `-e` and `env=` sections' do.
#[test]
fn secrets_in_environment_args_and_dash_a_stay_out_of_argv_and_output() {
    let p = project_with(
        "secretenv",
        "[secretenv]\nenvironment=-e DB_PASSWORD=hunter2 -e LOG_LEVEL=info\nargs=--env=API_TOKEN=t0k3n\n",
    );
    let show = "echo $DB_PASSWORD $API_TOKEN $LOG_LEVEL $X_SECRET";
    for extra in [
        vec![],
        vec!["-a", "-e X_SECRET=xs3cr3t --env=API_TOKEN=t0k3n"],
    ] {
        let out = p
            .cmd("run-image")
            .arg("secretenv")
            .args(&extra)
            .args(["-c", &format!("sh -c '{show}'")])
            .output()
            .unwrap();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{stderr}");
        let want = if extra.is_empty() {
            "hunter2 t0k3n info\n"
        } else {
            "hunter2 t0k3n info xs3cr3t\n"
        };
        assert_eq!(stdout, want);
        for secret in ["hunter2", "t0k3n", "xs3cr3t"] {
            assert!(!stderr.contains(secret), "{secret} printed: {stderr}");
        }
        assert!(
            stderr.contains("-e DB_PASSWORD ") && stderr.contains("LOG_LEVEL=info"),
            "{stderr}"
        );
        let dry = p
            .cmd("run-image")
            .arg("secretenv")
            .args(&extra)
            .arg("--dry-run")
            .output()
            .unwrap();
        let shown = text(&dry.stdout);
        assert!(
            shown.contains("DB_PASSWORD=****") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}

/// `--log-keep` below the minimum says so plainly (it printed clap's u64 range).
#[test]
fn log_keep_below_the_minimum_is_said_plainly() {
    let p = Project::new("logkeep");
    p.dockerfile("logkeep", BUSYBOX_DOCKERFILE);
    let out = p
        .cmd("run-image")
        .args(["logkeep", "--log", "--log-keep", "1", "--dry-run"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("at least 2 files are kept"), "{err}");
    assert!(!err.contains("18446744073709551615"), "{err}");
}
