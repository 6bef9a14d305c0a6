//! `GET /sdk/…`: the built browser SDK, served precompressed. `sdk-wasm/build` writes
//! `FILE.gz` (zopfli) next to `spoor.js`, `spoor_bg.wasm` and `spoor.mjs`; a client that
//! accepts gzip gets those bytes with `Content-Encoding: gzip` and the file's own
//! `Content-Type`, others get the file. Serving files needs no ClickHouse: these tests build
//! the collector's router around a store and readiness probe that are never asked, on a real
//! socket, so the headers are the ones a browser sees.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

mod common;

use common::gzip;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_ENCODING, ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE,
    HeaderMap, VARY,
};
use spoor_collector::config::{Cli, Config};
use spoor_collector::http::{AppState, Readiness, SystemClock};
use spoor_collector::keys::KeyRing;
use spoor_collector::metrics::Metrics;
use spoor_collector::store::{FailingStore, StoreError};

/// Never asked: no route under `/sdk` looks at ClickHouse.
struct NoClickHouse;

impl Readiness for NoClickHouse {
    fn clickhouse_ok(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async { false })
    }
}

/// The collector's router with `sdk_dir`, on 127.0.0.1:0; its base URL.
async fn serve_sdk(dir: &Path) -> String {
    let config = Config::from_parts(
        Cli {
            sdk_dir: Some(dir.to_path_buf()),
            spool_dir: Some(dir.join("unused-spool")),
            ..Cli::default()
        },
        None,
    )
    .expect("config");
    let state = Arc::new(AppState {
        keys: KeyRing::new(&config.keys, config.limits.max_events_per_batch),
        store: Arc::new(FailingStore(StoreError::ShuttingDown)),
        clock: Arc::new(SystemClock),
        readiness: Arc::new(NoClickHouse),
        metrics: Arc::new(Metrics::new()),
        config,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            spoor_collector::app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    url
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("the gzip body decompresses");
    out
}

/// An SDK directory as `sdk-wasm/build` leaves it: the files, `.gz` for the three a page
/// loads (none for `spoor.d.ts`).
fn sdk_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    for i in 0..4000u32 {
        wasm.extend_from_slice(&(i % 251).to_le_bytes());
    }
    let js = "(function(){var spoor=window.spoor;/* loader */})();\n".repeat(50);
    let mjs = "export function init(o){return o}\n".repeat(50);
    for (name, bytes) in [
        ("spoor_bg.wasm", wasm),
        ("spoor.js", js.into_bytes()),
        ("spoor.mjs", mjs.into_bytes()),
    ] {
        std::fs::write(dir.path().join(name), &bytes).unwrap();
        std::fs::write(dir.path().join(format!("{name}.gz")), gzip(&bytes)).unwrap();
    }
    std::fs::write(dir.path().join("spoor.d.ts"), "export {};\n".repeat(20)).unwrap();
    dir
}

/// GET `url` (with `Accept-Encoding` when given: reqwest, built without its decompression
/// features, sends none of its own and hands the body over as it came).
async fn get(url: &str, accept_encoding: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(value) = accept_encoding {
        request = request.header(ACCEPT_ENCODING, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap().to_vec();
    (status, headers, body)
}

fn header(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<&str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

fn varies_on_accept_encoding(headers: &HeaderMap) -> bool {
    headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("accept-encoding"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_is_served_precompressed_to_gzip_clients_and_plain_to_others() {
    let dir = sdk_dir();
    let base = serve_sdk(dir.path()).await;
    let url = format!("{base}/sdk/spoor_bg.wasm");
    let plain_file = std::fs::read(dir.path().join("spoor_bg.wasm")).unwrap();
    let gz_file = std::fs::read(dir.path().join("spoor_bg.wasm.gz")).unwrap();

    // Without Accept-Encoding: the file itself.
    let (status, headers, plain) = get(&url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(plain, plain_file);
    assert_eq!(header(&headers, CONTENT_ENCODING), None);
    assert_eq!(header(&headers, CONTENT_TYPE), Some("application/wasm"));
    assert!(varies_on_accept_encoding(&headers), "{headers:?}");
    assert_eq!(header(&headers, ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));

    // With gzip (alone, and as Chromium sends it): the .gz bytes, typed as the wasm, so
    // that `WebAssembly.instantiateStreaming` compiles it.
    for accept in ["gzip", "gzip, deflate, br, zstd"] {
        let (status, headers, gz) = get(&url, Some(accept)).await;
        assert_eq!(status, StatusCode::OK, "{accept}");
        assert_eq!(header(&headers, CONTENT_ENCODING), Some("gzip"), "{accept}");
        assert_eq!(
            header(&headers, CONTENT_TYPE),
            Some("application/wasm"),
            "{accept}"
        );
        assert!(varies_on_accept_encoding(&headers), "{accept}: {headers:?}");
        assert_eq!(header(&headers, ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
        assert_eq!(
            header(&headers, CONTENT_LENGTH),
            Some(gz_file.len().to_string().as_str())
        );
        assert_eq!(gz, gz_file, "{accept}: the precompressed file, as it is");
        assert_eq!(
            gunzip(&gz),
            plain,
            "{accept}: decompresses to the plain body"
        );
    }

    // Encodings the directory has no file for, or gzip refused: the file.
    for accept in ["br", "identity", "gzip;q=0, br"] {
        let (status, headers, body) = get(&url, Some(accept)).await;
        assert_eq!(status, StatusCode::OK, "{accept}");
        assert_eq!(header(&headers, CONTENT_ENCODING), None, "{accept}");
        assert_eq!(body, plain_file, "{accept}");
        assert!(varies_on_accept_encoding(&headers), "{accept}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_are_precompressed_and_files_without_gz_are_served_plain() {
    let dir = sdk_dir();
    let base = serve_sdk(dir.path()).await;
    for name in ["spoor.js", "spoor.mjs"] {
        let file = std::fs::read(dir.path().join(name)).unwrap();
        let (status, headers, body) = get(&format!("{base}/sdk/{name}"), Some("gzip")).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(header(&headers, CONTENT_ENCODING), Some("gzip"), "{name}");
        let ty = header(&headers, CONTENT_TYPE).unwrap();
        assert!(ty.ends_with("/javascript"), "{name}: {ty}");
        assert!(varies_on_accept_encoding(&headers), "{name}");
        assert_eq!(gunzip(&body), file, "{name}");
    }
    // spoor.d.ts has no .gz: plain even for a gzip client.
    let file = std::fs::read(dir.path().join("spoor.d.ts")).unwrap();
    let (status, headers, body) = get(&format!("{base}/sdk/spoor.d.ts"), Some("gzip")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, CONTENT_ENCODING), None);
    assert_eq!(body, file);
    // A missing file is a 404, with or without gzip.
    for accept in [None, Some("gzip")] {
        let (status, _, _) = get(&format!("{base}/sdk/nope.js"), accept).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{accept:?}");
    }
}
