//! Fault-injecting plain-HTTP reverse proxy, deterministic per request sequence number,
//! plus hostile behaviours a test switches on with [`ProxyOptions`].

use std::collections::BTreeMap;
use std::io::{self, BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::foreign::{start_foreign, Foreign, ForeignHost, RecordedRequest};
use crate::http::{self, Head, Server};

/// Per-request fault probabilities of a [`FaultProxy`]; decisions are a pure function of
/// `seed` and the request's sequence number (0, 1, 2, ... in arrival order). The
/// probabilities must each be in `[0, 1]` and sum to at most 1.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultPlan {
    pub seed: u64,
    /// Close the connection without answering (after reading the request).
    pub drop_connection: f64,
    /// Answer 500 without forwarding.
    pub status_500: f64,
    /// Answer 429 with `Retry-After: 0` without forwarding.
    pub status_429: f64,
    /// Answer 502 without forwarding.
    pub status_502: f64,
    /// Forward, then send the full headers but only half of a non-empty body and close.
    /// Responses without a body are forwarded intact and not counted.
    pub truncate_body: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Drop,
    Status(u16, &'static str),
    Truncate,
}

impl FaultPlan {
    fn validate(&self) {
        let probs = [
            self.drop_connection,
            self.status_500,
            self.status_429,
            self.status_502,
            self.truncate_body,
        ];
        assert!(
            probs.iter().all(|p| (0.0..=1.0).contains(p))
                && probs.iter().sum::<f64>() <= 1.0 + 1e-9,
            "testkit: FaultPlan probabilities must be in [0,1] and sum to at most 1: {self:?}"
        );
    }

    fn decide(&self, request_index: u64) -> Option<Fault> {
        let x = uniform(self.seed, request_index);
        let choices = [
            (self.drop_connection, Fault::Drop),
            (self.status_500, Fault::Status(500, "Internal Server Error")),
            (self.status_429, Fault::Status(429, "Too Many Requests")),
            (self.status_502, Fault::Status(502, "Bad Gateway")),
            (self.truncate_body, Fault::Truncate),
        ];
        let mut cumulative = 0.0;
        for (p, fault) in choices {
            cumulative += p;
            if x < cumulative {
                return Some(fault);
            }
        }
        None
    }
}

/// SplitMix64 of (seed, index) mapped to `[0, 1)`.
fn uniform(seed: u64, index: u64) -> f64 {
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Hostile behaviours of a [`FaultProxy`] beyond its [`FaultPlan`].
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// Rewrite the `Location` of upload answers (`/blobs/uploads/`) to a second loopback
    /// port — another host:port — that records every request it receives
    /// ([`FaultProxy::foreign_requests`]) and then behaves as said.
    pub foreign_uploads: Option<ForeignHost>,
    /// Send the body of every GET answer at one byte per second.
    pub trickle_bodies: bool,
    /// Answer every manifest GET with 200 and a JSON body of this many bytes, without
    /// forwarding (an oversized manifest).
    pub oversized_manifest: Option<u64>,
}

struct State {
    upstream: String,
    own_host: String,
    plan: FaultPlan,
    options: ProxyOptions,
    next_request: AtomicU64,
    methods: Mutex<BTreeMap<String, u64>>,
    faults: AtomicU64,
    foreign: Option<Foreign>,
}

/// A plain-HTTP reverse proxy on 127.0.0.1 that injects faults per its [`FaultPlan`].
/// Both sides are forced to `Connection: close`. Dropping it stops accepting connections.
pub struct FaultProxy {
    state: Arc<State>,
    _server: Server,
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream` (`host:port`, e.g. [`Registry::host`](crate::Registry::host)).
    pub fn start(upstream: &str, plan: FaultPlan) -> FaultProxy {
        FaultProxy::start_with(upstream, plan, ProxyOptions::default())
    }

    /// Like [`FaultProxy::start`], with the hostile behaviours `options` switches on.
    pub fn start_with(upstream: &str, plan: FaultPlan, options: ProxyOptions) -> FaultProxy {
        plan.validate();
        // The server must exist before the state knows its own address; a slot bridges that.
        let slot: Arc<std::sync::OnceLock<Arc<State>>> = Arc::new(std::sync::OnceLock::new());
        let handler_slot = Arc::clone(&slot);
        let server = Server::spawn(
            "fault-proxy",
            Arc::new(move |conn| {
                if let Some(state) = handler_slot.get() {
                    // A broken connection only affects that client, which is the point.
                    let _ = handle(state, conn);
                }
            }),
        );
        let foreign = options
            .foreign_uploads
            .map(|mode| start_foreign(upstream, mode));
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            own_host: server.addr().to_string(),
            plan,
            options,
            next_request: AtomicU64::new(0),
            methods: Mutex::new(BTreeMap::new()),
            faults: AtomicU64::new(0),
            foreign,
        });
        let _ = slot.set(Arc::clone(&state));
        FaultProxy {
            state,
            _server: server,
        }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        self.state.own_host.clone()
    }

    /// Number of faults injected so far.
    pub fn faults_injected(&self) -> u64 {
        self.state.faults.load(Ordering::SeqCst)
    }

    /// Number of requests received so far (faulted or not).
    pub fn requests_seen(&self) -> u64 {
        self.state.next_request.load(Ordering::SeqCst)
    }

    /// Requests received so far by HTTP method.
    pub fn requests_by_method(&self) -> BTreeMap<String, u64> {
        self.state
            .methods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `127.0.0.1:PORT` of the foreign upload host, if [`ProxyOptions::foreign_uploads`].
    pub fn foreign_host(&self) -> Option<String> {
        self.state.foreign.as_ref().map(|f| f.host.clone())
    }

    /// Requests the foreign upload host has received so far, in order.
    pub fn foreign_requests(&self) -> Vec<RecordedRequest> {
        self.state
            .foreign
            .as_ref()
            .map(|f| f.requests.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default()
    }
}

/// Bounds how long a stalled peer can pin a connection thread.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

fn handle(state: &State, client: TcpStream) -> io::Result<()> {
    client.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut client_in = BufReader::new(client.try_clone()?);
    let mut client_out = client;
    let Some(mut request) = Head::read(&mut client_in)? else {
        return Ok(());
    };
    let fault = state
        .plan
        .decide(state.next_request.fetch_add(1, Ordering::SeqCst));
    answer_expect_continue(&mut request, &mut client_out)?;
    let request_body = request.request_body();
    let method = method_of(&request);
    *state
        .methods
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(method.clone())
        .or_default() += 1;
    if let Some(size) = state.options.oversized_manifest {
        if method == "GET" && request.start_line.contains("/manifests/") {
            http::copy_body(&mut client_in, &mut io::sink(), request_body)?;
            return send_oversized_manifest(&mut client_out, size);
        }
    }

    match fault {
        Some(Fault::Drop) => {
            // Read the whole request first so the client sees a clean EOF, not a reset.
            http::copy_body(&mut client_in, &mut io::sink(), request_body)?;
            state.faults.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        Some(Fault::Status(code, reason)) => {
            http::copy_body(&mut client_in, &mut io::sink(), request_body)?;
            state.faults.fetch_add(1, Ordering::SeqCst);
            let body = format!(
                r#"{{"errors":[{{"code":"UNKNOWN","message":"testkit injected {code}"}}]}}"#
            );
            return http::respond(
                &mut client_out,
                code,
                reason,
                &[("Content-Type", "application/json"), ("Retry-After", "0")],
                body.as_bytes(),
            );
        }
        _ => {}
    }

    let (mut response, mut upstream_in) =
        forward_request(&state.upstream, &mut request, &mut client_in, request_body)?;
    rewrite_upstream_urls(&mut response, &state.upstream, &state.own_host);
    if let Some(foreign) = &state.foreign {
        redirect_upload_location(&mut response, &foreign.host);
    }
    response.set("Connection", "close");
    let response_body = response.response_body(&method);

    if fault == Some(Fault::Truncate) {
        let body = http::read_body(&mut upstream_in, response_body)?;
        if !body.is_empty() {
            state.faults.fetch_add(1, Ordering::SeqCst);
        }
        response.write_to(&mut client_out)?;
        client_out.write_all(&body[..body.len() / 2])?;
        return client_out.flush();
    }
    response.write_to(&mut client_out)?;
    client_out.flush()?;
    if state.options.trickle_bodies && method == "GET" {
        return http::copy_body(
            &mut upstream_in,
            &mut Trickle(&mut client_out),
            response_body,
        );
    }
    http::copy_body(&mut upstream_in, &mut client_out, response_body)?;
    client_out.flush()
}

pub(crate) fn method_of(request: &Head) -> String {
    let method = request.start_line.split_whitespace().next();
    method.unwrap_or("").to_string()
}

pub(crate) fn answer_expect_continue(
    request: &mut Head,
    client_out: &mut TcpStream,
) -> io::Result<()> {
    if request
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        // Answer the expectation here; upstream then gets the body without waiting.
        client_out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        request.remove("expect");
    }
    Ok(())
}

/// Sends `request` (and its body from `client_in`) to `upstream`; returns the answer's
/// head and the reader positioned at its body.
pub(crate) fn forward_request(
    upstream: &str,
    request: &mut Head,
    client_in: &mut BufReader<TcpStream>,
    request_body: http::BodyLen,
) -> io::Result<(Head, BufReader<TcpStream>)> {
    let upstream = TcpStream::connect(upstream)?;
    upstream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut upstream_out = BufWriter::new(upstream.try_clone()?);
    request.set("Connection", "close");
    request.write_to(&mut upstream_out)?;
    http::copy_body(client_in, &mut upstream_out, request_body)?;
    upstream_out.flush()?;
    let mut upstream_in = BufReader::new(upstream);
    let response = Head::read(&mut upstream_in)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "upstream sent nothing"))?;
    Ok((response, upstream_in))
}

/// Points an upload session's `Location` (on this proxy) at the foreign host instead.
fn redirect_upload_location(response: &mut Head, foreign_host: &str) {
    let Some(location) = response.header("location") else {
        return;
    };
    if !location.contains("/blobs/uploads/") {
        return;
    }
    let path_start = location.find("/v2/").unwrap_or(0);
    let rewritten = format!("http://{foreign_host}{}", &location[path_start..]);
    response.set("location", &rewritten);
}

/// 200 with a JSON manifest padded to `size` bytes, written in chunks until the client
/// stops reading.
fn send_oversized_manifest(out: &mut TcpStream, size: u64) -> io::Result<()> {
    let head =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","pad":""#;
    let tail = br#""}"#;
    let length = size.to_string();
    let mut response = Head {
        start_line: "HTTP/1.1 200 OK".into(),
        headers: Vec::new(),
    };
    response.set("Content-Type", "application/vnd.oci.image.manifest.v1+json");
    response.set("Content-Length", &length);
    response.set("Connection", "close");
    response.write_to(out)?;
    out.write_all(head)?;
    let mut padding = size.saturating_sub((head.len() + tail.len()) as u64);
    let chunk = vec![b' '; 64 << 10];
    while padding > 0 {
        let n = padding.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n])?;
        padding -= n as u64;
    }
    out.write_all(tail)?;
    out.flush()
}

/// A writer that passes on one byte per second.
struct Trickle<'a>(&'a mut TcpStream);

impl Write for Trickle<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.0.write_all(&buf[..1])?;
        self.0.flush()?;
        std::thread::sleep(Duration::from_secs(1));
        Ok(1)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Keeps clients on the proxy when the upstream answers with absolute URLs of its own.
pub(crate) fn rewrite_upstream_urls(response: &mut Head, upstream: &str, own_host: &str) {
    let from = format!("http://{upstream}");
    let to = format!("http://{own_host}");
    for name in ["location", "www-authenticate"] {
        if let Some(v) = response.header(name) {
            if v.contains(&from) {
                let rewritten = v.replace(&from, &to);
                response.set(name, &rewritten);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_rates_follow_the_plan() {
        let plan = FaultPlan {
            seed: 7,
            drop_connection: 0.1,
            status_500: 0.2,
            truncate_body: 0.3,
            ..FaultPlan::default()
        };
        let n = 20_000;
        let count = |want: Fault| (0..n).filter(|i| plan.decide(*i) == Some(want)).count();
        let rate = |c: usize| c as f64 / n as f64;
        assert!((rate(count(Fault::Drop)) - 0.1).abs() < 0.015);
        assert!((rate(count(Fault::Status(500, "Internal Server Error"))) - 0.2).abs() < 0.015);
        assert!((rate(count(Fault::Truncate)) - 0.3).abs() < 0.015);
        assert_eq!(count(Fault::Status(429, "Too Many Requests")), 0);
    }

    #[test]
    fn no_plan_means_no_faults() {
        let plan = FaultPlan::default();
        assert!((0..1000).all(|i| plan.decide(i).is_none()));
    }
}
