//! Go's text forms of decoded TOML values, as the reference prints them: `fmt.Sprint`
//! (command entries), `%T` (error messages), `strings.EqualFold` (field names) and
//! BurntSushi's key quoting.

use toml::de::DeValue;

/// Go's `strings.EqualFold` against a lower-case ASCII name: besides ASCII case, the
/// Kelvin sign folds to `k` and the long s to `s`.
pub fn equal_fold(key: &str, name: &str) -> bool {
    let mut chars = key.chars();
    name.bytes().all(|n| {
        chars.next().is_some_and(|c| {
            c.to_ascii_lowercase() == n as char
                || (c == '\u{212A}' && n == b'k')
                || (c == '\u{17F}' && n == b's')
        })
    }) && chars.next().is_none()
}

/// One key of a path as BurntSushi prints it: bare if it can be, else double-quoted.
pub fn key_text(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_owned()
    } else {
        format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Go's `%T` of the value BurntSushi decodes (`any` spelled as `empty`).
pub fn go_type(v: &DeValue<'_>, empty: &str) -> String {
    match v {
        DeValue::String(_) => "string".into(),
        DeValue::Integer(_) => "int64".into(),
        DeValue::Float(_) => "float64".into(),
        DeValue::Boolean(_) => "bool".into(),
        DeValue::Datetime(_) => "time.Time".into(),
        DeValue::Array(_) => format!("[]{empty}"),
        DeValue::Table(_) => format!("map[string]{empty}"),
    }
}

/// Go's `fmt.Sprint` of a decoded TOML value: arrays as `[a b]`, tables as `map[k:v]`
/// with sorted keys, floats in `%v` form.
pub fn go_sprint(v: &DeValue<'_>, out: &mut String) {
    match v {
        DeValue::String(s) => out.push_str(s),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => out.push_str(&n.to_string()),
            Err(_) => out.push_str(i.as_str()),
        },
        DeValue::Float(f) => out.push_str(&go_float(f.as_str())),
        DeValue::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        DeValue::Datetime(d) => go_time(
            d.date.map(|d| (d.year, d.month, d.day)),
            d.time.map(|t| {
                let (s, n) = (t.second.unwrap_or(0), t.nanosecond.unwrap_or(0));
                (t.hour, t.minute, s, n)
            }),
            d.offset.map(|_| d.to_string()),
            out,
        ),
        DeValue::Array(items) => {
            out.push('[');
            for (n, i) in items.iter().enumerate() {
                if n > 0 {
                    out.push(' ');
                }
                go_sprint(i.get_ref(), out);
            }
            out.push(']');
        }
        DeValue::Table(t) => {
            out.push_str("map[");
            for (n, (k, i)) in t.iter().enumerate() {
                if n > 0 {
                    out.push(' ');
                }
                out.push_str(k.get_ref());
                out.push(':');
                go_sprint(i.get_ref(), out);
            }
            out.push(']');
        }
    }
}

/// Go's `time.Time.String()` of a TOML datetime as BurntSushi decodes it: local forms get
/// the zones `datetime-local`, `date-local` and `time-local`. `offset` is the datetime's
/// RFC 3339 text when it has an offset (its tail is `Z` or `±hh:mm`).
fn go_time(
    date: Option<(u16, u8, u8)>,
    time: Option<(u8, u8, u8, u32)>,
    offset: Option<String>,
    out: &mut String,
) {
    use std::fmt::Write;
    let (year, month, day) = date.unwrap_or((0, 1, 1));
    let (hour, minute, second, nanos) = time.unwrap_or_default();
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}"
    );
    if nanos > 0 {
        let _ = write!(out, ".{}", format!("{nanos:09}").trim_end_matches('0'));
    }
    let zone = match &offset {
        Some(text) if text.len() > 6 && !text.ends_with('Z') => {
            let tail = &text[text.len() - 6..];
            let zone = tail.replace(':', "");
            if zone[1..] == *"0000" {
                "+0000 UTC".to_owned()
            } else {
                format!("{zone} {zone}")
            }
        }
        Some(_) => "+0000 UTC".to_owned(),
        None if date.is_some() && time.is_some() => "+0000 datetime-local".to_owned(),
        None if date.is_some() => "+0000 date-local".to_owned(),
        None => "+0000 time-local".to_owned(),
    };
    out.push(' ');
    out.push_str(&zone);
}

/// Go's `%v` of a float64 (strconv `'g'`, shortest digits), computed from the TOML
/// literal: exponent form when the decimal exponent is below -4 or at least 6 (`1e+06`).
/// Works on the decimal digits instead of an `f64`, which keeps float parsing and
/// printing (about 40 KiB) out of the binary; a literal with up to 15 significant digits
/// has exactly those digits as its shortest form. Longer ones keep their digits.
fn go_float(literal: &str) -> String {
    let (sign, unsigned) = match literal.as_bytes().first() {
        Some(b'-') => ("-", &literal[1..]),
        Some(b'+') => ("", &literal[1..]),
        _ => ("", literal),
    };
    match unsigned {
        "nan" => return "NaN".into(),
        "inf" => return format!("{}Inf", if sign.is_empty() { "+" } else { "-" }),
        _ => {}
    }
    let (mantissa, exp) = unsigned
        .split_once(['e', 'E'])
        .map_or((unsigned, 0), |(m, e)| (m, e.parse::<i64>().unwrap_or(0)));
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all: String = [int, frac]
        .concat()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let leading = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_matches('0');
    if digits.is_empty() {
        return format!("{sign}0");
    }
    // Digits before the decimal point, once leading zeros are gone.
    let int_digits = int.bytes().filter(u8::is_ascii_digit).count();
    let dp = int_digits as i64 - leading as i64 + exp;
    let exp = dp - 1;
    let nd = digits.len() as i64;
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.abs());
    }
    if dp <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-dp) as usize))
    } else if dp >= nd {
        format!("{sign}{digits}{}", "0".repeat((dp - nd) as usize))
    } else {
        let (whole, frac) = digits.split_at(dp as usize);
        format!("{sign}{whole}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go_percent_v() {
        for (literal, go) in [
            ("2.5", "2.5"),
            ("1e6", "1e+06"),
            ("123456.0", "123456"),
            ("1234567.0", "1.234567e+06"),
            ("0.0001", "0.0001"),
            ("1e-5", "1e-05"),
            ("-7E+22", "-7e+22"),
            ("1_000.250_0", "1000.25"),
            ("+0.0", "0"),
            ("-0.0", "-0"),
            ("+inf", "+Inf"),
            ("-nan", "NaN"),
        ] {
            assert_eq!(go_float(literal), go, "{literal}");
        }
    }

    #[test]
    fn equal_fold_and_key_quoting() {
        assert!(equal_fold("Working-DIR", "working-dir"));
        assert!(equal_fold("buildpac\u{212A}-id", "buildpack-id"));
        assert!(equal_fold("ARG\u{17F}", "args"));
        assert!(!equal_fold("t\u{131}pe", "type"));
        assert!(!equal_fold("types", "type"));
        assert!(!equal_fold("typ", "type"));
        assert_eq!(key_text("exec-env"), "exec-env");
        assert_eq!(key_text("a b\"c"), "\"a b\\\"c\"");
        assert_eq!(key_text(""), "\"\"");
    }
}
