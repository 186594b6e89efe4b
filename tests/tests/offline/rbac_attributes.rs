//! The RBAC suite's reading of a request is the API server's: the verb,
//! group, resource (with its subresource) and namespace RBAC authorizes a
//! Kubernetes API request by.

use test_kit::k8saudit::{Attributes, attributes};

fn resource(verb: &str, group: &str, resource: &str, namespace: Option<&str>) -> Attributes {
    Attributes::Resource {
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
        namespace: namespace.map(str::to_string),
    }
}

#[test]
fn kubernetes_requests_are_read_as_the_api_server_authorizes_them() {
    let ns = Some("lemo-dev");
    for (method, path, query, expected) in [
        (
            "GET",
            "/apis/batch/v1/namespaces/lemo-dev/jobs",
            "labelSelector=app%3Dflink-python-job&limit=500",
            resource("list", "batch", "jobs", ns),
        ),
        (
            "GET",
            "/api/v1/namespaces/lemo-dev/pods",
            "",
            resource("list", "", "pods", ns),
        ),
        (
            "GET",
            "/api/v1/namespaces/lemo-dev/pods",
            "watch=true",
            resource("watch", "", "pods", ns),
        ),
        (
            "GET",
            "/api/v1/namespaces/lemo-dev/pods/p-0/log",
            "container=flink-client&tailLines=500",
            resource("get", "", "pods/log", ns),
        ),
        (
            "GET",
            "/apis/batch/v1/namespaces/lemo-dev/jobs/j",
            "",
            resource("get", "batch", "jobs", ns),
        ),
        (
            "DELETE",
            "/apis/batch/v1/namespaces/lemo-dev/jobs/j",
            "",
            resource("delete", "batch", "jobs", ns),
        ),
        (
            "DELETE",
            "/apis/batch/v1/namespaces/lemo-dev/jobs",
            "",
            resource("deletecollection", "batch", "jobs", ns),
        ),
        (
            "PATCH",
            "/apis/batch/v1/namespaces/lemo-dev/jobs/j/status",
            "",
            resource("patch", "batch", "jobs/status", ns),
        ),
        (
            "POST",
            "/api/v1/namespaces/lemo-dev/pods",
            "",
            resource("create", "", "pods", ns),
        ),
        (
            "PUT",
            "/api/v1/namespaces/lemo-dev/pods/p-0",
            "",
            resource("update", "", "pods", ns),
        ),
        (
            "GET",
            "/api/v1/namespaces/lemo-dev",
            "",
            resource("get", "", "namespaces", ns),
        ),
        (
            "GET",
            "/api/v1/pods",
            "",
            resource("list", "", "pods", None),
        ),
        (
            "GET",
            "/apis/batch/v1",
            "",
            Attributes::NonResource {
                verb: "get".into(),
                path: "/apis/batch/v1".into(),
            },
        ),
        (
            "GET",
            "/version",
            "",
            Attributes::NonResource {
                verb: "get".into(),
                path: "/version".into(),
            },
        ),
    ] {
        assert_eq!(
            attributes(method, path, query),
            expected,
            "{method} {path}?{query}"
        );
    }
}
