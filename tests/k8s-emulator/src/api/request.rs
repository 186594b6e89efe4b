//! What a request carries — the emulator's state, method, query string,
//! headers and body ([`Req`]), the object its path names ([`Target`]) — its
//! parsing (query flags, selectors, JSON body, `Accept`), and JSON responses.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use crate::Shared;
use crate::errors::ApiError;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::Res;

pub(super) type ApiResult = Result<Response, ApiError>;

/// A request as the handlers see it: the emulator's state and what the client sent.
pub(super) struct Req<'a> {
    pub(super) shared: &'a Arc<Shared>,
    pub(super) method: &'a Method,
    pub(super) query: &'a Query,
    pub(super) headers: &'a HeaderMap,
    pub(super) body: &'a Bytes,
}

/// The object a path names: `.../namespaces/{ns}/{jobs|pods}/{name}`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target<'a> {
    pub(super) res: Res,
    pub(super) ns: &'a str,
    pub(super) name: &'a str,
}

impl<'a> Target<'a> {
    pub(super) fn new(res: Res, ns: &'a str, name: &'a str) -> Self {
        Target { res, ns, name }
    }
}

/// Decoded query string; the last value of a repeated parameter wins.
#[derive(Debug, Default, Clone)]
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    pub(super) fn parse(q: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|s| !s.is_empty())
    }
    pub(crate) fn flag(&self, k: &str) -> Result<bool, ApiError> {
        match self.0.get(k).map(String::as_str) {
            None | Some("") | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid value for {k}: {v:?}: must be a boolean"
            ))),
        }
    }
    pub(crate) fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        self.get(k)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid value for {k}: {v:?}: must be an integer"
                    ))
                })
            })
            .transpose()
    }
    pub(super) fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(v) => Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: \"{v}\": supported values: \"All\""
            ))),
        }
    }
}

/// `labelSelector` and `fieldSelector` of a list, watch or delete-collection.
pub(crate) struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub(crate) fn parse(res: Res, q: &Query) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(res, q.get("fieldSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        Ok(Selectors { labels, fields })
    }
    pub(crate) fn matches(&self, res: Res, obj: &Value) -> bool {
        (self.labels.is_empty() || self.labels.matches(obj))
            && (self.fields.is_empty() || self.fields.matches(res, obj))
    }
}

/// What the client accepts: a Table, or the objects.
pub(super) fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("as=Table"))
}

/// A JSON request body.
pub(super) fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
}

pub(super) fn json_response(code: StatusCode, body: Vec<u8>) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub(super) fn to_json<T: Serialize>(code: StatusCode, v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => json_response(code, b),
        Err(e) => ApiError::new(500, "InternalError", e.to_string()).into_response(),
    }
}
