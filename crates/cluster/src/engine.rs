//! What the client, the scheduler and every executor share so that a plan
//! made on one is understood by the others: bf's window functions (by name),
//! the codec for bf's plan node, and object stores for the lake.

use std::sync::{Arc, LazyLock};

use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::error::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{FunctionRegistry as _, SessionState};
use datafusion::logical_expr::WindowUDF;
use datafusion::prelude::SessionConfig;

use crate::stores::LakeStores;

/// One registry per process: S3 clients are reused across jobs and tasks.
static STORES: LazyLock<Arc<LakeStores>> = LazyLock::new(Arc::default);

/// A runtime whose object stores reach the lake; spill files go to
/// `temp_dir` when given.
pub fn runtime(temp_dir: Option<&str>) -> Result<Arc<RuntimeEnv>> {
    let builder = RuntimeEnvBuilder::new().with_object_store_registry(STORES.clone());
    let builder = match temp_dir {
        Some(dir) => builder.with_temp_file_path(dir),
        None => builder,
    };
    builder.build_arc()
}

/// The scheduler's sessions: Ballista's defaults (its optimizer rules and
/// functions) plus bf's window functions. `with_window_functions` would
/// replace Ballista's list, so bf's are registered on top of it.
pub fn scheduler_session(config: SessionConfig) -> Result<SessionState> {
    let state = ballista_core::utils::default_session_builder(config)?;
    let mut state = SessionStateBuilder::new_from_existing(state)
        .with_runtime_env(runtime(None)?)
        .build();
    for function in bf_indicators::window_functions() {
        state.register_udwf(Arc::new(function))?;
    }
    Ok(state)
}

/// The functions an executor resolves plans' names against: DataFusion's and
/// Ballista's defaults plus bf's window functions.
pub fn executor_functions() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    registry.window_functions.extend(
        bf_indicators::window_functions()
            .into_iter()
            .map(|function: WindowUDF| (function.name().to_string(), Arc::new(function))),
    );
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_side_knows_bf_functions_and_the_builtins() {
        let scheduler = scheduler_session(SessionConfig::new()).unwrap();
        let executor = executor_functions();
        for name in ["sma", "prev", "row_number", "lag"] {
            assert!(scheduler.udwf(name).is_ok(), "scheduler lacks {name}");
            assert!(executor.udwf(name).is_ok(), "executor lacks {name}");
        }
        assert!(scheduler.udf("abs").is_ok() && executor.udf("abs").is_ok());
    }
}
