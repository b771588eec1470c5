//! exec.d fd-3 output decoding: any bytes give string pairs or an error, never a panic.
#![no_main]

use launcher::execd::parse_output;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(vars) = parse_output(data) {
        // Only valid UTF-8 TOML decodes.
        assert!(std::str::from_utf8(data).is_ok());
        assert!(vars.len() <= data.len());
    }
});
