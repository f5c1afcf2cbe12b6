//! libFuzzer entry for the `snapshot_xml` target; the target itself lives in the virtplug-fuzz library.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| virtplug_fuzz::snapshot_xml::target(data));
