//! Names, keys and Arrow schemas of the lake tables (SPEC "Tables").

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Column names shared by every writer and reader of the lake.
pub mod col {
    pub const SYMBOL: &str = "symbol";
    pub const INTERVAL: &str = "interval";
    pub const DATE: &str = "date";
    pub const TS: &str = "ts";
    pub const OPEN: &str = "open";
    pub const HIGH: &str = "high";
    pub const LOW: &str = "low";
    pub const CLOSE: &str = "close";
    pub const ADJ_CLOSE: &str = "adj_close";
    pub const VOLUME: &str = "volume";
    pub const SOURCE: &str = "source";
    pub const INGESTED_AT: &str = "ingested_at";
    pub const KIND: &str = "kind";
    pub const VALUE: &str = "value";
    pub const ADJ_OPEN: &str = "adj_open";
    pub const ADJ_HIGH: &str = "adj_high";
    pub const ADJ_LOW: &str = "adj_low";
    pub const COMPUTED_AT: &str = "computed_at";
    pub const OHLCV_VERSION: &str = "ohlcv_version";
    pub const STRATEGY: &str = "strategy";
    pub const SIDE: &str = "side";
    pub const STRENGTH: &str = "strength";
    pub const PRICE: &str = "price";
    pub const INPUTS: &str = "inputs";
    pub const RUN_ID: &str = "run_id";
    pub const GENERATED_AT: &str = "generated_at";
}

/// The feature columns of the `features` table, in table order (SPEC "Features").
pub const FEATURE_COLUMNS: [&str; 21] = [
    "ret_1",
    "log_ret_1",
    "sma_20",
    "sma_50",
    "sma_200",
    "ema_12",
    "ema_26",
    "macd",
    "macd_signal",
    "macd_hist",
    "rsi_14",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "atr_14",
    "adx_14",
    "stoch_k",
    "stoch_d",
    "obv",
    "vol_20",
    "volume_z_20",
];

/// A lake table: its name, the columns that identify a row, the columns that
/// record provenance rather than data (a re-import that only changes those is a
/// no-op), and how its files trade size for write speed.
#[derive(Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub key: &'static [&'static str],
    pub provenance: &'static [&'static str],
    pub storage: Storage,
    /// Text columns whose values seldom repeat (JSON): written without a
    /// dictionary, which Parquet would build only to abandon.
    pub unique_text: &'static [&'static str],
    /// Each commit records which (symbol, interval) series it changed, from
    /// which date, so a features build finds them without comparing rows.
    pub logs_changes: bool,
    schema: &'static LazyLock<SchemaRef>,
}

/// How a table's Parquet files are encoded (measurements in README "The lake").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// zstd level 1: for narrow tables written a little at a time.
    Compact,
    /// Floats and unique texts plain and uncompressed, other texts LZ4, small row
    /// groups: for tables rebuilt in bulk by every run (features, signals), where
    /// encoding time dominates the write.
    Fast,
}

impl TableSpec {
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(self.schema)
    }

    /// Columns compared to decide whether an existing row changed.
    pub fn value_columns(&self) -> Vec<&str> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|n| !self.key.contains(n) && !self.provenance.contains(n))
            .collect()
    }
}

/// UTC instants, at the microsecond precision Delta Lake stores.
pub fn utc_timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

static OHLCV_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(col::SYMBOL, DataType::Utf8, false),
        Field::new(col::INTERVAL, DataType::Utf8, false),
        Field::new(col::DATE, DataType::Date32, false),
        Field::new(col::TS, utc_timestamp(), false),
        Field::new(col::OPEN, DataType::Float64, false),
        Field::new(col::HIGH, DataType::Float64, false),
        Field::new(col::LOW, DataType::Float64, false),
        Field::new(col::CLOSE, DataType::Float64, false),
        Field::new(col::ADJ_CLOSE, DataType::Float64, false),
        Field::new(col::VOLUME, DataType::Int64, false),
        Field::new(col::SOURCE, DataType::Utf8, false),
        Field::new(col::INGESTED_AT, utc_timestamp(), false),
    ]))
});

/// Price bars; `date` is the exchange-local trading date, `ts` the bar start in UTC.
pub static OHLCV: TableSpec = TableSpec {
    name: "ohlcv",
    // `ts` tells intraday bars of one date apart; a daily bar's `ts` is its date
    // at 00:00 UTC, so for daily bars the key is (symbol, interval, date).
    key: &[col::SYMBOL, col::INTERVAL, col::DATE, col::TS],
    provenance: &[col::SOURCE, col::INGESTED_AT],
    storage: Storage::Compact,
    unique_text: &[],
    logs_changes: true,
    schema: &OHLCV_SCHEMA,
};

static CORPORATE_ACTIONS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(col::SYMBOL, DataType::Utf8, false),
        Field::new(col::DATE, DataType::Date32, false),
        Field::new(col::KIND, DataType::Utf8, false),
        Field::new(col::VALUE, DataType::Float64, false),
        Field::new(col::SOURCE, DataType::Utf8, false),
        Field::new(col::INGESTED_AT, utc_timestamp(), false),
    ]))
});

/// Dividends and splits on their ex-date. `value` is the cash amount per share for
/// a dividend and the ratio new/old shares for a split (4.0 for a 4-for-1).
pub static CORPORATE_ACTIONS: TableSpec = TableSpec {
    name: "corporate_actions",
    key: &[col::SYMBOL, col::DATE, col::KIND],
    provenance: &[col::SOURCE, col::INGESTED_AT],
    storage: Storage::Compact,
    unique_text: &[],
    logs_changes: false,
    schema: &CORPORATE_ACTIONS_SCHEMA,
};

/// Corporate action kinds as stored in `corporate_actions.kind`.
pub mod action_kind {
    pub const DIVIDEND: &str = "dividend";
    pub const SPLIT: &str = "split";
}

static FEATURES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new(col::SYMBOL, DataType::Utf8, false),
        Field::new(col::INTERVAL, DataType::Utf8, false),
        Field::new(col::DATE, DataType::Date32, false),
        Field::new(col::ADJ_OPEN, DataType::Float64, false),
        Field::new(col::ADJ_HIGH, DataType::Float64, false),
        Field::new(col::ADJ_LOW, DataType::Float64, false),
        Field::new(col::ADJ_CLOSE, DataType::Float64, false),
        Field::new(col::VOLUME, DataType::Int64, false),
    ];
    fields.extend(
        FEATURE_COLUMNS
            .iter()
            .map(|name| Field::new(*name, DataType::Float64, true)),
    );
    fields.push(Field::new(col::OHLCV_VERSION, DataType::Int64, false));
    fields.push(Field::new(col::COMPUTED_AT, utc_timestamp(), false));
    Arc::new(Schema::new(fields))
});

/// Adjusted prices and indicators per bar; a feature is null where its lookback
/// is not yet met. `ohlcv_version` is the `ohlcv` table version the row was
/// computed from, which lets a build skip symbols that did not change since.
pub static FEATURES: TableSpec = TableSpec {
    name: "features",
    key: &[col::SYMBOL, col::INTERVAL, col::DATE],
    provenance: &[col::OHLCV_VERSION, col::COMPUTED_AT],
    storage: Storage::Fast,
    unique_text: &[],
    logs_changes: false,
    schema: &FEATURES_SCHEMA,
};

static SIGNALS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(col::SYMBOL, DataType::Utf8, false),
        Field::new(col::INTERVAL, DataType::Utf8, false),
        Field::new(col::DATE, DataType::Date32, false),
        Field::new(col::STRATEGY, DataType::Utf8, false),
        Field::new(col::SIDE, DataType::Utf8, false),
        Field::new(col::STRENGTH, DataType::Float64, false),
        Field::new(col::PRICE, DataType::Float64, false),
        Field::new(col::INPUTS, DataType::Utf8, false),
        Field::new(col::RUN_ID, DataType::Utf8, false),
        Field::new(col::GENERATED_AT, utc_timestamp(), false),
    ]))
});

/// Trading signals: `side` is BUY or SELL, `strength` in [0, 1], `price` the
/// adjusted close of the bar, `inputs` a JSON object of the feature values that
/// fired it (this bar's and the previous bar's).
pub static SIGNALS: TableSpec = TableSpec {
    name: "signals",
    key: &[col::SYMBOL, col::INTERVAL, col::DATE, col::STRATEGY],
    provenance: &[col::RUN_ID, col::GENERATED_AT],
    storage: Storage::Fast,
    unique_text: &[col::INPUTS],
    logs_changes: false,
    schema: &SIGNALS_SCHEMA,
};

/// Signal sides as stored in `signals.side`.
pub mod side {
    pub const BUY: &str = "BUY";
    pub const SELL: &str = "SELL";
}

/// Every table bf writes, in data-flow order.
pub static ALL: [&TableSpec; 4] = [&OHLCV, &CORPORATE_ACTIONS, &FEATURES, &SIGNALS];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_columns_exclude_key_and_provenance() {
        assert_eq!(
            OHLCV.value_columns(),
            ["open", "high", "low", "close", "adj_close", "volume"]
        );
        assert_eq!(CORPORATE_ACTIONS.value_columns(), ["value"]);
        assert_eq!(FEATURES.value_columns().len(), 5 + FEATURE_COLUMNS.len());
    }
}
