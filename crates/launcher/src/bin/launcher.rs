//! `launcher`: `/cnb/process/<type> [args...]` or `launcher [--] <cmd> [args...]`.

use launcher::arena::Arena;
use launcher::self_description;

/// 256 KiB of .bss: covers a typical launch; only the pages used become resident.
#[global_allocator]
static ALLOCATOR: Arena<{ 256 * 1024 }> = Arena::new();

/// Readable without running the binary: `readelf -p .cnb_launcher launcher`. `#[used]`
/// keeps it through LTO and section GC (tests/static_binary.rs checks the release build).
#[used]
#[link_section = ".cnb_launcher"]
static SELF_DESCRIPTION: [u8; self_description::LEN] = self_description::JSON;

fn main() {
    launcher::signals::reset_like_go_runtime();
    let args: Vec<_> = std::env::args_os().collect();
    let code = launcher::cli::run(&args, std::env::vars_os().collect());
    std::process::exit(code);
}
