//! The command line. `main` only calls [`main`] here.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use spoor_schema::Layout;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::{Config, parse_interval};
use crate::dashboard::auth::{Auth, Users};
use crate::lease::{self, Lease, LeaseError};
use crate::run::{RunOptions, migrate, run_once};
use crate::segment::store;
use crate::{Db, Error};

/// Spoor's segmenter: builds profiles, segments, member/ticket views and reports inside
/// ClickHouse from the `events` table, and serves the marketers' dashboard.
///
/// Exit codes: 0 success, 2 bad command line (or a funnel/retention question that cannot be asked), 3 ClickHouse unreachable, 4 a ClickHouse query or
/// migration failed, 5 invalid configuration or segment definition, 6 unknown segment, 7 the
/// output could not be written, 8 another segmenter kept writing to the database.
#[derive(Debug, Parser)]
#[command(name = "spoor-segmenter", version)]
pub struct Cli {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Connection {
    /// ClickHouse HTTP URL.
    #[arg(
        long,
        global = true,
        env = "SPOOR_CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:8123"
    )]
    pub clickhouse_url: String,
    /// Database holding `events` and the derived tables.
    #[arg(
        long = "clickhouse-database",
        alias = "database",
        global = true,
        env = "SPOOR_CLICKHOUSE_DATABASE",
        default_value = "spoor"
    )]
    pub database: String,
    /// ClickHouse cluster name: DDL runs ON CLUSTER, tables are Replicated + Distributed.
    #[arg(
        long = "clickhouse-cluster",
        alias = "cluster",
        global = true,
        env = "SPOOR_CLICKHOUSE_CLUSTER"
    )]
    pub cluster: Option<String>,
    /// How long a command that writes (run, forget, segments add/delete) waits while another
    /// segmenter process writes to the database; then it gives up with exit code 8. `run
    /// --every` never waits: it skips the tick.
    #[arg(
        long,
        global = true,
        env = "SPOOR_LEASE_WAIT",
        default_value = "10m",
        value_parser = parse_overlap_arg
    )]
    pub lease_wait: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update the tables and views (runs also do this).
    Migrate,
    /// Build the derived tables: once, or every interval with --every.
    Run(RunArgs),
    /// Manage segment definitions.
    #[command(subcommand)]
    Segments(SegmentsCommand),
    /// Delete everything stored about people (a data subject's erasure request): their events
    /// and every per-person row derived from them. Reports keep their counts until `run --full`.
    Forget {
        /// Project the people belong to.
        #[arg(long)]
        project: String,
        /// A user id: with every anonymous id whose events are theirs.
        #[arg(long = "user", value_name = "ID")]
        users: Vec<String>,
        /// An anonymous id that was never identified (one that was: forget its user).
        #[arg(long = "anonymous-id", value_name = "ID")]
        anonymous_ids: Vec<String>,
    },
    /// Serve the marketers' dashboard.
    ///
    /// It shows personal data, so beyond loopback it needs --users (or --no-auth).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "SPOOR_SEGMENTER_LISTEN", default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
        /// Users file: everyone must sign in as one of its users (`users add` writes it).
        #[arg(long, env = "SPOOR_DASHBOARD_USERS", value_name = "FILE")]
        users: Option<PathBuf>,
        /// Serve beyond loopback without a sign-in: only when a proxy in front signs people in.
        #[arg(long, conflicts_with = "users")]
        no_auth: bool,
    },
    /// Manage the dashboard's users file (no ClickHouse needed).
    #[command(subcommand)]
    Users(UsersCommand),
    /// How many people went through the steps of a funnel, in order, within a window (live
    /// from the events; the dashboard's Funnels page).
    Funnel(FunnelArgs),
    /// Retention cohorts: people by the week or month first seen, and how many came back in
    /// each period after (the dashboard's Retention page).
    Retention(RetentionArgs),
}

#[derive(Debug, Args)]
pub struct FunnelArgs {
    #[arg(long)]
    pub project: String,
    /// A step, in order (2 to 8): `page:/path-prefix`, or `event:NAME` for an event type
    /// (page_view, click, search, …) or a track event's name (order_completed).
    #[arg(long = "step", value_name = "KIND:VALUE", required = true)]
    pub steps: Vec<String>,
    /// Each later step within this time of step 1: `30m`, `12h`, `7d` (at most 90 days).
    #[arg(long, default_value = "7d")]
    pub window: String,
    /// Step 1 within this many days, ending with --at.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// The last day of step 1 (YYYY-MM-DD); today by default.
    #[arg(long, value_name = "DAY", default_value = "")]
    pub at: String,
    /// Split by: device, browser, os, channel, utm_source, referrer.
    #[arg(long, value_name = "WHAT", default_value = "")]
    pub by: String,
    /// CSV (group,step,label,people) instead of a table.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[arg(long)]
    pub project: String,
    /// `week` or `month`.
    #[arg(long, default_value = "week")]
    pub period: String,
    /// How many cohorts, ending with the period of --at.
    #[arg(long, default_value_t = 8)]
    pub cohorts: u32,
    /// The last day counted (YYYY-MM-DD); today by default.
    #[arg(long, value_name = "DAY", default_value = "")]
    pub at: String,
    /// Active means doing this event (a type such as search, or a track event's name such as
    /// order_completed); any event by default.
    #[arg(long, value_name = "NAME")]
    pub event: Option<String>,
    /// CSV (cohort,people,period,active) instead of a table.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user, or set a user's new password: read from the terminal (asked twice) or
    /// from the first line of standard input. The file is created, readable by its owner only.
    Add {
        name: String,
        /// The users file.
        #[arg(long, env = "SPOOR_DASHBOARD_USERS", value_name = "FILE")]
        file: PathBuf,
    },
    /// Remove a user.
    Remove {
        name: String,
        #[arg(long, env = "SPOOR_DASHBOARD_USERS", value_name = "FILE")]
        file: PathBuf,
    },
    /// List the users' names.
    List {
        #[arg(long, env = "SPOOR_DASHBOARD_USERS", value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Rebuild everything from `events` instead of only what changed since the last run.
    #[arg(long)]
    pub full: bool,
    /// Run again every interval (e.g. 30s, 5m, 1h) until interrupted.
    #[arg(long, value_parser = parse_interval_arg)]
    pub every: Option<Duration>,
    /// The time dynamic profiles and segments describe (RFC 3339); default now.
    #[arg(long, value_parser = parse_time_arg)]
    pub as_of: Option<OffsetDateTime>,
    /// Re-read events received this long before the previous watermark (late inserts).
    #[arg(long, default_value = "2m", value_parser = parse_overlap_arg)]
    pub overlap: Duration,
    /// TOML configuration file (lifecycle thresholds); see README.
    #[arg(long, env = "SPOOR_SEGMENTER_CONFIG")]
    pub config: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum SegmentsCommand {
    /// Add (or replace) a segment from a TOML or JSON definition file.
    Add {
        /// Definition file (.toml or .json).
        file: PathBuf,
        /// For a static segment: a file of person ids, one per line, as its members.
        #[arg(long)]
        ids: Option<PathBuf>,
    },
    /// List segments with their member counts.
    List,
    /// Show a segment's definition, compiled SQL and member count.
    Show { id: String },
    /// Delete a segment (its history is kept).
    Delete { id: String },
    /// Write a segment's members as CSV to standard output: person, project, user and member
    /// ids, hashed e-mail and phone, when they entered.
    Export { id: String },
}

fn parse_interval_arg(text: &str) -> Result<Duration, String> {
    parse_interval(text).map(Duration::from_secs)
}

fn parse_overlap_arg(text: &str) -> Result<Duration, String> {
    if text.trim_end_matches(['s', 'm', 'h', 'd']) == "0" {
        return Ok(Duration::ZERO);
    }
    parse_interval_arg(text)
}

fn parse_time_arg(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time such as 2026-11-21T10:00:00Z: {e}"))
}

/// Parses the command line, runs it and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SPOOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Runs one parsed command.
pub async fn execute(cli: Cli) -> Result<(), Error> {
    // Commands and checks that need no ClickHouse come first: a mistake there is reported as
    // itself even when ClickHouse is down.
    let auth = match &cli.command {
        Command::Users(command) => return users(command),
        Command::Serve {
            listen,
            users,
            no_auth,
        } => dashboard_auth(*listen, users.as_deref(), *no_auth)?,
        _ => None,
    };
    let layout = Layout {
        database: cli.connection.database.clone(),
        cluster: cli.connection.cluster.clone(),
    };
    let db = Db::new(&cli.connection.clickhouse_url, layout)?;
    db.ping().await?;
    match cli.command {
        Command::Migrate => {
            migrate(&db).await?;
            println!("Schema of database {} is current", db.database());
        }
        Command::Run(args) => run(&db, args, cli.connection.lease_wait).await?,
        Command::Segments(command) => {
            migrate(&db).await?;
            match command {
                SegmentsCommand::Add { .. } | SegmentsCommand::Delete { .. } => {
                    with_lease(&db, cli.connection.lease_wait, segments(&db, command)).await?;
                }
                _ => segments(&db, command).await?,
            }
        }
        Command::Forget {
            project,
            users,
            anonymous_ids,
        } => {
            migrate(&db).await?;
            let request = crate::forget::Request {
                project,
                users,
                anonymous_ids,
            };
            let forgotten = with_lease(
                &db,
                cli.connection.lease_wait,
                crate::forget::forget(&db, &request),
            )
            .await?;
            if forgotten.rows.is_empty() {
                println!("Nothing stored about them.");
            }
            for (table, rows) in &forgotten.rows {
                println!("{table:<20} {rows:>8} rows deleted");
            }
            if !forgotten.anonymous_ids.is_empty() {
                println!(
                    "Anonymous ids forgotten: {} (their browsers keep the id until the SDK's reset())",
                    forgotten.anonymous_ids.join(", ")
                );
            }
        }
        Command::Users(_) => {}
        Command::Funnel(args) => {
            migrate(&db).await?;
            let funnel = funnel_of(&args)?;
            let conversion = funnel.conversion(&db).await?;
            print_out(&crate::analysis::report::funnel(
                &funnel,
                &conversion,
                args.csv,
            ))?;
        }
        Command::Retention(args) => {
            migrate(&db).await?;
            let retention = crate::analysis::Retention::new(
                &args.project,
                crate::analysis::retention::Period::parse(&args.period)?,
                args.cohorts,
                crate::analysis::parse_day(&args.at)?,
            )?
            .doing(args.event.as_deref())?;
            let cohorts = retention.cohorts(&db).await?;
            print_out(&crate::analysis::report::retention(
                &retention, &cohorts, args.csv,
            ))?;
        }
        Command::Serve { listen, .. } => {
            migrate(&db).await?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| Error::Config(format!("cannot listen on {listen}: {e}")))?;
            let door = if auth.is_some() {
                "sign-in required"
            } else {
                "no sign-in"
            };
            println!("Dashboard at http://{listen}/ ({door})");
            crate::dashboard::serve(db, auth, listener, shutdown_signal())
                .await
                .map_err(|e| Error::Config(format!("dashboard server failed: {e}")))?;
        }
    }
    Ok(())
}

/// The funnel the command line asks for.
fn funnel_of(args: &FunnelArgs) -> Result<crate::analysis::Funnel, Error> {
    use crate::analysis::funnel::{Breakdown, Step, StepKind};
    use crate::analysis::{Funnel, Invalid, day_range, parse_window};
    let steps = args
        .steps
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let (kind, value) = text.split_once(':').ok_or_else(|| {
                Invalid(format!(
                    "step {} is KIND:VALUE (page:/checkout, event:order_completed), not {text:?}",
                    i + 1
                ))
            })?;
            StepKind::parse(kind)
                .and_then(|kind| Step::new(kind, value))
                .map_err(|Invalid(m)| Invalid(format!("step {}: {m}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (from, until) = day_range(args.days, &args.at)?;
    Ok(Funnel::new(
        &args.project,
        steps,
        parse_window(&args.window)?,
        from,
        until,
    )?
    .by(Breakdown::parse(&args.by)?))
}

/// Writes `text` to standard output; a reader that stops early (`| head`) is no failure.
fn print_out(text: &str) -> Result<(), Error> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Error::Output),
    }
}

/// The dashboard's sign-in: the users file's users; none on loopback without one, or with
/// `--no-auth`; beyond loopback without either, a refusal.
fn dashboard_auth(
    listen: SocketAddr,
    users: Option<&std::path::Path>,
    no_auth: bool,
) -> Result<Option<std::sync::Arc<Auth>>, Error> {
    let Some(path) = users else {
        if !no_auth && !listen.ip().is_loopback() {
            return Err(Error::Config(format!(
                "the dashboard shows people's profiles and member details, so it will not listen on {listen} \
                 without a sign-in: pass --users FILE (create it with `spoor-segmenter users add NAME --file FILE`), \
                 listen on 127.0.0.1, or pass --no-auth if a proxy in front signs people in"
            )));
        }
        if no_auth {
            tracing::warn!(
                "Dashboard without sign-in (--no-auth): whoever reaches {listen} sees it"
            );
        }
        return Ok(None);
    };
    let users = Users::load(path).map_err(Error::Config)?;
    if users.is_empty() {
        return Err(Error::Config(format!(
            "{} lists no users; add one with `spoor-segmenter users add NAME --file {}`",
            path.display(),
            path.display()
        )));
    }
    if !listen.ip().is_loopback() {
        tracing::info!(
            "Names and passwords travel in clear text over plain HTTP: put a TLS proxy in front of {listen}"
        );
    }
    Auth::from_file(path).map(Some).map_err(Error::Config)
}

fn users(command: &UsersCommand) -> Result<(), Error> {
    let load = |file: &std::path::Path| match file.exists() {
        true => Users::load(file).map_err(Error::Config),
        false => Ok(Users::default()),
    };
    match command {
        UsersCommand::Add { name, file } => {
            let mut users = load(file)?;
            let password = read_password(name)?;
            let hash = crate::dashboard::auth::hash_password(&password).map_err(Error::Config)?;
            let added = !users.names().any(|n| n == name);
            users.set(name, hash).map_err(Error::Config)?;
            write_users(file, &users)?;
            println!(
                "{} {name} in {}",
                if added { "Added" } else { "New password for" },
                file.display()
            );
        }
        UsersCommand::Remove { name, file } => {
            let mut users = load(file)?;
            if !users.remove(name) {
                return Err(Error::Config(format!(
                    "{} has no user {name:?}",
                    file.display()
                )));
            }
            write_users(file, &users)?;
            println!("Removed {name} from {}", file.display());
        }
        UsersCommand::List { file } => {
            for name in Users::load(file).map_err(Error::Config)?.names() {
                println!("{name}");
            }
        }
    }
    Ok(())
}

/// At least this many characters (OWASP's minimum with a second factor absent is 8; 10 here).
const MIN_PASSWORD: usize = 10;

fn read_password(name: &str) -> Result<String, Error> {
    let failed = |e: std::io::Error| Error::Config(format!("cannot read the password: {e}"));
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {name}: ")).map_err(failed)?;
        let again = rpassword::prompt_password("Again: ").map_err(failed)?;
        if first != again {
            return Err(Error::Config("the two passwords differ".into()));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(failed)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.chars().count() < MIN_PASSWORD {
        return Err(Error::Config(format!(
            "the password is shorter than {MIN_PASSWORD} characters"
        )));
    }
    Ok(password)
}

/// Writes the users file whole (a temporary file renamed over it), readable by its owner only.
fn write_users(file: &std::path::Path, users: &Users) -> Result<(), Error> {
    use std::io::Write;
    let failed = |e: std::io::Error| Error::Config(format!("cannot write {}: {e}", file.display()));
    let mut temporary = file.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(&temporary).map_err(failed)?;
    out.write_all(users.render().as_bytes()).map_err(failed)?;
    out.sync_all().map_err(failed)?;
    std::fs::rename(&temporary, file).map_err(failed)
}

/// Runs `work` holding the writer lease ([`crate::lease`]), waiting up to `wait` for it.
async fn with_lease<T>(
    db: &Db,
    wait: Duration,
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    lease::with_lease(
        db,
        wait,
        |who| eprintln!("Waiting for another segmenter to finish writing: {who}"),
        work,
    )
    .await
}

async fn run(db: &Db, args: RunArgs, lease_wait: Duration) -> Result<(), Error> {
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
            Config::from_toml(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
        }
        None => Config::default(),
    };
    let options = RunOptions {
        full: args.full,
        as_of: args.as_of,
        overlap: args.overlap,
        lifecycle: config.lifecycle,
        progress: !args.quiet && std::io::stderr().is_terminal(),
    };
    migrate(db).await?;
    let Some(every) = args.every else {
        let report = with_lease(db, lease_wait, run_once(db, &options)).await?;
        println!("{report}");
        return Ok(());
    };
    let holder = lease::holder_id();
    let mut options = options;
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("Stopping: interrupted");
                return Ok(());
            }
            _ = ticker.tick() => {}
        }
        // Each tick takes the writer lease for its run and gives it back: other processes
        // (a second `run --every`, `forget`, `segments add`) write in between, and of several
        // `run --every` processes one runs each tick — incremental from the same watermark.
        let mut lease = match Lease::try_acquire(db, &holder, lease::TTL).await {
            Ok(lease) => lease,
            Err(LeaseError::Held(who)) => {
                tracing::info!(holder = %who, "Skipping this run: another segmenter is writing");
                continue;
            }
            Err(LeaseError::Lost(_)) => continue,
            Err(LeaseError::Db(error)) => {
                tracing::error!(error = %error, "Cannot take the writer lease; retrying at the next interval");
                continue;
            }
        };
        let outcome = lease.hold_while(db, run_once(db, &options)).await;
        if let Err(error) = lease.release(db).await {
            tracing::warn!(error = %error, "Could not release the writer lease; it expires by itself");
        }
        match outcome {
            Ok(Ok(report)) => {
                println!("{report}");
                // A requested full rebuild is done; until it is, every tick retries it.
                options.full = false;
            }
            // A failed run is retried at the next tick; the watermark did not move.
            Ok(Err(error @ (Error::Unreachable { .. } | Error::Query { .. }))) => {
                tracing::error!(error = %error, "Run failed; retrying at the next interval");
            }
            Ok(Err(error)) => return Err(error),
            Err(error) => {
                tracing::error!(error = %error, "Run stopped; retrying at the next interval");
            }
        }
    }
}

async fn segments(db: &Db, command: SegmentsCommand) -> Result<(), Error> {
    match command {
        SegmentsCommand::Add { file, ids } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Error::Config(format!("cannot read {}: {e}", file.display())))?;
            let format = crate::segment::Format::from_path(&file);
            let definition = crate::segment::Definition::parse(&text, format)?;
            let ids = match ids {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                ),
                None => None,
            };
            let added = store::add(db, &definition, ids.as_deref()).await?;
            println!(
                "Segment {} ({}) saved with {added} members{}",
                definition.id,
                definition.kind.as_str(),
                match definition.kind {
                    crate::segment::Kind::Dynamic =>
                        " (as of the latest run; every run keeps them current)",
                    crate::segment::Kind::Static => "",
                }
            );
        }
        SegmentsCommand::List => {
            let all = store::list(db).await?;
            if all.is_empty() {
                println!("No segments. Add one with `spoor-segmenter segments add FILE`.");
            }
            for s in all {
                println!(
                    "{:<24} {:<8} {:>8} members  {}",
                    s.segment_id, s.kind, s.members, s.name
                );
            }
        }
        SegmentsCommand::Show { id } => {
            let shown = store::show(db, &id).await?;
            println!("{shown}");
        }
        SegmentsCommand::Delete { id } => {
            store::delete(db, &id).await?;
            println!("Segment {id} deleted");
        }
        SegmentsCommand::Export { id } => {
            use std::io::Write;
            let mut rows = store::export(db, &id).await?;
            let mut out = std::io::stdout().lock();
            let written = |r: std::io::Result<()>| match r {
                // A reader that stops early (`| head`) is no failure.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
                Err(e) => Err(Error::Output(e)),
                Ok(()) => Ok(true),
            };
            while let Some(chunk) = rows
                .next()
                .await
                .map_err(|e| Error::query("export segment", e))?
            {
                if !written(out.write_all(&chunk))? {
                    return Ok(());
                }
            }
            written(out.flush())?;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
