//! The boundary with the Docker engine: the docker CLI invocations dockerutils makes, and
//! what to tell the user when the engine does not answer.

// The engine's storage read directly: crates/reader, which a dock runs too.
pub(crate) use dockerutils_reader::store;
pub(crate) mod tags;

use crate::plan::Invocation;
use crate::process::Ended;
use std::path::Path;
use std::time::Duration;

/// How long the after-failure check of the daemon may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn docker(cwd: &Path) -> Invocation {
    Invocation::new("docker", cwd.to_owned())
}

/// `docker build [--pull] --compress --force-rm -t NAME:TAG -f DOCKERFILE [--target T] [ARGS] .`,
/// in 2.0.7's word order. `--force-rm` is ours: the legacy builder keeps the container of a
/// failed `RUN` (its `--rm` removes only those of steps that succeed), and a failed build
/// must not leave a stopped container behind.
pub(crate) fn build(
    cwd: &Path,
    image: &str,
    dockerfile: &str,
    target: Option<&str>,
    pull: bool,
    extra: &[String],
) -> Invocation {
    let mut inv = docker(cwd).arg("build");
    if pull {
        inv = inv.arg("--pull");
    }
    inv = inv.args(["--compress", "--force-rm", "-t", image, "-f", dockerfile]);
    if let Some(target) = target {
        inv = inv.args(["--target", target]);
    }
    inv.args(extra.iter().map(String::as_str)).arg(".")
}

/// Does this Dockerfile have a stage named `builder` (`FROM … AS builder`, any case)?
pub(crate) fn has_builder_stage(dockerfile: &str) -> bool {
    dockerfile.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.len() >= 4
            && words[0].eq_ignore_ascii_case("from")
            && words[words.len() - 2].eq_ignore_ascii_case("as")
            && words[words.len() - 1].eq_ignore_ascii_case("builder")
    })
}

/// After a docker command failed with `code`: if the daemon does not answer, a hint that
/// says so (docker has already printed its own message). `None` when the daemon is fine.
pub(crate) fn diagnose(code: i32) -> Option<String> {
    // Docker's own failures exit 1 (build, rmi…) or 125 (run); a container's exit code
    // is the container's business.
    if code != 1 && code != 125 {
        return None;
    }
    let mut probe = crate::process::Command::new("docker");
    probe
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(crate::process::Stdio::null())
        .stderr(crate::process::Stdio::null());
    let output = match crate::process::bounded(probe, PROBE_TIMEOUT, false).ok()? {
        Ended::Exited(out) => out,
        Ended::TimedOut(_) | Ended::Interrupted => {
            return Some(format!(
                "the Docker daemon did not answer within {}s{}",
                PROBE_TIMEOUT.as_secs(),
                where_hint()
            ));
        }
    };
    if output.status.success() {
        return None;
    }
    Some(format!(
        "the Docker daemon is not answering{}",
        where_hint()
    ))
}

/// After a `docker run` of a project image failed (exit 125) with the daemon answering:
/// when the engine lacks the image (docker then tried to pull it, and said why that
/// failed, e.g. `pull access denied` for a name no registry has), how to get it there.
/// Docked (`DOCKER_IP`), that engine is the dock's: send the image from here with
/// `transfer-image`, or build it there. `subdir` is the `docker/` subdirectory the image
/// is built from.
pub(crate) fn missing_image_hint(image: &str, subdir: &str) -> Option<String> {
    use crate::plan::quote;
    if !matches!(inspect_image(image, "{{.Id}}"), Ok(None)) {
        return None;
    }
    let build = format!("build-image {}", quote(subdir));
    let Some(ip) = std::env::var("DOCKER_IP").ok().filter(|ip| !ip.is_empty()) else {
        return Some(format!(
            "{image} is not in the local engine, so docker tried to pull it: build it first \
             (`{build}`)"
        ));
    };
    // The dock as transfer-image takes it: its moniker, else where DOCKER_HOST goes.
    let dock = crate::dock::current()
        .map(|d| d.name().to_string())
        .or_else(|| {
            std::env::var("DOCKER_HOST")
                .ok()
                .and_then(|h| h.strip_prefix("ssh://").map(str::to_string))
        })
        .unwrap_or(ip);
    Some(format!(
        "the dock {dock} does not have {image}, so docker tried to pull it: send it from \
         this machine with `transfer-image {image} {}`, or build it on the dock (`{build}` \
         while docked)",
        quote(&dock)
    ))
}

fn where_hint() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => format!(
            " at DOCKER_HOST={host}: check that the host is up and runs docker, \
             or `castoff` to go back to the local engine"
        ),
        _ => ": start it (`sudo systemctl start docker`, or `sudo dockerd &`), \
               or make sure your user may use /var/run/docker.sock (the `docker` group)"
            .into(),
    }
}

/// How long a docker query (inspect, rename, rm, start, `run -d`) may take before docker
/// is deemed hung: `DOCKERUTILS_DOCKER_TIMEOUT` seconds, else 60.
pub(crate) fn query_timeout() -> Duration {
    std::env::var("DOCKERUTILS_DOCKER_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(Duration::from_secs(60), Duration::from_secs)
}

/// How long a `docker pull` may take: 20 times a query's bound (20 minutes by default).
pub(crate) fn pull_timeout() -> Duration {
    query_timeout() * 20
}

/// What to say when docker did not answer a command within its bound.
pub(crate) fn hung(shown: &str, limit: Duration) -> String {
    format!(
        "docker did not answer within {} s (`{shown}` was stopped): the Docker daemon is \
         hung or unreachable{}",
        limit.as_secs(),
        where_hint()
    )
}

/// A docker query (`docker ARGS`, stdout and stderr captured) within `query_timeout()`;
/// a hung docker is an error that says so.
fn query(args: &[&str]) -> crate::error::Result<std::process::Output> {
    use crate::error::Error;
    let mut command = crate::process::Command::new("docker");
    command
        .args(args)
        .stdout(crate::process::Stdio::piped())
        .stderr(crate::process::Stdio::piped());
    let limit = query_timeout();
    match crate::process::bounded(command, limit, false).map_err(|e| Error::spawn("docker", e))? {
        Ended::Exited(out) => Ok(out),
        Ended::TimedOut(_) | Ended::Interrupted => {
            let shown = std::iter::once("docker")
                .chain(args.iter().copied())
                .map(crate::plan::quote)
                .collect::<Vec<_>>()
                .join(" ");
            Err(Error::Engine(hung(&shown, limit)))
        }
    }
}

/// `docker image inspect --format FORMAT IMAGE` on the local engine: `None` when the
/// image is not there; an error when docker itself fails (no engine, no CLI) or does not
/// answer within `query_timeout()`.
pub(crate) fn inspect_image(image: &str, format: &str) -> crate::error::Result<Option<String>> {
    use crate::error::Error;
    let out = query(&["image", "inspect", "--format", format, image])?;
    if out.status.success() {
        return Ok(Some(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No such image") || stderr.contains("No such object") {
        return Ok(None);
    }
    let code = out.status.code().unwrap_or(1);
    Err(Error::Engine(format!(
        "docker image inspect {image} failed: {}{}",
        stderr.trim(),
        diagnose(code)
            .map(|h| format!(" ({h})"))
            .unwrap_or_default()
    )))
}

/// Is the image in the local engine?
pub(crate) fn image_exists(image: &str) -> crate::error::Result<bool> {
    Ok(inspect_image(image, "{{.Id}}")?.is_some())
}

/// `docker container inspect NAME` on the current engine, as JSON: `None` when there is no
/// such container; an error when docker itself fails or does not answer within
/// `query_timeout()`.
pub(crate) fn inspect_container(name: &str) -> crate::error::Result<Option<serde_json::Value>> {
    use crate::error::Error;
    let out = query(&["container", "inspect", name])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("No such container") || stderr.contains("No such object") {
            return Ok(None);
        }
        let code = out.status.code().unwrap_or(1);
        return Err(Error::Engine(format!(
            "docker container inspect {name} failed: {}{}",
            stderr.trim(),
            diagnose(code)
                .map(|h| format!(" ({h})"))
                .unwrap_or_default()
        )));
    }
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        Error::Engine(format!(
            "docker container inspect {name}: unreadable output: {e}"
        ))
    })?;
    Ok(parsed.as_array().and_then(|a| a.first()).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_stage_is_found_in_any_case() {
        assert!(has_builder_stage("FROM scratch AS builder\nFROM scratch\n"));
        assert!(has_builder_stage(
            "from --platform=linux/amd64 alpine as Builder\n"
        ));
        assert!(!has_builder_stage("FROM scratch\n# as builder\n"));
        assert!(!has_builder_stage("FROM scratch AS builder2\n"));
    }
}
