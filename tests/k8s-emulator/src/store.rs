//! In-memory object store: Jobs and Pods as JSON documents, the global
//! resourceVersion counter, pod logs and the event history used by watches.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use tokio::sync::{Notify, broadcast, oneshot};

/// `(namespace, name)`.
pub(crate) type Key = (String, String);

/// Most bytes kept per container log; older bytes are dropped (tail kept).
pub(crate) const LOG_CAP: usize = 16 * 1024 * 1024;
/// How many write events are kept for watches that resume from a resourceVersion.
const HISTORY_CAP: usize = 4096;

/// The resources the emulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Res {
    Jobs,
    Pods,
}

impl Res {
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Res::Jobs => "jobs",
            Res::Pods => "pods",
        }
    }
    pub(crate) fn group(self) -> &'static str {
        match self {
            Res::Jobs => "batch",
            Res::Pods => "",
        }
    }
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Res::Jobs => "Job",
            Res::Pods => "Pod",
        }
    }
    pub(crate) fn api_version(self) -> &'static str {
        match self {
            Res::Jobs => "batch/v1",
            Res::Pods => "v1",
        }
    }
    pub(crate) fn list_kind(self) -> &'static str {
        match self {
            Res::Jobs => "JobList",
            Res::Pods => "PodList",
        }
    }
    /// `jobs.batch`, `pods`: how the real server names a resource in messages.
    pub(crate) fn qualified(self) -> &'static str {
        match self {
            Res::Jobs => "jobs.batch",
            Res::Pods => "pods",
        }
    }
    /// `Job.batch`, `Pod`: how the real server names a kind in Invalid messages.
    pub(crate) fn qualified_kind(self) -> &'static str {
        match self {
            Res::Jobs => "Job.batch",
            Res::Pods => "Pod",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One write, as a watch sees it.
#[derive(Debug)]
pub(crate) struct Event {
    pub rv: u64,
    pub res: Res,
    pub etype: EventType,
    pub obj: Arc<Value>,
    pub prev: Option<Arc<Value>>,
}

/// A container's log: the bytes (tail kept under [`LOG_CAP`]) and when each
/// line started, for `timestamps` and `sinceSeconds`.
#[derive(Debug, Default)]
pub(crate) struct LogBuf {
    data: Vec<u8>,
    /// Absolute offset of `data[0]` since the log began.
    base: u64,
    /// Absolute start offset of each line and the time it was written.
    lines: VecDeque<(u64, DateTime<Utc>)>,
}

impl LogBuf {
    pub(crate) fn end(&self) -> u64 {
        self.base + self.data.len() as u64
    }

    pub(crate) fn append(&mut self, bytes: &[u8], now: DateTime<Utc>) {
        let mut line_open = self.data.last().is_some_and(|b| *b != b'\n');
        for (abs, b) in (self.end()..).zip(bytes.iter()) {
            if !line_open {
                self.lines.push_back((abs, now));
                line_open = true;
            }
            if *b == b'\n' {
                line_open = false;
            }
        }
        self.data.extend_from_slice(bytes);
        if self.data.len() > LOG_CAP + LOG_CAP / 8 {
            let drop = self.data.len() - LOG_CAP;
            self.data.drain(..drop);
            self.base += drop as u64;
            let mut last_dropped = None;
            while let Some(&(off, t)) = self.lines.front() {
                if off >= self.base {
                    break;
                }
                last_dropped = Some(t);
                self.lines.pop_front();
            }
            if let Some(t) = last_dropped
                && self.lines.front().is_none_or(|(off, _)| *off > self.base)
            {
                self.lines.push_front((self.base, t));
            }
        }
    }

    pub(crate) fn replace(&mut self, bytes: &[u8], now: DateTime<Utc>) {
        let end = self.end();
        self.data.clear();
        self.lines.clear();
        self.base = end;
        self.append(bytes, now);
    }

    /// Where a read starts: the later of the first line written at or after
    /// `since` and the start of the last `tail` lines.
    pub(crate) fn start_offset(&self, tail: Option<u64>, since: Option<DateTime<Utc>>) -> u64 {
        let mut start = self.base;
        if let Some(since) = since {
            let idx = self.lines.partition_point(|(_, t)| *t < since);
            start = self.lines.get(idx).map_or(self.end(), |(off, _)| *off);
        }
        if let Some(tail) = tail {
            let n = self.lines.len();
            let tail = usize::try_from(tail).unwrap_or(usize::MAX);
            let off = if tail >= n {
                self.base
            } else if tail == 0 {
                self.end()
            } else {
                self.lines[n - tail].0
            };
            start = start.max(off);
        }
        start
    }

    /// The log from absolute offset `from` to the end, each line start
    /// prefixed with its RFC 3339 timestamp when asked.
    pub(crate) fn render(&self, from: u64, timestamps: bool) -> Vec<u8> {
        let from = from.max(self.base);
        let rel = usize::try_from(from - self.base).unwrap_or(usize::MAX);
        let Some(slice) = self.data.get(rel..) else {
            return Vec::new();
        };
        if !timestamps {
            return slice.to_vec();
        }
        let mut out = Vec::with_capacity(slice.len() + slice.len() / 8);
        let first = self.lines.partition_point(|(off, _)| *off < from);
        let mut pos = from;
        for (off, t) in self.lines.iter().skip(first) {
            let seg_end = usize::try_from(off - self.base).unwrap_or(usize::MAX);
            let seg_start = usize::try_from(pos - self.base).unwrap_or(usize::MAX);
            if let Some(seg) = self.data.get(seg_start..seg_end) {
                out.extend_from_slice(seg);
            }
            out.extend_from_slice(t.to_rfc3339_opts(SecondsFormat::Nanos, true).as_bytes());
            out.push(b' ');
            pos = *off;
        }
        let seg_start = usize::try_from(pos - self.base).unwrap_or(usize::MAX);
        if let Some(seg) = self.data.get(seg_start..) {
            out.extend_from_slice(seg);
        }
        out
    }
}

/// All objects of the emulated cluster.
pub(crate) struct Store {
    rv: u64,
    jobs: BTreeMap<Key, Arc<Value>>,
    pods: BTreeMap<Key, Arc<Value>>,
    logs: HashMap<Key, BTreeMap<String, LogBuf>>,
    kill_switches: HashMap<Key, oneshot::Sender<()>>,
    history: VecDeque<Arc<Event>>,
    /// Highest resourceVersion whose event was dropped from `history`.
    history_floor: u64,
    events: broadcast::Sender<Arc<Event>>,
    /// Woken whenever a log grows (for `follow=true`).
    pub(crate) log_notify: Arc<Notify>,
}

impl Default for Store {
    fn default() -> Self {
        let (events, _) = broadcast::channel(HISTORY_CAP);
        Store {
            rv: 1,
            jobs: BTreeMap::new(),
            pods: BTreeMap::new(),
            logs: HashMap::new(),
            kill_switches: HashMap::new(),
            history: VecDeque::new(),
            history_floor: 0,
            events,
            log_notify: Arc::new(Notify::new()),
        }
    }
}

impl Store {
    pub(crate) fn current_rv(&self) -> u64 {
        self.rv
    }

    pub(crate) fn map(&self, res: Res) -> &BTreeMap<Key, Arc<Value>> {
        match res {
            Res::Jobs => &self.jobs,
            Res::Pods => &self.pods,
        }
    }

    fn map_mut(&mut self, res: Res) -> &mut BTreeMap<Key, Arc<Value>> {
        match res {
            Res::Jobs => &mut self.jobs,
            Res::Pods => &mut self.pods,
        }
    }

    pub(crate) fn get(&self, res: Res, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.map(res)
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    pub(crate) fn contains(&self, res: Res, ns: &str, name: &str) -> bool {
        self.map(res)
            .contains_key(&(ns.to_string(), name.to_string()))
    }

    fn record(&mut self, res: Res, etype: EventType, obj: Arc<Value>, prev: Option<Arc<Value>>) {
        let ev = Arc::new(Event {
            rv: self.rv,
            res,
            etype,
            obj,
            prev,
        });
        if self.history.len() >= HISTORY_CAP
            && let Some(old) = self.history.pop_front()
        {
            self.history_floor = old.rv;
        }
        self.history.push_back(ev.clone());
        // No receiver is fine: nobody watches.
        let _ = self.events.send(ev);
    }

    /// Stores `obj` (created or replaced) with a fresh resourceVersion.
    pub(crate) fn put(&mut self, res: Res, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        let ns = str_at(&obj, &["metadata", "namespace"]).to_string();
        let name = str_at(&obj, &["metadata", "name"]).to_string();
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        }
        let obj = Arc::new(obj);
        let prev = self.map_mut(res).insert((ns, name), obj.clone());
        let etype = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(res, etype, obj.clone(), prev);
        obj
    }

    /// Removes an object; a removed Pod loses its logs and its process is killed.
    pub(crate) fn remove(&mut self, res: Res, ns: &str, name: &str) -> Option<Arc<Value>> {
        let key = (ns.to_string(), name.to_string());
        let old = self.map_mut(res).remove(&key)?;
        self.rv += 1;
        let mut gone = (*old).clone();
        if let Some(meta) = gone.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        }
        let gone = Arc::new(gone);
        self.record(res, EventType::Deleted, gone.clone(), Some(old));
        if res == Res::Pods {
            self.logs.remove(&key);
            if let Some(kill) = self.kill_switches.remove(&key) {
                let _ = kill.send(());
            }
        }
        Some(gone)
    }

    /// Subscribes to future events, and returns the kept events after `rv`;
    /// `None` when events after `rv` were already dropped (410 Gone).
    pub(crate) fn watch_from(
        &self,
        rv: Option<u64>,
    ) -> (Option<Vec<Arc<Event>>>, broadcast::Receiver<Arc<Event>>) {
        let rx = self.events.subscribe();
        let past = match rv {
            None => Some(Vec::new()),
            Some(rv) if rv < self.history_floor => None,
            Some(rv) => Some(self.history.iter().filter(|e| e.rv > rv).cloned().collect()),
        };
        (past, rx)
    }

    pub(crate) fn log(&self, key: &Key, container: &str) -> Option<&LogBuf> {
        self.logs.get(key).and_then(|m| m.get(container))
    }

    pub(crate) fn log_mut(&mut self, key: &Key, container: &str) -> &mut LogBuf {
        self.logs
            .entry(key.clone())
            .or_default()
            .entry(container.to_string())
            .or_default()
    }

    pub(crate) fn append_log(&mut self, key: &Key, container: &str, bytes: &[u8]) {
        self.log_mut(key, container).append(bytes, Utc::now());
        self.log_notify.notify_waiters();
    }

    /// Registers the kill switch of a pod's running process. Returns false
    /// (and drops the switch) when the pod no longer exists.
    pub(crate) fn set_kill_switch(&mut self, key: &Key, kill: oneshot::Sender<()>) -> bool {
        if !self.pods.contains_key(key) {
            return false;
        }
        self.kill_switches.insert(key.clone(), kill);
        true
    }

    pub(crate) fn clear_kill_switch(&mut self, key: &Key) {
        self.kill_switches.remove(key);
    }
}

/// `obj[path...]` as a string, `""` when absent.
pub(crate) fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    value_at(obj, path).and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn value_at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = obj;
    for p in path {
        cur = cur.get(p)?;
    }
    Some(cur)
}

/// `obj[path...]`, creating objects on the way.
pub(crate) fn value_at_mut<'a>(obj: &'a mut Value, path: &[&str]) -> &'a mut Value {
    let mut cur = obj;
    for p in path {
        if !cur.is_object() {
            *cur = Value::Object(serde_json::Map::new());
        }
        let Value::Object(map) = cur else {
            unreachable!("just made an object")
        };
        cur = map.entry(p.to_string()).or_insert(Value::Null);
    }
    cur
}

pub(crate) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A fresh pseudo-random number (std's randomly keyed SipHash over a counter).
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_i64(Utc::now().timestamp_nanos_opt().unwrap_or(0));
    h.finish()
}

/// A version-4-shaped UUID.
pub(crate) fn new_uid() -> String {
    let a = random_u64();
    let b = random_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// Five characters as Kubernetes' `utilrand.String(5)` draws them.
pub(crate) fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = random_u64();
    let mut s = String::with_capacity(5);
    for _ in 0..5 {
        s.push(char::from(ALPHABET[(n % ALPHABET.len() as u64) as usize]));
        n /= ALPHABET.len() as u64;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_then_timestamps_render_whole_lines() {
        let mut log = LogBuf::default();
        let t = Utc::now();
        log.append(b"a\nb\nc", t);
        assert_eq!(log.render(log.start_offset(Some(2), None), false), b"b\nc");
        assert_eq!(log.render(log.start_offset(Some(0), None), false), b"");
        assert_eq!(
            log.render(log.start_offset(Some(9), None), false),
            b"a\nb\nc"
        );
        let ts = String::from_utf8(log.render(log.start_offset(Some(1), None), true))
            .unwrap_or_default();
        assert!(ts.ends_with("Z c"), "{ts}");
    }

    #[test]
    fn log_cap_keeps_the_tail() {
        let mut log = LogBuf::default();
        let line = vec![b'x'; 1023];
        for _ in 0..(LOG_CAP / 1024 + 3000) {
            log.append(&line, Utc::now());
            log.append(b"\n", Utc::now());
        }
        assert!(log.data.len() <= LOG_CAP + LOG_CAP / 8);
        assert_eq!(
            log.render(log.start_offset(Some(1), None), false).len(),
            1024
        );
    }
}
