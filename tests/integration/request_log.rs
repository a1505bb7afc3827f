//! What the fault proxy (upstream.rs) forwarded, request by request: each connection's bytes
//! are read as HTTP/1.1 as they pass (heads, then bodies by `Content-Length` or chunked
//! framing), and each request is counted by method and path, with whether the upstream
//! answered it 2xx. The migration test counts upstream PUTs with it, so "uploaded twice" is
//! measured on the wire, not taken from either side's own records.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// The requests of one method and path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Forwarded to the upstream.
    pub sent: usize,
    /// Answered 2xx by the upstream (counted when the answer's head passes, even if the
    /// client went away before it could read it).
    pub ok: usize,
}

/// Every request the proxy forwarded, by (method, path without the query).
#[derive(Default)]
pub struct RequestLog {
    counts: Mutex<HashMap<(String, String), Counts>>,
}

impl RequestLog {
    pub fn get(&self, method: &str, path: &str) -> Counts {
        self.lock()
            .get(&(method.to_owned(), path.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// A copy of every count.
    pub fn all(&self) -> HashMap<(String, String), Counts> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Counts>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self, request: &(String, String), ok: bool) {
        let mut counts = self.lock();
        let c = counts.entry(request.clone()).or_default();
        if ok {
            c.ok += 1;
        } else {
            c.sent += 1;
        }
    }
}

/// The two scanners of one connection: requests go up, answers come down in the same order.
pub fn connection(log: &Arc<RequestLog>) -> (Scanner, Scanner) {
    let waiting = Arc::new(Mutex::new(VecDeque::new()));
    let up = Scanner::new(Side::Request, Arc::clone(log), Arc::clone(&waiting));
    let down = Scanner::new(Side::Response, Arc::clone(log), waiting);
    (up, down)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    /// This many body bytes to pass.
    Fixed(u64),
    ChunkSize,
    /// This many bytes of chunk data, with its CRLF.
    ChunkData(u64),
    Trailer,
    /// A response framed by the connection's end.
    UntilClose,
    /// Something unparsable: stop reading this connection.
    Lost,
}

/// A head longer than this is not HTTP the tests send; the scanner gives up on the connection.
const MAX_LINE: usize = 64 * 1024;

/// One direction of one connection, fed the bytes as they pass.
pub struct Scanner {
    side: Side,
    log: Arc<RequestLog>,
    /// Requests sent and not answered yet, oldest first (shared by the two directions).
    waiting: Arc<Mutex<VecDeque<(String, String)>>>,
    state: State,
    buf: Vec<u8>,
}

impl Scanner {
    fn new(
        side: Side,
        log: Arc<RequestLog>,
        waiting: Arc<Mutex<VecDeque<(String, String)>>>,
    ) -> Self {
        Self {
            side,
            log,
            waiting,
            state: State::Head,
            buf: Vec::new(),
        }
    }

    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match self.state {
                State::Lost | State::UntilClose => return,
                State::Fixed(n) | State::ChunkData(n) => {
                    let take = n.min(data.len() as u64);
                    data = &data[take as usize..];
                    let left = n - take;
                    self.state = match (self.state, left) {
                        (State::Fixed(_), 0) => State::Head,
                        (State::Fixed(_), l) => State::Fixed(l),
                        (_, 0) => State::ChunkSize,
                        (_, l) => State::ChunkData(l),
                    };
                }
                State::Head | State::ChunkSize | State::Trailer => {
                    let end = if self.state == State::Head {
                        b"\r\n\r\n".as_slice()
                    } else {
                        b"\r\n".as_slice()
                    };
                    // Search from a little before the new bytes: the end may straddle two reads.
                    let from = self.buf.len().saturating_sub(end.len() - 1);
                    self.buf.extend_from_slice(data);
                    let Some(at) = self.buf[from..]
                        .windows(end.len())
                        .position(|w| w == end)
                        .map(|p| from + p + end.len())
                    else {
                        if self.buf.len() > MAX_LINE {
                            self.state = State::Lost;
                        }
                        return;
                    };
                    // What follows the line or head is fed again.
                    let rest = self.buf.split_off(at);
                    let line = std::mem::take(&mut self.buf);
                    self.state = self.after(&line);
                    self.feed_owned(rest);
                    return;
                }
            }
        }
    }

    fn feed_owned(&mut self, rest: Vec<u8>) {
        if !rest.is_empty() {
            self.feed(&rest);
        }
    }

    /// The state after a complete head or line.
    fn after(&mut self, line: &[u8]) -> State {
        match self.state {
            State::ChunkSize => {
                let text = String::from_utf8_lossy(line);
                let size = text.trim().split(';').next().unwrap_or("");
                match u64::from_str_radix(size.trim(), 16) {
                    Ok(0) => State::Trailer,
                    Ok(n) => State::ChunkData(n + 2),
                    Err(_) => State::Lost,
                }
            }
            State::Trailer if line == b"\r\n" => State::Head,
            State::Trailer => State::Trailer,
            _ => self.head(line),
        }
    }

    fn head(&mut self, head: &[u8]) -> State {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split("\r\n");
        let first = lines.next().unwrap_or("");
        let mut length = None;
        let mut chunked = false;
        for l in lines {
            let Some((name, value)) = l.split_once(':') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<u64>().ok();
            } else if name.trim().eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            }
        }
        let body = |no_length: State| match (chunked, length) {
            (true, _) => State::ChunkSize,
            (false, Some(0)) => State::Head,
            (false, Some(n)) => State::Fixed(n),
            (false, None) => no_length,
        };
        let mut parts = first.split(' ');
        match self.side {
            Side::Request => {
                let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
                    return State::Lost;
                };
                let path = target.split('?').next().unwrap_or(target);
                let request = (method.to_owned(), path.to_owned());
                self.log.bump(&request, false);
                self.lock_waiting().push_back(request);
                body(State::Head)
            }
            Side::Response => {
                let Some(status) = parts.nth(1).and_then(|s| s.parse::<u16>().ok()) else {
                    return State::Lost;
                };
                if status < 200 {
                    // 100 Continue and the like: the final answer follows.
                    return State::Head;
                }
                let Some(request) = self.lock_waiting().pop_front() else {
                    return State::Lost;
                };
                if (200..300).contains(&status) {
                    self.log.bump(&request, true);
                }
                if request.0 == "HEAD" || status == 204 || status == 304 {
                    State::Head
                } else {
                    body(State::UntilClose)
                }
            }
        }
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, String)>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[test]
fn requests_and_answers_are_paired_across_bodies_reads_and_framings() {
    let log = Arc::new(RequestLog::default());
    let (mut up, mut down) = connection(&log);
    let requests = b"PUT /b/k1?x-id=PutObject HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloHEAD /b/k1 HTTP/1.1\r\n\r\nPUT /b/k2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /b/k3 HTTP/1.1\r\n\r\n";
    // Fed a byte at a time, every boundary falls inside a read somewhere.
    for b in requests.iter() {
        up.feed(std::slice::from_ref(b));
    }
    let answers = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    for piece in answers.chunks(7) {
        down.feed(piece);
    }
    let c = |m: &str, p: &str| log.get(m, p);
    assert_eq!(c("PUT", "/b/k1"), Counts { sent: 1, ok: 1 });
    assert_eq!(c("HEAD", "/b/k1"), Counts { sent: 1, ok: 1 });
    assert_eq!(c("PUT", "/b/k2"), Counts { sent: 1, ok: 0 });
    assert_eq!(c("GET", "/b/k3"), Counts { sent: 1, ok: 1 });
    assert_eq!(log.all().len(), 4);
}
