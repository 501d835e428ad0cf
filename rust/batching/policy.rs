//! When a batch is sent and which requests it holds: a pure function of the queue state and `now`.
//!
//! Triton's dynamic batcher rule, with one change: a free instance never waits while no instance is busy (nothing
//! else is in flight, so nothing is batching up behind the request and waiting would only add latency).

use std::collections::VecDeque;

/// One queued request: metadata only, the arrays stay in Python.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Unique id handed back to Python.
    pub ticket: u64,
    /// Rows (the batch dimension) this request adds to a batch.
    pub rows: usize,
    /// Requests with different keys (other non-batch dimensions) never share a batch.
    pub shape_key: u64,
    /// When it was queued, in microseconds of the queue's clock.
    pub enqueued_us: u64,
    /// When it expires, if it has a timeout.
    pub deadline_us: Option<u64>,
}

/// Batching settings, validated by the queue's constructor.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Max rows per batch; 0 turns batching off (every request is its own batch).
    pub max_batch_size: usize,
    /// Row counts sent as soon as they are reached, ascending.
    pub preferred_batch_sizes: Vec<usize>,
    /// How long a free instance waits for a batch to grow while another instance is busy.
    pub max_queue_delay_us: u64,
}

/// What a free instance should do now.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send these requests (in this order) as one batch.
    Dispatch(Vec<Request>),
    /// Nothing to send before this time (a delay or a deadline ends then), unless something changes.
    WaitUntil(u64),
    /// The queue is empty.
    Empty,
}

/// The queue's contents: one FIFO per priority level, level 0 first.
#[derive(Debug, Default)]
pub struct Levels {
    /// The FIFOs, highest priority first.
    pub queues: Vec<VecDeque<Request>>,
}

impl Levels {
    /// Empty queues for `levels` priority levels.
    #[must_use]
    pub fn new(levels: usize) -> Self {
        Self {
            queues: (0..levels).map(|_| VecDeque::new()).collect(),
        }
    }

    /// Queued requests over all levels.
    #[must_use]
    pub fn len(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    /// True when nothing is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.queues.iter().all(VecDeque::is_empty)
    }

    /// Remove and return every request whose deadline is at or before `now`.
    pub fn take_expired(&mut self, now: u64) -> Vec<Request> {
        let mut expired = Vec::new();
        for queue in &mut self.queues {
            if queue.iter().any(|r| r.deadline_us.is_some_and(|d| d <= now)) {
                let (gone, kept): (Vec<_>, Vec<_>) =
                    queue.drain(..).partition(|r| r.deadline_us.is_some_and(|d| d <= now));
                expired.extend(gone);
                queue.extend(kept);
            }
        }
        expired
    }

    /// Remove one request by ticket; true if it was queued.
    pub fn remove(&mut self, ticket: u64) -> bool {
        for queue in &mut self.queues {
            if let Some(pos) = queue.iter().position(|r| r.ticket == ticket) {
                queue.remove(pos);
                return true;
            }
        }
        false
    }

    fn earliest_deadline(&self) -> Option<u64> {
        self.queues.iter().flatten().filter_map(|r| r.deadline_us).min()
    }
}

/// Decide for one free instance. `busy` is the number of instances running a batch; `closed` means drain at once.
///
/// Expired requests must have been taken out first (`Levels::take_expired`).
pub fn decide(policy: &Policy, levels: &mut Levels, now: u64, busy: usize, closed: bool) -> Decision {
    let Some(head) = levels.queues.iter().find_map(|q| q.front()).cloned() else {
        return Decision::Empty;
    };
    if policy.max_batch_size == 0 {
        levels.remove(head.ticket);
        return Decision::Dispatch(vec![head]);
    }
    // Candidates: same shape key, priority order then FIFO, stopping at the first that does not fit.
    let mut picked: Vec<(usize, usize)> = Vec::new(); // (level, index)
    let mut rows = 0usize;
    let mut oldest = head.enqueued_us;
    'levels: for (level, queue) in levels.queues.iter().enumerate() {
        for (index, request) in queue.iter().enumerate() {
            if request.shape_key != head.shape_key {
                continue;
            }
            if rows + request.rows > policy.max_batch_size {
                break 'levels;
            }
            rows += request.rows;
            oldest = oldest.min(request.enqueued_us);
            picked.push((level, index));
        }
    }
    let largest_preferred = policy.preferred_batch_sizes.last().copied();
    let waited = now.saturating_sub(oldest);
    let send_now = closed
        || busy == 0
        || policy.max_queue_delay_us == 0
        || rows >= policy.max_batch_size
        || waited >= policy.max_queue_delay_us
        || largest_preferred.is_some_and(|p| rows >= p);
    if !send_now {
        let delay_end = oldest + policy.max_queue_delay_us;
        let until = levels.earliest_deadline().map_or(delay_end, |d| d.min(delay_end));
        return Decision::WaitUntil(until);
    }
    // A preferred size reached early: send exactly the largest preferred size the candidates can make.
    if !closed && waited < policy.max_queue_delay_us && rows < policy.max_batch_size {
        if let Some(target) = policy.preferred_batch_sizes.iter().rev().find(|&&p| p <= rows) {
            let mut total = 0;
            let mut keep = 0;
            for &(level, index) in &picked {
                let r = levels.queues[level][index].rows;
                if total + r > *target {
                    break;
                }
                total += r;
                keep += 1;
            }
            if total == *target {
                picked.truncate(keep);
            }
        }
    }
    take(levels, &picked)
}

fn take(levels: &mut Levels, picked: &[(usize, usize)]) -> Decision {
    let mut batch = Vec::with_capacity(picked.len());
    // Remove from the back of each level so earlier indices stay valid, then restore dispatch order.
    let mut by_level: Vec<Vec<usize>> = vec![Vec::new(); levels.queues.len()];
    for &(level, index) in picked {
        by_level[level].push(index);
    }
    for (level, indices) in by_level.iter().enumerate() {
        let mut taken = Vec::with_capacity(indices.len());
        for &index in indices.iter().rev() {
            if let Some(r) = levels.queues[level].remove(index) {
                taken.push(r);
            }
        }
        taken.reverse();
        batch.extend(taken);
    }
    Decision::Dispatch(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ticket: u64, rows: usize, at: u64) -> Request {
        Request {
            ticket,
            rows,
            shape_key: 0,
            enqueued_us: at,
            deadline_us: None,
        }
    }

    fn policy(max: usize, preferred: &[usize], delay: u64) -> Policy {
        Policy {
            max_batch_size: max,
            preferred_batch_sizes: preferred.to_vec(),
            max_queue_delay_us: delay,
        }
    }

    fn tickets(d: &Decision) -> Vec<u64> {
        match d {
            Decision::Dispatch(b) => b.iter().map(|r| r.ticket).collect(),
            other => panic!("expected a dispatch, got {other:?}"),
        }
    }

    fn levels_with(reqs: Vec<Request>) -> Levels {
        let mut l = Levels::new(1);
        l.queues[0].extend(reqs);
        l
    }

    #[test]
    fn idle_fast_path_sends_at_once() {
        let mut l = levels_with(vec![req(1, 1, 0)]);
        let d = decide(&policy(8, &[], 1_000_000), &mut l, 1, 0, false);
        assert_eq!(tickets(&d), vec![1]);
        assert!(l.is_empty());
    }

    #[test]
    fn busy_instance_waits_for_the_delay_then_sends() {
        let p = policy(8, &[], 100);
        let mut l = levels_with(vec![req(1, 1, 0), req(2, 2, 10)]);
        assert_eq!(decide(&p, &mut l, 50, 1, false), Decision::WaitUntil(100));
        let d = decide(&p, &mut l, 100, 1, false);
        assert_eq!(tickets(&d), vec![1, 2]);
    }

    #[test]
    fn full_batch_is_sent_without_waiting_and_never_overflows() {
        let p = policy(4, &[], 1000);
        let mut l = levels_with(vec![req(1, 2, 0), req(2, 2, 0), req(3, 1, 0)]);
        assert_eq!(tickets(&decide(&p, &mut l, 1, 1, false)), vec![1, 2]);
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn request_that_does_not_fit_is_not_skipped_over() {
        let p = policy(4, &[], 0);
        let mut l = levels_with(vec![req(1, 3, 0), req(2, 2, 0), req(3, 1, 0)]);
        assert_eq!(tickets(&decide(&p, &mut l, 1, 1, false)), vec![1]);
    }

    #[test]
    fn preferred_size_sends_early_trimmed_to_the_preferred_size() {
        let p = policy(16, &[2, 4], 1000);
        let mut l = levels_with((1..=5).map(|t| req(t, 1, 0)).collect());
        assert_eq!(tickets(&decide(&p, &mut l, 5, 1, false)), vec![1, 2, 3, 4]);
        assert_eq!(l.len(), 1);
        // Below the largest preferred size a busy model waits.
        assert_eq!(decide(&p, &mut l, 6, 1, false), Decision::WaitUntil(1000));
    }

    #[test]
    fn priorities_go_first_and_fifo_within_a_level() {
        let p = policy(8, &[], 0);
        let mut l = Levels::new(2);
        l.queues[1].push_back(req(1, 1, 0));
        l.queues[0].push_back(req(2, 1, 5));
        l.queues[0].push_back(req(3, 1, 6));
        assert_eq!(tickets(&decide(&p, &mut l, 10, 1, false)), vec![2, 3, 1]);
    }

    #[test]
    fn shape_keys_never_mix() {
        let p = policy(8, &[], 0);
        let mut other = req(2, 1, 0);
        other.shape_key = 9;
        let mut l = levels_with(vec![req(1, 1, 0), other, req(3, 1, 0)]);
        assert_eq!(tickets(&decide(&p, &mut l, 1, 1, false)), vec![1, 3]);
        assert_eq!(tickets(&decide(&p, &mut l, 1, 1, false)), vec![2]);
    }

    #[test]
    fn deadlines_expire_and_bound_the_wait() {
        let p = policy(8, &[], 1000);
        let mut timed = req(2, 1, 0);
        timed.deadline_us = Some(300);
        let mut l = levels_with(vec![req(1, 1, 0), timed]);
        assert_eq!(decide(&p, &mut l, 10, 1, false), Decision::WaitUntil(300));
        let expired = l.take_expired(300);
        assert_eq!(expired.iter().map(|r| r.ticket).collect::<Vec<_>>(), vec![2]);
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn batching_off_sends_one_request_whatever_its_rows() {
        let p = policy(0, &[], 1000);
        let mut l = levels_with(vec![req(1, 50, 0), req(2, 1, 0)]);
        assert_eq!(tickets(&decide(&p, &mut l, 0, 3, false)), vec![1]);
    }

    #[test]
    fn closing_drains_without_waiting() {
        let p = policy(8, &[], 1_000_000);
        let mut l = levels_with(vec![req(1, 1, 0)]);
        assert_eq!(tickets(&decide(&p, &mut l, 1, 2, true)), vec![1]);
        assert_eq!(decide(&p, &mut l, 1, 2, true), Decision::Empty);
    }
}
