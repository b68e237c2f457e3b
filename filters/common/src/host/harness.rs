//! Drives a module's plugin natively as Envoy would: a root context
//! configured with a plugin configuration, then streams or connections,
//! each callback run through the same dispatcher the exports use, against
//! the [`recording`](super::recording) host.

use super::contexts::{self, ConfigureFn, Kind};
use super::plugin::{self, Exchange, Http, Network, StreamFilter};
use super::recording::with;
use super::types::{Action, BufferType};
use std::marker::PhantomData;

/// One module's plugin, driven as Envoy drives it: a root context
/// configured with a plugin configuration, then stream (or connection)
/// contexts, each callback run through the same dispatcher the exports use.
pub struct Module<K: Kind> {
    root: u32,
    next_id: u32,
    kind: PhantomData<K>,
}

/// An HTTP module ([`plugin::Plugin`]s).
pub type Harness = Module<Http>;
/// A network filter module ([`plugin::NetworkPlugin`]s).
pub type NetworkHarness = Module<Network>;

impl<K: Kind> Module<K> {
    /// Configures `configure`'s plugin with `config` (as the plugin
    /// configuration buffer); `Err` with what it logged when it refuses it.
    pub fn configure(configure: ConfigureFn<K::Plugin>, config: &str) -> Result<Self, Vec<String>> {
        contexts::register::<K>(configure);
        with(|h| {
            h.buffers.insert(
                BufferType::PluginConfiguration as u32,
                config.as_bytes().to_vec(),
            )
        });
        let root = 1;
        contexts::on_context_create::<K>(root, 0);
        if contexts::on_configure::<K>(root, config.len()) {
            Ok(Module {
                root,
                next_id: root + 1,
                kind: PhantomData,
            })
        } else {
            Err(with(|h| h.logs.iter().map(|(_, m)| m.clone()).collect()))
        }
    }

    /// The next context id, created as a stream or connection of the root.
    fn context(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        contexts::on_context_create::<K>(id, self.root);
        id
    }

    /// The root's tick.
    pub fn tick(&self) {
        contexts::on_tick::<K>(self.root);
    }

    /// The answer to an HTTP call with `token`.
    pub fn http_call_response(&self, token: u32) {
        contexts::on_http_call_response::<K>(self.root, token);
    }
}

impl Module<Http> {
    /// A new stream context.
    pub fn stream(&mut self) -> Stream {
        Stream { id: self.context() }
    }
}

impl Module<Network> {
    /// A new connection context.
    pub fn connection(&mut self) -> Connection {
        Connection { id: self.context() }
    }
}

fn action(status: u32) -> Action {
    if status == Action::Pause as u32 {
        Action::Pause
    } else {
        Action::Continue
    }
}

/// One stream context of a [`Harness`].
pub struct Stream {
    id: u32,
}

impl Stream {
    fn run(&self, f: impl FnOnce(&mut dyn StreamFilter, &mut Exchange) -> Action) -> Action {
        action(plugin::on_stream(self.id, f))
    }

    pub fn request_headers(&self, end_of_stream: bool) -> Action {
        self.run(|f, x| f.on_request_headers(x, end_of_stream))
    }

    pub fn request_body(&self, size: usize, end_of_stream: bool) -> Action {
        self.run(|f, x| f.on_request_body(x, size, end_of_stream))
    }

    pub fn request_trailers(&self) -> Action {
        self.run(|f, x| f.on_request_trailers(x))
    }

    pub fn response_headers(&self, end_of_stream: bool) -> Action {
        self.run(|f, x| f.on_response_headers(x, end_of_stream))
    }

    pub fn response_body(&self, size: usize, end_of_stream: bool) -> Action {
        self.run(|f, x| f.on_response_body(x, size, end_of_stream))
    }

    pub fn response_trailers(&self) -> Action {
        self.run(|f, x| f.on_response_trailers(x))
    }

    pub fn log(&self) {
        self.run(|f, x| {
            f.on_log(x);
            Action::Continue
        });
    }

    /// Envoy deleting the context.
    pub fn delete(self) {
        contexts::on_delete::<Http>(self.id);
    }
}

/// One connection context of a [`NetworkHarness`].
pub struct Connection {
    id: u32,
}

impl Connection {
    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn new_connection(&self) -> Action {
        action(plugin::on_connection(self.id, |c| c.on_new_connection()))
    }

    /// `data` read from downstream (the host's downstream buffer holds it).
    pub fn downstream_data(&self, data: &[u8], end_of_stream: bool) -> Action {
        with(|h| {
            h.buffers
                .insert(BufferType::DownstreamData as u32, data.to_vec())
        });
        action(plugin::on_connection(self.id, |c| {
            c.on_downstream_data(data.len(), end_of_stream)
        }))
    }

    /// `data` toward downstream (the host's upstream buffer holds it).
    pub fn upstream_data(&self, data: &[u8], end_of_stream: bool) -> Action {
        with(|h| {
            h.buffers
                .insert(BufferType::UpstreamData as u32, data.to_vec())
        });
        action(plugin::on_connection(self.id, |c| {
            c.on_upstream_data(data.len(), end_of_stream)
        }))
    }

    pub fn downstream_close(&self) {
        plugin::on_connection(self.id, |c| {
            c.on_downstream_close();
            Action::Continue
        });
    }

    pub fn upstream_close(&self) {
        plugin::on_connection(self.id, |c| {
            c.on_upstream_close();
            Action::Continue
        });
    }

    /// Envoy done with the connection, then deleting it.
    pub fn done(self) {
        plugin::on_connection_done(self.id);
        contexts::on_delete::<Network>(self.id);
    }

    /// Envoy deleting the context without `done`.
    pub fn delete(self) {
        contexts::on_delete::<Network>(self.id);
    }
}
