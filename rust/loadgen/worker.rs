//! One I/O thread: its share of the connections on one epoll instance, closed or open loop.
//!
//! Nothing here takes a lock per request: counts accumulate in the thread and are flushed into its `Slot`
//! once per loop turn, and `window()` swaps the slot out under that short lock.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::loadgen::http::{parse, Parsed};
use crate::loadgen::{Arrivals, Config, Shared, Slot};

/// How often a thread looks at the stop flag when nothing else wakes it.
const TICK: Duration = Duration::from_millis(20);

enum State {
    Idle,
    /// Writing request `body` from byte `written`; latency counts from `start`.
    Busy {
        body: usize,
        written: usize,
        start: Instant,
        sent_at: Instant,
    },
    /// The connection is gone; try again at this instant.
    Down(Instant),
}

struct Conn {
    stream: Option<TcpStream>,
    state: State,
    buf: Vec<u8>,
    want_write: bool,
}

/// Counters of one loop turn, flushed into the shared slot.
#[derive(Default)]
pub struct Local {
    pub latencies_us: Vec<u32>,
    pub errors: u64,
    pub sent: u64,
}

/// CPU time this thread has used, in nanoseconds.
#[must_use]
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_THREAD_CPUTIME_ID is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

struct Epoll(i32);

impl Epoll {
    fn new() -> std::io::Result<Self> {
        // SAFETY: plain syscall; the fd is owned by the returned value and closed on drop.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self(fd))
    }

    fn ctl(&self, op: i32, fd: i32, token: usize, write: bool) {
        let events = libc::EPOLLIN | libc::EPOLLRDHUP | if write { libc::EPOLLOUT } else { 0 };
        let mut ev = libc::epoll_event {
            events: events as u32,
            u64: token as u64,
        };
        // SAFETY: `fd` is a socket this thread owns; a failure leaves the connection unwatched and its timeout fires.
        unsafe { libc::epoll_ctl(self.0, op, fd, &raw mut ev) };
    }

    fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration) -> usize {
        // Round up: a wait truncated to 0 ms would spin until the next arrival is due.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: `events` is a valid buffer of its length.
        let n = unsafe { libc::epoll_wait(self.0, events.as_mut_ptr(), events.len() as i32, ms) };
        usize::try_from(n).unwrap_or(0)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.0) };
    }
}

/// A non-blocking, no-delay connection to `addr`.
///
/// # Errors
/// The connect's I/O error.
pub fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

struct Worker {
    cfg: Arc<Config>,
    shared: Arc<Shared>,
    index: usize,
    epoll: Epoll,
    conns: Vec<Conn>,
    local: Local,
    /// Open loop: scheduled instants of arrivals that are due and wait for a free connection.
    backlog: VecDeque<Instant>,
    next_body: usize,
}

/// Run one I/O thread until stop, drop or `max_seconds`.
pub fn run(cfg: Arc<Config>, shared: Arc<Shared>, index: usize, streams: Vec<TcpStream>, origin: Instant) {
    let Ok(epoll) = Epoll::new() else {
        shared.slots[index].lock().errors += 1;
        return;
    };
    let conns = streams
        .into_iter()
        .enumerate()
        .map(|(token, stream)| {
            epoll.ctl(libc::EPOLL_CTL_ADD, stream.as_raw_fd(), token, false);
            Conn {
                stream: Some(stream),
                state: State::Idle,
                buf: Vec::with_capacity(4096),
                want_write: false,
            }
        })
        .collect();
    let mut worker = Worker {
        cfg: Arc::clone(&cfg),
        shared,
        index,
        epoll,
        conns,
        local: Local::default(),
        backlog: VecDeque::new(),
        next_body: index,
    };
    worker.main(origin);
}

impl Worker {
    fn main(&mut self, origin: Instant) {
        let deadline = origin + Duration::from_secs_f64(self.cfg.max_seconds);
        let mut arrivals = Arrivals::new(&self.cfg, self.index, origin);
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; self.conns.len().max(1)];
        let mut read_buf = vec![0u8; 65_536];
        while !self.shared.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if let Some(arrivals) = arrivals.as_mut() {
                while let Some(due) = arrivals.next_due(now, self.cfg.threads) {
                    if self.backlog.len() >= self.cfg.max_backlog {
                        self.local.errors += 1;
                    } else {
                        self.backlog.push_back(due);
                    }
                }
            }
            self.dispatch(now);
            self.expire(now);
            let mut wait = TICK.min(deadline.saturating_duration_since(now));
            if let Some(next) = arrivals.as_ref().map(Arrivals::peek) {
                wait = wait.min(next.saturating_duration_since(now));
            }
            let n = self.epoll.wait(&mut events, wait);
            for ev in &events[..n] {
                self.ready(ev.u64 as usize, ev.events, &mut read_buf);
            }
            self.flush();
        }
        self.flush();
    }

    /// Give every idle connection work: the next request (closed loop) or the oldest waiting arrival (open loop).
    fn dispatch(&mut self, now: Instant) {
        let open = self.cfg.open_loop();
        for token in 0..self.conns.len() {
            match self.conns[token].state {
                State::Down(at) if at <= now => self.reconnect(token, now),
                State::Idle => {}
                _ => continue,
            }
            if !matches!(self.conns[token].state, State::Idle) {
                continue;
            }
            let start = if open {
                match self.backlog.pop_front() {
                    Some(at) => at,
                    None => break,
                }
            } else {
                now
            };
            let body = self.next_body % self.cfg.requests.len();
            self.next_body = self.next_body.wrapping_add(self.cfg.threads);
            self.conns[token].state = State::Busy {
                body,
                written: 0,
                start,
                sent_at: now,
            };
            self.conns[token].buf.clear();
            self.local.sent += 1;
            self.write(token);
        }
        self.shared.backlog[self.index].store(self.backlog.len() as u64, Ordering::Relaxed);
    }

    fn write(&mut self, token: usize) {
        let conn = &mut self.conns[token];
        let (Some(stream), State::Busy { body, written, .. }) = (conn.stream.as_mut(), &mut conn.state) else {
            return;
        };
        let bytes = &self.cfg.requests[*body];
        let mut failed = false;
        while *written < bytes.len() {
            match stream.write(&bytes[*written..]) {
                Ok(0) => failed = true,
                Ok(n) => *written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => failed = true,
            }
            if failed {
                break;
            }
        }
        if failed {
            return self.fail(token);
        }
        let want_write = *written < bytes.len();
        if want_write != conn.want_write {
            conn.want_write = want_write;
            self.epoll
                .ctl(libc::EPOLL_CTL_MOD, stream.as_raw_fd(), token, want_write);
        }
    }

    fn ready(&mut self, token: usize, events: u32, read_buf: &mut [u8]) {
        if events & libc::EPOLLOUT as u32 != 0 {
            self.write(token);
        }
        let conn = &mut self.conns[token];
        let Some(stream) = conn.stream.as_mut() else { return };
        let mut failed = false;
        loop {
            match stream.read(read_buf) {
                Ok(0) => failed = true,
                Ok(n) => conn.buf.extend_from_slice(&read_buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => failed = true,
            }
            if failed {
                break;
            }
        }
        // A response framed before the peer closed still counts; bytes nobody asked for do not.
        let parsed = match conn.state {
            State::Busy { start, .. } => Some((start, parse(&conn.buf))),
            _ => None,
        };
        let quiet = !failed && conn.buf.is_empty();
        match parsed {
            Some((start, Parsed::Done { status, close })) => {
                if (200..300).contains(&status) {
                    let us = start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    self.local.latencies_us.push(us);
                } else {
                    self.local.errors += 1;
                }
                conn.state = State::Idle;
                conn.buf.clear();
                if close || failed {
                    self.drop_conn(token, Instant::now());
                }
                // Closed loop: the next request goes out now, not at the next turn.
                self.dispatch(Instant::now());
            }
            Some((_, Parsed::Incomplete)) if !failed => {}
            None if quiet => {}
            _ => self.fail(token),
        }
    }

    /// Requests past `timeout_s` are errors; their connection is dropped (the answer may still come on it).
    fn expire(&mut self, now: Instant) {
        for token in 0..self.conns.len() {
            if let State::Busy { sent_at, .. } = self.conns[token].state {
                if now.duration_since(sent_at) > self.cfg.timeout {
                    self.fail(token);
                }
            }
        }
    }

    /// The request in flight (if any) is an error; the connection is replaced.
    fn fail(&mut self, token: usize) {
        if matches!(self.conns[token].state, State::Busy { .. }) {
            self.local.errors += 1;
        }
        self.drop_conn(token, Instant::now());
    }

    fn drop_conn(&mut self, token: usize, now: Instant) {
        let conn = &mut self.conns[token];
        // Closing the socket removes it from the epoll set.
        conn.stream = None;
        conn.want_write = false;
        conn.buf.clear();
        conn.state = State::Down(now);
    }

    fn reconnect(&mut self, token: usize, now: Instant) {
        if let Ok(stream) = connect(self.cfg.addr, self.cfg.timeout.min(Duration::from_secs(1))) {
            self.epoll.ctl(libc::EPOLL_CTL_ADD, stream.as_raw_fd(), token, false);
            let conn = &mut self.conns[token];
            conn.stream = Some(stream);
            conn.state = State::Idle;
        } else {
            // A refused connect counts as one error; retry shortly, not in a hot spin.
            self.local.errors += 1;
            self.conns[token].state = State::Down(now + Duration::from_millis(50));
        }
    }

    fn flush(&mut self) {
        let cpu = thread_cpu_ns();
        let mut slot: parking_lot::MutexGuard<'_, Slot> = self.shared.slots[self.index].lock();
        slot.absorb(&mut self.local, self.cfg.latency_cap);
        slot.cpu_ns = cpu;
    }
}
