//! The four values a CF app is known by, and the header names they travel in.

/// One of the four values, in header order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    AppGuid,
    ProcessType,
    OrgGuid,
    SpaceGuid,
}

impl Part {
    pub const ALL: [Part; 4] = [
        Part::AppGuid,
        Part::ProcessType,
        Part::OrgGuid,
        Part::SpaceGuid,
    ];

    /// Its name in the configuration.
    pub const fn field(self) -> &'static str {
        match self {
            Part::AppGuid => "app_guid",
            Part::ProcessType => "process_type",
            Part::OrgGuid => "org_guid",
            Part::SpaceGuid => "space_guid",
        }
    }

    /// The header it travels in unless configured otherwise.
    pub const fn default_header(self) -> &'static str {
        match self {
            Part::AppGuid => "cf-app-id",
            Part::ProcessType => "cf-app-process-type",
            Part::OrgGuid => "cf-organization-id",
            Part::SpaceGuid => "cf-space-id",
        }
    }

    /// The pod label Istio copies into the node metadata `LABELS` of a
    /// cf-for-k8s app.
    pub const fn default_label_key(self) -> &'static str {
        match self {
            Part::AppGuid => "cloudfoundry.org/app_guid",
            Part::ProcessType => "cloudfoundry.org/process_type",
            Part::OrgGuid => "cloudfoundry.org/org_guid",
            Part::SpaceGuid => "cloudfoundry.org/space_guid",
        }
    }

    /// The configuration's names of all four, in header order.
    pub const FIELDS: [&'static str; 4] = [
        Part::AppGuid.field(),
        Part::ProcessType.field(),
        Part::OrgGuid.field(),
        Part::SpaceGuid.field(),
    ];
}

/// One `T` for each [`Part`], read by part, never by position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ByPart<T>([T; 4]);

impl<T> ByPart<T> {
    pub fn from_fn(mut f: impl FnMut(Part) -> T) -> ByPart<T> {
        ByPart::from_dyn(&mut f)
    }

    // Through `dyn`: one instance per value type, not one per closure.
    fn from_dyn(f: &mut dyn FnMut(Part) -> T) -> ByPart<T> {
        let [a, b, c, d] = Part::ALL;
        ByPart([f(a), f(b), f(c), f(d)])
    }

    pub fn get(&self, part: Part) -> &T {
        let [app, process, org, space] = &self.0;
        match part {
            Part::AppGuid => app,
            Part::ProcessType => process,
            Part::OrgGuid => org,
            Part::SpaceGuid => space,
        }
    }

    /// The four values in header order, for code that treats them alike.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.0
    }
}

impl<T: Default> ByPart<T> {
    /// Like [`ByPart::from_fn`], stopping at the first error (the parts after
    /// it are not asked for).
    pub fn try_from_fn<E>(mut f: impl FnMut(Part) -> Result<T, E>) -> Result<ByPart<T>, E> {
        ByPart::try_from_dyn(&mut f)
    }

    // Through `dyn`, as `from_fn`.
    fn try_from_dyn<E>(f: &mut dyn FnMut(Part) -> Result<T, E>) -> Result<ByPart<T>, E> {
        let mut error = None;
        let values = ByPart::from_fn(|part| {
            if error.is_none() {
                match f(part) {
                    Ok(value) => return value,
                    Err(e) => error = Some(e),
                }
            }
            T::default()
        });
        match error {
            Some(e) => Err(e),
            None => Ok(values),
        }
    }
}

impl ByPart<String> {
    /// Each part's `name` as an owned value.
    pub fn named(name: fn(Part) -> &'static str) -> ByPart<String> {
        ByPart::from_fn(|part| name(part).to_string())
    }
}

impl<T> std::ops::Index<Part> for ByPart<T> {
    type Output = T;
    fn index(&self, part: Part) -> &T {
        self.get(part)
    }
}

/// One app's identity.
pub type Identity = ByPart<String>;

/// The process type used when a configuration or a pod gives none: every
/// cf-for-k8s route targets the `web` process unless told otherwise.
pub const DEFAULT_PROCESS_TYPE: &str = "web";

/// The header names of the four values, lowercase (how Envoy holds them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNames(pub ByPart<String>);

impl Default for HeaderNames {
    fn default() -> Self {
        HeaderNames(ByPart::named(Part::default_header))
    }
}

impl HeaderNames {
    /// Whether `name` is one of the four exactly, case aside.
    pub fn is_configured(&self, name: &str) -> bool {
        self.0
            .as_slice()
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    }

    /// Each value's header name with the value, in header order.
    pub fn with<'a>(
        &'a self,
        identity: &'a Identity,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        Part::ALL
            .into_iter()
            .map(move |part| (self.0[part].as_str(), identity[part].as_str()))
    }
}
