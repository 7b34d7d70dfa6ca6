//! `confluence-sim`: serve a simulated Confluence Cloud site.

fn main() {}
