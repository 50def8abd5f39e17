//! Every built-in resource skiff serves, at the versions Kubernetes v1.37 serves them.

use crate::conversion::{Conversion, EVENTS_V1, HPA_V1};
use crate::names::NameRule;
use crate::resource::{ResourceInfo, Verbs};
use crate::strategy::{Plain, Strategy, Typed};
use crate::workload::WorkloadStrategy;
use crate::{
    autoscaler, config_data, cronjob, disruption_budget, job, limit_range, namespace, pod, pod_template,
    replication_controller, service, volumes,
};
use k8s_openapi::api as k;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// Builds one catalog entry with the common defaults: namespaced, all verbs, no short names,
/// named by RFC 1123 subdomain, stored under its own group and plural.
fn res<S: Strategy>(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    strategy: S,
) -> ResourceInfo {
    ResourceInfo {
        group,
        version,
        kind,
        plural,
        singular: kind.to_lowercase(),
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        scale: false,
        generation: false,
        verbs: Verbs::All,
        connect_subresources: &[],
        deprecation: None,
        field_selectors: &[],
        name_rule: NameRule::Subdomain,
        storage: format!("{}/{plural}", if group.is_empty() { "core" } else { group }),
        conversion: None,
        definition: <S::Object as schemars::JsonSchema>::schema_name().into_owned(),
        schema: |generator| generator.subschema_for::<S::Object>(),
        behaviour: Box::new(Typed(strategy)),
    }
}

fn plain<T: serde::Serialize + serde::de::DeserializeOwned + schemars::JsonSchema + 'static>(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
) -> ResourceInfo {
    res(group, version, kind, plural, Plain::<T>::default())
}

impl ResourceInfo {
    fn cluster(mut self) -> Self {
        self.namespaced = false;
        self
    }
    fn short(mut self, names: &'static [&'static str]) -> Self {
        self.short_names = names;
        self
    }
    /// In the `all` category: what `kubectl get all` lists.
    fn all(mut self) -> Self {
        self.categories = &["all"];
        self
    }
    fn status(mut self) -> Self {
        self.status = true;
        self
    }
    fn scale(mut self) -> Self {
        self.scale = true;
        self
    }
    /// Has a spec whose changes bump metadata.generation.
    fn spec(mut self) -> Self {
        self.generation = true;
        self
    }
    fn create_only(mut self) -> Self {
        self.verbs = Verbs::CreateOnly;
        self
    }
    fn names(mut self, rule: NameRule) -> Self {
        self.name_rule = rule;
        self
    }
    fn fields(mut self, selectors: &'static [(&'static str, &'static str)]) -> Self {
        self.field_selectors = selectors;
        self
    }
    fn deprecated(mut self, warning: &'static str) -> Self {
        self.deprecation = Some(warning);
        self
    }
    fn connect(mut self, subresources: &'static [&'static str]) -> Self {
        self.connect_subresources = subresources;
        self
    }
    fn stored_as(mut self, storage: &str, conversion: Option<Conversion>) -> Self {
        self.storage = storage.to_string();
        self.conversion = conversion;
        self
    }
}

const POD_FIELDS: &[(&str, &str)] = &[
    ("spec.nodeName", "spec.nodeName"),
    ("spec.restartPolicy", "spec.restartPolicy"),
    ("spec.schedulerName", "spec.schedulerName"),
    ("spec.serviceAccountName", "spec.serviceAccountName"),
    ("spec.hostNetwork", "spec.hostNetwork"),
    ("status.phase", "status.phase"),
    ("status.podIP", "status.podIP"),
    ("status.nominatedNodeName", "status.nominatedNodeName"),
];

const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject.kind", "involvedObject.kind"),
    ("involvedObject.namespace", "involvedObject.namespace"),
    ("involvedObject.name", "involvedObject.name"),
    ("involvedObject.uid", "involvedObject.uid"),
    ("involvedObject.apiVersion", "involvedObject.apiVersion"),
    ("involvedObject.resourceVersion", "involvedObject.resourceVersion"),
    ("involvedObject.fieldPath", "involvedObject.fieldPath"),
    ("reason", "reason"),
    ("reportingComponent", "reportingComponent"),
    ("source", "source.component"),
    ("type", "type"),
];

/// The whole catalog, in discovery order.
pub fn builtin() -> Vec<ResourceInfo> {
    use NameRule::*;
    vec![
        // core/v1
        res("", "v1", "Pod", "pods", pod::PodStrategy)
            .short(&["po"])
            .all()
            .status()
            .spec()
            .fields(POD_FIELDS)
            .connect(&["attach", "binding", "eviction", "exec", "log", "portforward"]),
        res("", "v1", "Service", "services", service::ServiceStrategy).short(&["svc"]).all().status().names(Dns1035),
        plain::<k::core::v1::Endpoints>("", "v1", "Endpoints", "endpoints")
            .short(&["ep"])
            .deprecated("v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"),
        res("", "v1", "Namespace", "namespaces", namespace::NamespaceStrategy)
            .cluster()
            .short(&["ns"])
            .status()
            .names(Label)
            .fields(&[("status.phase", "status.phase")]),
        plain::<k::core::v1::Node>("", "v1", "Node", "nodes")
            .cluster()
            .short(&["no"])
            .status()
            .connect(&["proxy"])
            .fields(&[("spec.unschedulable", "spec.unschedulable")]),
        res("", "v1", "ConfigMap", "configmaps", config_data::ConfigMapStrategy).short(&["cm"]),
        res("", "v1", "Secret", "secrets", config_data::SecretStrategy).fields(&[("type", "type")]),
        plain::<k::core::v1::ServiceAccount>("", "v1", "ServiceAccount", "serviceaccounts").short(&["sa"]),
        plain::<k::core::v1::Event>("", "v1", "Event", "events").short(&["ev"]).fields(EVENT_FIELDS),
        res("", "v1", "PersistentVolume", "persistentvolumes", volumes::PersistentVolumeStrategy)
            .cluster()
            .short(&["pv"])
            .status(),
        res("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", volumes::PersistentVolumeClaimStrategy)
            .short(&["pvc"])
            .status(),
        res(
            "",
            "v1",
            "ReplicationController",
            "replicationcontrollers",
            replication_controller::ReplicationControllerStrategy,
        )
        .short(&["rc"])
        .all()
        .status()
        .scale()
        .spec()
        .fields(&[("status.replicas", "status.replicas")]),
        plain::<k::core::v1::ResourceQuota>("", "v1", "ResourceQuota", "resourcequotas").short(&["quota"]).status(),
        res("", "v1", "LimitRange", "limitranges", limit_range::LimitRangeStrategy).short(&["limits"]),
        res("", "v1", "PodTemplate", "podtemplates", pod_template::PodTemplateStrategy),
        // apps/v1
        res("apps", "v1", "Deployment", "deployments", WorkloadStrategy::<k::apps::v1::Deployment>::default())
            .short(&["deploy"])
            .all()
            .status()
            .scale()
            .spec(),
        res("apps", "v1", "ReplicaSet", "replicasets", WorkloadStrategy::<k::apps::v1::ReplicaSet>::default())
            .short(&["rs"])
            .all()
            .status()
            .scale()
            .spec()
            .fields(&[("status.replicas", "status.replicas")]),
        res("apps", "v1", "StatefulSet", "statefulsets", WorkloadStrategy::<k::apps::v1::StatefulSet>::default())
            .short(&["sts"])
            .all()
            .status()
            .scale()
            .spec(),
        res("apps", "v1", "DaemonSet", "daemonsets", WorkloadStrategy::<k::apps::v1::DaemonSet>::default())
            .short(&["ds"])
            .all()
            .status()
            .spec(),
        plain::<k::apps::v1::ControllerRevision>("apps", "v1", "ControllerRevision", "controllerrevisions"),
        // batch/v1
        res("batch", "v1", "Job", "jobs", job::JobStrategy)
            .all()
            .status()
            .spec()
            .fields(&[("status.successful", "status.succeeded")]),
        res("batch", "v1", "CronJob", "cronjobs", cronjob::CronJobStrategy).short(&["cj"]).all().status().spec(),
        // autoscaling: v2 is the stored version; v1 objects are the same objects seen through v1.
        res(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            autoscaler::HorizontalPodAutoscalerV2Strategy,
        )
        .short(&["hpa"])
        .all()
        .status()
        .spec(),
        res(
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            autoscaler::HorizontalPodAutoscalerV1Strategy,
        )
        .short(&["hpa"])
        .all()
        .status()
        .spec()
        .stored_as("autoscaling/horizontalpodautoscalers", Some(HPA_V1)),
        plain::<k::coordination::v1::Lease>("coordination.k8s.io", "v1", "Lease", "leases"),
        plain::<k::discovery::v1::EndpointSlice>("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
        plain::<k::networking::v1::Ingress>("networking.k8s.io", "v1", "Ingress", "ingresses")
            .short(&["ing"])
            .status()
            .spec(),
        plain::<k::networking::v1::IngressClass>("networking.k8s.io", "v1", "IngressClass", "ingressclasses").cluster(),
        plain::<k::networking::v1::NetworkPolicy>("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies")
            .short(&["netpol"])
            .spec(),
        res(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            disruption_budget::PodDisruptionBudgetStrategy,
        )
        .short(&["pdb"])
        .status()
        .spec(),
        plain::<k::rbac::v1::ClusterRoleBinding>(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
        )
        .cluster()
        .names(PathSegment),
        plain::<k::rbac::v1::ClusterRole>("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles")
            .cluster()
            .names(PathSegment),
        plain::<k::rbac::v1::RoleBinding>("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings")
            .names(PathSegment),
        plain::<k::rbac::v1::Role>("rbac.authorization.k8s.io", "v1", "Role", "roles").names(PathSegment),
        plain::<k::storage::v1::CSIDriver>("storage.k8s.io", "v1", "CSIDriver", "csidrivers").cluster(),
        plain::<k::storage::v1::CSINode>("storage.k8s.io", "v1", "CSINode", "csinodes").cluster(),
        plain::<k::storage::v1::CSIStorageCapacity>(
            "storage.k8s.io",
            "v1",
            "CSIStorageCapacity",
            "csistoragecapacities",
        ),
        plain::<k::storage::v1::StorageClass>("storage.k8s.io", "v1", "StorageClass", "storageclasses")
            .cluster()
            .short(&["sc"]),
        plain::<k::storage::v1::VolumeAttachment>("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments")
            .cluster()
            .status(),
        plain::<k::storage::v1::VolumeAttributesClass>(
            "storage.k8s.io",
            "v1",
            "VolumeAttributesClass",
            "volumeattributesclasses",
        )
        .cluster()
        .short(&["vac"]),
        plain::<k::scheduling::v1::PriorityClass>("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses")
            .cluster()
            .short(&["pc"]),
        plain::<k::events::v1::Event>("events.k8s.io", "v1", "Event", "events")
            .short(&["ev"])
            .stored_as("core/events", Some(EVENTS_V1)),
        plain::<k::certificates::v1::CertificateSigningRequest>(
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
            "certificatesigningrequests",
        )
        .cluster()
        .short(&["csr"])
        .status()
        .fields(&[("spec.signerName", "spec.signerName")]),
        plain::<k::node::v1::RuntimeClass>("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses").cluster(),
        plain::<CustomResourceDefinition>(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
        )
        .cluster()
        .short(&["crd", "crds"])
        .status()
        .spec(),
        plain::<k::authorization::v1::SelfSubjectAccessReview>(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
        )
        .cluster()
        .create_only(),
        plain::<k::authorization::v1::SelfSubjectRulesReview>(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectRulesReview",
            "selfsubjectrulesreviews",
        )
        .cluster()
        .create_only(),
        plain::<k::authentication::v1::SelfSubjectReview>(
            "authentication.k8s.io",
            "v1",
            "SelfSubjectReview",
            "selfsubjectreviews",
        )
        .cluster()
        .create_only(),
    ]
}
