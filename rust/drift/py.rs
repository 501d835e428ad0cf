//! Python bindings (placeholder until the module lands).
use pyo3::prelude::*;

#[allow(clippy::unnecessary_wraps)] // the placeholder keeps the signature the real module will have
pub(crate) fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
