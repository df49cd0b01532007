//! `bf sql --cluster`: the query planned here over the lake tables' files and
//! run on the executors; its rows stream back.

use bf_lake::{Lake, QueryStream, plan_read_only};
use datafusion::arrow::datatypes::SchemaRef;

use crate::{Cluster, ClusterError};

/// Runs one read-only statement on the cluster.
pub async fn query(cluster: &Cluster, lake: &Lake, sql: &str) -> Result<QueryStream, ClusterError> {
    let snapshot = cluster.snapshot(lake, cluster.slots()).await?;
    let frame = plan_read_only(&snapshot.ctx, sql).await?;
    let schema = SchemaRef::new(frame.schema().as_arrow().clone());
    let plan = frame
        .create_physical_plan()
        .await
        .map_err(ClusterError::Plan)?;
    let stream = cluster.execute(plan, "bf sql").await?;
    Ok(QueryStream { schema, stream })
}
