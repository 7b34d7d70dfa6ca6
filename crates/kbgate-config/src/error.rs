//! Config errors that point at the file, line, column and key (or the environment variable).

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// Where a bad value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A place in the config file; line and column start at 1 (column counts characters).
    File {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    /// An environment override (`KBGATE_SECTION_KEY`).
    Env { var: String },
}

/// One thing wrong with the configuration. Never contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: Location,
    /// Dotted key path, e.g. `portal.listen` or `audience[1].domains[0]` (indexes from 0);
    /// empty when unknown (TOML syntax errors).
    pub key: String,
    pub message: String,
}

impl Problem {
    /// The line in the file, if the problem is located in the file.
    pub fn line(&self) -> Option<usize> {
        match self.location {
            Location::File { line, .. } => Some(line),
            _ => None,
        }
    }

    /// The column in the file, if the problem is located in the file.
    pub fn column(&self) -> Option<usize> {
        match self.location {
            Location::File { column, .. } => Some(column),
            _ => None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::File { path, line, column } => {
                write!(f, "{}:{line}:{column}: ", path.display())?
            }
            Location::Env { var } => write!(f, "environment variable {var}: ")?,
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", ProblemList(problems))]
    Invalid { problems: Vec<Problem> },
}

impl ConfigError {
    /// The individual problems (empty for a read error).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { problems } => problems,
        }
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() > 1 {
            writeln!(f, "invalid configuration ({} problems):", self.0.len())?;
        } else {
            f.write_str("invalid configuration: ")?;
        }
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if self.0.len() > 1 {
                f.write_str("  ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Where a value came from: a byte range of the file, or an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Span(Range<usize>),
    Env(String),
}

/// Turns origins into [`Location`]s against the file text.
pub(crate) struct Locator<'a> {
    pub text: &'a str,
    pub path: PathBuf,
}

impl Locator<'_> {
    pub fn location(&self, origin: &Origin) -> Location {
        match origin {
            Origin::Env(var) => Location::Env { var: var.clone() },
            Origin::Span(span) => self.at(span.start),
        }
    }

    pub fn at(&self, offset: usize) -> Location {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location::File {
            path: self.path.clone(),
            line,
            column,
        }
    }

    pub fn problem(
        &self,
        origin: &Origin,
        key: impl Into<String>,
        msg: impl Into<String>,
    ) -> Problem {
        Problem {
            location: self.location(origin),
            key: key.into(),
            message: msg.into(),
        }
    }
}
