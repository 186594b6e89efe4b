//! `metav1.Status` failures as the real API server words them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    ListMeta, Status, StatusCause, StatusDetails,
};

use super::store::Res;

/// One field error of an Invalid (422) answer.
#[derive(Debug, Clone)]
pub(crate) struct FieldError {
    pub field: String,
    pub reason: &'static str,
    /// Without the field: `Required value`, `Invalid value: "x": ...`.
    pub message: String,
}

impl FieldError {
    pub(crate) fn required(field: impl Into<String>, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        FieldError {
            field: field.into(),
            reason: "FieldValueRequired",
            message,
        }
    }
    pub(crate) fn invalid(field: impl Into<String>, value: &str, detail: &str) -> Self {
        FieldError {
            field: field.into(),
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {value}: {detail}"),
        }
    }
    pub(crate) fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        FieldError {
            field: field.into(),
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: \"{value}\": supported values: {}",
                list.join(", ")
            ),
        }
    }
    pub(crate) fn duplicate(field: impl Into<String>, value: &str) -> Self {
        FieldError {
            field: field.into(),
            reason: "FieldValueDuplicate",
            message: format!("Duplicate value: \"{value}\""),
        }
    }
    pub(crate) fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        FieldError {
            field: field.into(),
            reason: "FieldValueForbidden",
            message: format!("Forbidden: {detail}"),
        }
    }
}

/// A failed request, answered as a `Status`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Box<StatusDetails>>,
}

fn details(res: Res, name: &str) -> StatusDetails {
    StatusDetails {
        name: Some(name.to_string()),
        group: (!res.group().is_empty()).then(|| res.group().to_string()),
        kind: Some(res.plural().to_string()),
        ..Default::default()
    }
}

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }
    pub(crate) fn not_found(res: Res, name: &str) -> Self {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("{} \"{name}\" not found", res.qualified()),
            details: Some(Box::new(details(res, name))),
        }
    }
    pub(crate) fn already_exists(res: Res, name: &str) -> Self {
        ApiError {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} \"{name}\" already exists", res.qualified()),
            details: Some(Box::new(details(res, name))),
        }
    }
    pub(crate) fn conflict(res: Res, name: &str) -> Self {
        ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                res.qualified()
            ),
            details: Some(Box::new(details(res, name))),
        }
    }
    pub(crate) fn precondition(res: Res, name: &str, message: String) -> Self {
        ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": {message}",
                res.qualified()
            ),
            details: Some(Box::new(details(res, name))),
        }
    }
    pub(crate) fn invalid(res: Res, name: &str, errors: &[FieldError]) -> Self {
        let parts: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        let joined = if parts.len() == 1 {
            parts.join("")
        } else {
            format!("[{}]", parts.join(", "))
        };
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("{} \"{name}\" is invalid: {joined}", res.qualified_kind()),
            details: Some(Box::new(StatusDetails {
                name: Some(name.to_string()),
                group: (!res.group().is_empty()).then(|| res.group().to_string()),
                kind: Some(res.kind().to_string()),
                causes: Some(
                    errors
                        .iter()
                        .map(|e| StatusCause {
                            field: Some(e.field.clone()),
                            message: Some(e.message.clone()),
                            reason: Some(e.reason.to_string()),
                        })
                        .collect(),
                ),
                ..Default::default()
            })),
        }
    }
    pub(crate) fn not_found_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub(crate) fn to_status(&self) -> Status {
        Status {
            code: Some(i32::from(self.code)),
            details: self.details.as_deref().cloned(),
            message: Some(self.message.clone()),
            metadata: ListMeta::default(),
            reason: Some(self.reason.to_string()),
            status: Some("Failure".to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, [("content-type", "application/json")], body).into_response()
    }
}
