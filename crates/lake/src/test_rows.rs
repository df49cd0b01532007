//! Rows for the crate's own tests.

use bf_core::Symbol;
use bf_sources::synthetic::{SOURCE_NAME, Synthetic};
use bf_sources::{ActionsBuilder, BarsBuilder};
use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;

/// `ohlcv` rows of `symbol`, daily, over the first quarter of 2022.
pub(crate) fn bars(symbol: &str) -> RecordBatch {
    let mut bars = BarsBuilder::new(SOURCE_NAME, 1, 0);
    Synthetic::new(7).generate(
        &Symbol::parse(symbol).unwrap(),
        NaiveDate::from_ymd_opt(2022, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(2022, 3, 31).unwrap(),
        &mut bars,
        &mut ActionsBuilder::new(SOURCE_NAME, 1),
    );
    bars.finish()
}
