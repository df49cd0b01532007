//! `bf es setup | sync | status`, and the sync that `signals generate` and
//! `run` do after their lake commit when Elasticsearch is configured.

use bf_core::Progress as _;
use bf_core::tables::{FEATURES, OHLCV, SIGNALS, TableSpec};
use bf_lake::Lake;
use bf_sinks::elasticsearch::{self, EsAuth, EsClient, EsConfig, SyncReport};
use serde::Serialize;

use super::Outcome;
use crate::args::{EsAccess, EsArgs, EsCommand, GlobalArgs, MirroredTable};
use crate::present::{Printer, count_text};

pub async fn run(
    command: EsCommand,
    global: &GlobalArgs,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    let lake = Lake::open(&global.lake)?;
    match command {
        EsCommand::Setup(args) => {
            let client = client(&args.es)?;
            let templates = elasticsearch::setup(&client).await?;
            if printer.json() {
                printer.json_value(&templates)?;
            } else {
                printer.summary(&format!(
                    "installed the index templates {} at {}",
                    templates.join(", "),
                    client.config().nodes_text()
                ));
            }
            Ok(Outcome::Success)
        }
        EsCommand::Sync(args) => {
            let client = client(&args.es)?;
            let tables: Vec<&'static TableSpec> = args
                .tables
                .iter()
                .map(|table| match table {
                    MirroredTable::Signals => &SIGNALS,
                    MirroredTable::Features => &FEATURES,
                    MirroredTable::Ohlcv => &OHLCV,
                })
                .collect();
            let report = sync(&lake, &client, &tables, printer).await?;
            print_sync(&report, printer)?;
            Ok(outcome(&report))
        }
        EsCommand::Status(args) => status(&lake, &client(&args.es)?, printer).await,
    }
}

/// The client for the settings; an error when no URL is set.
fn client(args: &EsArgs) -> anyhow::Result<EsClient> {
    Ok(EsClient::new(config_for(args)?)?)
}

/// The settings; an error when no URL is set.
pub fn config_for(args: &EsArgs) -> anyhow::Result<EsConfig> {
    let Some(url) = args.configured_url() else {
        anyhow::bail!("Elasticsearch is not configured: set BF_ES_URL (or --es-url)");
    };
    config(url, args)
}

fn config(url: &str, args: &EsArgs) -> anyhow::Result<EsConfig> {
    let mut config = EsConfig::new(url)?;
    config.auth = auth(&args.access);
    config.ca_cert = args.access.ca_cert.clone();
    config.index_prefix = args.access.index_prefix.clone();
    config.timeout = std::time::Duration::from_secs_f64(args.access.es_timeout);
    Ok(config)
}

/// The credentials the settings give, for Elasticsearch and Kibana alike.
pub fn auth(access: &EsAccess) -> EsAuth {
    match (&access.username, &access.password, &access.api_key) {
        (_, _, Some(key)) => EsAuth::ApiKey(key.clone()),
        (Some(username), Some(password), None) => EsAuth::Basic {
            username: username.clone(),
            password: password.clone(),
        },
        _ => EsAuth::None,
    }
}

async fn sync(
    lake: &Lake,
    client: &EsClient,
    tables: &[&'static TableSpec],
    printer: &Printer,
) -> anyhow::Result<SyncReport> {
    let progress = printer.step_progress(0, "index");
    let report = elasticsearch::sync(lake, client, tables, &*progress).await;
    progress.finish();
    Ok(report?)
}

fn outcome(report: &SyncReport) -> Outcome {
    if report.complete() {
        Outcome::Success
    } else {
        Outcome::SomeFailed
    }
}

/// What the sync after a lake commit did.
#[derive(Debug, Serialize)]
pub struct CommitSync {
    #[serde(skip)]
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub report: Option<SyncReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A command's `--json` report with the sync after its commit, if any, as
/// its `elasticsearch` field.
#[derive(Serialize)]
pub struct WithSync<'a, T: Serialize + ?Sized> {
    #[serde(flatten)]
    pub report: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elasticsearch: Option<&'a CommitSync>,
}

/// After a lake commit: syncs signals and features when Elasticsearch is
/// configured (`None` when it is not). A failure is said in one line and
/// makes the command exit 1; the lake commit stands and the next sync
/// catches up.
pub async fn sync_after_commit(
    args: &EsArgs,
    lake: &Lake,
    printer: &Printer,
) -> Option<CommitSync> {
    let url = args.configured_url()?;
    let synced = async {
        let client = EsClient::new(config(url, args)?)?;
        sync(lake, &client, &[&SIGNALS, &FEATURES], printer).await
    };
    Some(match synced.await {
        Ok(report) => {
            if !printer.json() {
                let _ = print_sync(&report, printer);
            }
            CommitSync {
                outcome: outcome(&report),
                report: Some(report),
                error: None,
            }
        }
        Err(err) => {
            let error = format!(
                "Elasticsearch sync failed: {err:#}; the lake is committed, `bf es sync` catches up"
            );
            printer.warn(&error);
            CommitSync {
                outcome: Outcome::SomeFailed,
                report: None,
                error: Some(error),
            }
        }
    })
}

fn print_sync(report: &SyncReport, printer: &Printer) -> anyhow::Result<()> {
    if printer.json() {
        return Ok(printer.json_value(report)?);
    }
    let version = |v: Option<u64>| v.map_or_else(|| "—".to_string(), |v| v.to_string());
    let rows = report
        .tables
        .iter()
        .map(|t| {
            vec![
                t.index.clone(),
                format!("{} → {}", version(t.from_version), version(t.to_version)),
                count_text(t.indexed),
                count_text(t.deleted + t.stale_deleted as usize),
                count_text(t.bulk.rejected),
                format!("{:.1} MB", t.bulk.bytes as f64 / 1e6),
            ]
        })
        .collect();
    let numbers = ["indexed", "deleted", "rejected", "sent"];
    printer.table(
        &[
            "index",
            "lake version",
            "indexed",
            "deleted",
            "rejected",
            "sent",
        ],
        &numbers,
        rows,
    )?;
    for table in &report.tables {
        for error in &table.bulk.errors {
            printer.warn(&format!("{}: {error}", table.index));
        }
    }
    let indexed: usize = report.tables.iter().map(|t| t.indexed).sum();
    let deleted: usize = report.tables.iter().map(|t| t.deleted).sum();
    printer.summary(&if report.complete() {
        format!(
            "elasticsearch: {} documents indexed, {} deleted; every item acknowledged",
            count_text(indexed),
            count_text(deleted)
        )
    } else {
        "elasticsearch: some documents were rejected (listed above); their tables keep the \
         version synced before, so the next sync sends them again"
            .to_string()
    });
    Ok(())
}

async fn status(lake: &Lake, client: &EsClient, printer: &Printer) -> anyhow::Result<Outcome> {
    let statuses = elasticsearch::status(lake, client).await?;
    if printer.json() {
        printer.json_value(&statuses)?;
        return Ok(Outcome::Success);
    }
    let number = |v: Option<u64>| v.map_or_else(|| "—".to_string(), |v| count_text(v as usize));
    let rows = statuses
        .iter()
        .map(|s| {
            let lag = match (s.lake_version, s.synced_version) {
                (Some(lake), Some(synced)) => format!("{} versions", lake.saturating_sub(synced)),
                (Some(_), None) => "never synced".to_string(),
                (None, _) => "—".to_string(),
            };
            vec![
                s.index.clone(),
                number(s.lake_version),
                number(s.synced_version),
                number(s.rows),
                number(s.documents),
                lag,
            ]
        })
        .collect();
    let numbers = ["lake version", "synced version", "rows", "documents"];
    printer.table(
        &[
            "index",
            "lake version",
            "synced version",
            "rows",
            "documents",
            "lag",
        ],
        &numbers,
        rows,
    )?;
    printer.summary(&format!(
        "at {}; documents equal rows when the lag is 0 versions",
        client.config().nodes_text()
    ));
    Ok(Outcome::Success)
}
