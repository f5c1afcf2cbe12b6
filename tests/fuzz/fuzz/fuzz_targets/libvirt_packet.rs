//! libFuzzer entry for the `libvirt_packet` target; the target itself lives in the virtplug-fuzz library.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| virtplug_fuzz::libvirt_packet::target(data));
