//! A stand-in "old launcher" for the meta-launcher tests: its `.cnb_launcher` section says
//! it supports only Platform API 0.6 and Buildpack API 0.6 (which the relaunch launcher does
//! not), and instead of launching it prints its identity, argv and `CNB_PLATFORM_API`, so a
//! test sees which launcher ran and with what. Built by `relaunch_testkit::standin_delegate`.

const DESCRIPTION: &[u8] =
    br#"{"name":"standin-old-launcher","version":"0.6.0","platform-apis":["0.6"],"buildpack-apis":["0.6"]}"#;

#[used]
#[link_section = ".cnb_launcher"]
static SELF_DESCRIPTION: [u8; DESCRIPTION.len()] = {
    let mut out = [0u8; DESCRIPTION.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = DESCRIPTION[i];
        i += 1;
    }
    out
};

fn main() {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let platform = std::env::var("CNB_PLATFORM_API").unwrap_or_default();
    println!("standin-old-launcher 0.6.0: argv={argv:?} CNB_PLATFORM_API={platform}");
}
