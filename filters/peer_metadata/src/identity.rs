//! From a decoded peer and the connection's certificate to what the app and
//! other filters see: output headers, filter state, and whether to trust it.

use crate::config::{Config, OUTPUTS};
use filter_common::header::is_valid_header_value;
use filter_common::peer::spiffe::namespace_and_service_account;
use filter_common::peer::{Peer, Published};
use std::rc::Rc;

/// The caller as this request presents it.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// `None` when nothing was sent, nothing decoded, the certificate
    /// contradicts it, or it was not verified while `require_verified` is set.
    pub peer: Option<&'a Peer>,
    /// The URI SAN of the mTLS peer certificate.
    pub principal: Option<&'a str>,
    /// mTLS, the certificate's SPIFFE namespace equals the decoded one, and
    /// nothing decoded contradicts the certificate.
    pub verified: bool,
    /// The certificate contradicts the decoded identity: another namespace,
    /// another service account, or another SPIFFE identity. None of it is
    /// passed on.
    pub spoofed: bool,
}

/// The service account the peer claims: `SERVICE_ACCOUNT`, else the one in
/// its SPIFFE `IDENTITY`.
pub fn claimed_service_account(peer: &Peer) -> Option<&str> {
    peer.service_account.as_deref().or_else(|| {
        peer.identity
            .as_deref()
            .and_then(namespace_and_service_account)
            .map(|(_, sa)| sa)
    })
}

impl<'a> Identity<'a> {
    pub fn new(peer: Option<&'a Peer>, principal: Option<&'a str>, require_verified: bool) -> Self {
        let (mut verified, mut spoofed) = (false, false);
        if let (Some(peer), Some(principal), Some((ns, sa))) = (
            peer,
            principal,
            principal.and_then(namespace_and_service_account),
        ) {
            spoofed = peer.namespace.as_deref().is_some_and(|n| n != ns)
                || claimed_service_account(peer).is_some_and(|s| s != sa)
                || peer.identity.as_deref().is_some_and(|id| id != principal);
            verified = !spoofed && peer.namespace.as_deref() == Some(ns);
        }
        Identity {
            peer: peer.filter(|_| !spoofed && (verified || !require_verified)),
            principal,
            verified,
            spoofed,
        }
    }

    /// What is published about this caller: the outputs' values (a decoded
    /// one only when the peer is trusted; the principal only from the
    /// certificate, never a decoded identity in its place), its labels and
    /// claimed service account.
    pub fn state(&self) -> Peer {
        let mut state = self.peer.cloned().unwrap_or_default();
        state.service_account = self
            .peer
            .and_then(claimed_service_account)
            .map(str::to_string);
        state.principal = self.principal.map(str::to_string);
        state.verified = self.verified;
        state
    }

    /// `(header, value)` for each known output, with the configured names.
    /// A decoded value that could not be a header value (CR, LF, NUL, other
    /// controls: the metadata is caller-controlled) is left out.
    pub fn headers<'c>(&self, config: &'c Config) -> Vec<(&'c str, String)> {
        let state = self.state();
        config
            .headers
            .iter()
            .zip(OUTPUTS)
            .filter_map(|(h, (_, _, key))| Some((h.as_str(), state.value(key)?)))
            .filter(|(_, v)| is_valid_header_value(v))
            .collect()
    }
}

/// What one identity makes: the output headers (configured names) and the
/// filter state.
#[derive(Debug, PartialEq, Eq)]
pub struct Outputs {
    pub verified: bool,
    pub spoofed: bool,
    pub headers: Vec<(String, String)>,
    /// `None` unless the configuration publishes filter state.
    pub published: Option<Published>,
}

/// The outputs of the last identity seen, reused while the same peer and
/// certificate repeat: a caller sends the same metadata on every request of
/// its connections, so formatting them once per change is enough. One entry,
/// so it is bounded and never stale: any other peer or certificate replaces it.
#[derive(Debug, Default)]
pub struct LastOutputs {
    last: Option<Kept>,
}

/// The peer and principal the kept outputs were made for.
#[derive(Debug)]
struct Kept {
    peer: Option<Rc<Peer>>,
    principal: Option<String>,
    outputs: Rc<Outputs>,
}

impl LastOutputs {
    pub fn get(
        &mut self,
        peer: Option<&Rc<Peer>>,
        principal: Option<&str>,
        config: &Config,
    ) -> Rc<Outputs> {
        let same_peer = |kept: &Option<Rc<Peer>>| match (kept, peer) {
            (None, None) => true,
            (Some(a), Some(b)) => Rc::ptr_eq(a, b) || a == b,
            _ => false,
        };
        if let Some(kept) = &self.last {
            if same_peer(&kept.peer) && kept.principal.as_deref() == principal {
                return kept.outputs.clone();
            }
        }
        let identity = Identity::new(peer.map(|p| &**p), principal, config.require_verified);
        let outputs = Rc::new(Outputs {
            verified: identity.verified,
            spoofed: identity.spoofed,
            headers: identity
                .headers(config)
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect(),
            published: config
                .filter_state
                .then(|| Published::new(identity.state())),
        });
        self.last = Some(Kept {
            peer: peer.cloned(),
            principal: principal.map(str::to_string),
            outputs: outputs.clone(),
        });
        outputs
    }
}

/// Repeated copies of a header that disagree: which one the sender meant
/// cannot be known.
#[derive(Debug, PartialEq, Eq)]
pub struct Conflicting;

/// The one value among repeated copies of a header.
pub fn single_value<'h>(values: &[&'h [u8]]) -> Result<Option<&'h [u8]>, Conflicting> {
    match values.split_first() {
        None => Ok(None),
        Some((first, rest)) if rest.iter().all(|v| v == first) => Ok(Some(first)),
        Some(_) => Err(Conflicting),
    }
}
