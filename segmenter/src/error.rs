//! The segmenter's errors, and the process exit code each maps to.

use crate::segment::RuleError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(
        "ClickHouse is unreachable ({source}); start one (e.g. `local-clickhouse/ctl start`) or pass --clickhouse-url"
    )]
    Unreachable {
        #[source]
        source: Box<clickhouse::error::Error>,
    },
    #[error("{step} failed: {source}")]
    Query {
        step: &'static str,
        #[source]
        source: Box<clickhouse::error::Error>,
    },
    #[error(transparent)]
    Migrate(#[from] spoor_schema::MigrateError),
    #[error(
        "the segmenter needs ClickHouse {}.{} or newer (its runs delete rows through lightweight updates); this server is {version}",
        crate::run::MIN_SERVER.0, crate::run::MIN_SERVER.1
    )]
    ServerTooOld { version: String },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Segment(#[from] RuleError),
    #[error("segment {0:?} does not exist")]
    UnknownSegment(String),
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
    /// Another process holds the writer lease ([`crate::lease`]).
    #[error("{0}")]
    Busy(String),
    /// A question the command line asked that cannot be asked ([`crate::analysis::Invalid`]).
    #[error("{0}")]
    Usage(String),
}

impl From<crate::analysis::Invalid> for Error {
    fn from(error: crate::analysis::Invalid) -> Error {
        Error::Usage(error.0)
    }
}

impl Error {
    pub(crate) fn query(step: &'static str, source: clickhouse::error::Error) -> Error {
        if is_connection_error(&source) {
            Error::Unreachable {
                source: Box::new(source),
            }
        } else {
            Error::Query {
                step,
                source: Box::new(source),
            }
        }
    }

    /// The exit code documented in the README: 3 ClickHouse unreachable, 4 a ClickHouse query
    /// or migration failed, 5 invalid configuration or segment definition, 6 unknown segment,
    /// 7 the output could not be written, 8 another segmenter is writing to the database.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Unreachable { .. } => 3,
            Error::Query { .. } | Error::Migrate(_) | Error::ServerTooOld { .. } => 4,
            Error::Config(_) | Error::Segment(_) => 5,
            Error::UnknownSegment(_) => 6,
            Error::Output(_) => 7,
            Error::Busy(_) => 8,
        }
    }
}

fn is_connection_error(error: &clickhouse::error::Error) -> bool {
    matches!(error, clickhouse::error::Error::Network(_))
}
