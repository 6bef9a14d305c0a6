//! Segments: definitions ([`rule`]), their compilation to ClickHouse SQL ([`compile`]), and
//! their storage and evaluation ([`store`]).

pub mod compile;
pub mod rule;
pub mod store;

pub use compile::{Compiled, Param, compile};
pub use rule::{Definition, Format, Kind, RawRule, Rule};

/// Why a segment definition was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleError {
    #[error("invalid segment: {0}")]
    Invalid(String),
}
