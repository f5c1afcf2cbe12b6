//! `virtplugd`: placeholder main while the daemon crate is assembled.
fn main() {}
