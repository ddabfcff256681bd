//! A read-only registry of one image, for transfer-image's registry path: the part of the
//! OCI distribution API that `docker pull` uses, and nothing else.
//!
//! - `GET`/`HEAD /v2/`; `/v2/<repo>/manifests/<tag or digest>` (the one manifest, with its
//!   media type and `Docker-Content-Digest`); `/v2/<repo>/blobs/<digest>` (its configuration
//!   and layers). Any other path, repository, tag or digest is 404; any other method 405.
//!   Paths are compared whole and undecoded, so `..`, `%2e%2e` or another repository
//!   never lead anywhere. It listens on 127.0.0.1 only, on a port the system picks.
//! - Layers are uncompressed tars (`application/vnd.docker.image.rootfs.diff.tar`, which
//!   docker 20.10's pull and containerd both take): a layer's digest is then its diff id,
//!   known from the image configuration, and its size the sum its tar-split (or its file)
//!   gives, so the manifest needs no pass over the data. What is compressed is the
//!   transfer: a client that sends `Accept-Encoding` gets the blob zstd-compressed
//!   (containerd asks for zstd) or gzip-compressed (the Go HTTP client of a classic engine
//!   asks for gzip only), streamed, the level following the link as in the `docker load`
//!   path ([`crate::dock::compress`]: on a fast link, gzip stores); the client checks the digest
//!   of what it decompressed. A layer that is already compressed (an OCI layout's) is sent as
//!   it is. `Range: bytes=N-[M]` is answered (uncompressed) for clients that resume.
//! - Blobs are read in blocking threads and handed to the connection through a small
//!   channel: a client that goes away stops the reading at the next chunk.

use super::saved::{self as saved_image, SavedImage};
use crate::engine::store::StoredImage;
use hyper::body::{Bytes, Frame, SizeHint};
use hyper::{Method, Request, Response, StatusCode, header};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// Bytes handed to a connection at a time.
const CHUNK: usize = 256 << 10;

/// One blob the registry serves.
struct Blob {
    size: u64,
    /// An uncompressed layer tar: compressed on the way when the client accepts it.
    compressible: bool,
    /// A layer (its bytes are the transfer's progress), not the configuration.
    layer: bool,
    source: Source,
}

enum Source {
    Bytes(Bytes),
    File(PathBuf),
    /// Layer `.1` of an image in the engine's storage.
    Store(Arc<StoredImage>, usize),
}

impl Blob {
    fn open(&self) -> io::Result<Box<dyn Read>> {
        Ok(match &self.source {
            Source::Bytes(b) => Box::new(io::Cursor::new(b.clone())),
            Source::File(path) => Box::new(std::fs::File::open(path)?),
            Source::Store(image, i) => Box::new(image.layer_tar(*i, |_| {})?),
        })
    }
}

/// The image a registry serves: one repository, one tag, one manifest and its blobs.
pub(crate) struct Image {
    repo: String,
    tag: String,
    manifest: Bytes,
    manifest_type: String,
    manifest_digest: String,
    blobs: HashMap<String, Blob>,
    layers: Vec<String>,
    layer_bytes: u64,
    /// The unpacked `docker save` the blobs are read from, if any (removed with it).
    _saved: Option<SavedImage>,
}

/// A layer as the manifest lists it, and where its bytes are.
struct LayerBlob {
    digest: String,
    size: u64,
    media_type: String,
    compressible: bool,
    source: Source,
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

impl Image {
    /// The image in the engine's storage, as `repo:tag`: each layer's tar is read from the
    /// storage when asked for (its tar-split is read once here, for its size).
    pub(crate) fn from_store(store: StoredImage, repo: &str, tag: &str) -> io::Result<Image> {
        let config = store.config().to_vec();
        let parsed: serde_json::Value = serde_json::from_slice(&config)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let diff_ids = saved_image::diff_ids(&parsed)?;
        if diff_ids.len() != store.layer_count() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the configuration and the storage disagree on the number of layers",
            ));
        }
        let store = Arc::new(store);
        let mut layers = Vec::new();
        for (i, digest) in diff_ids.into_iter().enumerate() {
            layers.push(LayerBlob {
                size: store.layer_tar_size(i)?,
                digest,
                media_type: saved_image::DOCKER_LAYER.into(),
                compressible: true,
                source: Source::Store(store.clone(), i),
            });
        }
        Ok(Image::new(repo, tag, None, config, layers, None))
    }

    /// An unpacked `docker save`: its own manifest for an OCI layout, else one written
    /// here for its uncompressed layers.
    pub(crate) fn from_saved(saved: SavedImage, repo: &str, tag: &str) -> Image {
        let layers = saved
            .layers
            .iter()
            .map(|l| LayerBlob {
                digest: l.digest.clone(),
                size: l.size,
                media_type: l.media_type.clone(),
                compressible: l.uncompressed(),
                source: Source::File(l.path.clone()),
            })
            .collect();
        Image::new(
            repo,
            tag,
            saved.manifest.clone(),
            saved.config.clone(),
            layers,
            Some(saved),
        )
    }

    fn new(
        repo: &str,
        tag: &str,
        manifest: Option<(Vec<u8>, String)>,
        config: Vec<u8>,
        layers: Vec<LayerBlob>,
        saved: Option<SavedImage>,
    ) -> Image {
        let config_digest = sha256(&config);
        let (manifest, manifest_type) = manifest.unwrap_or_else(|| {
            let listed: Vec<serde_json::Value> = layers
                .iter()
                .map(|l| {
                    serde_json::json!({"mediaType": l.media_type, "size": l.size, "digest": l.digest})
                })
                .collect();
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": saved_image::DOCKER_MANIFEST,
                "config": {"mediaType": saved_image::DOCKER_CONFIG, "size": config.len(),
                           "digest": config_digest},
                "layers": listed,
            });
            (
                manifest.to_string().into_bytes(),
                saved_image::DOCKER_MANIFEST.to_string(),
            )
        });
        let mut blobs = HashMap::new();
        blobs.insert(
            config_digest,
            Blob {
                size: config.len() as u64,
                compressible: false,
                layer: false,
                source: Source::Bytes(config.into()),
            },
        );
        let layer_bytes = layers.iter().map(|l| l.size).sum();
        let digests = layers.iter().map(|l| l.digest.clone()).collect();
        for l in layers {
            // The same layer twice in an image is one blob.
            blobs.entry(l.digest).or_insert(Blob {
                size: l.size,
                compressible: l.compressible,
                layer: true,
                source: l.source,
            });
        }
        Image {
            repo: repo.into(),
            tag: tag.into(),
            manifest_digest: sha256(&manifest),
            manifest: manifest.into(),
            manifest_type,
            blobs,
            layers: digests,
            layer_bytes,
            _saved: saved,
        }
    }

    /// The digest of the manifest (what `docker pull` records as the image's repo digest).
    pub(crate) fn manifest_digest(&self) -> &str {
        &self.manifest_digest
    }

    /// The layers' digests, bottom first.
    pub(crate) fn layers(&self) -> &[String] {
        &self.layers
    }

    /// The layers' bytes, uncompressed.
    pub(crate) fn layer_bytes(&self) -> u64 {
        self.layer_bytes
    }
}

/// What the registry has done so far.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Body bytes handed to connections (compressed where the client asked for it).
    pub sent: AtomicU64,
    /// Layer bytes read (uncompressed).
    pub read: AtomicU64,
    /// Layer blobs served whole, by digest, in the order they ended.
    pub fetched: Mutex<Vec<String>>,
    /// Layer blobs that could not be read (what, why).
    pub errors: Mutex<Vec<String>>,
    /// The transfer encodings the layers went out with.
    pub encodings: Mutex<Vec<&'static str>>,
}

/// A running registry; stopped (every connection closed) when dropped.
pub(crate) struct Server {
    port: u16,
    stats: Arc<Stats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serves `image` on 127.0.0.1, on a port the system picks, from a thread of its own.
    pub(crate) fn start(image: Image) -> io::Result<Server> {
        let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let image = Arc::new(image);
        let in_thread = stats.clone();
        let thread = std::thread::Builder::new()
            .name("registry".into())
            .spawn(move || {
                runtime.block_on(serve(listener, image, in_thread, stopped));
                // Connections are dropped with the runtime; a blob being read stops at its
                // next chunk (its channel is gone).
                runtime.shutdown_timeout(Duration::from_secs(5));
            })?;
        Ok(Server {
            port,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    image: Arc<Image>,
    stats: Arc<Stats>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    // A connection that sends no request header within this time is closed.
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors, say: try again shortly rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (image, stats) = (image.clone(), stats.clone());
        let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
            let response = respond(&image, &stats, &request);
            async move { Ok::<_, std::convert::Infallible>(response) }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

/// The answer to one request.
fn respond<B>(image: &Arc<Image>, stats: &Arc<Stats>, request: &Request<B>) -> Response<Body> {
    let head = request.method() == Method::HEAD;
    if request.method() != Method::GET && !head {
        let mut response = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "this registry is read-only",
            stats,
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = request.uri().path();
    if path == "/v2/" || path == "/v2" {
        return full(
            StatusCode::OK,
            "application/json",
            Bytes::from_static(b"{}"),
            head,
            stats,
        );
    }
    let in_repo = path
        .strip_prefix("/v2/")
        .and_then(|p| p.strip_prefix(image.repo.as_str()))
        .and_then(|p| p.strip_prefix('/'));
    let Some(rest) = in_repo else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
            stats,
        );
    };
    if let Some(reference) = rest.strip_prefix("manifests/") {
        if reference != image.tag && reference != image.manifest_digest {
            return error(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
                stats,
            );
        }
        let mut response = full(
            StatusCode::OK,
            &image.manifest_type,
            image.manifest.clone(),
            head,
            stats,
        );
        set(
            &mut response,
            "docker-content-digest",
            &image.manifest_digest,
        );
        return response;
    }
    if let Some(digest) = rest.strip_prefix("blobs/")
        && let Some(blob) = image.blobs.get(digest)
    {
        return blob_response(digest, blob, image, head, request.headers(), stats);
    }
    if rest.starts_with("blobs/") {
        return error(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
            stats,
        );
    }
    error(
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
        "repository name not known to registry",
        stats,
    )
}

fn set<B>(response: &mut Response<B>, name: &'static str, value: &str) {
    if let Ok(value) = header::HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

fn full(
    status: StatusCode,
    content_type: &str,
    bytes: Bytes,
    head: bool,
    stats: &Arc<Stats>,
) -> Response<Body> {
    let len = bytes.len();
    let mut response = Response::new(Body {
        inner: if head {
            Inner::Empty
        } else {
            Inner::Full(Some(bytes))
        },
        stats: stats.clone(),
    });
    *response.status_mut() = status;
    set(&mut response, "content-type", content_type);
    set(&mut response, "content-length", &len.to_string());
    set(
        &mut response,
        "docker-distribution-api-version",
        "registry/2.0",
    );
    response
}

/// An error as the distribution API words it.
fn error(status: StatusCode, code: &str, message: &str, stats: &Arc<Stats>) -> Response<Body> {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string();
    full(status, "application/json", body.into(), false, stats)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "uncompressed",
            Encoding::Gzip => "gzip",
            Encoding::Zstd => "zstd",
        }
    }
}

/// The encoding to send with, from `Accept-Encoding`: zstd, else gzip, else none.
fn negotiate(accept: Option<&str>) -> Encoding {
    let accepted = |name: &str| {
        accept.unwrap_or("").split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            parts.next().is_some_and(|n| n.eq_ignore_ascii_case(name))
                && parts.all(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_none_or(|q| q > 0.0)
                })
        })
    };
    if accepted("zstd") {
        Encoding::Zstd
    } else if accepted("gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// `bytes=N-` or `bytes=N-M` within `size`: the first and last byte. `Err` for a range
/// this registry does not serve (several, suffix, or beyond the end).
fn byte_range(value: &str, size: u64) -> Result<(u64, u64), ()> {
    let spec = value.trim().strip_prefix("bytes=").ok_or(())?;
    let (first, last) = spec.split_once('-').ok_or(())?;
    let first: u64 = first.trim().parse().map_err(|_| ())?;
    let last = match last.trim() {
        "" => size.checked_sub(1).ok_or(())?,
        l => l
            .parse::<u64>()
            .map_err(|_| ())?
            .min(size.saturating_sub(1)),
    };
    if first > last || first >= size {
        return Err(());
    }
    Ok((first, last))
}

fn blob_response(
    digest: &str,
    blob: &Blob,
    image: &Arc<Image>,
    head: bool,
    headers: &header::HeaderMap,
    stats: &Arc<Stats>,
) -> Response<Body> {
    let range = match headers.get(header::RANGE).map(|v| v.to_str().unwrap_or("")) {
        None => None,
        Some(value) => match byte_range(value, blob.size) {
            Ok(range) => Some(range),
            Err(()) => {
                let mut response = error(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "RANGE_INVALID",
                    "only one range, bytes=N- or bytes=N-M, within the blob",
                    stats,
                );
                set(
                    &mut response,
                    "content-range",
                    &format!("bytes */{}", blob.size),
                );
                return response;
            }
        },
    };
    let encoding = match (blob.compressible, range) {
        (true, None) => negotiate(
            headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok()),
        ),
        _ => Encoding::Identity,
    };
    let (first, last) = range.unwrap_or((0, blob.size.saturating_sub(1)));
    let length = if blob.size == 0 { 0 } else { last - first + 1 };
    let mut response = Response::new(Body {
        inner: Inner::Empty,
        stats: stats.clone(),
    });
    set(&mut response, "content-type", "application/octet-stream");
    set(&mut response, "docker-content-digest", digest);
    set(
        &mut response,
        "docker-distribution-api-version",
        "registry/2.0",
    );
    set(&mut response, "accept-ranges", "bytes");
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        set(
            &mut response,
            "content-range",
            &format!("bytes {first}-{last}/{}", blob.size),
        );
    }
    if encoding == Encoding::Identity || head {
        set(&mut response, "content-length", &length.to_string());
    } else {
        set(&mut response, "content-encoding", encoding.name());
    }
    if head {
        return response;
    }
    let (tx, rx) = mpsc::channel(4);
    response.body_mut().inner = Inner::Stream(rx);
    let (stats, digest, image) = (stats.clone(), digest.to_string(), image.clone());
    tokio::task::spawn_blocking(move || {
        // Found again by digest here: the thread owns what it reads.
        let Some(blob) = image.blobs.get(&digest) else {
            return;
        };
        let whole = first == 0 && length == blob.size;
        let result = blob.open().and_then(|reader| {
            produce(
                reader,
                first,
                length,
                encoding,
                tx.clone(),
                blob.layer,
                &stats,
            )
        });
        match result {
            Ok(()) if blob.layer => {
                // A layer compressed already (an OCI layout's) went as it is stored.
                let how = if blob.compressible {
                    encoding.name()
                } else {
                    "as stored"
                };
                stats.encodings.lock().unwrap().push(how);
                if whole {
                    stats.fetched.lock().unwrap().push(digest);
                }
            }
            Ok(()) => {}
            // The client went away: nothing to report.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => {
                stats.errors.lock().unwrap().push(format!("{digest}: {e}"));
                // The connection ends short: the client sees the blob incomplete.
                let _ = tx.blocking_send(Err(e));
            }
        }
    });
    response
}

/// Reads `length` bytes of the blob from `first` on and sends them, encoded, to `tx`.
fn produce(
    mut reader: Box<dyn Read>,
    first: u64,
    length: u64,
    encoding: Encoding,
    tx: mpsc::Sender<io::Result<Bytes>>,
    layer: bool,
    stats: &Stats,
) -> io::Result<()> {
    io::copy(&mut (&mut reader).take(first), &mut io::sink())?;
    let mut reader = Counted {
        inner: reader.take(length),
        count: layer.then_some(&stats.read),
    };
    let out = io::BufWriter::with_capacity(CHUNK, ToChannel { tx });
    let copied = match encoding {
        Encoding::Identity => {
            let mut out = out;
            let n = io::copy(&mut reader, &mut out)?;
            out.flush()?;
            n
        }
        Encoding::Gzip => {
            let mut gz = crate::dock::compress::AdaptiveGzip::new(out)?;
            let n = io::copy(&mut reader, &mut gz)?;
            gz.finish()?.flush()?;
            n
        }
        Encoding::Zstd => {
            let mut z = crate::dock::compress::AdaptiveZstd::new(out)?;
            let n = io::copy(&mut reader, &mut z)?;
            z.finish()?.flush()?;
            n
        }
    };
    if copied != length {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{copied} bytes where {length} were expected"),
        ));
    }
    Ok(())
}

/// Counts the bytes read through it.
struct Counted<'a, R> {
    inner: R,
    count: Option<&'a AtomicU64>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(count) = self.count {
            count.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Hands what is written to the connection's body; a body that is gone is a broken pipe.
struct ToChannel {
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl Write for ToChannel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A response body: nothing, bytes at hand, or a blob as it is read; what goes out is
/// counted in [`Stats::sent`].
pub(crate) struct Body {
    inner: Inner,
    stats: Arc<Stats>,
}

enum Inner {
    Empty,
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<io::Result<Bytes>>),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let next = match &mut this.inner {
            Inner::Empty => None,
            Inner::Full(bytes) => bytes.take().map(Ok),
            Inner::Stream(rx) => match rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(next) => next,
            },
        };
        Poll::Ready(next.map(|item| {
            item.map(|bytes| {
                this.stats
                    .sent
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                Frame::data(bytes)
            })
        }))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.inner, Inner::Empty | Inner::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Empty | Inner::Full(None) => SizeHint::with_exact(0),
            Inner::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Inner::Stream(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::saved::tar_of;
    use std::collections::BTreeMap;
    use std::net::TcpStream;

    #[test]
    fn zstd_then_gzip_then_nothing() {
        assert_eq!(
            negotiate(Some("zstd;q=1.0, gzip;q=0.8, deflate;q=0.5")),
            Encoding::Zstd
        );
        assert_eq!(negotiate(Some("gzip")), Encoding::Gzip);
        assert_eq!(negotiate(Some("zstd;q=0, GZIP")), Encoding::Gzip);
        assert_eq!(negotiate(Some("identity")), Encoding::Identity);
        assert_eq!(negotiate(None), Encoding::Identity);
    }

    #[test]
    fn one_range_within_the_blob() {
        assert_eq!(byte_range("bytes=0-", 10), Ok((0, 9)));
        assert_eq!(byte_range("bytes=4-", 10), Ok((4, 9)));
        assert_eq!(byte_range("bytes=4-5", 10), Ok((4, 5)));
        assert_eq!(byte_range("bytes=4-50", 10), Ok((4, 9)));
        assert_eq!(byte_range("bytes=10-", 10), Err(()));
        assert_eq!(byte_range("bytes=-5", 10), Err(()));
        assert_eq!(byte_range("bytes=0-1,3-4", 10), Err(()));
        assert_eq!(byte_range("items=0-1", 10), Err(()));
    }

    struct Reply {
        status: u16,
        headers: BTreeMap<String, String>,
        body: Vec<u8>,
    }

    /// One HTTP/1.1 request over a new connection, the path sent as it is given.
    fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let text = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: BTreeMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw[end + 4..].to_vec();
        if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
            body = dechunk(&body);
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    fn dechunk(mut raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let eol = raw.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&raw[..eol]).unwrap().trim(), 16)
                .unwrap();
            raw = &raw[eol + 2..];
            if size == 0 {
                return out;
            }
            out.extend_from_slice(&raw[..size]);
            raw = &raw[size + 2..];
        }
    }

    /// A registry of a one-layer image (a classic `docker save`, unpacked): its port, the
    /// repository, the manifest digest, the layer, the config.
    fn registry() -> (Server, String, String, Vec<u8>, Vec<u8>) {
        let content: Vec<u8> = (0..600_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let layer = tar_of(&[("data", &content)]);
        let config =
            serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}})
                .to_string()
                .into_bytes();
        let manifest = r#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l/layer.tar"]}]"#;
        let archive = tar_of(&[
            ("l/layer.tar", &layer),
            ("c.json", &config),
            ("manifest.json", manifest.as_bytes()),
        ]);
        let saved = saved_image::unpack(&archive[..], &|| false).unwrap();
        let repo = "dockerutils-transfer/0123abcd";
        let image = Image::from_saved(saved, repo, "transfer");
        let digest = image.manifest_digest().to_string();
        (
            Server::start(image).unwrap(),
            repo.into(),
            digest,
            layer,
            config,
        )
    }

    #[test]
    fn serves_the_manifest_and_blobs_as_docker_pull_asks() {
        let (server, repo, digest, layer, config) = registry();
        let port = server.port();
        let get = |path: &str, headers: &[(&str, &str)]| request(port, "GET", path, headers);

        let r = get("/v2/", &[]);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        assert_eq!(r.headers["docker-distribution-api-version"], "registry/2.0");

        // By tag (HEAD, then GET) and by digest: the manifest, its type and digest.
        let head = request(port, "HEAD", &format!("/v2/{repo}/manifests/transfer"), &[]);
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
        assert_eq!(head.headers["docker-content-digest"], digest);
        assert_eq!(head.headers["content-type"], saved_image::DOCKER_MANIFEST);
        let by_digest = get(&format!("/v2/{repo}/manifests/{digest}"), &[]);
        assert_eq!(by_digest.status, 200);
        assert_eq!(sha256(&by_digest.body), digest);
        assert_eq!(
            head.headers["content-length"],
            by_digest.body.len().to_string()
        );
        let manifest: serde_json::Value = serde_json::from_slice(&by_digest.body).unwrap();
        assert_eq!(manifest["config"]["digest"], sha256(&config));
        assert_eq!(manifest["layers"][0]["digest"], sha256(&layer));
        assert_eq!(manifest["layers"][0]["size"], layer.len());
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            saved_image::DOCKER_LAYER
        );

        // Blobs: HEAD says the size; uncompressed, gzip and zstd give the same bytes.
        let blob = format!("/v2/{repo}/blobs/{}", sha256(&layer));
        let head = request(port, "HEAD", &blob, &[("Accept-Encoding", "gzip")]);
        assert_eq!(head.status, 200);
        assert_eq!(head.headers["content-length"], layer.len().to_string());
        assert!(head.body.is_empty());
        let plain = get(&blob, &[]);
        assert_eq!(plain.body, layer);
        assert!(!plain.headers.contains_key("content-encoding"));
        let gz = get(&blob, &[("Accept-Encoding", "gzip")]);
        assert_eq!(gz.headers["content-encoding"], "gzip");
        assert!(gz.body.len() < layer.len() / 2, "{} bytes", gz.body.len());
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&gz.body[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, layer);
        let zs = get(&blob, &[("Accept-Encoding", "zstd;q=1.0, gzip;q=0.8")]);
        assert_eq!(zs.headers["content-encoding"], "zstd");
        assert_eq!(zstd::stream::decode_all(&zs.body[..]).unwrap(), layer);
        // The configuration goes as it is, whatever the client accepts.
        let c = get(
            &format!("/v2/{repo}/blobs/{}", sha256(&config)),
            &[("Accept-Encoding", "gzip")],
        );
        assert_eq!((c.status, &c.body), (200, &config));
        assert!(!c.headers.contains_key("content-encoding"));
        // A resumed download.
        let part = get(
            &blob,
            &[("Range", "bytes=1000-"), ("Accept-Encoding", "gzip")],
        );
        assert_eq!(part.status, 206);
        assert_eq!(
            part.headers["content-range"],
            format!("bytes 1000-{}/{}", layer.len() - 1, layer.len())
        );
        assert_eq!(part.body, layer[1000..]);
        assert_eq!(get(&blob, &[("Range", "bytes=99999999-")]).status, 416);

        // Counted: the bytes sent, the layer fetched whole (three times), read bytes.
        let stats = server.stats().clone();
        drop(server);
        let fetched = stats.fetched.lock().unwrap().clone();
        assert_eq!(fetched, vec![sha256(&layer); 3]);
        let sent = stats.sent.load(Ordering::Relaxed);
        let bodies = [&by_digest, &plain, &gz, &zs, &c, &part]
            .iter()
            .map(|r| r.body.len())
            .sum::<usize>()
            + 2;
        assert!(sent >= bodies as u64, "{sent} < {bodies}");
        assert_eq!(
            stats.read.load(Ordering::Relaxed),
            3 * layer.len() as u64 + (layer.len() - 1000) as u64
        );
    }

    /// Writes, other repositories, tags and digests, and paths that try to leave the
    /// repository are refused (4xx), and the connection stays usable for the next one.
    #[test]
    fn refuses_writes_and_everything_outside_its_image() {
        let (server, repo, digest, layer, _) = registry();
        let port = server.port();
        let blob = format!("/v2/{repo}/blobs/{}", sha256(&layer));
        for method in ["PUT", "POST", "PATCH", "DELETE"] {
            for path in [
                format!("/v2/{repo}/manifests/transfer"),
                blob.clone(),
                format!("/v2/{repo}/blobs/uploads/"),
            ] {
                let r = request(port, method, &path, &[("Content-Length", "0")]);
                assert_eq!(r.status, 405, "{method} {path}");
                assert_eq!(r.headers["allow"], "GET, HEAD");
                assert!(String::from_utf8_lossy(&r.body).contains("UNSUPPORTED"));
            }
        }
        let not_found = [
            "/".to_string(),
            "/v2/_catalog".into(),
            format!("/v2/{repo}/tags/list"),
            "/v2/other/manifests/transfer".into(),
            "/v2/dockerutils-transfer/manifests/transfer".into(),
            format!("/v2/{repo}x/manifests/transfer"),
            format!("/v2/{repo}/manifests/latest"),
            format!("/v2/{repo}/manifests/../../other/manifests/transfer"),
            format!("/v2/{repo}/../other/manifests/transfer"),
            format!("/v2/other/../{repo}/manifests/transfer"),
            format!("/v2/{repo}/manifests/%2e%2e/transfer"),
            format!("/v2/{repo}/manifests/transfer/"),
            format!("/v2/{repo}/blobs/sha256:{}", "0".repeat(64)),
            format!("/v2/{repo}/blobs/{digest}"),
            format!("{blob}/../../../etc/passwd"),
            format!("/v2/{repo}/blobs/$(touch%20x);'\"q"),
        ];
        for path in &not_found {
            for method in ["GET", "HEAD"] {
                let r = request(port, method, path, &[]);
                assert_eq!(r.status, 404, "{method} {path}");
            }
        }
        // The same layer by its own path still comes after all that.
        assert_eq!(request(port, "GET", &blob, &[]).body, layer);
    }
}
