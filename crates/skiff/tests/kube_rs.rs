//! A kube-rs client and controller against a real `skiff server`: server-side apply through
//! `Api::patch` with `Patch::Apply` (conflicts and force included), a `kube::runtime` watcher
//! feeding a reflector (with plain lists and with streaming lists), metadata-only reads and a
//! metadata watcher (PartialObjectMetadata), and a `Controller` whose reconciler applies to
//! the objects it watches.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A `skiff server` in a temporary folder, stopped when dropped.
struct Server {
    child: Child,
    kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

async fn start() -> (Server, kube::Client) {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let kubeconfig = dir.path().join("kubeconfig");
    let child = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args([
            "server",
            "--disable-agent",
            "--bind-address",
            "127.0.0.1",
            "--https-port",
            &port.to_string(),
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .arg("--write-kubeconfig")
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("skiff starts");
    let server = Server { child, kubeconfig, _dir: dir };
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < Duration::from_secs(20), "skiff did not become ready");
        if let Ok(config) = Kubeconfig::read_from(&server.kubeconfig)
            && let Ok(config) = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default()).await
            && let Ok(client) = kube::Client::try_from(config)
            && client.apiserver_version().await.is_ok()
        {
            return (server, client);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config_map(name: &str, data: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": "kube-rs"}}, "data": data})
}

async fn eventually<F: Fn() -> bool>(what: &str, done: F) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(15), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn server_side_apply_through_api_patch() {
    let (_server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let mine = PatchParams::apply("kube-rs-test");
    let cm =
        api.patch("settings", &mine, &Patch::Apply(config_map("settings", json!({"color": "blue"})))).await.unwrap();
    assert_eq!(cm.data.unwrap()["color"], "blue");
    let managers: Vec<_> =
        cm.metadata.managed_fields.unwrap().into_iter().map(|m| (m.manager.unwrap(), m.operation.unwrap())).collect();
    assert_eq!(managers, [("kube-rs-test".to_string(), "Apply".to_string())]);

    let theirs = PatchParams::apply("someone-else");
    let err = api
        .patch("settings", &theirs, &Patch::Apply(config_map("settings", json!({"color": "red"}))))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 409);
            assert!(status.message.contains("conflict with \"kube-rs-test\""), "{}", status.message);
            assert!(status.message.contains(".data.color"), "{}", status.message);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let forced = api
        .patch("settings", &theirs.clone().force(), &Patch::Apply(config_map("settings", json!({"color": "red"}))))
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["color"], "red");

    // Dropping a key from the applied configuration removes it when nobody else owns it.
    api.patch("settings", &mine, &Patch::Apply(config_map("settings", json!({"size": "L"})))).await.unwrap();
    let now = api.get("settings").await.unwrap().data.unwrap();
    assert_eq!(now.get("size").map(String::as_str), Some("L"));
    assert_eq!(now.get("color").map(String::as_str), Some("red"), "color is someone-else's now");
}

async fn reflect(client: kube::Client, config: watcher::Config) {
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    for i in 0..3 {
        api.create(
            &PostParams::default(),
            &serde_json::from_value(config_map(&format!("before-{i}"), json!({}))).unwrap(),
        )
        .await
        .unwrap();
    }
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api.clone(), config.labels("app=kube-rs"))).applied_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    reader.wait_until_ready().await.unwrap();
    let names = |reader: &reflector::Store<ConfigMap>| {
        let mut n: Vec<String> = reader.state().iter().filter_map(|c| c.metadata.name.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&reader), ["before-0", "before-1", "before-2"]);

    api.create(&PostParams::default(), &serde_json::from_value(config_map("after", json!({}))).unwrap()).await.unwrap();
    api.delete("before-1", &DeleteParams::default()).await.unwrap();
    eventually("the reflector to follow a create and a delete", || names(&reader) == ["after", "before-0", "before-2"])
        .await;
    task.abort();
}

#[tokio::test]
async fn a_watcher_feeds_a_reflector() {
    let (_server, client) = start().await;
    reflect(client, watcher::Config::default()).await;
}

#[tokio::test]
async fn a_watcher_with_streaming_lists_feeds_a_reflector() {
    let (_server, client) = start().await;
    reflect(client, watcher::Config::default().streaming_lists()).await;
}

#[tokio::test]
async fn metadata_only_reads_and_watches() {
    let (_server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let create = |name: &str| serde_json::from_value(config_map(name, json!({"payload": "x".repeat(1000)}))).unwrap();
    api.create(&PostParams::default(), &create("first")).await.unwrap();

    let got = api.get_metadata("first").await.unwrap();
    assert_eq!(got.metadata.name.as_deref(), Some("first"));
    assert_eq!(got.metadata.labels.unwrap()["app"], "kube-rs");
    let raw = http::Request::get("/api/v1/namespaces/default/configmaps/first")
        .header(http::header::ACCEPT, "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1")
        .body(Vec::new())
        .unwrap();
    let raw: serde_json::Value = serde_json::from_str(&client.request_text(raw).await.unwrap()).unwrap();
    assert_eq!(
        (raw["kind"].as_str(), raw["apiVersion"].as_str()),
        (Some("PartialObjectMetadata"), Some("meta.k8s.io/v1"))
    );
    assert!(raw.get("data").is_none(), "only the metadata comes back: {raw}");

    let listed = api.list_metadata(&ListParams::default().labels("app=kube-rs")).await.unwrap();
    assert_eq!(listed.types.kind, "PartialObjectMetadataList");
    let names: Vec<_> = listed.items.iter().filter_map(|m| m.metadata.name.clone()).collect();
    assert_eq!(names, ["first"]);

    let (reader, writer) = reflector::store();
    let config = watcher::Config::default().labels("app=kube-rs");
    let metadata: Api<PartialObjectMeta<ConfigMap>> = Api::namespaced(client, "default");
    let task = tokio::spawn(reflector(writer, watcher(metadata, config)).applied_objects().for_each(|_| async {}));
    reader.wait_until_ready().await.unwrap();
    api.create(&PostParams::default(), &create("second")).await.unwrap();
    api.delete("first", &DeleteParams::default()).await.unwrap();
    let names = || {
        let mut n: Vec<String> = reader.state().iter().filter_map(|m| m.metadata.name.clone()).collect();
        n.sort();
        n
    };
    eventually("the metadata watcher to follow a create and a delete", || names() == ["second"]).await;
    task.abort();
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ReconcileError(#[from] kube::Error);

/// Marks every watched ConfigMap as seen, through server-side apply.
async fn reconcile(cm: Arc<ConfigMap>, api: Arc<Api<ConfigMap>>) -> Result<Action, ReconcileError> {
    let name = cm.metadata.name.clone().unwrap_or_default();
    let mark = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "annotations": {"example.com/seen": "yes"}}});
    api.patch(&name, &PatchParams::apply("test-controller"), &Patch::Apply(mark)).await?;
    Ok(Action::await_change())
}

#[tokio::test]
async fn a_controller_reconciles_what_it_watches() {
    let (_server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let controller = Controller::new(api.clone(), watcher::Config::default().labels("app=kube-rs"))
        .run(reconcile, |_, _, _| Action::requeue(Duration::from_secs(1)), Arc::new(api.clone()))
        .for_each(|_| async {});
    let task = tokio::spawn(controller);
    for name in ["one", "two"] {
        api.create(&PostParams::default(), &serde_json::from_value(config_map(name, json!({"k": "v"}))).unwrap())
            .await
            .unwrap();
    }
    let started = Instant::now();
    for name in ["one", "two"] {
        loop {
            let cm = api.get(name).await.unwrap();
            let seen = cm.metadata.annotations.as_ref().and_then(|a| a.get("example.com/seen")).is_some();
            if seen {
                let data = cm.data.unwrap_or_default();
                assert_eq!(data.get("k").map(String::as_str), Some("v"), "the controller's apply kept the data");
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "the controller never reconciled {name}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    task.abort();
}
