//! [`config_object!`](crate::config_object) and
//! [`config_choice!`](crate::config_choice): a configuration object, or a
//! string field with a fixed set of values, declared once. From one line per
//! field (its documentation, JSON name, Rust type, how it is read, and the
//! type and default the README shows) they generate the struct, the keys its
//! object takes, the reading code over [`Field`](crate::config::Field) and
//! [`Object`](crate::config::Object), and the table the README's
//! configuration reference is held to
//! (`config::reference`, native builds only). They expand to the calls a
//! hand-written reader would make, so a module is no larger for them; the
//! table is only built by tests.

/// Declares a configuration object: the struct, `FIELDS` (the keys its JSON
/// object takes), `read(field)` (the object at `field`, refusing any other
/// key), `from_object(&object)` (the fields of an object whose keys were
/// already checked: a document's root) and `reference()` (the table of
/// [`FieldDoc`](crate::config::reference::FieldDoc)s for the README).
///
/// ```ignore
/// filter_common::config_object! {
///     /// When a long-lived connection gets a record.
///     #[derive(Debug)]
///     pub struct Segment {
///         /// write a record after this many bytes
///         pub bytes: Option<u64> = get(positive), type "integer";
///         /// the JSON key `match`, which is a Rust keyword
///         pub matcher as "match": Predicate = or(compile, Predicate::Any),
///             type "predicate", default "`{\"any\": true}`";
///     }
/// }
/// ```
///
/// Each field is `doc comment`, optional `pub`, the Rust name, optionally
/// `as "json_key"`, the type, then how it is read:
///
/// - `need(read)`: required (`read`, a function or closure from
///   [`Field`](crate::config::Field) to `Result<T>`, is called in place: no
///   generic function is instantiated per reader); missing, it is
///   refused with a fix to add it. `need(read, "fix")` names another fix.
///   The README's default reads `required`.
/// - `get(read)`: optional, `Option<T>`; the default reads `none`.
/// - `or(read, default)`: `default` when absent; the README's default is
///   shown from the value (`1024`, `"pass"`) unless given.
/// - `flag(default)`: a boolean.
/// - `object(read)`: an object whose fields all have defaults; absent, it is
///   read as `{}` (so its defaults are stated once, in its own declaration).
///   A default must be given.
/// - `with(read)`: `read: Fn(&Object, &str) -> Result<T>` gets the object and
///   the key, for readers that check the field against something else (a
///   default must be given).
///
/// then `, type "text"` (the README's type column; a
/// [`config_choice!`](crate::config_choice) type has `Kind::type_text()`) and
/// optionally `, default "text"`. Fields are read in the order declared, and a
/// reader may use the fields read before it and the context parameters
/// declared after the struct's name, `pub struct Rule(limits: RegexLimits)`,
/// which `read` and `from_object` then take too. A struct with a lifetime,
/// `pub struct Entry<'a>`, can borrow from the document (`&'a str` fields,
/// which need no drop code on the error paths).
#[macro_export]
macro_rules! config_object {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident $( ( $($cx:ident : $cxty:ty),* $(,)? ) )? { $($body:tt)* }
    ) => {
        $crate::config_object! {
            @object [$(#[$attr])*] [$vis] $name [] ['_] [$($($cx : $cxty),*)?] { $($body)* }
        }
    };
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident<$lt:lifetime> $( ( $($cx:ident : $cxty:ty),* $(,)? ) )?
        { $($body:tt)* }
    ) => {
        $crate::config_object! {
            @object [$(#[$attr])*] [$vis] $name [<$lt>] [$lt] [$($($cx : $cxty),*)?] { $($body)* }
        }
    };
    (
        @object [$($attr:tt)*] [$vis:vis] $name:ident [$($gen:tt)*] [$lt:lifetime]
        [$($cx:ident : $cxty:ty),*] {
            $(
                $(#[doc = $doc:literal])*
                $fvis:vis $field:ident $(as $key:literal)? : $ty:ty
                    = $how:ident ( $($arg:tt)* ), type $type_text:expr
                    $(, default $default_text:expr)? ;
            )*
        }
    ) => {
        $($attr)*
        $vis struct $name $($gen)* {
            $( $(#[doc = $doc])* $fvis $field: $ty, )*
        }

        #[allow(dead_code)]
        impl $($gen)* $name $($gen)* {
            /// The keys this object takes, in the order they are read.
            pub const FIELDS: &'static [&'static str] =
                &[$($crate::config_object!(@key $field $($key)?)),*];

            /// The object at `field`, whose keys must be [`Self::FIELDS`].
            pub fn read(
                field: $crate::config::Field<'_, $lt> $(, $cx: $cxty)*
            ) -> $crate::config::Result<Self> {
                Self::from_object(&field.object(Self::FIELDS)? $(, $cx)*)
            }

            #[inline]
            /// The fields of `o`, whose keys were checked against
            /// [`Self::FIELDS`] (and perhaps others read elsewhere).
            pub fn from_object(
                o: &$crate::config::Object<$lt> $(, $cx: $cxty)*
            ) -> $crate::config::Result<Self> {
                #[allow(unused_mut, unused_variables)]
                let mut path = ::std::string::String::new();
                $(
                    let $field: $ty = $crate::config_object!(
                        @read o, path, $crate::config_object!(@key $field $($key)?), $how($($arg)*)
                    );
                )*
                Ok($name { $($field),* })
            }

            /// Each field as the README's configuration reference lists it.
            #[cfg(not(target_arch = "wasm32"))]
            pub fn reference() -> ::std::vec::Vec<$crate::config::reference::FieldDoc> {
                ::std::vec![$(
                    $crate::config::reference::FieldDoc {
                        name: $crate::config_object!(@key $field $($key)?),
                        type_text: ::std::string::ToString::to_string(&$type_text),
                        default_text: $crate::config_object!(
                            @default $ty, $how($($arg)*) $(, $default_text)?
                        ),
                        doc: $crate::config::reference::doc_line(&[$($doc),*]),
                    }
                ),*]
            }
        }
    };

    (@key $field:ident) => { stringify!($field) };
    (@key $field:ident $key:literal) => { $key };

    (@read $o:ident, $path:ident, $key:expr, need($read:expr, $fix:expr)) => {
        match $o.locate($key, &mut $path) {
            Some(value) => $crate::config::read_field($read, $crate::config::Field { path: &$path, value })?,
            None => return Err($o.missing($key, $fix)),
        }
    };
    (@read $o:ident, $path:ident, $key:expr, need($read:expr)) => {
        $crate::config_object!(@read $o, $path, $key, need($read, $crate::config::ADD_IT))
    };
    (@read $o:ident, $path:ident, $key:expr, get($read:expr)) => {
        match $o.locate($key, &mut $path) {
            Some(value) => Some($crate::config::read_field($read, $crate::config::Field { path: &$path, value })?),
            None => None,
        }
    };
    (@read $o:ident, $path:ident, $key:expr, or($read:expr, $default:expr)) => {
        match $o.locate($key, &mut $path) {
            Some(value) => $crate::config::read_field($read, $crate::config::Field { path: &$path, value })?,
            None => $default,
        }
    };
    (@read $o:ident, $path:ident, $key:expr, object($read:expr)) => {{
        let absent = $crate::config::Value::Object(::std::default::Default::default());
        let value = $o.locate_or($key, &mut $path, &absent);
        $crate::config::read_field($read, $crate::config::Field { path: &$path, value })?
    }};
    (@read $o:ident, $path:ident, $key:expr, flag($default:expr)) => { $o.flag($key, $default)? };
    (@read $o:ident, $path:ident, $key:expr, with($read:expr)) => { $read($o, $key)? };

    (@default $ty:ty, $how:ident($($arg:tt)*), $text:expr) => {
        ::std::string::ToString::to_string(&$text)
    };
    (@default $ty:ty, need($($arg:tt)*)) => { ::std::string::String::from("required") };
    (@default $ty:ty, get($($arg:tt)*)) => { ::std::string::String::from("none") };
    (@default $ty:ty, or($read:expr, $default:expr)) => {{
        let value: $ty = $default;
        $crate::config::reference::ShowDefault::show(&value)
    }};
    (@default $ty:ty, flag($default:expr)) => {
        $crate::config::reference::ShowDefault::show(&$default)
    };
}

/// Declares a string field's values as an enum (which must be `Copy`):
/// `NAMES`, `ALL`, `from_name`, `as_str`, `read(field)` (refusing any other string, listing `NAMES` in the
/// fix) and `type_text()` (`"a"` | `"b"`, for the README).
///
/// ```ignore
/// filter_common::config_choice! {
///     #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
///     pub enum OnMissingIdentity {
///         #[default]
///         Pass = "pass",
///         Reject = "reject",
///     }
/// }
/// ```
#[macro_export]
macro_rules! config_choice {
    (
        $(#[$attr:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vattr:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$attr])*
        $vis enum $name {
            $( $(#[$vattr])* $variant ),+
        }

        #[allow(dead_code)]
        impl $name {
            /// Every value's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The value named `name`.
            pub fn from_name(name: &str) -> ::std::option::Option<Self> {
                match name {
                    $($text => ::std::option::Option::Some(Self::$variant),)+
                    _ => ::std::option::Option::None,
                }
            }

            /// The value's name, as the configuration writes it.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// The string at `field`, one of [`Self::NAMES`].
            pub fn read(field: $crate::config::Field<'_, '_>) -> $crate::config::Result<Self> {
                let name = field.str()?;
                Self::from_name(name).ok_or_else(|| field.not_one_of(name, Self::NAMES))
            }

            /// The README's type: `"a"` | `"b"`.
            #[cfg(not(target_arch = "wasm32"))]
            pub fn type_text() -> ::std::string::String {
                $crate::config::reference::choices(Self::NAMES)
            }
        }

        #[cfg(not(target_arch = "wasm32"))]
        impl $crate::config::reference::ShowDefault for $name {
            fn show(&self) -> ::std::string::String {
                ::std::format!("`{:?}`", self.as_str())
            }
        }
    };
}
