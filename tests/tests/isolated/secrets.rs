//! No secret in any log line or error: sync runs with a MongoDB URI that
//! carries a password and a kubeconfig with a bearer token, healthy and then
//! against a Kubernetes API that refuses the token and a MongoDB that refuses
//! the login, with every log line captured; neither secret appears anywhere.
//! Also: TLS is verified unless insecure is asked for, and then it is warned
//! of: a Flink serving https with a self-signed certificate is refused by
//! default and accepted with `FLINK_TLS_INSECURE=true`.
//!
//! Alone in its process while it runs (see the binary's docs): it captures
//! log lines with a subscriber scoped to its test.

use std::io::Write;
use std::sync::{Arc, Mutex};

use flink_job_sync::adapters::flink::FlinkClient;
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

/// An https server on 127.0.0.1 with a self-signed certificate (made here,
/// for 127.0.0.1), answering every request as a Flink that runs no job.
/// Returns its URL and how many requests it answered (a client that refuses
/// the certificate ends the handshake before sending one).
async fn self_signed_flink() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .unwrap_or_else(|e| panic!("a self-signed certificate: {e}"));
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|b| {
        b.with_no_client_auth()
            .with_single_cert(vec![made.cert.der().clone()], key.into())
    })
    .unwrap_or_else(|e| panic!("TLS server configuration: {e}"));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind 127.0.0.1:0: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local address: {e}"))
        .port();
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, count) = (acceptor.clone(), count.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let (mut head, mut buf) = (Vec::new(), [0u8; 4096]);
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = r#"{"jobs":[]}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                if tls.write_all(answer.as_bytes()).await.is_ok() {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                let _ = tls.shutdown().await;
            });
        }
    });
    (format!("https://127.0.0.1:{port}"), answered)
}

/// The Flink client sync builds from its environment, with `extra` set.
fn flink_client_from_env(url: &str, extra: &[(&str, &str)]) -> FlinkClient {
    let cfg = flink_job_sync::SyncConfig::from_lookup(|k| match k {
        "MONGODB_URI" => Some("mongodb://127.0.0.1:1".into()),
        "FLINK_REST_URL" => Some(url.to_string()),
        "FLINK_TIMEOUT_MS" => Some("3000".into()),
        _ => extra
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.to_string()),
    })
    .and_then(Resolve::resolve_given)
    .unwrap_or_else(|e| panic!("sync configuration: {e}"));
    FlinkClient::from_settings(&cfg.flink).unwrap_or_else(|e| panic!("flink client: {e}"))
}

#[tokio::test]
async fn a_self_signed_flink_is_refused_by_default_and_accepted_only_with_flink_tls_insecure() {
    let _alone = crate::alone().await;
    let (url, answered) = self_signed_flink().await;
    let refused = flink_client_from_env(&url, &[])
        .overview()
        .await
        .expect_err("a certificate no authority signed is refused");
    let why = refused.detail();
    assert!(
        why.starts_with("GET /jobs/overview:") && why.to_lowercase().contains("certificate"),
        "the error says the certificate was refused: {why}"
    );
    assert_eq!(
        answered.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no request was sent over the unverified connection"
    );
    let explicit_false = flink_client_from_env(&url, &[("FLINK_TLS_INSECURE", "false")])
        .overview()
        .await;
    assert!(
        explicit_false.is_err(),
        "false is the default: {explicit_false:?}"
    );
    let jobs = flink_client_from_env(&url, &[("FLINK_TLS_INSECURE", "true")])
        .overview()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "FLINK_TLS_INSECURE=true accepts the certificate: {}",
                e.detail()
            )
        });
    assert!(jobs.is_empty(), "{jobs:?}");
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The same through the constructor sync's setting reaches.
    let insecure = FlinkClient::with_tls(&url, None, std::time::Duration::from_secs(3), false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(insecure.overview().await.is_ok());
    let verifying = FlinkClient::with_tls(&url, None, std::time::Duration::from_secs(3), true)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(verifying.overview().await.is_err());
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 2);
}
