//! What every page's frame (`base.html`) needs: the brand, the signed-in person, the search
//! box's query. Plain data, so the error pages can have a frame too.

use std::sync::Arc;

use crate::brand::Brand;
use crate::state::AppState;

/// The signed-in user as the page header shows it.
pub(crate) struct User {
    pub email: String,
    pub csrf: String,
}

/// What every page's frame needs.
pub(crate) struct Chrome {
    /// The brand in force when the page was rendered.
    pub brand: Arc<Brand>,
    pub user: Option<User>,
    pub query: String,
}

impl Chrome {
    /// The frame of a page nobody is signed in to.
    pub(crate) fn anonymous(state: &AppState) -> Chrome {
        Chrome {
            brand: state.brand(),
            user: None,
            query: String::new(),
        }
    }

    /// The frame of a signed-in person's page.
    pub(crate) fn signed_in(state: &AppState, email: String, csrf: String) -> Chrome {
        Chrome {
            brand: state.brand(),
            user: Some(User { email, csrf }),
            query: String::new(),
        }
    }
}
