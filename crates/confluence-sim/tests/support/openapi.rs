//! OpenAPI-driven response validation for the conformance tests.
//!
//! The specs are Atlassian's published OpenAPI 3.0 documents (vendored under
//! `tests/support/specs/`, provenance in `SOURCES.md` there). For one operation and status code
//! we take `content.application/json.schema`, convert it from OpenAPI 3.0's dialect to JSON
//! Schema 2020-12 and validate a response body against it:
//!
//! * `nullable: true` → `anyOf: [{type: null}, schema]`;
//! * `discriminator`, `xml`, `example`, `readOnly`, `writeOnly`, `deprecated`, `externalDocs`
//!   are dropped (annotations without assertion value here);
//! * `format` is asserted only for `date-time` (RFC 3339); `int32`, `uri`, `uuid`, … are dropped;
//! * `oneOf` becomes `anyOf`: Atlassian uses `oneOf` with overlapping branches that only a
//!   discriminator tells apart, which JSON Schema's "exactly one" would wrongly reject;
//! * `$ref: "#/components/…"` resolves against the converted `components` of the same spec,
//!   which are placed next to the schema in the root document.
//!
//! Error responses whose spec entry has no body schema are checked against the family's error
//! shape instead (see [`error_schema`]), so the harness never silently accepts a body.

#![allow(dead_code)] // each test binary uses a different subset of these helpers

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

/// Which published document an endpoint belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spec {
    /// Confluence Cloud REST v2 (`/wiki/api/v2/…`).
    V2,
    /// Confluence Cloud REST v1 (`/wiki/rest/api/…`).
    V1,
    /// Jira Cloud platform v3 (`/rest/api/3/…`).
    Jira,
}

impl Spec {
    fn file_name(self) -> &'static str {
        match self {
            Spec::V2 => "confluence-cloud-rest-v2.openapi.json",
            Spec::V1 => "confluence-cloud-rest-v1.openapi.json",
            Spec::Jira => "jira-cloud-platform-v3.openapi.json",
        }
    }
}

/// A loaded spec: its paths (templates normalised) and its converted components.
pub struct OpenApi {
    /// Path prefix from `servers[0].url` (`/wiki/api/v2` for v2, empty otherwise).
    prefix: String,
    /// The raw document.
    doc: Value,
    /// `components` converted to JSON Schema 2020-12.
    components: Value,
}

/// Where the vendored specs live.
pub fn specs_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("KBGATE_SPECS_DIR") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/specs")
}

/// Loads (once per process) and returns a spec.
pub fn load(spec: Spec) -> &'static OpenApi {
    static CACHE: OnceLock<Mutex<HashMap<Spec, &'static OpenApi>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = cache.lock().unwrap();
    if let Some(s) = guard.get(&spec) {
        return s;
    }
    let path = specs_dir().join(spec.file_name());
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read spec {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("spec {} is not JSON: {e}", path.display()));
    let prefix = doc["servers"][0]["url"]
        .as_str()
        .map(server_path)
        .unwrap_or_default();
    let components = convert_components(&doc["components"]);
    let leaked: &'static OpenApi = Box::leak(Box::new(OpenApi {
        prefix,
        doc,
        components,
    }));
    guard.insert(spec, leaked);
    leaked
}

/// The path part of a server URL (`https://{your-domain}/wiki/api/v2` → `/wiki/api/v2`).
fn server_path(url: &str) -> String {
    let rest = url.split_once("//").map(|(_, r)| r).unwrap_or(url);
    match rest.find('/') {
        Some(i) => rest[i..].trim_end_matches('/').to_string(),
        None => String::new(),
    }
}

/// `/spaces/{id}/pages` and `/spaces/{spaceId}/pages` are the same template.
fn normalise_template(t: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in t.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// What the spec says about one response.
#[derive(Debug, Clone, PartialEq)]
pub enum Documented {
    /// A JSON body schema (OpenAPI dialect, not yet converted).
    Body(Value),
    /// The status is documented but without a JSON body schema.
    NoBody,
}

impl OpenApi {
    /// The operation object for `method` on `path_template` (full path, e.g.
    /// `/wiki/api/v2/spaces/{id}`), or an error naming what is missing.
    pub fn operation(&self, method: &str, path_template: &str) -> Result<&Value, String> {
        let want = normalise_template(path_template);
        let paths = self.doc["paths"]
            .as_object()
            .ok_or_else(|| "spec has no paths".to_string())?;
        let item = paths
            .iter()
            .find(|(p, _)| normalise_template(&format!("{}{}", self.prefix, p)) == want)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("no path {path_template} in the spec"))?;
        let op = &item[method.to_ascii_lowercase()];
        if op.is_null() {
            return Err(format!(
                "no {method} operation on {path_template} in the spec"
            ));
        }
        Ok(op)
    }

    /// What the spec documents for `status` of an operation.
    pub fn response(
        &self,
        method: &str,
        path_template: &str,
        status: u16,
    ) -> Result<Documented, String> {
        let op = self.operation(method, path_template)?;
        let responses = &op["responses"];
        let mut resp = &responses[status.to_string()];
        if resp.is_null() {
            resp = &responses["default"];
        }
        if resp.is_null() {
            let known: Vec<&String> = responses
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            return Err(format!(
                "status {status} is not documented for {method} {path_template} (documented: {known:?})"
            ));
        }
        let resp = self.deref(resp);
        let content = &resp["content"];
        let schema = content["application/json"]["schema"].clone();
        let schema = if schema.is_null() {
            // `*/*` is used by some Atlassian operations for JSON too.
            content["*/*"]["schema"].clone()
        } else {
            schema
        };
        Ok(if schema.is_null() {
            Documented::NoBody
        } else {
            Documented::Body(schema)
        })
    }

    /// Follows a local `$ref` (responses may be `{"$ref":"#/components/responses/X"}`).
    fn deref<'a>(&'a self, v: &'a Value) -> &'a Value {
        let mut cur = v;
        for _ in 0..8 {
            match cur["$ref"].as_str() {
                Some(r) if r.starts_with("#/") => {
                    cur = self.doc.pointer(&r[1..]).unwrap_or(&Value::Null);
                }
                _ => break,
            }
        }
        cur
    }

    /// A root JSON Schema document for an (OpenAPI-dialect) schema of this spec.
    pub fn root_schema(&self, schema: &Value) -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "allOf": [convert(schema)],
            "components": self.components,
        })
    }
}

/// Builds a validator for a root document made by [`OpenApi::root_schema`].
pub fn build_validator(root: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(root)
        .map_err(|e| format!("schema does not compile: {e}"))
}

fn convert_components(c: &Value) -> Value {
    let Some(map) = c.as_object() else {
        return json!({});
    };
    let mut out = Map::new();
    for (section, entries) in map {
        // Only schemas are referenced from schemas; keep the rest out of the root document.
        if section != "schemas" {
            continue;
        }
        let mut conv = Map::new();
        if let Some(entries) = entries.as_object() {
            for (name, s) in entries {
                conv.insert(name.clone(), convert(s));
            }
        }
        out.insert(section.clone(), Value::Object(conv));
    }
    Value::Object(out)
}

/// Converts one OpenAPI 3.0 schema object to JSON Schema 2020-12 (see the module docs).
pub fn convert(schema: &Value) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone(); // `true`/`false` schemas
    };
    let mut out = Map::new();
    let nullable = obj.get("nullable").and_then(Value::as_bool) == Some(true);
    for (k, v) in obj {
        match k.as_str() {
            "nullable" | "discriminator" | "xml" | "example" | "examples" | "readOnly"
            | "writeOnly" | "deprecated" | "externalDocs" => {}
            k if k.starts_with("x-") => {}
            "format" => {
                if v == "date-time" {
                    out.insert(k.into(), v.clone());
                }
            }
            "properties" | "patternProperties" => {
                let mut props = Map::new();
                if let Some(m) = v.as_object() {
                    for (name, s) in m {
                        props.insert(name.clone(), convert(s));
                    }
                }
                out.insert(k.into(), Value::Object(props));
            }
            "additionalProperties" | "items" | "not" => {
                out.insert(k.into(), convert(v));
            }
            "allOf" | "anyOf" | "oneOf" => {
                let list: Vec<Value> = v
                    .as_array()
                    .map(|a| a.iter().map(convert).collect())
                    .unwrap_or_default();
                let key = if k == "oneOf" { "anyOf" } else { k };
                if key == "anyOf"
                    && let Some(Value::Array(existing)) = out.get_mut("anyOf")
                {
                    // `anyOf` and `oneOf` side by side: both must hold.
                    let prev = std::mem::take(existing);
                    out.remove("anyOf");
                    out.insert(
                        "allOf".into(),
                        json!([{ "anyOf": prev }, { "anyOf": list }]),
                    );
                } else {
                    out.insert(key.into(), Value::Array(list));
                }
            }
            "$ref" => {
                out.insert(k.into(), v.clone());
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    // OpenAPI 3.0: an `enum` on a nullable schema implicitly admits null only via `nullable`.
    if nullable {
        json!({ "anyOf": [{ "type": "null" }, Value::Object(out)] })
    } else {
        Value::Object(out)
    }
}

/// Error body shapes per family, for statuses the specs document without a body.
///
/// * v2: `{"errors":[{"status":int,"code":string,"title":string,"detail":string|null}]}`
///   (what Confluence Cloud v2 answers; not in the published spec);
/// * v1: `{"statusCode":int,"message":string,"data":{…}}`;
/// * Jira: the spec's own `ErrorCollection`.
pub fn error_schema(spec: Spec) -> Value {
    match spec {
        Spec::V2 => json!({
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["status", "code", "title"],
                        "properties": {
                            "status": { "type": "integer" },
                            "code": { "type": "string" },
                            "title": { "type": "string" },
                            "detail": { "type": ["string", "null"] }
                        }
                    }
                }
            }
        }),
        Spec::V1 => json!({
            "type": "object",
            "required": ["statusCode", "message"],
            "properties": {
                "statusCode": { "type": "integer" },
                "message": { "type": "string" },
                "data": {
                    "type": "object",
                    "properties": {
                        "authorized": { "type": "boolean" },
                        "valid": { "type": "boolean" },
                        "errors": { "type": "array" },
                        "successful": { "type": "boolean" }
                    }
                }
            }
        }),
        Spec::Jira => json!({ "$ref": "#/components/schemas/ErrorCollection" }),
    }
}

type Key = (Spec, String, String, u16);

fn validator_for(
    spec: Spec,
    method: &str,
    path_template: &str,
    status: u16,
) -> Result<Option<Arc<jsonschema::Validator>>, String> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Option<Arc<jsonschema::Validator>>>>> =
        OnceLock::new();
    let key = (
        spec,
        method.to_ascii_uppercase(),
        normalise_template(path_template),
        status,
    );
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(v) = cache.lock().unwrap().get(&key) {
        return Ok(v.clone());
    }
    let api = load(spec);
    let schema = match api.response(method, path_template, status)? {
        Documented::Body(s) => Some(s),
        Documented::NoBody if status >= 400 => Some(error_schema(spec)),
        Documented::NoBody => None,
    };
    let validator = match schema {
        Some(s) => Some(Arc::new(build_validator(&api.root_schema(&s))?)),
        None => None,
    };
    cache.lock().unwrap().insert(key, validator.clone());
    Ok(validator)
}

/// All violations of `body` against `schema`, one line each (`instance path: error`).
pub fn violations(validator: &jsonschema::Validator, body: &Value) -> Vec<String> {
    validator
        .iter_errors(body)
        .map(|e| {
            let path = e.instance_path().to_string();
            let path = if path.is_empty() {
                "/".to_string()
            } else {
                path
            };
            format!("{path}: {e}")
        })
        .collect()
}

/// Checks a response against the spec; `Err` carries a readable report.
///
/// A documented status without a body schema accepts only an empty body for 2xx (`Null`), and
/// the family's error shape for 4xx/5xx.
pub fn check_conforms(
    spec: Spec,
    method: &str,
    path_template: &str,
    status: u16,
    body: &Value,
) -> Result<(), String> {
    let validator = validator_for(spec, method, path_template, status)?;
    let Some(validator) = validator else {
        return if body.is_null() {
            Ok(())
        } else {
            Err(format!(
                "{method} {path_template} {status}: the spec documents no body, got {}",
                truncate(body)
            ))
        };
    };
    let v = violations(&validator, body);
    if v.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{method} {path_template} {status} does not conform to {spec:?} spec:\n  {}\nbody: {}",
            v.join("\n  "),
            truncate(body)
        ))
    }
}

/// Panics with a readable message unless `body` conforms to the spec's schema for
/// (`method`, `path_template`, `status`).
#[track_caller]
pub fn assert_conforms(spec: Spec, method: &str, path_template: &str, status: u16, body: &Value) {
    if let Err(msg) = check_conforms(spec, method, path_template, status, body) {
        panic!("{msg}");
    }
}

/// Checks `body` against a hand-written JSON Schema (for undocumented endpoints).
pub fn check_against(name: &str, schema: &Value, body: &Value) -> Result<(), String> {
    let validator = build_validator(schema)?;
    let v = violations(&validator, body);
    if v.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{name} does not conform to its hand-written schema:\n  {}\nbody: {}",
            v.join("\n  "),
            truncate(body)
        ))
    }
}

/// Panicking form of [`check_against`].
#[track_caller]
pub fn assert_matches_schema(name: &str, schema: &Value, body: &Value) {
    if let Err(msg) = check_against(name, schema, body) {
        panic!("{msg}");
    }
}

fn truncate(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 1500 {
        let mut cut = 1500;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}… ({} bytes)", &s[..cut], s.len())
    } else {
        s
    }
}

/// Checks an error response: against the spec when it documents the status, otherwise against
/// the family's error shape ([`error_schema`]) — Atlassian leaves most 401/404s undocumented.
pub fn check_error_conforms(
    spec: Spec,
    method: &str,
    path_template: &str,
    status: u16,
    body: &Value,
) -> Result<(), String> {
    let api = load(spec);
    match api.response(method, path_template, status) {
        Ok(_) => check_conforms(spec, method, path_template, status, body),
        Err(_) => {
            api.operation(method, path_template)?;
            let validator = build_validator(&api.root_schema(&error_schema(spec)))?;
            let v = violations(&validator, body);
            if v.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{method} {path_template} {status} (undocumented status) is not a {spec:?} error body:\n  {}\nbody: {}",
                    v.join("\n  "),
                    truncate(body)
                ))
            }
        }
    }
}
