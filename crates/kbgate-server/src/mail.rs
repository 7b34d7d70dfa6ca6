//! Sending magic links: SMTP (lettre, configured by URL) or an outbox directory (demo, dev).

use std::fmt;
use std::path::PathBuf;

use kbgate_policy::Email;
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Why a mail could not be prepared or sent. Never contains the link or SMTP credentials.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the SMTP URL is invalid")]
    BadSmtpUrl,
    #[error("the sender address is invalid")]
    BadFrom,
    #[error("the message could not be built")]
    Build,
    #[error("sending failed")]
    Send,
    #[error("writing to the outbox failed: {0}")]
    Outbox(#[source] std::io::Error),
}

/// Where magic-link mails go.
#[derive(Clone)]
pub enum Mailer {
    /// A real SMTP relay.
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    /// One plain-text file per mail in a directory (the link readable as is).
    Outbox { dir: PathBuf, from: Mailbox },
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SMTP URL may carry a password: never print the transport.
        match self {
            Mailer::Smtp { from, .. } => write!(f, "Mailer::Smtp {{ from: {from} }}"),
            Mailer::Outbox { dir, from } => {
                write!(f, "Mailer::Outbox {{ dir: {dir:?}, from: {from} }}")
            }
        }
    }
}

impl Mailer {
    /// SMTP by URL (`smtps://user:pass@host:465`, `smtp://host:25?tls=required`…).
    pub fn smtp(url: &str, from: &str) -> Result<Mailer, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| MailError::BadSmtpUrl)?
            .build();
        let from = from.parse().map_err(|_| MailError::BadFrom)?;
        Ok(Mailer::Smtp { transport, from })
    }

    /// A file outbox; the directory is created if needed.
    pub fn outbox(dir: impl Into<PathBuf>, from: &str) -> Result<Mailer, MailError> {
        let dir = dir.into();
        // 0700 and 0600 below: the outbox holds live sign-in links.
        kbgate_store::private_fs::create_dir_all(&dir).map_err(MailError::Outbox)?;
        let from = from.parse().map_err(|_| MailError::BadFrom)?;
        Ok(Mailer::Outbox { dir, from })
    }

    /// Sends a single-use link of `kind`. Every mailed link goes through here, so transport,
    /// headers and the rule that the link never reaches the logs live in one place.
    pub(crate) async fn send_link(
        &self,
        kind: LinkMail,
        to: &Email,
        link: &str,
        site_name: &str,
        valid_minutes: u64,
    ) -> Result<(), MailError> {
        let subject = kind.subject(site_name);
        let body = kind.body(link, site_name, valid_minutes);
        match self {
            Mailer::Smtp { transport, from } => {
                let to: Mailbox = to.as_str().parse().map_err(|_| MailError::Build)?;
                let msg = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(subject)
                    .header(ContentType::TEXT_PLAIN)
                    .body(body)
                    .map_err(|_| MailError::Build)?;
                transport.send(msg).await.map_err(|e| {
                    tracing::warn!(error = %e, "SMTP send failed");
                    MailError::Send
                })?;
                Ok(())
            }
            Mailer::Outbox { dir, from } => {
                let name = format!(
                    "{}-{}.eml",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
                    uuid::Uuid::new_v4()
                );
                let path = dir.join(name);
                let text = format!(
                    "From: {from}\nTo: {to}\nSubject: {subject}\nContent-Type: text/plain; charset=utf-8\n\n{body}"
                );
                let mut file = kbgate_store::private_fs::create_file(&path)
                    .await
                    .map_err(MailError::Outbox)?;
                tokio::io::AsyncWriteExt::write_all(&mut file, text.as_bytes())
                    .await
                    .map_err(MailError::Outbox)?;
                tokio::io::AsyncWriteExt::flush(&mut file)
                    .await
                    .map_err(MailError::Outbox)?;
                // The path only: the link itself is a credential and stays out of the logs.
                tracing::info!(path = %path.display(), kind = kind.as_str(), "mail written to the outbox");
                Ok(())
            }
        }
    }
}

/// What a mailed single-use link does. It decides the wording only: a link's power comes
/// from the purpose of the code behind it, never from the mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkMail {
    /// Signs the person in to the portal (magic link).
    SignIn,
    /// Confirms an access request: proves the person reads this mailbox before kbgate
    /// records them for native provisioning.
    AccessRequest,
}

impl LinkMail {
    /// A short name for logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LinkMail::SignIn => "sign-in",
            LinkMail::AccessRequest => "access-request",
        }
    }

    fn subject(self, site_name: &str) -> String {
        match self {
            LinkMail::SignIn => format!("Your sign-in link for {site_name}"),
            LinkMail::AccessRequest => format!("Confirm your access request for {site_name}"),
        }
    }

    fn body(self, link: &str, site_name: &str, valid_minutes: u64) -> String {
        let what = match self {
            LinkMail::SignIn => format!("Use this link to sign in to {site_name}:"),
            LinkMail::AccessRequest => {
                format!("Use this link to confirm that you asked for access to {site_name}:")
            }
        };
        format!(
            "Hello,\n\n{what}\n\n{link}\n\n\
             The link works once and expires in {valid_minutes} minutes.\n\
             If you did not ask for it, ignore this mail.\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outbox holds live sign-in links: only the owner may read it.
    #[cfg(unix)]
    #[tokio::test]
    async fn outbox_and_mails_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("outbox");
        let m = Mailer::outbox(&dir, "kb@example.com").unwrap();
        assert_eq!(mode(&dir), 0o700);
        let to = Email::parse("a@acme.com").unwrap();
        m.send_link(LinkMail::SignIn, &to, "https://kb/x", "KB", 15)
            .await
            .unwrap();
        let mail = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap();
        assert_eq!(mode(&mail.path()), 0o600);
    }

    #[tokio::test]
    async fn outbox_writes_a_readable_mail() {
        let dir = tempfile::tempdir().unwrap();
        let m = Mailer::outbox(dir.path(), "kbgate <kb@example.com>").unwrap();
        let to = Email::parse("a@acme.com").unwrap();
        m.send_link(
            LinkMail::SignIn,
            &to,
            "https://kb/auth/email/x?t=abc",
            "KB",
            15,
        )
        .await
        .unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
        assert!(text.contains("To: a@acme.com"));
        assert!(text.contains("https://kb/auth/email/x?t=abc"));
    }

    #[tokio::test]
    async fn access_request_mail_says_what_the_link_does() {
        let dir = tempfile::tempdir().unwrap();
        let m = Mailer::outbox(dir.path(), "kb@example.com").unwrap();
        let to = Email::parse("gus@guest.com").unwrap();
        let link = "https://kb/request-access/confirm?code=abc";
        m.send_link(LinkMail::AccessRequest, &to, link, "KB", 15)
            .await
            .unwrap();
        let path = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let text = std::fs::read_to_string(path.path()).unwrap();
        assert!(text.contains("Subject: Confirm your access request for KB"));
        assert!(text.contains(link) && text.contains("expires in 15 minutes"));
        assert!(!text.contains("sign in"));
    }

    #[tokio::test]
    async fn smtp_debug_hides_credentials() {
        let m = Mailer::smtp("smtp://user:s3cret@localhost:2525", "kb@example.com").unwrap();
        assert!(!format!("{m:?}").contains("s3cret"));
        assert!(Mailer::smtp("smtp://localhost", "not an address").is_err());
    }
}
