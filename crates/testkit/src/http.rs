//! Just enough HTTP/1.1 for the token server, the fault proxy and readiness probes.
//! Every connection is `Connection: close`, so no keep-alive bookkeeping is needed.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Start line and headers of a request or response.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
}

/// How the body following a [`Head`] is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyLen {
    Length(u64),
    Chunked,
    UntilClose,
}

impl Head {
    /// Reads a head; `Ok(None)` if the peer closed before sending anything.
    pub fn read(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
        let mut start_line = String::new();
        if reader.read_line(&mut start_line)? == 0 {
            return Ok(None);
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside HTTP headers",
                ));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad header {line:?}"))
            })?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        let start_line = start_line.trim_end_matches(['\r', '\n']).to_string();
        Ok(Some(Head {
            start_line,
            headers,
        }))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn remove(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.remove(name);
        self.headers.push((name.to_string(), value.to_string()));
    }

    /// Second word of a response start line.
    pub fn status(&self) -> u16 {
        self.start_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// Body framing of a request (no framing header means no body).
    pub fn request_body(&self) -> BodyLen {
        self.framing().unwrap_or(BodyLen::Length(0))
    }

    /// Body framing of a response to a request with `method`.
    pub fn response_body(&self, method: &str) -> BodyLen {
        let status = self.status();
        if method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304 {
            return BodyLen::Length(0);
        }
        self.framing().unwrap_or(BodyLen::UntilClose)
    }

    fn framing(&self) -> Option<BodyLen> {
        if self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            return Some(BodyLen::Chunked);
        }
        self.header("content-length")
            .and_then(|v| v.parse().ok())
            .map(BodyLen::Length)
    }

    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut out = format!("{}\r\n", self.start_line);
        for (n, v) in &self.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str("\r\n");
        w.write_all(out.as_bytes())
    }
}

/// Copies one body with the given framing from `r` to `w`, framing bytes included.
pub(crate) fn copy_body(r: &mut impl BufRead, w: &mut impl Write, len: BodyLen) -> io::Result<()> {
    match len {
        BodyLen::Length(n) => {
            let copied = io::copy(&mut r.take(n), w)?;
            if copied < n {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "body shorter than Content-Length",
                ));
            }
        }
        BodyLen::UntilClose => {
            io::copy(r, w)?;
        }
        BodyLen::Chunked => loop {
            let mut size_line = String::new();
            r.read_line(&mut size_line)?;
            w.write_all(size_line.as_bytes())?;
            let hex = size_line.trim().split(';').next().unwrap_or("");
            let size = u64::from_str_radix(hex, 16).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad chunk {size_line:?}"),
                )
            })?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    w.write_all(line.as_bytes())?;
                    if line.trim().is_empty() {
                        return Ok(());
                    }
                }
            }
            // Chunk data plus its CRLF.
            copy_body(r, w, BodyLen::Length(size + 2))?;
        },
    }
    Ok(())
}

/// Reads a whole body into memory (de-chunking is not needed by callers: they only
/// read small form bodies and fully framed responses).
pub(crate) fn read_body(r: &mut impl BufRead, len: BodyLen) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    copy_body(r, &mut body, len)?;
    Ok(body)
}

/// Writes a complete `Connection: close` response.
pub(crate) fn respond(
    w: &mut impl Write,
    status: u16,
    reason: &str,
    extra_headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = Head {
        start_line: format!("HTTP/1.1 {status} {reason}"),
        headers: vec![
            ("Content-Length".into(), body.len().to_string()),
            ("Connection".into(), "close".into()),
        ],
    };
    for (n, v) in extra_headers {
        head.set(n, v);
    }
    head.write_to(w)?;
    w.write_all(body)?;
    w.flush()
}

/// `GET path` against `addr`; returns the response head (body discarded).
pub(crate) fn get_head(addr: &str, path: &str) -> io::Result<Head> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    Head::read(&mut BufReader::new(stream))?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no response"))
}

/// Decodes `application/x-www-form-urlencoded` text (query strings and form bodies).
pub(crate) fn form_decode(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A loopback listener that hands each connection to `handler` on its own thread.
/// Dropping it stops accepting; in-flight connections finish on their own.
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn spawn(name: &str, handler: Arc<dyn Fn(TcpStream) + Send + Sync>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("testkit: cannot bind a loopback port for {name}: {e}"));
        let addr = listener
            .local_addr()
            .expect("bound listener has an address");
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let accept_thread = std::thread::Builder::new()
            .name(format!("testkit-{name}"))
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop_flag.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let handler = Arc::clone(&handler);
                    std::thread::spawn(move || handler(conn));
                }
            })
            .expect("spawn accept thread");
        Server {
            addr,
            stop,
            accept_thread: Some(accept_thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_handles_escapes_and_repeats() {
        assert_eq!(
            form_decode("scope=repository%3Aa%2Fb%3Apull%2Cpush&scope=x+y&bad=%zz&end=%4"),
            [
                ("scope".into(), "repository:a/b:pull,push".into()),
                ("scope".into(), "x y".into()),
                ("bad".into(), "%zz".into()),
                ("end".into(), "%4".into()),
            ]
        );
    }

    #[test]
    fn chunked_bodies_are_copied_exactly_to_their_end() {
        let wire = b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let mut reader = &wire[..];
        let mut out = Vec::new();
        copy_body(&mut reader, &mut out, BodyLen::Chunked).unwrap();
        assert_eq!(out, &wire[..wire.len() - 4]);
        assert_eq!(reader, b"NEXT");
    }
}
