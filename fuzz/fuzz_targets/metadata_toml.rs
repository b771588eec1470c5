//! `<layers>/config/metadata.toml` decoding: any bytes give a value or an error.
#![no_main]

use launcher::metadata::Metadata;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(md) = Metadata::parse(data) {
        // Whatever decodes must be usable by process selection.
        for p in &md.processes {
            let _ = md.find_process(&p.process_type);
        }
    }
});
