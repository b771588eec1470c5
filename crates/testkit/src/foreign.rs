//! The "other host" of [`ProxyOptions::foreign_uploads`](crate::ProxyOptions): a second
//! loopback server that upload `Location`s are rewritten to. It records every request it
//! receives and then forwards it to the registry or answers with a challenge of its own.

use std::io::{self, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use crate::http::{self, Head, Server};
use crate::proxy::{
    answer_expect_continue, forward_request, method_of, rewrite_upstream_urls, IDLE_TIMEOUT,
};

/// What the second loopback server of [`ProxyOptions::foreign_uploads`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignHost {
    /// Forwards each request to the registry (as pre-signed storage would accept it).
    Forward,
    /// Answers every request 401 with a `Bearer` challenge whose realm is itself.
    Challenge,
}

/// A request as received (start line and headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The "other host" of [`ProxyOptions::foreign_uploads`].
pub(crate) struct Foreign {
    pub host: String,
    pub requests: Arc<Mutex<Vec<RecordedRequest>>>,
    _server: Server,
}

pub(crate) fn start_foreign(upstream: &str, mode: ForeignHost) -> Foreign {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&requests);
    let upstream = upstream.to_string();
    let own: Arc<std::sync::OnceLock<String>> = Arc::new(std::sync::OnceLock::new());
    let own_in_handler = Arc::clone(&own);
    let server = Server::spawn(
        "foreign-host",
        Arc::new(move |conn| {
            let own_host = own_in_handler.get().cloned().unwrap_or_default();
            let _ = handle_foreign(&upstream, &own_host, mode, &recorded, conn);
        }),
    );
    let host = server.addr().to_string();
    let _ = own.set(host.clone());
    Foreign {
        host,
        requests,
        _server: server,
    }
}

fn handle_foreign(
    upstream: &str,
    own_host: &str,
    mode: ForeignHost,
    recorded: &Mutex<Vec<RecordedRequest>>,
    client: TcpStream,
) -> io::Result<()> {
    client.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut client_in = BufReader::new(client.try_clone()?);
    let mut client_out = client;
    let Some(mut request) = Head::read(&mut client_in)? else {
        return Ok(());
    };
    recorded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(RecordedRequest {
            start_line: request.start_line.clone(),
            headers: request.headers.clone(),
        });
    answer_expect_continue(&mut request, &mut client_out)?;
    let request_body = request.request_body();
    if mode == ForeignHost::Challenge {
        http::copy_body(&mut client_in, &mut io::sink(), request_body)?;
        let challenge = format!(r#"Bearer realm="http://{own_host}/token",service="foreign""#);
        return http::respond(
            &mut client_out,
            401,
            "Unauthorized",
            &[("WWW-Authenticate", &challenge)],
            b"{}",
        );
    }
    let method = method_of(&request);
    let (mut response, mut upstream_in) =
        forward_request(upstream, &mut request, &mut client_in, request_body)?;
    rewrite_upstream_urls(&mut response, upstream, own_host);
    response.set("Connection", "close");
    let response_body = response.response_body(&method);
    response.write_to(&mut client_out)?;
    http::copy_body(&mut upstream_in, &mut client_out, response_body)?;
    client_out.flush()
}
