//! A recorded HTTP request as l7_policy sees it: its headers (pseudo-headers
//! included, names lowercase) and its caller as Envoy proved it: the mTLS
//! principal tap_http records in `peer`, and the namespace and service
//! account that SPIFFE ID names. `x-peer-*` request headers are never read:
//! in a record they may be what the client sent.

use crate::record::HttpRecord;
use filter_common::header::normalize_authority;
use filter_common::header::pairs::HeaderMap;
use filter_common::peer::spiffe::namespace_and_service_account;
use l7_policy::rule::Caller;

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
        let principal = record.peer.clone().flatten();
        let proven = principal.as_deref().and_then(namespace_and_service_account);
        // What l7_policy would see with peer_metadata verifying a claim that
        // agrees with the certificate; claimed workloads and labels count
        // only through a `principals` table (Config::bind).
        let caller = Caller {
            namespace: proven.map(|(ns, _)| ns.to_string()),
            service_account: proven.map(|(_, sa)| sa.to_string()),
            verified: proven.is_some(),
            principal,
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
