//! Small parsed names: Confluence space keys, labels, audience names.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("the {kind} is empty")]
    Empty { kind: &'static str },
    #[error("the {kind} is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("the {kind} contains the character {ch:?}; allowed: {allowed}")]
    InvalidCharacter {
        kind: &'static str,
        ch: char,
        allowed: &'static str,
    },
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The name as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), &*self.0)
            }
        }
        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn check(
    s: &str,
    kind: &'static str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(char) -> bool,
) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if s.chars().count() > max {
        return Err(NameError::TooLong { kind, max });
    }
    if let Some(ch) = s.chars().find(|&c| !ok(c)) {
        return Err(NameError::InvalidCharacter { kind, ch, allowed });
    }
    Ok(())
}

/// A Confluence space key (`KB`, `~5b1c…` for personal spaces): `[A-Za-z0-9~]+`, at most 255.
///
/// Kept exactly as written and compared exactly (Confluence's keys are upper-case for global
/// spaces): a key written in the wrong case grants nothing rather than something unexpected.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpaceKey(Arc<str>);

impl SpaceKey {
    /// Parses a space key.
    pub fn parse(s: &str) -> Result<SpaceKey, NameError> {
        check(s, "space key", 255, "A-Z a-z 0-9 ~", |c| {
            c.is_ascii_alphanumeric() || c == '~'
        })?;
        Ok(SpaceKey(Arc::from(s)))
    }
}
string_newtype!(SpaceKey);

/// A Confluence label name, lower-cased as Confluence stores them; at most 255 characters, no
/// whitespace and none of Confluence's forbidden characters `:;,.?&[]()#^*@!<>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(Arc<str>);

impl Label {
    /// Parses a label, lower-casing it.
    pub fn parse(s: &str) -> Result<Label, NameError> {
        const FORBIDDEN: &str = ":;,.?&[]()#^*@!<>";
        check(
            s,
            "label",
            255,
            "any non-space characters except :;,.?&[]()#^*@!<>",
            |c| !c.is_whitespace() && !c.is_control() && !FORBIDDEN.contains(c),
        )?;
        Ok(Label(Arc::from(s.to_lowercase())))
    }
}
string_newtype!(Label);

/// An audience's name: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 64 characters. Native mode names
/// Confluence groups after it (`kbgate-<name>`), hence the tight alphabet.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AudienceName(Arc<str>);

impl AudienceName {
    /// Parses an audience name.
    pub fn parse(s: &str) -> Result<AudienceName, NameError> {
        const ALLOWED: &str = "A-Z a-z 0-9 _ . - (starting with a letter or digit)";
        check(s, "audience name", 64, ALLOWED, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
        })?;
        if let Some(ch) = s.chars().next().filter(|c| !c.is_ascii_alphanumeric()) {
            return Err(NameError::InvalidCharacter {
                kind: "audience name",
                ch,
                allowed: ALLOWED,
            });
        }
        Ok(AudienceName(Arc::from(s)))
    }
}
string_newtype!(AudienceName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_keys() {
        assert!(SpaceKey::parse("KB").is_ok());
        assert!(SpaceKey::parse("~5b1c2d").is_ok());
        assert!(SpaceKey::parse("").is_err());
        assert!(SpaceKey::parse("K B").is_err());
        assert!(SpaceKey::parse("KB\"").is_err());
        assert!(SpaceKey::parse(&"K".repeat(256)).is_err());
    }

    #[test]
    fn labels_lowercase() {
        assert_eq!(Label::parse("Public-FAQ").unwrap().as_str(), "public-faq");
        assert!(Label::parse("a b").is_err());
        assert!(Label::parse("global:x").is_err());
        assert!(Label::parse("").is_err());
    }

    #[test]
    fn audience_names() {
        assert!(AudienceName::parse("acme-corp_2.eu").is_ok());
        assert!(AudienceName::parse("-acme").is_err());
        assert!(AudienceName::parse("acme corp").is_err());
        assert!(AudienceName::parse(&"a".repeat(65)).is_err());
    }
}
