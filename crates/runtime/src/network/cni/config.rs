//! CNI network configuration: the list the runtime uses (the first file of the configuration
//! folder by name, as the kubelet and containerd choose it), and what each plugin of the list
//! reads on stdin.

use super::super::nat::HostPort;
use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use std::path::Path;

/// The network configuration list in the first `.conflist`, `.conf` or `.json` file of
/// `dir`; a `.conf` or `.json` file holds one plugin's configuration, which becomes a list of
/// one.
pub fn load(dir: &Path) -> anyhow::Result<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the CNI configuration folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conflist" || e == "conf" || e == "json"))
        .collect();
    files.sort();
    let path = files.first().ok_or_else(|| anyhow!("{} has no CNI network configuration", dir.display()))?;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let list = if path.extension().is_some_and(|e| e == "conflist") {
        doc
    } else {
        json!({"cniVersion": doc["cniVersion"], "name": doc["name"], "plugins": [doc]})
    };
    validate(&list).with_context(|| format!("in {}", path.display()))?;
    Ok(list)
}

fn validate(list: &Value) -> anyhow::Result<()> {
    if !list["name"].is_string() {
        bail!("the network has no name");
    }
    if !list["cniVersion"].is_string() {
        bail!("the network has no cniVersion");
    }
    let plugins = list["plugins"].as_array().filter(|p| !p.is_empty()).ok_or_else(|| anyhow!("no plugins"))?;
    if let Some(untyped) = plugins.iter().position(|p| !p["type"].is_string()) {
        bail!("plugin {untyped} has no type");
    }
    Ok(())
}

/// What a plugin reads on stdin: its configuration with the network's name and version, the
/// result so far (`prevResult`), and the runtime's values for the capabilities it declares
/// (`portMappings` for the pod's hostPorts).
pub fn plugin_input(list: &Value, plugin: &Value, prev_result: Option<&Value>, ports: &[HostPort]) -> Value {
    let mut input = plugin.clone();
    input["name"] = list["name"].clone();
    input["cniVersion"] = list["cniVersion"].clone();
    if let Some(prev) = prev_result {
        input["prevResult"] = prev.clone();
    }
    if plugin["capabilities"]["portMappings"] == json!(true) && !ports.is_empty() {
        input["runtimeConfig"] = json!({"portMappings": ports});
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::nat::Protocol;

    #[test]
    fn the_first_configuration_by_name_is_the_network() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README"), "not a configuration").unwrap();
        std::fs::write(
            dir.path().join("20-other.conflist"),
            r#"{"cniVersion": "1.0.0", "name": "other", "plugins": [{"type": "ptp"}]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("10-pods.conf"),
            r#"{"cniVersion": "1.0.0", "name": "pods", "type": "bridge", "bridge": "cni0"}"#,
        )
        .unwrap();
        let list = load(dir.path()).unwrap();
        assert_eq!(list["name"], "pods");
        assert_eq!(list["plugins"][0]["bridge"], "cni0", "a single plugin's file becomes a list of one");
    }

    #[test]
    fn a_configuration_without_plugin_types_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.conflist"), r#"{"cniVersion": "1.0.0", "name": "n", "plugins": [{}]}"#)
            .unwrap();
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("plugin 0 has no type") && err.contains("a.conflist"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        assert!(load(empty.path()).unwrap_err().to_string().contains("no CNI network configuration"));
    }

    #[test]
    fn a_plugin_gets_the_network_name_the_previous_result_and_the_capabilities_it_asks_for() {
        let list = serde_json::json!({"cniVersion": "1.0.0", "name": "pods", "plugins": []});
        let ports = [HostPort { host_port: 8080, container_port: 80, protocol: Protocol::Tcp, host_ip: None }];
        let prev = serde_json::json!({"ips": [{"address": "10.88.0.2/16"}]});
        let portmap = serde_json::json!({"type": "portmap", "capabilities": {"portMappings": true}});
        let input = plugin_input(&list, &portmap, Some(&prev), &ports);
        assert_eq!(input["name"], "pods");
        assert_eq!(input["cniVersion"], "1.0.0");
        assert_eq!(input["prevResult"], prev);
        assert_eq!(
            input["runtimeConfig"],
            serde_json::json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]})
        );
        let bridge = serde_json::json!({"type": "bridge"});
        assert!(plugin_input(&list, &bridge, None, &ports).get("runtimeConfig").is_none());
    }
}
