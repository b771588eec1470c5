//! exec.d fd-3 output decoding: any bytes give string pairs or an error.
#![no_main]

use launcher::execd::parse_output;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(vars) = parse_output(data) {
        let text = std::str::from_utf8(data).expect("decoded output is UTF-8");
        for key in vars.keys() {
            assert!(!key.is_empty() || text.contains("\"\""), "empty key needs a quoted key");
        }
    }
});
