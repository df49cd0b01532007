//! Saved objects as Kibana exports them: one JSON object per line, each with
//! a `type`, an `id`, `attributes` and `references` to other objects.

use serde_json::Value;

use crate::SinkError;
use crate::elasticsearch::{DEFAULT_INDEX_PREFIX, index_name};

/// The Kibana version `infra/` runs. Kibana refuses objects exported by a
/// newer version, so no version in the bundled file may exceed it (a test
/// checks).
pub const KIBANA_VERSION: &str = "8.15.3";

/// The name the bundled objects are sent under: Kibana wants `.ndjson`.
pub const BUNDLED_FILE_NAME: &str = "bf.ndjson";

const BUNDLED: &str = include_str!("../../../../infra/kibana/bf.ndjson");

/// A file of saved objects, each line checked to be an object with a type
/// and an id.
#[derive(Debug, Clone)]
pub struct SavedObjects {
    file: String,
    objects: Vec<Value>,
}

impl SavedObjects {
    /// The data views and dashboard bf ships, for indices named with the
    /// default prefix.
    pub fn bundled() -> Self {
        Self::parse(BUNDLED, BUNDLED_FILE_NAME).expect("the bundled saved objects parse")
    }

    /// Reads `text`, the content of `file`; an error names the line at fault.
    pub fn parse(text: &str, file: &str) -> Result<Self, SinkError> {
        let invalid = |line: usize, message: String| SinkError::SavedObjects {
            file: file.to_string(),
            line,
            message,
        };
        let mut objects = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let object: Value =
                serde_json::from_str(line).map_err(|e| invalid(index + 1, e.to_string()))?;
            for field in ["type", "id"] {
                if !object.get(field).is_some_and(Value::is_string) {
                    return Err(invalid(index + 1, format!("no \"{field}\" string")));
                }
            }
            objects.push(object);
        }
        if objects.is_empty() {
            return Err(invalid(1, "no saved object in the file".into()));
        }
        Ok(Self {
            file: file.to_string(),
            objects,
        })
    }

    /// The same objects with each data view over a bf index
    /// (`bf-signals`, ...) pointed at `prefix`'s index instead.
    pub fn with_index_prefix(mut self, prefix: &str) -> Self {
        let default_prefix = format!("{DEFAULT_INDEX_PREFIX}-");
        for object in &mut self.objects {
            if object["type"] != "index-pattern" {
                continue;
            }
            let title = &mut object["attributes"]["title"];
            if let Some(table) = title.as_str().and_then(|t| t.strip_prefix(&default_prefix)) {
                *title = Value::String(index_name(prefix, table));
            }
        }
        self
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn objects(&self) -> &[Value] {
        &self.objects
    }

    pub fn to_ndjson(&self) -> String {
        let mut text = String::new();
        for object in &self.objects {
            text.push_str(&object.to_string());
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use bf_core::tables::{FEATURES, OHLCV, SIGNALS};

    use super::*;
    use crate::elasticsearch::template_fields;

    /// (type, id) of every object in the bundled file.
    fn bundled_ids() -> BTreeSet<(String, String)> {
        SavedObjects::bundled()
            .objects()
            .iter()
            .map(|o| {
                (
                    o["type"].as_str().unwrap().into(),
                    o["id"].as_str().unwrap().into(),
                )
            })
            .collect()
    }

    /// A string attribute that holds JSON, parsed.
    fn embedded(value: &Value) -> Value {
        serde_json::from_str(value.as_str().expect("a JSON string")).expect("embedded JSON parses")
    }

    fn reference<'a>(object: &'a Value, name: &str) -> &'a Value {
        object["references"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{}: no reference named {name}", object["id"]))
    }

    #[test]
    fn every_line_is_an_object_and_every_id_unique() {
        let objects = SavedObjects::bundled();
        assert_eq!(bundled_ids().len(), objects.objects().len());
        let types: BTreeSet<&str> = objects
            .objects()
            .iter()
            .map(|o| o["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            BTreeSet::from(["dashboard", "index-pattern", "search", "visualization"])
        );
        assert!(
            BUNDLED.ends_with('\n') && !BUNDLED.contains("\n\n"),
            "one object per line"
        );
    }

    #[test]
    fn every_reference_resolves_within_the_file() {
        let ids = bundled_ids();
        for object in SavedObjects::bundled().objects() {
            for reference in object["references"].as_array().unwrap() {
                let target = (
                    reference["type"].as_str().unwrap().to_string(),
                    reference["id"].as_str().unwrap().to_string(),
                );
                assert!(
                    ids.contains(&target),
                    "{}: {reference} resolves to nothing",
                    object["id"]
                );
            }
            let attributes = &object["attributes"];
            if let Some(meta) = attributes["kibanaSavedObjectMeta"]["searchSourceJSON"].as_str() {
                let source: Value = serde_json::from_str(meta).unwrap();
                if let Some(name) = source["indexRefName"].as_str() {
                    assert_eq!(reference(object, name)["type"], "index-pattern");
                }
            }
            if object["type"] == "dashboard" {
                for panel in embedded(&attributes["panelsJSON"]).as_array().unwrap() {
                    let name = format!(
                        "{}:{}",
                        panel["panelIndex"].as_str().unwrap(),
                        panel["panelRefName"].as_str().unwrap()
                    );
                    assert_eq!(reference(object, &name)["type"], panel["type"]);
                }
                let controls = embedded(&attributes["controlGroupInput"]["panelsJSON"]);
                for id in controls.as_object().unwrap().keys() {
                    let name = format!("controlGroup_{id}:optionsListDataView");
                    assert_eq!(reference(object, &name)["type"], "index-pattern");
                }
            }
        }
    }

    /// Each data view's title names a bf index, and every field a view,
    /// search or control uses is in that index's template.
    #[test]
    fn every_field_used_exists_in_the_index_it_reads() {
        let objects = SavedObjects::bundled();
        let fields_of_view: BTreeMap<String, BTreeSet<String>> = objects
            .objects()
            .iter()
            .filter(|o| o["type"] == "index-pattern")
            .map(|view| {
                let title = view["attributes"]["title"].as_str().unwrap();
                let spec = [&SIGNALS, &FEATURES, &OHLCV]
                    .into_iter()
                    .find(|spec| index_name(DEFAULT_INDEX_PREFIX, spec.name) == title)
                    .unwrap_or_else(|| panic!("data view {title} is not a bf index"));
                let fields = template_fields(spec);
                let time = view["attributes"]["timeFieldName"].as_str().unwrap();
                assert!(fields.contains(time), "{title}: no time field {time}");
                (view["id"].as_str().unwrap().to_string(), fields)
            })
            .collect();
        let index_of = |object: &Value, name: &str| -> &BTreeSet<String> {
            &fields_of_view[reference(object, name)["id"].as_str().unwrap()]
        };
        let mut checked = 0;
        for object in objects.objects() {
            let attributes = &object["attributes"];
            let used: Vec<(String, &BTreeSet<String>)> = match object["type"].as_str().unwrap() {
                "visualization" => {
                    let fields = index_of(object, "kibanaSavedObjectMeta.searchSourceJSON.index");
                    embedded(&attributes["visState"])["aggs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter_map(|agg| agg["params"]["field"].as_str())
                        .map(|field| (field.to_string(), fields))
                        .collect()
                }
                "search" => {
                    let fields = index_of(object, "kibanaSavedObjectMeta.searchSourceJSON.index");
                    let columns = attributes["columns"].as_array().unwrap().iter();
                    let sorts = attributes["sort"].as_array().unwrap().iter().map(|s| &s[0]);
                    columns
                        .chain(sorts)
                        .map(|field| (field.as_str().unwrap().to_string(), fields))
                        .collect()
                }
                "dashboard" => embedded(&attributes["controlGroupInput"]["panelsJSON"])
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(id, control)| {
                        let name = format!("controlGroup_{id}:optionsListDataView");
                        let field = control["explicitInput"]["fieldName"].as_str().unwrap();
                        (field.to_string(), index_of(object, &name))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for (field, fields) in used {
                assert!(
                    fields.contains(&field),
                    "{}: no field {field}",
                    object["id"]
                );
                checked += 1;
            }
        }
        assert!(checked >= 15, "{checked} fields checked");
    }

    #[test]
    fn no_version_is_newer_than_the_kibana_infra_runs() {
        let version = |text: &str| -> Vec<u32> {
            text.split('.').map(|part| part.parse().unwrap()).collect()
        };
        let pinned = version(KIBANA_VERSION);
        for object in SavedObjects::bundled().objects() {
            let mut versions = vec![
                object["coreMigrationVersion"].as_str().unwrap(),
                object["typeMigrationVersion"].as_str().unwrap(),
            ];
            let panels = object["type"] == "dashboard";
            let panels = panels.then(|| embedded(&object["attributes"]["panelsJSON"]));
            for panel in panels.iter().flat_map(|p| p.as_array().unwrap()) {
                versions.push(panel["version"].as_str().unwrap());
            }
            for text in versions {
                assert!(
                    version(text) <= pinned,
                    "{}: {text} is newer than {KIBANA_VERSION}",
                    object["id"]
                );
            }
        }
    }

    #[test]
    fn another_index_prefix_renames_the_data_views_only() {
        let objects = SavedObjects::bundled().with_index_prefix("desk2");
        let titles: BTreeSet<&str> = objects
            .objects()
            .iter()
            .filter(|o| o["type"] == "index-pattern")
            .map(|o| o["attributes"]["title"].as_str().unwrap())
            .collect();
        assert_eq!(
            titles,
            BTreeSet::from(["desk2-features", "desk2-ohlcv", "desk2-signals"])
        );
        let dashboard = objects
            .objects()
            .iter()
            .find(|o| o["type"] == "dashboard")
            .unwrap();
        assert_eq!(dashboard["attributes"]["title"], "bf signals");
    }

    #[test]
    fn a_bad_line_is_named() {
        let text = "{\"type\":\"dashboard\",\"id\":\"a\"}\n{\"type\":\"dashboard\"}\n";
        let error = SavedObjects::parse(text, "mine.ndjson")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("mine.ndjson:2") && error.contains("\"id\""),
            "{error}"
        );
        let error = SavedObjects::parse("{not json\n", "x.ndjson")
            .unwrap_err()
            .to_string();
        assert!(error.contains("x.ndjson:1"), "{error}");
        assert!(SavedObjects::parse("\n", "empty.ndjson").is_err());
    }
}
