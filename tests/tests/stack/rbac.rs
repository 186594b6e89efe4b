//! The Kubernetes Role (`infra/k8s-rbac.yaml`) grants what the functions
//! really ask of the API, and no more: the real sync and cleanup run against
//! the emulator through a proxy that records each request as RBAC
//! authorizes it (verb, API group, resource/subresource, namespace), and the
//! Role's rules are compared with those requests. Beyond them, the Role may
//! grant only the reads the README names for an operator's `kubectl get`.

use std::collections::BTreeSet;

use flink_job_sync::adapters::flink::FlinkClient;
use flink_job_sync::adapters::k8s::Kubernetes;
use flink_job_sync::adapters::store::Store;
use flink_job_sync::adapters::store::record::to_bson_date;
use flink_job_sync::rules::cleanup::CleanupRules;
use flink_job_sync::runs::cleanup::{Cleaner, CleanupRequest};
use flink_job_sync::runs::sync::{SyncRequest, Syncer};
use mongodb::bson::doc;
use serde::Deserialize;
use serde_yaml::Value;
use test_kit::flinkfake::{FakeJob, FlinkFake};
use test_kit::k8saudit::{Attributes, Recorder, attributes};
use test_kit::lambda::workspace_root;
use test_kit::scenario::{JobState, NS, Scenario};

/// (API group, resource or resource/subresource, verb), as a Role's rules
/// name what they grant.
type Grant = (String, String, String);

/// Granted for an operator's checks with the same account (README,
/// "Deploying"), not called by the functions.
const OPERATOR_READS: [(&str, &str, &str); 2] = [("batch", "jobs", "get"), ("", "pods", "get")];

/// Every (group, resource, verb) the Role's rules grant in its namespace.
fn role_grants() -> (String, BTreeSet<Grant>) {
    let path = workspace_root().join("infra/k8s-rbac.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut roles = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v = Value::deserialize(doc).unwrap_or_else(|e| panic!("infra/k8s-rbac.yaml: {e}"));
        assert_ne!(
            v["kind"].as_str(),
            Some("ClusterRole"),
            "a ClusterRole grants beyond the namespace: {v:?}"
        );
        if v["kind"].as_str() == Some("Role") {
            roles.push(v);
        }
    }
    assert_eq!(roles.len(), 1, "one Role: {roles:?}");
    let role = &roles[0];
    let mut granted = BTreeSet::new();
    for rule in role["rules"].as_sequence().into_iter().flatten() {
        assert!(
            rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none(),
            "{rule:?}"
        );
        let strs = |k: &str| -> Vec<String> {
            rule[k]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        for g in strs("apiGroups") {
            for r in strs("resources") {
                for verb in strs("verbs") {
                    granted.insert((g.clone(), r.clone(), verb));
                }
            }
        }
    }
    let namespace = role["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (namespace, granted)
}

/// The recorded requests as grants, each checked to be a resource request
/// in `namespace`.
fn asked(recorder: &Recorder, namespace: &str) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for r in recorder.take() {
        match attributes(&r.method, &r.path, &r.query) {
            Attributes::Resource {
                verb,
                group,
                resource,
                namespace: ns,
            } => {
                assert_eq!(
                    ns.as_deref(),
                    Some(namespace),
                    "a Role grants in its namespace only: {r:?}"
                );
                out.insert((group, resource, verb));
            }
            other => panic!("a request no Role can grant: {r:?} ({other:?})"),
        }
    }
    out
}

fn grants(xs: &[(&str, &str, &str)]) -> BTreeSet<Grant> {
    xs.iter()
        .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
        .collect()
}

/// A scenario on a Flink stand-in, and the product's own Kubernetes adapter
/// reaching the scenario's emulator through a recorder.
async fn recorded() -> (Scenario, Recorder, Kubernetes) {
    let id = "4bac0000000000000000000000000001";
    let start = chrono::Utc::now().timestamp_millis() - 60_000;
    let flink = FlinkFake::with_jobs([(id.to_string(), FakeJob::new("RUNNING", start, -1))].into());
    let s = Scenario::new(&flink.serve().await, &[]).await;
    // Waiting for its JobID: sync reads its pod's log.
    s.insert(
        doc! {"job_id": "rb-submitted", "status": "CREATED", "flink_job_id": null,
        "submitted_at": to_bson_date(chrono::Utc::now())},
    )
    .await;
    let pod = s.k8s_job("rb-submitted", JobState::Running).await;
    s.set_log(&pod, format!("Job has been submitted with JobID {id}\n"))
        .await;
    // Final, its Job finished long ago: cleanup deletes the Job.
    s.insert(
        doc! {"job_id": "rb-done", "status": "FINISHED", "flink_job_id": null,
        "submitted_at": to_bson_date(chrono::Utc::now())},
    )
    .await;
    s.k8s_job("rb-done", JobState::Succeeded).await;
    let recorder = Recorder::in_front_of(&s.emulator.url()).await;
    let url = recorder.url().to_string();
    let mut kc = kube::Config::new(url.parse().unwrap_or_else(|e| panic!("{url}: {e}")));
    kc.default_namespace = NS.to_string();
    let client = kube::Client::try_from(kc).unwrap_or_else(|e| panic!("kube client: {e}"));
    let kube = Kubernetes::new(client, &s.cfg.kube);
    (s, recorder, kube)
}

#[tokio::test]
async fn the_role_grants_exactly_what_sync_and_cleanup_ask_of_the_kubernetes_api() {
    let (s, recorder, kube) = recorded().await;
    let store = || async {
        Store::connect(&s.cfg.mongo)
            .await
            .unwrap_or_else(|e| panic!("MongoDB: {e}"))
    };
    let flink = FlinkClient::from_settings(&s.cfg.flink).unwrap_or_else(|e| panic!("{e}"));
    let syncer = Syncer::builder(store().await, kube.clone())
        .flink(flink)
        .settings(s.cfg.sync.clone())
        .rules(s.cfg.rules.clone())
        .build();
    let sync = syncer
        .run(&SyncRequest::default())
        .await
        .unwrap_or_else(|e| panic!("sync: {e}"));
    assert_eq!(
        sync.transitions.get("CREATED->RUNNING"),
        Some(&1),
        "the JobID came from the pod's log: {sync:?}"
    );
    let (namespace, granted) = role_grants();
    assert_eq!(namespace, NS);
    let sync_asked = asked(&recorder, NS);
    let cleanup = Cleaner::new(kube, store().await, CleanupRules::default())
        .run(&CleanupRequest::default())
        .await
        .unwrap_or_else(|e| panic!("cleanup: {e}"));
    assert_eq!(cleanup.deleted, ["rb-done"], "{cleanup:?}");
    let cleanup_asked = asked(&recorder, NS);
    let called: BTreeSet<Grant> = sync_asked.union(&cleanup_asked).cloned().collect();
    let missing: Vec<&Grant> = called.difference(&granted).collect();
    assert!(
        missing.is_empty(),
        "the Role does not grant what the functions ask: {missing:?} (sync asked {sync_asked:?}, cleanup {cleanup_asked:?})"
    );
    let allowed: BTreeSet<Grant> = called.union(&grants(&OPERATOR_READS)).cloned().collect();
    let beyond: Vec<&Grant> = granted.difference(&allowed).collect();
    assert!(
        beyond.is_empty(),
        "the Role grants what neither function asks nor an operator's get needs: {beyond:?} (sync asked {sync_asked:?}, cleanup {cleanup_asked:?})"
    );
}
