//! A loopback HTTP proxy in front of moto that injects faults on chosen operations: throttling
//! (400 ThrottlingException and bare 429), 500s, hangs, AccessDenied, or a canned answer; and
//! keeps the bodies of the requests it saw, for tests of what a request carried.
//! One request per connection (`Connection: close` both ways) keeps it small and exact.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
pub enum Fault {
    /// 400 with the service's throttling error code.
    Throttle,
    /// A bare 429 Too Many Requests.
    TooManyRequests,
    /// 500 InternalFailure.
    ServerError,
    /// Never answers: the client's attempt timeout has to end the request.
    Hang,
    /// The service's access-denied error, naming the IAM action as AWS does.
    AccessDenied,
    /// A canned 200 answer (for operations moto does not implement).
    Respond { content_type: &'static str, body: String },
}

struct Rule {
    operation: String,
    fault: Fault,
    remaining: usize,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    seen: HashMap<String, usize>,
    bodies: HashMap<String, Vec<String>>,
}

pub struct Proxy {
    endpoint: String,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream.clone(), shared.clone()));
            }
        });
        Proxy { endpoint, state }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Answers the next `times` requests of `operation` (`GetSecretValue`) with `fault`.
    pub fn inject(&self, operation: &str, fault: Fault, times: usize) {
        self.state.lock().unwrap().rules.push(Rule { operation: operation.into(), fault, remaining: times });
    }

    /// Requests of `operation` that reached the proxy.
    pub fn seen(&self, operation: &str) -> usize {
        self.state.lock().unwrap().seen.get(operation).copied().unwrap_or(0)
    }

    /// Requests that reached the proxy so far, by operation.
    pub fn counts(&self) -> HashMap<String, usize> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The bodies of the requests of `operation` that reached the proxy, oldest first.
    pub fn bodies(&self, operation: &str) -> Vec<String> {
        self.state.lock().unwrap().bodies.get(operation).cloned().unwrap_or_default()
    }
}

struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// (service, operation): from `X-Amz-Target` (JSON protocols) or `Action=` (query protocols).
    fn operation(&self) -> (String, String) {
        if let Some(target) = self.header("x-amz-target") {
            let (prefix, op) = target.rsplit_once('.').unwrap_or(("", target));
            let service = match prefix {
                "TrentService" => "kms",
                "CertificateManager" => "acm",
                other => other,
            };
            return (service.to_lowercase(), op.to_string());
        }
        let body = String::from_utf8_lossy(&self.body);
        let op = body.split('&').find_map(|kv| kv.strip_prefix("Action=")).unwrap_or("Unknown");
        ("ec2".to_string(), op.to_string())
    }
}

async fn read_message(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut request = Request { head, body: buf[head_end..].to_vec() };
    let length: usize = request.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while request.body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        request.body.extend_from_slice(&chunk[..n]);
    }
    Some(request)
}

/// The head with any `Connection` header replaced by `Connection: close`.
fn closing(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

async fn serve(mut client: TcpStream, upstream: String, state: Arc<Mutex<State>>) {
    let Some(request) = read_message(&mut client).await else { return };
    let (service, operation) = request.operation();
    let fault = {
        let mut state = state.lock().unwrap();
        *state.seen.entry(operation.clone()).or_default() += 1;
        let body = String::from_utf8_lossy(&request.body).into_owned();
        state.bodies.entry(operation.clone()).or_default().push(body);
        state.rules.iter_mut().find(|r| r.operation == operation && r.remaining > 0).map(|rule| {
            rule.remaining -= 1;
            rule.fault.clone()
        })
    };
    let json = request.header("x-amz-target").is_some();
    let response = match fault {
        Some(Fault::Hang) => std::future::pending().await,
        Some(fault) => fault_response(&fault, json, &service, &operation),
        None => forward(&request, &upstream).await,
    };
    let _ = client.write_all(&response).await;
    let _ = client.shutdown().await;
}

async fn forward(request: &Request, upstream: &str) -> Vec<u8> {
    let Ok(mut moto) = TcpStream::connect(upstream).await else {
        return http(502, "text/plain", "moto unreachable");
    };
    let mut out = closing(&request.head).into_bytes();
    out.extend_from_slice(&request.body);
    if moto.write_all(&out).await.is_err() {
        return http(502, "text/plain", "moto write failed");
    }
    let mut response = Vec::new();
    if moto.read_to_end(&mut response).await.is_err() {
        return http(502, "text/plain", "moto read failed");
    }
    match response.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(pos) => {
            let mut rewritten = closing(&String::from_utf8_lossy(&response[..pos + 4])).into_bytes();
            rewritten.extend_from_slice(&response[pos + 4..]);
            rewritten
        }
        None => response,
    }
}

fn fault_response(fault: &Fault, json: bool, service: &str, operation: &str) -> Vec<u8> {
    let denied = format!(
        "User: arn:aws:sts::123456789012:assumed-role/dpo-controller/i-0abc is not authorized to perform: \
         {service}:{operation} because no identity-based policy allows the {service}:{operation} action"
    );
    let (status, code, message) = match fault {
        Fault::Throttle if json => (400, "ThrottlingException", "Rate exceeded".to_string()),
        Fault::Throttle => (503, "RequestLimitExceeded", "Request limit exceeded.".to_string()),
        Fault::TooManyRequests => (429, "TooManyRequestsException", "Too Many Requests".to_string()),
        Fault::ServerError if json => (500, "InternalFailure", "An internal error occurred".to_string()),
        Fault::ServerError => (500, "InternalError", "An internal error has occurred".to_string()),
        Fault::AccessDenied if json => (400, "AccessDeniedException", denied),
        Fault::AccessDenied => (403, "UnauthorizedOperation", denied),
        Fault::Respond { content_type, body } => return http(200, content_type, body),
        Fault::Hang => unreachable!("a hang has no answer"),
    };
    if json {
        let body = format!(r#"{{"__type":"{code}","Message":"{message}"}}"#);
        http(status, "application/x-amz-json-1.1", &body)
    } else {
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"#
        );
        http(status, "text/xml;charset=UTF-8", &body)
    }
}

fn http(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} Fault\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
