//! The `hint:` line under an error a user can fix: what to run or set. Library
//! errors say what happened; only the CLI knows its commands and flags, so
//! every hint is written here, one function per library error type.

use bf_charts::ChartError;
use bf_core::CoreError;
use bf_features::FeaturesError;
use bf_lake::LakeError;
use bf_pipeline::PipelineError;
use bf_signals::SignalsError;
use bf_sources::SourceError;

/// The hint for the first error in the chain that has one.
pub fn hint_for(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<LakeError>() {
            return lake(e);
        }
        if let Some(e) = cause.downcast_ref::<FeaturesError>() {
            return features(e);
        }
        if let Some(e) = cause.downcast_ref::<SignalsError>() {
            return signals(e);
        }
        if let Some(e) = cause.downcast_ref::<ChartError>() {
            return charts(e);
        }
        if let Some(e) = cause.downcast_ref::<PipelineError>() {
            return pipeline(e);
        }
        if let Some(e) = cause.downcast_ref::<SourceError>() {
            return source(e);
        }
        cause.downcast_ref::<CoreError>().and_then(core)
    })
}

fn lake(err: &LakeError) -> Option<String> {
    match err {
        LakeError::SchemaMismatch { table, .. } => Some(format!(
            "the {table} table was written by another tool or bf version; move it aside \
             (or point BF_LAKE at a new folder) and fetch or import again"
        )),
        LakeError::DamagedLog { table, version, .. } => Some(format!(
            "to return to version {}, the last good one, move this entry and every later one \
             out of {table}/_delta_log/ (keep them: they are the evidence); the data files \
             only they referenced are then unused, and `bf lake vacuum` deletes them",
            version.saturating_sub(1)
        )),
        LakeError::NotAQuery { .. } => Some(
            "the lake changes only through bf's commands (data fetch/import, features build, \
             signals generate); export with --format csv|json"
                .into(),
        ),
        LakeError::ExpressionTooLarge { .. } => {
            Some("replace long OR chains of equalities with IN (...), or split the work".into())
        }
        LakeError::Query(_) => {
            Some("tables: see `bf data status`; columns: SELECT * FROM <table> LIMIT 1".into())
        }
        _ => None,
    }
}

fn features(err: &FeaturesError) -> Option<String> {
    match err {
        FeaturesError::Lake(e) => lake(e),
        FeaturesError::NoBars => {
            Some("fetch or import bars first: bf data fetch --symbol-list demo_small".into())
        }
        _ => None,
    }
}

fn signals(err: &SignalsError) -> Option<String> {
    match err {
        SignalsError::NoFeatures => {
            Some("build features first: bf features build --symbol-list demo_small".into())
        }
        SignalsError::Strategy { .. } | SignalsError::File { .. } => {
            Some("see config/strategies.toml for the rules and their parameters".into())
        }
        SignalsError::Lake(e) => lake(e),
        SignalsError::Spill(_) => {
            Some("the temporary folder may be full: point TMPDIR at a folder with space".into())
        }
        SignalsError::Query(_) => None,
    }
}

fn charts(err: &ChartError) -> Option<String> {
    match err {
        ChartError::NoFeatures | ChartError::NoBars { .. } => Some(
            "fetch bars and build features first: bf run --source synthetic --symbols SYMBOL"
                .into(),
        ),
        ChartError::Lake(e) => lake(e),
        ChartError::Signals(e) => signals(e),
        _ => None,
    }
}

fn pipeline(err: &PipelineError) -> Option<String> {
    match err {
        PipelineError::Source(e) => source(e),
        _ => None,
    }
}

fn source(err: &SourceError) -> Option<String> {
    match err {
        SourceError::SyntheticInterval(_) => Some("use --interval 1d".into()),
        SourceError::SyntheticEnd { .. } => Some("give an earlier --end".into()),
        SourceError::Core(e) => core(e),
        _ => None,
    }
}

fn core(err: &CoreError) -> Option<String> {
    match err {
        CoreError::UnknownSymbolList { .. } => Some(
            "`bf symbols list` shows every list; BF_SYMBOL_LISTS adds a folder of your own".into(),
        ),
        CoreError::SymbolListEntry { .. } => {
            Some("symbols use letters, digits, '.', '-', '^' and '='; '#' starts a comment".into())
        }
        _ => None,
    }
}
