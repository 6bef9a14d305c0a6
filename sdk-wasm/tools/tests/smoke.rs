//! The SDK as shipped (the built `spoor.js` + wasm, served by the real collector at `/sdk/`)
//! in headless Chromium, on pages of another origin, against the real collector and
//! ClickHouse (`spoor_e2e::Stack`): what a visit stores, the wire (gzip beacons on unload),
//! one `page_leave` per page view across hide/show, and delivery across a collector outage.
//! Needs the built SDK (`SPOOR_SDK_DIR`) and `SPOOR_CLICKHOUSE_URL`; `./spoor test` sets both.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use spoor_e2e::{Browser, Stack, eventually};

/// A page of the test site; `{collector}`, `{flush}`, `{title}` and `{extra}` (more markup)
/// are filled in.
const PAGE: &str = r#"<!doctype html><html><head><title>{title}</title></head><body>
<script>
  // Record what goes on the wire (read back by the test from localStorage).
  (function () {
    function rec(kind, url) { localStorage.wire = (localStorage.wire || '') + kind + ' ' + url + '\n'; }
    var b = navigator.sendBeacon.bind(navigator), f = window.fetch;
    navigator.sendBeacon = function (u, d) { rec('beacon', u); return b(u, d); };
    window.fetch = function (u, o) { rec('fetch', u); return f(u, o); };
  })();
  window.spoor = window.spoor || function () { (spoor.q = spoor.q || []).push(arguments) };
  spoor('track', 'queued_before_load', { n: 1 });
</script>
<script async src="{collector}/sdk/spoor.js" data-key="pk_dev" data-host="{collector}"
  data-flush-ms="{flush}" data-attrs="product-id"></script>
<p>Found <b data-spoor-results="7">7</b> results</p>
<a id="next" href="/two.html" data-product-id="sku-9">Next page</a>
<button id="spa" onclick="history.pushState({}, '', '/app/cart')">Cart</button>
<button id="spa-track" onclick="history.pushState({}, '', '/app/done'); spoor('track', 'checkout_done')">Done</button>
<input id="pw" type="password" value="hunter2">
<div style="height:3000px"></div>
{extra}
</body></html>"#;

/// The SDK's tag again, as a site with the tag in its template and in a tag manager has it.
const TAG_AGAIN: &str = r#"<script async src="{collector}/sdk/spoor.js" data-key="pk_dev" data-host="{collector}"
  data-flush-ms="300"></script>"#;

/// A web component whose button lives in an open shadow root, once plainly and once inside
/// `data-spoor-no-capture`.
const SHADOW: &str = r#"<shop-card id="card"></shop-card>
<div data-spoor-no-capture><shop-card id="private-card"></shop-card></div>
<script>
  customElements.define('shop-card', class extends HTMLElement {
    constructor() {
      super();
      this.attachShadow({ mode: 'open' }).innerHTML =
        '<div class="body"><button class="buy">Add to cart</button></div>';
    }
  });
</script>"#;

/// Prerenders `/later.html` as soon as the page is loaded (speculation rules), with a link to it.
const PRERENDER: &str = r#"<script type="speculationrules">
{"prerender": [{"source": "list", "urls": ["/later.html"], "eagerness": "immediate"}]}
</script>
<a id="later" href="/later.html">Later</a>"#;

/// Serves the two pages of the test site; returns its base URL.
async fn site(collector: &str) -> anyhow::Result<String> {
    let page = |title: &str, flush: &str, extra: &str| {
        axum::response::Html(
            PAGE.replace("{extra}", extra)
                .replace("{collector}", collector)
                .replace("{flush}", flush)
                .replace("{title}", title),
        )
    };
    let get = |page: axum::response::Html<String>| axum::routing::get(move || async move { page });
    let app = axum::Router::new()
        .route("/one.html", get(page("One", "300", "")))
        .route("/two.html", get(page("Two", "60000", "")))
        .route("/twice.html", get(page("Twice", "300", TAG_AGAIN)))
        .route("/pre.html", get(page("Pre", "300", PRERENDER)))
        .route("/later.html", get(page("Later", "300", "")))
        .route("/shadow.html", get(page("Shadow", "300", SHADOW)))
        .route("/csp.html", {
            // A strict Content-Security-Policy with what sdk-wasm/README.md says the SDK needs.
            let policy = format!(
                "default-src 'none'; script-src {collector}/sdk/ 'wasm-unsafe-eval'; connect-src {collector}"
            );
            let body = format!(
                r#"<!doctype html><html><head><title>CSP</title></head><body>
<script async src="{collector}/sdk/spoor.js" data-key="pk_dev" data-host="{collector}" data-flush-ms="300"></script>
<a id="next" href="/one.html">Next</a></body></html>"#
            );
            axum::routing::get(move || async move {
                (
                    [(axum::http::header::CONTENT_SECURITY_POLICY, policy)],
                    axum::response::Html(body),
                )
            })
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

#[derive(Debug, Clone, Deserialize, clickhouse::Row)]
struct Row {
    event_id: String,
    #[serde(rename = "type")]
    kind: String,
    name: String,
    session_id: String,
    anonymous_id: String,
    url: String,
    path: String,
    referrer: String,
    click_selector: String,
    search_query: String,
    client_ms: i64,
    results: String,
    engaged: String,
    props: String,
}

const SELECT: &str = "SELECT toString(event_id) AS event_id, type, name, session_id, anonymous_id, \
    url, path, referrer, click_selector, search_query, \
    toUnixTimestamp64Milli(client_timestamp) AS client_ms, ifNull(toString(search_results_count), '') AS results, \
    toString(engaged_ms) AS engaged, toString(properties) AS props FROM events FINAL";

async fn rows(stack: &Stack) -> anyhow::Result<Vec<Row>> {
    Ok(stack.clickhouse.query(SELECT).fetch_all::<Row>().await?)
}

async fn wait_rows(
    stack: &Stack,
    what: &str,
    done: impl Fn(&[Row]) -> bool,
) -> anyhow::Result<Vec<Row>> {
    eventually(what, Duration::from_secs(30), || async {
        let r = rows(stack).await?;
        Ok(done(&r).then_some(r))
    })
    .await
}

/// A stack named `name`, the test site, and a browser on the site's page `path`.
async fn open(name: &str, path: &str) -> anyhow::Result<(Stack, String, Browser)> {
    let stack = Stack::start(name).await?;
    let site = site(&stack.collector).await?;
    let b = Browser::start().await?;
    b.client.goto(&format!("{site}{path}")).await?;
    Ok((stack, site, b))
}

/// Waits until the page's SDK has started.
async fn sdk_ready(b: &Browser) -> anyhow::Result<()> {
    b.wait_for(
        "return !!(window.spoor && spoor.ready)",
        Duration::from_secs(15),
    )
    .await
}

/// Makes the page look hidden (or visible again) and tells it, as a tab switch does.
async fn visibility(b: &Browser, state: &str) -> anyhow::Result<()> {
    b.eval(&format!(
        "Object.defineProperty(document, 'visibilityState', {{ value: '{state}', configurable: true }});
         document.dispatchEvent(new Event('visibilitychange'));"
    ))
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_scripted_visit_is_stored_as_captured() -> anyhow::Result<()> {
    let stack = Stack::start("sdk_smoke").await?;
    let site = site(&stack.collector).await?;
    let b = Browser::start().await?;
    b.client
        .goto(&format!(
            "{site}/one.html?q=red+shoes&utm_source=news&token=secret"
        ))
        .await?;
    wait_rows(&stack, "the first page view", |r| {
        r.iter().any(|e| e.kind == "page_view")
    })
    .await?;
    b.eval("document.getElementById('pw').click(); document.getElementById('spa').click();")
        .await?;
    b.eval("document.getElementById('next').click();").await?;
    b.wait_for(
        "return document.title == 'Two' && !!(window.spoor && spoor.ready)",
        Duration::from_secs(15),
    )
    .await?;
    // Page two waits a minute before sending: a big event is still queued (and compressed
    // ahead) when the page is hidden, so it leaves in a gzip beacon.
    b.eval("spoor('track', 'big', { pad: new Array(3001).join('x') });")
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    visibility(&b, "hidden").await?;
    visibility(&b, "visible").await?;
    b.eval("document.dispatchEvent(new Event('pointerdown'))")
        .await?;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    visibility(&b, "hidden").await?;
    let wire = b.eval("return localStorage.wire").await?;
    b.client.goto("about:blank").await?;

    // Everything the visit sent, whichever request and insert each event came in.
    let evs = wait_rows(&stack, "the whole visit", |r| {
        let count = |f: &dyn Fn(&&Row) -> bool| r.iter().filter(f).count();
        count(&|e| e.kind == "page_leave") >= 3
            && count(&|e| e.kind == "page_view") >= 3
            && count(&|e| e.kind == "search") >= 1
            && count(&|e| e.name == "queued_before_load") >= 2
            && count(&|e| e.name == "big") >= 1
            && count(&|e| e.click_selector == "a#next") >= 1
    })
    .await?;
    let of = |t: &str| evs.iter().filter(|e| e.kind == t).collect::<Vec<_>>();
    let views = of("page_view");
    assert_eq!(views.len(), 3, "one.html, /app/cart, two.html: {evs:#?}");
    let leaves = of("page_leave");
    assert_eq!(leaves.len(), 3, "one page_leave per page view: {leaves:#?}");
    assert_eq!(of("session_start").len(), 1);
    let sessions: std::collections::HashSet<_> = evs.iter().map(|e| &e.session_id).collect();
    let anons: std::collections::HashSet<_> = evs.iter().map(|e| &e.anonymous_id).collect();
    assert_eq!((sessions.len(), anons.len()), (1, 1), "{evs:#?}");
    let ids: std::collections::HashSet<_> = evs.iter().map(|e| &e.event_id).collect();
    assert_eq!(ids.len(), evs.len());

    let one = views
        .iter()
        .find(|e| e.path == "/one.html")
        .expect("page one");
    assert!(
        one.url.ends_with("/one.html?q=red+shoes&utm_source=news"),
        "scrubbed: {}",
        one.url
    );
    let spa = views
        .iter()
        .find(|e| e.path == "/app/cart")
        .expect("SPA view");
    assert!(spa.referrer.ends_with("utm_source=news"), "{spa:?}");
    let search = of("search");
    assert_eq!(search.len(), 1);
    assert_eq!(
        (search[0].search_query.as_str(), search[0].results.as_str()),
        ("red shoes", "7")
    );
    let queued = evs
        .iter()
        .filter(|e| e.name == "queued_before_load")
        .count();
    assert_eq!(queued, 2, "replayed on both pages");
    let click = of("click")
        .into_iter()
        .find(|e| e.click_selector == "a#next")
        .expect("link click");
    let props: Value = serde_json::from_str(&click.props)?;
    assert_eq!(props["product-id"], "sku-9");
    assert!(
        !evs.iter().any(|e| format!("{e:?}").contains("hunter2")),
        "password captured"
    );
    let two_leave = leaves
        .iter()
        .find(|e| e.path == "/two.html")
        .expect("leave of page two");
    // Page two's leave went out twice (first hide: with the gzip beacon; second hide: the
    // cumulative version, same event_id) and is stored once. Which version ClickHouse keeps
    // is the last one it merged — see README "What is captured" (a version column would
    // make it the larger one).
    let engaged: u64 = two_leave.engaged.parse()?;
    assert!(
        engaged >= 400,
        "engaged time of page two: {engaged}; wire: {wire}"
    );

    let wire = wire.as_str().unwrap_or_default();
    assert!(
        wire.lines()
            .any(|l| l.starts_with("beacon ") && l.ends_with("&compression=gzip")),
        "a gzip beacon on unload: {wire}"
    );
    let batches: Vec<&str> = wire.lines().filter(|l| l.contains("/v1/batch")).collect();
    assert!(
        batches.iter().all(|l| l.contains("/v1/batch?key=pk_dev")),
        "{wire}"
    );
    let beacons = batches.iter().filter(|l| l.starts_with("beacon ")).count();
    assert!(
        beacons >= 3,
        "page one's leave, page two's two leaves: {wire}"
    );
    b.close().await
}

#[tokio::test]
async fn nothing_is_lost_while_the_collector_is_down() -> anyhow::Result<()> {
    let (mut stack, _, b) = open("sdk_outage", "/one.html").await?;
    wait_rows(&stack, "the first page view", |r| {
        r.iter().any(|e| e.kind == "page_view")
    })
    .await?;
    stack.stop_collector().await?;
    b.eval("spoor('track', 'during_outage'); spoor('flush');")
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.restart_collector().await?;
    let evs = wait_rows(&stack, "the event sent during the outage", |r| {
        r.iter().any(|e| e.name == "during_outage")
    })
    .await?;
    assert_eq!(evs.iter().filter(|e| e.name == "during_outage").count(), 1);
    b.close().await
}

#[tokio::test]
async fn the_tag_included_twice_is_one_sdk() -> anyhow::Result<()> {
    let (stack, _, b) = open("sdk_twice", "/twice.html").await?;
    sdk_ready(&b).await?;
    b.eval("document.getElementById('spa').click();").await?;
    wait_rows(&stack, "the SPA view", |r| {
        r.iter().any(|e| e.path == "/app/cart")
    })
    .await?;
    // A second SDK would send its copies within its 300 ms flush: give it time to.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let evs = rows(&stack).await?;
    b.close().await?;
    let count = |f: &dyn Fn(&&Row) -> bool| evs.iter().filter(f).count();
    assert_eq!(count(&|e| e.kind == "page_view"), 2, "{evs:#?}");
    assert_eq!(count(&|e| e.kind == "click"), 1, "{evs:#?}");
    assert_eq!(count(&|e| e.name == "queued_before_load"), 1, "{evs:#?}");
    Ok(())
}

#[tokio::test]
async fn a_prerendered_page_is_counted_when_the_visitor_goes_to_it() -> anyhow::Result<()> {
    let (stack, site, b) = open("sdk_prerender", "/pre.html").await?;
    wait_rows(&stack, "the first page view", |r| {
        r.iter().any(|e| e.kind == "page_view")
    })
    .await?;
    // The browser prerenders /later.html meanwhile; its SDK would send within 300 ms.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let early = rows(&stack).await?;
    assert!(
        !early.iter().any(|e| e.path == "/later.html"),
        "a prerendered page was counted before anyone saw it: {early:#?}"
    );
    let clicked_at = b
        .eval("return Date.now()")
        .await?
        .as_i64()
        .unwrap_or(i64::MAX);
    b.eval("document.getElementById('later').click();").await?;
    b.wait_for(
        "return document.title == 'Later' && !!(window.spoor && spoor.ready)",
        Duration::from_secs(15),
    )
    .await?;
    let activated = b
        .eval("return performance.getEntriesByType('navigation')[0].activationStart > 0")
        .await?;
    let evs = wait_rows(&stack, "the view of the prerendered page", |r| {
        r.iter()
            .any(|e| e.kind == "page_view" && e.path == "/later.html")
    })
    .await?;
    b.close().await?;
    assert_eq!(
        activated, true,
        "the page was not prerendered: the test shows nothing"
    );
    let views: Vec<_> = evs
        .iter()
        .filter(|e| e.kind == "page_view" && e.path == "/later.html")
        .collect();
    assert_eq!(views.len(), 1, "{evs:#?}");
    assert!(
        views[0].client_ms >= clicked_at,
        "viewed before the click: {views:#?}"
    );
    assert_eq!(views[0].referrer, format!("{site}/pre.html"));
    let sessions: std::collections::HashSet<_> = evs.iter().map(|e| &e.session_id).collect();
    assert_eq!(sessions.len(), 1, "{evs:#?}");
    Ok(())
}

#[tokio::test]
async fn clicks_inside_a_web_components_shadow_root_are_captured() -> anyhow::Result<()> {
    let (stack, _, b) = open("sdk_shadow", "/shadow.html").await?;
    sdk_ready(&b).await?;
    b.eval(
        "for (const id of ['card', 'private-card'])
           document.getElementById(id).shadowRoot.querySelector('button').click();
         document.getElementById('spa').click();",
    )
    .await?;
    let evs = wait_rows(&stack, "the SPA view", |r| {
        r.iter().any(|e| e.path == "/app/cart")
    })
    .await?;
    b.close().await?;
    let mut clicks: Vec<&str> = evs
        .iter()
        .filter(|e| e.kind == "click")
        .map(|e| e.click_selector.as_str())
        .collect();
    clicks.sort();
    // The page's own button and the component's (its selector is within the shadow root),
    // not the component's inside data-spoor-no-capture.
    assert_eq!(clicks, ["button#spa", "div.body > button.buy"], "{evs:#?}");
    Ok(())
}

/// An app that pushes a route and tracks an event in the same task (a router's handler):
/// the SDK reads routes after the task (for their titles), but the event must still follow
/// the new route's view and carry its path.
#[tokio::test]
async fn an_event_tracked_with_a_route_change_follows_its_view() -> anyhow::Result<()> {
    let (stack, _, b) = open("sdk_route_then_track", "/one.html").await?;
    sdk_ready(&b).await?;
    b.eval("document.getElementById('spa-track').click();")
        .await?;
    let evs = wait_rows(&stack, "the tracked event and the route's view", |r| {
        r.iter().any(|e| e.name == "checkout_done")
            && r.iter()
                .any(|e| e.kind == "page_view" && e.path == "/app/done")
    })
    .await?;
    b.close().await?;
    let done = evs.iter().find(|e| e.name == "checkout_done").unwrap();
    let view = evs
        .iter()
        .find(|e| e.kind == "page_view" && e.path == "/app/done")
        .unwrap();
    assert_eq!(done.path, "/app/done", "{evs:#?}");
    assert!(view.client_ms <= done.client_ms, "{evs:#?}");
    Ok(())
}

#[tokio::test]
async fn works_under_the_documented_content_security_policy() -> anyhow::Result<()> {
    let (stack, _, b) = open("sdk_csp", "/csp.html").await?;
    let evs = wait_rows(&stack, "the page view under the policy", |r| {
        r.iter()
            .any(|e| e.kind == "page_view" && e.path == "/csp.html")
    })
    .await?;
    b.close().await?;
    assert_eq!(evs.iter().filter(|e| e.kind == "session_start").count(), 1);
    Ok(())
}
