//! Registry credentials from a Docker config (`$DOCKER_CONFIG/config.json`, default
//! `~/.docker/config.json`): `auths` entries, `credHelpers` and `credsStore` helpers.

use std::fmt;
use std::path::{Path, PathBuf};

use docker_credential::{CredentialRetrievalError, DockerCredential};

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
        }
    }
}

/// Where credentials come from.
#[derive(Debug, Clone, Default)]
pub enum CredentialSource {
    /// Never send credentials.
    Anonymous,
    /// `config.json` in this directory (what `DOCKER_CONFIG` names).
    DockerConfigDir(PathBuf),
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; anonymous when absent.
    #[default]
    DockerConfigFromEnv,
}

impl CredentialSource {
    /// Credentials for `registry` (`host[:port]`); `None` means go anonymous.
    pub fn lookup(&self, registry: &str) -> Result<Option<Credential>, Error> {
        let dir = match self {
            CredentialSource::Anonymous => return Ok(None),
            CredentialSource::DockerConfigDir(dir) => Some(dir.clone()),
            CredentialSource::DockerConfigFromEnv => default_config_dir(),
        };
        match dir {
            Some(dir) => lookup_in(&dir.join("config.json"), registry),
            None => Ok(None),
        }
    }
}

fn default_config_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker")))
}

/// Docker keys Docker Hub credentials by its legacy index URL, others by `host[:port]`.
fn config_key(registry: &str) -> &str {
    if registry == DOCKER_HUB_REGISTRY {
        "https://index.docker.io/v1/"
    } else {
        registry
    }
}

fn lookup_in(config: &Path, registry: &str) -> Result<Option<Credential>, Error> {
    let file = match std::fs::File::open(config) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Unauthorized {
                registry: registry.to_string(),
                message: format!("cannot read {}: {e}", config.display()),
            })
        }
    };
    let found = docker_credential::get_credential_from_reader(
        std::io::BufReader::new(file),
        config_key(registry),
    );
    match found {
        Ok(DockerCredential::UsernamePassword(username, password)) => {
            Ok(Some(Credential::Basic { username, password }))
        }
        Ok(DockerCredential::IdentityToken(token)) => Ok(Some(Credential::IdentityToken(token))),
        Err(CredentialRetrievalError::NoCredentialConfigured) => Ok(None),
        // Helper failures carry the helper's stdout/stderr; keep only the kind of failure so
        // nothing a helper printed (possibly a secret) reaches logs.
        Err(e) => Err(Error::Unauthorized {
            registry: registry.to_string(),
            message: format!("{} ({})", describe(&e), config.display()),
        }),
    }
}

fn describe(e: &CredentialRetrievalError) -> String {
    match e {
        CredentialRetrievalError::HelperFailure { helper, .. } => {
            format!("credential helper {helper} failed")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(json: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        dir
    }

    #[test]
    fn auths_entries_by_auth_field_username_and_identity_token() {
        // "dXNlcjpwYXNz" is base64("user:pass").
        let dir = write_config(
            r#"{"auths":{
                "reg.example:5000":{"auth":"dXNlcjpwYXNz"},
                "other.example":{"username":"u","password":"p"},
                "https://index.docker.io/v1/":{"identitytoken":"refresh"}}}"#,
        );
        let source = CredentialSource::DockerConfigDir(dir.path().to_path_buf());
        assert_eq!(
            source.lookup("reg.example:5000").unwrap(),
            Some(Credential::Basic {
                username: "user".into(),
                password: "pass".into()
            })
        );
        assert_eq!(
            source.lookup("other.example").unwrap(),
            Some(Credential::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
        assert_eq!(
            source.lookup(DOCKER_HUB_REGISTRY).unwrap(),
            Some(Credential::IdentityToken("refresh".into()))
        );
        assert_eq!(source.lookup("unknown.example").unwrap(), None);
    }

    #[test]
    fn missing_config_is_anonymous_and_bad_config_is_an_error() {
        let empty = tempfile::tempdir().unwrap();
        let source = CredentialSource::DockerConfigDir(empty.path().to_path_buf());
        assert_eq!(source.lookup("reg.example").unwrap(), None);
        let bad = write_config("{not json");
        let source = CredentialSource::DockerConfigDir(bad.path().to_path_buf());
        let err = source.lookup("reg.example").unwrap_err().to_string();
        assert!(err.contains("reg.example"), "{err}");
    }

    #[test]
    fn credential_helper_is_run_and_failures_hide_its_output() {
        let dir = write_config(r#"{"credHelpers":{"reg.example":"relaunchtest"}}"#);
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let helper = bin.join("docker-credential-relaunchtest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\nif [ \"$server\" = reg.example ]; then\n\
             echo '{\"ServerURL\":\"reg.example\",\"Username\":\"hu\",\"Secret\":\"hs\"}'\n\
             else echo 'secret-leak'; exit 1; fi\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Each nextest test runs in its own process, so changing PATH here is contained.
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        std::env::set_var("PATH", path);
        let source = CredentialSource::DockerConfigDir(dir.path().to_path_buf());
        assert_eq!(
            source.lookup("reg.example").unwrap(),
            Some(Credential::Basic {
                username: "hu".into(),
                password: "hs".into()
            })
        );
        let store = write_config(r#"{"credsStore":"relaunchtest"}"#);
        let source = CredentialSource::DockerConfigDir(store.path().to_path_buf());
        let err = source.lookup("elsewhere.example").unwrap_err().to_string();
        assert!(
            err.contains("docker-credential-relaunchtest failed"),
            "{err}"
        );
        assert!(!err.contains("secret-leak"), "{err}");
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
    }
}
