//! The `driftline._core` extension: dynamic batching queues and drift statistics.
//!
//! This file only registers what the submodules define; logic lives in `batching/` and `drift/`.

pub mod batching;
pub mod drift;
pub mod errors;
pub mod loadgen;
pub mod runtime;

use pyo3::prelude::*;

/// The extension module. `gil_used = false`: every class guards its own state with Rust locks.
#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "build_profile",
        if cfg!(debug_assertions) { "debug" } else { "release" },
    )?;
    errors::register(m)?;
    batching::py::register(m)?;
    drift::py::register(m)?;
    loadgen::py::register(m)?;
    Ok(())
}
