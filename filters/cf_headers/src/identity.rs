//! The four values a CF app is known by, and the header names they travel in.

/// One app's identity, in header order: app, process type, org, space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub values: [String; 4],
}

impl Identity {
    pub fn app_guid(&self) -> &str {
        &self.values[0]
    }
}

/// The process type used when a configuration or a pod gives none: every
/// cf-for-k8s route targets the `web` process unless told otherwise.
pub const DEFAULT_PROCESS_TYPE: &str = "web";

/// The header names of the four values, lowercase (how Envoy holds them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNames(pub [String; 4]);

impl Default for HeaderNames {
    fn default() -> Self {
        HeaderNames(
            [
                "cf-app-id",
                "cf-app-process-type",
                "cf-organization-id",
                "cf-space-id",
            ]
            .map(String::from),
        )
    }
}

impl HeaderNames {
    /// Whether `name` is one of the four exactly, case aside.
    pub fn is_configured(&self, name: &str) -> bool {
        self.0.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// The configuration's names for the four values, in header order.
pub const FIELDS: [&str; 4] = ["app_guid", "process_type", "org_guid", "space_guid"];

/// Pod labels Istio copies into the node metadata `LABELS` of a cf-for-k8s app.
pub const DEFAULT_LABEL_KEYS: [&str; 4] = [
    "cloudfoundry.org/app_guid",
    "cloudfoundry.org/process_type",
    "cloudfoundry.org/org_guid",
    "cloudfoundry.org/space_guid",
];
