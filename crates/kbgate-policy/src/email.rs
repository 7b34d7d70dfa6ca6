//! Email addresses and domain names, parsed and normalised so that comparing them is safe.
//!
//! Decisions, all fail-closed:
//! - **Local part**: RFC 5321 dot-atom only, ASCII `atext` and dots, at most 64 octets, no leading,
//!   trailing or double dot. Quoted local parts (`"a@b"@c`), comments and non-ASCII local parts
//!   are rejected: they are rare in practice and they are where parsers disagree about which `@`
//!   is the real one. The local part is kept as given (case included) but never used for matching.
//! - **Domain**: exactly one `@`; the domain is lower-cased and converted to A-labels by UTS #46
//!   (`idna` crate, non-transitional, STD3 ASCII rules, hyphens not first or last in a label,
//!   DNS lengths verified). So `bücher.de` and `xn--bcher-kva.de` are the same domain and
//!   `ＡＣＭＥ.com` (full-width) is `acme.com`: all spellings of the same DNS name compare equal.
//! - Rejected domains: empty labels (`.acme.com`, `acme..com`), a **trailing dot** (`acme.com.`:
//!   the root dot is legal DNS but no mail system writes it, and accepting it would create a
//!   second spelling), IP literals (`[1.2.3.4]`), a numeric top-level label (`1.2.3.4` is an IPv4
//!   address, not a domain), single-label names (`localhost`), wildcards (`*.acme.com`), and
//!   anything longer than 253 octets after conversion (labels at most 63).
//! - **Invisible characters** (zero-width spaces and joiners, soft hyphen, bidi controls,
//!   variation selectors, tags: Unicode `Default_Ignorable_Code_Point`) are refused
//!   ([`DomainError::Invisible`]), in the input and inside an `xn--` A-label, never dropped:
//!   UTS #46 would silently map some of them away, so the text shown would not be the name
//!   compared.
//! - **Homographs**: a look-alike such as Cyrillic `аcme.com` converts to an `xn--` A-label that
//!   is a different string from `acme.com`, so it can never match. In addition a label that mixes
//!   letters of Latin, Greek, Cyrillic, Armenian or Cherokee (the scripts with Latin look-alikes)
//!   is rejected outright ([`DomainError::MixedScript`]). A label written entirely in one script
//!   (e.g. all-Cyrillic `асме.com`) is accepted as the distinct domain it is.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest input we even look at; anything longer is refused before any Unicode processing.
const MAX_INPUT_BYTES: usize = 1024;
/// RFC 5321 §4.5.3.1.1.
const MAX_LOCAL_BYTES: usize = 64;
/// RFC 5321 path limit (256) minus the angle brackets.
const MAX_EMAIL_BYTES: usize = 254;

/// Why a domain name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    #[error("the domain is empty")]
    Empty,
    #[error("the domain is too long")]
    TooLong,
    #[error("IP-address literals are not accepted as domains")]
    IpLiteral,
    #[error("the domain ends with a dot; write it without the trailing dot")]
    TrailingDot,
    #[error("the domain has an empty label (leading or double dot)")]
    EmptyLabel,
    #[error("wildcards are not accepted; list the domain and set include_subdomains = true")]
    Wildcard,
    #[error("the domain contains the character {0:?}, which is not allowed in a domain name")]
    InvalidCharacter(char),
    #[error("the domain is not a valid internationalised domain name (UTS #46)")]
    Idna,
    #[error("the domain has a single label; a registered domain such as example.com is required")]
    SingleLabel,
    #[error("the last label is numeric, which makes it an IP address, not a domain")]
    NumericTld,
    #[error("the label {0:?} mixes letters of different scripts (a homograph risk)")]
    MixedScript(String),
    #[error(
        "the domain contains the invisible character U+{:04X} (zero-width, bidi control, \
         variation selector or similar)",
        u32::from(*.0)
    )]
    Invisible(char),
}

/// Why an email address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    #[error("the email address is empty")]
    Empty,
    #[error("the email address is too long")]
    TooLong,
    #[error("the email address has no @")]
    MissingAt,
    #[error("the email address has more than one @")]
    MultipleAt,
    #[error("quoted local parts are not accepted")]
    QuotedLocalPart,
    #[error("the part before @ is empty")]
    EmptyLocalPart,
    #[error("the part before @ is longer than 64 octets")]
    LocalPartTooLong,
    #[error("the part before @ has a leading, trailing or double dot")]
    LocalPartDots,
    #[error("the part before @ contains the character {0:?}, which is not accepted")]
    InvalidLocalCharacter(char),
    #[error("the part after @ is empty")]
    EmptyDomain,
    #[error("invalid domain: {0}")]
    Domain(#[from] DomainError),
}

/// A DNS domain name in canonical form: lower-case ASCII with A-labels (`xn--…`), no trailing dot.
///
/// Only [`Domain::parse`] makes one, so two `Domain`s are equal exactly when they name the same
/// DNS name. Cheap to clone (shared string).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(Arc<str>);

impl Domain {
    /// Parses and normalises a domain (see the module docs for what is refused).
    pub fn parse(input: &str) -> Result<Domain, DomainError> {
        normalize_domain(input).map(|s| Domain(Arc::from(s)))
    }

    /// The canonical A-label form, e.g. `xn--bcher-kva.de`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Unicode form for display (e.g. `bücher.de`). Never use it for comparison.
    pub fn to_unicode(&self) -> String {
        let (s, _) = Uts46::new().to_unicode(
            self.0.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
        );
        s.into_owned()
    }

    /// True when `self` is a proper subdomain of `parent` (`sub.acme.com` of `acme.com`;
    /// never `evilacme.com`, never `acme.com` itself).
    pub fn is_subdomain_of(&self, parent: &Domain) -> bool {
        is_proper_subdomain(self.as_str(), parent.as_str())
    }

    /// The domain itself followed by each parent domain: `a.b.com`, `b.com`, `com`.
    pub fn self_and_parents(&self) -> impl Iterator<Item = &str> {
        self_and_parents(self.as_str())
    }
}

pub(crate) fn is_proper_subdomain(child: &str, parent: &str) -> bool {
    child.len() > parent.len() + 1
        && child.ends_with(parent)
        && child.as_bytes()[child.len() - parent.len() - 1] == b'.'
}

pub(crate) fn self_and_parents(domain: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(domain);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.find('.').map(|i| &current[i + 1..]);
        Some(current)
    })
}

impl Borrow<str> for Domain {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Domain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Domain({:?})", &*self.0)
    }
}

impl FromStr for Domain {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Domain::parse(s)
    }
}

impl Serialize for Domain {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Domain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Domain::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A parsed email address: local part as given, domain canonical (see [`Domain`]).
///
/// Only the domain takes part in policy decisions. Equality compares the whole normalised
/// address (`A@ACME.com` equals `A@acme.com`, but not `a@acme.com`). Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email {
    full: Arc<str>,
    domain: Domain,
}

impl Email {
    /// Parses an address (RFC 5321 dot-atom `local@domain`; see the module docs). The input is
    /// not trimmed: callers that take user input should trim it first.
    pub fn parse(input: &str) -> Result<Email, EmailError> {
        if input.is_empty() {
            return Err(EmailError::Empty);
        }
        if input.len() > MAX_INPUT_BYTES {
            return Err(EmailError::TooLong);
        }
        if input.contains('"') {
            return Err(EmailError::QuotedLocalPart);
        }
        let mut parts = input.split('@');
        // `split` always yields at least one item, so these patterns cover every case.
        let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
            (Some(l), Some(d), None) => (l, d),
            (_, None, _) => return Err(EmailError::MissingAt),
            _ => return Err(EmailError::MultipleAt),
        };
        validate_local(local)?;
        if domain.is_empty() {
            return Err(EmailError::EmptyDomain);
        }
        let domain = Domain::parse(domain)?;
        let mut full = String::with_capacity(local.len() + 1 + domain.as_str().len());
        full.push_str(local);
        full.push('@');
        full.push_str(domain.as_str());
        if full.len() > MAX_EMAIL_BYTES {
            return Err(EmailError::TooLong);
        }
        Ok(Email {
            full: Arc::from(full),
            domain,
        })
    }

    /// The whole address, `local@canonical-domain`. Use this form to send mail and to store.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The local part, exactly as given.
    pub fn local_part(&self) -> &str {
        &self.full[..self.full.len() - self.domain.as_str().len() - 1]
    }

    /// The canonical domain, the only part that policy looks at.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }
}

fn validate_local(local: &str) -> Result<(), EmailError> {
    if local.is_empty() {
        return Err(EmailError::EmptyLocalPart);
    }
    if local.len() > MAX_LOCAL_BYTES {
        return Err(EmailError::LocalPartTooLong);
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(EmailError::LocalPartDots);
    }
    if let Some(c) = local.chars().find(|&c| !is_atext(c) && c != '.') {
        return Err(EmailError::InvalidLocalCharacter(c));
    }
    Ok(())
}

/// RFC 5322 `atext`.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

fn normalize_domain(input: &str) -> Result<String, DomainError> {
    if input.is_empty() {
        return Err(DomainError::Empty);
    }
    if input.len() > MAX_INPUT_BYTES {
        return Err(DomainError::TooLong);
    }
    if input.starts_with('[') {
        return Err(DomainError::IpLiteral);
    }
    if input.contains('*') {
        return Err(DomainError::Wildcard);
    }
    // UTS #46 maps some of these to nothing (`ac\u{200B}me.com` would become `acme.com`) and
    // refuses others: either way the text shown is not the name compared. Refuse them all.
    if let Some(c) = input.chars().find(|&c| is_invisible(c)) {
        return Err(DomainError::Invisible(c));
    }
    if let Some(c) = input
        .chars()
        .find(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(DomainError::InvalidCharacter(c));
    }
    if input.ends_with('.') {
        return Err(DomainError::TrailingDot);
    }
    if input.starts_with('.') || input.contains("..") {
        return Err(DomainError::EmptyLabel);
    }
    let uts46 = Uts46::new();
    // Map and convert without the length check first, so that a trailing dot or empty label
    // produced by mapping (e.g. U+3002 IDEOGRAPHIC FULL STOP) gets its precise error.
    let ascii = uts46
        .to_ascii(
            input.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Ignore,
        )
        .map_err(|_| DomainError::Idna)?;
    if ascii.ends_with('.') {
        return Err(DomainError::TrailingDot);
    }
    if ascii.is_empty() || ascii.starts_with('.') || ascii.contains("..") {
        return Err(DomainError::EmptyLabel);
    }
    if !idna::uts46::verify_dns_length(&ascii, false) {
        return Err(DomainError::TooLong);
    }
    let mut labels = ascii.rsplit('.');
    let tld = labels.next().unwrap_or_default();
    if labels.next().is_none() {
        return Err(DomainError::SingleLabel);
    }
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::NumericTld);
    }
    if ascii.contains("xn--") {
        check_scripts(&uts46, &ascii)?;
    }
    // `to_ascii` already lower-cases, but an all-ASCII input passes through untouched.
    Ok(ascii.to_ascii_lowercase())
}

/// Unicode `Default_Ignorable_Code_Point` (zero-width spaces and joiners, soft hyphen, bidi
/// marks, embeddings, overrides and isolates, variation selectors, tags, BOM, fillers …) and
/// the remaining bidi control ALM: characters that render as nothing.
fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
    Armenian,
    Cherokee,
}

fn script_of(c: char) -> Option<Script> {
    let cp = c as u32;
    let s = match cp {
        0x41..=0x5A | 0x61..=0x7A => Script::Latin,
        0xC0..=0x24F if cp != 0xD7 && cp != 0xF7 => Script::Latin,
        0x1E00..=0x1EFF | 0x2C60..=0x2C7F | 0xA720..=0xA7FF | 0xAB30..=0xAB6F => Script::Latin,
        0x370..=0x3FF | 0x1F00..=0x1FFF => Script::Greek,
        0x400..=0x52F | 0x1C80..=0x1C8F | 0x2DE0..=0x2DFF | 0xA640..=0xA69F => Script::Cyrillic,
        0x530..=0x58F => Script::Armenian,
        0x13A0..=0x13FF | 0xAB70..=0xABBF => Script::Cherokee,
        _ => return None,
    };
    Some(s)
}

/// Rejects a label mixing letters of scripts that have Latin look-alikes.
fn check_scripts(uts46: &Uts46, ascii: &str) -> Result<(), DomainError> {
    let (unicode, result) = uts46.to_unicode(
        ascii.as_bytes(),
        AsciiDenyList::STD3,
        Hyphens::CheckFirstLast,
    );
    if result.is_err() {
        return Err(DomainError::Idna);
    }
    // An A-label may carry what the Unicode input could not (e.g. a zero-width joiner).
    if let Some(c) = unicode.chars().find(|&c| is_invisible(c)) {
        return Err(DomainError::Invisible(c));
    }
    for label in unicode.split('.') {
        let mut seen: Option<Script> = None;
        for s in label.chars().filter_map(script_of) {
            match seen {
                None => seen = Some(s),
                Some(prev) if prev != s => return Err(DomainError::MixedScript(label.to_owned())),
                Some(_) => {}
            }
        }
    }
    Ok(())
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({:?})", &*self.full)
    }
}

impl FromStr for Email {
    type Err = EmailError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Email::parse(s)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.full)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Email::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dom(s: &str) -> Result<String, DomainError> {
        Domain::parse(s).map(|d| d.as_str().to_owned())
    }

    #[test]
    fn domain_normalises_case_and_idn() {
        assert_eq!(dom("ACME.Com").unwrap(), "acme.com");
        assert_eq!(dom("bücher.de").unwrap(), "xn--bcher-kva.de");
        assert_eq!(dom("XN--BCHER-KVA.de").unwrap(), "xn--bcher-kva.de");
        assert_eq!(dom("ＡＣＭＥ.com").unwrap(), "acme.com");
        assert_eq!(dom("ab--cd.com").unwrap(), "ab--cd.com");
    }

    #[test]
    fn domain_refusals() {
        assert_eq!(dom(""), Err(DomainError::Empty));
        assert_eq!(dom("acme.com."), Err(DomainError::TrailingDot));
        assert_eq!(dom("acme.com。"), Err(DomainError::TrailingDot));
        assert_eq!(dom(".acme.com"), Err(DomainError::EmptyLabel));
        assert_eq!(dom("acme..com"), Err(DomainError::EmptyLabel));
        assert_eq!(dom("[1.2.3.4]"), Err(DomainError::IpLiteral));
        assert_eq!(dom("1.2.3.4"), Err(DomainError::NumericTld));
        assert_eq!(dom("localhost"), Err(DomainError::SingleLabel));
        assert_eq!(dom("*.acme.com"), Err(DomainError::Wildcard));
        assert_eq!(dom("acme .com"), Err(DomainError::InvalidCharacter(' ')));
        assert_eq!(dom("acme_x.com"), Err(DomainError::InvalidCharacter('_')));
        assert_eq!(dom("-acme.com"), Err(DomainError::Idna));
        assert_eq!(dom("acme-.com"), Err(DomainError::Idna));
        let long_label = format!("{}.com", "a".repeat(64));
        assert_eq!(dom(&long_label), Err(DomainError::TooLong));
        let long = format!("{}com", "abcdefghi.".repeat(26));
        assert_eq!(dom(&long), Err(DomainError::TooLong));
        assert_eq!(dom(&"a".repeat(2000)), Err(DomainError::TooLong));
    }

    #[test]
    fn invisible_characters_are_refused_not_dropped() {
        for c in [
            '\u{200B}',  // zero-width space (UTS #46 maps it to nothing)
            '\u{200C}',  // zero-width non-joiner
            '\u{200D}',  // zero-width joiner
            '\u{2060}',  // word joiner
            '\u{FEFF}',  // BOM / zero-width no-break space
            '\u{AD}',    // soft hyphen
            '\u{34F}',   // combining grapheme joiner
            '\u{FE0F}',  // variation selector
            '\u{200E}',  // left-to-right mark
            '\u{200F}',  // right-to-left mark
            '\u{202E}',  // right-to-left override
            '\u{2066}',  // left-to-right isolate
            '\u{61C}',   // Arabic letter mark
            '\u{E0041}', // tag latin capital A
        ] {
            for at in [0, 2, 4, 8] {
                let mut d: Vec<char> = "acme.com".chars().collect();
                d.insert(at, c);
                let d: String = d.into_iter().collect();
                assert_eq!(dom(&d), Err(DomainError::Invisible(c)), "{d:?}");
                assert_eq!(
                    Email::parse(&format!("a@{d}")),
                    Err(EmailError::Domain(DomainError::Invisible(c))),
                    "{d:?}"
                );
            }
        }
        // Visible non-ASCII is unaffected.
        assert_eq!(dom("bücher.de").unwrap(), "xn--bcher-kva.de");
    }

    #[test]
    fn homographs() {
        // Cyrillic а (U+0430) followed by Latin "cme": mixed script, refused.
        assert!(matches!(
            dom("\u{430}cme.com"),
            Err(DomainError::MixedScript(_))
        ));
        // The same label given as its A-label is refused the same way.
        let a_label = Uts46::new()
            .to_ascii(
                "\u{430}cme.com".as_bytes(),
                AsciiDenyList::STD3,
                Hyphens::CheckFirstLast,
                DnsLength::Verify,
            )
            .unwrap()
            .into_owned();
        assert!(a_label.starts_with("xn--"));
        assert!(matches!(dom(&a_label), Err(DomainError::MixedScript(_))));
        // All-Cyrillic "асме": accepted, but a different domain from acme.com.
        let cyr = dom("\u{430}\u{441}\u{43c}\u{435}.com").unwrap();
        assert!(cyr.starts_with("xn--"));
        assert_ne!(cyr, "acme.com");
        // Greek omicron in "micrοsoft".
        assert!(matches!(
            dom("micr\u{3bf}soft.com"),
            Err(DomainError::MixedScript(_))
        ));
    }

    #[test]
    fn subdomains() {
        let acme = Domain::parse("acme.com").unwrap();
        let sub = Domain::parse("sub.acme.com").unwrap();
        let evil = Domain::parse("evilacme.com").unwrap();
        assert!(sub.is_subdomain_of(&acme));
        assert!(!acme.is_subdomain_of(&acme));
        assert!(!evil.is_subdomain_of(&acme));
        let parents: Vec<_> = sub.self_and_parents().collect();
        assert_eq!(parents, ["sub.acme.com", "acme.com", "com"]);
    }

    #[test]
    fn email_parse() {
        let e = Email::parse("First.Last+kb@ACME.com").unwrap();
        assert_eq!(e.as_str(), "First.Last+kb@acme.com");
        assert_eq!(e.local_part(), "First.Last+kb");
        assert_eq!(e.domain().as_str(), "acme.com");
        assert_eq!(
            Email::parse("a@bücher.de").unwrap(),
            Email::parse("a@xn--bcher-kva.de").unwrap()
        );
    }

    #[test]
    fn email_refusals() {
        use EmailError::*;
        assert_eq!(Email::parse(""), Err(Empty));
        assert_eq!(Email::parse("acme.com"), Err(MissingAt));
        assert_eq!(Email::parse("a@evil.com@acme.com"), Err(MultipleAt));
        assert_eq!(Email::parse("a@acme.com@"), Err(MultipleAt));
        assert_eq!(
            Email::parse("\"a@acme.com\"@evil.net"),
            Err(QuotedLocalPart)
        );
        assert_eq!(Email::parse("\"a\"@acme.com"), Err(QuotedLocalPart));
        assert_eq!(Email::parse("@acme.com"), Err(EmptyLocalPart));
        assert_eq!(Email::parse("a@"), Err(EmptyDomain));
        assert_eq!(Email::parse(".a@acme.com"), Err(LocalPartDots));
        assert_eq!(Email::parse("a.@acme.com"), Err(LocalPartDots));
        assert_eq!(Email::parse("a..b@acme.com"), Err(LocalPartDots));
        assert_eq!(
            Email::parse("a b@acme.com"),
            Err(InvalidLocalCharacter(' '))
        );
        assert_eq!(
            Email::parse("a(c)@acme.com"),
            Err(InvalidLocalCharacter('('))
        );
        assert_eq!(Email::parse("ü@acme.com"), Err(InvalidLocalCharacter('ü')));
        assert_eq!(
            Email::parse(&format!("{}@acme.com", "a".repeat(65))),
            Err(LocalPartTooLong)
        );
        assert_eq!(
            Email::parse("a@.acme.com"),
            Err(Domain(DomainError::EmptyLabel))
        );
        assert_eq!(
            Email::parse("a@acme.com."),
            Err(Domain(DomainError::TrailingDot))
        );
        assert_eq!(
            Email::parse("a@[127.0.0.1]"),
            Err(Domain(DomainError::IpLiteral))
        );
        let long = format!("{}@{}com", "a".repeat(64), "b23456789.".repeat(19));
        assert_eq!(Email::parse(&long), Err(TooLong));
    }

    #[test]
    fn serde_round_trip_validates() {
        let e: Email = serde_json_like("a@ACME.com").unwrap();
        assert_eq!(e.as_str(), "a@acme.com");
        assert!(serde_json_like::<Email>("a@b@c.com").is_err());
    }

    /// Deserialises from a plain string through serde's value deserializer.
    fn serde_json_like<T: for<'de> Deserialize<'de>>(
        s: &str,
    ) -> Result<T, serde::de::value::Error> {
        use serde::de::IntoDeserializer;
        T::deserialize(s.into_deserializer())
    }
}
