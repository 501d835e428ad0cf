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

    /// Shape key of the batch's requests (as the signed integer Python passed in).
    #[getter]
    fn shape_key(&self) -> i64 {
        self.inner.shape_key as i64
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

/// A non-negative integer argument, or a ValueError naming it (Python callers pass plain ints).
fn non_negative(name: &str, value: i64) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::InvalidArgument(format!("{name} must be >= 0, got {value}")))
}

fn count(name: &str, value: i64) -> Result<usize, Error> {
    non_negative(name, value).map(|v| v as usize)
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
        priority_levels = 1, default_priority_level = 0, default_timeout_us = 0
    ))]
    fn new(
        max_batch_size: i64,
        preferred_batch_sizes: Vec<i64>,
        max_queue_delay_us: i64,
        max_queue_size: i64,
        priority_levels: i64,
        default_priority_level: i64,
        default_timeout_us: i64,
    ) -> PyResult<Self> {
        let priority_levels = count("priority_levels", priority_levels)?;
        let default_priority_level = count("default_priority_level", default_priority_level)?;
        let max_batch_size = count("max_batch_size", max_batch_size)?;
        let preferred_batch_sizes = preferred_batch_sizes
            .into_iter()
            .map(|size| {
                usize::try_from(size).map_err(|_| {
                    Error::InvalidArgument(format!(
                        "preferred_batch_sizes must be in 1..=max_batch_size ({max_batch_size}), got {size}"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let default_level = if default_priority_level == 0 {
            priority_levels
        } else {
            default_priority_level
        };
        let queue = Queue::new(QueueConfig {
            policy: Policy {
                max_batch_size,
                preferred_batch_sizes,
                max_queue_delay_us: non_negative("max_queue_delay_us", max_queue_delay_us)?,
            },
            max_queue_size: count("max_queue_size", max_queue_size)?,
            priority_levels,
            default_priority_level: default_level,
            default_timeout_us: non_negative("default_timeout_us", default_timeout_us)?,
        })?;
        Ok(Self { queue })
    }

    /// Queue one request of `rows` rows; returns its ticket. Never blocks.
    #[pyo3(signature = (rows, priority = 0, timeout_us = 0, shape_key = 0))]
    fn submit(&self, rows: i64, priority: i64, timeout_us: i64, shape_key: i64) -> PyResult<u64> {
        if rows < 1 {
            return Err(Error::InvalidArgument(format!("rows must be >= 1, got {rows}")).into());
        }
        let priority = count("priority", priority)?;
        let timeout_us = non_negative("timeout_us", timeout_us)?;
        // Python's hash() is signed: keep the bits, the key is only compared for equality.
        Ok(self
            .queue
            .submit(rows as usize, priority, timeout_us, shape_key as u64)?)
    }

    /// Wait (GIL released) for the next batch; None once closed and drained, or when `timeout_ms` passes.
    #[pyo3(signature = (timeout_ms = None))]
    fn next_batch(&self, py: Python<'_>, timeout_ms: Option<i64>) -> PyResult<Option<PyBatch>> {
        let timeout = timeout_ms.map(|ms| non_negative("timeout_ms", ms)).transpose()?;
        let queue = &self.queue;
        Ok(py
            .detach(|| queue.next_batch(timeout.map(Duration::from_millis)))
            .map(|inner| PyBatch { inner }))
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
