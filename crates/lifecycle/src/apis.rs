//! CNB API versions (`0.10`, `1.2`) and the comma-separated lists run images advertise.
//!
//! Compatibility follows the reference lifecycle: a 0.x API is supported only on an exact
//! match, while a supported `M.n` with `M >= 1` also covers every `M.m` with `m <= n`.

use std::fmt;
use std::str::FromStr;

use launcher::api::Version;
use serde::{Deserialize, Serialize};

/// One API version, `major.minor`. It is the launcher's own version type, so versions
/// parse and order here exactly as in the launcher that enforces them at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Api(Version);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid API version '{0}': expected <major>.<minor>, e.g. 0.12")]
pub struct ParseApiError(pub String);

impl Api {
    pub const fn new(major: u64, minor: u64) -> Self {
        Api(Version::new(major, minor))
    }

    /// The launcher's version type, for the meta launcher's selection rule.
    pub const fn version(self) -> Version {
        self.0
    }
}

impl From<Version> for Api {
    fn from(v: Version) -> Self {
        Api(v)
    }
}

impl FromStr for Api {
    type Err = ParseApiError;

    /// Accepts what the reference lifecycle accepts (`^v?(\d+)\.?(\d*)$`): `0.9`, `v0.9`, `1`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
            .map(Api)
            .ok_or_else(|| ParseApiError(s.to_string()))
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` so width/alignment work in reports (`{:<6}`).
        f.pad(&self.0.to_string())
    }
}

impl Serialize for Api {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Api {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A sorted, duplicate-free set of supported APIs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Api>", into = "Vec<Api>")]
pub struct ApiList(Vec<Api>);

impl ApiList {
    pub fn new(apis: impl IntoIterator<Item = Api>) -> Self {
        let mut v: Vec<Api> = apis.into_iter().collect();
        v.sort();
        v.dedup();
        ApiList(v)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Api> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a launcher advertising this list can run something declaring `api`.
    pub fn supports(&self, api: Api) -> bool {
        self.0.iter().any(|s| launcher::api::covers(s.0, api.0))
    }

    /// Every API of `self` that `other` does not support (empty when `other` covers `self`).
    pub fn not_supported_by(&self, other: &ApiList) -> ApiList {
        ApiList(
            self.0
                .iter()
                .copied()
                .filter(|a| !other.supports(*a))
                .collect(),
        )
    }

    /// Parses a label value: comma-separated versions, whitespace around items ignored.
    pub fn parse_label(value: &str) -> Result<Self, ParseApiError> {
        let items: Result<Vec<Api>, _> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect();
        Ok(ApiList::new(items?))
    }

    /// The label form, e.g. `0.7,0.8,0.9`.
    pub fn to_label(&self) -> String {
        self.to_string()
    }
}

impl From<Vec<Api>> for ApiList {
    fn from(v: Vec<Api>) -> Self {
        ApiList::new(v)
    }
}

impl From<ApiList> for Vec<Api> {
    fn from(l: ApiList) -> Self {
        l.0
    }
}

impl fmt::Display for ApiList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, api) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{api}")?;
        }
        Ok(())
    }
}

impl FromStr for ApiList {
    type Err = ParseApiError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApiList::parse_label(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_reference_lifecycle() {
        assert_eq!("0.9".parse::<Api>().unwrap(), Api::new(0, 9));
        assert_eq!("v0.12".parse::<Api>().unwrap(), Api::new(0, 12));
        assert_eq!("1".parse::<Api>().unwrap(), Api::new(1, 0));
        assert_eq!("1.".parse::<Api>().unwrap(), Api::new(1, 0));
        for bad in ["", "x", "0.x", "0.1.2", ".1", "v", "-1.0"] {
            assert!(bad.parse::<Api>().is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn orders_numerically_not_lexically() {
        let list = ApiList::parse_label("0.10, 0.9,0.7,0.9").unwrap();
        assert_eq!(list.to_label(), "0.7,0.9,0.10");
    }

    #[test]
    fn zero_major_needs_exact_match_and_one_major_covers_lower_minors() {
        let list = ApiList::parse_label("0.12,1.3").unwrap();
        assert!(list.supports(Api::new(0, 12)));
        assert!(!list.supports(Api::new(0, 11)));
        assert!(list.supports(Api::new(1, 0)));
        assert!(list.supports(Api::new(1, 3)));
        assert!(!list.supports(Api::new(1, 4)));
        assert!(!list.supports(Api::new(2, 0)));
    }

    #[test]
    fn reports_what_is_not_covered() {
        let app = ApiList::parse_label("0.10,0.12").unwrap();
        let run = ApiList::parse_label("0.12,0.13").unwrap();
        assert_eq!(app.not_supported_by(&run), ApiList::new([Api::new(0, 10)]));
        assert_eq!(app.not_supported_by(&run).to_string(), "0.10");
    }

    #[test]
    fn rejects_bad_label_items_naming_them() {
        let err = ApiList::parse_label("0.7,zero").unwrap_err();
        assert!(err.to_string().contains("'zero'"));
    }
}
