//! Index names and the index templates bf installs: one index per mirrored
//! table, its mapping derived from the table's Arrow schema, `dynamic: strict`
//! so that a document with an unknown field is refused rather than guessed.

use bf_core::tables::{FEATURES, OHLCV, SIGNALS, TableSpec, col};
use datafusion::arrow::datatypes::DataType;
use serde_json::{Map, Value, json};

/// The lake tables mirrored in Elasticsearch, in the order they are synced.
pub static MIRRORED: [&TableSpec; 3] = [&SIGNALS, &FEATURES, &OHLCV];

/// The field holding the bar's time, for Kibana's time filter.
pub const TIMESTAMP: &str = "@timestamp";
/// The lake version a document was written from.
pub const LAKE_VERSION: &str = "lake_version";
/// The sync that last wrote a document: after a full sync, documents of
/// other syncs are stale.
pub const SYNC_RUN: &str = "sync_run";

pub fn index_name(prefix: &str, table: &str) -> String {
    format!("{prefix}-{table}")
}

/// The index holding, per table and lake, the last lake version synced.
pub fn sync_index(prefix: &str) -> String {
    format!("{prefix}-sync")
}

/// The index template of `spec`'s index.
pub fn table_template(prefix: &str, spec: &TableSpec) -> Value {
    let mut properties = Map::new();
    properties.insert(TIMESTAMP.into(), json!({"type": "date"}));
    properties.insert(LAKE_VERSION.into(), json!({"type": "long"}));
    properties.insert(SYNC_RUN.into(), json!({"type": "keyword"}));
    for field in spec.schema().fields() {
        let mapping = if field.name() == col::INPUTS {
            // The feature values that fired a signal, by name: numbers.
            json!({"type": "object", "dynamic": true})
        } else {
            match field.data_type() {
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
                    json!({"type": "keyword"})
                }
                DataType::Float64 | DataType::Float32 => json!({"type": "double"}),
                DataType::Int64 | DataType::Int32 => json!({"type": "long"}),
                DataType::Date32 => json!({"type": "date", "format": "strict_date"}),
                DataType::Timestamp(_, _) => json!({"type": "date"}),
                other => unreachable!("{}.{} has type {other}", spec.name, field.name()),
            }
        };
        properties.insert(field.name().clone(), mapping);
    }
    template(
        &index_name(prefix, spec.name),
        json!({"dynamic": "strict", "properties": properties}),
    )
}

/// The fields of `spec`'s documents, as its template maps them.
#[cfg(test)]
pub(crate) fn template_fields(spec: &TableSpec) -> std::collections::BTreeSet<String> {
    table_template("bf", spec)["template"]["mappings"]["properties"]
        .as_object()
        .expect("a template has properties")
        .keys()
        .cloned()
        .collect()
}

pub fn sync_template(prefix: &str) -> Value {
    template(
        &sync_index(prefix),
        json!({
            "dynamic": "strict",
            "properties": {
                "table": {"type": "keyword"},
                "lake": {"type": "keyword"},
                LAKE_VERSION: {"type": "long"},
                "synced_at": {"type": "date"},
            }
        }),
    )
}

fn template(index: &str, mappings: Value) -> Value {
    json!({
        "index_patterns": [index],
        "priority": 200,
        "template": {
            "settings": {"number_of_shards": 1},
            "mappings": mappings,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_map_every_column_and_refuse_unknown_fields() {
        let signals = table_template("bf", &SIGNALS);
        assert_eq!(signals["index_patterns"], json!(["bf-signals"]));
        let mappings = &signals["template"]["mappings"];
        assert_eq!(mappings["dynamic"], "strict");
        let properties = mappings["properties"].as_object().unwrap();
        assert_eq!(properties.len(), SIGNALS.schema().fields().len() + 3);
        assert_eq!(properties["symbol"]["type"], "keyword");
        assert_eq!(properties["strength"]["type"], "double");
        assert_eq!(properties["date"]["type"], "date");
        assert_eq!(properties["inputs"]["type"], "object");
        assert_eq!(properties[TIMESTAMP]["type"], "date");
        let ohlcv = table_template("x", &OHLCV);
        assert_eq!(
            ohlcv["template"]["mappings"]["properties"]["volume"]["type"],
            "long"
        );
    }
}
