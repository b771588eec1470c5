//! Registry credentials and where they come from. The default lookup, per registry, first
//! source with an entry wins:
//!
//! 1. credentials a program embedding this crate passes ([`CredentialSource::Given`]);
//! 2. `CNB_REGISTRY_AUTH` (the platform spec's JSON map of registry → `Authorization` value);
//! 3. the Docker config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`):
//!    `credHelpers`, then `credsStore`, then `auths`;
//! 4. containers' auth file: `$REGISTRY_AUTH_FILE`, then `$XDG_RUNTIME_DIR/containers/auth.json`.
//!
//! Nothing found means anonymous. A credential helper that answers "credentials not found"
//! is a miss (as docker/cli treats it); one that is missing, fails or overruns its timeout
//! is an error naming it, never silently anonymous.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::client::DOCKER_HUB_REGISTRY;
use crate::error::Error;

/// A secret for one registry. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`); exchanged at the token realm.
    IdentityToken(String),
    /// A bearer token sent to the registry as is (`registrytoken`, `Bearer` in
    /// `CNB_REGISTRY_AUTH`); no token realm is asked.
    RegistryToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
            Credential::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
        }
    }
}

/// Where credentials come from; see the module documentation for the default order.
#[derive(Debug, Clone, Default)]
pub enum CredentialSource {
    /// Never send credentials.
    Anonymous,
    /// Credentials by registry (`host[:port]`; Docker Hub as `docker.io`), e.g. from a
    /// program embedding this crate.
    Given(BTreeMap<String, Credential>),
    /// A JSON map of registry → `Authorization` header value (`Basic …` or `Bearer …`), the
    /// format of `CNB_REGISTRY_AUTH`.
    AuthHeaders(String),
    /// `config.json` in this directory (what `DOCKER_CONFIG` names).
    DockerConfigDir(PathBuf),
    /// A file in the Docker config format, e.g. containers' `auth.json`; absent is empty.
    AuthFile(PathBuf),
    /// Each source in turn; the first with an entry for the registry wins.
    Chain(Vec<CredentialSource>),
    /// The default chain read from the environment (module documentation, 2–4).
    #[default]
    Environment,
}

impl CredentialSource {
    /// `given` first, then the environment's sources: what an embedding program passes.
    pub fn given_then_environment(given: BTreeMap<String, Credential>) -> Self {
        if given.is_empty() {
            return CredentialSource::Environment;
        }
        CredentialSource::Chain(vec![
            CredentialSource::Given(given),
            CredentialSource::Environment,
        ])
    }

    /// The sources [`CredentialSource::Environment`] stands for, as set now.
    pub fn from_environment() -> Vec<CredentialSource> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let mut chain = Vec::new();
        if let Some(json) = var("CNB_REGISTRY_AUTH") {
            chain.push(CredentialSource::AuthHeaders(
                json.to_string_lossy().into_owned(),
            ));
        }
        let docker = var("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| Path::new(&home).join(".docker")));
        chain.extend(docker.map(CredentialSource::DockerConfigDir));
        chain.extend(
            var("REGISTRY_AUTH_FILE")
                .map(PathBuf::from)
                .map(CredentialSource::AuthFile),
        );
        chain.extend(
            var("XDG_RUNTIME_DIR")
                .map(|dir| Path::new(&dir).join("containers/auth.json"))
                .map(CredentialSource::AuthFile),
        );
        chain
    }

    /// Credentials for `registry` (`host[:port]` as spoken to); `None` means go anonymous.
    /// A credential helper gets at most `helper_timeout` to answer.
    pub fn lookup(
        &self,
        registry: &str,
        helper_timeout: Duration,
    ) -> Result<Option<Credential>, Error> {
        match self {
            CredentialSource::Anonymous => Ok(None),
            CredentialSource::Given(map) => Ok(map
                .iter()
                .find(|(key, _)| key_matches(key, registry))
                .map(|(_, c)| c.clone())),
            CredentialSource::AuthHeaders(json) => lookup_auth_headers(json, registry),
            CredentialSource::DockerConfigDir(dir) => {
                lookup_in_file(&dir.join("config.json"), registry, helper_timeout)
            }
            CredentialSource::AuthFile(path) => lookup_in_file(path, registry, helper_timeout),
            CredentialSource::Chain(sources) => {
                for source in sources {
                    if let Some(found) = source.lookup(registry, helper_timeout)? {
                        return Ok(Some(found));
                    }
                }
                Ok(None)
            }
            CredentialSource::Environment => {
                CredentialSource::Chain(Self::from_environment()).lookup(registry, helper_timeout)
            }
        }
    }
}

/// Whether a config key (`host[:port]`, possibly as a URL with a path, as Docker writes
/// them) names `registry`. Docker Hub answers to each of its names.
fn key_matches(key: &str, registry: &str) -> bool {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host).to_ascii_lowercase();
    let hub = ["docker.io", "index.docker.io", DOCKER_HUB_REGISTRY];
    host == registry.to_ascii_lowercase() || (hub.contains(&registry) && hub.contains(&&*host))
}

/// The name a credential helper is asked about: Docker's legacy index URL for Docker Hub.
fn helper_server_url(registry: &str) -> &str {
    if registry == DOCKER_HUB_REGISTRY {
        "https://index.docker.io/v1/"
    } else {
        registry
    }
}

fn unauthorized(registry: &str, message: String) -> Error {
    Error::Unauthorized {
        registry: registry.to_string(),
        message,
    }
}

fn lookup_auth_headers(json: &str, registry: &str) -> Result<Option<Credential>, Error> {
    let headers: BTreeMap<String, String> = serde_json::from_str(json).map_err(|e| {
        unauthorized(
            registry,
            format!("CNB_REGISTRY_AUTH is not a JSON map of registry to header: {e}"),
        )
    })?;
    let Some((_, value)) = headers.iter().find(|(key, _)| key_matches(key, registry)) else {
        return Ok(None);
    };
    let bad = || {
        unauthorized(
            registry,
            "its CNB_REGISTRY_AUTH entry is neither `Basic <base64 user:password>` nor \
             `Bearer <token>`"
                .into(),
        )
    };
    let (scheme, rest) = value.trim().split_once(' ').ok_or_else(bad)?;
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => decode_basic(rest.trim()).map(Some).ok_or_else(bad),
        "bearer" => Ok(Some(Credential::RegistryToken(rest.trim().to_string()))),
        _ => Err(bad()),
    }
}

/// `base64(user:password)` → basic credentials.
fn decode_basic(encoded: &str) -> Option<Credential> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let (username, password) = std::str::from_utf8(&raw).ok()?.split_once(':')?;
    Some(Credential::Basic {
        username: username.to_string(),
        password: password.to_string(),
    })
}

#[derive(serde::Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
    registrytoken: Option<String>,
}

/// Largest config file read (they are a few KiB; a bound keeps a hostile file harmless).
const MAX_CONFIG: u64 = 4 << 20;

fn lookup_in_file(
    path: &Path,
    registry: &str,
    helper_timeout: Duration,
) -> Result<Option<Credential>, Error> {
    let cannot = |e: String| unauthorized(registry, format!("cannot read {}: {e}", path.display()));
    // The type is checked before opening: opening a FIFO would block.
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(cannot("not a regular file".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cannot(e.to_string())),
    }
    let file = std::fs::File::open(path).map_err(|e| cannot(e.to_string()))?;
    let mut text = Vec::new();
    file.take(MAX_CONFIG)
        .read_to_end(&mut text)
        .map_err(|e| cannot(e.to_string()))?;
    let config: ConfigFile =
        serde_json::from_slice(&text).map_err(|e| cannot(format!("invalid JSON: {e}")))?;
    let helper = config
        .cred_helpers
        .iter()
        .find(|(key, _)| key_matches(key, registry))
        .map(|(_, helper)| helper)
        .or(config.creds_store.as_ref());
    if let Some(helper) = helper.filter(|h| !h.is_empty()) {
        if let Some(found) = run_helper(helper, registry, helper_timeout)? {
            return Ok(Some(found));
        }
    }
    let entry = config
        .auths
        .iter()
        .find(|(key, _)| key.as_str() == helper_server_url(registry))
        .or_else(|| {
            config
                .auths
                .iter()
                .find(|(key, _)| key_matches(key, registry))
        });
    match entry {
        Some((_, entry)) => entry_credential(entry)
            .map_err(|why| unauthorized(registry, format!("{why} ({})", path.display()))),
        None => Ok(None),
    }
}

fn entry_credential(entry: &AuthEntry) -> Result<Option<Credential>, String> {
    if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken(token.clone())));
    }
    if let Some(token) = entry.registrytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::RegistryToken(token.clone())));
    }
    if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
        return decode_basic(auth)
            .map(Some)
            .ok_or_else(|| "its \"auth\" entry is not base64 of user:password".to_string());
    }
    match (&entry.username, &entry.password) {
        (Some(username), Some(password)) if !username.is_empty() => Ok(Some(Credential::Basic {
            username: username.clone(),
            password: password.clone(),
        })),
        // Docker Desktop leaves `{}` entries behind when a helper holds the secret.
        _ => Ok(None),
    }
}

/// What docker-credential-helpers print when they hold nothing for a server.
const NOT_FOUND: &str = "credentials not found in native keychain";
/// Largest helper answer read.
const MAX_HELPER_OUTPUT: u64 = 1 << 20;

/// `docker-credential-<helper> get` with the server on stdin, killed after `timeout`.
/// Helper output never reaches error messages (it may hold a secret).
fn run_helper(
    helper: &str,
    registry: &str,
    timeout: Duration,
) -> Result<Option<Credential>, Error> {
    let program = format!("docker-credential-{helper}");
    let fail = |why: String| unauthorized(registry, format!("credential helper {program} {why}"));
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => fail("is not installed (not found on PATH)".into()),
            _ => fail(format!("could not be started: {e}")),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its exit status below.
        let _ = stdin.write_all(helper_server_url(registry).as_bytes());
    }
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stdout).take(MAX_HELPER_OUTPUT).read_to_end(&mut out);
        out
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("did not answer within {timeout:?}")));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(fail(format!("could not be waited for: {e}"))),
        }
    };
    let output = reader.join().unwrap_or_default();
    if !status.success() {
        if String::from_utf8_lossy(&output).trim() == NOT_FOUND {
            return Ok(None);
        }
        return Err(fail(format!("failed ({status})")));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&output)
        .map_err(|_| fail("answered something other than its JSON credentials".into()))?;
    Ok(match (answer.username.as_str(), answer.secret) {
        (_, secret) if secret.is_empty() => None,
        ("<token>", secret) => Some(Credential::IdentityToken(secret)),
        (username, password) => Some(Credential::Basic {
            username: username.to_string(),
            password,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(10);

    fn write_config(json: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        dir
    }

    fn basic(username: &str, password: &str) -> Option<Credential> {
        Some(Credential::Basic {
            username: username.into(),
            password: password.into(),
        })
    }

    #[test]
    fn auths_entries_by_auth_field_username_and_identity_token() {
        // "dXNlcjpwYXNz" is base64("user:pass").
        let dir = write_config(
            r#"{"auths":{
                "reg.example:5000":{"auth":"dXNlcjpwYXNz"},
                "https://other.example/v1/":{"username":"u","password":"p"},
                "desktop.example":{},
                "https://index.docker.io/v1/":{"identitytoken":"refresh"}}}"#,
        );
        let source = CredentialSource::DockerConfigDir(dir.path().to_path_buf());
        let lookup = |r| source.lookup(r, T).unwrap();
        assert_eq!(lookup("reg.example:5000"), basic("user", "pass"));
        assert_eq!(lookup("other.example"), basic("u", "p"));
        assert_eq!(
            lookup(DOCKER_HUB_REGISTRY),
            Some(Credential::IdentityToken("refresh".into()))
        );
        assert_eq!(lookup("desktop.example"), None);
        assert_eq!(lookup("reg.example"), None);
        assert_eq!(lookup("unknown.example"), None);
    }

    #[test]
    fn missing_config_is_anonymous_and_bad_config_is_an_error() {
        let empty = tempfile::tempdir().unwrap();
        let source = CredentialSource::DockerConfigDir(empty.path().to_path_buf());
        assert_eq!(source.lookup("reg.example", T).unwrap(), None);
        let bad = write_config("{not json");
        let source = CredentialSource::DockerConfigDir(bad.path().to_path_buf());
        let err = source.lookup("reg.example", T).unwrap_err().to_string();
        assert!(err.contains("reg.example"), "{err}");
        let fifo = CredentialSource::AuthFile("/dev/zero".into());
        let err = fifo.lookup("reg.example", T).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    /// Puts a helper script on PATH. Each nextest test runs in its own process, so
    /// changing PATH here is contained.
    fn install_helper(dir: &Path, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let helper = bin.join(format!("docker-credential-{name}"));
        std::fs::write(&helper, script).unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        std::env::set_var("PATH", path);
    }

    #[test]
    fn credential_helper_is_run_and_failures_hide_its_output() {
        let dir = write_config(r#"{"credHelpers":{"reg.example":"relaunchtest"}}"#);
        install_helper(
            dir.path(),
            "relaunchtest",
            "#!/bin/sh\nread server\nif [ \"$server\" = reg.example ]; then\n\
             echo '{\"ServerURL\":\"reg.example\",\"Username\":\"hu\",\"Secret\":\"hs\"}'\n\
             else echo 'secret-leak'; exit 1; fi\n",
        );
        let source = CredentialSource::DockerConfigDir(dir.path().to_path_buf());
        assert_eq!(source.lookup("reg.example", T).unwrap(), basic("hu", "hs"));
        let store = write_config(r#"{"credsStore":"relaunchtest"}"#);
        let source = CredentialSource::DockerConfigDir(store.path().to_path_buf());
        let err = source
            .lookup("elsewhere.example", T)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("docker-credential-relaunchtest failed"),
            "{err}"
        );
        assert!(!err.contains("secret-leak"), "{err}");
    }

    /// Docker Desktop's default `credsStore` answers "not found" for registries the user
    /// never logged into: that is anonymous, as with docker/cli. A helper that is not
    /// installed is an error naming it.
    #[test]
    fn helper_not_found_answer_means_anonymous() {
        let dir = write_config(r#"{"credsStore":"relaunchdesktop","auths":{"reg.example":{}}}"#);
        install_helper(
            dir.path(),
            "relaunchdesktop",
            &format!("#!/bin/sh\nread server\necho '{NOT_FOUND}'\nexit 1\n"),
        );
        let source = CredentialSource::DockerConfigDir(dir.path().to_path_buf());
        assert_eq!(source.lookup("reg.example", T).unwrap(), None);
        let missing = write_config(r#"{"credsStore":"relaunch-not-installed"}"#);
        let source = CredentialSource::DockerConfigDir(missing.path().to_path_buf());
        let err = source.lookup("reg.example", T).unwrap_err().to_string();
        assert!(
            err.contains("docker-credential-relaunch-not-installed is not installed"),
            "{err}"
        );
    }

    #[test]
    fn a_helper_that_never_answers_is_killed_at_its_timeout() {
        let dir = write_config(r#"{"credsStore":"relaunchsleepy"}"#);
        relaunch_testkit::sleeping_credential_helper(
            &dir.path().join("bin"),
            "relaunchsleepy",
            600,
        );
        install_helper(dir.path(), "unused", "#!/bin/sh\n");
        let source = CredentialSource::DockerConfigDir(dir.path().to_path_buf());
        let started = Instant::now();
        let err = source
            .lookup("reg.example", Duration::from_millis(500))
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(5), "{err}");
        assert!(err.contains("did not answer within 500ms"), "{err}");
    }

    #[test]
    fn cnb_registry_auth_headers() {
        let json = r#"{"reg.example:5000":"Basic dXNlcjpwYXNz","index.docker.io":"Bearer hub-tok","bad.example":"Digest x"}"#;
        let source = CredentialSource::AuthHeaders(json.into());
        assert_eq!(
            source.lookup("reg.example:5000", T).unwrap(),
            basic("user", "pass")
        );
        assert_eq!(
            source.lookup(DOCKER_HUB_REGISTRY, T).unwrap(),
            Some(Credential::RegistryToken("hub-tok".into()))
        );
        assert_eq!(source.lookup("reg.example", T).unwrap(), None);
        let err = source.lookup("bad.example", T).unwrap_err().to_string();
        assert!(err.contains("CNB_REGISTRY_AUTH"), "{err}");
        let broken = CredentialSource::AuthHeaders("{".into());
        assert!(broken.lookup("reg.example", T).is_err());
    }

    /// The first source with an entry for the registry wins; the others are still
    /// consulted for registries it lacks.
    #[test]
    fn chained_sources_in_order() {
        let docker =
            write_config(r#"{"auths":{"a.example":{"username":"docker","password":"d"}}}"#);
        let containers = tempfile::tempdir().unwrap();
        let auth_json = containers.path().join("auth.json");
        std::fs::write(
            &auth_json,
            r#"{"auths":{"a.example":{"username":"podman","password":"p"},"b.example":{"username":"podman","password":"p"}}}"#,
        )
        .unwrap();
        let given = BTreeMap::from([(
            "c.example".to_string(),
            Credential::RegistryToken("embedded".into()),
        )]);
        let source = CredentialSource::Chain(vec![
            CredentialSource::Given(given),
            CredentialSource::AuthHeaders(r#"{"b.example":"Basic Y25iOmM="}"#.into()),
            CredentialSource::DockerConfigDir(docker.path().into()),
            CredentialSource::AuthFile(auth_json),
        ]);
        assert_eq!(source.lookup("a.example", T).unwrap(), basic("docker", "d"));
        assert_eq!(source.lookup("b.example", T).unwrap(), basic("cnb", "c"));
        assert_eq!(
            source.lookup("c.example", T).unwrap(),
            Some(Credential::RegistryToken("embedded".into()))
        );
        assert_eq!(source.lookup("d.example", T).unwrap(), None);
    }

    #[test]
    fn environment_chain_reads_the_documented_variables() {
        std::env::set_var("CNB_REGISTRY_AUTH", "{}");
        std::env::set_var("DOCKER_CONFIG", "/cfg");
        std::env::set_var("REGISTRY_AUTH_FILE", "/auth.json");
        std::env::set_var("XDG_RUNTIME_DIR", "/run/user/7");
        let chain = format!("{:?}", CredentialSource::from_environment());
        assert_eq!(
            chain,
            r#"[AuthHeaders("{}"), DockerConfigDir("/cfg"), AuthFile("/auth.json"), AuthFile("/run/user/7/containers/auth.json")]"#
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let basic = Credential::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{basic:?}").contains("hunter2"));
        let token = Credential::IdentityToken("tok-123".into());
        assert!(!format!("{token:?}").contains("tok-123"));
        let token = Credential::RegistryToken("tok-456".into());
        assert!(!format!("{token:?}").contains("tok-456"));
    }
}
