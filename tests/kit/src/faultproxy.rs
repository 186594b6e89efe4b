//! A fault-injecting TCP proxy for the fault suite and the benchmark. It stands
//! between a client and a real server (Flink, the Kubernetes API emulator,
//! MongoDB, moto) and, on command, refuses connections, resets them, delays
//! or truncates what the server sends, cuts MongoDB off after a number of
//! messages, or answers HTTP requests itself with a chosen status. It counts the bytes the server sent to clients, which
//! the benchmark reports as bytes read.
//!
//! It works on bytes, not on a protocol model: the client's own parser sees
//! exactly what a misbehaving server or network would give it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// Nothing listens: connections are refused.
    Down,
    /// Accept, then reset the connection at once.
    Reset,
    /// Forward, holding back each piece the server sends by this long.
    Delay(Duration),
    /// Forward, each piece in either direction delivered this long after it
    /// arrived: a network's one-way delay (the round trip is twice this).
    /// Unlike [`Fault::Delay`], pieces in flight do not wait for each other
    /// (a delay line, not a stall), and the delay is timed by a thread's
    /// timed wait, finer than tokio's millisecond timer.
    Latency(Duration),
    /// Forward, holding back what the server sends until the fault is set
    /// to something else: a run held at a chosen step for as long as a test
    /// needs, with no guess at how long that is.
    Hold,
    /// Forward the first this-many bytes of the server's answer, then close
    /// the connection mid-message.
    Truncate(usize),
    /// Answer every HTTP request with this status and JSON body, forwarding
    /// nothing, and close (so the client's next request opens a connection
    /// of its own).
    Http(u16, String),
    /// Forward this many MongoDB wire messages from clients (over all
    /// connections), then reset every connection and go [`Fault::Down`].
    CutAfterMongoMessages(u64),
}

struct Shared {
    upstream: SocketAddr,
    /// The fault every new connection meets.
    fault: Mutex<Fault>,
    bytes_to_client: AtomicU64,
    connections: AtomicU64,
    mongo_messages: AtomicU64,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    /// Woken at each [`FaultProxy::set`], for connections under [`Fault::Hold`].
    changed: tokio::sync::Notify,
}

/// A running proxy; dropping it stops it.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// A proxy on a free 127.0.0.1 port in front of `upstream`, passing.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("fault proxy: bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fault proxy: {e}"));
        let shared = Arc::new(Shared {
            upstream,
            fault: Mutex::new(Fault::Pass),
            bytes_to_client: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            mongo_messages: AtomicU64::new(0),
            tasks: Mutex::new(Vec::new()),
            acceptor: Mutex::new(None),
            changed: tokio::sync::Notify::new(),
        });
        *lock(&shared.acceptor) = Some(tokio::spawn(accept_loop(listener, shared.clone())));
        FaultProxy { addr, shared }
    }

    /// A proxy in front of the server a URL (`http://host:port/...` or
    /// `mongodb://host:port/...`) names.
    pub async fn in_front_of(url: &str) -> FaultProxy {
        let (host, port) = host_port(url);
        let upstream = tokio::net::lookup_host((host.as_str(), port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("fault proxy: cannot resolve {host}:{port}"));
        FaultProxy::start(upstream).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let (host, port) = host_port(url);
        url.replacen(&format!("{host}:{port}"), &self.addr.to_string(), 1)
    }

    /// Sets the fault for every new connection. Any
    /// fault but [`Fault::Pass`] also resets the connections that are open, so
    /// pooled connections meet it too.
    pub async fn set(&self, fault: Fault) {
        let was = lock(&self.shared.fault).clone();
        let was_down = was == Fault::Down;
        *lock(&self.shared.fault) = fault.clone();
        if matches!(fault, Fault::CutAfterMongoMessages(_)) {
            // A cut counts the messages from when it is set.
            self.shared.mongo_messages.store(0, Ordering::SeqCst);
        }
        self.shared.changed.notify_waiters();
        if fault == Fault::Down {
            go_down(&self.shared);
        } else {
            // A latency is fixed per connection: lifting it resets them too.
            if fault != Fault::Pass || matches!(was, Fault::Latency(_)) {
                // A server turning bad does not spare the clients' pooled
                // connections: they meet the fault on their next request.
                for t in lock(&self.shared.tasks).drain(..) {
                    t.abort();
                }
            }
            if was_down {
                self.listen_again().await;
            }
        }
    }

    /// Bytes the server sent through to clients so far, and resets the count.
    pub fn take_bytes_to_client(&self) -> u64 {
        self.shared.bytes_to_client.swap(0, Ordering::Relaxed)
    }

    /// The fault new connections meet now (a cut turns itself into [`Fault::Down`]).
    pub fn fault(&self) -> Fault {
        lock(&self.shared.fault).clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    async fn listen_again(&self) {
        // The port was ours a moment ago; only a brief race with another
        // binder could take it, and then the test cannot go on anyway.
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("fault proxy: listening again on {}: {e}", self.addr),
            }
        };
        *lock(&self.shared.acceptor) =
            Some(tokio::spawn(accept_loop(listener, self.shared.clone())));
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        go_down(&self.shared);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let authority = authority.split(',').next().unwrap_or(authority);
    match authority.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse()
                .unwrap_or_else(|_| panic!("fault proxy: no port in {url:?}")),
        ),
        None => panic!("fault proxy: no port in {url:?}"),
    }
}

/// Stops listening and resets every open connection.
fn go_down(shared: &Shared) {
    if let Some(a) = lock(&shared.acceptor).take() {
        a.abort();
    }
    for t in lock(&shared.tasks).drain(..) {
        t.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let fault = lock(&shared.fault).clone();
        let task = tokio::spawn(serve(client, fault, shared.clone()));
        let mut tasks = lock(&shared.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }
}

fn reset(stream: TcpStream) {
    // Linger 0 makes the close a RST, as a crashed peer's would be.
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn serve(client: TcpStream, fault: Fault, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    match fault {
        Fault::Down | Fault::Reset => reset(client),
        Fault::Http(status, body) => answer_http(client, status, &body).await,
        fault => {
            let Ok(server) = TcpStream::connect(shared.upstream).await else {
                return reset(client);
            };
            let _ = server.set_nodelay(true);
            match fault {
                Fault::Latency(d) => forward_late(client, server, d, shared).await,
                fault => forward(client, server, fault, shared).await,
            }
        }
    }
}

async fn answer_http(mut client: TcpStream, status: u16, body: &str) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    // Read the request head and any body it announces, so the client sees
    // its request taken before the answer.
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 1 << 20 {
            return reset(client);
        }
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let end = text.find("\r\n\r\n").map_or(0, |i| i + 4);
    let announced: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = head.len() - end;
    while have < announced {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
    }
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Injected",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}

async fn forward(client: TcpStream, server: TcpStream, fault: Fault, shared: Arc<Shared>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up_shared = shared.clone();
    let up_fault = fault.clone();
    let upstream = async move {
        match up_fault {
            Fault::CutAfterMongoMessages(limit) => {
                // MongoDB messages start with their length (little endian i32).
                loop {
                    let mut len = [0u8; 4];
                    if cr.read_exact(&mut len).await.is_err() {
                        break;
                    }
                    let n = i32::from_le_bytes(len).max(4) as usize;
                    let mut msg = vec![0u8; n - 4];
                    if cr.read_exact(&mut msg).await.is_err() {
                        break;
                    }
                    // Once the fault is lifted, connections opened under it
                    // pass like any other.
                    let active = *lock(&up_shared.fault) == Fault::CutAfterMongoMessages(limit);
                    if active && up_shared.mongo_messages.fetch_add(1, Ordering::SeqCst) >= limit {
                        *lock(&up_shared.fault) = Fault::Down;
                        go_down(&up_shared);
                        break;
                    }
                    if sw.write_all(&len).await.is_err() || sw.write_all(&msg).await.is_err() {
                        break;
                    }
                }
            }
            _ => {
                let _ = tokio::io::copy(&mut cr, &mut sw).await;
            }
        }
        let _ = sw.shutdown().await;
    };
    let downstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut sent = 0usize;
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut piece = &buf[..n];
            match &fault {
                Fault::Delay(d) if *lock(&shared.fault) == fault => tokio::time::sleep(*d).await,
                Fault::Hold => loop {
                    // Registered before the check, so a change between the
                    // check and the wait still wakes it.
                    let changed = shared.changed.notified();
                    tokio::pin!(changed);
                    changed.as_mut().enable();
                    if *lock(&shared.fault) != Fault::Hold {
                        break;
                    }
                    changed.await;
                },
                Fault::Truncate(limit) => {
                    let room = limit.saturating_sub(sent);
                    if room < piece.len() {
                        piece = &piece[..room];
                        let _ = cw.write_all(piece).await;
                        shared
                            .bytes_to_client
                            .fetch_add(piece.len() as u64, Ordering::Relaxed);
                        return;
                    }
                }
                _ => {}
            }
            if cw.write_all(piece).await.is_err() {
                break;
            }
            sent += piece.len();
            shared
                .bytes_to_client
                .fetch_add(piece.len() as u64, Ordering::Relaxed);
        }
        let _ = cw.shutdown().await;
    };
    tokio::pin!(upstream);
    tokio::pin!(downstream);
    // Either side ending ends the pair. A truncated answer ends with the
    // connection closed mid-message, which is what the client must detect.
    tokio::select! {
        _ = &mut upstream => {
            let _ = downstream.await;
        }
        _ = &mut downstream => {}
    }
}

/// [`Fault::Latency`]: both directions through a delay line.
async fn forward_late(client: TcpStream, server: TcpStream, delay: Duration, shared: Arc<Shared>) {
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    // Each side ends on its own: what is in flight when one peer closes
    // still reaches the other, as on a network.
    tokio::join!(
        delay_line(cr, sw, delay, |_| {}),
        delay_line(sr, cw, delay, |n| {
            shared
                .bytes_to_client
                .fetch_add(n as u64, Ordering::Relaxed);
        })
    );
}

/// Copies `from` to `to`, each piece written `delay` after it was read; the
/// reading goes on while earlier pieces wait.
async fn delay_line(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    written: impl Fn(usize),
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(std::time::Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((std::time::Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((due, piece)) = rx.recv().await {
            wake_at(due).await;
            if to.write_all(&piece).await.is_err() {
                return;
            }
            written(piece.len());
        }
        let _ = to.shutdown().await;
    };
    // The reader ending (its side closed) still lets the pieces in flight
    // arrive, as a network would deliver them.
    tokio::join!(reader, writer);
}

/// Resolves at `due`, timed by one timer thread for every proxy (a timed
/// channel wait), since tokio's timer counts whole milliseconds.
async fn wake_at(due: std::time::Instant) {
    use std::sync::OnceLock;
    type Waits = std::sync::mpsc::Sender<(std::time::Instant, tokio::sync::oneshot::Sender<()>)>;
    static TIMER: OnceLock<Mutex<Waits>> = OnceLock::new();
    if due <= std::time::Instant::now() {
        return;
    }
    let timer = TIMER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("faultproxy-latency".into())
            .spawn(move || timer_thread(rx))
            .unwrap_or_else(|e| panic!("fault proxy: timer thread: {e}"));
        Mutex::new(tx)
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    if lock(timer).send((due, tx)).is_ok() {
        let _ = rx.await;
    }
}

fn timer_thread(
    waits: std::sync::mpsc::Receiver<(std::time::Instant, tokio::sync::oneshot::Sender<()>)>,
) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut heap: BinaryHeap<Reverse<(std::time::Instant, u64)>> = BinaryHeap::new();
    let mut wakers = std::collections::HashMap::new();
    let mut seq = 0u64;
    loop {
        let next = match heap.peek() {
            None => waits.recv().map_err(|_| ()),
            Some(Reverse((due, _))) => {
                let left = due.saturating_duration_since(std::time::Instant::now());
                match waits.recv_timeout(left) {
                    Ok(w) => Ok(w),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(()),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        };
        match next {
            Ok((due, waker)) => {
                seq += 1;
                heap.push(Reverse((due, seq)));
                wakers.insert(seq, waker);
            }
            Err(()) if heap.is_empty() => return,
            Err(()) => {}
        }
        let now = std::time::Instant::now();
        while let Some(Reverse((due, n))) = heap.peek().copied() {
            if due > now {
                break;
            }
            heap.pop();
            if let Some(w) = wakers.remove(&n) {
                let _ = w.send(());
            }
        }
    }
}
