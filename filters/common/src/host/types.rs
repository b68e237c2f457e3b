//! The proxy-wasm ABI's enumerations, as the host layer and the filters use them.

/// The proxy-wasm ABI's header map kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapType {
    HttpRequestHeaders = 0,
    HttpRequestTrailers = 1,
    HttpResponseHeaders = 2,
    HttpResponseTrailers = 3,
    HttpCallResponseHeaders = 6,
}

/// The proxy-wasm ABI's buffer kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferType {
    HttpRequestBody = 0,
    HttpResponseBody = 1,
    DownstreamData = 2,
    UpstreamData = 3,
    PluginConfiguration = 7,
}

/// The proxy-wasm ABI's answer to a stream callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Continue = 0,
    Pause = 1,
}
