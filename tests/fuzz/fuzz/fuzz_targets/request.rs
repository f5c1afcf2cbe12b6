//! libFuzzer entry for the `request` target; the target itself lives in the virtplug-fuzz library.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| virtplug_fuzz::request::target(data));
