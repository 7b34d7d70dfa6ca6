//! The CQL subset the simulator understands (enough for sync):
//!
//! ```text
//! query   := clause (AND clause)* [ORDER BY field [ASC|DESC]]
//! clause  := space (=|!=) value | space IN (value, …)
//!          | type (=) page|attachment|folder|whiteboard|database|embed|blogpost | type IN (…)
//!          | lastmodified|created (>|>=|<|<=|=) "yyyy/MM/dd HH:mm" | "yyyy-MM-dd[ HH:mm]"
//!          | lastmodified|created (>|>=|<|<=|=) now("(+|-)N(y|M|w|d|h|m)")
//!          | label = value | label IN (…)
//!          | ancestor = id | parent = id | parent IN (…) | id = id | id IN (…)
//!          | title ~ value | text ~ value
//! field   := lastmodified | created | title | id
//! ```
//!
//! `title ~` and `text ~` match when every word of the value (a trailing `*` wildcard dropped)
//! occurs, ignoring case, in the title (`text`: the title or the storage body); Confluence's
//! stemming and ranking are not modelled.
//!
//! Keywords and field names are case-insensitive. Date literals have minute precision (CQL has
//! no seconds) and are read in the **site's time zone** ([`SiteTimeZone`]): at UTC-08:00,
//! `lastmodified > "2026/09/28 10:00"` means after 18:00 UTC. A date may also be one of CQL's
//! date functions, computed server-side from the simulator clock: `now()`, `startOfDay()`,
//! `endOfDay()`, `startOfWeek()`, `endOfWeek()`, `startOfMonth()`, `endOfMonth()`,
//! `startOfYear()`, `endOfYear()`, each with an optional increment `"(+/-)nn(y|M|w|d|h|m)"`
//! (e.g. `now("-4h")`, `startOfDay("-1d")`). Day/week/month/year boundaries are the site
//! zone's. Evidence: Atlassian's CQL function reference
//! (<https://developer.atlassian.com/cloud/confluence/cql-functions/>: "`endOfDay("inc")` where
//! inc is an optional increment of (+/-)nn(y|M|w|d|h|m) … If the plus/minus sign is omitted,
//! plus is assumed"). That CQL reads literals and day boundaries in the searching user's /
//! site's time zone rather than UTC is our working assumption (Atlassian's pages found do not
//! spell it out; kbgate's change query uses `now("-Nm")`, which needs no zone), so the simulator models one site-wide zone (no per-user zones). Weeks start
//! on Monday (undocumented for Cloud; ISO choice). Anything else is rejected like Confluence
//! does (400, `Could not parse cql : …`).

use std::fmt;
use std::str::FromStr;

use crate::model::ContentKind;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, Months, NaiveDate, NaiveDateTime, NaiveTime,
    TimeZone, Utc,
};

/// The site's time zone, as a fixed UTC offset (`UTC`, `+13:00`, `-08:00`; `UTC-8` also
/// parses). Named zones with daylight saving (`America/Los_Angeles`) are not modelled: give
/// the offset in force for the test's instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteTimeZone(pub FixedOffset);

impl Default for SiteTimeZone {
    fn default() -> Self {
        SiteTimeZone(chrono::Offset::fix(&Utc))
    }
}

impl SiteTimeZone {
    /// UTC.
    pub fn utc() -> Self {
        Self::default()
    }
    /// A fixed offset in seconds east of UTC (`None` beyond ±24h).
    pub fn from_seconds(east: i32) -> Option<Self> {
        FixedOffset::east_opt(east).map(SiteTimeZone)
    }
}

impl FromStr for SiteTimeZone {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let s = raw.trim();
        let rest = s
            .strip_prefix("UTC")
            .or_else(|| s.strip_prefix("GMT"))
            .unwrap_or(s);
        if rest.is_empty() || rest == "Z" {
            return Ok(Self::utc());
        }
        let bad = || {
            format!(
                "time zone {raw:?}: give a fixed offset like +13:00, -08:00 or UTC (named zones are not supported)"
            )
        };
        let (sign, digits) = match rest.as_bytes().first() {
            Some(b'+') => (1, &rest[1..]),
            Some(b'-') => (-1, &rest[1..]),
            _ => return Err(bad()),
        };
        let (h, m) = match digits.split_once(':') {
            Some((h, m)) => (h, m),
            None if digits.len() == 4 => (&digits[..2], &digits[2..]),
            None => (digits, "0"),
        };
        let h: i32 = h.parse().map_err(|_| bad())?;
        let m: i32 = m.parse().map_err(|_| bad())?;
        if h > 14 || m > 59 {
            return Err(bad());
        }
        Self::from_seconds(sign * (h * 3600 + m * 60)).ok_or_else(bad)
    }
}

impl fmt::Display for SiteTimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl serde::Serialize for SiteTimeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for SiteTimeZone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a query is evaluated against: the server's clock and the site's zone.
#[derive(Debug, Clone, Copy)]
pub struct CqlContext {
    /// "Now" (the simulator clock).
    pub now: DateTime<Utc>,
    /// The site's time zone.
    pub tz: SiteTimeZone,
}

impl Default for CqlContext {
    fn default() -> Self {
        Self {
            now: Utc::now(),
            tz: SiteTimeZone::utc(),
        }
    }
}

/// Content types CQL can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// Pages.
    Page,
    /// Attachments.
    Attachment,
    /// Folders, whiteboards, databases, embeds, blog posts.
    Other(crate::model::ContentKind),
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `=`
    Eq,
}

impl Cmp {
    /// Applies the comparison.
    pub fn holds<T: Ord>(self, a: T, b: T) -> bool {
        match self {
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Eq => a == b,
        }
    }
}

/// One AND-ed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// Space key in the set (negated for `!=`).
    Space(Vec<String>, bool),
    /// Type in the set.
    Type(Vec<ContentType>),
    /// `lastmodified` comparison.
    LastModified(Cmp, DateTime<Utc>),
    /// `created` comparison.
    Created(Cmp, DateTime<Utc>),
    /// Has one of the labels.
    Label(Vec<String>),
    /// Descendant of a page.
    Ancestor(u64),
    /// Direct child of one of the pages.
    Parent(Vec<u64>),
    /// `title ~`: lowercased words that must all occur in the title.
    Title(Vec<String>),
    /// `text ~`: lowercased words that must all occur in the title or the body.
    Text(Vec<String>),
    /// Content id in the set.
    Id(Vec<u64>),
}

/// Sortable fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderField {
    /// Last modification.
    LastModified,
    /// Creation.
    Created,
    /// Title.
    Title,
    /// Id.
    Id,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// AND-ed clauses.
    pub clauses: Vec<Clause>,
    /// `ORDER BY` field and descending flag.
    pub order: Option<(OrderField, bool)>,
}

/// Why a query was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Could not parse cql : {cql}")]
pub struct CqlError {
    /// The offending query.
    pub cql: String,
    /// What went wrong (for logs/tests).
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Str(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '"' | '\'' => {
                let q = c;
                let mut v = String::new();
                i += 1;
                loop {
                    match cs.get(i) {
                        None => return Err("unterminated string".into()),
                        Some('\\') => {
                            if let Some(n) = cs.get(i + 1) {
                                v.push(*n);
                            }
                            i += 2;
                        }
                        Some(ch) if *ch == q => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            '>' | '<' | '!' | '=' | '~' => {
                let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
                let op = match two.as_str() {
                    ">=" => Some(">="),
                    "<=" => Some("<="),
                    "!=" => Some("!="),
                    "!~" => Some("!~"),
                    _ => None,
                };
                if let Some(op) = op {
                    out.push(Tok::Op(op));
                    i += 2;
                } else {
                    out.push(Tok::Op(match c {
                        '>' => ">",
                        '<' => "<",
                        '=' => "=",
                        '~' => "~",
                        _ => return Err("unexpected '!'".into()),
                    }));
                    i += 1;
                }
            }
            _ => {
                let mut v = String::new();
                while let Some(ch) = cs.get(i) {
                    if ch.is_whitespace() || "()\",'=<>!~".contains(*ch) {
                        break;
                    }
                    v.push(*ch);
                    i += 1;
                }
                out.push(Tok::Word(v));
            }
        }
    }
    Ok(out)
}

/// Parses a CQL date read as UTC: `yyyy/MM/dd HH:mm`, `yyyy-MM-dd HH:mm`, `yyyy/MM/dd`,
/// `yyyy-MM-dd`.
pub fn parse_date(v: &str) -> Option<DateTime<Utc>> {
    parse_date_in(v, SiteTimeZone::utc())
}

/// Parses a CQL date literal as a wall-clock time of the site's zone.
pub fn parse_date_in(v: &str, tz: SiteTimeZone) -> Option<DateTime<Utc>> {
    let v = v.trim();
    let local = |t: NaiveDateTime| tz.0.from_local_datetime(&t).single().map(|t| t.to_utc());
    for f in ["%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, f) {
            return local(t);
        }
    }
    for f in ["%Y/%m/%d", "%Y-%m-%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(v, f) {
            return local(d.and_time(NaiveTime::MIN));
        }
    }
    None
}

/// Applies an increment `(+/-)nn(y|M|w|d|h|m)` (sign optional, plus assumed).
fn apply_increment(t: DateTime<FixedOffset>, inc: &str) -> Option<DateTime<FixedOffset>> {
    let inc = inc.trim();
    if inc.is_empty() {
        return Some(t);
    }
    let (neg, body) = match inc.as_bytes()[0] {
        b'-' => (true, &inc[1..]),
        b'+' => (false, &inc[1..]),
        _ => (false, inc),
    };
    let unit = body.chars().last()?;
    let n: i64 = body[..body.len() - unit.len_utf8()].trim().parse().ok()?;
    let months = |k: i64| -> Option<DateTime<FixedOffset>> {
        let m = Months::new(u32::try_from(k).ok()?);
        if neg {
            t.checked_sub_months(m)
        } else {
            t.checked_add_months(m)
        }
    };
    let dur = match unit {
        'y' => return months(n.checked_mul(12)?),
        'M' => return months(n),
        'w' => Duration::try_weeks(n)?,
        'd' => Duration::try_days(n)?,
        'h' => Duration::try_hours(n)?,
        'm' => Duration::try_minutes(n)?,
        _ => return None,
    };
    if neg {
        t.checked_sub_signed(dur)
    } else {
        t.checked_add_signed(dur)
    }
}

/// Evaluates a CQL date function (`now`, `startOfDay`, …) with an optional increment.
pub fn eval_function(name: &str, inc: Option<&str>, ctx: &CqlContext) -> Option<DateTime<Utc>> {
    let now = ctx.now.with_timezone(&ctx.tz.0);
    let inc = inc.unwrap_or("");
    let at_midnight = |d: NaiveDate| {
        ctx.tz
            .0
            .from_local_datetime(&d.and_time(NaiveTime::MIN))
            .single()
    };
    let day = now.date_naive();
    let week_start = day - Duration::days(day.weekday().num_days_from_monday() as i64);
    let month_start = day.with_day(1)?;
    let year_start = NaiveDate::from_ymd_opt(day.year(), 1, 1)?;
    let lower = name.to_ascii_lowercase();
    // Ends are the last millisecond before the next period starts.
    let end = |start: DateTime<FixedOffset>, next: DateTime<FixedOffset>| {
        let _ = start;
        next - Duration::milliseconds(1)
    };
    let t = match lower.as_str() {
        "now" => apply_increment(now, inc)?,
        "startofday" => apply_increment(at_midnight(day)?, inc)?,
        "endofday" => {
            let s = at_midnight(day)?;
            apply_increment(end(s, s + Duration::days(1)), inc)?
        }
        "startofweek" => apply_increment(at_midnight(week_start)?, inc)?,
        "endofweek" => {
            let s = at_midnight(week_start)?;
            apply_increment(end(s, s + Duration::weeks(1)), inc)?
        }
        "startofmonth" => apply_increment(at_midnight(month_start)?, inc)?,
        "endofmonth" => {
            let s = at_midnight(month_start)?;
            apply_increment(end(s, s.checked_add_months(Months::new(1))?), inc)?
        }
        "startofyear" => apply_increment(at_midnight(year_start)?, inc)?,
        "endofyear" => {
            let s = at_midnight(year_start)?;
            apply_increment(end(s, s.checked_add_months(Months::new(12))?), inc)?
        }
        _ => return None,
    };
    Some(t.to_utc())
}

struct P {
    toks: Vec<Tok>,
    i: usize,
    ctx: CqlContext,
}

impl P {
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }
    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn value(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Str(s)) | Some(Tok::Word(s)) => Ok(s),
            t => Err(format!("expected a value, got {t:?}")),
        }
    }
    fn values(&mut self, op: &str) -> Result<Vec<String>, String> {
        if op.eq_ignore_ascii_case("in") {
            if self.next() != Some(Tok::LParen) {
                return Err("expected ( after IN".into());
            }
            let mut vs = vec![self.value()?];
            loop {
                match self.next() {
                    Some(Tok::Comma) => vs.push(self.value()?),
                    Some(Tok::RParen) => break,
                    t => return Err(format!("expected , or ), got {t:?}")),
                }
            }
            Ok(vs)
        } else {
            Ok(vec![self.value()?])
        }
    }
    /// A date: a literal in the site's zone, or a date function call.
    fn date(&mut self) -> Result<DateTime<Utc>, String> {
        match self.next() {
            Some(Tok::Str(v)) => {
                parse_date_in(&v, self.ctx.tz).ok_or_else(|| format!("bad date {v:?}"))
            }
            Some(Tok::Word(f)) if self.peek() == Some(&Tok::LParen) => {
                self.next();
                let inc = match self.next() {
                    Some(Tok::RParen) => None,
                    Some(Tok::Str(v)) => {
                        if self.next() != Some(Tok::RParen) {
                            return Err("expected ) after the increment".into());
                        }
                        Some(v)
                    }
                    t => return Err(format!("bad function argument {t:?}")),
                };
                eval_function(&f, inc.as_deref(), &self.ctx)
                    .ok_or_else(|| format!("bad date function {f}({inc:?})"))
            }
            Some(Tok::Word(v)) => {
                parse_date_in(&v, self.ctx.tz).ok_or_else(|| format!("bad date {v:?}"))
            }
            t => Err(format!("expected a date, got {t:?}")),
        }
    }
    fn op(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Op(o)) => Ok(o.to_string()),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") => Ok("in".into()),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") => {
                Err("NOT IN is not supported".into())
            }
            t => Err(format!("expected an operator, got {t:?}")),
        }
    }
}

fn cmp_of(op: &str) -> Result<Cmp, String> {
    Ok(match op {
        ">" => Cmp::Gt,
        ">=" => Cmp::Ge,
        "<" => Cmp::Lt,
        "<=" => Cmp::Le,
        "=" => Cmp::Eq,
        o => return Err(format!("operator {o} not supported on dates")),
    })
}

/// Lowercased words of a `~` value, `*` wildcards dropped.
fn words_of(v: &str) -> Vec<String> {
    v.split(|c: char| c.is_whitespace() || c == '*')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn parse_inner(cql: &str, ctx: &CqlContext) -> Result<Query, String> {
    let toks = lex(cql)?;
    let mut p = P {
        toks,
        i: 0,
        ctx: *ctx,
    };
    let mut clauses = Vec::new();
    let mut order = None;
    if p.peek().is_none() {
        return Err("empty query".into());
    }
    loop {
        if p.keyword("order") {
            break;
        }
        let field = match p.next() {
            Some(Tok::Word(w)) => w.to_ascii_lowercase(),
            t => return Err(format!("expected a field, got {t:?}")),
        };
        let op = p.op()?;
        let clause = match field.as_str() {
            "space" | "space.key" => {
                let neg = op == "!=";
                if !(op == "=" || neg || op == "in") {
                    return Err(format!("operator {op} not supported on space"));
                }
                Clause::Space(p.values(&op)?, neg)
            }
            "type" => {
                if !(op == "=" || op == "in") {
                    return Err(format!("operator {op} not supported on type"));
                }
                let mut ts = Vec::new();
                for v in p.values(&op)? {
                    ts.push(match v.to_ascii_lowercase().as_str() {
                        "page" => ContentType::Page,
                        "attachment" => ContentType::Attachment,
                        "folder" => ContentType::Other(ContentKind::Folder),
                        "whiteboard" => ContentType::Other(ContentKind::Whiteboard),
                        "database" => ContentType::Other(ContentKind::Database),
                        "embed" => ContentType::Other(ContentKind::Embed),
                        "blogpost" => ContentType::Other(ContentKind::Blogpost),
                        other => return Err(format!("unsupported type {other}")),
                    });
                }
                Clause::Type(ts)
            }
            "lastmodified" | "created" => {
                let c = cmp_of(&op)?;
                let t = p.date()?;
                if field == "created" {
                    Clause::Created(c, t)
                } else {
                    Clause::LastModified(c, t)
                }
            }
            "label" => {
                if !(op == "=" || op == "in") {
                    return Err(format!("operator {op} not supported on label"));
                }
                Clause::Label(
                    p.values(&op)?
                        .into_iter()
                        .map(|l| l.to_lowercase())
                        .collect(),
                )
            }
            "ancestor" => {
                if op != "=" {
                    return Err("only ancestor = id is supported".into());
                }
                let v = p.value()?;
                Clause::Ancestor(v.parse().map_err(|_| format!("bad id {v}"))?)
            }
            "parent" => {
                if !(op == "=" || op == "in") {
                    return Err(format!("operator {op} not supported on parent"));
                }
                let mut ids = Vec::new();
                for v in p.values(&op)? {
                    ids.push(v.parse().map_err(|_| format!("bad id {v}"))?);
                }
                Clause::Parent(ids)
            }
            "title" | "text" => {
                if op != "~" {
                    return Err(format!("operator {op} not supported on {field}"));
                }
                let words = words_of(&p.value()?);
                if words.is_empty() {
                    return Err(format!("empty {field} query"));
                }
                if field == "title" {
                    Clause::Title(words)
                } else {
                    Clause::Text(words)
                }
            }
            "id" | "content" => {
                if !(op == "=" || op == "in") {
                    return Err(format!("operator {op} not supported on id"));
                }
                let mut ids = Vec::new();
                for v in p.values(&op)? {
                    let raw = v.trim_start_matches("att");
                    ids.push(raw.parse().map_err(|_| format!("bad id {v}"))?);
                }
                Clause::Id(ids)
            }
            other => return Err(format!("unsupported field {other}")),
        };
        clauses.push(clause);
        match p.peek() {
            None => break,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("and") => {
                p.next();
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("order") => break,
            t => return Err(format!("expected AND or ORDER BY, got {t:?}")),
        }
    }
    if p.keyword("order") {
        p.next();
        if !p.keyword("by") {
            return Err("expected BY after ORDER".into());
        }
        p.next();
        let field = match p.next() {
            Some(Tok::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "lastmodified" => OrderField::LastModified,
                "created" => OrderField::Created,
                "title" => OrderField::Title,
                "id" => OrderField::Id,
                other => return Err(format!("cannot order by {other}")),
            },
            t => return Err(format!("expected a field after ORDER BY, got {t:?}")),
        };
        let desc = if p.keyword("desc") {
            p.next();
            true
        } else {
            if p.keyword("asc") {
                p.next();
            }
            false
        };
        order = Some((field, desc));
    }
    if let Some(t) = p.peek() {
        return Err(format!("unexpected trailing token {t:?}"));
    }
    if clauses.is_empty() {
        return Err("a query needs at least one clause".into());
    }
    Ok(Query { clauses, order })
}

/// Parses a query of the supported subset, dates in UTC and "now" the real clock.
pub fn parse(cql: &str) -> Result<Query, CqlError> {
    parse_with(cql, &CqlContext::default())
}

/// Parses a query with the site's zone and clock.
pub fn parse_with(cql: &str, ctx: &CqlContext) -> Result<Query, CqlError> {
    parse_inner(cql, ctx).map_err(|reason| CqlError {
        cql: cql.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sync_queries() {
        let q = parse(
            r#"space = "KB" and lastmodified > "2026/09/28 10:00" ORDER BY lastmodified desc"#,
        )
        .unwrap();
        assert_eq!(q.clauses.len(), 2);
        assert_eq!(q.clauses[0], Clause::Space(vec!["KB".into()], false));
        assert_eq!(
            q.clauses[1],
            Clause::LastModified(Cmp::Gt, parse_date("2026-09-28 10:00").unwrap())
        );
        assert_eq!(q.order, Some((OrderField::LastModified, true)));
        let q = parse("SPACE IN (\"A\",'B') AND Type=attachment").unwrap();
        assert_eq!(
            q.clauses,
            vec![
                Clause::Space(vec!["A".into(), "B".into()], false),
                Clause::Type(vec![ContentType::Attachment])
            ]
        );
        let q = parse("type = page and lastmodified >= \"2026-01-31\"").unwrap();
        assert!(matches!(q.clauses[1], Clause::LastModified(Cmp::Ge, _)));
    }

    #[test]
    fn literals_are_site_time_and_functions_use_the_clock() {
        let now = parse_date("2026-09-28 20:30").unwrap();
        let la = CqlContext {
            now,
            tz: "-08:00".parse().unwrap(),
        };
        let q = parse_with(r#"lastmodified > "2026/09/28 10:00""#, &la).unwrap();
        assert_eq!(
            q.clauses[0],
            Clause::LastModified(Cmp::Gt, parse_date("2026-09-28 18:00").unwrap())
        );
        let q = parse_with(
            r#"lastmodified >= now("-4h") and created < startOfDay()"#,
            &la,
        )
        .unwrap();
        assert_eq!(
            q.clauses[0],
            Clause::LastModified(Cmp::Ge, parse_date("2026-09-28 16:30").unwrap())
        );
        // 20:30 UTC is 12:30 at -08:00: the site's day began at 08:00 UTC.
        assert_eq!(
            q.clauses[1],
            Clause::Created(Cmp::Lt, parse_date("2026-09-28 08:00").unwrap())
        );
        let nz = CqlContext {
            now,
            tz: "+13:00".parse().unwrap(),
        };
        // 20:30 UTC is 09:30 on the 29th at +13:00.
        let q = parse_with(
            "created >= startOfDay(\"-1d\") and lastmodified > now(\"-15m\")",
            &nz,
        )
        .unwrap();
        assert_eq!(
            q.clauses[0],
            Clause::Created(Cmp::Ge, parse_date("2026-09-27 11:00").unwrap())
        );
        assert_eq!(
            q.clauses[1],
            Clause::LastModified(Cmp::Gt, parse_date("2026-09-28 20:15").unwrap())
        );
        assert!("America/Los_Angeles".parse::<SiteTimeZone>().is_err());
        assert_eq!("UTC-8".parse::<SiteTimeZone>().unwrap(), la.tz);
    }

    #[test]
    fn rejects_the_rest() {
        for bad in [
            "",
            "space = KB or type = page",
            "text ~",
            "lastmodified > now(\"-1x\")",
            "parent > 5",
            "space = \"KB",
            "lastmodified > \"yesterday\"",
            "type = comment",
            "space = KB order lastmodified",
            "space = KB and",
            "space > KB",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.to_string().starts_with("Could not parse cql : "), "{bad}");
        }
    }

    #[test]
    fn parses_admin_queries() {
        let now = parse_date("2026-10-01 12:00").unwrap();
        let ctx = CqlContext {
            now,
            tz: SiteTimeZone::utc(),
        };
        let q = parse_with(
            r#"type in (page, blogpost) and title ~ "Release Notes*" and text ~ 'api' and parent = 42 and lastmodified > now("-1d") and created >= now("-2w") and created < now()"#,
            &ctx,
        )
        .unwrap();
        assert_eq!(
            q.clauses,
            vec![
                Clause::Type(vec![
                    ContentType::Page,
                    ContentType::Other(ContentKind::Blogpost)
                ]),
                Clause::Title(vec!["release".into(), "notes".into()]),
                Clause::Text(vec!["api".into()]),
                Clause::Parent(vec![42]),
                Clause::LastModified(Cmp::Gt, parse_date("2026-09-30 12:00").unwrap()),
                Clause::Created(Cmp::Ge, parse_date("2026-09-17 12:00").unwrap()),
                Clause::Created(Cmp::Lt, now),
            ]
        );
        let q = parse_with(
            r#"lastmodified > now("+1M") and created > now("-1y") and parent in (1, 2)"#,
            &ctx,
        )
        .unwrap();
        assert_eq!(
            q.clauses,
            vec![
                Clause::LastModified(Cmp::Gt, parse_date("2026-11-01 12:00").unwrap()),
                Clause::Created(Cmp::Gt, parse_date("2025-10-01 12:00").unwrap()),
                Clause::Parent(vec![1, 2]),
            ]
        );
    }
}
