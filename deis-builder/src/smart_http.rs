//! The git smart HTTP protocol as request/response handlers over `http` types, for the
//! controller to mount at `/<app>.git/…` behind its authentication (the builder opens no
//! HTTP socket of its own).

use crate::git::{
    advertisement_content_type, result_content_type, GitRepos, GitService, PushContext,
};
use bytes::Bytes;
use futures::StreamExt;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use std::convert::Infallible;
use tokio::io::AsyncWriteExt;

/// The response body type of the handlers.
pub type GitBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn text(status: StatusCode, message: String) -> Response<GitBody> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(
            Full::new(Bytes::from(message))
                .map_err(|e: Infallible| match e {})
                .boxed(),
        )
        .expect("a valid response")
}

/// `GET /<app>.git/info/refs?service=<service>`: the ref advertisement.
pub async fn info_refs(
    repos: &GitRepos,
    context: &PushContext,
    service: Option<&str>,
) -> Response<GitBody> {
    let Some(service) = service.and_then(GitService::parse) else {
        return text(
            StatusCode::FORBIDDEN,
            "only the smart protocol (git-upload-pack, git-receive-pack) is served\n".into(),
        );
    };
    match repos.advertisement(context, service).await {
        Ok(body) => Response::builder()
            .header("content-type", advertisement_content_type(service))
            .header("cache-control", "no-cache")
            .body(
                Full::new(Bytes::from(body))
                    .map_err(|e: Infallible| match e {})
                    .boxed(),
            )
            .expect("a valid response"),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
    }
}

/// `POST /<app>.git/<service>`: one stateless RPC. `gzip` is true when the request body is
/// gzip-encoded (git does that for large pushes). The body is fed to git while its output
/// streams back.
pub async fn rpc<B>(
    repos: &GitRepos,
    service: GitService,
    context: &PushContext,
    body: B,
    gzip: bool,
) -> Response<GitBody>
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display + Send,
{
    let mut process = match repos.start(service, context, true).await {
        Ok(process) => process,
        Err(error) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
    };
    let mut stdin = process.child.stdin.take().expect("stdin is piped");
    let stdout = process.child.stdout.take().expect("stdout is piped");
    let stderr = process.child.stderr.take().expect("stderr is piped");
    tokio::spawn(async move {
        let mut body = body;
        let mut decoder = gzip.then(|| flate2::write::GzDecoder::new(Vec::new()));
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let chunk = match decoder.as_mut() {
                Some(decoder) => {
                    use std::io::Write;
                    if decoder.write_all(&data).is_err() {
                        break;
                    }
                    std::mem::take(decoder.get_mut())
                }
                None => data.to_vec(),
            };
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
        if let Some(decoder) = decoder {
            if let Ok(rest) = decoder.finish() {
                let _ = stdin.write_all(&rest).await;
            }
        }
        let _ = stdin.shutdown().await;
    });
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(target: "deis_builder::git", "{line}");
        }
    });
    // The stream owns the git process, so git lives as long as the response is read.
    let stream = tokio_util_stream(stdout).map(move |chunk| {
        let _keep = &process;
        chunk.map(Frame::data)
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", result_content_type(service))
        .header("cache-control", "no-cache")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("a valid response")
}

fn tokio_util_stream(
    reader: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    futures::stream::unfold(reader, |mut reader| async move {
        use tokio::io::AsyncReadExt;
        let mut buffer = vec![0u8; 64 * 1024];
        match reader.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(Bytes::from(buffer)), reader))
            }
            Err(error) => Some((Err(error), reader)),
        }
    })
}

/// Parses a request path such as `/go.git/info/refs` or `/go.git/git-receive-pack` into the
/// app and the rest, or `None` when it is not a repository path.
pub fn split_repo_path(path: &str) -> Option<(String, &str)> {
    let trimmed = path.trim_start_matches('/');
    let (repo, rest) = trimmed.split_once(".git/")?;
    let app = crate::git::app_from_repo_path(repo)?;
    Some((app, rest))
}
