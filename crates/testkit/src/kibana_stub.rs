//! A stand-in for Kibana's saved-objects import API, since no Kibana runs
//! here. It enforces what the documentation asks of a client — `POST
//! /api/saved_objects/_import`, the `kbn-xsrf` header, a multipart field
//! `file` whose name ends `.ndjson`, credentials when configured — and
//! answers in Kibana's shape: `success`, `successCount`, `successResults`
//! and per-object `errors` (missing references, conflicts without
//! `overwrite=true`, unknown types, objects from a newer Kibana), and
//! `GET /api/status` (available, once the not-ready answers are spent).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::serve::{Serving, serve};

/// The Kibana version the stub claims: objects from newer ones are refused.
pub const STUB_KIBANA_VERSION: &str = "8.15.3";

const KNOWN_TYPES: [&str; 6] = [
    "index-pattern",
    "visualization",
    "search",
    "dashboard",
    "lens",
    "config",
];

/// How the stub behaves.
#[derive(Debug, Clone, Default)]
pub struct KibanaStubOptions {
    /// User and password every request must carry (basic authentication).
    pub basic_auth: Option<(String, String)>,
    /// Requests answered 503 "not ready yet" first, as a Kibana still starting.
    pub not_ready_answers: usize,
}

/// (type, id) → the saved object.
pub type StoredObjects = BTreeMap<(String, String), Value>;

struct State {
    options: KibanaStubOptions,
    not_ready_left: AtomicUsize,
    objects: Mutex<StoredObjects>,
}

/// The running stub; it stops when dropped.
pub struct KibanaStub {
    serving: Serving,
    state: Arc<State>,
}

impl std::fmt::Debug for KibanaStub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KibanaStub")
            .field("address", &self.serving.address)
            .finish()
    }
}

impl KibanaStub {
    /// Starts on a free port of 127.0.0.1, on a thread of its own.
    pub fn spawn(options: KibanaStubOptions) -> std::io::Result<Self> {
        let state = Arc::new(State {
            not_ready_left: AtomicUsize::new(options.not_ready_answers),
            options,
            objects: Mutex::new(BTreeMap::new()),
        });
        let serving = serve(0, Arc::clone(&state), |state, request| async move {
            Ok::<_, std::io::Error>(handle(&state, request).await)
        })?;
        Ok(Self { serving, state })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.serving.address)
    }

    /// The objects imported so far.
    pub fn objects(&self) -> StoredObjects {
        self.state.objects.lock().expect("objects lock").clone()
    }
}

/// Kibana's error body: `{"statusCode", "error", "message"}`.
fn refuse(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        &json!({
            "statusCode": status.as_u16(),
            "error": status.canonical_reason().unwrap_or(""),
            "message": message,
        }),
    )
}

async fn handle(state: &State, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    if state
        .not_ready_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "Kibana server is not ready yet",
        );
    }
    let (parts, body) = request.into_parts();
    if let Some((user, password)) = &state.options.basic_auth {
        let expected = format!(
            "Basic {}",
            BASE64_STANDARD.encode(format!("{user}:{password}"))
        );
        let given = parts.headers.get(hyper::header::AUTHORIZATION);
        if given.and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "[security_exception]: unable to authenticate user",
            );
        }
    }
    if parts.method == hyper::Method::GET && parts.uri.path() == "/api/status" {
        return json_response(
            StatusCode::OK,
            &json!({
                "name": "kibana-stub",
                "version": {"number": STUB_KIBANA_VERSION},
                "status": {"overall": {
                    "level": "available",
                    "summary": "All services and plugins are available",
                }},
            }),
        );
    }
    if parts.method != hyper::Method::POST || parts.uri.path() != "/api/saved_objects/_import" {
        return refuse(StatusCode::NOT_FOUND, "Not Found");
    }
    if !parts.headers.contains_key("kbn-xsrf") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Request must contain a kbn-xsrf header.",
        );
    }
    let overwrite = parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|pair| pair == "overwrite=true"));
    let content_type = parts
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type");
    };
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return refuse(StatusCode::BAD_REQUEST, "the body was cut off");
    };
    let file = match read_file_field(body, boundary).await {
        Ok(file) => file,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, &message),
    };
    let mut imported = Vec::new();
    for (index, line) in file
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str::<Value>(line) {
            Ok(object) => imported.push(object),
            Err(e) => {
                let message = format!("line {}: {e}", index + 1);
                return refuse(StatusCode::BAD_REQUEST, &message);
            }
        }
    }
    json_response(StatusCode::OK, &import(state, imported, overwrite))
}

/// The content of the multipart field `file`, whose name must end `.ndjson`.
async fn read_file_field(body: Bytes, boundary: String) -> Result<String, String> {
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    while let Some(field) = multipart.next_field().await.map_err(|e| e.to_string())? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or_default().to_string();
        if !name.ends_with(".ndjson") {
            let extension = name.rsplit_once('.').map_or("", |(_, e)| e);
            return Err(format!("Invalid file extension .{extension}"));
        }
        return field.text().await.map_err(|e| e.to_string());
    }
    Err("[request body.file]: expected value of type [Stream] but got [undefined]".into())
}

/// Kibana's per-object checks, then the answer.
fn import(state: &State, imported: Vec<Value>, overwrite: bool) -> Value {
    let mut stored = state.objects.lock().expect("objects lock");
    let key = |o: &Value| (text(&o["type"]), text(&o["id"]));
    let in_file: Vec<(String, String)> = imported.iter().map(key).collect();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for object in imported {
        let (object_type, id) = key(&object);
        let title = text(&object["attributes"]["title"]);
        let error = if !KNOWN_TYPES.contains(&object_type.as_str()) {
            Some(json!({"type": "unsupported_type"}))
        } else if let Some(version) = newer_version(&object) {
            Some(json!({
                "type": "unknown",
                "statusCode": 400,
                "message": format!("Document \"{id}\" belongs to a more recent version of Kibana [{version}] than {STUB_KIBANA_VERSION}"),
            }))
        } else if !overwrite && stored.contains_key(&(object_type.clone(), id.clone())) {
            Some(json!({"type": "conflict"}))
        } else {
            let missing: Vec<Value> = object["references"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| {
                    let target = (text(&r["type"]), text(&r["id"]));
                    !in_file.contains(&target) && !stored.contains_key(&target)
                })
                .map(|r| json!({"type": r["type"], "id": r["id"]}))
                .collect();
            (!missing.is_empty())
                .then(|| json!({"type": "missing_references", "references": missing}))
        };
        match error {
            Some(error) => errors.push(json!({
                "id": id, "type": object_type, "title": title,
                "meta": {"title": title}, "error": error,
            })),
            None => {
                results.push(json!({"type": object_type, "id": id, "meta": {"title": title}}));
                stored.insert((object_type, id), object);
            }
        }
    }
    json!({
        "success": errors.is_empty(),
        "successCount": results.len(),
        "successResults": results,
        "errors": errors,
    })
}

/// A migration version of `object` above the stub's Kibana, if any.
fn newer_version(object: &Value) -> Option<String> {
    let version =
        |text: &str| -> Vec<u32> { text.split('.').filter_map(|p| p.parse().ok()).collect() };
    let known = version(STUB_KIBANA_VERSION);
    // Dashboards count their own model versions (10.x from Kibana 8.10 on).
    let type_ceiling = if object["type"] == "dashboard" {
        vec![10, 2, 0]
    } else {
        known.clone()
    };
    let core = object["coreMigrationVersion"].as_str();
    let of_type = object["typeMigrationVersion"].as_str();
    core.filter(|v| version(v) > known)
        .or(of_type.filter(|v| version(v) > type_ceiling))
        .map(str::to_string)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
