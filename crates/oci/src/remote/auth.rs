//! Registry authentication: `WWW-Authenticate` challenges, the bearer-token flow and a
//! token cache keyed by (registry, sorted scope set).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::credentials::{Credential, CredentialSource};
use crate::error::Error;

/// Token lifetime when the token server does not say (the distribution spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Tokens are dropped this long before they expire, so none expires mid-request.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// Longest lifetime believed (a token server's `expires_in` is not trusted further).
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses `Basic realm="x"` or `Bearer realm="..",service="..",scope=".."`.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
        let params = parse_params(params);
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("basic") {
            Some(Challenge::Basic)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Some(Challenge::Bearer {
                realm: get("realm")?,
                service: get("service"),
                scope: get("scope"),
            })
        } else {
            None
        }
    }
}

/// `key=value` or `key="quoted, value"` pairs separated by commas.
fn parse_params(input: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if chars.next().is_none() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ',')));
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
}

/// A bearer token; `Debug` never shows it.
#[derive(Clone)]
struct Token {
    value: String,
    expires: Instant,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

#[derive(Debug, Default)]
struct RegistryState {
    challenge: Option<Challenge>,
    credential: Option<Option<Credential>>,
    tokens: HashMap<BTreeSet<String>, Token>,
}

/// Per-client authentication state: which scheme each registry asked for, its
/// credentials (looked up once) and the bearer tokens obtained so far.
#[derive(Debug)]
pub struct Authenticator {
    source: CredentialSource,
    helper_timeout: Duration,
    registries: Mutex<HashMap<String, RegistryState>>,
}

/// A request to the token realm, built by [`Authenticator::challenged`].
pub(crate) struct TokenRequest {
    pub url: String,
    /// GET query: `service` and one `scope` per scope.
    pub query: Vec<(&'static str, String)>,
    /// `Authorization` header value for basic credentials; never log it.
    pub authorization: Option<String>,
    /// With an identity token: the OAuth2 refresh-token form to POST instead of the GET.
    pub oauth_form: Option<Vec<(&'static str, String)>>,
    pub scopes: BTreeSet<String>,
}

impl Authenticator {
    pub fn new(source: CredentialSource, helper_timeout: Duration) -> Self {
        Authenticator {
            source,
            helper_timeout,
            registries: Mutex::new(HashMap::new()),
        }
    }

    fn with_state<T>(&self, registry: &str, f: impl FnOnce(&mut RegistryState) -> T) -> T {
        let mut map = self.registries.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(registry.to_string()).or_default())
    }

    fn credential(&self, registry: &str) -> Result<Option<Credential>, Error> {
        if let Some(known) = self.with_state(registry, |s| s.credential.clone()) {
            return Ok(known);
        }
        let found = self.source.lookup(registry, self.helper_timeout)?;
        self.with_state(registry, |s| s.credential = Some(found.clone()));
        Ok(found)
    }

    /// The `Authorization` value to send up front, from what earlier challenges taught.
    pub fn authorization(
        &self,
        registry: &str,
        scopes: &BTreeSet<String>,
    ) -> Result<Option<String>, Error> {
        match self.with_state(registry, |s| s.challenge.clone()) {
            None => Ok(None),
            Some(Challenge::Basic) => {
                Ok(self.credential(registry)?.as_ref().and_then(basic_header))
            }
            Some(Challenge::Bearer { .. }) => match self.credential(registry)? {
                Some(Credential::RegistryToken(token)) => Ok(Some(format!("Bearer {token}"))),
                _ => Ok(self
                    .live_token(registry, scopes)
                    .map(|t| format!("Bearer {t}"))),
            },
        }
    }

    /// Any unexpired token whose grants cover `scopes`.
    fn live_token(&self, registry: &str, scopes: &BTreeSet<String>) -> Option<String> {
        self.with_state(registry, |s| {
            let now = Instant::now();
            s.tokens.retain(|_, t| t.expires > now);
            s.tokens
                .iter()
                .find(|(granted, _)| covers(granted, scopes))
                .map(|(_, t)| t.value.clone())
        })
    }

    /// Records a 401's challenge; fails at once when it cannot be answered. `rejected` is
    /// the `Authorization` value the refused request carried: a token the registry no longer
    /// honours is dropped. Only that one — requests running in parallel may have just
    /// obtained tokens of their own, and a first contact (no header) drops nothing.
    pub(crate) fn challenged(
        &self,
        registry: &str,
        header: &str,
        rejected: Option<&str>,
    ) -> Result<(), Error> {
        let challenge = Challenge::parse(header).ok_or_else(|| Error::Unauthorized {
            registry: registry.to_string(),
            message: format!("unsupported WWW-Authenticate challenge {header:?}"),
        })?;
        let is_basic = challenge == Challenge::Basic;
        let rejected = rejected.and_then(|h| h.strip_prefix("Bearer "));
        self.with_state(registry, |s| {
            s.challenge = Some(challenge);
            s.tokens.retain(|_, t| Some(t.value.as_str()) != rejected);
        });
        let credential = self.credential(registry)?;
        if is_basic && !matches!(credential, Some(Credential::Basic { .. })) {
            return Err(Error::Unauthorized {
                registry: registry.to_string(),
                message: "the registry requires a username and password (Basic) and none \
                          is configured (see the README on where credentials are looked up)"
                    .into(),
            });
        }
        if let (Some(Credential::RegistryToken(token)), Some(refused)) = (&credential, rejected) {
            if token == refused {
                return Err(Error::Unauthorized {
                    registry: registry.to_string(),
                    message: "the registry refused the bearer token configured for it".into(),
                });
            }
        }
        Ok(())
    }

    /// The token request to make before a request needing `scopes`: the registry asked
    /// for bearer tokens earlier and no cached one covers them. Knowing the realm from the
    /// first challenge spares every later scope set its own 401 round trip.
    pub(crate) fn token_needed(
        &self,
        registry: &str,
        scopes: &BTreeSet<String>,
    ) -> Result<Option<TokenRequest>, Error> {
        let Some(Challenge::Bearer {
            realm,
            service,
            scope,
        }) = self.with_state(registry, |s| s.challenge.clone())
        else {
            return Ok(None);
        };
        let credential = self.credential(registry)?;
        if self.live_token(registry, scopes).is_some()
            || matches!(credential, Some(Credential::RegistryToken(_)))
        {
            return Ok(None);
        }
        let mut scopes = scopes.clone();
        // A request without scopes of its own (a ping) asks for what the registry named.
        if scopes.is_empty() {
            scopes.extend(scope.iter().flat_map(|s| s.split(' ')).map(str::to_string));
        }
        let mut query = Vec::new();
        if let Some(service) = &service {
            query.push(("service", service.clone()));
        }
        query.extend(scopes.iter().map(|s| ("scope", s.clone())));
        let oauth_form = match &credential {
            Some(Credential::IdentityToken(token)) => Some(vec![
                ("grant_type", "refresh_token".to_string()),
                ("client_id", "relaunch".to_string()),
                ("service", service.unwrap_or_default()),
                (
                    "scope",
                    scopes.iter().cloned().collect::<Vec<_>>().join(" "),
                ),
                ("refresh_token", token.clone()),
            ]),
            _ => None,
        };
        Ok(Some(TokenRequest {
            url: realm,
            query,
            authorization: credential.as_ref().and_then(basic_header),
            oauth_form,
            scopes,
        }))
    }

    /// Stores the token server's JSON answer (`token` or `access_token`, `expires_in`).
    pub(crate) fn store_token(
        &self,
        registry: &str,
        scopes: BTreeSet<String>,
        body: &[u8],
    ) -> Result<(), Error> {
        #[derive(serde::Deserialize)]
        struct Answer {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let bad = |message: String| Error::Unauthorized {
            registry: registry.to_string(),
            message,
        };
        let answer: Answer = serde_json::from_slice(body)
            .map_err(|e| bad(format!("the token server's answer is not valid JSON: {e}")))?;
        let value = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad("the token server's answer has no token".into()))?;
        let lifetime = answer
            .expires_in
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs)
            .min(MAX_TOKEN_LIFETIME)
            .saturating_sub(EXPIRY_MARGIN)
            .max(Duration::from_secs(1));
        let token = Token {
            value,
            expires: Instant::now() + lifetime,
        };
        self.with_state(registry, |s| {
            s.tokens.insert(scopes, token);
        });
        Ok(())
    }
}

fn basic_header(credential: &Credential) -> Option<String> {
    match credential {
        Credential::Basic { username, password } => {
            let raw = format!("{username}:{password}");
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ))
        }
        Credential::IdentityToken(_) | Credential::RegistryToken(_) => None,
    }
}

/// Whether `granted` scopes include every action of every `wanted` scope
/// (`repository:a:pull,push` covers `repository:a:pull`).
fn covers(granted: &BTreeSet<String>, wanted: &BTreeSet<String>) -> bool {
    let split = |scope: &str| {
        scope.rsplit_once(':').map(|(resource, actions)| {
            (
                resource.to_string(),
                actions
                    .split(',')
                    .map(str::to_string)
                    .collect::<BTreeSet<_>>(),
            )
        })
    };
    wanted.iter().all(|w| {
        let Some((resource, actions)) = split(w) else {
            return granted.contains(w);
        };
        granted
            .iter()
            .filter_map(|g| split(g))
            .any(|(r, a)| r == resource && actions.is_subset(&a))
    })
}

/// `repository:<name>:<actions>` scope strings.
pub fn repository_scope(repository: &str, actions: &str) -> String {
    format!("repository:{repository}:{actions}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELPER: Duration = Duration::from_secs(10);

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let bearer = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            bearer,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            Challenge::parse("bearer realm=http://x/t"),
            Some(Challenge::Bearer {
                realm: "http://x/t".into(),
                service: None,
                scope: None
            })
        );
        assert_eq!(Challenge::parse("Bearer service=x"), None);
        assert_eq!(Challenge::parse("Negotiate abc"), None);
    }

    fn scopes(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tokens_are_cached_per_scope_set_and_cover_lesser_scopes() {
        let auth = Authenticator::new(CredentialSource::Anonymous, HELPER);
        let push = scopes(&["repository:a:pull,push", "repository:b:pull"]);
        assert!(auth.token_needed("r", &push).unwrap().is_none());
        auth.challenged("r", r#"Bearer realm="http://t/token",service="svc""#, None)
            .unwrap();
        let request = auth.token_needed("r", &push).unwrap().unwrap();
        assert_eq!(request.url, "http://t/token");
        assert_eq!(
            request.query,
            vec![
                ("service", "svc".to_string()),
                ("scope", "repository:a:pull,push".to_string()),
                ("scope", "repository:b:pull".to_string()),
            ]
        );
        assert!(request.authorization.is_none());
        assert_eq!(auth.authorization("r", &push).unwrap(), None);
        auth.store_token(
            "r",
            request.scopes,
            br#"{"access_token":"abc","expires_in":300}"#,
        )
        .unwrap();
        assert!(auth.token_needed("r", &push).unwrap().is_none());
        assert_eq!(
            auth.authorization("r", &push).unwrap().as_deref(),
            Some("Bearer abc")
        );
        for covered in [&["repository:b:pull"][..], &["repository:a:pull"][..]] {
            assert_eq!(
                auth.authorization("r", &scopes(covered))
                    .unwrap()
                    .as_deref(),
                Some("Bearer abc")
            );
        }
        for uncovered in [&["repository:c:pull"][..], &["repository:b:push"][..]] {
            assert_eq!(auth.authorization("r", &scopes(uncovered)).unwrap(), None);
            assert!(auth
                .token_needed("r", &scopes(uncovered))
                .unwrap()
                .is_some());
        }
        assert_eq!(auth.authorization("other", &push).unwrap(), None);
    }

    /// Parallel requests each meet the first 401; one of them must not throw away the
    /// token another has just fetched. Only a token the registry refused is dropped.
    #[test]
    fn a_challenge_drops_only_the_refused_token() {
        let auth = Authenticator::new(CredentialSource::Anonymous, HELPER);
        let (a, b) = (
            scopes(&["repository:a:pull"]),
            scopes(&["repository:b:pull"]),
        );
        let challenge = r#"Bearer realm="http://t""#;
        auth.challenged("r", challenge, None).unwrap();
        auth.store_token("r", a.clone(), br#"{"token":"ta"}"#)
            .unwrap();
        auth.store_token("r", b.clone(), br#"{"token":"tb"}"#)
            .unwrap();
        auth.challenged("r", challenge, None).unwrap();
        assert_eq!(
            auth.authorization("r", &a).unwrap().as_deref(),
            Some("Bearer ta")
        );
        auth.challenged("r", challenge, Some("Bearer ta")).unwrap();
        assert_eq!(auth.authorization("r", &a).unwrap(), None);
        assert_eq!(
            auth.authorization("r", &b).unwrap().as_deref(),
            Some("Bearer tb")
        );
    }

    #[test]
    fn expired_tokens_are_dropped_and_bad_answers_rejected() {
        let auth = Authenticator::new(CredentialSource::Anonymous, HELPER);
        let s = scopes(&["repository:a:pull"]);
        auth.challenged("r", r#"Bearer realm="http://t""#, None)
            .unwrap();
        auth.store_token("r", s.clone(), br#"{"token":"t","expires_in":0}"#)
            .unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(auth.authorization("r", &s).unwrap(), None);
        assert!(auth.store_token("r", s.clone(), b"{}").is_err());
        assert!(auth.store_token("r", s.clone(), b"<html>").is_err());
        // An absurd lifetime is capped, not an overflow.
        let forever = format!(r#"{{"token":"t","expires_in":{}}}"#, u64::MAX);
        auth.store_token("r", s.clone(), forever.as_bytes())
            .unwrap();
        assert_eq!(
            auth.authorization("r", &s).unwrap().as_deref(),
            Some("Bearer t")
        );
    }

    #[test]
    fn identity_tokens_use_the_oauth_refresh_grant() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"r":{"identitytoken":"refresh-me"}}}"#,
        )
        .unwrap();
        let auth = Authenticator::new(CredentialSource::DockerConfigDir(dir.path().into()), HELPER);
        auth.challenged("r", r#"Bearer realm="http://t",service="s""#, None)
            .unwrap();
        let request = auth
            .token_needed("r", &scopes(&["repository:a:pull"]))
            .unwrap()
            .unwrap();
        let form = request.oauth_form.unwrap();
        assert!(form.contains(&("grant_type", "refresh_token".into())));
        assert!(form.contains(&("refresh_token", "refresh-me".into())));
        assert!(form.contains(&("scope", "repository:a:pull".into())));
    }

    #[test]
    fn basic_challenge_without_credentials_is_a_clear_error() {
        let auth = Authenticator::new(CredentialSource::Anonymous, HELPER);
        let err = auth
            .challenged("r", r#"Basic realm="x""#, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("username and password"), "{err}");
    }
}
