//! Encodings the filters write or read: base64 (Istio's peer metadata,
//! record bodies), percent-escapes (paths) and JSON lines (records).

pub mod base64;
pub mod json;
pub mod percent;
