//! Generation benchmark (placeholder, filled in below).
fn main() {}
