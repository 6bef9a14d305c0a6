//! Headless Chromium driven over WebDriver: chromedriver is started per browser, Chromium gets a
//! fresh profile, and both go away when the [`Browser`] is dropped — also when a test fails
//! half-way: chromedriver leads its own process group, which Chromium's processes join, and the
//! whole group is killed (killing chromedriver alone left Chromium running, loading the machine
//! and sending to the next tests' sinks).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder};
use serde_json::json;

/// Where Debian's chromium-driver installs the driver; `CHROMEDRIVER` overrides it.
const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The user agent of the Chromium build these tests run, without the "Headless" marker.
const DESKTOP_USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    pub async fn start() -> anyhow::Result<Browser> {
        let chromedriver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| DEFAULT_CHROMEDRIVER.to_owned());
        let port = crate::free_port()?;
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .with_context(|| {
                format!("could not start {chromedriver}: install Debian's chromium-driver (scripts/install --browser)")
            })?;
        let profile = tempfile::tempdir()?;
        let browser = Browser {
            client: connect(port, &profile).await?,
            driver,
            _profile: profile,
        };
        browser.client.set_window_size(1280, 900).await?;
        Ok(browser)
    }

    /// Runs `script` (a function body; `arguments` are available) and returns its result.
    pub async fn eval(&self, script: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }

    /// Waits until `script` returns `true`, or fails after `timeout`.
    pub async fn wait_for(&self, script: &str, timeout: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if self.eval(script).await? == json!(true) {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!("timed out after {timeout:?} waiting for: {script}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn close(self) -> anyhow::Result<()> {
        self.client.clone().close().await?;
        Ok(())
    }
}

impl Drop for Browser {
    /// Kills chromedriver's process group: the driver and every Chromium process.
    fn drop(&mut self) {
        use rustix::process::{Pid, Signal, kill_process_group};
        let _ = kill_process_group(Pid::from_child(&self.driver), Signal::KILL);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn connect(port: u16, profile: &tempfile::TempDir) -> anyhow::Result<Client> {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": std::env::var("CHROME_BIN").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--no-first-run",
                // Headless Chromium says "HeadlessChrome", which the collector rightly files as
                // a bot; these tests play a person on a desktop browser.
                format!("--user-agent={DESKTOP_USER_AGENT}"),
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return Ok(client),
            Err(e) if start.elapsed() < Duration::from_secs(15) => {
                tracing::debug!(error = %e, "chromedriver not ready yet");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                return Err(e).context("could not open a Chromium session through chromedriver");
            }
        }
    }
}

impl Browser {
    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await
            .with_context(|| format!("no element matches {css}"))?
            .click()
            .await?;
        Ok(())
    }

    /// Types `text` into the element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await?
            .send_keys(text)
            .await?;
        Ok(())
    }

    /// Waits until the page's path (and query) is `path`, and the SDK has loaded.
    pub async fn wait_for_page(&self, path: &str) -> anyhow::Result<()> {
        let script = format!(
            "return location.pathname + location.search + location.hash === {path:?} && document.readyState === 'complete' && !!(window.spoor && spoor.ready)"
        );
        self.wait_for(&script, Duration::from_secs(10)).await
    }
}
