//! The OpenAPI document and the running service must agree: every request example in
//! `openapi/clickstream.yaml` is posted to the collector and must get the status under which the
//! spec lists the response example of the same name, with the same outcome; the spec's enums
//! must equal the contract's; and one example must use every field the spec declares, so a field
//! the service does not know (it refuses unknown fields) cannot hide in the spec.

#![allow(clippy::unwrap_used)] // setup helpers outside #[test] fns unwrap too: a failed setup fails the test

mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use common::TestApp;
use event_model::{EventType, Platform};
use serde_json::Value;

fn spec() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/clickstream.yaml");
    let text = std::fs::read_to_string(path).expect("openapi/clickstream.yaml exists");
    serde_yaml_ng::from_str(&text).expect("the spec is valid YAML")
}

fn resolve<'a>(spec: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(spec, spec.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {reference}")))
        }
        None => node,
    }
}

/// Status → response examples of `POST {path}`.
fn response_examples(spec: &Value, path: &str) -> Vec<(StatusCode, String, Value)> {
    let pointer = format!("/paths/{}/post/responses", path.replace('/', "~1"));
    let responses = spec.pointer(&pointer).unwrap().as_object().unwrap();
    let mut found = Vec::new();
    for (status, response) in responses {
        let response = resolve(spec, response);
        let Some(examples) = response.pointer("/content/application~1json/examples").and_then(Value::as_object) else {
            continue;
        };
        for (name, example) in examples {
            let status = StatusCode::from_u16(status.parse().unwrap()).unwrap();
            found.push((status, name.clone(), example["value"].clone()));
        }
    }
    found
}

fn error_summary(body: &Value) -> BTreeSet<(Option<u64>, String, String)> {
    let list = body.get("errors").or_else(|| body.get("rejected")).and_then(Value::as_array);
    list.into_iter()
        .flatten()
        .map(|e| {
            (
                e["index"].as_u64(),
                e["field"].as_str().unwrap_or_default().to_owned(),
                e["code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_request_example_gets_its_documented_status_and_outcome() {
    let spec = spec();
    let paths: Vec<String> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, item)| item.pointer("/post/requestBody/content/application~1json/examples").is_some())
        .map(|(path, _)| path.clone())
        .collect();
    assert!(paths.len() >= 6, "the ingestion and Segment routes all show examples: {paths:?}");
    let mut checked = 0;
    for path in &paths {
        let content = format!("/paths/{}/post/requestBody/content/application~1json", path.replace('/', "~1"));
        // Schema-valid examples, and the ones that break the schema on purpose.
        let mut requests = spec.pointer(&format!("{content}/examples")).unwrap().as_object().unwrap().clone();
        if let Some(invalid) = spec.pointer(&format!("{content}/x-invalid-examples")).and_then(Value::as_object) {
            requests.extend(invalid.clone());
        }
        let responses = response_examples(&spec, path);
        for (name, example) in &requests {
            checked += 1;
            let matching: Vec<_> = responses.iter().filter(|(_, n, _)| n == name).collect();
            assert_eq!(matching.len(), 1, "request example {name} needs exactly one response example of the same name");
            let (status, _, expected) = matching[0];
            let mut body = example["value"].clone();
            if let Some(repeat) = example.get("x-repeat-events").and_then(Value::as_u64) {
                let first = body["events"][0].clone();
                body["events"] = Value::Array(vec![first; repeat as usize]);
            }
            let app = TestApp::spool();
            let request = axum::http::Request::post(path.as_str())
                .header("content-type", "application/json")
                .header("x-write-key", common::KEY)
                .body(axum::body::Body::from(body.to_string()))
                .unwrap();
            let answer = app.send(request).await;
            assert_eq!(answer.status, *status, "{path} example {name}: {}", answer.json);
            if let Some(accepted) = expected.get("accepted") {
                assert_eq!(&answer.json["accepted"], accepted, "example {name}");
                let ids = expected["event_ids"].as_array().unwrap();
                assert_eq!(answer.json["event_ids"].as_array().unwrap().len(), ids.len(), "example {name}");
            }
            if let Some(error) = expected.get("error") {
                assert_eq!(&answer.json["error"], error, "example {name}");
            }
            assert_eq!(error_summary(&answer.json), error_summary(expected), "example {name}");
        }
    }
    assert!(checked >= 10, "only {checked} examples were checked");
}

#[test]
fn the_spec_enums_are_the_contracts() {
    let spec = spec();
    let spec_types: BTreeSet<String> = spec
        .pointer("/components/schemas/EventType/enum")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let contract: BTreeSet<String> = EventType::ALL.iter().map(|t| t.as_str().to_owned()).collect();
    assert_eq!(spec_types, contract);
    let mapping: BTreeSet<String> = spec
        .pointer("/components/schemas/TrackerEvent/discriminator/mapping")
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(mapping, contract, "every event type needs a discriminator mapping");
    let platforms: BTreeSet<String> = spec
        .pointer("/components/schemas/Context/properties/platform/enum")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let contract: BTreeSet<String> = [Platform::Web, Platform::Ios, Platform::Android, Platform::Server]
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    assert_eq!(platforms, contract);
}

/// Every property path the spec declares under EventFields (objects descended into).
fn declared_paths(spec: &Value, schema: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    let schema = resolve(spec, schema);
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return };
    for (name, child) in properties {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        out.insert(path.clone());
        if name != "properties" {
            declared_paths(spec, child, &path, out);
        }
    }
}

fn used_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Some(object) = value.as_object() {
        for (name, child) in object {
            let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
            out.insert(path.clone());
            if name != "properties" {
                used_paths(child, &path, out);
            }
        }
    }
}

#[test]
fn the_every_field_example_covers_every_declared_field() {
    let spec = spec();
    let mut declared = BTreeSet::new();
    declared_paths(&spec, spec.pointer("/components/schemas/EventFields").unwrap(), "", &mut declared);
    let example = spec
        .pointer("/paths/~1v1~1events/post/requestBody/content/application~1json/examples/every_field/value")
        .unwrap();
    let mut used = BTreeSet::new();
    used_paths(example, "", &mut used);
    let missing: Vec<_> = declared.difference(&used).collect();
    assert!(missing.is_empty(), "the every_field example does not use {missing:?}");
}
