//! `spoor-example-site --collector http://127.0.0.1:8480`: serves the demo shop.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use spoor_example_site::{SiteConfig, app};

/// Serves Spoor's demo shop with its SDK tag pointed at a collector.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "SPOOR_SITE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The site's folder.
    #[arg(long, env = "SPOOR_SITE_ROOT", default_value = "examples/site")]
    root: PathBuf,
    /// The collector's base URL.
    #[arg(
        long,
        env = "SPOOR_COLLECTOR_URL",
        default_value = "http://127.0.0.1:8480"
    )]
    collector: String,
    /// Base URL of the SDK files; defaults to the collector's `/sdk`.
    #[arg(long, env = "SPOOR_SDK_URL")]
    sdk: Option<String>,
    /// The write key the pages use.
    #[arg(long, env = "SPOOR_KEY", default_value = "pk_dev")]
    key: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let args = Args::parse();
    let collector = args.collector.trim_end_matches('/').to_owned();
    let config = SiteConfig {
        root: args.root,
        sdk_base: args.sdk.unwrap_or_else(|| format!("{collector}/sdk")),
        collector,
        key: args.key,
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(url = %format!("http://{}", listener.local_addr()?), "Serving the demo shop");
    axum::serve(listener, app(config)).await?;
    Ok(())
}
