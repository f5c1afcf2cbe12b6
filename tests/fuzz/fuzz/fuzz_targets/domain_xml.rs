//! libFuzzer entry for the `domain_xml` target; the target itself lives in the virtplug-fuzz library.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| virtplug_fuzz::domain_xml::target(data));
