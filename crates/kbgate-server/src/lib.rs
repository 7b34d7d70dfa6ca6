//! HTTP portal: pages, sign-in flows and JSON API.
