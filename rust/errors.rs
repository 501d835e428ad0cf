//! `CoreError`, the Python exception types of `_core`, and the one conversion between them.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

create_exception!(
    driftline._core,
    CoreError,
    PyException,
    "Base class of every error raised by driftline._core."
);
create_exception!(
    driftline._core,
    QueueFull,
    CoreError,
    "The batch queue is at max_queue_size."
);
create_exception!(
    driftline._core,
    QueueClosed,
    CoreError,
    "The batch queue is closed and accepts no new requests."
);
create_exception!(
    driftline._core,
    DriftInputError,
    CoreError,
    "Drift input is malformed (shape, dtype, feature names)."
);

/// Every failure the Rust core can report; only this module turns it into a Python exception.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("queue is full ({0} requests queued, max_queue_size reached)")]
    QueueFull(usize),
    #[error("queue is closed")]
    QueueClosed,
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    DriftInput(String),
}

impl From<Error> for PyErr {
    fn from(err: Error) -> Self {
        let msg = err.to_string();
        match err {
            Error::QueueFull(_) => QueueFull::new_err(msg),
            Error::QueueClosed => QueueClosed::new_err(msg),
            Error::InvalidArgument(_) => PyValueError::new_err(msg),
            Error::DriftInput(_) => DriftInputError::new_err(msg),
        }
    }
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("CoreError", py.get_type::<CoreError>())?;
    m.add("QueueFull", py.get_type::<QueueFull>())?;
    m.add("QueueClosed", py.get_type::<QueueClosed>())?;
    m.add("DriftInputError", py.get_type::<DriftInputError>())?;
    Ok(())
}
