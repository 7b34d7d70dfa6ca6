//! A page's HTML shared by every viewer of one reach, cut where the header names the person.

/// A page view's HTML for every viewer of one reach, cut where it names the person (the
/// header's email once, the form token of the sign-out form and of any other form on the
/// page); each request escapes its own into the gaps. This is what makes a repeated page
/// view cost a copy instead of a template render.
#[derive(Debug, Clone)]
pub(crate) struct Spliced {
    /// The text around the gaps: `parts.len() == gaps.len() + 1`.
    parts: Vec<String>,
    gaps: Vec<Gap>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gap {
    Email,
    Csrf,
}

impl Spliced {
    /// Cuts `html`, rendered with the stand-ins `email` and `csrf` for the person's fields,
    /// where they stand; `None` unless `email` appears exactly once and `csrf` exactly
    /// `csrf_times` times (anything else means content named a stand-in).
    pub(crate) fn cut(html: &str, email: &str, csrf: &str, csrf_times: usize) -> Option<Spliced> {
        let mut parts = Vec::new();
        let mut gaps = Vec::new();
        let mut rest = html;
        loop {
            let e = rest.find(email).map(|i| (i, Gap::Email, email.len()));
            let c = rest.find(csrf).map(|i| (i, Gap::Csrf, csrf.len()));
            let next = match (e, c) {
                (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
                (a, b) => a.or(b),
            };
            let Some((at, gap, len)) = next else {
                parts.push(rest.to_owned());
                break;
            };
            parts.push(rest[..at].to_owned());
            gaps.push(gap);
            rest = &rest[at + len..];
        }
        let emails = gaps.iter().filter(|g| **g == Gap::Email).count();
        let csrfs = gaps.len() - emails;
        (emails == 1 && csrfs == csrf_times).then_some(Spliced { parts, gaps })
    }

    /// The page for one person: their email and form token, HTML-escaped as the template
    /// would, in the gaps.
    pub(crate) fn fill(&self, email: &str, csrf: &str) -> String {
        use askama::filters::Escaper;
        let text: usize = self.parts.iter().map(String::len).sum();
        let mut out = String::with_capacity(text + 2 * email.len() + self.gaps.len() * csrf.len());
        for (part, gap) in self.parts.iter().zip(&self.gaps) {
            out.push_str(part);
            let value = match gap {
                Gap::Email => email,
                Gap::Csrf => csrf,
            };
            // Writing to a String cannot fail.
            let _ = askama::filters::Html.write_escaped_str(&mut out, value);
        }
        if let Some(last) = self.parts.last() {
            out.push_str(last);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stand_in_is_filled_and_miscounts_refuse() {
        let html = "<p>E</p><i>C</i><b>C</b>";
        let s = Spliced::cut(html, "E", "C", 2).expect("cut");
        assert_eq!(
            s.fill("a<b", "t&"),
            "<p>a&#60;b</p><i>t&#38;</i><b>t&#38;</b>"
        );
        assert!(Spliced::cut(html, "E", "C", 1).is_none());
        assert!(Spliced::cut("<p>E E</p>C", "E", "C", 1).is_none());
        assert!(Spliced::cut("<p></p>C", "E", "C", 1).is_none());
    }
}
