//! Spoor's browser SDK.
//!
//! The core — session rules, selectors, search detection, sensitive-field refusal,
//! consent, the queue, retry timing, the JSON writer, and the [`tracker::Tracker`] state
//! machine over an abstract [`tracker::Platform`] — is plain Rust that builds and is tested
//! natively. `sdk` (wasm32 only) is the thin edge: the real platform over the JS host
//! (`js/core.js`) and the exported object.
//!
//! Architecture invariants: the shipped wasm is `no_std` (core + alloc) with a panic
//! handler that traps, so no formatting or unwinding machinery is in the binary; no
//! `serde`, no float parsing, no `format!` in the wasm build; nothing in this crate may
//! throw into the host page (the JS side wraps every call into wasm).
//!
//! Size rules the code follows (each one measured, see README "Size"): no indexing, slicing
//! or `unwrap`/`expect` that can panic (a reachable formatted panic keeps `core::fmt` in
//! the binary); byte-level splitting (`text`) instead of core's `str` searchers; borrowed
//! `&str` views of the JS side's descriptions instead of owned copies; JSON written straight
//! into the queue's text, no intermediate structs.
#![cfg_attr(all(target_arch = "wasm32", not(feature = "std")), no_std)]

extern crate alloc;

pub mod click;
pub mod config;
pub mod consent;
pub mod engage;
pub mod gzip;
pub mod ids;
pub mod json;
pub mod pattern;
pub mod queue;
pub mod retry;
pub mod search;
pub mod selector;
pub mod sensitive;
pub mod session;
pub mod text;
pub mod time;
pub mod tracker;
pub mod url;

#[cfg(target_arch = "wasm32")]
pub mod sdk;

/// See Cargo.toml: smaller than dlmalloc, measured fast enough by `bench`.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOC: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

/// Without `std` nothing may unwind or print: a panic (a bug) traps, which the JS side
/// catches like any other failed call, so the host page never sees it. (The shipped build,
/// `sdk-wasm/build`, compiles `core` with the panic strategy immediate-abort, which traps
/// before this handler; other `no_std` wasm builds, such as clippy's, link it.)
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// The `context.lib` value sent with every event.
pub const LIB: &str = concat!("spoor-wasm/", env!("CARGO_PKG_VERSION"));
