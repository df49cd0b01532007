//! A fault-injecting proxy in front of an Elasticsearch-API server, for the
//! failures the test servers cannot produce: bulk items refused with 429 (the
//! others applied), whole requests refused with 429 or 503, and answers lost
//! after the server applied the request (the connection closed instead).
//! Faults are drawn from a seeded generator, so a run can be repeated.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::serve::{Serving, serve};

/// Shares of requests (or bulk items) that meet each fault.
#[derive(Debug, Clone, Copy)]
pub struct EsFaults {
    /// Bulk items answered 429 without reaching the server.
    pub item_rejections: f64,
    /// Requests answered 429 or 503 without reaching the server.
    pub request_failures: f64,
    /// Requests the server applied whose answer is dropped.
    pub dropped_answers: f64,
    pub seed: u64,
}

/// What the proxy did so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FaultCounts {
    pub requests: usize,
    pub items_rejected: usize,
    pub requests_failed: usize,
    pub answers_dropped: usize,
}

#[derive(Default)]
struct Counters {
    requests: AtomicUsize,
    items_rejected: AtomicUsize,
    requests_failed: AtomicUsize,
    answers_dropped: AtomicUsize,
}

struct State {
    upstream: String,
    faults: Mutex<EsFaults>,
    rng: Mutex<StdRng>,
    http: reqwest::Client,
    counters: Counters,
}

/// The running proxy; it stops when dropped.
pub struct EsFaultProxy {
    serving: Serving,
    state: Arc<State>,
}

impl std::fmt::Debug for EsFaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsFaultProxy")
            .field("address", &self.serving.address)
            .finish()
    }
}

impl EsFaultProxy {
    /// Starts on a free port of 127.0.0.1, on a thread of its own.
    pub fn spawn(upstream: &str, faults: EsFaults) -> std::io::Result<Self> {
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            faults: Mutex::new(faults),
            rng: Mutex::new(StdRng::seed_from_u64(faults.seed)),
            http: reqwest::Client::new(),
            counters: Counters::default(),
        });
        let serving = serve(0, Arc::clone(&state), |state, request| async move {
            handle(&state, request).await
        })?;
        Ok(Self { serving, state })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.serving.address)
    }

    /// Changes the faults from now on (a server going down, coming back).
    pub fn set_faults(&self, faults: EsFaults) {
        *self.state.faults.lock().expect("faults lock") = faults;
    }

    pub fn counts(&self) -> FaultCounts {
        let c = &self.state.counters;
        FaultCounts {
            requests: c.requests.load(Ordering::SeqCst),
            items_rejected: c.items_rejected.load(Ordering::SeqCst),
            requests_failed: c.requests_failed.load(Ordering::SeqCst),
            answers_dropped: c.answers_dropped.load(Ordering::SeqCst),
        }
    }
}

fn faults(state: &State) -> EsFaults {
    *state.faults.lock().expect("faults lock")
}

fn roll(state: &State) -> f64 {
    state.rng.lock().expect("rng lock").random::<f64>()
}

async fn handle(
    state: &State,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let counters = &state.counters;
    counters.requests.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    if roll(state) < faults(state).request_failures {
        let failed = counters.requests_failed.fetch_add(1, Ordering::SeqCst);
        let status = if failed.is_multiple_of(2) {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return Ok(json_response(
            status,
            &json!({"error": {"type": "fault_proxy", "reason": "refused by the fault proxy"}, "status": status.as_u16()}),
        ));
    }
    let is_bulk = parts.method == hyper::Method::POST && parts.uri.path().ends_with("/_bulk");
    let (forwarded, rejected) = if is_bulk {
        reject_items(state, &body)
    } else {
        (body.to_vec(), Vec::new())
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = state
        .http
        .request(parts.method.clone(), format!("{}{path}", state.upstream));
    if let Some(content_type) = parts.headers.get(hyper::header::CONTENT_TYPE) {
        upstream = upstream.header(reqwest::header::CONTENT_TYPE, content_type.as_bytes());
    }
    let (status, answer) = if is_bulk && forwarded.is_empty() {
        (
            StatusCode::OK,
            Bytes::from_static(br#"{"took":0,"errors":false,"items":[]}"#),
        )
    } else {
        let response = upstream
            .body(forwarded)
            .send()
            .await
            .map_err(std::io::Error::other)?;
        let status = StatusCode::from_u16(response.status().as_u16()).expect("a status");
        (
            status,
            response.bytes().await.map_err(std::io::Error::other)?,
        )
    };
    if roll(state) < faults(state).dropped_answers {
        counters.answers_dropped.fetch_add(1, Ordering::SeqCst);
        return Err(std::io::Error::other("answer dropped by the fault proxy"));
    }
    if rejected.is_empty() {
        let mut response = Response::new(Full::new(answer));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        return Ok(response);
    }
    counters.items_rejected.fetch_add(
        rejected.iter().filter(|r| r.is_some()).count(),
        Ordering::SeqCst,
    );
    let upstream_answer: Value = serde_json::from_slice(&answer).map_err(std::io::Error::other)?;
    Ok(json_response(
        status,
        &merge_items(upstream_answer, rejected),
    ))
}

/// One bulk item: its action (`index`, `delete`, ...), id and lines.
struct Item {
    action: String,
    id: Value,
    index: Value,
    lines: Vec<u8>,
}

fn bulk_items(body: &[u8]) -> Vec<Item> {
    let mut lines = body.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let mut items = Vec::new();
    while let Some(action_line) = lines.next() {
        let action: Value = serde_json::from_slice(action_line).unwrap_or(Value::Null);
        let Some((name, target)) = action.as_object().and_then(|a| a.iter().next()) else {
            break;
        };
        let mut item_lines = action_line.to_vec();
        item_lines.push(b'\n');
        if name != "delete"
            && let Some(document) = lines.next()
        {
            item_lines.extend_from_slice(document);
            item_lines.push(b'\n');
        }
        items.push(Item {
            action: name.clone(),
            id: target["_id"].clone(),
            index: target["_index"].clone(),
            lines: item_lines,
        });
    }
    items
}

/// The body without the items refused here, and per original item the
/// refusal to answer in its place (`None`: forwarded).
fn reject_items(state: &State, body: &[u8]) -> (Vec<u8>, Vec<Option<Value>>) {
    let mut forwarded = Vec::new();
    let mut answers = Vec::new();
    for item in bulk_items(body) {
        if roll(state) < faults(state).item_rejections {
            answers.push(Some(json!({item.action: {
                "_index": item.index,
                "_id": item.id,
                "status": 429,
                "error": {"type": "es_rejected_execution_exception", "reason": "rejected by the fault proxy"},
            }})));
        } else {
            forwarded.extend_from_slice(&item.lines);
            answers.push(None);
        }
    }
    if answers.iter().all(Option::is_none) {
        return (body.to_vec(), Vec::new());
    }
    (forwarded, answers)
}

fn merge_items(mut upstream: Value, answers: Vec<Option<Value>>) -> Value {
    let mut applied = upstream["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter();
    let items: Vec<Value> = answers
        .into_iter()
        .map(|answer| answer.unwrap_or_else(|| applied.next().unwrap_or(Value::Null)))
        .collect();
    upstream["items"] = Value::Array(items);
    upstream["errors"] = Value::Bool(true);
    upstream
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
