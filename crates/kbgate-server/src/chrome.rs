//! What every page's frame (`base.html`) needs: the site name, the signed-in person, the
//! search box's query. Plain data, so the error pages can have a frame too.

use crate::settings::Settings;

/// The signed-in user as the page header shows it.
pub(crate) struct User {
    pub email: String,
    pub csrf: String,
}

/// What every page's frame needs.
pub(crate) struct Chrome {
    pub site_name: String,
    pub user: Option<User>,
    pub query: String,
}

impl Chrome {
    /// The frame of a page nobody is signed in to.
    pub(crate) fn anonymous(settings: &Settings) -> Chrome {
        Chrome {
            site_name: settings.site_name.clone(),
            user: None,
            query: String::new(),
        }
    }

    /// The frame of a signed-in person's page.
    pub(crate) fn signed_in(settings: &Settings, email: String, csrf: String) -> Chrome {
        Chrome {
            site_name: settings.site_name.clone(),
            user: Some(User { email, csrf }),
            query: String::new(),
        }
    }
}
