//! The whole virtplug conformance suite, as one `cargo test`.

virtplug_conformance::test_plugin!("hello_plugin", "hello:///");
