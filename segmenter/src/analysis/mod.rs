//! Questions asked on demand rather than built by a run: funnels (live, from `events`) and
//! retention cohorts (from `activity_daily`, as fresh as the latest run). The dashboard's
//! Funnels and Retention pages call these; data teams can run the same SQL.
//!
//! As with segments, every value a caller gives — step names, paths, the project, times — is
//! a server-side parameter; the SQL text depends only on the query's shape (how many steps,
//! of which kinds; weeks or months).

pub mod funnel;
pub mod retention;

pub use funnel::{Funnel, Step, StepKind};
pub use retention::{Cohort, Retention};

/// A question that cannot be asked as given, with what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);
