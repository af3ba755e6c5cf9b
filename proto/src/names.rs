//! `names!`: the names of a vocabulary enum from one table (crate-internal).
//!
//! Each row is a variant, its canonical name (what `as_str` returns and `Display` writes) and
//! the aliases `FromStr` accepts besides it. Parsing trims and ignores ASCII case; an unknown
//! name is [`ContractError::UnknownName`](crate::ContractError::UnknownName) naming the input
//! and listing the canonical names in table order.
//!
//! ```text
//! names! {
//!     /// The doc comment of the generated `as_str`.
//!     Framework, parse as "framework" {
//!         Numpy => "numpy",
//!         Pytorch => "pytorch" | "torch",
//!     }
//! }
//! ```
//!
//! Without `, parse as "what"` only `as_str` and `Display` are generated, for an enum whose
//! parsing does not fit a table (see [`Operation`](crate::Operation)).

/// Generates `as_str`, `Display` and (with `parse as "what"`) `FromStr` for a vocabulary enum
/// from a table of (variant, canonical name, aliases); see the module documentation.
macro_rules! names {
    (
        $(#[$doc:meta])*
        $ty:ident, parse as $what:literal {
            $($variant:ident => $name:literal $(| $alias:literal)*),+ $(,)?
        }
    ) => {
        $crate::names::names! {
            $(#[$doc])*
            $ty {
                $($variant => $name),+
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::ContractError;

            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($name $(| $alias)* => Ok($ty::$variant),)+
                    _ => Err($crate::ContractError::UnknownName {
                        what: $what,
                        got: $crate::quote::bounded(s),
                        expected: [$($name),+].join(", "),
                    }),
                }
            }
        }
    };
    (
        $(#[$doc:meta])*
        $ty:ident {
            $($variant:ident => $name:literal),+ $(,)?
        }
    ) => {
        impl $ty {
            $(#[$doc])*
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use names;

#[cfg(test)]
mod tests {
    use crate::ContractError;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Shade {
        Light,
        Dark,
    }

    crate::names::names! {
        /// The name.
        Shade, parse as "shade" {
            Light => "light" | "pale",
            Dark => "dark",
        }
    }

    #[test]
    fn canonical_names_aliases_and_the_error() {
        assert_eq!(Shade::Light.as_str(), "light");
        assert_eq!(Shade::Dark.to_string(), "dark");
        assert_eq!(" PALE ".parse::<Shade>().unwrap(), Shade::Light);
        assert_eq!("Dark".parse::<Shade>().unwrap(), Shade::Dark);
        let e = "grey".parse::<Shade>().unwrap_err();
        assert!(
            matches!(&e, ContractError::UnknownName { what: "shade", got, expected }
                if got == "grey" && expected == "light, dark"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "unknown shade 'grey' (expected one of: light, dark)"
        );
    }
}
