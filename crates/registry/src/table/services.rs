//! Services: TYPE, CLUSTER-IP, EXTERNAL-IP and PORT(S); Endpoints: the addresses they hold.

use super::workloads::selector;
use super::{AGE, NAME, Printer, age, col, name, or_none, text, wide};
use serde_json::Value;

fn external_ip(svc: &Value) -> String {
    let external: Vec<&str> = svc
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match text(svc, "/spec/type") {
        "LoadBalancer" => {
            let ingress: Vec<&str> = svc
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()))
                .chain(external.iter().copied())
                .collect();
            if ingress.is_empty() { "<pending>".into() } else { ingress.join(",") }
        }
        "ExternalName" => text(svc, "/spec/externalName").into(),
        _ => external.join(","),
    }
}

fn ports(svc: &Value) -> String {
    let ports = svc.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
    ports
        .iter()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(np) => format!("{}:{np}/{proto}", p["port"]),
                None => format!("{}/{proto}", p["port"]),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub const SERVICES: Printer = Printer {
    columns: &[
        NAME,
        col("Type", "string"),
        col("Cluster-IP", "string"),
        col("External-IP", "string"),
        col("Port(s)", "string"),
        AGE,
        wide("Selector", "string"),
    ],
    row: |s| {
        vec![
            name(s),
            Value::String(text(s, "/spec/type").into()),
            or_none(text(s, "/spec/clusterIP")),
            or_none(external_ip(s)),
            or_none(ports(s)),
            age(s),
            selector(s.pointer("/spec/selector")),
        ]
    },
};

pub const ENDPOINTS: Printer = Printer {
    columns: &[NAME, col("Endpoints", "string"), AGE],
    row: |e| {
        let mut addrs = Vec::new();
        for subset in e.pointer("/subsets").and_then(Value::as_array).into_iter().flatten() {
            for a in subset["addresses"].as_array().into_iter().flatten() {
                for p in subset["ports"].as_array().into_iter().flatten() {
                    addrs.push(format!("{}:{}", a["ip"].as_str().unwrap_or(""), p["port"]));
                }
            }
        }
        vec![name(e), or_none(addrs.join(",")), age(e)]
    },
};
