//! The client side of `--cluster`: plan a job here, against the lake tables'
//! current Parquet files, and run the plan on the cluster. The scheduler
//! splits it into stages at every shuffle and the executors read the files
//! themselves; only the job's result comes back.

use std::collections::HashMap;
use std::sync::Arc;

use ballista_core::config::BallistaConfig;
use ballista_core::execution_plans::execute_physical_plan;
use ballista_core::extension::SessionConfigExt;
use bf_core::tables::{self, TableSpec, col};
use bf_lake::{Lake, TableFiles};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::protobuf::PhysicalPlanNode;

use crate::codec::BfCodec;
use crate::engine::runtime;
use crate::status::{ExecutorStatus, SchedulerApi};
use crate::{ClusterError, SchedulerAddress};

/// A scheduler that answered, with its executors.
#[derive(Debug, Clone)]
pub struct Cluster {
    address: SchedulerAddress,
    api: SchedulerApi,
    executors: Vec<ExecutorStatus>,
}

/// A planning session over the lake, and the table versions it reads.
pub struct LakeSnapshot {
    pub ctx: SessionContext,
    pub tables: HashMap<&'static str, TableFiles>,
}

impl Cluster {
    /// Asks the scheduler for its executors: an unreachable scheduler or one
    /// without executors is said before any work.
    pub async fn connect(address: SchedulerAddress) -> Result<Self, ClusterError> {
        let api = SchedulerApi::new(address.clone());
        let executors = api.executors().await?;
        if executors.is_empty() {
            return Err(ClusterError::NoExecutors {
                address: address.to_string(),
            });
        }
        Ok(Self {
            address,
            api,
            executors,
        })
    }

    pub fn address(&self) -> &SchedulerAddress {
        &self.address
    }

    pub fn api(&self) -> &SchedulerApi {
        &self.api
    }

    /// Task slots over all executors.
    pub fn slots(&self) -> usize {
        self.executors.iter().map(|e| e.slots as usize).sum()
    }

    pub fn executors(&self) -> &[ExecutorStatus] {
        &self.executors
    }

    /// A session whose lake tables are their current Parquet files, with
    /// bf's functions, planning `partitions` ways.
    pub async fn snapshot(
        &self,
        lake: &Lake,
        partitions: usize,
    ) -> Result<LakeSnapshot, ClusterError> {
        let ctx = planning_session(partitions)?;
        let mut versions = HashMap::new();
        for spec in tables::ALL {
            if let Some(files) = lake.table_files(spec).await? {
                let urls: Vec<String> = files.files.iter().map(|f| f.url.clone()).collect();
                register_files(&ctx, spec, &urls)?;
                versions.insert(spec.name, files);
            }
        }
        Ok(LakeSnapshot {
            ctx,
            tables: versions,
        })
    }

    /// A session with `spec`'s table made of the given files only.
    pub(crate) fn files_session(
        &self,
        spec: &TableSpec,
        urls: &[String],
        partitions: usize,
    ) -> Result<SessionContext, ClusterError> {
        let ctx = planning_session(partitions)?;
        register_files(&ctx, spec, urls)?;
        Ok(ctx)
    }

    /// Runs `plan` on the cluster as one job named `name`.
    pub async fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        name: &str,
    ) -> Result<SendableRecordBatchStream, ClusterError> {
        let codec = BfCodec::shared();
        let config = SessionConfig::new_with_ballista()
            .with_ballista_physical_extension_codec(Arc::clone(&codec))
            .with_ballista_job_name(name);
        let session_id = format!("bf-{}", std::process::id());
        execute_physical_plan::<PhysicalPlanNode>(
            self.address.http_url(),
            &BallistaConfig::default(),
            plan,
            codec.as_ref(),
            session_id,
            config,
        )
        .await
        .map_err(|e| ClusterError::Job {
            message: first_line(&e.to_string()),
        })
    }
}

/// A session planning `partitions` ways, with bf's functions and the lake's
/// object stores.
fn planning_session(partitions: usize) -> Result<SessionContext, ClusterError> {
    let config = SessionConfig::new_with_ballista()
        .with_target_partitions(partitions.max(1))
        // A dynamic filter links a join to a scan of another stage in
        // memory; across processes there is nothing to link.
        .set_bool("datafusion.optimizer.enable_dynamic_filter_pushdown", false);
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime(None).map_err(ClusterError::Plan)?)
        .build();
    let ctx = SessionContext::new_with_state(state);
    bf_indicators::register(&ctx);
    Ok(ctx)
}

/// Registers a table as the list of its files (an empty table as no rows).
fn register_files(
    ctx: &SessionContext,
    spec: &TableSpec,
    files: &[String],
) -> Result<(), ClusterError> {
    let plan_error = ClusterError::Plan;
    if files.is_empty() {
        let empty = MemTable::try_new(spec.schema(), vec![vec![]]).map_err(plan_error)?;
        ctx.register_table(spec.name, Arc::new(empty))
            .map_err(plan_error)?;
        return Ok(());
    }
    let urls = files
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(plan_error)?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(spec.schema());
    let table = ListingTable::try_new(config).map_err(plan_error)?;
    ctx.register_table(spec.name, Arc::new(table))
        .map_err(plan_error)?;
    Ok(())
}

/// The physical plan of one statement bf wrote, for the cluster to run.
pub(crate) async fn physical_plan(
    ctx: &SessionContext,
    query: &str,
) -> Result<Arc<dyn ExecutionPlan>, ClusterError> {
    ctx.sql(query)
        .await
        .map_err(ClusterError::Plan)?
        .create_physical_plan()
        .await
        .map_err(ClusterError::Plan)
}

/// `plan`'s rows split into `partitions` by symbol, so each partition holds
/// whole series.
pub(crate) fn split_by_symbol(
    plan: Arc<dyn ExecutionPlan>,
    partitions: usize,
) -> Result<Arc<dyn ExecutionPlan>, ClusterError> {
    let symbol =
        Column::new_with_schema(col::SYMBOL, &plan.schema()).map_err(ClusterError::Plan)?;
    let by_symbol = Partitioning::Hash(vec![Arc::new(symbol)], partitions);
    Ok(Arc::new(
        RepartitionExec::try_new(plan, by_symbol).map_err(ClusterError::Plan)?,
    ))
}

pub(crate) fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_string()
}
