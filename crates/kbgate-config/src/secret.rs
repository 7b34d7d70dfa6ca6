//! Secrets: values that never appear in Debug, Display, logs or errors.
//!
//! A secret value is a [`SecretString`] (the `secrecy` crate: Debug prints `[REDACTED]`, there
//! is no Display, the memory is wiped on drop, and reading it takes an explicit
//! [`ExposeSecret::expose_secret`]). The whole workspace uses that one type.

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// Largest secret file read (a PEM key or token is far smaller).
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Where a secret is read from, resolved only when needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable name (`…_env` keys).
    Env(String),
    /// A file whose content, minus one trailing newline, is the secret (`…_file` keys). A
    /// relative path is relative to the working directory.
    File(PathBuf),
}

/// A secret could not be read. Names the variable or file, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("{what}: environment variable {var} is not set")]
    EnvMissing { what: &'static str, var: String },
    #[error("{what}: environment variable {var} is empty")]
    EnvEmpty { what: &'static str, var: String },
    #[error("{what}: cannot read {}: {reason}", path.display())]
    FileUnreadable {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{what}: {} is empty", path.display())]
    FileEmpty { what: &'static str, path: PathBuf },
    #[error("{what}: {} is larger than 64 KiB", path.display())]
    FileTooLarge { what: &'static str, path: PathBuf },
    #[error("{what}: not configured ({hint})")]
    NotConfigured {
        what: &'static str,
        hint: &'static str,
    },
}

impl SecretSource {
    /// Reads the secret from the process environment or the file system. `what` names the
    /// secret in errors (e.g. `"confluence API token"`).
    pub fn resolve(&self, what: &'static str) -> Result<SecretString, SecretError> {
        self.resolve_with(what, &|k| std::env::var(k).ok())
    }

    /// Like [`SecretSource::resolve`] with an explicit environment (tests).
    pub fn resolve_with(
        &self,
        what: &'static str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SecretString, SecretError> {
        match self {
            SecretSource::Env(var) => match env(var) {
                None => Err(SecretError::EnvMissing {
                    what,
                    var: var.clone(),
                }),
                Some(v) if v.trim().is_empty() => Err(SecretError::EnvEmpty {
                    what,
                    var: var.clone(),
                }),
                Some(v) => Ok(SecretString::from(v)),
            },
            SecretSource::File(path) => read_secret_file(what, path),
        }
    }
}

fn read_secret_file(what: &'static str, path: &Path) -> Result<SecretString, SecretError> {
    let unreadable = |e: std::io::Error| SecretError::FileUnreadable {
        what,
        path: path.to_owned(),
        reason: e.kind().to_string(),
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if meta.len() > MAX_SECRET_FILE_BYTES {
        return Err(SecretError::FileTooLarge {
            what,
            path: path.to_owned(),
        });
    }
    // The error reason is the io error kind only: io errors never include file content, but
    // keeping just the kind makes that obvious.
    let mut text = std::fs::read_to_string(path).map_err(unreadable)?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.trim().is_empty() {
        return Err(SecretError::FileEmpty {
            what,
            path: path.to_owned(),
        });
    }
    Ok(SecretString::from(text))
}

/// A URL that may carry a password (`postgres://user:pw@host/db`, `smtps://user:pw@host`):
/// the URL as configured is a [`SecretString`]; Debug and Display show the form with the
/// password replaced by `***`, computed once when the URL is parsed.
#[derive(Clone)]
pub struct SensitiveUrl {
    raw: SecretString,
    redacted: String,
    scheme: String,
}

impl SensitiveUrl {
    pub(crate) fn parse(raw: &str) -> Result<SensitiveUrl, url::ParseError> {
        let parsed = Url::parse(raw)?;
        let redacted = if parsed.password().is_none() {
            raw.to_owned()
        } else {
            let mut u = parsed.clone();
            // `set_password` fails only for URLs that cannot have credentials, and this one
            // has one.
            let _ = u.set_password(Some("***"));
            u.to_string()
        };
        Ok(SensitiveUrl {
            raw: SecretString::from(raw),
            redacted,
            scheme: parsed.scheme().to_owned(),
        })
    }

    /// The URL exactly as configured, password included. Pass it to the driver; never log it.
    pub fn expose(&self) -> &str {
        self.raw.expose_secret()
    }

    /// The URL's scheme.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// A form safe to log: the password (if any) replaced by `***`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }
}

/// Equal when the configured URLs are (tests compare loaded configurations).
impl PartialEq for SensitiveUrl {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for SensitiveUrl {}

impl fmt::Debug for SensitiveUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SensitiveUrl({:?})", self.redacted)
    }
}

impl fmt::Display for SensitiveUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted() {
        let s = SecretString::from("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(format!("{s:?}").contains("REDACTED"));
        assert_eq!(s.expose_secret(), "hunter2");
    }

    #[test]
    fn env_source() {
        let src = SecretSource::Env("TOKEN".into());
        let env = |k: &str| (k == "TOKEN").then(|| "abc".to_owned());
        assert_eq!(src.resolve_with("t", &env).unwrap().expose_secret(), "abc");
        let err = SecretSource::Env("NOPE".into())
            .resolve_with("t", &env)
            .unwrap_err();
        assert!(err.to_string().contains("NOPE"));
    }

    #[test]
    fn file_source_trims_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tok");
        std::fs::write(&p, "s3cret-value\r\n").unwrap();
        let s = SecretSource::File(p.clone()).resolve("t").unwrap();
        assert_eq!(s.expose_secret(), "s3cret-value");
        std::fs::write(&p, "\n").unwrap();
        let err = SecretSource::File(p.clone()).resolve("t").unwrap_err();
        assert!(matches!(err, SecretError::FileEmpty { .. }));
        let missing = SecretSource::File(dir.path().join("missing"))
            .resolve("t")
            .unwrap_err();
        assert!(missing.to_string().contains("missing"));
    }

    #[test]
    fn url_password_redacted() {
        let u = SensitiveUrl::parse("postgres://kb:pa55word@db.local/kb").unwrap();
        assert!(!format!("{u:?}").contains("pa55word"));
        assert!(!format!("{u}").contains("pa55word"));
        assert!(u.expose().contains("pa55word"));
        let plain = SensitiveUrl::parse("sqlite://kbgate.db").unwrap();
        assert_eq!(plain.to_string(), "sqlite://kbgate.db");
    }
}
