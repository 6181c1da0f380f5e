//! libFuzzer target `envelope`: the body is `asw_fuzz::envelope`, which the replay test also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    asw_fuzz::envelope(data);
});
