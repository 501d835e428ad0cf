//! Python bindings of the batch queue: `BatchQueue` and the `Batch` it hands out.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::batching::policy::Policy;
use crate::batching::queue::{Batch, Queue, QueueConfig};
use crate::errors::Error;

/// A batch for one worker: which requests, their row offsets, and which requests expired.
#[pyclass(name = "Batch", module = "driftline._core", frozen)]
pub struct PyBatch {
    inner: Batch,
}

#[pymethods]
impl PyBatch {
    /// Tickets of the requests to run, in order.
    #[getter]
    fn tickets(&self) -> Vec<u64> {
        self.inner.tickets.clone()
    }

    /// Row offsets: request `i` is rows `offsets[i]..offsets[i + 1]`.
    #[getter]
    fn offsets(&self) -> Vec<usize> {
        self.inner.offsets.clone()
    }

    /// Total rows.
    #[getter]
    fn rows(&self) -> usize {
        self.inner.offsets.last().copied().unwrap_or(0)
    }

    /// Tickets that expired in the queue (answer them with an error, never run them).
    #[getter]
    fn expired(&self) -> Vec<u64> {
        self.inner.expired.clone()
    }

    /// Microseconds each ticket waited in the queue.
    #[getter]
    fn queue_us(&self) -> Vec<u64> {
        self.inner.queue_us.clone()
    }

    /// Sequence number over every batch the queue handed out.
    #[getter]
    fn seq(&self) -> u64 {
        self.inner.seq
    }

    /// Shape key of the batch's requests.
    #[getter]
    fn shape_key(&self) -> u64 {
        self.inner.shape_key
    }

    fn __len__(&self) -> usize {
        self.inner.tickets.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Batch(seq={}, tickets={:?}, rows={}, expired={:?})",
            self.inner.seq,
            self.inner.tickets,
            self.rows(),
            self.inner.expired
        )
    }
}

/// A dynamic batching queue (Triton's rule, plus an idle fast path); see `rust/batching/policy.rs`.
#[pyclass(name = "BatchQueue", module = "driftline._core", frozen)]
pub struct PyBatchQueue {
    queue: Queue,
}

#[pymethods]
impl PyBatchQueue {
    #[new]
    #[pyo3(signature = (
        max_batch_size, *, preferred_batch_sizes = Vec::new(), max_queue_delay_us = 0, max_queue_size = 0,
        priority_levels = 1, default_priority_level = 0, default_timeout_us = 0, instances = 1
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        max_batch_size: usize,
        preferred_batch_sizes: Vec<usize>,
        max_queue_delay_us: u64,
        max_queue_size: usize,
        priority_levels: usize,
        default_priority_level: usize,
        default_timeout_us: u64,
        instances: usize,
    ) -> PyResult<Self> {
        if instances == 0 {
            return Err(Error::InvalidArgument("instances must be at least 1".into()).into());
        }
        let default_level = if default_priority_level == 0 {
            priority_levels
        } else {
            default_priority_level
        };
        let queue = Queue::new(QueueConfig {
            policy: Policy {
                max_batch_size,
                preferred_batch_sizes,
                max_queue_delay_us,
            },
            max_queue_size,
            priority_levels,
            default_priority_level: default_level,
            default_timeout_us,
        })?;
        Ok(Self { queue })
    }

    /// Queue one request of `rows` rows; returns its ticket. Never blocks.
    #[pyo3(signature = (rows, priority = 0, timeout_us = 0, shape_key = 0))]
    fn submit(&self, rows: usize, priority: usize, timeout_us: u64, shape_key: u64) -> PyResult<u64> {
        Ok(self.queue.submit(rows, priority, timeout_us, shape_key)?)
    }

    /// Wait (GIL released) for the next batch; None once closed and drained, or when `timeout_ms` passes.
    #[pyo3(signature = (timeout_ms = None))]
    fn next_batch(&self, py: Python<'_>, timeout_ms: Option<u64>) -> Option<PyBatch> {
        let queue = &self.queue;
        py.detach(|| queue.next_batch(timeout_ms.map(Duration::from_millis)))
            .map(|inner| PyBatch { inner })
    }

    /// The worker finished its batch; its instance is free.
    fn task_done(&self) {
        self.queue.task_done();
    }

    /// Remove a still-queued request; False if it was already handed out.
    fn cancel(&self, ticket: u64) -> bool {
        self.queue.cancel(ticket)
    }

    /// Refuse new requests and let the workers drain the queue.
    fn close(&self) {
        self.queue.close();
    }

    /// Whether close() was called.
    #[getter]
    fn closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// Counters: queued_requests, queued_rows, busy_instances, submitted, dispatched_*, expired, cancelled, ...
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (queued, rows, busy, c) = self.queue.snapshot();
        let d = PyDict::new(py);
        d.set_item("queued_requests", queued)?;
        d.set_item("queued_rows", rows)?;
        d.set_item("busy_instances", busy)?;
        d.set_item("submitted", c.submitted)?;
        d.set_item("dispatched_requests", c.dispatched_requests)?;
        d.set_item("dispatched_batches", c.dispatched_batches)?;
        d.set_item("expired", c.expired)?;
        d.set_item("cancelled", c.cancelled)?;
        d.set_item("rejected_full", c.rejected_full)?;
        Ok(d)
    }

    /// True when open, empty and no instance is busy (the caller may run a request inline).
    fn idle(&self) -> bool {
        self.queue.is_idle()
    }

    fn __len__(&self) -> usize {
        self.queue.len()
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBatchQueue>()?;
    m.add_class::<PyBatch>()?;
    Ok(())
}
