//! libFuzzer target `reader`: the body is `asw_fuzz::reader`, which the replay test also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    asw_fuzz::reader(data);
});
