/// The exports of an HTTP filter module, dispatching to `$configure`'s
/// plugins. With a list, only those callbacks are exported: Envoy skips a
/// callback the module does not export, which saves a call into the VM per
/// request for each one a filter does not need. `proxy_on_done` is never
/// exported: Envoy calls it on an HTTP stream only to delete the stream
/// right after, whatever it answers, so it would be one more call per
/// request for nothing.
#[macro_export]
macro_rules! http_module {
    ($configure:path) => {
        $crate::http_module!(
            $configure,
            [
                request_headers,
                request_body,
                request_trailers,
                response_headers,
                response_body,
                response_trailers,
                log,
                tick,
                http_call_response
            ]
        );
    };
    ($configure:path, [$($callback:ident),*]) => {
        $crate::module_exports!($crate::host::plugin::Http, $configure);
        $($crate::http_callback!($callback);)*
    };
}

/// The exports of a network filter module (`envoy.filters.network.wasm`),
/// dispatching to `$configure`'s plugins; only the callbacks listed, out of
/// `new_connection`, `downstream_data`, `upstream_data`, `downstream_close`,
/// `upstream_close`, `done`, `tick` and `http_call_response`.
#[macro_export]
macro_rules! network_module {
    ($configure:path, [$($callback:ident),*]) => {
        $crate::module_exports!($crate::host::plugin::Network, $configure);
        $($crate::network_callback!($callback);)*
    };
}

/// What every module exports: the start, memory for the host, and the
/// contexts' creation, configuration and deletion.
#[doc(hidden)]
#[macro_export]
macro_rules! module_exports {
    ($kind:ty, $configure:path) => {
        #[cfg(target_os = "wasi")]
        extern "C" {
            fn __wasm_call_ctors();
        }

        #[no_mangle]
        pub extern "C" fn _initialize() {
            // SAFETY: the WASI reactor's constructors, run once before anything else.
            #[cfg(target_os = "wasi")]
            unsafe {
                __wasm_call_ctors();
            }
            $crate::host::contexts::register::<$kind>($configure);
        }

        #[no_mangle]
        pub extern "C" fn proxy_abi_version_0_2_1() {}

        #[no_mangle]
        pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
            $crate::host::memory::allocate(size)
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_vm_start(_root: u32, _size: usize) -> u32 {
            1
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_configure(root: u32, size: usize) -> u32 {
            $crate::host::contexts::on_configure::<$kind>(root, size) as u32
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_context_create(id: u32, parent: u32) {
            $crate::host::contexts::on_context_create::<$kind>(id, parent);
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_delete(id: u32) {
            $crate::host::contexts::on_delete::<$kind>(id);
        }
    };
}

/// The root context's optional exports, for either kind of module.
#[doc(hidden)]
#[macro_export]
macro_rules! root_callback {
    ($kind:ty, tick) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_tick(root: u32) {
            $crate::host::contexts::on_tick::<$kind>(root);
        }
    };
    ($kind:ty, http_call_response) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_http_call_response(
            root: u32,
            token: u32,
            _headers: usize,
            _body: usize,
            _trailers: usize,
        ) {
            $crate::host::contexts::on_http_call_response::<$kind>(root, token);
        }
    };
}

/// One optional export of [`network_module!`].
#[doc(hidden)]
#[macro_export]
macro_rules! network_callback {
    (new_connection) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_new_connection(id: u32) -> u32 {
            $crate::host::plugin::on_connection(id, |c| c.on_new_connection())
        }
    };
    (downstream_data) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_downstream_data(id: u32, size: usize, end: u32) -> u32 {
            $crate::host::plugin::on_connection(id, |c| c.on_downstream_data(size, end != 0))
        }
    };
    (upstream_data) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_upstream_data(id: u32, size: usize, end: u32) -> u32 {
            $crate::host::plugin::on_connection(id, |c| c.on_upstream_data(size, end != 0))
        }
    };
    (downstream_close) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_downstream_connection_close(id: u32, _peer: u32) {
            $crate::host::plugin::on_connection(id, |c| {
                c.on_downstream_close();
                $crate::host::Action::Continue
            });
        }
    };
    (upstream_close) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_upstream_connection_close(id: u32, _peer: u32) {
            $crate::host::plugin::on_connection(id, |c| {
                c.on_upstream_close();
                $crate::host::Action::Continue
            });
        }
    };
    (done) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_done(id: u32) -> u32 {
            $crate::host::plugin::on_connection_done(id)
        }
    };
    (tick) => {
        $crate::root_callback!($crate::host::plugin::Network, tick);
    };
    (http_call_response) => {
        $crate::root_callback!($crate::host::plugin::Network, http_call_response);
    };
}

/// One optional export of [`http_module!`].
#[doc(hidden)]
#[macro_export]
macro_rules! http_callback {
    (request_headers) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_request_headers(id: u32, _n: usize, end: u32) -> u32 {
            $crate::host::plugin::on_stream(id, |f, x| f.on_request_headers(x, end != 0))
        }
    };
    (request_body) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_request_body(id: u32, size: usize, end: u32) -> u32 {
            $crate::host::plugin::on_stream(id, |f, x| f.on_request_body(x, size, end != 0))
        }
    };
    (request_trailers) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_request_trailers(id: u32, _n: usize) -> u32 {
            $crate::host::plugin::on_stream(id, |f, x| f.on_request_trailers(x))
        }
    };
    (response_headers) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_response_headers(id: u32, _n: usize, end: u32) -> u32 {
            $crate::host::plugin::on_stream(id, |f, x| f.on_response_headers(x, end != 0))
        }
    };
    (response_body) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_response_body(id: u32, size: usize, end: u32) -> u32 {
            $crate::host::plugin::on_stream(id, |f, x| f.on_response_body(x, size, end != 0))
        }
    };
    (response_trailers) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_response_trailers(id: u32, _n: usize) -> u32 {
            $crate::host::plugin::on_stream(id, |f, x| f.on_response_trailers(x))
        }
    };
    (log) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_log(id: u32) {
            $crate::host::plugin::on_stream(id, |f, x| {
                f.on_log(x);
                $crate::host::Action::Continue
            });
        }
    };
    (tick) => {
        $crate::root_callback!($crate::host::plugin::Http, tick);
    };
    (http_call_response) => {
        $crate::root_callback!($crate::host::plugin::Http, http_call_response);
    };
}
