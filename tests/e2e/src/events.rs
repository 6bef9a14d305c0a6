//! Reading back what the SDK delivered.

use serde::Deserialize;

use crate::Stack;

/// The columns the end-to-end tests look at, one row per stored event.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct StoredEvent {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub client_ms: i64,
    pub anonymous_id: String,
    pub user_id: String,
    pub session_id: String,
    pub session_index: u32,
    pub path: String,
    pub title: String,
    pub url: String,
    pub referrer: String,
    pub click_tag: String,
    pub click_text: String,
    pub click_selector: String,
    pub click_href: String,
    pub click_outbound: bool,
    pub click_download: bool,
    pub search_query: String,
    pub search_results_count: Option<u32>,
    pub search_source: String,
    pub engaged_ms: u64,
    pub max_scroll_pct: u8,
    pub properties: String,
    pub traits: String,
}

impl StoredEvent {
    /// `type path` plus what identifies the event within its type, for sequence assertions.
    pub fn summary(&self) -> String {
        let detail = match self.kind.as_str() {
            "click" => self.click_selector.clone(),
            "search" => format!(
                "{:?} results={:?} via {}",
                self.search_query, self.search_results_count, self.search_source
            ),
            "track" => self.name.clone(),
            "identify" => self.user_id.clone(),
            _ => String::new(),
        };
        format!("{} {} {}", self.kind, self.path, detail)
            .trim_end()
            .to_owned()
    }
}

impl Stack {
    /// Every event stored so far, each `event_id` once, in the order of the browser's clock.
    /// Events of one millisecond (a click and the page view it causes, say) are ordered by
    /// arrival, then by type: no stored field records their order within the millisecond.
    pub async fn events(&self) -> anyhow::Result<Vec<StoredEvent>> {
        Ok(self
            .clickhouse
            .query(
                "SELECT toString(event_id) AS event_id, type, name,
                        toUnixTimestamp64Milli(client_timestamp) AS client_ms,
                        anonymous_id, user_id, session_id, session_index, path, title, url, referrer,
                        click_tag, click_text, click_selector, click_href, click_outbound,
                        click_download, search_query, search_results_count, search_source,
                        engaged_ms, max_scroll_pct, properties, traits
                 FROM events FINAL
                 ORDER BY client_timestamp, received_at, type",
            )
            .fetch_all()
            .await?)
    }

    /// How many rows `events` holds, duplicates included (no `FINAL`).
    pub async fn raw_event_rows(&self) -> anyhow::Result<u64> {
        Ok(self
            .clickhouse
            .query("SELECT count() FROM events")
            .fetch_one()
            .await?)
    }
}

impl Stack {
    /// Reads the stored events until `done` holds for them or `timeout` passes, and returns the
    /// last read either way, so that the test's assertion shows what did arrive.
    pub async fn events_when(
        &self,
        timeout: std::time::Duration,
        done: impl Fn(&[StoredEvent]) -> bool,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let events = self.events().await?;
            if done(&events) || std::time::Instant::now() > deadline {
                return Ok(events);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}
