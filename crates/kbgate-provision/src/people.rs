//! Who is known: people imported from CSV, recorded from access requests, or discovered on
//! the site. Native mode provisions only known people (domains alone do not name anyone).

use std::io::BufRead;

use chrono::{DateTime, Utc};
use kbgate_policy::{Email, Policy};
use kbgate_store::{PersonRecord, Store};
use serde::{Deserialize, Serialize};

use crate::error::ProvisionError;

/// A row of a people CSV that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRow {
    /// 1-based line number in the file (the header is line 1).
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// What `kbgate people import` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// People added.
    pub added: usize,
    /// Rows naming someone already known (in the store or earlier in the file).
    pub duplicates: usize,
    /// Imported people whose domain no native audience grants today (kept: the policy may
    /// change, but nothing is provisioned for them now).
    pub outside_policy: usize,
    /// Rows that were not imported, with line numbers.
    pub bad_rows: Vec<BadRow>,
}

/// Splits one CSV line (RFC 4180: commas, double quotes, `""` inside quotes). Quoted fields
/// spanning lines are not supported and reported as bad rows by the caller.
fn split_csv(line: &str) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cur.push('"');
                }
                '"' => quoted = false,
                _ => cur.push(c),
            }
        } else {
            match c {
                '"' if at_start => quoted = true,
                ',' => {
                    out.push(std::mem::take(&mut cur));
                    at_start = true;
                    continue;
                }
                _ => cur.push(c),
            }
        }
        at_start = false;
    }
    if quoted {
        return Err("unterminated quoted field");
    }
    out.push(cur);
    Ok(out)
}

/// Imports people from CSV: a header row with an `email` column (any position, any case;
/// other columns ignored), then one person per row. Bad rows are reported with their line
/// numbers and the good rows are kept. Empty lines are skipped.
pub async fn import_people_csv(
    store: &dyn Store,
    policy: &Policy,
    reader: impl BufRead,
    now: DateTime<Utc>,
) -> Result<ImportReport, ProvisionError> {
    let mut lines = reader.lines().enumerate();
    let header = loop {
        match lines.next() {
            None => {
                return Err(ProvisionError::Csv(
                    "the file is empty (expected a header row with an `email` column)".into(),
                ));
            }
            Some((_, Err(e))) => {
                return Err(ProvisionError::Csv(format!("cannot read the file: {e}")));
            }
            Some((_, Ok(l))) if l.trim().is_empty() => continue,
            Some((_, Ok(l))) => break l,
        }
    };
    let header = split_csv(header.trim_start_matches('\u{feff}'))
        .map_err(|e| ProvisionError::Csv(format!("header row: {e}")))?;
    let col = header
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("email"))
        .ok_or_else(|| {
            ProvisionError::Csv(format!(
                "the header row has no `email` column (columns: {})",
                header.join(", ")
            ))
        })?;
    let mut report = ImportReport::default();
    let mut seen = std::collections::BTreeSet::new();
    for (i, line) in lines {
        let n = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                report.bad_rows.push(BadRow {
                    line: n,
                    reason: format!("unreadable: {e}"),
                });
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let fields = match split_csv(&line) {
            Ok(f) => f,
            Err(e) => {
                report.bad_rows.push(BadRow {
                    line: n,
                    reason: e.into(),
                });
                continue;
            }
        };
        let Some(raw) = fields.get(col).map(|s| s.trim()).filter(|s| !s.is_empty()) else {
            report.bad_rows.push(BadRow {
                line: n,
                reason: "no email in the email column".into(),
            });
            continue;
        };
        let email = match Email::parse(raw) {
            Ok(e) => e,
            Err(e) => {
                report.bad_rows.push(BadRow {
                    line: n,
                    reason: format!("{raw:?} is not a usable email address: {e}"),
                });
                continue;
            }
        };
        if !seen.insert(email.as_str().to_owned()) {
            report.duplicates += 1;
            continue;
        }
        let added = store
            .add_person(&PersonRecord {
                email: email.as_str().to_owned(),
                domain: email.domain().as_str().to_owned(),
                source: "import".into(),
                created_at: now,
            })
            .await?;
        if !added {
            report.duplicates += 1;
            continue;
        }
        report.added += 1;
        if !policy.may_request_access(&email, now) {
            report.outside_policy += 1;
        }
    }
    Ok(report)
}

/// All known people, by email (`kbgate people list`).
pub async fn list_people(store: &dyn Store) -> Result<Vec<PersonRecord>, ProvisionError> {
    Ok(store.people().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields() {
        assert_eq!(split_csv("a,b,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(split_csv(r#""x, y",z"#).unwrap(), ["x, y", "z"]);
        assert_eq!(
            split_csv(r#""say ""hi""",1"#).unwrap(),
            [r#"say "hi""#, "1"]
        );
        assert_eq!(split_csv("a,,").unwrap(), ["a", "", ""]);
        assert!(split_csv(r#""open"#).is_err());
    }
}
