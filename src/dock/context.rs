//! Docker contexts for docks: one context per dock, named after it, so that
//! `docker --context gpu-box`, Compose, buildx and IDEs reach the dock without
//! `source dock`.
//!
//! What exists is read from docker's context store directly (`contexts/meta/*/meta.json`
//! under `$DOCKER_CONFIG` or `~/.docker`, the store's format since docker 19.03), so that
//! finding nothing to change starts no process; changes are `docker context create`,
//! `update` and `rm` invocations, printed like every docker command this tool runs.
//! Contexts made here carry a description starting with [`MARK`]: only those are ever
//! updated or removed, a context of the user's with a dock's name is left alone.

use crate::plan::Invocation;
use std::path::PathBuf;

/// The start of the description of every context this tool makes.
pub(crate) const MARK: &str = "dockerutils dock";

/// A context in docker's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Context {
    pub name: String,
    pub description: String,
    /// The docker endpoint's host (`ssh://gpu-box`).
    pub host: String,
}

impl Context {
    /// Made by this tool?
    pub(crate) fn ours(&self) -> bool {
        self.description.starts_with(MARK)
    }
}

/// docker's configuration directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub(crate) fn config_dir() -> PathBuf {
    match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => crate::dock::registry_dir(),
    }
}

/// The contexts of docker's store (unreadable entries are skipped).
pub(crate) fn existing() -> Vec<Context> {
    let meta = config_dir().join("contexts").join("meta");
    let Ok(entries) = std::fs::read_dir(meta) else {
        return vec![];
    };
    let mut found: Vec<Context> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let text = std::fs::read(e.path().join("meta.json")).ok()?;
            let json: serde_json::Value = serde_json::from_slice(&text).ok()?;
            let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            Some(Context {
                name: s(&json["Name"]),
                description: s(&json["Metadata"]["Description"]),
                host: s(&json["Endpoints"]["docker"]["Host"]),
            })
        })
        .filter(|c| !c.name.is_empty())
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// docker's current context: `$DOCKER_CONTEXT`, else `currentContext` of its
/// config.json, else `default`.
pub(crate) fn current() -> String {
    if let Some(name) = std::env::var("DOCKER_CONTEXT")
        .ok()
        .filter(|n| !n.is_empty())
    {
        return name;
    }
    std::fs::read(config_dir().join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|j| j["currentContext"].as_str().map(str::to_string))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// A name docker accepts for a context (`^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$`).
pub(crate) fn valid_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c))
}

/// The context a dock should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub name: String,
    pub host: String,
    pub description: String,
}

/// The docker invocations that bring the store from `existing` to `wanted` (ours only:
/// made, updated, or removed when no dock wants them), and a warning for each wanted
/// name held by a context that is not ours.
pub(crate) fn plan(wanted: &[Wanted], existing: &[Context]) -> (Vec<Invocation>, Vec<String>) {
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let docker = || Invocation::new("docker", cwd.clone()).arg("context");
    let mut steps = vec![];
    let mut warnings = vec![];
    for w in wanted {
        let endpoint = format!("host={}", w.host);
        match existing.iter().find(|c| c.name == w.name) {
            None => steps.push(docker().args([
                "create",
                &w.name,
                "--description",
                &w.description,
                "--docker",
                &endpoint,
            ])),
            Some(c) if !c.ours() => warnings.push(format!(
                "the docker context `{}` was not made by dockerutils ({}): left as it is, so \
                 `docker --context {}` does not reach the dock",
                c.name,
                if c.host.is_empty() {
                    "no docker host"
                } else {
                    &c.host
                },
                c.name
            )),
            Some(c) if c.host != w.host || c.description != w.description => {
                steps.push(docker().args([
                    "update",
                    &w.name,
                    "--description",
                    &w.description,
                    "--docker",
                    &endpoint,
                ]))
            }
            Some(_) => {}
        }
    }
    for c in existing {
        if c.ours() && !wanted.iter().any(|w| w.name == c.name) {
            // -f: the current context too (docker then goes back to `default`).
            steps.push(docker().args(["rm", "-f", &c.name]));
        }
    }
    (steps, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(name: &str, description: &str, host: &str) -> Context {
        Context {
            name: name.into(),
            description: description.into(),
            host: host.into(),
        }
    }

    fn want(name: &str, host: &str) -> Wanted {
        Wanted {
            name: name.into(),
            host: host.into(),
            description: format!("{MARK} {name}"),
        }
    }

    #[test]
    fn creates_updates_and_removes_only_its_own_contexts() {
        let existing = [
            ctx("same", "dockerutils dock same", "ssh://same"),
            ctx("moved", "dockerutils dock moved", "ssh://u@10.0.0.1"),
            ctx("gone", "dockerutils dock gone", "ssh://gone"),
            ctx("users", "my own", "tcp://1.2.3.4:2376"),
            ctx("default", "", "unix:///var/run/docker.sock"),
        ];
        let wanted = [
            want("same", "ssh://same"),
            want("moved", "ssh://moved"),
            want("new", "ssh://u@10.0.0.9"),
            want("users", "ssh://users"),
        ];
        let (steps, warnings) = plan(&wanted, &existing);
        let shown: Vec<String> = steps.iter().map(|s| s.display()).collect();
        assert_eq!(
            shown,
            [
                "docker context update moved --description 'dockerutils dock moved' --docker host=ssh://moved",
                "docker context create new --description 'dockerutils dock new' --docker host=ssh://u@10.0.0.9",
                "docker context rm -f gone",
            ]
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("`users` was not made by dockerutils"));
    }

    #[test]
    fn context_names_docker_takes() {
        assert!(valid_name("gpu-box") && valid_name("10.0.0.5") && valid_name("a+b"));
        assert!(!valid_name("g") && !valid_name("fe80::1") && !valid_name("-x"));
    }
}
