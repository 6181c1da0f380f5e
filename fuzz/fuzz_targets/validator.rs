//! libFuzzer target `validator`: the body is `asw_fuzz::validator`, which the replay test also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    asw_fuzz::validator(data);
});
