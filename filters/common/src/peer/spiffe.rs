//! SPIFFE IDs as Istio issues them in workload certificates.

/// The namespace and service account of a SPIFFE ID
/// (`spiffe://<trust domain>/ns/<namespace>/sa/<service account>`): what an
/// mTLS peer certificate proves about the caller.
pub fn namespace_and_service_account(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("spiffe://")?;
    let (trust_domain, path) = rest.split_once('/')?;
    let mut parts = path.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("ns"), Some(ns), Some("sa"), Some(sa), None)
            if !trust_domain.is_empty() && !ns.is_empty() && !sa.is_empty() =>
        {
            Some((ns, sa))
        }
        _ => None,
    }
}
