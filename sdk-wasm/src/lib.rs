//! Spoor's browser SDK.
//!
//! The core — session rules, selectors, search detection, sensitive-field refusal,
//! consent, the queue, retry timing, the JSON writer, and the [`tracker::Tracker`] state
//! machine over an abstract [`tracker::Platform`] — is plain Rust that builds and is tested
//! natively. `sdk` (wasm32 only) is the thin edge: the real platform over the JS host
//! (`js/core.js`) and the exported functions.
//!
//! Architecture invariant: no `serde_json`, no float parsing, no `format!` in the wasm build;
//! nothing in this crate may throw into the host page.

pub mod click;
pub mod config;
pub mod consent;
pub mod engage;
pub mod ids;
pub mod json;
pub mod queue;
pub mod retry;
pub mod search;
pub mod selector;
pub mod sensitive;
pub mod session;
pub mod time;
pub mod tracker;
pub mod url;

#[cfg(target_arch = "wasm32")]
pub mod sdk;

/// See Cargo.toml: smaller than dlmalloc, measured fast enough by `bench/run`.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

/// The `context.lib` value sent with every event.
pub const LIB: &str = concat!("spoor-wasm/", env!("CARGO_PKG_VERSION"));
