//! The thread-safe batch queue: submit from the event loop, block in `next_batch` from worker threads.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::batching::policy::{decide, Decision, Levels, Policy, Request};
use crate::errors::{Error, Result};

/// Queue settings (Triton's dynamic batching fields).
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Batching rule.
    pub policy: Policy,
    /// Max queued requests over all levels; 0 = unbounded.
    pub max_queue_size: usize,
    /// Number of priority levels (priority 1 is the highest).
    pub priority_levels: usize,
    /// Level used when a request gives priority 0 (1-based).
    pub default_priority_level: usize,
    /// Queue timeout when a request gives none, in microseconds; 0 = none.
    pub default_timeout_us: u64,
}

/// A batch handed to one worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Requests to run, in order.
    pub tickets: Vec<u64>,
    /// `tickets.len() + 1` row offsets into the batch.
    pub offsets: Vec<usize>,
    /// Requests that expired in the queue; they must fail, never run.
    pub expired: Vec<u64>,
    /// Microseconds each ticket waited.
    pub queue_us: Vec<u64>,
    /// 0, 1, 2, ... over every batch handed out (preserve_ordering uses it).
    pub seq: u64,
    /// The shape key shared by the batch's requests.
    pub shape_key: u64,
}

/// Counters for stats().
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Requests accepted.
    pub submitted: u64,
    /// Requests handed to workers.
    pub dispatched_requests: u64,
    /// Batches handed to workers (with at least one request).
    pub dispatched_batches: u64,
    /// Requests that expired in the queue.
    pub expired: u64,
    /// Requests removed by cancel().
    pub cancelled: u64,
    /// Requests refused because the queue was full.
    pub rejected_full: u64,
}

#[derive(Debug)]
struct State {
    levels: Levels,
    busy: usize,
    closed: bool,
    next_ticket: u64,
    next_seq: u64,
    counters: Counters,
}

/// The queue shared by the event loop and the worker threads.
#[derive(Debug)]
pub struct Queue {
    config: QueueConfig,
    state: Mutex<State>,
    ready: Condvar,
    epoch: Instant,
}

impl Queue {
    /// A new, open, empty queue.
    ///
    /// # Errors
    /// `InvalidArgument` when the settings are inconsistent.
    pub fn new(config: QueueConfig) -> Result<Self> {
        let p = &config.policy;
        if let Some(bad) = p
            .preferred_batch_sizes
            .iter()
            .find(|&&s| s == 0 || s > p.max_batch_size.max(1))
        {
            return Err(Error::InvalidArgument(format!(
                "preferred_batch_sizes must be in 1..=max_batch_size ({}), got {bad}",
                p.max_batch_size
            )));
        }
        if config.priority_levels == 0 {
            return Err(Error::InvalidArgument("priority_levels must be >= 1".into()));
        }
        if config.default_priority_level == 0 || config.default_priority_level > config.priority_levels {
            return Err(Error::InvalidArgument(format!(
                "default_priority_level must be within 1..={} (0 means the lowest)",
                config.priority_levels
            )));
        }
        let mut config = config;
        config.policy.preferred_batch_sizes.sort_unstable();
        config.policy.preferred_batch_sizes.dedup();
        let levels = config.priority_levels;
        Ok(Self {
            config,
            state: Mutex::new(State {
                levels: Levels::new(levels),
                busy: 0,
                closed: false,
                next_ticket: 1,
                next_seq: 0,
                counters: Counters::default(),
            }),
            ready: Condvar::new(),
            epoch: Instant::now(),
        })
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Queue one request; returns its ticket.
    ///
    /// # Errors
    /// `QueueClosed`, `QueueFull`, or `InvalidArgument` for bad rows or priority.
    pub fn submit(&self, rows: usize, priority: usize, timeout_us: u64, shape_key: u64) -> Result<u64> {
        let max = self.config.policy.max_batch_size;
        if rows == 0 {
            return Err(Error::InvalidArgument("rows must be >= 1, got 0".into()));
        }
        if max > 0 && rows > max {
            return Err(Error::InvalidArgument(format!(
                "rows ({rows}) exceeds max_batch_size ({max})"
            )));
        }
        if priority > self.config.priority_levels {
            return Err(Error::InvalidArgument(format!(
                "priority must be in 0..={} (0 = the default level), got {priority}",
                self.config.priority_levels
            )));
        }
        let level = if priority == 0 {
            self.config.default_priority_level
        } else {
            priority
        } - 1;
        let timeout = if timeout_us == 0 {
            self.config.default_timeout_us
        } else {
            timeout_us
        };
        let now = self.now_us();
        let mut state = self.state.lock();
        if state.closed {
            return Err(Error::QueueClosed);
        }
        let queued = state.levels.len();
        if self.config.max_queue_size > 0 && queued >= self.config.max_queue_size {
            state.counters.rejected_full += 1;
            return Err(Error::QueueFull(queued));
        }
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.counters.submitted += 1;
        state.levels.queues[level].push_back(Request {
            ticket,
            rows,
            shape_key,
            enqueued_us: now,
            deadline_us: (timeout > 0).then(|| now + timeout),
        });
        drop(state);
        self.ready.notify_one();
        Ok(ticket)
    }

    /// Block until a batch is ready (or `timeout` passes); `None` when closed and drained, or timed out.
    pub fn next_batch(&self, timeout: Option<Duration>) -> Option<Batch> {
        let give_up = timeout.map(|t| Instant::now() + t);
        let mut state = self.state.lock();
        loop {
            let now = self.now_us();
            let expired = state.levels.take_expired(now);
            let (busy, closed) = (state.busy, state.closed);
            let decision = decide(&self.config.policy, &mut state.levels, now, busy, closed);
            let wait_until = match decision {
                Decision::Dispatch(requests) => return Some(Self::hand_out(&mut state, requests, expired, now)),
                _ if !expired.is_empty() => return Some(Self::hand_out(&mut state, Vec::new(), expired, now)),
                Decision::Empty if state.closed => {
                    drop(state);
                    // Let every other waiter see the drained, closed queue too.
                    self.ready.notify_all();
                    return None;
                }
                Decision::Empty => None,
                Decision::WaitUntil(at) => Some(self.epoch + Duration::from_micros(at)),
            };
            let deadline = match (wait_until, give_up) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // The caller's own timeout is over: give the thread back, whatever is still waiting in the queue.
            if give_up.is_some_and(|g| Instant::now() >= g) {
                return None;
            }
            match deadline {
                Some(at) => {
                    self.ready.wait_until(&mut state, at);
                }
                None => self.ready.wait(&mut state),
            }
        }
    }

    fn hand_out(state: &mut State, requests: Vec<Request>, expired: Vec<Request>, now: u64) -> Batch {
        let mut offsets = Vec::with_capacity(requests.len() + 1);
        offsets.push(0);
        let mut rows = 0;
        for r in &requests {
            rows += r.rows;
            offsets.push(rows);
        }
        state.busy += 1;
        state.counters.expired += expired.len() as u64;
        if !requests.is_empty() {
            state.counters.dispatched_batches += 1;
            state.counters.dispatched_requests += requests.len() as u64;
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        Batch {
            shape_key: requests.first().map_or(0, |r| r.shape_key),
            queue_us: requests.iter().map(|r| now.saturating_sub(r.enqueued_us)).collect(),
            tickets: requests.iter().map(|r| r.ticket).collect(),
            offsets,
            expired: expired.iter().map(|r| r.ticket).collect(),
            seq,
        }
    }

    /// The caller finished the batch `next_batch` gave it: its instance is free again.
    pub fn task_done(&self) {
        let mut state = self.state.lock();
        state.busy = state.busy.saturating_sub(1);
        drop(state);
        // A waiting instance may now be the only one left: with nothing busy it sends at once.
        self.ready.notify_all();
    }

    /// Remove a request that is still queued; false if it was already handed out or unknown.
    pub fn cancel(&self, ticket: u64) -> bool {
        let mut state = self.state.lock();
        let removed = state.levels.remove(ticket);
        if removed {
            state.counters.cancelled += 1;
        }
        removed
    }

    /// Refuse new requests; queued ones are still handed out, then every waiter gets `None`.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_all();
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Requests queued now.
    pub fn len(&self) -> usize {
        self.state.lock().levels.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the queue is open, empty and no instance is running a batch: a request can run right now.
    pub fn is_idle(&self) -> bool {
        let state = self.state.lock();
        !state.closed && state.busy == 0 && state.levels.is_empty()
    }

    /// (queued requests, queued rows, busy instances, counters).
    pub fn snapshot(&self) -> (usize, usize, usize, Counters) {
        let state = self.state.lock();
        let rows = state.levels.queues.iter().flatten().map(|r| r.rows).sum();
        (state.levels.len(), rows, state.busy, state.counters.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    fn queue(max: usize, delay: u64, size: usize) -> Queue {
        Queue::new(QueueConfig {
            policy: Policy {
                max_batch_size: max,
                preferred_batch_sizes: vec![],
                max_queue_delay_us: delay,
            },
            max_queue_size: size,
            priority_levels: 2,
            default_priority_level: 2,
            default_timeout_us: 0,
        })
        .expect("valid config")
    }

    #[test]
    fn submit_validates_and_fills_up() {
        let q = queue(4, 0, 2);
        assert!(matches!(q.submit(0, 0, 0, 0), Err(Error::InvalidArgument(_))));
        assert!(matches!(q.submit(5, 0, 0, 0), Err(Error::InvalidArgument(_))));
        assert!(matches!(q.submit(1, 3, 0, 0), Err(Error::InvalidArgument(_))));
        q.submit(1, 0, 0, 0).expect("room");
        q.submit(1, 1, 0, 0).expect("room");
        assert!(matches!(q.submit(1, 0, 0, 0), Err(Error::QueueFull(2))));
        q.close();
        assert!(matches!(q.submit(1, 0, 0, 0), Err(Error::QueueClosed)));
    }

    #[test]
    fn batches_offsets_and_priorities() {
        let q = queue(8, 0, 0);
        let low = q.submit(2, 2, 0, 0).expect("ok");
        let high = q.submit(3, 1, 0, 0).expect("ok");
        let b = q.next_batch(None).expect("a batch");
        assert_eq!(b.tickets, vec![high, low]);
        assert_eq!(b.offsets, vec![0, 3, 5]);
        assert_eq!(b.seq, 0);
        q.task_done();
    }

    #[test]
    fn close_drains_then_releases_every_waiter() {
        let q = Arc::new(queue(1, 0, 0));
        for _ in 0..5 {
            q.submit(1, 0, 0, 0).expect("ok");
        }
        q.close();
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let q = Arc::clone(&q);
                thread::spawn(move || {
                    let mut n = 0;
                    while let Some(b) = q.next_batch(None) {
                        n += b.tickets.len();
                        q.task_done();
                    }
                    n
                })
            })
            .collect();
        let total: usize = workers.into_iter().map(|w| w.join().expect("worker")).sum();
        assert_eq!(total, 5);
    }

    #[test]
    fn expired_requests_come_back_separately() {
        let q = queue(8, 0, 0);
        let t = q.submit(1, 0, 1, 0).expect("ok");
        thread::sleep(Duration::from_millis(2));
        let b = q.next_batch(Some(Duration::from_millis(10))).expect("expired batch");
        assert!(b.tickets.is_empty());
        assert_eq!(b.expired, vec![t]);
        q.task_done();
        assert!(q.next_batch(Some(Duration::from_millis(1))).is_none());
    }

    #[test]
    fn idle_means_open_empty_and_nothing_running() {
        let q = queue(8, 0, 0);
        assert!(q.is_idle());
        q.submit(1, 0, 0, 0).expect("ok");
        assert!(!q.is_idle());
        let _batch = q.next_batch(None).expect("batch");
        assert!(!q.is_idle());
        q.task_done();
        assert!(q.is_idle());
        q.close();
        assert!(!q.is_idle());
    }

    #[test]
    fn cancel_removes_only_queued() {
        let q = queue(8, 0, 0);
        let a = q.submit(1, 0, 0, 0).expect("ok");
        let b = q.submit(1, 0, 0, 0).expect("ok");
        assert!(q.cancel(b));
        assert!(!q.cancel(b));
        assert_eq!(q.next_batch(None).expect("batch").tickets, vec![a]);
    }
}
