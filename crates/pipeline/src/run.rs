//! `bf run`'s work: fetch -> features -> signals for a list of symbols, each
//! stage incremental (a rerun with nothing new writes nothing).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use bf_cluster::Cluster;
use bf_core::Progress;
use bf_features::build::{BuildReport, BuildRequest, build_handing};
use bf_lake::Lake;
use bf_signals::generate::{GenerateReport, SignalsRun};
use bf_signals::strategy::Strategies;
use serde::Serialize;

use crate::PipelineError;
use crate::fetch::{FetchReport, FetchRequest, fetch};

#[derive(Debug)]
pub struct RunRequest {
    pub fetch: FetchRequest,
    pub strategies: Strategies,
    /// Features and signals run on this cluster; `None`: embedded.
    pub cluster: Option<Cluster>,
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub symbols: usize,
    /// Symbols that failed to fetch or have no bars, each once.
    pub symbols_failed: Vec<String>,
    pub new_bars: usize,
    pub feature_rows_written: usize,
    pub new_signals: usize,
    pub signals_removed: usize,
    /// Wall seconds of each stage, in order.
    pub stage_seconds: Vec<(&'static str, f64)>,
    #[serde(skip)]
    pub fetched: FetchReport,
    #[serde(skip)]
    pub built: BuildReport,
    #[serde(skip)]
    pub generated: GenerateReport,
}

impl RunReport {
    pub fn nothing_new(&self) -> bool {
        self.new_bars == 0
            && self.feature_rows_written == 0
            && self.new_signals == 0
            && self.signals_removed == 0
    }
}

/// A display for each stage, asked for as the stage starts: (stage name,
/// number of items).
pub type StageProgress<'a> = &'a (dyn Fn(&'static str, usize) -> Arc<dyn Progress> + Sync);

/// Runs every stage for the request's symbols. A symbol that fails to fetch
/// does not stop the others; it is listed in `symbols_failed`.
pub async fn run(
    lake: &Lake,
    request: &RunRequest,
    progress: StageProgress<'_>,
) -> Result<RunReport, PipelineError> {
    let symbols: Vec<String> = request
        .fetch
        .symbols
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    let mut stage_seconds = Vec::new();

    let started = Instant::now();
    let display = progress("fetch", symbols.len());
    let fetched = fetch(lake, &request.fetch, Arc::clone(&display)).await;
    display.finish();
    let fetched = fetched?;
    stage_seconds.push(("fetch", started.elapsed().as_secs_f64()));

    let started = Instant::now();
    let features_request = BuildRequest {
        symbols: Some(symbols.clone()),
        group_rows: None,
    };
    // Embedded, the signals of the series just built are computed from the
    // features in memory; only the other series are read back.
    let mut signals = SignalsRun::start(&request.strategies).await?;
    let built = match &request.cluster {
        Some(cluster) => {
            bf_cluster::features::build_features(cluster, lake, &features_request)
                .await?
                .build
        }
        None => {
            let display = progress("features", 0);
            let built = build_handing(lake, &features_request, &*display, |features| {
                signals.add_features(features).map_err(PipelineError::from)
            })
            .await;
            display.finish();
            built?
        }
    };
    stage_seconds.push(("features", started.elapsed().as_secs_f64()));

    let started = Instant::now();
    let generated = match &request.cluster {
        Some(cluster) => {
            let report = bf_cluster::signals::generate_signals(
                cluster,
                lake,
                &request.strategies,
                Some(&symbols),
            )
            .await?;
            cluster_generated(report)
        }
        None => {
            let unread: BTreeSet<String> =
                built.up_to_date.iter().map(|(s, _)| s.clone()).collect();
            let unread: Vec<String> = unread.into_iter().collect();
            signals.finish(lake, &symbols, &unread).await?
        }
    };
    stage_seconds.push(("signals", started.elapsed().as_secs_f64()));

    let mut symbols_failed: Vec<String> = fetched.failed().map(|f| f.symbol.clone()).collect();
    for symbol in &built.missing {
        if !symbols_failed.contains(symbol) {
            symbols_failed.push(symbol.clone());
        }
    }
    Ok(RunReport {
        symbols: symbols.len(),
        symbols_failed,
        new_bars: fetched.ohlcv.inserted + fetched.ohlcv.updated,
        feature_rows_written: built.inserted + built.updated,
        new_signals: generated.signals.inserted + generated.signals.updated,
        signals_removed: generated.signals.deleted,
        stage_seconds,
        fetched,
        built,
        generated,
    })
}

/// A cluster run in the embedded report's terms: the cluster rewrites the
/// run's signals without comparing them with the stored ones, so every
/// signal of the run counts as new and none as removed.
fn cluster_generated(report: bf_cluster::signals::ClusterSignalsReport) -> GenerateReport {
    let signals = report.strategies.iter().map(|c| c.buy + c.sell).sum();
    GenerateReport {
        run_id: report.run_id,
        strategies_file: report.strategies_file,
        strategies: report.strategies,
        signals: bf_lake::UpsertMetrics {
            inserted: signals,
            files_added: report.commit.files_added,
            version: Some(report.commit.version),
            committed: true,
            ..bf_lake::UpsertMetrics::default()
        },
        seconds: report.seconds,
    }
}
