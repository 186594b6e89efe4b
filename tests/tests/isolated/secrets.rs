//! No secret in any log line or error: sync runs with a MongoDB URI that
//! carries a password and a kubeconfig with a bearer token, healthy and then
//! against a Kubernetes API that refuses the token and a MongoDB that refuses
//! the login, with every log line captured; neither secret appears anywhere.
//! Also: TLS is verified unless insecure is asked for, and then it is warned of.
//!
//! Alone in its process while it runs (see the binary's docs): it captures
//! log lines with a subscriber scoped to its test.

use std::io::Write;
use std::sync::{Arc, Mutex};

use flink_job_sync::adapters::store::record::to_bson_date;
use flink_job_sync::config::Resolve;
use flink_job_sync::runs::sync::{SyncRequest, Syncer};
use mongodb::bson::doc;
use test_kit::faultproxy::{Fault, FaultProxy};
use test_kit::scenario::{JobState, NS, Scenario};
use test_kit::stack::Stack;

const PASSWORD: &str = "S3cr3t-Pa55w0rd-7f3a";
const TOKEN: &str = "fjs-bearer-token-9c1e2d";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    namespace: {NS}\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: {TOKEN}\n"
    )
}

#[tokio::test]
async fn neither_the_mongodb_password_nor_the_kubernetes_token_reaches_logs_or_errors() {
    let _alone = crate::alone().await;
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let stack = Stack::from_env();
    let s = Scenario::new(&stack.flink_rest_url(), &[]).await;
    s.insert(
        doc! {"job_id": "sec-1", "status": "CREATED", "flink_job_id": null,
        "submitted_at": to_bson_date(chrono::Utc::now())},
    )
    .await;
    let pod = s.k8s_job("sec-1", JobState::Failed(1)).await;
    s.set_log(&pod, "Traceback\nValueError: nope\n").await;
    let k8s = FaultProxy::in_front_of(&s.emulator.url()).await;
    let mongo = FaultProxy::in_front_of(&stack.mongodb_uri).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let kubeconfig_path = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig_path,
        kubeconfig(&k8s.url_for(&s.emulator.url())),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mongo_hostport = mongo.addr().to_string();
    let uri_with_password = format!(
        "mongodb://fjs-user:{PASSWORD}@{mongo_hostport}/?directConnection=true&serverSelectionTimeoutMS=1500"
    );
    let kubeconfig_str = kubeconfig_path.to_string_lossy().into_owned();
    let database = s.db.name().to_string();
    let env = |extra: &[(&str, &str)]| {
        let mut vars: Vec<(String, String)> = vec![
            ("MONGODB_URI".into(), uri_with_password.clone()),
            ("MONGODB_DATABASE".into(), database.clone()),
            ("FLINK_REST_URL".into(), stack.flink_rest_url()),
            ("KUBECONFIG".into(), kubeconfig_str.clone()),
            ("K8S_NAMESPACE".into(), NS.into()),
            ("K8S_TIMEOUT_MS".into(), "1500".into()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        flink_job_sync::SyncConfig::from_lookup(move |k| {
            vars.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        })
        .and_then(Resolve::resolve_given)
    };
    let mut seen = Vec::new();
    let kube = {
        let kc =
            kube::config::Kubeconfig::read_from(&kubeconfig_path).unwrap_or_else(|e| panic!("{e}"));
        let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        config.read_timeout = Some(std::time::Duration::from_millis(1500));
        kube::Client::try_from(config).unwrap_or_else(|e| panic!("{e}"))
    };
    let syncer_with = |extra: &[(&str, &str)]| {
        let cfg = env(extra).unwrap_or_else(|e| panic!("{e}"));
        let kube = kube.clone();
        async move {
            let store = flink_job_sync::adapters::store::Store::connect(&cfg.mongo)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let kube = flink_job_sync::adapters::k8s::Kubernetes::new(kube, &cfg.kube);
            let flink = flink_job_sync::adapters::flink::FlinkClient::from_settings(&cfg.flink)
                .unwrap_or_else(|e| panic!("{e}"));
            Syncer::builder(store, kube)
                .flink(flink)
                .settings(cfg.sync)
                .rules(cfg.rules)
                .build()
        }
    };
    // With the password: the store refuses the login (SecantusDB checks it),
    // then is gone altogether.
    seen.push(format!("{:?}", env(&[]).unwrap_or_else(|e| panic!("{e}"))));
    let with_password = syncer_with(&[]).await;
    for fault in [Fault::Pass, Fault::Down] {
        mongo.set(fault).await;
        let e = with_password
            .run(&SyncRequest::default())
            .await
            .expect_err("the login is refused");
        seen.push(e.to_string());
        seen.push(lambda_runtime_message(e));
    }
    mongo.set(Fault::Pass).await;
    // With the token: healthy, then refused by the API server.
    let plain_uri = stack.mongodb_uri.clone();
    let with_token = syncer_with(&[("MONGODB_URI", plain_uri.as_str())]).await;
    let healthy = with_token
        .run(&SyncRequest::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        healthy.transitions.get("CREATED->FAILED"),
        Some(&1),
        "{healthy:?}"
    );
    seen.push(serde_json::to_string(&healthy).unwrap_or_default());
    s.insert(
        doc! {"job_id": "sec-2", "status": "CREATED", "flink_job_id": null,
        "submitted_at": to_bson_date(chrono::Utc::now())},
    )
    .await;
    k8s.set(Fault::Http(
        401,
        r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#.into(),
    ))
    .await;
    let refused = with_token
        .run(&SyncRequest::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    seen.push(serde_json::to_string(&refused).unwrap_or_default());
    k8s.set(Fault::Pass).await;
    let logs = captured.text();
    assert!(
        logs.contains("sync") && logs.lines().count() > 3,
        "the runs were logged: {logs}"
    );
    assert!(
        seen.iter()
            .any(|t| t.contains("401") || t.contains("Unauthorized")),
        "the refused token was reported: {seen:#?}"
    );
    for text in seen.iter().chain(std::iter::once(&logs)) {
        assert!(!text.contains(PASSWORD), "the password leaked: {text}");
        assert!(!text.contains(TOKEN), "the token leaked: {text}");
    }
}

fn lambda_runtime_message(e: flink_job_sync::Error) -> String {
    let d: lambda_runtime::Diagnostic = e.into();
    format!("{} {}", d.error_type, d.error_message)
}

#[tokio::test]
async fn tls_verification_is_on_by_default_and_turning_it_off_is_warned_of() {
    let _alone = crate::alone().await;
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    flink_job_sync::adapters::flink::FlinkClient::new(
        "https://flink.example",
        None,
        std::time::Duration::from_secs(1),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !captured.text().contains("not verified"),
        "{}",
        captured.text()
    );
    flink_job_sync::adapters::flink::FlinkClient::with_tls(
        "https://flink.example",
        None,
        std::time::Duration::from_secs(1),
        false,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        captured.text().contains("FLINK_TLS_INSECURE=true"),
        "{}",
        captured.text()
    );
    // A kubeconfig that skips verification is warned of when the client is built.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        kubeconfig("https://127.0.0.1:6443").replace(
            "    server: https://127.0.0.1:6443\n",
            "    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true\n",
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = flink_job_sync::CleanupConfig::from_lookup(|k| match k {
        "MONGODB_URI" => Some("mongodb://127.0.0.1:1".into()),
        _ => None,
    })
    .and_then(Resolve::resolve_given)
    .unwrap_or_else(|e| panic!("{e}"));
    cfg.kube.kubeconfig = Some(flink_job_sync::config::Secret::new(
        std::fs::read_to_string(&path).unwrap_or_default(),
    ));
    flink_job_sync::adapters::k8s::client_for(&cfg.kube)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        captured.text().contains("TLS verification off"),
        "{}",
        captured.text()
    );
}
