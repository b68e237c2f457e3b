//! The contexts Envoy creates in a VM, for either kind of module: root
//! contexts, each configuring one plugin, and the streams (HTTP) or
//! connections (network) those plugins serve. [`super::plugin`]
//! defines the two kinds and their exports; this is what they share.

use super::calls::{init_logging, plugin_configuration};
use std::cell::RefCell;
use std::rc::Rc;
use std::thread::LocalKey;

/// Parses a plugin configuration; `None` after logging the field and the fix.
pub type ConfigureFn<P> = fn(Option<&[u8]>) -> Option<Box<P>>;

/// One kind of module: what its root contexts configure and what each of
/// their streams or connections holds.
pub trait Kind: Sized + 'static {
    /// One configured filter, shared by its streams or connections on this worker.
    type Plugin: ?Sized;
    /// What one stream or connection holds.
    type Stream;
    /// This kind's contexts (each kind has its own thread-local).
    fn contexts() -> &'static LocalKey<RefCell<Contexts<Self>>>;
    /// Stream or connection `id` of `plugin`.
    fn stream(plugin: &Self::Plugin, id: u32) -> Self::Stream;
    fn on_tick(plugin: &Self::Plugin);
    fn on_http_call_response(plugin: &Self::Plugin, token: u32);
}

/// The configured plugins (root contexts) and the live streams of this VM.
/// Context ids grow, so both stay sorted by pushing at the end.
pub struct Contexts<K: Kind> {
    configure: Option<ConfigureFn<K::Plugin>>,
    roots: Vec<(u32, Option<Rc<K::Plugin>>)>,
    streams: Vec<(u32, K::Stream)>,
}

impl<K: Kind> Contexts<K> {
    pub(crate) const fn new() -> Self {
        Contexts {
            configure: None,
            roots: Vec::new(),
            streams: Vec::new(),
        }
    }
}

fn find<T>(list: &[(u32, T)], id: u32) -> Result<usize, usize> {
    list.binary_search_by_key(&id, |(k, _)| *k)
}

/// Runs `f` on the contexts; `None` if they are in use (a host call that
/// called back into the module, which Envoy does not do for these).
fn with<K: Kind, R>(f: impl FnOnce(&mut Contexts<K>) -> R) -> Option<R> {
    K::contexts().with(|c| c.try_borrow_mut().ok().map(|mut c| f(&mut c)))
}

/// The module's start: every root context Envoy creates in this VM will
/// configure one plugin with `configure`.
pub fn register<K: Kind>(configure: ConfigureFn<K::Plugin>) {
    with::<K, _>(|c| c.configure = Some(configure));
}

/// `proxy_on_context_create`: a root context (`parent` 0) or a stream of
/// root `parent`. A root without a plugin gets no streams: their callbacks
/// then find nothing and continue.
pub fn on_context_create<K: Kind>(id: u32, parent: u32) {
    with::<K, _>(|c| {
        if parent == 0 {
            if let Err(at) = find(&c.roots, id) {
                c.roots.insert(at, (id, None));
            }
            return;
        }
        let Some(stream) = find(&c.roots, parent)
            .ok()
            .and_then(|i| c.roots.get(i))
            .and_then(|(_, plugin)| plugin.as_deref())
            .map(|plugin| K::stream(plugin, id))
        else {
            return;
        };
        match find(&c.streams, id) {
            Ok(i) => {
                if let Some(entry) = c.streams.get_mut(i) {
                    entry.1 = stream;
                }
            }
            Err(at) => c.streams.insert(at, (id, stream)),
        }
    });
}

/// `proxy_on_configure`: parses the plugin configuration; `false` refuses it.
pub fn on_configure<K: Kind>(root: u32, size: usize) -> bool {
    init_logging();
    let raw = plugin_configuration(size);
    let configure = with::<K, _>(|c| c.configure).flatten();
    // Configuring may log or define stats (host calls), never call back in.
    let plugin: Option<Rc<K::Plugin>> = configure.and_then(|f| f(raw.as_deref())).map(Rc::from);
    let ok = plugin.is_some();
    with::<K, _>(|c| match find(&c.roots, root) {
        Ok(i) => {
            if let Some(entry) = c.roots.get_mut(i) {
                entry.1 = plugin;
            }
        }
        Err(at) => c.roots.insert(at, (root, plugin)),
    });
    ok
}

/// The plugin of root context `root`, out of the contexts, so that its root
/// callbacks may act for streams (`set_effective_context`) freely.
fn root_plugin<K: Kind>(root: u32) -> Option<Rc<K::Plugin>> {
    with::<K, _>(|c| {
        let i = find(&c.roots, root).ok()?;
        c.roots.get(i)?.1.clone()
    })
    .flatten()
}

/// `proxy_on_tick`.
pub fn on_tick<K: Kind>(root: u32) {
    if let Some(plugin) = root_plugin::<K>(root) {
        K::on_tick(&plugin);
    }
}

/// `proxy_on_http_call_response`.
pub fn on_http_call_response<K: Kind>(root: u32, token: u32) {
    if let Some(plugin) = root_plugin::<K>(root) {
        K::on_http_call_response(&plugin, token);
    }
}

/// Runs `f` on stream `id`; `None` for an unknown stream (or a root context).
pub fn with_stream<K: Kind, R>(id: u32, f: impl FnOnce(&mut K::Stream) -> R) -> Option<R> {
    with::<K, _>(|c| {
        let i = find(&c.streams, id).ok()?;
        let (_, stream) = c.streams.get_mut(i)?;
        Some(f(stream))
    })
    .flatten()
}

/// `proxy_on_delete`: forgets a stream or a root context.
pub fn on_delete<K: Kind>(id: u32) {
    with::<K, _>(|c| {
        if let Ok(i) = find(&c.streams, id) {
            c.streams.remove(i);
        } else if let Ok(i) = find(&c.roots, id) {
            c.roots.remove(i);
        }
    });
}
