//! A page's HTML shared by every viewer of one reach, cut where the header names the person.

/// A page view's HTML for every viewer of one reach, cut where the header names the person
/// (email, sign-out token); each request escapes its own into the gaps. This is what makes a
/// repeated page view cost a copy instead of a template render.
#[derive(Debug, Clone)]
pub(crate) struct Spliced {
    head: String,
    mid: String,
    tail: String,
}

impl Spliced {
    /// Cuts `html`, rendered with the stand-ins `email` and `csrf` for the person's fields,
    /// where they stand; `None` unless each appears exactly once, email first.
    pub(crate) fn cut(html: &str, email: &str, csrf: &str) -> Option<Spliced> {
        let (head, rest) = html.split_once(email)?;
        let (mid, tail) = rest.split_once(csrf)?;
        let once = [head, mid, tail]
            .iter()
            .all(|part| !part.contains(email) && !part.contains(csrf));
        once.then(|| Spliced {
            head: head.to_owned(),
            mid: mid.to_owned(),
            tail: tail.to_owned(),
        })
    }

    /// The page for one person: their email and sign-out token, HTML-escaped as the template
    /// would, in the gaps.
    pub(crate) fn fill(&self, email: &str, csrf: &str) -> String {
        use askama::filters::Escaper;
        let mut out = String::with_capacity(
            self.head.len() + self.mid.len() + self.tail.len() + 2 * email.len() + csrf.len(),
        );
        out.push_str(&self.head);
        // Writing to a String cannot fail.
        let _ = askama::filters::Html.write_escaped_str(&mut out, email);
        out.push_str(&self.mid);
        let _ = askama::filters::Html.write_escaped_str(&mut out, csrf);
        out.push_str(&self.tail);
        out
    }
}
