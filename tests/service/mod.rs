//! Shared by the deploy-image and serve-hooks tests: a project whose `web` image is a
//! busybox HTTP service (`httpd -f -p 8080`) serving its version, the service's
//! container(s) removed at the end, and a small HTTP client.
#![allow(dead_code)]

use crate::common::{self, BUSYBOX_DOCKERFILE, Project, free_port, require_engine};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The Dockerfile of version `version` of the web service; `extra` lines go last (a CMD
/// there replaces the server).
pub(crate) fn web_dockerfile(version: &str, extra: &str) -> String {
    format!(
        "{BUSYBOX_DOCKERFILE}RUN mkdir /www && echo {version} > /www/index.html\n\
         CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n{extra}\n"
    )
}

/// The service's containers (`NAME`, `NAME-previous`) and the images built for it, all
/// removed when dropped, and the host port its cfg publishes.
pub(crate) struct Service {
    pub name: String,
    pub port: u16,
    /// Images (ids or references) to remove at the end.
    pub images: RefCell<Vec<String>>,
}

impl Service {
    pub(crate) fn new(p: &Project) -> Service {
        require_engine();
        Service {
            name: format!("{}-svc", p.name),
            port: free_port(),
            images: RefCell::new(vec![]),
        }
    }

    /// Builds `dockerfile` as docker/web/Dockerfile, tagged `tag`; its image id. A label
    /// makes the image the project's own: tests running side by side never share one (a
    /// test removes its images at the end).
    pub(crate) fn build(&self, p: &Project, tag: &str, dockerfile: &str) -> String {
        p.dockerfile(
            "web",
            &format!("{dockerfile}\nLABEL dockerutils.test={}\n", p.name),
        );
        let out = Command::new("docker")
            .current_dir(&p.root)
            .args(["build", "-q", "-t", tag, "-f", "docker/web/Dockerfile", "."])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let id = common::image_id(tag);
        self.images.borrow_mut().push(id.clone());
        id
    }

    /// `ports=` for the cfg: the container's 8080 on 127.0.0.1.
    pub(crate) fn ports(&self) -> String {
        format!("-p 127.0.0.1:{}:8080", self.port)
    }

    /// The names of the containers of this service (running or not), sorted.
    pub(crate) fn containers(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args(["ps", "-a", "--format", "{{.Names}}", "--filter"])
            .arg(format!("name=^{}", self.name))
            .output()
            .unwrap();
        let mut names: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
        names.sort();
        names
    }

    /// `docker inspect --format FORMAT NAME`
    pub(crate) fn inspect(&self, format: &str) -> String {
        let out = Command::new("docker")
            .args([
                "inspect",
                "--type",
                "container",
                "--format",
                format,
                &self.name,
            ])
            .output()
            .unwrap();
        text(&out.stdout).trim().to_owned()
    }

    /// The image id of the running service (empty when it does not run).
    pub(crate) fn running_image(&self) -> String {
        if self.inspect("{{.State.Running}}") != "true" {
            return String::new();
        }
        self.inspect("{{.Image}}")
    }

    /// What the service answers on /, waiting up to 10 s for it.
    pub(crate) fn page(&self) -> String {
        let start = Instant::now();
        loop {
            if let Some(body) = http_get(self.port, "/") {
                return body;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the service does not answer on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        for c in [self.name.clone(), format!("{}-previous", self.name)] {
            let _ = Command::new("docker").args(["rm", "-f", "-v", &c]).output();
        }
        // Images go when no test of this binary builds (see common::Cleanup).
        crate::common::cleanup().remove_later(self.images.borrow().iter().cloned());
    }
}

/// An HTTP response: status and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: String,
}

/// One HTTP/1.1 request (Connection: close) to 127.0.0.1:port. A write cut short by the
/// server (it answers 413 before reading a big body) is not an error: the answer is read.
pub(crate) fn request(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body));
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) if !raw.is_empty() => break,
            Err(e) => panic!("no answer from 127.0.0.1:{port}: {e}"),
        }
    }
    let raw = text(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {raw}"));
    Response {
        status,
        body: body.to_string(),
    }
}

/// GET a page; None when nothing answers.
pub(crate) fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    head.contains(" 200 ").then(|| body.to_string())
}
