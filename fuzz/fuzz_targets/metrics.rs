//! libFuzzer target `metrics`: the body is `asw_fuzz::metrics`, which the replay test also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    asw_fuzz::metrics(data);
});
