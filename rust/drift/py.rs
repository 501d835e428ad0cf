//! Python bindings of the drift core: `ReferenceProfile`, `DriftWindow`, `drift_stats` (the only pyo3 file here).

use super::compare::{compare, current_from_array, current_from_window, histograms_of_array, Column};
use super::profile::Profile;
use super::window::WindowState;
use super::{Binning, Stat};
use crate::errors::Error;
use numpy::{PyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::sync::Arc;

/// A borrowed (rows, features) float array, float64 or float32, any memory order.
enum Input<'py> {
    F64(PyReadonlyArray2<'py, f64>),
    F32(PyReadonlyArray2<'py, f32>),
}

fn input<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Input<'py>> {
    if let Ok(a) = obj.extract::<PyReadonlyArray2<'py, f64>>() {
        return Ok(Input::F64(a));
    }
    if let Ok(a) = obj.extract::<PyReadonlyArray2<'py, f32>>() {
        return Ok(Input::F32(a));
    }
    let desc = match obj.extract::<Bound<'py, numpy::PyUntypedArray>>() {
        Ok(a) => format!("a {}-D {} array", a.ndim(), a.dtype()),
        Err(_) => obj
            .get_type()
            .name()
            .map_or_else(|_| "an object".to_string(), |n| n.to_string()),
    };
    Err(Error::DriftInput(format!(
        "{what} must be a 2-D float64 or float32 array (rows, features), got {desc}"
    ))
    .into())
}

/// Runs `$body` with `$view` bound to an `ArrayView2` of either dtype, with the GIL released.
macro_rules! with_view {
    ($py:expr, $input:expr, |$view:ident| $body:expr) => {
        match &$input {
            Input::F64(a) => {
                let $view = a.as_array();
                $py.detach(|| $body)
            }
            Input::F32(a) => {
                let $view = a.as_array();
                $py.detach(|| $body)
            }
        }
    };
}

/// A feature's chart counts as Python sees them: a uint64 array and a dict of new codes.
type PyChartCounts<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyDict>);

fn parse_stats(stats: &[String]) -> Result<Vec<Stat>, Error> {
    stats.iter().map(|s| Stat::parse(s)).collect()
}

fn to_dict(py: Python<'_>, columns: Vec<Column>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in columns {
        d.set_item(k, PyArray1::from_vec(py, v))?;
    }
    Ok(d)
}

fn i64_array<'py>(py: Python<'py>, v: &[u64]) -> Bound<'py, PyArray1<i64>> {
    PyArray1::from_vec(py, v.iter().map(|&c| c as i64).collect())
}

/// The reference side of drift detection: sorted and binned once, immutable, shareable across threads.
#[pyclass(name = "ReferenceProfile", module = "driftline._core", frozen)]
pub struct PyReferenceProfile {
    pub(crate) inner: Arc<Profile>,
}

#[pymethods]
impl PyReferenceProfile {
    /// Builds a profile from a (rows, features) array.
    #[staticmethod]
    #[pyo3(signature = (data, names, categorical, bins = 10))]
    fn build(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        names: Vec<String>,
        categorical: Vec<bool>,
        bins: usize,
    ) -> PyResult<Self> {
        let data = input(data, "reference data")?;
        let profile = with_view!(py, data, |view| Profile::build(&view, names, categorical, bins))?;
        Ok(PyReferenceProfile {
            inner: Arc::new(profile),
        })
    }

    /// Feature names.
    #[getter]
    fn names(&self) -> Vec<String> {
        self.inner.names.clone()
    }

    /// Per feature: whether it is categorical.
    #[getter]
    fn categorical(&self) -> Vec<bool> {
        self.inner.features.iter().map(|f| f.categorical).collect()
    }

    /// Reference rows (NaN included).
    #[getter]
    fn n_rows(&self) -> u64 {
        self.inner.n_rows
    }

    /// Numeric bin count.
    #[getter]
    fn bins(&self) -> usize {
        self.inner.bins
    }

    /// NaN count per feature.
    fn nan_counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        let v: Vec<u64> = self.inner.features.iter().map(|f| f.nan_count).collect();
        i64_array(py, &v)
    }

    /// Quantile edges of a numeric feature (empty for categorical).
    fn edges<'py>(&self, py: Python<'py>, feature: usize) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Ok(PyArray1::from_slice(py, &self.inner.feature(feature)?.edges))
    }

    /// Sorted distinct codes of a categorical feature (empty for numeric).
    fn categories<'py>(&self, py: Python<'py>, feature: usize) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Ok(PyArray1::from_slice(py, &self.inner.feature(feature)?.categories))
    }

    /// Counts per bin (numeric) or per category (categorical).
    fn histogram<'py>(&self, py: Python<'py>, feature: usize) -> PyResult<Bound<'py, PyArray1<i64>>> {
        Ok(i64_array(py, &self.inner.feature(feature)?.hist))
    }

    /// Sorted non-NaN reference values of a numeric feature.
    fn sorted_values<'py>(&self, py: Python<'py>, feature: usize) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Ok(PyArray1::from_slice(py, &self.inner.feature(feature)?.sorted))
    }

    /// The versioned binary format.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let inner = Arc::clone(&self.inner);
        let bytes = py.detach(move || inner.to_bytes());
        PyBytes::new(py, &bytes)
    }

    /// Parses `to_bytes` output.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let profile = py.detach(|| Profile::from_bytes(data))?;
        Ok(PyReferenceProfile {
            inner: Arc::new(profile),
        })
    }

    /// Every requested statistic against a current array or a `DriftWindow`.
    #[pyo3(signature = (current, stats, binning = "quantile"))]
    fn compare<'py>(
        &self,
        py: Python<'py>,
        current: &Bound<'py, PyAny>,
        stats: Vec<String>,
        binning: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let stats = parse_stats(&stats)?;
        let binning = Binning::parse(binning)?;
        let profile = &*self.inner;
        if let Ok(window) = current.cast::<PyDriftWindow>() {
            let window = window.get();
            window.check_profile(profile)?;
            let columns = py.detach(|| {
                let cur = current_from_window(profile, &window.state.lock(), &stats, binning);
                compare(profile, &cur, &stats, binning)
            });
            return to_dict(py, columns);
        }
        let data = input(current, "current data")?;
        let columns = with_view!(py, data, |view| current_from_array(profile, &view, &stats, binning)
            .map(|cur| compare(profile, &cur, &stats, binning)))?;
        to_dict(py, columns)
    }

    /// For report charts: per feature, counts of a current array on the profile's bins or categories, and a
    /// dict of the categorical codes the reference never saw (code -> count).
    fn histograms<'py>(&self, py: Python<'py>, current: &Bound<'py, PyAny>) -> PyResult<Vec<PyChartCounts<'py>>> {
        let profile = &*self.inner;
        let data = input(current, "current data")?;
        let per_feature = with_view!(py, data, |view| histograms_of_array(profile, &view))?;
        per_feature
            .into_iter()
            .map(|(counts, new)| {
                let d = PyDict::new(py);
                for (code, count) in new {
                    d.set_item(code, count)?;
                }
                Ok((PyArray1::from_vec(py, counts), d))
            })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "ReferenceProfile(features={}, n_rows={}, bins={})",
            self.inner.features.len(),
            self.inner.n_rows,
            self.inner.bins
        )
    }
}

/// A live, mergeable window of current traffic on one profile; thread-safe (internal mutex).
#[pyclass(name = "DriftWindow", module = "driftline._core", frozen)]
pub struct PyDriftWindow {
    profile: Arc<Profile>,
    state: Mutex<WindowState>,
}

impl PyDriftWindow {
    fn check_profile(&self, profile: &Profile) -> Result<(), Error> {
        let same = std::ptr::eq(Arc::as_ptr(&self.profile), std::ptr::from_ref(profile)) || {
            self.profile.features.len() == profile.features.len()
                && self.profile.features.iter().zip(&profile.features).all(|(a, b)| {
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
                    a.categorical == b.categorical
                        && bits(&a.edges) == bits(&b.edges)
                        && bits(&a.categories) == bits(&b.categories)
                })
        };
        if same {
            Ok(())
        } else {
            Err(Error::DriftInput(
                "the drift window was built on a different reference profile".into(),
            ))
        }
    }

    fn feature(&self, feature: usize) -> Result<(), Error> {
        self.profile.feature(feature).map(|_| ())
    }
}

#[pymethods]
impl PyDriftWindow {
    #[new]
    #[pyo3(signature = (profile, sample_cap = 100_000, seed = 0))]
    fn new(profile: &Bound<'_, PyReferenceProfile>, sample_cap: usize, seed: u64) -> Self {
        let profile = Arc::clone(&profile.get().inner);
        let state = Mutex::new(WindowState::new(&profile, sample_cap, seed));
        PyDriftWindow { profile, state }
    }

    /// Adds a (rows, features) batch (GIL released).
    fn update(&self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = input(batch, "batch")?;
        let profile = &*self.profile;
        with_view!(py, data, |view| self.state.lock().update(profile, &view))?;
        Ok(())
    }

    /// Merges another window on the same profile into this one.
    fn merge(&self, py: Python<'_>, other: &Bound<'_, PyDriftWindow>) -> PyResult<()> {
        let other = other.get();
        other.check_profile(&self.profile)?;
        py.detach(|| {
            // Snapshot first: merging a window into itself must not take the same lock twice.
            let snapshot = other.state.lock().clone();
            self.state.lock().merge(&snapshot)
        })?;
        Ok(())
    }

    /// Clears the window.
    fn reset(&self) {
        self.state.lock().reset(&self.profile);
    }

    /// Rows seen since the last reset.
    #[getter]
    fn n_rows(&self) -> u64 {
        self.state.lock().n_rows
    }

    /// Counts on the profile's bins (numeric) or categories (categorical).
    fn histogram<'py>(&self, py: Python<'py>, feature: usize) -> PyResult<Bound<'py, PyArray1<i64>>> {
        self.feature(feature)?;
        Ok(i64_array(py, &self.state.lock().features[feature].hist))
    }

    /// Codes the reference never saw, with their counts.
    fn new_categories<'py>(&self, py: Python<'py>, feature: usize) -> PyResult<Bound<'py, PyDict>> {
        self.feature(feature)?;
        let d = PyDict::new(py);
        let mut pairs: Vec<(f64, u64)> = self.state.lock().features[feature]
            .new_categories
            .iter()
            .map(|(&k, &c)| (f64::from_bits(k), c))
            .collect();
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        for (k, c) in pairs {
            d.set_item(k, c)?;
        }
        Ok(d)
    }

    /// The reservoir sample of a feature (all values while under the cap).
    fn sample<'py>(&self, py: Python<'py>, feature: usize) -> PyResult<Bound<'py, PyArray1<f64>>> {
        self.feature(feature)?;
        Ok(PyArray1::from_vec(
            py,
            self.state.lock().features[feature].sample.clone(),
        ))
    }

    /// (count, mean, std with ddof 0, min, max) of a feature's non-NaN values.
    fn moments(&self, feature: usize) -> PyResult<(u64, f64, f64, f64, f64)> {
        self.feature(feature)?;
        let st = self.state.lock();
        let f = &st.features[feature];
        if f.count == 0 {
            return Ok((0, f64::NAN, f64::NAN, f64::NAN, f64::NAN));
        }
        Ok((f.count, f.mean, f.std(), f.min, f.max))
    }

    /// The versioned binary format (without the profile).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = py.detach(|| self.state.lock().to_bytes());
        PyBytes::new(py, &bytes)
    }

    /// Parses `to_bytes` output for `profile`.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, profile: &Bound<'_, PyReferenceProfile>, data: &[u8]) -> PyResult<Self> {
        let profile = Arc::clone(&profile.get().inner);
        let state = py.detach(|| WindowState::from_bytes(&profile, data))?;
        Ok(PyDriftWindow {
            profile,
            state: Mutex::new(state),
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "DriftWindow(features={}, n_rows={})",
            self.profile.features.len(),
            self.state.lock().n_rows
        )
    }
}

/// One-shot comparison of two arrays, without keeping a profile.
#[pyfunction]
#[pyo3(signature = (reference, current, categorical, stats, bins = 10, binning = "quantile"))]
fn drift_stats<'py>(
    py: Python<'py>,
    reference: &Bound<'py, PyAny>,
    current: &Bound<'py, PyAny>,
    categorical: Vec<bool>,
    stats: Vec<String>,
    bins: usize,
    binning: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let stats = parse_stats(&stats)?;
    let binning = Binning::parse(binning)?;
    let reference = input(reference, "reference data")?;
    let current = input(current, "current data")?;
    let names: Vec<String> = (0..categorical.len()).map(|j| format!("f{j}")).collect();
    let profile = with_view!(py, reference, |view| Profile::build(&view, names, categorical, bins))?;
    let columns = with_view!(py, current, |view| current_from_array(&profile, &view, &stats, binning)
        .map(|cur| compare(&profile, &cur, &stats, binning)))?;
    to_dict(py, columns)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyReferenceProfile>()?;
    m.add_class::<PyDriftWindow>()?;
    m.add_function(wrap_pyfunction!(drift_stats, m)?)?;
    Ok(())
}
