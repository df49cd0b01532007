//! bf's work inside a cluster job: one plan node, [`PartitionOpExec`], that
//! applies a [`PartitionOp`] to each partition of its input. Partitions are
//! split by symbol before it, so each sees whole series. The op is plain data,
//! so the codec ships it to executors by value; the code it runs is the same
//! as the embedded build's (`bf_features::frame`, `bf_signals::engine`,
//! `bf_lake`'s writer).

use std::fmt;
use std::sync::{Arc, OnceLock};

use bf_core::tables::{self, FEATURES, SIGNALS};
use bf_features::frame::{Stamp, compute_features};
use bf_lake::Lake;
use bf_signals::engine::{RunStamp, prepare};
use bf_signals::strategy::Strategies;
use datafusion::arrow::array::{RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

/// Columns of [`PartitionOp::WriteFiles`]'s output: one row per file.
pub mod written {
    /// Delta's `add` action of the file, as JSON.
    pub const ADD: &str = "add";
    pub const ROWS: &str = "rows";
    /// The executor that wrote it.
    pub const EXECUTOR: &str = "executor";
}

/// What a partition's rows become.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PartitionOp {
    /// `ohlcv` rows → the `features` rows of every series among them.
    Features {
        ohlcv_version: i64,
        computed_at: i64,
    },
    /// Rows of `bf_signals::engine::Plan::read_sql` → `signals` rows.
    Signals {
        strategies: Strategies,
        run: RunStamp,
    },
    /// Rows → Parquet files in the table's folder, not committed; one
    /// output row per file.
    WriteFiles { lake: String, table: String },
}

impl PartitionOp {
    fn schema(&self) -> SchemaRef {
        match self {
            Self::Features { .. } => FEATURES.schema(),
            Self::Signals { .. } => SIGNALS.schema(),
            Self::WriteFiles { .. } => written_schema(),
        }
    }

    async fn apply(self, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(Vec::new());
        }
        match self {
            Self::Features {
                ohlcv_version,
                computed_at,
            } => {
                let stamp = Stamp {
                    ohlcv_version,
                    computed_at,
                };
                // The kernels run on every core (rayon): off the async threads.
                tokio::task::spawn_blocking(move || {
                    compute_features(&batches, stamp).map_err(external)
                })
                .await
                .map_err(external)?
            }
            Self::Signals { strategies, run } => {
                let plan = prepare(&strategies).await.map_err(external)?;
                plan.signals_of(&batches, &run).map_err(external)
            }
            Self::WriteFiles { lake, table } => {
                let spec = tables::ALL
                    .iter()
                    .find(|t| t.name == table)
                    .ok_or_else(|| DataFusionError::Plan(format!("no lake table named {table}")))?;
                let lake = Lake::open(&lake).map_err(external)?;
                let files = lake.write_files(spec, batches).await.map_err(external)?;
                let counts: Vec<u64> = files.iter().map(|add| rows_of(add)).collect();
                let executor = vec![executor_name().to_string(); files.len()];
                Ok(vec![RecordBatch::try_new(
                    written_schema(),
                    vec![
                        Arc::new(StringArray::from(files)),
                        Arc::new(UInt64Array::from(counts)),
                        Arc::new(StringArray::from(executor)),
                    ],
                )?])
            }
        }
    }
}

fn written_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(written::ADD, DataType::Utf8, false),
        Field::new(written::ROWS, DataType::UInt64, false),
        Field::new(written::EXECUTOR, DataType::Utf8, false),
    ]))
}

/// `numRecords` of an `add` action's statistics.
fn rows_of(add: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(add)
        .ok()
        .and_then(|add| {
            let stats: serde_json::Value =
                serde_json::from_str(add.get("stats")?.as_str()?).ok()?;
            stats.get("numRecords")?.as_u64()
        })
        .unwrap_or_default()
}

static EXECUTOR_NAME: OnceLock<String> = OnceLock::new();

/// Names this process in the files it writes (`bf cluster executor` sets it).
pub fn set_executor_name(name: String) {
    let _ = EXECUTOR_NAME.set(name);
}

fn executor_name() -> &'static str {
    EXECUTOR_NAME.get().map_or("client", String::as_str)
}

fn external(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> DataFusionError {
    DataFusionError::External(error.into())
}

/// Applies a [`PartitionOp`] to each partition of its input.
#[derive(Debug)]
pub struct PartitionOpExec {
    input: Arc<dyn ExecutionPlan>,
    op: PartitionOp,
    properties: Arc<PlanProperties>,
}

impl PartitionOpExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, op: PartitionOp) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(op.schema()),
            input.output_partitioning().clone(),
            // A partition's output comes once its whole input is in.
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Self {
            input,
            op,
            properties: Arc::new(properties),
        }
    }

    pub fn op(&self) -> &PartitionOp {
        &self.op
    }
}

impl DisplayAs for PartitionOpExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.op {
            PartitionOp::Features { .. } => write!(f, "BfFeaturesExec"),
            PartitionOp::Signals { strategies, .. } => {
                let names: Vec<&str> = strategies
                    .strategies
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect();
                write!(f, "BfSignalsExec: strategies=[{}]", names.join(", "))
            }
            PartitionOp::WriteFiles { table, .. } => write!(f, "BfWriteFilesExec: table={table}"),
        }
    }
}

impl ExecutionPlan for PartitionOpExec {
    fn name(&self) -> &str {
        "PartitionOpExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(
                "PartitionOpExec takes one input".into(),
            ));
        }
        Ok(Arc::new(Self::new(
            children.swap_remove(0),
            self.op.clone(),
        )))
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let op = self.op.clone();
        let output = futures::stream::once(async move {
            let batches: Vec<RecordBatch> = input.try_collect().await?;
            op.apply(batches).await
        })
        .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.op.schema(),
            output.boxed(),
        )))
    }
}
