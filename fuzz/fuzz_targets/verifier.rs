//! libFuzzer target `verifier`: the body is `asw_fuzz::verifier`, which the replay test also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    asw_fuzz::verifier(data);
});
