//! libFuzzer entry for the `bundle` target; the target itself lives in the virtplug-fuzz library.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| virtplug_fuzz::bundle::target(data));
