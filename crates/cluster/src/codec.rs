//! How bf's plan node travels: Ballista's own codec for its nodes (shuffles),
//! and [`PartitionOpExec`] as a tagged JSON of its op. The client, the
//! scheduler and every executor install the same codec.

use std::sync::Arc;

use ballista_core::serde::BallistaPhysicalExtensionCodec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use crate::partition_op::{PartitionOp, PartitionOpExec};

/// Marks a buffer as bf's: Ballista's own nodes are protobuf messages, whose
/// first byte is a field tag, never `{`-led text with this prefix.
const TAG: &[u8] = b"bf.partition_op:";

#[derive(Debug, Default)]
pub struct BfCodec {
    ballista: BallistaPhysicalExtensionCodec,
}

impl BfCodec {
    pub fn shared() -> Arc<dyn PhysicalExtensionCodec> {
        Arc::new(Self::default())
    }
}

impl PhysicalExtensionCodec for BfCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(json) = buf.strip_prefix(TAG) else {
            return self.ballista.try_decode(buf, inputs, ctx, proto_converter);
        };
        let op: PartitionOp = serde_json::from_slice(json)
            .map_err(|e| DataFusionError::Internal(format!("bf plan node: {e}")))?;
        let [input] = inputs else {
            return Err(DataFusionError::Internal(format!(
                "bf plan node with {} inputs",
                inputs.len()
            )));
        };
        Ok(Arc::new(PartitionOpExec::new(Arc::clone(input), op)))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let Some(exec) = node.downcast_ref::<PartitionOpExec>() else {
            return self.ballista.try_encode(node, buf, proto_converter);
        };
        buf.extend_from_slice(TAG);
        serde_json::to_writer(buf, exec.op())
            .map_err(|e| DataFusionError::Internal(format!("bf plan node: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::Schema;
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion::prelude::SessionContext;
    use datafusion_proto::physical_plan::DefaultPhysicalProtoConverter;

    use super::*;

    #[test]
    fn a_bf_node_round_trips_and_others_go_to_ballista() {
        let codec = BfCodec::default();
        let input: Arc<dyn ExecutionPlan> = Arc::new(EmptyExec::new(Arc::new(Schema::empty())));
        let op = PartitionOp::WriteFiles {
            lake: "s3://bucket/lake/".into(),
            table: "features".into(),
        };
        let node = Arc::new(PartitionOpExec::new(Arc::clone(&input), op.clone()));
        let mut buf = Vec::new();
        codec
            .try_encode(node, &mut buf, &DefaultPhysicalProtoConverter {})
            .unwrap();
        let ctx = SessionContext::new().task_ctx();
        let decoded = codec
            .try_decode(&buf, &[input], &ctx, &DefaultPhysicalProtoConverter {})
            .unwrap();
        assert_eq!(decoded.downcast_ref::<PartitionOpExec>().unwrap().op(), &op);

        let not_ours = codec.try_decode(b"\x08\x01", &[], &ctx, &DefaultPhysicalProtoConverter {});
        assert!(not_ours.is_err(), "Ballista's codec refuses a bad message");
    }
}
