//! The four values a CF app is known by, and the header names they travel in.

use serde::Deserialize;

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
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// Per-field overrides as they appear in the configuration; a field left out
/// keeps its default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FourNames {
    pub app_guid: Option<String>,
    pub process_type: Option<String>,
    pub org_guid: Option<String>,
    pub space_guid: Option<String>,
}

impl FourNames {
    pub const FIELDS: [&'static str; 4] = ["app_guid", "process_type", "org_guid", "space_guid"];

    /// The overrides laid over `defaults`, each paired with its field name.
    pub fn over(self, defaults: [&str; 4]) -> [(&'static str, String); 4] {
        let given = [
            self.app_guid,
            self.process_type,
            self.org_guid,
            self.space_guid,
        ];
        let mut i = 0;
        given.map(|v| {
            let out = (
                Self::FIELDS[i],
                v.unwrap_or_else(|| defaults[i].to_string()),
            );
            i += 1;
            out
        })
    }
}

/// Pod labels Istio copies into the node metadata `LABELS` of a cf-for-k8s app.
pub const DEFAULT_LABEL_KEYS: [&str; 4] = [
    "cloudfoundry.org/app_guid",
    "cloudfoundry.org/process_type",
    "cloudfoundry.org/org_guid",
    "cloudfoundry.org/space_guid",
];
