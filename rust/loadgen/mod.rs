//! A load generator for `driftline tune`: closed- and open-loop HTTP/1.1 on loopback, in Rust threads.
//!
//! T I/O threads each own a share of the keep-alive connections on one epoll instance. Closed loop: a connection
//! sends its next request as soon as an answer arrives. Open loop: each thread runs its own Poisson process at
//! rate/T (or its share of a trace's arrivals); an arrival waits in a bounded backlog while every connection is
//! busy, and its latency counts from its scheduled instant, so a slow server cannot hide its queue (no coordinated
//! omission). Counters are per thread and swapped out by `window()`.

pub mod http;
pub mod py;
pub mod worker;

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::errors::{Error, Result};

/// Latencies one window keeps in total; completions past it are counted, not stored.
pub const LATENCY_CAP: usize = 10_000_000;

/// Validated settings, shared read-only by every thread.
pub struct Config {
    pub addr: SocketAddr,
    pub requests: Vec<Vec<u8>>,
    pub connections: usize,
    pub threads: usize,
    pub rate: f64,
    pub arrivals: Option<Vec<f64>>,
    pub timeout: Duration,
    pub max_backlog: usize,
    pub max_seconds: f64,
    /// Per-thread share of `LATENCY_CAP`.
    pub latency_cap: usize,
}

impl Config {
    #[must_use]
    pub fn open_loop(&self) -> bool {
        self.rate > 0.0 || self.arrivals.is_some()
    }
}

/// What one thread has counted since the last window swap.
#[derive(Default)]
pub struct Slot {
    pub latencies_us: Vec<u32>,
    pub unstored: u64,
    pub errors: u64,
    pub sent: u64,
    /// The thread's cumulative CPU time at its last flush.
    pub cpu_ns: u64,
}

impl Slot {
    pub fn absorb(&mut self, local: &mut worker::Local, cap: usize) {
        let room = cap
            .saturating_sub(self.latencies_us.len())
            .min(local.latencies_us.len());
        self.latencies_us.extend_from_slice(&local.latencies_us[..room]);
        self.unstored += (local.latencies_us.len() - room) as u64;
        self.errors += local.errors;
        self.sent += local.sent;
        local.latencies_us.clear();
        local.errors = 0;
        local.sent = 0;
    }
}

pub struct Shared {
    pub stop: AtomicBool,
    pub slots: Vec<Mutex<Slot>>,
    pub backlog: Vec<AtomicU64>,
}

/// One window's totals over every thread.
pub struct Window {
    pub seconds: f64,
    pub latencies_us: Vec<u32>,
    pub unstored: u64,
    pub errors: u64,
    pub sent: u64,
    pub backlog: u64,
    pub generator_cpu_s: f64,
    pub threads: usize,
}

/// A thread's arrival schedule: Poisson at rate/T, or every T-th arrival of a trace (cycling).
pub struct Arrivals {
    origin: Instant,
    /// Next arrival, seconds after `origin`.
    next: f64,
    poisson_rate: f64,
    trace: Option<(Vec<f64>, f64)>,
    index: usize,
    cycle: u64,
    rng: u64,
}

impl Arrivals {
    #[must_use]
    pub fn new(cfg: &Config, thread: usize, origin: Instant) -> Option<Self> {
        if !cfg.open_loop() {
            return None;
        }
        let threads = cfg.threads;
        let mut me = Self {
            origin,
            next: 0.0,
            poisson_rate: cfg.rate / threads as f64,
            trace: None,
            index: thread,
            cycle: 0,
            rng: 0x9E37_79B9_7F4A_7C15 ^ (thread as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
        };
        if let Some(times) = &cfg.arrivals {
            let speed = if cfg.rate > 0.0 { cfg.rate } else { 1.0 };
            let scaled: Vec<f64> = times.iter().map(|t| (t - times[0]) / speed).collect();
            // A cycle lasts the trace plus one mean gap, so the first arrival of the next cycle is not on the last.
            let span = scaled.last().copied().unwrap_or(0.0);
            let gap = if scaled.len() > 1 {
                span / (scaled.len() - 1) as f64
            } else {
                1.0 / speed
            };
            me.trace = Some((scaled, span + gap.max(1e-6)));
            me.next = me.trace_time();
        } else {
            me.next = me.gap();
        }
        Some(me)
    }

    fn trace_time(&self) -> f64 {
        let Some((times, period)) = &self.trace else {
            return f64::INFINITY;
        };
        let n = times.len();
        times[self.index % n] + period * (self.cycle + (self.index / n) as u64) as f64
    }

    /// An exponential gap (xorshift64*: fast, and quality is ample for inter-arrival times).
    fn gap(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let bits = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        let u = (bits as f64 + 0.5) / (1u64 << 53) as f64;
        -u.ln() / self.poisson_rate
    }

    #[must_use]
    pub fn peek(&self) -> Instant {
        self.origin + Duration::from_secs_f64(self.next.min(1e9))
    }

    /// The next arrival due at or before `now`, and advance past it.
    pub fn next_due(&mut self, now: Instant, threads: usize) -> Option<Instant> {
        let due = self.peek();
        if due > now {
            return None;
        }
        if let Some((times, _)) = &self.trace {
            let n = times.len();
            self.index += threads;
            self.cycle += (self.index / n) as u64;
            self.index %= n;
            self.next = self.trace_time();
        } else {
            self.next += self.gap();
        }
        Some(due)
    }
}

/// The running generator: threads, their shared counters, and the last window boundary.
pub struct LoadGen {
    cfg: Arc<Config>,
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    mark: Option<(Instant, Vec<u64>)>,
}

impl LoadGen {
    #[must_use]
    pub fn new(cfg: Config) -> Self {
        let shared = Shared {
            stop: AtomicBool::new(false),
            slots: (0..cfg.threads).map(|_| Mutex::new(Slot::default())).collect(),
            backlog: (0..cfg.threads).map(|_| AtomicU64::new(0)).collect(),
        };
        Self {
            cfg: Arc::new(cfg),
            shared: Arc::new(shared),
            handles: Vec::new(),
            mark: None,
        }
    }

    #[must_use]
    pub fn threads(&self) -> usize {
        self.cfg.threads
    }

    /// Open every connection (so a dead server fails here, not silently later), then start the threads.
    ///
    /// # Errors
    /// `Error::InvalidArgument` when already started; the I/O error of the first connection that fails.
    pub fn start(&mut self) -> std::result::Result<(), StartError> {
        if !self.handles.is_empty() || self.shared.stop.load(Ordering::Relaxed) {
            return Err(StartError::State("LoadGenerator was already started"));
        }
        let mut shares: Vec<Vec<TcpStream>> = (0..self.cfg.threads).map(|_| Vec::new()).collect();
        for i in 0..self.cfg.connections {
            let stream = worker::connect(self.cfg.addr, self.cfg.timeout).map_err(StartError::Connect)?;
            shares[i % self.cfg.threads].push(stream);
        }
        let origin = Instant::now();
        for (index, streams) in shares.into_iter().enumerate() {
            let (config, state) = (Arc::clone(&self.cfg), Arc::clone(&self.shared));
            let handle = std::thread::Builder::new()
                .name(format!("driftline-loadgen-{index}"))
                .spawn(move || worker::run(config, state, index, streams, origin))
                .map_err(StartError::Connect)?;
            self.handles.push(handle);
        }
        self.mark = Some((origin, vec![0; self.cfg.threads]));
        Ok(())
    }

    fn swap(&mut self) -> Window {
        let now = Instant::now();
        let (since, cpu_before) = self.mark.take().unwrap_or((now, vec![0; self.cfg.threads]));
        let mut out = Window {
            seconds: now.duration_since(since).as_secs_f64(),
            latencies_us: Vec::new(),
            unstored: 0,
            errors: 0,
            sent: 0,
            backlog: 0,
            generator_cpu_s: 0.0,
            threads: self.cfg.threads,
        };
        let mut cpu_now = Vec::with_capacity(self.cfg.threads);
        for (i, slot) in self.shared.slots.iter().enumerate() {
            let taken = std::mem::take(&mut *slot.lock());
            out.latencies_us.extend_from_slice(&taken.latencies_us);
            out.unstored += taken.unstored;
            out.errors += taken.errors;
            out.sent += taken.sent;
            // The slot keeps the thread's CPU clock across swaps; mem::take zeroed it, so put it back.
            slot.lock().cpu_ns = taken.cpu_ns;
            out.generator_cpu_s += taken.cpu_ns.saturating_sub(cpu_before[i]) as f64 / 1e9;
            cpu_now.push(taken.cpu_ns);
            out.backlog += self.shared.backlog[i].load(Ordering::Relaxed);
        }
        self.mark = Some((now, cpu_now));
        out
    }

    /// Discard what was counted so far, wait `seconds`, and return what the threads counted meanwhile.
    ///
    /// # Errors
    /// When the generator is not running.
    pub fn window(&mut self, seconds: f64) -> Result<Window> {
        if self.handles.is_empty() {
            return Err(Error::InvalidArgument(
                "LoadGenerator is not running (call start() first)".into(),
            ));
        }
        self.swap();
        let end = Instant::now() + Duration::from_secs_f64(seconds);
        while Instant::now() < end && !self.shared.stop.load(Ordering::Relaxed) {
            std::thread::sleep(
                end.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
            );
        }
        let mut out = self.swap();
        if !self.cfg.open_loop() {
            out.backlog = 0;
        }
        Ok(out)
    }

    /// Stop and join every thread (each notices within one 20 ms tick).
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for LoadGen {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Debug)]
pub enum StartError {
    State(&'static str),
    Connect(std::io::Error),
}
