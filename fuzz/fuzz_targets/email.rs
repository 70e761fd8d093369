#![no_main]
// mail-parser reaches `debug_assert!(false, …)` recovery paths on some broken MIME trees
// (compiled out in release builds); `normalize` catches them, so debug builds do not die on
// them either. libfuzzer-sys's panic hook would abort inside that catch, so this target
// keeps Rust's default hook: a panic that escapes `normalize` still aborts the run, through
// libfuzzer-sys's own catch around every input.
libfuzzer_sys::fuzz_target!(
    init: {
        drop(std::panic::take_hook());
    },
    |data: &[u8]| switchboard_fuzz_cases::email(data)
);
