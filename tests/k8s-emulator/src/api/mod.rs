//! The HTTP surface. [`handle`] reads a request into a [`Req`] and routes it by
//! path; the handlers live by what they do:
//!
//! - [`request`]: what every request carries — [`Req`], the [`Target`] object
//!   a path names, the query string, selectors, the JSON body — and the JSON
//!   responses;
//! - [`read`]: list (paged with `limit`/`continue`) and get, as objects or as
//!   a kubectl Table;
//! - [`write`](mod@write): create, replace (PUT) and patch, of an object or of its
//!   `status` subresource;
//! - [`delete`]: one object or a collection, with a Job's propagation to its pods;
//! - [`logs`]: pod logs (tail, limit, since, follow) and the emulator's log hook;
//! - [`namespaces`]: the Namespace objects, which always exist.

mod delete;
mod logs;
mod namespaces;
mod read;
mod request;
mod write;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::errors::ApiError;
use super::hooks::{self, Intercept};
use super::store::Res;
use super::{Shared, discovery, openapi, watch};
use request::{ApiResult, Req, Target, to_json, wants_table};
use write::Part;

pub(crate) use read::{event_object, select};
pub(crate) use request::{Query, Selectors};

/// Largest request body accepted (log hook uploads included).
const MAX_BODY: usize = 256 * 1024 * 1024;

/// The emulator's one handler: every path is routed here.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(
                413,
                "RequestEntityTooLarge",
                format!("request body could not be read: {e}"),
            )
            .into_response();
        }
    };
    let query = Query::parse(parts.uri.query());
    let path = parts.uri.path().to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(response) = intercepted(&shared, &parts.method, &path, &segs).await {
        return response;
    }
    let req = Req {
        shared: &shared,
        method: &parts.method,
        query: &query,
        headers: &parts.headers,
        body: &body,
    };
    let response = match route(&req, &segs).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tracing::debug!(method = %parts.method, uri = %parts.uri, status = response.status().as_u16(), "request");
    response
}

/// A request a test marked ([`crate::RunningEmulator::intercept`]): the
/// failure it is answered with, or `None` when it is served (after the
/// deletion a `VanishFirst` mark asks for).
async fn intercepted(
    shared: &Shared,
    method: &Method,
    path: &str,
    segs: &[&str],
) -> Option<Response> {
    match shared.hooks.take(method, path)? {
        Intercept::Fail(code) => Some(hooks::failure(code).into_response()),
        Intercept::VanishFirst => {
            if let Some((res, ns, name)) = hooks::named_object(segs) {
                delete::delete_now(&mut *shared.store.lock().await, res, ns, name);
            }
            None
        }
    }
}

async fn route(req: &Req<'_>, segs: &[&str]) -> ApiResult {
    if let Some(document) = static_document(req.shared, segs) {
        return get_only(req, document);
    }
    match segs {
        ["api", "v1", "namespaces"] => get_only(req, namespaces::list(req.shared).await),
        ["api", "v1", "namespaces", ns] => get_only(req, namespaces::get(req.shared, ns)),
        ["api", "v1", "pods"] => collection(req, Res::Pods, None).await,
        ["apis", "batch", "v1", "jobs"] => collection(req, Res::Jobs, None).await,
        ["api", "v1", "namespaces", ns, "pods"] => collection(req, Res::Pods, Some(ns)).await,
        ["apis", "batch", "v1", "namespaces", ns, "jobs"] => {
            collection(req, Res::Jobs, Some(ns)).await
        }
        ["api", "v1", "namespaces", ns, "pods", name] => {
            item(req, Target::new(Res::Pods, ns, name)).await
        }
        ["apis", "batch", "v1", "namespaces", ns, "jobs", name] => {
            item(req, Target::new(Res::Jobs, ns, name)).await
        }
        ["api", "v1", "namespaces", ns, "pods", name, "status"] => {
            status(req, Target::new(Res::Pods, ns, name)).await
        }
        [
            "apis",
            "batch",
            "v1",
            "namespaces",
            ns,
            "jobs",
            name,
            "status",
        ] => status(req, Target::new(Res::Jobs, ns, name)).await,
        ["api", "v1", "namespaces", ns, "pods", name, "log"] => {
            if *req.method == Method::GET {
                logs::pod_log(req, ns, name).await
            } else {
                Err(ApiError::method_not_allowed())
            }
        }
        ["emulator", "v1", "namespaces", ns, "pods", name, "log"] => {
            logs::log_hook(req, ns, name).await
        }
        _ => Err(ApiError::not_found_path()),
    }
}

/// Health, version, discovery and OpenAPI documents: GET only, never changing.
fn static_document(shared: &Shared, segs: &[&str]) -> Option<Response> {
    let ok = StatusCode::OK;
    Some(match segs {
        ["version"] => to_json(ok, &discovery::version()),
        ["healthz" | "livez" | "readyz"] => (ok, "ok").into_response(),
        ["api"] => to_json(ok, &discovery::api_versions(&shared.addr.to_string())),
        ["api", "v1"] => to_json(ok, &discovery::core_v1_resources()),
        ["apis"] => to_json(ok, &discovery::api_group_list()),
        ["apis", "batch"] => to_json(ok, &discovery::batch_group()),
        ["apis", "batch", "v1"] => to_json(ok, &discovery::batch_v1_resources()),
        ["openapi", "v3"] => to_json(ok, &openapi::root()),
        ["openapi", "v3", "api", "v1"] => to_json(ok, &openapi::core_v1()),
        ["openapi", "v3", "apis", "batch", "v1"] => to_json(ok, &openapi::batch_v1()),
        _ => return None,
    })
}

fn get_only(req: &Req<'_>, response: Response) -> ApiResult {
    if *req.method == Method::GET {
        Ok(response)
    } else {
        Err(ApiError::method_not_allowed())
    }
}

/// `.../jobs` or `.../pods`, in one namespace or (list and watch only) in all.
async fn collection(req: &Req<'_>, res: Res, ns: Option<&str>) -> ApiResult {
    match (req.method, ns) {
        (&Method::GET, _) => {
            if req.query.flag("watch")? {
                watch::watch(req.shared, res, ns, req.query, wants_table(req.headers)).await
            } else {
                read::list(req, res, ns).await
            }
        }
        (&Method::POST, Some(ns)) => write::create(req, res, ns).await,
        (&Method::DELETE, Some(ns)) => delete::delete_collection(req, res, ns).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// `.../jobs/NAME` or `.../pods/NAME`.
async fn item(req: &Req<'_>, target: Target<'_>) -> ApiResult {
    match *req.method {
        Method::GET => read::get(req, target).await,
        Method::PUT => write::update(req, target, Part::Object).await,
        Method::PATCH => write::patch(req, target, Part::Object).await,
        Method::DELETE => delete::delete(req, target).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// `.../NAME/status`: reads the whole object, writes only its status.
async fn status(req: &Req<'_>, target: Target<'_>) -> ApiResult {
    match *req.method {
        Method::GET => read::get(req, target).await,
        Method::PUT => write::update(req, target, Part::Status).await,
        Method::PATCH => write::patch(req, target, Part::Status).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}
