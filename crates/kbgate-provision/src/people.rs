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

/// One record of a people CSV: the line it starts on, and its fields or why they cannot be read.
#[derive(Debug)]
struct Row {
    line: usize,
    fields: Result<csv::StringRecord, String>,
}

impl Row {
    /// An empty or whitespace-only line, skipped like the old line-based reader did.
    fn is_blank(&self) -> bool {
        matches!(&self.fields, Ok(r) if r.len() == 1 && r[0].trim().is_empty())
    }
}

/// Reads every record (RFC 4180 through the `csv` crate: commas, double quotes, `""` inside
/// quotes, quoted fields spanning lines; rows may have any number of fields). A quoted field
/// that is never closed would silently swallow every later row into one field, so that last
/// record is reported instead of being read.
fn read_rows(data: &[u8]) -> Vec<Row> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let mut rows: Vec<Row> = reader
        .records()
        .map(|r| match r {
            Ok(record) => Row {
                line: record.position().map_or(0, line_of),
                fields: Ok(record),
            },
            Err(e) => Row {
                line: e.position().map_or(0, line_of),
                fields: Err(match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => "unreadable: not UTF-8 text".to_owned(),
                    _ => format!("unreadable: {e}"),
                }),
            },
        })
        .collect();
    if ends_inside_quotes(data)
        && let Some(last) = rows.last_mut()
    {
        last.fields =
            Err("a quoted field is never closed (it would run to the end of the file)".into());
    }
    rows
}

fn line_of(p: &csv::Position) -> usize {
    usize::try_from(p.line()).unwrap_or(usize::MAX)
}

/// Whether the input ends inside a quoted field, read as the `csv` crate reads it: a quote
/// opens a quoted field only at the start of a field, `""` inside one is a literal quote, and
/// elsewhere a quote is an ordinary character.
fn ends_inside_quotes(data: &[u8]) -> bool {
    let mut quoted = false;
    let mut at_field_start = true;
    let mut bytes = data.iter().peekable();
    while let Some(&b) = bytes.next() {
        if quoted {
            if b == b'"' {
                if bytes.peek() == Some(&&b'"') {
                    bytes.next();
                } else {
                    quoted = false;
                }
            }
        } else {
            match b {
                b'"' if at_field_start => {
                    quoted = true;
                    at_field_start = false;
                }
                b',' | b'\n' | b'\r' => at_field_start = true,
                _ => at_field_start = false,
            }
        }
    }
    quoted
}

/// Imports people from CSV: a header row with an `email` column (any position, any case;
/// other columns ignored), then one person per record (a quoted field may span lines). Bad
/// rows are reported with the line they start on and the good rows are kept. Empty lines are
/// skipped.
pub async fn import_people_csv(
    store: &dyn Store,
    policy: &Policy,
    mut reader: impl BufRead,
    now: DateTime<Utc>,
) -> Result<ImportReport, ProvisionError> {
    let mut data = Vec::new();
    reader
        .read_to_end(&mut data)
        .map_err(|e| ProvisionError::Csv(format!("cannot read the file: {e}")))?;
    let mut rows = read_rows(&data).into_iter().filter(|r| !r.is_blank());
    let header = match rows.next() {
        None => {
            return Err(ProvisionError::Csv(
                "the file is empty (expected a header row with an `email` column)".into(),
            ));
        }
        Some(Row { fields: Err(e), .. }) => {
            return Err(ProvisionError::Csv(format!("header row: {e}")));
        }
        Some(Row { fields: Ok(h), .. }) => h,
    };
    let col = header
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("email"))
        .ok_or_else(|| {
            ProvisionError::Csv(format!(
                "the header row has no `email` column (columns: {})",
                header.iter().collect::<Vec<_>>().join(", ")
            ))
        })?;
    let mut report = ImportReport::default();
    let mut seen = std::collections::BTreeSet::new();
    for row in rows {
        let n = row.line;
        let fields = match row.fields {
            Ok(f) => f,
            Err(reason) => {
                report.bad_rows.push(BadRow { line: n, reason });
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

    fn fields(data: &str) -> Vec<(usize, Result<Vec<String>, String>)> {
        read_rows(data.as_bytes())
            .into_iter()
            .filter(|r| !r.is_blank())
            .map(|r| {
                (
                    r.line,
                    r.fields.map(|f| f.iter().map(str::to_owned).collect()),
                )
            })
            .collect()
    }

    fn one_row(data: &str) -> Vec<String> {
        match fields(data).as_slice() {
            [(_, Ok(f))] => f.clone(),
            other => panic!("{data:?}: {other:?}"),
        }
    }

    #[test]
    fn csv_fields() {
        assert_eq!(one_row("a,b,c"), ["a", "b", "c"]);
        assert_eq!(one_row(r#""x, y",z"#), ["x, y", "z"]);
        assert_eq!(one_row(r#""say ""hi""",1"#), [r#"say "hi""#, "1"]);
        assert_eq!(one_row("a,,"), ["a", "", ""]);
        assert!(matches!(fields(r#""open"#).as_slice(), [(1, Err(_))]));
    }

    #[test]
    fn a_quoted_field_may_span_lines() {
        let rows = fields("name,email\n\"Smith,\nBob\",bob@acme.com\nAnn,ann@acme.com\r\n");
        let lines: Vec<usize> = rows.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 2, 4]);
        assert_eq!(
            rows[1].1.as_deref().unwrap(),
            ["Smith,\nBob", "bob@acme.com"]
        );
        assert_eq!(rows[2].1.as_deref().unwrap(), ["Ann", "ann@acme.com"]);
    }

    #[test]
    fn an_unclosed_quote_is_reported_not_swallowed() {
        let rows = fields("email,company\nann@acme.com,\"Acme\nbob@acme.com,X\n");
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[1].0, 2);
        assert!(
            rows[1]
                .1
                .as_ref()
                .is_err_and(|e| e.contains("never closed")),
            "{rows:?}"
        );
        // Quotes inside an unquoted field, and doubled quotes, are not openings.
        assert!(!ends_inside_quotes(b"a,5\" screen\nb,\"x\"\"y\"\n"));
        assert!(ends_inside_quotes(b"a,\"x\"\"\n"));
    }

    #[test]
    fn bom_and_blank_lines() {
        let rows = fields("\u{feff}email\n\n  \nann@acme.com\n");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1.as_deref().unwrap(), ["email"]);
        assert_eq!(rows[1].0, 4);
    }
}
