//! `serve-hooks`: an HTTP listener for Docker Hub webhooks and Docker registry
//! notifications that redeploys a project's services (deploy-image) when their image is
//! pushed.
//!
//! - Only with the API key (`DOCKERUTILS_HOOK_KEY`, else `[serve_hooks] api_key`), sent as
//!   the `X-Api-Key` header or the `key` query parameter, compared in constant time.
//! - Only the images `[serve_hooks] images=` lists (each with `service=`): a hook's
//!   repository and tag select one of them, and that image, as the cfg designates it, is
//!   deployed. Nothing of the payload reaches a command line.
//! - 202 at once, the deploy in the background; one deploy at a time per image: a hook
//!   that comes during a deploy queues one more (later ones join it: it pulls the newest
//!   image anyway). `GET /status` tells how the deploys went.
//! - SIGINT/SIGTERM: no new hooks; a running deploy finishes (queued ones are dropped).

use crate::context::Context;
use crate::error::{Error, Result};
use crate::project::Project;
use crate::project::cfg::keys;
use crate::project::publish::split_reference;
use crate::service::deploy::{self, Options, Report};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subtle::ConstantTimeEq;

#[derive(Debug, Parser)]
#[command(
    name = "serve-hooks",
    version,
    about = "Redeploy services when their image is pushed: an HTTP listener for Docker Hub webhooks and registry notifications",
    long_about = "Listen for Docker Hub webhooks and Docker registry notifications and, for a push of an \
        image that [serve_hooks] images= lists, run deploy-image on it (pull, replace the service's \
        container, roll back when the new one does not stay up). Hooks need the API key \
        (DOCKERUTILS_HOOK_KEY, else [serve_hooks] api_key=) as the X-Api-Key header or ?key=. \
        A hook is answered 202 at once and deployed in the background, one deploy at a time \
        per image; GET /status (with the key) tells how the deploys went.",
    after_help = "dockerutils.cfg:\n  [serve_hooks]\n  api_key=$HOOK_KEY                # or DOCKERUTILS_HOOK_KEY in the environment\n  images=web\n\n  [web]\n  name=registry.example.com/team/web\n  prefix=False\n  tag=latest\n  service=web\n\nExamples:\n  serve-hooks                                  # 127.0.0.1:8086\n  serve-hooks --listen 0.0.0.0:8086 --settle 30\n  serve-hooks --dry-run                        # what it would accept, then exit\n  curl -H \"X-Api-Key: $KEY\" http://127.0.0.1:8086/status"
)]
pub(crate) struct Args {
    /// Address and port to listen on (put it behind an HTTPS proxy to expose it)
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Seconds a new container must keep running (deploy-image --settle)
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub settle: u64,
    /// With a HEALTHCHECK: seconds a new container has to report healthy
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub health_timeout: u64,
    /// Seconds a connection has to send a whole request header, when it opens and between
    /// requests (a slow or idle client is then disconnected)
    #[arg(long, value_name = "SECONDS", default_value_t = HEADER_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Connections served at once; more are answered 503 and closed
    #[arg(long, value_name = "N", default_value_t = MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub max_connections: u64,
    /// Print what would be served (address, images, repositories), and exit
    #[arg(long)]
    pub dry_run: bool,
}

pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8086";
/// The environment variable of the API key; it wins over the cfg's `api_key`.
pub(crate) const KEY_VAR: &str = "DOCKERUTILS_HOOK_KEY";
/// Largest hook body accepted (a registry envelope of a few events is a few KiB).
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// Shortest API key accepted.
pub(crate) const MIN_KEY_LEN: usize = 16;
/// How long requests under way may take once SIGINT/SIGTERM came.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// By default, a connection must send a whole request header within this time, both when it opens
/// and while it idles between requests (hyper starts the same timer after each response):
/// a client that sends half a header, or keeps a connection open doing nothing, is cut.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A hook's body must arrive within this time once its header has.
pub(crate) const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// By default, connections served at once; one more is answered 503 and closed. Hooks
/// are rare and small: this bounds what a flood of clients can hold (memory,
/// descriptors), and with the header timeout, for how long.
pub(crate) const MAX_CONNECTIONS: u64 = 256;
/// How long a shutdown waits for the deploys under way before it leaves them.
const DEPLOY_GRACE: Duration = Duration::from_secs(600);

/// An image that hooks can deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The image (its cfg section).
    pub image: String,
    pub service: String,
    /// The image reference the cfg designates.
    pub reference: String,
    /// Its repository path (without registry host and tag), what hooks name.
    pub repository: String,
    pub tag: String,
}

/// What serve-hooks serves, read once at start.
pub(crate) struct Config {
    pub root: PathBuf,
    key_digest: [u8; 32],
    pub targets: Vec<Target>,
}

fn digest(text: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(text).into()
}

impl Config {
    pub(crate) fn load(project: &Project, ctx: &Context) -> Result<Config> {
        let cfg = &project.cfg;
        let path = cfg.path().display();
        let section = |key: &str| -> Result<Option<String>> {
            if cfg.has_section(keys::SERVE_HOOKS) {
                cfg.get(keys::SERVE_HOOKS, key)
            } else {
                Ok(None)
            }
        };
        let key = match ctx.var(KEY_VAR) {
            Some(k) => k.to_string(),
            None => match section(keys::API_KEY)? {
                Some(k) => ctx
                    .expand_env(k.trim())
                    .map_err(|m| cfg.value_error(keys::SERVE_HOOKS, keys::API_KEY, m))?,
                None => String::new(),
            },
        };
        if key.is_empty() {
            return Err(Error::Usage(format!(
                "serve-hooks needs an API key: set {KEY_VAR} in its environment, or \
                 `api_key=` in the [serve_hooks] section of {path} (e.g. `openssl rand -hex 32`)"
            )));
        }
        if key.chars().count() < MIN_KEY_LEN {
            return Err(Error::Usage(format!(
                "the API key is shorter than {MIN_KEY_LEN} characters: anyone could guess it; \
                 make a long random one (`openssl rand -hex 32`)"
            )));
        }
        let images: Vec<String> = section(keys::IMAGES)?
            .unwrap_or_default()
            .split([',', ' ', '\n'])
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if images.is_empty() {
            return Err(Error::Usage(format!(
                "serve-hooks has no image to deploy: list them in {path}, \
                 [serve_hooks] images=IMAGE,… (each image's section with service=NAME)"
            )));
        }
        let mut targets: Vec<Target> = vec![];
        for image in images {
            let svc = deploy::service(project, &image, false, ctx)?;
            let reference = svc.reference.clone();
            let (_, repository) = split_reference(&reference);
            let tag = reference
                .rsplit_once(':')
                .map(|(_, t)| t)
                .unwrap_or("latest");
            if let Some(other) = targets.iter().find(|t| t.service == svc.name) {
                return Err(Error::Usage(format!(
                    "[serve_hooks] images: {} and {image} are the same service `{}`",
                    other.image, svc.name
                )));
            }
            targets.push(Target {
                image,
                service: svc.name.clone(),
                repository: repository.to_string(),
                tag: tag.to_string(),
                reference,
            });
        }
        Ok(Config {
            root: project.root.clone(),
            key_digest: digest(key.as_bytes()),
            targets,
        })
    }

    /// Is this the key? Constant time: both sides are hashed, the digests compared with
    /// `subtle` (nothing leaks, not even the length).
    pub(crate) fn key_matches(&self, given: &str) -> bool {
        digest(given.as_bytes()).ct_eq(&self.key_digest).into()
    }

    /// The images a push of `repository:tag` deploys, or why none.
    fn select(&self, repository: &str, tag: &str) -> Selected<'_> {
        let same_repo = |t: &&Target| {
            t.repository == repository
                || (!t.repository.contains('/')
                    && repository == format!("library/{}", t.repository))
        };
        let of_repo: Vec<&Target> = self.targets.iter().filter(same_repo).collect();
        if of_repo.is_empty() {
            return Selected::UnknownRepository;
        }
        match of_repo.iter().find(|t| t.tag == tag) {
            Some(t) => Selected::Image(t),
            None => Selected::OtherTag(of_repo.iter().map(|t| t.tag.clone()).collect()),
        }
    }
}

enum Selected<'a> {
    Image(&'a Target),
    UnknownRepository,
    OtherTag(Vec<String>),
}

/// Where a hook came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    DockerHub,
    Registry,
}

/// The pushes (repository, tag) a hook tells of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hook {
    pub source: Source,
    pub pushes: Vec<(String, String)>,
}

/// Reads a Docker Hub webhook (`repository.repo_name`, `push_data.tag`) or a registry
/// notification envelope (`events[]` with `action: push`, `target.repository`,
/// `target.tag`; pushes without a tag, of blobs or by digest, and other actions are left
/// out). Names that are not docker repository names or tags are refused.
pub(crate) fn parse_hook(body: &[u8]) -> std::result::Result<Hook, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let checked = |repo: &str, tag: &str| -> std::result::Result<(String, String), String> {
        if !valid_repository(repo) {
            return Err(format!("`{}` is not a repository name", printable(repo)));
        }
        if !valid_tag(tag) {
            return Err(format!("`{}` is not a tag", printable(tag)));
        }
        Ok((repo.to_string(), tag.to_string()))
    };
    if let Some(events) = v.get("events") {
        let events = events
            .as_array()
            .ok_or("`events` is not a list: not a registry notification")?;
        let mut pushes = vec![];
        for event in events {
            if event["action"].as_str() != Some("push") {
                continue;
            }
            let target = &event["target"];
            let (Some(repo), Some(tag)) = (target["repository"].as_str(), target["tag"].as_str())
            else {
                continue;
            };
            if tag.is_empty() {
                continue;
            }
            let push = checked(repo, tag)?;
            if !pushes.contains(&push) {
                pushes.push(push);
            }
        }
        return Ok(Hook {
            source: Source::Registry,
            pushes,
        });
    }
    let repo = v["repository"]["repo_name"].as_str();
    let tag = v["push_data"]["tag"].as_str();
    match (repo, tag) {
        (Some(repo), Some(tag)) => Ok(Hook {
            source: Source::DockerHub,
            pushes: vec![checked(repo, tag)?],
        }),
        _ => Err(
            "neither a Docker Hub webhook (repository.repo_name, push_data.tag) nor a \
                  registry notification (events[])"
                .into(),
        ),
    }
}

/// A repository path as docker has them: lower-case components of letters, digits and
/// separators (`.`, `_`, `-`), separated by `/`.
pub(crate) fn valid_repository(repo: &str) -> bool {
    !repo.is_empty()
        && repo.len() <= 255
        && repo.split('/').all(|c| {
            c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
        })
}

/// A tag: up to 128 letters, digits, `_`, `.`, `-`, not starting with `.` or `-`.
pub(crate) fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Text from a request, safe for one log line.
fn printable(text: &str) -> String {
    text.chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `%XX` and `+` decoding of a query parameter's value.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The key a request carries: the `X-Api-Key` header, else the `key` query parameter.
fn given_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers.get("x-api-key") {
        return Some(String::from_utf8_lossy(v.as_bytes()).trim().to_string());
    }
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "key")
        .map(|(_, v)| percent_decode(v))
}

/// How the deploys of one image are going.
#[derive(Debug, Default)]
struct Deploys {
    running: bool,
    queued: bool,
    done: u64,
    failed: u64,
    last: Option<Value>,
}

/// Marks an image's deploy as over when dropped (normally or by a panic).
struct RunningGuard<'a> {
    server: &'a Server,
    image: &'a str,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        let mut deploys = self.server.lock();
        let d = deploys.entry(self.image.to_string()).or_default();
        d.running = false;
        if std::thread::panicking() {
            d.queued = false;
            d.failed += 1;
            d.last = Some(json!({
                "ok": false,
                "message": "the deploy stopped with an internal error (see the server's log)",
                "finished": crate::time::unix_secs(),
            }));
        }
    }
}

struct Server {
    config: Config,
    opts: Options,
    deploys: Mutex<HashMap<String, Deploys>>,
    stopping: std::sync::atomic::AtomicBool,
}

/// A log line with the local time.
fn log(text: &str) {
    eprintln!("serve-hooks: {} {text}", now());
}

fn now() -> String {
    let (y, mo, d, h, mi, s) = crate::time::local_now();
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

impl Server {
    /// Starts a deploy of `image`, or queues one when a deploy of it runs. True: queued.
    fn start(self: &Arc<Self>, image: &str) -> bool {
        let mut deploys = self.lock();
        let d = deploys.entry(image.to_string()).or_default();
        if d.running {
            d.queued = true;
            return true;
        }
        d.running = true;
        drop(deploys);
        let server = Arc::clone(self);
        let image = image.to_string();
        tokio::task::spawn_blocking(move || server.deploy_loop(&image));
        false
    }

    fn deploy_loop(&self, image: &str) {
        // Whatever happens below (a panic included), the image is not left "running":
        // else every later hook would only queue behind a deploy that no longer exists.
        let _running = RunningGuard {
            server: self,
            image,
        };
        loop {
            log(&format!("deploy {image}: start"));
            let report = Report::log(format!("serve-hooks: [{image}] "));
            let outcome = deploy::deploy_at(&self.config.root, image, &self.opts, &report);
            let last = match &outcome {
                Ok(done) => {
                    log(&format!("deploy {image}: done: {done}"));
                    json!({"ok": true, "message": done.to_string(), "finished": crate::time::unix_secs()})
                }
                Err(e) => {
                    let mut text = e.to_string();
                    if let Some(hint) = e.hint() {
                        text.push_str(&format!(" (hint: {hint})"));
                    }
                    for (i, line) in text.lines().enumerate() {
                        match i {
                            0 => log(&format!("deploy {image}: FAILED: {line}")),
                            _ => log(&format!("deploy {image}: {line}")),
                        }
                    }
                    json!({"ok": false, "message": text, "finished": crate::time::unix_secs()})
                }
            };
            // The lock is held only to update the state: a log line can block (stderr
            // a full pipe), and /status must never wait for it.
            let (again, dropped) = {
                let mut deploys = self.lock();
                let d = deploys.entry(image.to_string()).or_default();
                d.done += 1;
                if outcome.is_err() {
                    d.failed += 1;
                }
                d.last = Some(last);
                let stopping = self.stopping.load(std::sync::atomic::Ordering::SeqCst);
                let queued = std::mem::take(&mut d.queued);
                (queued && !stopping, queued && stopping)
            };
            if dropped {
                log(&format!(
                    "deploy {image}: the queued deploy is dropped: shutting down"
                ));
            }
            if !again {
                return;
            }
        }
    }

    /// The deploy states; a panic elsewhere while holding the lock does not poison them
    /// for good (the state is plain counters and flags, valid at every step).
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Deploys>> {
        self.deploys.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn busy(&self) -> Vec<String> {
        let deploys = self.lock();
        let mut busy: Vec<String> = deploys
            .iter()
            .filter(|(_, d)| d.running)
            .map(|(i, _)| i.clone())
            .collect();
        busy.sort();
        busy
    }

    fn status(&self) -> Value {
        let deploys = self.lock();
        let mut images = serde_json::Map::new();
        for t in &self.config.targets {
            let d = deploys.get(&t.image);
            images.insert(
                t.image.clone(),
                json!({
                    "service": t.service,
                    "image": t.reference,
                    "deploying": d.is_some_and(|d| d.running),
                    "queued": d.is_some_and(|d| d.queued),
                    "deploys": d.map_or(0, |d| d.done),
                    "failed": d.map_or(0, |d| d.failed),
                    "last": d.and_then(|d| d.last.clone()),
                }),
            );
        }
        json!({ "images": images })
    }
}

fn authorized(server: &Server, request: &Request) -> bool {
    given_key(request.headers(), request.uri().query())
        .is_some_and(|k| server.config.key_matches(&k))
}

async fn hook(
    State(server): State<Arc<Server>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let path = request.uri().path().to_string();
    let line = |what: &str, status: StatusCode| {
        log(&format!("{peer} POST {path} {what} -> {}", status.as_u16()));
    };
    if !authorized(&server, &request) {
        let status = StatusCode::UNAUTHORIZED;
        line("(missing or wrong API key)", status);
        return reply(
            status,
            json!({"error": "missing or wrong API key: send it as the X-Api-Key header or ?key="}),
        );
    }
    let body = match tokio::time::timeout(BODY_TIMEOUT, Bytes::from_request(request, &())).await {
        Err(_) => {
            let status = StatusCode::REQUEST_TIMEOUT;
            let error = format!("the body did not arrive within {}s", BODY_TIMEOUT.as_secs());
            line(&format!("({error})"), status);
            return reply(status, json!({ "error": error }));
        }
        Ok(Ok(b)) => b,
        Ok(Err(rejection)) => {
            let status = rejection.status();
            let error = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("the body is larger than {MAX_BODY} bytes")
            } else {
                rejection.body_text()
            };
            line(&format!("({error})"), status);
            return reply(status, json!({ "error": error }));
        }
    };
    let hook = match parse_hook(&body) {
        Ok(h) => h,
        Err(e) => {
            let status = StatusCode::BAD_REQUEST;
            line(&format!("({})", printable(&e)), status);
            return reply(status, json!({ "error": e }));
        }
    };
    let source = match hook.source {
        Source::DockerHub => "docker-hub",
        Source::Registry => "registry",
    };
    let pushed: Vec<String> = hook
        .pushes
        .iter()
        .map(|(r, t)| format!("{r}:{t}"))
        .collect();
    let what = format!(
        "{source} {}",
        if pushed.is_empty() {
            "(no tagged push)".to_string()
        } else {
            pushed.join(" ")
        }
    );
    if server.stopping.load(std::sync::atomic::Ordering::SeqCst) {
        let status = StatusCode::SERVICE_UNAVAILABLE;
        line(&what, status);
        return reply(status, json!({"error": "shutting down"}));
    }
    let mut deploys = vec![];
    let mut ignored = vec![];
    let mut unknown = vec![];
    for (repo, tag) in &hook.pushes {
        match server.config.select(repo, tag) {
            Selected::Image(t) => {
                if !deploys
                    .iter()
                    .any(|d: &Value| d["image"] == t.image.as_str())
                {
                    let queued = server.start(&t.image);
                    deploys.push(json!({
                        "image": t.image, "service": t.service, "queued": queued,
                    }));
                }
            }
            Selected::OtherTag(tags) => ignored.push(format!(
                "{repo}:{tag}: the deployed tag is {}",
                tags.join(", ")
            )),
            Selected::UnknownRepository => unknown.push(repo.clone()),
        }
    }
    if !deploys.is_empty() {
        let status = StatusCode::ACCEPTED;
        let images: Vec<&str> = deploys.iter().filter_map(|d| d["image"].as_str()).collect();
        line(&format!("{what}: deploy {}", images.join(", ")), status);
        return reply(status, json!({"status": "accepted", "deploys": deploys}));
    }
    let repositories: Vec<&str> = server
        .config
        .targets
        .iter()
        .map(|t| t.repository.as_str())
        .collect();
    // A registry retries a notification until it gets a 2xx or 3xx, holding back the
    // later ones: pushes of repositories this server does not deploy are fine, not 404.
    if !unknown.is_empty() && ignored.is_empty() && hook.source == Source::DockerHub {
        let status = StatusCode::NOT_FOUND;
        line(&format!("{what} (no such image here)"), status);
        return reply(
            status,
            json!({
                "error": format!("no image of this server has the repository {}", unknown.join(", ")),
                "repositories": repositories,
            }),
        );
    }
    let status = StatusCode::OK;
    line(&format!("{what}: ignored"), status);
    let mut reasons = ignored;
    reasons.extend(unknown.iter().map(|r| format!("{r}: not deployed here")));
    if hook.pushes.is_empty() {
        reasons.push("no push of a tag".into());
    }
    reply(status, json!({"status": "ignored", "reasons": reasons}))
}

async fn status(State(server): State<Arc<Server>>, request: Request) -> Response {
    if !authorized(&server, &request) {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "missing or wrong API key: send it as the X-Api-Key header or ?key="}),
        );
    }
    reply(StatusCode::OK, server.status())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    let term = async {
        match term.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    let int = async {
        match int.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => {},
        _ = int => {},
    }
}

/// The listener's bounds (`--header-timeout`, `--max-connections`).
#[derive(Debug, Clone, Copy)]
struct Limits {
    header_timeout: Duration,
    max_connections: usize,
}

/// Serves HTTP/1 connections until `shutdown` resolves, then lets the requests under way
/// finish for at most [`SHUTDOWN_GRACE`]. Not `axum::serve`: it has no header timeout and
/// no connection cap, and this listener faces the internet's slow and idle clients.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    // Told to every connection at shutdown: finish the request under way, take no more.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of descriptors and the like: say so, and do not spin on it.
                    log(&format!("cannot accept a connection: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tokio::spawn(refuse_busy(stream, peer, limits.max_connections));
            continue;
        };
        let service =
            app.clone()
                .map_request(move |request: hyper::Request<hyper::body::Incoming>| {
                    let mut request = request.map(axum::body::Body::new);
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            // A timed-out or reset connection is the client's business: nothing to log.
            tokio::select! {
                _ = conn.as_mut() => {}
                // (the Ref that wait_for returns must not live across the await below)
                () = async { let _ = stopped.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every slot back: every connection is closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        log(&format!(
            "connections still open after {}s are dropped",
            SHUTDOWN_GRACE.as_secs()
        ));
    }
}

/// Over the connection cap: a 503 without reading the request, and the connection closed.
async fn refuse_busy(mut stream: tokio::net::TcpStream, peer: SocketAddr, max: usize) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::AsyncWriteExt;
    // A flood must not flood the log too: the first refusal, then one line in a hundred.
    static REFUSED: AtomicU64 = AtomicU64::new(0);
    let n = REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
    if n == 1 || n.is_multiple_of(100) {
        log(&format!(
            "{peer} refused: {max} connections open -> 503 ({n} refused so far)"
        ));
    }
    let body = "{\"error\": \"too many connections; try again later\"}\n";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    // Answer, then read what the client sent for a moment before closing: a close with
    // unread data sends a reset, which can make the client lose the answer.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        use tokio::io::AsyncReadExt;
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}

fn describe(config: &Config, listen: &SocketAddr) -> String {
    let mut text = format!("serve-hooks on http://{listen}/hooks (POST; GET /status)\n");
    for t in &config.targets {
        text.push_str(&format!(
            "  {}: pushes of {}:{} deploy {} as container {}\n",
            t.image, t.repository, t.tag, t.reference, t.service
        ));
    }
    text
}

fn run(args: &Args) -> Result<i32> {
    let ctx = Context::from_process();
    let project = Project::discover_here(&ctx.user)?;
    let config = Config::load(&project, &ctx)?;
    if args.dry_run {
        print!("{}", describe(&config, &args.listen));
        return Ok(0);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the server's runtime", e))?;
    let listen = args.listen;
    let server = Arc::new(Server {
        config,
        opts: Options {
            settle: Duration::from_secs(args.settle),
            health_timeout: Duration::from_secs(args.health_timeout),
            if_changed: true,
        },
        deploys: Mutex::new(HashMap::new()),
        stopping: std::sync::atomic::AtomicBool::new(false),
    });
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Error::io(format!("cannot listen on {listen}"), e))?;
        for line in describe(&server.config, &listen).lines() {
            log(line);
        }
        let app = Router::new()
            .route("/hooks", post(hook))
            .route("/status", get(status))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(Arc::clone(&server));
        let stopping = Arc::clone(&server);
        let limits = Limits {
            header_timeout: Duration::from_secs(args.header_timeout),
            // At most 65536 (clap checks): a usize and a u32 on every target.
            max_connections: args.max_connections as usize,
        };
        serve_connections(listener, app, limits, async move {
            shutdown_signal().await;
            stopping
                .stopping
                .store(true, std::sync::atomic::Ordering::SeqCst);
            log("shutting down: no new hooks");
        })
        .await;
        let waited = tokio::time::Instant::now();
        let mut said = false;
        loop {
            let busy = server.busy();
            if busy.is_empty() {
                break;
            }
            if waited.elapsed() > DEPLOY_GRACE {
                log(&format!(
                    "stopping without waiting longer for the deploy of {} (it may have left \
                     the service half-replaced: see `docker ps -a` and deploy-image --help)",
                    busy.join(", ")
                ));
                break;
            }
            if !said {
                log(&format!(
                    "waiting for the deploy of {} to finish (at most {}s)",
                    busy.join(", "),
                    DEPLOY_GRACE.as_secs()
                ));
                said = true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        log("stopped");
        Ok::<(), Error>(())
    })?;
    Ok(0)
}

pub(crate) fn main(args: Args) -> i32 {
    super::exit_code("serve-hooks", run(&args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_and_registry_payloads() {
        let hub = br#"{"push_data":{"tag":"latest","pusher":"ann"},"repository":{"repo_name":"myorg/web","name":"web"}}"#;
        assert_eq!(
            parse_hook(hub).unwrap(),
            Hook {
                source: Source::DockerHub,
                pushes: vec![("myorg/web".into(), "latest".into())]
            }
        );
        let registry = br#"{"events":[
            {"action":"push","target":{"mediaType":"application/octet-stream","repository":"team/web"}},
            {"action":"push","target":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","repository":"team/web","tag":"v2"}},
            {"action":"push","target":{"repository":"team/web","tag":"v2"}},
            {"action":"pull","target":{"repository":"team/api","tag":"latest"}}]}"#;
        assert_eq!(
            parse_hook(registry).unwrap(),
            Hook {
                source: Source::Registry,
                pushes: vec![("team/web".into(), "v2".into())]
            }
        );
        assert!(
            parse_hook(b"{not json")
                .unwrap_err()
                .starts_with("malformed JSON")
        );
        assert!(
            parse_hook(br#"{"hello":1}"#)
                .unwrap_err()
                .contains("neither")
        );
        let evil = br#"{"push_data":{"tag":"x; rm -rf /"},"repository":{"repo_name":"a/b"}}"#;
        assert!(parse_hook(evil).unwrap_err().contains("is not a tag"));
        let evil = br#"{"push_data":{"tag":"v1"},"repository":{"repo_name":"A/$(id)"}}"#;
        assert!(parse_hook(evil).unwrap_err().contains("not a repository"));
    }

    /// A deploy that panics leaves its image neither running nor queued, and counted as
    /// failed: the next hook deploys again instead of queueing behind it for ever.
    #[test]
    fn a_panicking_deploy_does_not_wedge_its_image() {
        let server = Server {
            config: Config {
                root: "/p".into(),
                key_digest: digest(b"0123456789abcdef"),
                targets: vec![],
            },
            opts: Options {
                settle: Duration::from_secs(1),
                health_timeout: Duration::from_secs(1),
                if_changed: true,
            },
            deploys: Mutex::new(HashMap::new()),
            stopping: std::sync::atomic::AtomicBool::new(false),
        };
        {
            let mut deploys = server.lock();
            let d = deploys.entry("web".into()).or_default();
            d.running = true;
            d.queued = true;
        }
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _running = RunningGuard {
                server: &server,
                image: "web",
            };
            panic!("a bug in a deploy");
        }));
        assert!(crashed.is_err());
        assert!(server.busy().is_empty());
        let status = server.lock();
        let d = &status["web"];
        assert!(!d.running && !d.queued && d.failed == 1, "{d:?}");
        assert_eq!(d.last.as_ref().unwrap()["ok"], false);
    }

    #[test]
    fn names_and_keys() {
        assert!(valid_repository("team/web-app_2.x") && valid_repository("web"));
        assert!(!valid_repository("Team/web") && !valid_repository("a//b"));
        assert!(!valid_repository("/web") && !valid_repository(""));
        assert!(valid_tag("v1.2.3_rc-1") && !valid_tag("-x") && !valid_tag("a/b"));
        assert_eq!(percent_decode("a%2Bb+c%zz%4"), "a+b c%zz%4");
        let mut headers = HeaderMap::new();
        assert_eq!(
            given_key(&headers, Some("x=1&key=s%3Dcret")).unwrap(),
            "s=cret"
        );
        assert_eq!(given_key(&headers, Some("x=1")), None);
        headers.insert("X-Api-Key", "from-header".parse().unwrap());
        assert_eq!(given_key(&headers, Some("key=q")).unwrap(), "from-header");
        let config = Config {
            root: "/p".into(),
            key_digest: digest(b"0123456789abcdef"),
            targets: vec![Target {
                image: "web".into(),
                service: "web".into(),
                reference: "127.0.0.1:5000/team/web:latest".into(),
                repository: "team/web".into(),
                tag: "latest".into(),
            }],
        };
        assert!(config.key_matches("0123456789abcdef"));
        assert!(!config.key_matches("0123456789abcdeF") && !config.key_matches(""));
        assert!(matches!(
            config.select("team/web", "latest"),
            Selected::Image(_)
        ));
        assert!(matches!(
            config.select("team/web", "dev"),
            Selected::OtherTag(_)
        ));
        assert!(matches!(
            config.select("team/api", "latest"),
            Selected::UnknownRepository
        ));
    }
}
