//! kbgate: serve a Confluence knowledge base to customers, granted by email domain.

fn main() {
    println!("kbgate: not yet");
}
