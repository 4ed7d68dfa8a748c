//! The demo shop binary.

fn main() {
    eprintln!(
        "the demo shop is not built yet; run `cargo run --release -p actor-core --example quickstart`"
    );
    std::process::exit(2);
}
