//! Every JSON answer in the generated OpenAPI document is a typed schema, not
//! a bare `{"type": "object"}`: a client generated from the document (and
//! schemathesis's response checks) can then hold the server to each field.
//! The walk below goes over every operation's responses (2xx and errors
//! alike), follows `$ref`s into the components, and looks inside arrays.

use serde_json::{Value, json};

/// The schema `schema` stands for, following a `#/components/schemas/…` ref.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(target) => {
            let name = target.trim_start_matches("#/components/schemas/");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Whether a schema says nothing about its object: an object (or no type at
/// all) without properties, composition or a typed map.
fn is_untyped_object(doc: &Value, schema: &Value) -> bool {
    let schema = resolve(doc, schema);
    if schema.is_null() {
        return true;
    }
    if schema["type"] == "array" {
        return is_untyped_object(doc, &schema["items"]);
    }
    let composed = ["allOf", "oneOf", "anyOf"]
        .iter()
        .any(|k| schema[*k].as_array().is_some_and(|a| !a.is_empty()));
    let has_properties = schema["properties"]
        .as_object()
        .is_some_and(|p| !p.is_empty());
    let typed_map = schema["additionalProperties"].is_object();
    let is_object = schema["type"] == "object"
        || schema["type"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("object")))
        || schema.get("type").is_none();
    is_object && !composed && !has_properties && !typed_map && schema.get("enum").is_none()
}

/// `METHOD path status` of every JSON response with an untyped body.
fn untyped_answers(doc: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                let Some(content) = response["content"].as_object() else {
                    continue;
                };
                for (media, body) in content {
                    if media.contains("json") && is_untyped_object(doc, &body["schema"]) {
                        found.push(format!("{} {path} {status}", method.to_uppercase()));
                    }
                }
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_json_answer_in_the_document_is_typed() {
    let doc = serde_json::to_value(portal_api::openapi_document()).expect("document as JSON");
    let n_operations: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().map_or(0, |m| m.len()))
        .sum();
    assert!(
        n_operations > 30,
        "the whole API: {n_operations} operations"
    );
    let untyped = untyped_answers(&doc);
    assert!(
        untyped.is_empty(),
        "answers documented as a bare object (give each a ToSchema type in \
         portal-api/src/contract/):\n{}",
        untyped.join("\n")
    );
}

#[test]
fn the_walk_finds_a_bare_object_wherever_it_hides() {
    let doc = json!({
        "paths": {
            "/typed": {"get": {"responses": {
                "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                "204": {"description": "no body"},
            }}},
            "/bare": {"post": {"responses": {
                "201": {"content": {"application/json": {"schema": {"type": "object"}}}},
            }}},
            "/list": {"get": {"responses": {
                "200": {"content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Loose"}}}}},
            }}},
            "/text": {"get": {"responses": {
                "200": {"content": {"text/plain": {"schema": {"type": "string"}}}},
            }}},
        },
        "components": {"schemas": {
            "Thing": {"type": "object", "properties": {"id": {"type": "string"}}},
            "Loose": {"type": "object"},
        }},
    });
    assert_eq!(
        untyped_answers(&doc),
        ["GET /list 200", "POST /bare 201"],
        "a bare object inline, and one behind a ref inside an array"
    );
}
