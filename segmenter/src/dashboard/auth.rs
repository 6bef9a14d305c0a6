//! Sign-in for the dashboard: HTTP Basic authentication against a users file of Argon2id
//! password hashes (`spoor-segmenter users add NAME --file FILE` writes it).
//!
//! The dashboard shows people's profiles, member addresses and ticket subjects, so `serve`
//! refuses to listen beyond loopback without a users file (or an explicit `--no-auth` when a
//! proxy in front signs people in; see the CLI).
//!
//! - Every route but `/healthz` needs a user. Browsers ask for the name and password
//!   themselves (no JavaScript, no cookie); they travel in clear text unless TLS is in front.
//! - Checking a password costs an Argon2id hash (tens of milliseconds, on a blocking thread,
//!   at most [`CONCURRENT_CHECKS`] at once). A browser repeats its credentials on every
//!   request, so a checked pair is remembered for [`REMEMBER`] by its SHA-256 digest (never
//!   the password itself), at most [`REMEMBERED`] of them.
//! - Each check that is not remembered spends one of the client address's
//!   [`CHECKS_PER_MINUTE`]; beyond them the answer is 429 with `Retry-After` and no hash is
//!   computed: guessing is slow, and so is burning the server's CPU.
//! - An unknown name is checked against a dummy hash, so answers take as long as for a
//!   known name with a wrong password.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, Params};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// Password checks (hashes computed) allowed per client address and minute.
pub const CHECKS_PER_MINUTE: u32 = 10;
/// How long a checked name and password are remembered.
pub const REMEMBER: Duration = Duration::from_secs(15 * 60);
/// At most this many remembered pairs (the oldest half is forgotten beyond it).
pub const REMEMBERED: usize = 1024;
/// Client addresses with a spent quota kept before the fully replenished ones are dropped.
const REMEMBERED_ADDRESSES: usize = 10_000;
/// Hashes computed at once (each takes a blocking thread and ~19 MiB).
pub const CONCURRENT_CHECKS: usize = 2;

const REALM: &str = "Basic realm=\"Spoor dashboard\", charset=\"UTF-8\"";

/// The users file: `name:$argon2id$…` lines; blank lines and `#` comments are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    /// Name → PHC hash string, in file order.
    entries: Vec<(String, String)>,
}

impl Users {
    /// Parses a users file's text; an error names the line and what is wrong with it.
    pub fn parse(text: &str) -> Result<Users, String> {
        let mut users = Users::default();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |what: String| format!("line {}: {what}", number + 1);
            let Some((name, hash)) = line.split_once(':') else {
                return Err(at("expected NAME:HASH (write it with `spoor-segmenter users add NAME --file FILE`)".into()));
            };
            check_name(name).map_err(at)?;
            check_hash(hash).map_err(at)?;
            if users.get(name).is_some() {
                return Err(at(format!("user {name:?} is listed twice")));
            }
            users.entries.push((name.to_owned(), hash.to_owned()));
        }
        Ok(users)
    }

    /// Reads and parses a users file.
    pub fn load(path: &Path) -> Result<Users, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the users file {}: {e}", path.display()))?;
        Users::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The file's text (a header comment, then one line per user).
    pub fn render(&self) -> String {
        let mut text = String::from(
            "# Spoor dashboard users: NAME:ARGON2ID-HASH. Edit with `spoor-segmenter users add|remove`.\n",
        );
        for (name, hash) in &self.entries {
            text.push_str(name);
            text.push(':');
            text.push_str(hash);
            text.push('\n');
        }
        text
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(name, _)| name.as_str())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, hash)| hash.as_str())
    }

    /// Adds a user, or replaces their password; `hash` from [`hash_password`].
    pub fn set(&mut self, name: &str, hash: String) -> Result<(), String> {
        check_name(name)?;
        check_hash(&hash)?;
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = hash,
            None => self.entries.push((name.to_owned(), hash)),
        }
        Ok(())
    }

    /// Removes a user; false if there was none of that name.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(n, _)| n != name);
        self.entries.len() != before
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._@+-".contains(c);
    if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
        return Err(format!(
            "{name:?} is not a user name: 1 to 64 letters, digits and . _ @ + -"
        ));
    }
    Ok(())
}

fn check_hash(hash: &str) -> Result<(), String> {
    let parsed = argon2::password_hash::phc::PasswordHash::new(hash)
        .map_err(|e| format!("the password hash is not a PHC string ({e})"))?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(format!(
            "the password hash uses {}; only Argon2 hashes are accepted",
            parsed.algorithm.as_str()
        ));
    }
    Ok(())
}

/// An Argon2id hash of `password` (OWASP's parameters: 19 MiB, 2 passes) with a random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    hash_with(password, Params::default())
}

/// [`hash_password`] with other cost parameters (the PHC string records them, and checking
/// uses what it records). Tests use cheap ones.
pub fn hash_with(password: &str, params: Params) -> Result<String, String> {
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    Argon2::from(params)
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

type Limiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// How often, at most, the users file is looked at for changes.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// Where the users came from, to pick up changes without a restart.
struct Source {
    path: PathBuf,
    modified: Option<SystemTime>,
    looked: Instant,
}

/// The dashboard's sign-in state: the users, the remembered checks, the per-address limits.
pub struct Auth {
    users: RwLock<Arc<Users>>,
    source: Option<Mutex<Source>>,
    /// A hash no password matches, checked for unknown names.
    dummy: String,
    remembered: Mutex<HashMap<[u8; 32], Instant>>,
    limiter: Limiter,
    checks: Semaphore,
}

impl Auth {
    /// Signs in the users of the file at `path`, re-read when it changes (looked at every
    /// [`RELOAD_EVERY`] at most): a user added or removed, or a new password, counts from then
    /// on, and every remembered sign-in is forgotten. A file that no longer parses is reported
    /// in the log and the users read before stay.
    pub fn from_file(path: &Path) -> Result<Arc<Auth>, String> {
        let users = Users::load(path)?;
        let auth = Auth::build(users);
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        Ok(Arc::new(Auth {
            source: Some(Mutex::new(Source {
                path: path.to_owned(),
                modified,
                looked: Instant::now(),
            })),
            ..auth
        }))
    }

    /// Signs in `users` (fixed).
    pub fn new(users: Users) -> Arc<Auth> {
        Arc::new(Auth::build(users))
    }

    /// Re-reads the users file if it changed since it was last read.
    fn reload_if_changed(&self) {
        let Some(source) = &self.source else { return };
        let mut source = source.lock().unwrap_or_else(|e| e.into_inner());
        if source.looked.elapsed() < RELOAD_EVERY {
            return;
        }
        source.looked = Instant::now();
        let modified = std::fs::metadata(&source.path)
            .and_then(|m| m.modified())
            .ok();
        if modified == source.modified {
            return;
        }
        source.modified = modified;
        match Users::load(&source.path) {
            Ok(users) => {
                *self.users.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(users);
                self.remembered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
                tracing::info!(path = %source.path.display(), "Dashboard users re-read");
            }
            Err(error) => {
                tracing::error!(%error, "Dashboard users file not re-read; the users read before stay");
            }
        }
    }

    fn build(users: Users) -> Auth {
        // Same cost as the users' hashes, so an unknown name takes as long as a wrong password.
        let params = users
            .entries
            .first()
            .and_then(|(_, hash)| argon2::password_hash::phc::PasswordHash::new(hash).ok())
            .and_then(|hash| Params::try_from(&hash).ok())
            .unwrap_or_default();
        let dummy = hash_with("no password matches this", params).unwrap_or_default();
        let per_minute = NonZeroU32::new(CHECKS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        Auth {
            users: RwLock::new(Arc::new(users)),
            source: None,
            dummy,
            remembered: Mutex::new(HashMap::new()),
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            checks: Semaphore::new(CONCURRENT_CHECKS),
        }
    }

    fn is_remembered(&self, digest: &[u8; 32]) -> bool {
        let remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        remembered
            .get(digest)
            .is_some_and(|at| at.elapsed() < REMEMBER)
    }

    fn remember(&self, digest: [u8; 32]) {
        let mut remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        if remembered.len() >= REMEMBERED {
            remembered.retain(|_, at| at.elapsed() < REMEMBER / 2);
            if remembered.len() >= REMEMBERED {
                remembered.clear();
            }
        }
        remembered.insert(digest, Instant::now());
    }

    /// Checks a name and password, on a blocking thread.
    async fn check(self: &Arc<Auth>, name: String, password: String) -> bool {
        let Ok(_permit) = self.checks.acquire().await else {
            return false;
        };
        let auth = Arc::clone(self);
        let users = Arc::clone(&self.users.read().unwrap_or_else(|e| e.into_inner()));
        tokio::task::spawn_blocking(move || {
            let (hash, known) = match users.get(&name) {
                Some(hash) => (hash, true),
                None => (auth.dummy.as_str(), false),
            };
            let matches = Argon2::default()
                .verify_password(password.as_bytes(), hash)
                .is_ok();
            known && matches
        })
        .await
        .unwrap_or(false)
    }
}

/// The middleware: lets a request through when it carries a user's name and password.
pub async fn require_user(State(auth): State<Arc<Auth>>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    auth.reload_if_changed();
    let Some((name, password)) = basic_credentials(&request) else {
        return refused("Sign in with your dashboard user name and password.");
    };
    let digest: [u8; 32] = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([0])
        .chain_update(password.as_bytes())
        .finalize()
        .into();
    if auth.is_remembered(&digest) {
        return next.run(request).await;
    }
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    // Addresses whose quota is whole again are forgotten once many are kept (memory stays
    // bounded however many addresses try).
    if auth.limiter.len() >= REMEMBERED_ADDRESSES {
        auth.limiter.retain_recent();
    }
    if let Err(not_until) = auth.limiter.check_key(&client) {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        return too_many(wait);
    }
    if auth.check(name.clone(), password).await {
        auth.remember(digest);
        return next.run(request).await;
    }
    tracing::warn!(user = %name, client = %client, "Dashboard sign-in refused");
    refused("That user name and password do not match a dashboard user.")
}

/// The name and password of an `Authorization: Basic` header.
fn basic_credentials(request: &Request) -> Option<(String, String)> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_owned(), password.to_owned()))
}

fn refused(message: &str) -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, message.to_owned()).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
    response
}

fn too_many(wait: Duration) -> Response {
    let seconds = wait.as_secs() + 1;
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        format!("Too many sign-in attempts from this address; try again in {seconds} s."),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(password: &str) -> String {
        hash_with(password, Params::new(8, 1, 1, None).unwrap()).unwrap()
    }

    #[test]
    fn a_users_file_round_trips() {
        let mut users = Users::default();
        users.set("ana@example.com", cheap("pw one")).unwrap();
        users.set("bo", cheap("pw two")).unwrap();
        let text = users.render();
        assert!(text.starts_with("# Spoor dashboard users"), "{text}");
        let parsed = Users::parse(&text).unwrap();
        assert_eq!(parsed, users);
        assert_eq!(
            parsed.names().collect::<Vec<_>>(),
            ["ana@example.com", "bo"]
        );
    }

    #[test]
    fn a_new_password_replaces_the_old_and_remove_removes() {
        let mut users = Users::default();
        let first = cheap("one");
        users.set("ana", first.clone()).unwrap();
        users.set("ana", cheap("two")).unwrap();
        assert_eq!(users.names().count(), 1);
        assert_ne!(users.get("ana"), Some(first.as_str()));
        assert!(users.remove("ana"));
        assert!(!users.remove("ana"));
        assert!(users.is_empty());
    }

    #[test]
    fn bad_lines_are_refused_with_their_line_number() {
        let good = cheap("x");
        for (text, expected) in [
            (
                format!("# users\n\nana {good}\n"),
                "line 3: expected NAME:HASH",
            ),
            (
                format!("ana:{good}\nana:{good}\n"),
                "line 2: user \"ana\" is listed twice",
            ),
            (
                format!("a b:{good}\n"),
                "line 1: \"a b\" is not a user name",
            ),
            (format!(":{good}\n"), "line 1: \"\" is not a user name"),
            (
                "ana:secret\n".to_owned(),
                "line 1: the password hash is not a PHC string",
            ),
            (
                "ana:$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n".to_owned(),
                "line 1: the password hash uses pbkdf2-sha256; only Argon2 hashes are accepted",
            ),
        ] {
            let error = Users::parse(&text).unwrap_err();
            assert!(error.starts_with(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn hashes_are_argon2id_with_a_fresh_salt_and_check_only_their_password() {
        let one = hash_password("correct horse").unwrap();
        let two = hash_password("correct horse").unwrap();
        assert!(one.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{one}");
        assert_ne!(one, two);
        let argon2 = Argon2::default();
        assert!(
            argon2
                .verify_password(b"correct horse", one.as_str())
                .is_ok()
        );
        assert!(
            argon2
                .verify_password(b"correct horsf", one.as_str())
                .is_err()
        );
        assert!(hash_password("").is_err());
    }

    #[test]
    fn basic_credentials_are_read_from_the_header() {
        let with = |value: &str| {
            let request = Request::builder()
                .header(header::AUTHORIZATION, value)
                .body(axum::body::Body::empty())
                .unwrap();
            basic_credentials(&request)
        };
        // "ana:pa:ss" — a password may contain colons.
        assert_eq!(
            with("Basic YW5hOnBhOnNz"),
            Some(("ana".into(), "pa:ss".into()))
        );
        assert_eq!(
            with("basic  YW5hOnBhOnNz "),
            Some(("ana".into(), "pa:ss".into()))
        );
        assert_eq!(with("Bearer YW5hOnBhOnNz"), None);
        assert_eq!(with("Basic !!!"), None);
        assert_eq!(with("Basic YW5h"), None); // "ana": no colon
    }
}
