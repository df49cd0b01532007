//! `features build`: recompute the series whose `ohlcv` rows changed since they
//! were last built, in groups of symbols so memory stays bounded, and upsert
//! them into `features`.
//!
//! Each features row records the `ohlcv` version it was computed from. A series
//! is rebuilt when it was never built, or when the Delta log shows its `ohlcv`
//! rows changed after that version; then its whole history is recomputed
//! (indicators depend on every earlier row) and the upsert stores only rows that
//! differ. Each group is one commit, so an interrupted build keeps the groups
//! already done and a rerun continues with the rest.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bf_core::tables::{FEATURES, OHLCV, col};
use bf_core::{Interval, Progress};
use bf_lake::{
    ChangedSeries, DeltaTable, Lake, Series, UpsertMetrics, symbol_filter, symbol_range_filter,
    symbol_span,
};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Date32Type, Int64Type};
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::FeaturesError;
use crate::frame::{INPUT_COLUMNS, Stamp, compute_features};

/// Input rows per group: enough to keep every core busy, few enough that a
/// group's input and output (29 columns) stay within a few hundred MiB. The
/// next group reuses that memory instead of pages the kernel must zero afresh,
/// which costs more than the computing on the development VM: at 2.5 M rows,
/// groups of 500 K rows built in 1.52-1.61 s against 2.11-2.84 s with groups
/// of 1.25 M (CPU 2.8-2.9 s vs 3.8-5.1 s, peak RSS 0.70 vs 1.0 GiB).
pub const GROUP_ROWS: usize = 500_000;

/// Which symbols to build; `None` builds every symbol in `ohlcv`.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    pub symbols: Option<Vec<String>>,
    pub group_rows: Option<usize>,
}

/// Wall time of each phase, summed over groups.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Phases {
    #[serde(serialize_with = "seconds")]
    pub plan: Duration,
    #[serde(serialize_with = "seconds")]
    pub read: Duration,
    #[serde(serialize_with = "seconds")]
    pub compute: Duration,
    #[serde(serialize_with = "seconds")]
    pub write: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// What a build did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BuildReport {
    pub ohlcv_version: u64,
    /// (symbol, interval) series considered.
    pub series: usize,
    pub series_built: usize,
    pub series_up_to_date: usize,
    /// Those series.
    #[serde(skip)]
    pub up_to_date: Vec<Series>,
    /// Requested symbols with no `ohlcv` rows.
    pub missing: Vec<String>,
    pub rows_read: usize,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub commits: usize,
    pub files_added: usize,
    pub phases: Phases,
}

/// What a build will do, decided before any row is computed.
#[derive(Debug)]
pub struct BuildPlan {
    /// Series with no features yet, with their `ohlcv` row counts.
    pub fresh: Vec<(Series, usize)>,
    /// Series whose bars changed since their features were built.
    pub rebuild: Vec<(Series, usize)>,
    /// Kernels only look back, so rows of a rebuilt series before its first
    /// changed bar come out as stored.
    pub write_from: HashMap<Series, i32>,
    /// `features` as the plan saw it (`None`: no table yet).
    pub features_version: Option<u64>,
    pub stamp: Stamp,
    /// The counts known before building.
    pub report: BuildReport,
    /// No symbols were named: a group holding every series needs no filter.
    pub all_symbols: bool,
    /// Every daily, weekly and monthly series in `ohlcv` from the first to the
    /// last requested symbol, sorted, when known (every symbol, or a list too
    /// long to prune on): a group holding all of them in its symbol range
    /// reads that range instead of listing its symbols.
    pub in_range: Option<Vec<Series>>,
}

/// Decides which series a build recomputes: those never built and those
/// whose `ohlcv` rows changed since.
pub async fn plan_build(lake: &Lake, request: &BuildRequest) -> Result<BuildPlan, FeaturesError> {
    Ok(plan_in_session(lake, request).await?.0)
}

/// [`plan_build`], and the session it read the lake with.
async fn plan_in_session(
    lake: &Lake,
    request: &BuildRequest,
) -> Result<(BuildPlan, SessionContext), FeaturesError> {
    let started = Instant::now();
    // Read before the session: the plan then sees at least these versions, and
    // an append finding `features` moved on compares instead (`Lake::append`).
    let (ohlcv, features_version) = tokio::try_join!(lake.load(&OHLCV), lake.version(&FEATURES))?;
    let ohlcv = ohlcv.ok_or(FeaturesError::NoBars)?;
    let ohlcv_version = ohlcv.version().ok_or(FeaturesError::NoBars)?;
    let ctx = lake.session().await?;
    let (inventory, built, in_range) = stored_series(&ctx, request.symbols.as_deref()).await?;
    let mut report = BuildReport {
        ohlcv_version,
        series: inventory.len(),
        missing: missing_symbols(request.symbols.as_deref(), &inventory),
        ..BuildReport::default()
    };
    let Plan {
        fresh,
        rebuild,
        write_from,
    } = plan(
        lake,
        &inventory,
        &built,
        (&ohlcv, ohlcv_version),
        &mut report,
    )
    .await;
    report.series_built = fresh.len() + rebuild.len();
    report.series_up_to_date = report.up_to_date.len();
    report.phases.plan = started.elapsed();
    let plan = BuildPlan {
        all_symbols: request.symbols.is_none(),
        in_range,
        fresh,
        rebuild,
        write_from,
        features_version,
        stamp: Stamp {
            ohlcv_version: ohlcv_version as i64,
            computed_at: now_micros(),
        },
        report,
    };
    Ok((plan, ctx))
}

/// Builds features for the requested symbols.
pub async fn build(
    lake: &Lake,
    request: &BuildRequest,
    progress: &dyn Progress,
) -> Result<BuildReport, FeaturesError> {
    build_handing(lake, request, progress, |_| Ok(())).await
}

/// [`build`], handing each group's computed series (whole series in date
/// order, the `features` schema) to `built` before they are stored, so a
/// next stage needs not read them back.
pub async fn build_handing<E: From<FeaturesError>>(
    lake: &Lake,
    request: &BuildRequest,
    progress: &dyn Progress,
    mut built: impl FnMut(&[RecordBatch]) -> Result<(), E>,
) -> Result<BuildReport, E> {
    let (plan, ctx) = plan_in_session(lake, request).await?;
    let BuildPlan {
        fresh,
        rebuild,
        write_from,
        mut features_version,
        stamp,
        mut report,
        all_symbols,
        in_range,
    } = plan;
    let group_rows = request.group_rows.unwrap_or(GROUP_ROWS);
    let mut done = 0;
    progress.advance(done, report.series_built, None);
    let mut groups: Vec<(Vec<Series>, bool)> = Vec::new();
    for (series, is_fresh) in [(fresh, true), (rebuild, false)] {
        groups.extend(
            bf_core::row_groups(series, group_rows)
                .into_iter()
                .map(|group| (group, is_fresh)),
        );
    }
    let whole_table = all_symbols && groups.len() == 1 && groups[0].0.len() == report.series;
    // Filtering 2.5 M rows by a list of every symbol costs a hash probe per
    // row and removes nothing.
    let read = |group: &[Series]| {
        let filter = if whole_table {
            String::new()
        } else {
            group_filter(group, in_range.as_deref())
        };
        tokio::spawn(read_group(ctx.clone(), filter))
    };
    // The scan runs on one core: the next group is read while this one is
    // computed and written.
    let mut next_input = groups.first().map(|(group, _)| read(group));
    for (index, (group, is_fresh)) in groups.iter().enumerate() {
        let reading = next_input.take().expect("a read per group");
        let (input, read_time) = reading
            .await
            .map_err(|e| FeaturesError::Input(format!("reading ohlcv: {e}")))??;
        report.rows_read += input.iter().map(RecordBatch::num_rows).sum::<usize>();
        report.phases.read += read_time;
        next_input = groups.get(index + 1).map(|(group, _)| read(group));
        let started = Instant::now();
        let wanted: HashSet<&Series> = group.iter().collect();
        let computed: Vec<(Series, RecordBatch)> = compute_features(&input, stamp)?
            .into_iter()
            .map(|batch| (series_of(&batch), batch))
            .filter(|(series, _)| wanted.contains(series))
            .collect();
        report.phases.compute += started.elapsed();
        let whole: Vec<RecordBatch> = computed.iter().map(|(_, b)| b.clone()).collect();
        built(&whole)?;
        let batches: Vec<RecordBatch> = computed
            .into_iter()
            .map(|(series, batch)| match write_from.get(&series) {
                Some(&from) => rows_from(&batch, from),
                None => batch,
            })
            .collect();

        let started = Instant::now();
        let metrics = if *is_fresh {
            lake.append(&FEATURES, batches, features_version)
                .await
                .map_err(FeaturesError::from)?
        } else {
            lake.upsert(&FEATURES, batches)
                .await
                .map_err(FeaturesError::from)?
        };
        report.phases.write += started.elapsed();
        features_version = metrics.version;
        add_metrics(&mut report, &metrics);
        done += group.len();
        progress.advance(done, report.series_built, None);
    }
    Ok(report)
}

/// The intervals features are built for, as a SQL condition on `ohlcv`:
/// daily, weekly and monthly. Intraday series are not built, so their many
/// bars per date never meet the features key.
pub fn built_intervals() -> String {
    format!(
        "\"{}\" IN ('{}', '{}', '{}')",
        col::INTERVAL,
        Interval::D1.as_str(),
        Interval::W1.as_str(),
        Interval::Mo1.as_str()
    )
}

/// Rows per (symbol, interval) series of `symbols` (all when `None`) in
/// `ohlcv` (daily, weekly and monthly only), the `ohlcv` version each series'
/// stored features were built from, and every such series from the first to
/// the last of `symbols`, when that was read.
async fn stored_series(
    ctx: &SessionContext,
    symbols: Option<&[String]>,
) -> Result<StoredSeries, FeaturesError> {
    // A long list is read as its range and narrowed here: a comparison per
    // row instead of a hash probe, and the range's other series become known.
    let span = symbols.and_then(symbol_span);
    let filter = match span {
        Some((low, high)) => symbol_range_filter(low, high),
        None => symbol_filter(symbols),
    };
    let per_day = built_intervals();
    let series_filter = if filter.is_empty() {
        format!("WHERE {per_day}")
    } else {
        format!("{filter} AND {per_day}")
    };
    let inventory = series_counts(
        ctx,
        &format!(
            "SELECT {s}, \"{i}\", count(*) FROM {t} {series_filter} GROUP BY 1, 2",
            s = col::SYMBOL,
            i = col::INTERVAL,
            t = OHLCV.name
        ),
    )
    .await?;
    let built = if ctx
        .table_exist(FEATURES.name)
        .map_err(FeaturesError::Read)?
    {
        series_counts(
            ctx,
            &format!(
                "SELECT {s}, \"{i}\", max({v}) FROM {t} {filter} GROUP BY 1, 2",
                s = col::SYMBOL,
                i = col::INTERVAL,
                v = col::OHLCV_VERSION,
                t = FEATURES.name
            ),
        )
        .await?
    } else {
        HashMap::new()
    };
    let in_range = (symbols.is_none() || span.is_some()).then(|| {
        let mut all: Vec<Series> = inventory.keys().cloned().collect();
        all.sort_unstable();
        all
    });
    let wanted: Option<HashSet<&str>> = symbols.map(|s| s.iter().map(String::as_str).collect());
    let requested = |counts: HashMap<Series, i64>| match &wanted {
        Some(wanted) => counts
            .into_iter()
            .filter(|((symbol, _), _)| wanted.contains(symbol.as_str()))
            .collect(),
        None => counts,
    };
    Ok((requested(inventory), requested(built), in_range))
}

/// [`stored_series`]: rows per requested series, the `ohlcv` version each
/// one's features were built from, and every series in the requested range.
type StoredSeries = (
    HashMap<Series, i64>,
    HashMap<Series, i64>,
    Option<Vec<Series>>,
);

/// Which series to build, and from which date.
struct Plan {
    /// Series with no features yet: appended.
    fresh: Vec<(Series, usize)>,
    /// Series whose bars changed since their features were built: upserted.
    rebuild: Vec<(Series, usize)>,
    /// Kernels only look back, so rows before a series' first changed bar come
    /// out as stored: only the rest is compared and written.
    write_from: HashMap<Series, i32>,
}

/// Sorts every series into fresh, to rebuild or up to date (counted in
/// `report`), reading from the Delta log what changed since each build.
async fn plan(
    lake: &Lake,
    inventory: &HashMap<Series, i64>,
    built: &HashMap<Series, i64>,
    (ohlcv, ohlcv_version): (&DeltaTable, u64),
    report: &mut BuildReport,
) -> Plan {
    // Per built version, what changed since; `None` when that version's log is
    // gone (log cleanup), so its series are rebuilt and compared in full.
    let mut changed_since: HashMap<u64, Option<ChangedSeries>> = HashMap::new();
    let (mut fresh, mut rebuild) = (Vec::new(), Vec::new());
    let mut write_from: HashMap<Series, i32> = HashMap::new();
    let mut series: Vec<(&Series, &i64)> = inventory.iter().collect();
    series.sort_unstable();
    for (key, &rows) in series {
        let rows = rows as usize;
        match built.get(key).map(|&v| v as u64) {
            None => fresh.push((key.clone(), rows)),
            Some(version) if version >= ohlcv_version => report.up_to_date.push(key.clone()),
            Some(version) => {
                let changed = match changed_since.entry(version) {
                    Entry::Occupied(known) => known.into_mut(),
                    Entry::Vacant(slot) => slot.insert(
                        match lake.changed_series_up_to(&OHLCV, ohlcv, version).await {
                            Ok(changed) => Some(changed),
                            Err(error) => {
                                tracing::warn!(%error, version, "cannot tell what changed in ohlcv since this version; rebuilding its series in full");
                                None
                            }
                        },
                    ),
                };
                match changed.as_ref().map(|c| c.get(key)) {
                    None => rebuild.push((key.clone(), rows)),
                    Some(Some(&first_changed)) => {
                        write_from.insert(key.clone(), first_changed);
                        rebuild.push((key.clone(), rows));
                    }
                    Some(None) => report.up_to_date.push(key.clone()),
                }
            }
        }
    }
    Plan {
        fresh,
        rebuild,
        write_from,
    }
}

fn add_metrics(report: &mut BuildReport, metrics: &UpsertMetrics) {
    report.inserted += metrics.inserted;
    report.updated += metrics.updated;
    report.unchanged += metrics.unchanged;
    report.files_added += metrics.files_added;
    report.commits += usize::from(metrics.committed);
}

/// The distinct symbols of a group's series.
fn group_symbols(group: &[Series]) -> Vec<String> {
    group
        .iter()
        .map(|(symbol, _)| symbol.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect()
}

/// How a group's `ohlcv` rows are read: the range of its symbols alone when
/// no other series of `in_range` (sorted; `None`: unknown) lies in it, else
/// its symbols listed. Rows of other series are dropped after computing.
fn group_filter(group: &[Series], in_range: Option<&[Series]>) -> String {
    let symbols = group_symbols(group);
    let (Some(low), Some(high)) = (symbols.iter().min(), symbols.iter().max()) else {
        return symbol_filter(Some(&symbols));
    };
    let alone = in_range.is_some_and(|stored| {
        let members: HashSet<&Series> = group.iter().collect();
        let first = stored.partition_point(|(symbol, _)| symbol < low);
        stored[first..]
            .iter()
            .take_while(|(symbol, _)| symbol <= high)
            .all(|series| members.contains(series))
    });
    if alone {
        symbol_range_filter(low, high)
    } else {
        symbol_filter(Some(&symbols))
    }
}

/// The `ohlcv` rows matching `filter` (a `WHERE` clause or nothing), and how
/// long reading took.
async fn read_group(
    ctx: SessionContext,
    filter: String,
) -> Result<(Vec<RecordBatch>, Duration), FeaturesError> {
    let started = Instant::now();
    let columns: Vec<String> = INPUT_COLUMNS.iter().map(|c| format!("\"{c}\"")).collect();
    let query = format!("SELECT {} FROM {} {filter}", columns.join(", "), OHLCV.name);
    let frame = ctx.sql(&query).await.map_err(FeaturesError::Read)?;
    let batches = frame.collect().await.map_err(FeaturesError::Read)?;
    Ok((batches, started.elapsed()))
}

/// The rows of a date-sorted series batch on or after `from`.
fn rows_from(batch: &RecordBatch, from: i32) -> RecordBatch {
    let dates = batch
        .column_by_name(col::DATE)
        .expect("features batch")
        .as_primitive::<Date32Type>();
    let first = dates.values().partition_point(|&d| d < from);
    batch.slice(first, batch.num_rows() - first)
}

fn series_of(batch: &RecordBatch) -> Series {
    let text = |name: &str| {
        batch
            .column_by_name(name)
            .expect("features batch")
            .as_string::<i32>()
            .value(0)
            .to_string()
    };
    (text(col::SYMBOL), text(col::INTERVAL))
}

/// (symbol, interval) → the integer of a `SELECT symbol, interval, n` query.
async fn series_counts(
    ctx: &SessionContext,
    query: &str,
) -> Result<HashMap<Series, i64>, FeaturesError> {
    let batches = ctx
        .sql(query)
        .await
        .map_err(FeaturesError::Read)?
        .collect()
        .await
        .map_err(FeaturesError::Read)?;
    let mut out = HashMap::new();
    for batch in batches {
        let cast = |i: usize, to: &DataType| {
            datafusion::arrow::compute::cast(batch.column(i), to)
                .map_err(|e| FeaturesError::Input(e.to_string()))
        };
        let (symbols, intervals) = (cast(0, &DataType::Utf8)?, cast(1, &DataType::Utf8)?);
        let values = cast(2, &DataType::Int64)?;
        let (symbols, intervals) = (symbols.as_string::<i32>(), intervals.as_string::<i32>());
        let values = values.as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            out.insert(
                (
                    symbols.value(row).to_string(),
                    intervals.value(row).to_string(),
                ),
                values.value(row),
            );
        }
    }
    Ok(out)
}

fn missing_symbols(requested: Option<&[String]>, inventory: &HashMap<Series, i64>) -> Vec<String> {
    let present: HashSet<&str> = inventory.keys().map(|(s, _)| s.as_str()).collect();
    let mut missing: Vec<String> = requested
        .unwrap_or_default()
        .iter()
        .filter(|s| !present.contains(s.as_str()))
        .cloned()
        .collect();
    missing.sort();
    missing
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(symbols: &[&str]) -> Vec<Series> {
        symbols
            .iter()
            .map(|symbol| (symbol.to_string(), "1d".to_string()))
            .collect()
    }

    #[test]
    fn a_group_alone_in_its_range_reads_the_range_else_lists_its_symbols() {
        let group = series(&["B", "C"]);
        let range = "WHERE symbol BETWEEN 'B' AND 'C'";
        let listed = |filter: &str| filter.starts_with("WHERE symbol IN (");
        let stored = series(&["A", "B", "C", "D"]);
        assert_eq!(group_filter(&group, Some(&stored)), range);
        // Another symbol, or another interval of a member, inside the range.
        let between = series(&["A", "B", "BB", "C"]);
        assert!(listed(&group_filter(&group, Some(&between))));
        let mut weekly = stored.clone();
        weekly.push(("B".to_string(), "1wk".to_string()));
        weekly.sort_unstable();
        assert!(listed(&group_filter(&group, Some(&weekly))));
        assert!(listed(&group_filter(&group, None)));
    }

    #[test]
    fn features_table_is_registered_as_a_lake_table() {
        assert!(bf_core::tables::ALL.iter().any(|t| t.name == FEATURES.name));
    }
}
