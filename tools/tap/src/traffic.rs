//! A recorded HTTP request as l7_policy sees it: its headers (pseudo-headers
//! included, names lowercase) and its caller, read from the `x-peer-*`
//! headers peer_metadata gives the app when it runs before the tap.

use crate::record::HttpRecord;
use filter_common::header::normalize_authority;
use filter_common::pairs::HeaderMap;
use l7_policy::rule::Caller;

/// The headers peer_metadata writes for the app.
const PRINCIPAL: &str = "x-peer-principal";
const NAMESPACE: &str = "x-peer-namespace";
const WORKLOAD: &str = "x-peer-workload";
const VERIFIED: &str = "x-peer-verified";

pub struct Observed {
    pub headers: HeaderMap,
    pub caller: Caller,
    pub method: String,
    /// `:path` as recorded, with its query.
    pub path: String,
    /// The authority as l7_policy's `host` sees it (no port, lowercase).
    pub host: Option<String>,
}

fn text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .first(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .filter(|v| !v.is_empty())
}

impl Observed {
    pub fn of(record: &HttpRecord) -> Observed {
        let pairs: Vec<(String, &[u8])> = record
            .request
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.as_slice()))
            .collect();
        let mut headers = HeaderMap::from_pairs(&pairs);
        // Envoy holds an HTTP/1.1 `Host` as `:authority`; a record may keep
        // the header's own name.
        if !headers.contains(":authority") {
            if let Some(host) = headers.first("host").map(<[u8]>::to_vec) {
                headers.append(":authority", &host);
            }
        }
        let authority = headers.first(":authority").unwrap_or_default();
        let caller = Caller {
            principal: text(&headers, PRINCIPAL),
            namespace: text(&headers, NAMESPACE),
            workload: text(&headers, WORKLOAD),
            verified: headers.first(VERIFIED) == Some(b"true"),
            ..Caller::default()
        };
        Observed {
            method: text(&headers, ":method").unwrap_or_default(),
            path: text(&headers, ":path").unwrap_or_default(),
            host: normalize_authority(authority),
            caller,
            headers,
        }
    }
}
