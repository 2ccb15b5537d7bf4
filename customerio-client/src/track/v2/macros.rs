//! The two declarative macros the v2 operation types are written with: `string_enum!` (a
//! wire string with a catch-all) and `checked_type!` (a newtype whose decoding runs the same
//! checks as its constructor).

/// Declares a string enum with known values and a catch-all for values Customer.io may add.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this crate does not know, sent and kept as it is.
            Other(String),
        }

        impl $name {
            /// The wire value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )+
                    $name::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => $name::$variant, )+
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(d)?;
                Ok($name::from(text.as_str()))
            }
        }
    };
}

/// Declares a public per-action type as a newtype over a private field struct. Serialisation
/// is the field struct's; deserialisation runs `check` so a decoded value obeys the same
/// limits as a constructed one.
macro_rules! checked_type {
    ($(#[$meta:meta])* pub struct $name:ident($fields:ident);) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize)]
        #[serde(transparent)]
        pub struct $name($fields);

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = $name(<$fields as ::serde::Deserialize>::deserialize(d)?);
                value
                    .check()
                    .map_err(<D::Error as ::serde::de::Error>::custom)?;
                Ok(value)
            }
        }
    };
}
