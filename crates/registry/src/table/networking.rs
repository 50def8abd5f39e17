//! Ingresses, IngressClasses, NetworkPolicies and EndpointSlices.

use super::{AGE, NAME, Printer, age, col, name, or_none, text};
use crate::labels::format_selector;
use serde_json::Value;

fn items<'a>(obj: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    obj.pointer(pointer).and_then(Value::as_array).into_iter().flatten()
}

fn load_balancer(obj: &Value) -> String {
    items(obj, "/status/loadBalancer/ingress")
        .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

pub const INGRESSES: Printer = Printer {
    columns: &[
        NAME,
        col("Class", "string"),
        col("Hosts", "string"),
        col("Address", "string"),
        col("Ports", "string"),
        AGE,
    ],
    row: |i| {
        let hosts: Vec<&str> = items(i, "/spec/rules").map(|r| r["host"].as_str().unwrap_or("*")).collect();
        let ports = if items(i, "/spec/tls").next().is_some() { "80, 443" } else { "80" };
        vec![
            name(i),
            or_none(text(i, "/spec/ingressClassName")),
            Value::String(if hosts.is_empty() { "*".into() } else { hosts.join(",") }),
            Value::String(load_balancer(i)),
            Value::String(ports.into()),
            age(i),
        ]
    },
};

pub const INGRESS_CLASSES: Printer = Printer {
    columns: &[NAME, col("Controller", "string"), col("Parameters", "string"), AGE],
    row: |c| {
        let params = c.pointer("/spec/parameters").map(|p| {
            let group = p["apiGroup"].as_str().map(|g| format!(".{g}")).unwrap_or_default();
            format!("{}{group}/{}", p["kind"].as_str().unwrap_or(""), p["name"].as_str().unwrap_or(""))
        });
        vec![name(c), Value::String(text(c, "/spec/controller").into()), or_none(params.unwrap_or_default()), age(c)]
    },
};

pub const NETWORK_POLICIES: Printer = Printer {
    columns: &[NAME, col("Pod-Selector", "string"), AGE],
    row: |n| {
        let selector = n.pointer("/spec/podSelector").map(format_selector).unwrap_or_default();
        vec![name(n), Value::String(selector), age(n)]
    },
};

pub const ENDPOINT_SLICES: Printer = Printer {
    columns: &[NAME, col("AddressType", "string"), col("Ports", "string"), col("Endpoints", "string"), AGE],
    row: |s| {
        let ports: Vec<String> = items(s, "/ports").filter_map(|p| p["port"].as_i64()).map(|p| p.to_string()).collect();
        let addresses: Vec<&str> = items(s, "/endpoints")
            .flat_map(|e| e["addresses"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        vec![
            name(s),
            Value::String(text(s, "/addressType").into()),
            or_none(ports.join(",")),
            or_none(addresses.join(",")),
            age(s),
        ]
    },
};
