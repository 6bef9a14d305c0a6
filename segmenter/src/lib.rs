//! Spoor's segmenter: identity, profiles, segments, member/ticket views and reports, computed
//! inside ClickHouse from the `events` table; and the marketers' dashboard.
//!
//! Architecture invariant: every derived table is computed by SQL running inside ClickHouse;
//! rows never travel through this process except to show them. Values reach SQL only as
//! server-side parameters; identifiers only from `spoor_schema` definitions or whitelists.

pub mod analysis;
pub(crate) mod build;
pub mod config;
pub mod db;
pub mod error;
pub mod forget;
pub mod lease;
pub mod run;
pub mod segment;

pub use config::{Config, Lifecycle};
pub use db::Db;
pub use error::Error;
pub use run::{Recomputed, RunOptions, RunReport, migrate, run_once};
pub mod cli;
pub mod dashboard;
