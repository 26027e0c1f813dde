//! The OpenAPI 3.1 document, generated from the route table at start-up.

use serde_json::{Map, Value, json};

use super::error::TABLE;
use super::routes::{Access, RouteDef};

/// Builds the document for `routes`.
pub fn document(routes: &[RouteDef]) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let security = match r.access {
            Access::Public => json!([]),
            _ => json!([{"session": []}, {"bearer": []}, {"basic": []}]),
        };
        let mut op = json!({
            "operationId": r.action,
            "summary": r.summary,
            "tags": [r.action.split('.').next().unwrap_or("misc")],
            "security": security,
            "x-omp-access": match r.access {
                Access::Public => "public",
                Access::SignedIn => "signed-in",
                Access::Perm(_) => "permission",
            },
            "responses": {
                "200": {"description": "success", "content": {"application/json": {}}},
                "default": {"description": "an error from the error table", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if let Access::Perm(p) = r.access {
            op["x-omp-permission"] = json!(p);
        }
        if r.is_mutating() {
            op["x-omp-audited"] = json!(true);
        }
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if !r.body.is_empty() {
            let props: Map<String, Value> =
                r.body.iter().map(|f| (f.to_string(), json!({}))).collect();
            op["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": {"type": "object", "properties": props}}}
            });
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.as_str().to_lowercase()] = op;
    }
    let codes: Vec<Value> = TABLE
        .iter()
        .map(|(c, s, m)| json!({"code": c, "status": s, "meaning": m}))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {"title": "OMP API", "version": crate::version(), "description": "Operation Management Platform REST API. Cookie-authenticated mutations need the X-CSRF-Token header."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": super::SESSION_COOKIE},
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic", "description": "any username, the API token as password"}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                        "code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}
                    }}}
                }
            }
        },
        "x-omp-error-codes": codes,
    })
}
