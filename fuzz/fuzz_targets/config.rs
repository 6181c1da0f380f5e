//! libFuzzer target `config`: the body is `asw_fuzz::config`, which the replay test also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    asw_fuzz::config(data);
});
