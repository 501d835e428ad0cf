//! Python bindings: `LoadGenerator` and the `LoadWindow` its `window()` returns.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::CoreError;
use crate::loadgen::http::request_bytes;
use crate::loadgen::{Config, LoadGen, StartError, Window, LATENCY_CAP};

const MAX_BODY: usize = 64 << 20;

/// One measurement window of a `LoadGenerator`.
#[pyclass(name = "LoadWindow", module = "driftline._core", frozen)]
pub struct PyLoadWindow {
    inner: Window,
}

#[pymethods]
impl PyLoadWindow {
    #[getter]
    fn seconds(&self) -> f64 {
        self.inner.seconds
    }

    /// Microseconds of every 2xx answer completed in the window (at most ~10M kept; see `unstored`).
    #[getter]
    fn latencies_us<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.inner.latencies_us.clone().into_pyarray(py)
    }

    /// 2xx answers completed past the ~10M latencies a window stores (counted, not stored).
    #[getter]
    fn unstored(&self) -> u64 {
        self.inner.unstored
    }

    #[getter]
    fn errors(&self) -> u64 {
        self.inner.errors
    }

    #[getter]
    fn sent(&self) -> u64 {
        self.inner.sent
    }

    #[getter]
    fn backlog(&self) -> u64 {
        self.inner.backlog
    }

    #[getter]
    fn generator_cpu_s(&self) -> f64 {
        self.inner.generator_cpu_s
    }

    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads
    }

    fn __repr__(&self) -> String {
        let w = &self.inner;
        format!(
            "LoadWindow(seconds={:.3}, completed={}, errors={}, sent={}, backlog={}, generator_cpu_s={:.3})",
            w.seconds,
            w.latencies_us.len() as u64 + w.unstored,
            w.errors,
            w.sent,
            w.backlog,
            w.generator_cpu_s
        )
    }
}

/// HTTP/1.1 load on loopback from Rust threads: closed loop (rate=0), Poisson open loop (rate>0), or a trace.
#[pyclass(name = "LoadGenerator", module = "driftline._core")]
pub struct PyLoadGenerator {
    inner: LoadGen,
}

fn bad(msg: String) -> PyErr {
    PyValueError::new_err(msg)
}

/// Only loopback targets: the project's load generators never aim at another host.
fn loopback(host: &str, port: u16) -> PyResult<(SocketAddr, String)> {
    let ip = if host == "localhost" {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.trim_matches(['[', ']']).parse::<IpAddr>().map_err(|_| {
            bad(format!(
                "host must be a loopback address (127.0.0.1, ::1, localhost), got {host:?}"
            ))
        })?
    };
    if !ip.is_loopback() {
        return Err(bad(format!(
            "host must be a loopback address (127.0.0.1, ::1, localhost), got {host:?}"
        )));
    }
    let header = match ip {
        IpAddr::V6(_) => format!("[{ip}]:{port}"),
        IpAddr::V4(_) => format!("{ip}:{port}"),
    };
    Ok((SocketAddr::new(ip, port), header))
}

fn header_ok(text: &str) -> bool {
    !text.is_empty() && !text.contains(['\r', '\n'])
}

#[pymethods]
impl PyLoadGenerator {
    #[new]
    #[pyo3(signature = (host, port, path, bodies, *, connections, rate = 0.0, arrivals = None, threads = 0,
        headers = None, timeout_s = 10.0, max_backlog = 100_000, max_seconds = 3600.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        host: &str,
        port: u16,
        path: &str,
        bodies: Vec<Bound<'_, PyBytes>>,
        connections: i64,
        rate: f64,
        arrivals: Option<PyReadonlyArray1<'_, f64>>,
        threads: i64,
        headers: Option<Vec<(String, String)>>,
        timeout_s: f64,
        max_backlog: i64,
        max_seconds: f64,
    ) -> PyResult<Self> {
        let (addr, host_header) = loopback(host, port)?;
        if port == 0 {
            return Err(bad("port must be in 1..65535, got 0".into()));
        }
        if !path.starts_with('/') || !header_ok(path) || path.contains(' ') {
            return Err(bad(format!(
                "path must start with '/' and hold no spaces or line breaks, got {path:?}"
            )));
        }
        if !(1..=4096).contains(&connections) {
            return Err(bad(format!("connections must be in 1..4096, got {connections}")));
        }
        if !(0..=64).contains(&threads) {
            return Err(bad(format!("threads must be in 0..64, got {threads}")));
        }
        if !(rate.is_finite() && rate >= 0.0) {
            return Err(bad(format!("rate must be finite and >= 0, got {rate}")));
        }
        if !(timeout_s.is_finite() && timeout_s > 0.0 && timeout_s <= 3600.0) {
            return Err(bad(format!("timeout_s must be in (0, 3600], got {timeout_s}")));
        }
        if !(max_seconds.is_finite() && max_seconds > 0.0 && max_seconds <= 86_400.0) {
            return Err(bad(format!("max_seconds must be in (0, 86400], got {max_seconds}")));
        }
        if !(0..=100_000_000).contains(&max_backlog) {
            return Err(bad(format!("max_backlog must be in 0..100000000, got {max_backlog}")));
        }
        if bodies.is_empty() {
            return Err(bad("bodies must hold at least one request body".into()));
        }
        if let Some((i, b)) = bodies.iter().enumerate().find(|(_, b)| b.as_bytes().len() > MAX_BODY) {
            return Err(bad(format!(
                "bodies[{i}] is {} bytes, over the 64 MiB limit",
                b.as_bytes().len()
            )));
        }
        let headers = headers.unwrap_or_default();
        if let Some((name, value)) = headers
            .iter()
            .find(|(n, v)| !header_ok(n) || n.contains(':') || v.contains(['\r', '\n']))
        {
            return Err(bad(format!("headers: invalid header {name:?}: {value:?}")));
        }
        let arrivals = match arrivals {
            None => None,
            Some(a) => {
                let a = a
                    .as_slice()
                    .map_err(|_| bad("arrivals must be a contiguous float64 array".into()))?;
                if a.is_empty() {
                    return Err(bad("arrivals must hold at least one arrival time".into()));
                }
                if a.iter().any(|t| !t.is_finite() || *t < 0.0) || a.windows(2).any(|w| w[1] < w[0]) {
                    return Err(bad(
                        "arrivals must be finite, >= 0 and ascending (seconds from start)".into()
                    ));
                }
                Some(a.to_vec())
            }
        };
        let connections = connections as usize;
        let threads = if threads == 0 {
            2.min(connections)
        } else {
            (threads as usize).min(connections)
        };
        let requests = bodies
            .iter()
            .map(|b| request_bytes(&host_header, path, &headers, b.as_bytes()))
            .collect();
        Ok(Self {
            inner: LoadGen::new(Config {
                addr,
                requests,
                connections,
                threads,
                rate,
                arrivals,
                timeout: Duration::from_secs_f64(timeout_s),
                max_backlog: max_backlog as usize,
                max_seconds,
                latency_cap: LATENCY_CAP / threads,
            }),
        })
    }

    /// Connect every connection, then start the threads. OSError when the server cannot be reached.
    fn start(&mut self, py: Python<'_>) -> PyResult<()> {
        let inner = &mut self.inner;
        py.detach(|| inner.start()).map_err(|e| match e {
            StartError::State(msg) => CoreError::new_err(msg),
            StartError::Connect(err) => PyOSError::new_err(format!("load generator cannot connect: {err}")),
        })
    }

    /// Wait `seconds` (GIL released) and return what was counted meanwhile.
    fn window(&mut self, py: Python<'_>, seconds: f64) -> PyResult<PyLoadWindow> {
        if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
            return Err(bad(format!("window seconds must be in (0, 3600], got {seconds}")));
        }
        let inner = &mut self.inner;
        let window = py
            .detach(|| inner.window(seconds))
            .map_err(|e| CoreError::new_err(e.to_string()))?;
        Ok(PyLoadWindow { inner: window })
    }

    /// Stop and join the threads (idempotent).
    fn stop(&mut self, py: Python<'_>) {
        let inner = &mut self.inner;
        py.detach(|| inner.stop());
    }

    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&mut self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) {
        self.stop(py);
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLoadGenerator>()?;
    m.add_class::<PyLoadWindow>()?;
    Ok(())
}
