//! The CQL subset the simulator understands (enough for sync):
//!
//! ```text
//! query   := clause (AND clause)* [ORDER BY field [ASC|DESC]]
//! clause  := space (=|!=) value | space IN (value, …)
//!          | type (=) page|blogpost|attachment | type IN (…)
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
//! stemming and ranking are not modelled. The simulator has no blog posts: `type = blogpost`
//! is valid and matches nothing. `now()` is relative to the site clock given to [`parse_at`].
//!
//! Keywords and field names are case-insensitive. Dates are read as UTC with minute
//! precision (CQL has no seconds): `lastmodified > "2026/09/28 10:00"` matches anything saved at
//! or after 10:00:00.001. Anything else is rejected like Confluence does (400,
//! `Could not parse cql : …`).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Content types CQL can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// Pages.
    Page,
    /// Blog posts (the simulator has none).
    BlogPost,
    /// Attachments.
    Attachment,
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

/// Parses a CQL date: `yyyy/MM/dd HH:mm`, `yyyy-MM-dd HH:mm`, `yyyy/MM/dd`, `yyyy-MM-dd`.
pub fn parse_date(v: &str) -> Option<DateTime<Utc>> {
    let v = v.trim();
    for f in ["%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, f) {
            return Some(t.and_utc());
        }
    }
    for f in ["%Y/%m/%d", "%Y-%m-%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(v, f) {
            return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
        }
    }
    None
}

struct P {
    toks: Vec<Tok>,
    i: usize,
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

/// After the word `now`: `()` or `("(+|-)N(y|M|w|d|h|m)")`, relative to `now`.
fn relative_now(p: &mut P, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if p.next() != Some(Tok::LParen) {
        return Err("expected ( after now".into());
    }
    let inc = match p.next() {
        Some(Tok::RParen) => return Ok(now),
        Some(Tok::Str(s)) => s,
        t => return Err(format!("expected an increment in now(), got {t:?}")),
    };
    if p.next() != Some(Tok::RParen) {
        return Err("expected ) after the increment of now()".into());
    }
    let inc = inc.trim();
    let (sign, rest) = match inc.as_bytes().first() {
        Some(b'-') => (-1, &inc[1..]),
        Some(b'+') => (1, &inc[1..]),
        _ => (1, inc),
    };
    let unit = rest
        .chars()
        .last()
        .ok_or_else(|| format!("bad increment {inc:?}"))?;
    let n: i64 = rest[..rest.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| format!("bad increment {inc:?}"))?;
    let n = sign * n;
    let t = match unit {
        'm' => now + chrono::Duration::minutes(n),
        'h' => now + chrono::Duration::hours(n),
        'd' => now + chrono::Duration::days(n),
        'w' => now + chrono::Duration::weeks(n),
        'M' | 'y' => {
            let months = n.unsigned_abs() * if unit == 'y' { 12 } else { 1 };
            let m = chrono::Months::new(u32::try_from(months).map_err(|_| "increment too large")?);
            if n >= 0 {
                now.checked_add_months(m)
            } else {
                now.checked_sub_months(m)
            }
            .ok_or_else(|| format!("bad increment {inc:?}"))?
        }
        _ => return Err(format!("bad increment unit in {inc:?}")),
    };
    Ok(t)
}

fn parse_inner(cql: &str, now: DateTime<Utc>) -> Result<Query, String> {
    let toks = lex(cql)?;
    let mut p = P { toks, i: 0 };
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
                        "blogpost" => ContentType::BlogPost,
                        "attachment" => ContentType::Attachment,
                        other => return Err(format!("unsupported type {other}")),
                    });
                }
                Clause::Type(ts)
            }
            "lastmodified" | "created" => {
                let c = cmp_of(&op)?;
                let t = if p.keyword("now") {
                    p.next();
                    relative_now(&mut p, now)?
                } else {
                    let v = p.value()?;
                    parse_date(&v).ok_or_else(|| format!("bad date {v:?}"))?
                };
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

/// Parses a query of the supported subset; `now()` is the wall clock (see [`parse_at`]).
pub fn parse(cql: &str) -> Result<Query, CqlError> {
    parse_at(cql, Utc::now())
}

/// Parses a query of the supported subset, `now()` being `now` (the site's clock).
pub fn parse_at(cql: &str, now: DateTime<Utc>) -> Result<Query, CqlError> {
    parse_inner(cql, now).map_err(|reason| CqlError {
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
    fn rejects_the_rest() {
        for bad in [
            "",
            "space = KB or type = page",
            "text ~",
            "lastmodified > now(\"-1x\")",
            "parent > 5",
            "space = \"KB",
            "lastmodified > \"yesterday\"",
            "type = whiteboard",
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
        let q = parse_at(
            r#"type in (page, blogpost) and title ~ "Release Notes*" and text ~ 'api' and parent = 42 and lastmodified > now("-1d") and created >= now("-2w") and created < now()"#,
            now,
        )
        .unwrap();
        assert_eq!(
            q.clauses,
            vec![
                Clause::Type(vec![ContentType::Page, ContentType::BlogPost]),
                Clause::Title(vec!["release".into(), "notes".into()]),
                Clause::Text(vec!["api".into()]),
                Clause::Parent(vec![42]),
                Clause::LastModified(Cmp::Gt, parse_date("2026-09-30 12:00").unwrap()),
                Clause::Created(Cmp::Ge, parse_date("2026-09-17 12:00").unwrap()),
                Clause::Created(Cmp::Lt, now),
            ]
        );
        let q = parse_at(
            r#"lastmodified > now("+1M") and created > now("-1y") and parent in (1, 2)"#,
            now,
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
