//! A real CNCF distribution registry (`/usr/bin/docker-registry`, Debian package
//! docker-registry) per test, on a free loopback port with private temp storage.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use tempfile::TempDir;

use crate::certs::{self, KeyPair};
use crate::http;
use crate::token::{self, Account, TokenServer};
use crate::{Auth, TokenRequest};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const USER: &str = "relaunch";
const PASSWORD: &str = "relaunch-test-password";
const READER_USER: &str = "reader";
const READER_PASSWORD: &str = "reader-test-password";
/// Response header carrying a per-instance nonce: proves the probe reached *our* process
/// and not another test's registry that grabbed the same port first.
const INSTANCE_HEADER: &str = "X-Relaunch-Testkit-Instance";
const START_ATTEMPTS: usize = 5;
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `docker-registry` process on 127.0.0.1 with its own temp storage.
/// Dropping it kills the process (and token server) and removes the storage.
pub struct Registry {
    child: Child,
    host: String,
    auth: Auth,
    token_server: Option<TokenServer>,
    /// CA that signed the server certificate, when serving HTTPS.
    ca_cert: Option<PathBuf>,
    /// stdout/stderr of the running process, access log included.
    log: PathBuf,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry in the given auth mode, serving plain HTTP. Panics with a clear
    /// message if it cannot.
    pub fn start(auth: Auth) -> Registry {
        Registry::launch(auth, false)
    }

    /// Like [`Registry::start`] but serving HTTPS with a server certificate for
    /// `127.0.0.1` / `localhost` signed by a fresh CA (see [`Registry::ca_cert_path`]).
    pub fn start_tls(auth: Auth) -> Registry {
        Registry::launch(auth, true)
    }

    fn launch(auth: Auth, tls: bool) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "testkit: {REGISTRY_BIN} not found; install the Debian package docker-registry (scripts/deps.sh)"
        );
        let dir = tempfile::Builder::new()
            .prefix("relaunch-registry-")
            .tempdir()
            .expect("testkit: cannot create a temp dir for the registry");
        let token_server = (auth == Auth::Token).then(|| start_token_server(dir.path()));
        let auth_config = match (&token_server, auth) {
            (Some(ts), _) => json!({"token": {
                "realm": ts.realm(),
                "service": token::SERVICE,
                "issuer": token::ISSUER,
                "rootcertbundle": token::cert_path(dir.path()),
            }}),
            (None, Auth::Basic) => {
                let path = dir.path().join("htpasswd");
                write_htpasswd(&path);
                json!({"htpasswd": {"realm": "relaunch-testkit", "path": path}})
            }
            (None, _) => json!({}),
        };
        let tls = tls.then(|| certs::loopback_server(dir.path()));

        let mut last_log = String::new();
        for attempt in 0..START_ATTEMPTS {
            let port = free_port();
            let host = format!("127.0.0.1:{port}");
            let nonce = format!("{}-{attempt}-{port}", std::process::id());
            let config_path = dir.path().join("registry.json");
            let server_cert = tls.as_ref().map(|(_, server)| server);
            write_config(
                &config_path,
                dir.path(),
                &host,
                &nonce,
                &auth_config,
                server_cert,
            );
            let log_path = dir.path().join(format!("registry-{attempt}.log"));
            let mut child = spawn(&config_path, &log_path);
            let ca_cert = tls.as_ref().map(|(ca, _)| ca.cert.clone());
            match wait_ready(&mut child, &host, &nonce, ca_cert.as_deref()) {
                Ok(()) => {
                    return Registry {
                        child,
                        host,
                        auth,
                        token_server,
                        ca_cert,
                        log: log_path,
                        dir,
                    };
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    // Only a lost race for the port is worth another try.
                    if !last_log.contains("address already in use") {
                        panic!(
                            "testkit: docker-registry did not start ({why}); its log:\n{last_log}"
                        );
                    }
                }
            }
        }
        panic!("testkit: docker-registry could not bind a free port in {START_ATTEMPTS} attempts; last log:\n{last_log}")
    }

    /// The access log so far (one line per request, `"METHOD /v2/… HTTP/1.1" STATUS …`):
    /// what the registry itself saw, for audits such as "no blob was uploaded twice".
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Digests of the blobs uploaded so far (completed `PUT …/blobs/uploads/…?digest=`),
    /// one entry per upload, in log order.
    pub fn blob_uploads(&self) -> Vec<String> {
        self.access_log()
            .lines()
            .filter(|l| l.contains("\"PUT /v2/") && l.contains("/blobs/uploads/"))
            .filter_map(|l| {
                let digest = l.split("digest=").nth(1)?;
                let end = digest.find(['&', ' ']).unwrap_or(digest.len());
                Some(digest[..end].replace("%3A", ":").replace("%3a", ":"))
            })
            .collect()
    }

    /// `127.0.0.1:PORT` of the registry.
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// PEM certificate of the CA to trust for a registry started with
    /// [`Registry::start_tls`]; `None` for a plain-HTTP registry.
    pub fn ca_cert_path(&self) -> Option<PathBuf> {
        self.ca_cert.clone()
    }

    /// The auth mode this registry was started with.
    pub fn auth(&self) -> Auth {
        self.auth
    }

    /// `(user, password)` accepted in Basic and Token mode; `None` for Anonymous.
    pub fn credentials(&self) -> Option<(String, String)> {
        (self.auth != Auth::Anonymous).then(|| (USER.to_string(), PASSWORD.to_string()))
    }

    /// Token mode only: a second valid account whose tokens only ever grant `pull`, so
    /// pushes with it are refused by the registry (insufficient scope).
    pub fn read_only_credentials(&self) -> Option<(String, String)> {
        (self.auth == Auth::Token).then(|| (READER_USER.to_string(), READER_PASSWORD.to_string()))
    }

    /// A directory holding a docker `config.json` with this registry's credentials
    /// (`{"auths":{}}` for Anonymous); usable as `DOCKER_CONFIG` or `--authfile DIR/config.json`.
    pub fn docker_config_dir(&self) -> PathBuf {
        self.docker_config_dir_for(&self.host)
    }

    /// Like [`Registry::docker_config_dir`] but with the credentials filed under `host`,
    /// e.g. a [`FaultProxy`](crate::FaultProxy) in front of this registry.
    ///
    /// The file is written on the first call for a host and never rewritten: the content
    /// is fixed, and rewriting in place (truncate, then write) would let a concurrent
    /// reader see an empty or missing file (skopeo then pulls anonymously and the token
    /// registry answers `denied`). It is written to a temp file and renamed into place.
    pub fn docker_config_dir_for(&self, host: &str) -> PathBuf {
        let dir = self
            .dir
            .path()
            .join(format!("docker-{}", host.replace(':', "_")));
        let path = dir.join("config.json");
        if path.exists() {
            return dir;
        }
        let auths = match self.credentials() {
            Some((u, p)) => json!({ host: {"auth": STANDARD.encode(format!("{u}:{p}"))} }),
            None => json!({}),
        };
        std::fs::create_dir_all(&dir).expect("testkit: create docker config dir");
        let tmp = dir.join(format!(".config.json.{:?}", std::thread::current().id()));
        std::fs::write(&tmp, json!({ "auths": auths }).to_string())
            .expect("testkit: write docker config.json");
        std::fs::rename(&tmp, &path).expect("testkit: move docker config.json into place");
        dir
    }

    /// Requests the token server has received so far (always empty unless [`Auth::Token`]).
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.token_server
            .as_ref()
            .map(TokenServer::requests)
            .unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT/token` in Token mode.
    pub fn token_realm(&self) -> Option<String> {
        self.token_server.as_ref().map(TokenServer::realm)
    }

    /// Service name the registry expects in tokens (the `service` of its challenge).
    pub fn token_service(&self) -> &'static str {
        token::SERVICE
    }

    /// Root of the filesystem storage driver (e.g. to corrupt a blob on purpose).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_token_server(dir: &Path) -> TokenServer {
    TokenServer::start(
        dir,
        vec![
            Account {
                user: USER.into(),
                password: PASSWORD.into(),
                allowed_actions: None,
            },
            Account {
                user: READER_USER.into(),
                password: READER_PASSWORD.into(),
                allowed_actions: Some(vec!["pull".into()]),
            },
        ],
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("testkit: cannot bind a loopback port")
}

fn write_htpasswd(path: &Path) {
    let out = Command::new("htpasswd")
        .args(["-Bbn", USER, PASSWORD])
        .output()
        .unwrap_or_else(|e| {
            panic!("testkit: cannot run htpasswd (Debian package apache2-utils): {e}")
        });
    assert!(
        out.status.success(),
        "testkit: htpasswd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(path, &out.stdout).expect("testkit: write htpasswd file");
}

/// JSON is valid YAML, so the config is built with serde_json and needs no quoting rules.
fn write_config(
    path: &Path,
    dir: &Path,
    host: &str,
    nonce: &str,
    auth: &serde_json::Value,
    tls: Option<&KeyPair>,
) {
    let mut config = json!({
        "version": "0.1",
        "log": {"level": "warn", "accesslog": {"disabled": false}},
        "storage": {
            "filesystem": {"rootdirectory": dir.join("storage")},
            "delete": {"enabled": true},
            "maintenance": {"uploadpurging": {"enabled": false}},
        },
        // No `debug` section: no debug listener, so only one port is needed.
        "http": {
            "addr": host,
            "secret": "relaunch-testkit",
            "headers": { INSTANCE_HEADER: [nonce] },
        },
    });
    if auth.as_object().is_some_and(|o| !o.is_empty()) {
        config["auth"] = auth.clone();
    }
    if let Some(pair) = tls {
        config["http"]["tls"] = json!({"certificate": pair.cert, "key": pair.key});
    }
    std::fs::write(path, config.to_string()).expect("testkit: write registry config");
}

fn spawn(config: &Path, log: &Path) -> Child {
    let log_file = std::fs::File::create(log).expect("testkit: create registry log");
    let log_err = log_file.try_clone().expect("testkit: clone log handle");
    Command::new(REGISTRY_BIN)
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .unwrap_or_else(|e| panic!("testkit: cannot spawn {REGISTRY_BIN}: {e}"))
}

/// Polls `GET /v2/` until this instance answers 200 or 401 (over HTTPS trusting `ca`,
/// when given).
fn wait_ready(child: &mut Child, host: &str, nonce: &str, ca: Option<&Path>) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let https = ca.map(https_agent);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("process exited with {status}"));
        }
        let answer = match &https {
            Some(agent) => https_status(agent, host, nonce),
            None => http::get_head(host, "/v2/")
                .ok()
                .filter(|head| head.header(INSTANCE_HEADER) == Some(nonce))
                .map(|head| head.status()),
        };
        if matches!(answer, Some(200 | 401)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let scheme = if https.is_some() { "https" } else { "http" };
            return Err(format!(
                "no answer on {scheme}://{host}/v2/ within {READY_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A client trusting only the CA at `ca`: the readiness probe of a TLS registry also
/// proves its certificate chain verifies.
fn https_agent(ca: &Path) -> ureq::Agent {
    let pem = std::fs::read(ca).unwrap_or_else(|e| panic!("testkit: read {}: {e}", ca.display()));
    let cert = ureq::tls::Certificate::from_pem(&pem)
        .unwrap_or_else(|e| panic!("testkit: {} is not a PEM certificate: {e}", ca.display()));
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent()
}

/// Status of `GET https://host/v2/` if this instance (its nonce header) answered.
fn https_status(agent: &ureq::Agent, host: &str, nonce: &str) -> Option<u16> {
    let response = agent.get(format!("https://{host}/v2/")).call().ok()?;
    let ours = response
        .headers()
        .get(INSTANCE_HEADER)
        .is_some_and(|v| v.as_bytes() == nonce.as_bytes());
    ours.then(|| response.status().as_u16())
}
