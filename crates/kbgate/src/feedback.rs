//! `kbgate feedback export`: readers' "Was this helpful?" votes, for a spreadsheet or a
//! report.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use kbgate_config::Config;
use kbgate_policy::Domain;
use kbgate_store::{FeedbackFilter, FeedbackRecord};

use crate::wiring;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write every vote (page, space, title, answer, comment, domain, email when
    /// `[portal] record_emails` kept it, time), oldest first, to standard output. One row
    /// per person and page: a re-vote replaced the earlier one.
    Export(ExportArgs),
}

/// Output formats of `feedback export`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// RFC 4180 CSV with a header row.
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
    /// Only votes cast at or after this time: an RFC 3339 time (2026-09-01T12:00:00Z) or a
    /// date (2026-09-01, midnight UTC).
    #[arg(long, value_parser = parse_since)]
    since: Option<DateTime<Utc>>,
    /// Only votes of people at this email domain (exactly; e.g. acme.com).
    #[arg(long)]
    domain: Option<String>,
}

fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            format!(
                "{s:?} is neither an RFC 3339 time (2026-09-01T12:00:00Z) nor a date (2026-09-01)"
            )
        })
}

pub async fn run(config: &Path, cmd: Command) -> ExitCode {
    let Command::Export(args) = cmd;
    match export(config, args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::fail(&e),
    }
}

async fn export(config: &Path, args: ExportArgs) -> anyhow::Result<()> {
    let domain = args
        .domain
        .as_deref()
        .map(|d| Domain::parse(d.trim()).map(|d| d.as_str().to_owned()))
        .transpose()
        .context("--domain")?;
    let config = Config::load(config)?;
    let store = wiring::open_store(&config).await?;
    let votes = store
        .feedback(&FeedbackFilter {
            since: args.since,
            domain,
            ..FeedbackFilter::default()
        })
        .await?;
    let stdout = std::io::stdout();
    match args.format {
        Format::Csv => write_csv(stdout.lock(), &votes)?,
    }
    Ok(())
}

/// The CSV columns, in order.
const HEADER: [&str; 9] = [
    "time",
    "page_id",
    "space_key",
    "page_title",
    "helpful",
    "comment",
    "domain",
    "email",
    "voter",
];

/// Writes `votes` as CSV with a header row. Cells that a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`, tab or carriage return) get a leading `'`: titles and
/// comments come from outside (OWASP, "CSV Injection").
pub(crate) fn write_csv(out: impl Write, votes: &[FeedbackRecord]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(HEADER)?;
    for v in votes {
        w.write_record([
            v.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            cell(&v.page_id),
            cell(&v.space_key),
            cell(&v.page_title),
            (if v.helpful { "yes" } else { "no" }).to_owned(),
            cell(v.comment.as_deref().unwrap_or_default()),
            cell(&v.domain),
            cell(v.email.as_deref().unwrap_or_default()),
            v.voter.clone(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let at = Utc.with_ymd_and_hms(2026, 9, 1, 12, 0, 0).unwrap();
        let v = FeedbackRecord {
            page_id: "42".into(),
            voter: "ab12".into(),
            space_key: "KB".into(),
            page_title: "Setup, \"quick\"".into(),
            domain: "acme.com".into(),
            email: None,
            helpful: false,
            comment: Some("=HYPERLINK(\"http://x\")\nsecond line".into()),
            at,
        };
        let mut out = Vec::new();
        write_csv(&mut out, &[v]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), HEADER);
        let row = r.records().next().unwrap().unwrap();
        assert_eq!(&row[0], "2026-09-01T12:00:00.000Z");
        assert_eq!(&row[3], "Setup, \"quick\"");
        assert_eq!(&row[4], "no");
        assert_eq!(&row[5], "'=HYPERLINK(\"http://x\")\nsecond line");
        assert_eq!(&row[7], "");
    }

    #[test]
    fn since_takes_a_time_or_a_date() {
        assert_eq!(
            parse_since("2026-09-01").unwrap(),
            Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            parse_since("2026-09-01T14:00:00+02:00").unwrap(),
            Utc.with_ymd_and_hms(2026, 9, 1, 12, 0, 0).unwrap()
        );
        assert!(parse_since("last week").is_err());
    }
}
