//! The proxy-wasm shell: asks the core, applies its answer, counts it.

use crate::config::Config;
use filter_common::host::plugin::{Exchange, Map, Plugin, StreamFilter};
use filter_common::host::{load_config, Action, Counter};
use std::rc::Rc;

const FILTER: &str = "add_header";

struct Shared {
    config: Config,
    set: Counter,
    kept: Counter,
}

/// The plugin for one configuration; `None` after logging what is wrong.
pub fn configure(raw: Option<&[u8]>) -> Option<Box<dyn Plugin>> {
    plugin(load_config(FILTER, raw, Config::parse)?)
}

/// The plugin for a parsed configuration (the suite parses its own).
pub fn plugin(config: Config) -> Option<Box<dyn Plugin>> {
    log::info!("{FILTER}: sets {}", config.name);
    Some(Box::new(AddHeader(Rc::new(Shared {
        config,
        set: Counter::define(&format!("{FILTER}.set")),
        kept: Counter::define(&format!("{FILTER}.kept")),
    }))))
}

struct AddHeader(Rc<Shared>);

impl Plugin for AddHeader {
    fn stream(&self) -> Box<dyn StreamFilter> {
        Box::new(Stream(self.0.clone()))
    }
}

struct Stream(Rc<Shared>);

impl StreamFilter for Stream {
    fn on_response_headers(&mut self, x: &mut Exchange, _end_of_stream: bool) -> Action {
        let shared = &*self.0;
        let name = &shared.config.name;
        // Only a configuration that keeps the app's copy needs to read the
        // map: replacing is one host call whether the header is there or not.
        let has = shared.config.keep_existing && x.headers(Map::Response).contains(name);
        if shared.config.sets(has) {
            x.set_header(Map::Response, name, Some(shared.config.value.as_bytes()));
            shared.set.inc();
        } else {
            log::debug!("{FILTER}: kept the app's {name}");
            shared.kept.inc();
        }
        Action::Continue
    }
}
