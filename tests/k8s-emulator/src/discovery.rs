//! `/version`, `/api`, `/apis` and the APIResourceLists.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    APIGroup, APIGroupList, APIResource, APIResourceList, APIVersions, GroupVersionForDiscovery,
    ServerAddressByClientCIDR,
};
use k8s_openapi::apimachinery::pkg::version::Info;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const MAIN_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

fn resource(
    name: &str,
    singular: &str,
    kind: &str,
    verbs: &[&str],
    short: &[&str],
    categories: &[&str],
    hash: Option<&str>,
) -> APIResource {
    APIResource {
        name: name.to_string(),
        singular_name: singular.to_string(),
        namespaced: true,
        kind: kind.to_string(),
        verbs: strings(verbs),
        short_names: (!short.is_empty()).then(|| strings(short)),
        categories: (!categories.is_empty()).then(|| strings(categories)),
        storage_version_hash: hash.map(str::to_string),
        group: None,
        version: None,
    }
}

pub(crate) fn version() -> Info {
    Info {
        major: "1".into(),
        minor: "32".into(),
        git_version: "v1.32.0".into(),
        git_commit: "70d3cc986aa8221cd1dfb1121852688902d3bf53".into(),
        git_tree_state: "clean".into(),
        build_date: "2024-12-11T17:58:45Z".into(),
        go_version: "go1.23.3".into(),
        compiler: "gc".into(),
        platform: "linux/amd64".into(),
        emulation_major: None,
        emulation_minor: None,
        min_compatibility_major: None,
        min_compatibility_minor: None,
    }
}

pub(crate) fn api_versions(server_address: &str) -> APIVersions {
    APIVersions {
        versions: vec!["v1".into()],
        server_address_by_client_cidrs: vec![ServerAddressByClientCIDR {
            client_cidr: "0.0.0.0/0".into(),
            server_address: server_address.to_string(),
        }],
    }
}

pub(crate) fn batch_group() -> APIGroup {
    let v1 = GroupVersionForDiscovery {
        group_version: "batch/v1".into(),
        version: "v1".into(),
    };
    APIGroup {
        name: "batch".into(),
        versions: vec![v1.clone()],
        preferred_version: Some(v1),
        server_address_by_client_cidrs: None,
    }
}

pub(crate) fn api_group_list() -> APIGroupList {
    APIGroupList {
        groups: vec![batch_group()],
    }
}

pub(crate) fn core_v1_resources() -> APIResourceList {
    APIResourceList {
        group_version: "v1".into(),
        resources: vec![
            APIResource {
                namespaced: false,
                ..resource(
                    "namespaces",
                    "namespace",
                    "Namespace",
                    &["get", "list"],
                    &["ns"],
                    &[],
                    Some("Q3oi5N2YM8M="),
                )
            },
            resource(
                "pods",
                "pod",
                "Pod",
                MAIN_VERBS,
                &["po"],
                &["all"],
                Some("xPOwRZ+Yhw8="),
            ),
            resource("pods/log", "", "Pod", &["get"], &[], &[], None),
            resource("pods/status", "", "Pod", STATUS_VERBS, &[], &[], None),
        ],
    }
}

pub(crate) fn batch_v1_resources() -> APIResourceList {
    APIResourceList {
        group_version: "batch/v1".into(),
        resources: vec![
            resource(
                "jobs",
                "job",
                "Job",
                MAIN_VERBS,
                &[],
                &["all"],
                Some("mudhfqk/qZY="),
            ),
            resource("jobs/status", "", "Job", STATUS_VERBS, &[], &[], None),
        ],
    }
}
