//! `Warning:` / `ERROR:` lines on **stdout**, as the reference logger writes them,
//! coloured unless `CNB_NO_COLOR` is true.

use std::cell::RefCell;
use std::io::Write;

const WARN_STYLE: &str = "\x1b[33;1m";
const ERROR_STYLE: &str = "\x1b[31;1m";
const RESET: &str = "\x1b[0m";

#[derive(Debug)]
pub struct Logger {
    no_color: bool,
    /// Tests capture output instead of writing to stdout.
    captured: Option<RefCell<String>>,
}

impl Logger {
    pub fn stdout(no_color: bool) -> Self {
        Logger {
            no_color,
            captured: None,
        }
    }

    pub fn capture(no_color: bool) -> Self {
        Logger {
            no_color,
            captured: Some(RefCell::new(String::new())),
        }
    }

    pub fn captured(&self) -> String {
        self.captured
            .as_ref()
            .map(|c| c.borrow().clone())
            .unwrap_or_default()
    }

    pub fn warn(&self, msg: &str) {
        self.line(WARN_STYLE, "Warning: ", msg)
    }

    pub fn error(&self, msg: &str) {
        self.line(ERROR_STYLE, "ERROR: ", msg)
    }

    fn line(&self, style: &str, prefix: &str, msg: &str) {
        let mut out = String::with_capacity(prefix.len() + msg.len() + 16);
        if self.no_color {
            out.push_str(prefix);
        } else {
            out.push_str(style);
            out.push_str(prefix);
            out.push_str(RESET);
        }
        out.push_str(msg);
        if !msg.ends_with('\n') {
            out.push('\n');
        }
        match &self.captured {
            Some(c) => c.borrow_mut().push_str(&out),
            None => {
                // Nothing sensible is left to do if stdout is gone; the exit code still tells.
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(out.as_bytes());
                let _ = stdout.flush();
            }
        }
    }
}

/// Go's `strconv.ParseBool` truth values; anything else (or unparsable) is false.
pub fn parse_bool(value: Option<&str>) -> bool {
    matches!(value, Some("1" | "t" | "T" | "TRUE" | "true" | "True"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_newlines() {
        let log = Logger::capture(true);
        log.warn("w");
        log.error("e\n");
        assert_eq!(log.captured(), "Warning: w\nERROR: e\n");
    }

    #[test]
    fn colour_wraps_only_the_prefix() {
        let log = Logger::capture(false);
        log.error("boom");
        assert_eq!(log.captured(), "\x1b[31;1mERROR: \x1b[0mboom\n");
    }

    #[test]
    fn no_color_parse_bool() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert!(parse_bool(Some(t)));
        }
        for f in ["", "yes", "0", "false", "tRuE"] {
            assert!(!parse_bool(Some(f)));
        }
        assert!(!parse_bool(None));
    }
}
