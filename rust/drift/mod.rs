//! Drift statistics (pure Rust, no pyo3): one statistic per module, reference profiles and live windows.
// These modules port scipy/cephes numerics line by line: exact float comparisons (`x == 0.0`, `h == 0`)
// are the reference's semantics, and the short names (n, m, h, g, k) are the papers' notation.
#![allow(clippy::float_cmp, clippy::many_single_char_names, clippy::similar_names)]

pub mod anderson;
pub mod binning;
pub mod chi2;
pub mod codec;
pub mod compare;
pub mod cvm;
pub mod fisher;
pub mod hellinger;
pub mod js;
pub mod kl;
pub mod kolmogorov;
pub mod ks;
pub mod ks_dist;
pub mod profile;
pub mod psi;
pub mod py;
pub mod smirnov;
pub mod sort;
pub mod special;
pub mod wasserstein;
pub mod window;

use crate::errors::{Error, Result};

/// A drift statistic by its docs/drift.md name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stat {
    /// Two-sample Kolmogorov-Smirnov.
    Ks,
    /// First Wasserstein distance.
    Wasserstein,
    /// Wasserstein over max(std(ref), 0.001).
    WassersteinNorm,
    /// Population Stability Index.
    Psi,
    /// Jensen-Shannon distance.
    JensenShannon,
    /// Hellinger distance.
    Hellinger,
    /// Kullback-Leibler divergence.
    Kl,
    /// Two-sample Cramér-von Mises.
    CramerVonMises,
    /// k-sample Anderson-Darling.
    Anderson,
    /// Chi-square homogeneity test.
    Chi2,
    /// Chi-square goodness of fit against the reference.
    Chi2Gof,
    /// Fisher's exact test (binary features).
    FisherExact,
}

impl Stat {
    /// Every statistic, in a stable order.
    pub const ALL: [Stat; 12] = [
        Stat::Ks,
        Stat::Wasserstein,
        Stat::WassersteinNorm,
        Stat::Psi,
        Stat::JensenShannon,
        Stat::Hellinger,
        Stat::Kl,
        Stat::CramerVonMises,
        Stat::Anderson,
        Stat::Chi2,
        Stat::Chi2Gof,
        Stat::FisherExact,
    ];

    /// Parses a statistic name; unknown names are a `DriftInput` error listing the known ones.
    ///
    /// # Errors
    /// `Error::DriftInput` naming the unknown statistic.
    pub fn parse(name: &str) -> Result<Stat> {
        Stat::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| {
            let known: Vec<&str> = Stat::ALL.iter().map(|s| s.name()).collect();
            Error::DriftInput(format!("unknown drift statistic {name:?}; known: {}", known.join(", ")))
        })
    }

    /// The statistic's name, also its result key.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Stat::Ks => "ks",
            Stat::Wasserstein => "wasserstein",
            Stat::WassersteinNorm => "wasserstein_norm",
            Stat::Psi => "psi",
            Stat::JensenShannon => "jensenshannon",
            Stat::Hellinger => "hellinger",
            Stat::Kl => "kl",
            Stat::CramerVonMises => "cramervonmises",
            Stat::Anderson => "anderson",
            Stat::Chi2 => "chi2",
            Stat::Chi2Gof => "chi2_gof",
            Stat::FisherExact => "fisher_exact",
        }
    }

    /// Whether the statistic comes with a p-value (`"<name>_pvalue"`).
    #[must_use]
    pub fn has_pvalue(self) -> bool {
        matches!(
            self,
            Stat::Ks | Stat::CramerVonMises | Stat::Anderson | Stat::Chi2 | Stat::Chi2Gof | Stat::FisherExact
        )
    }

    /// Whether it applies to numeric features.
    #[must_use]
    pub fn numeric(self) -> bool {
        !matches!(self, Stat::Chi2 | Stat::Chi2Gof | Stat::FisherExact)
    }

    /// Whether it applies to categorical features.
    #[must_use]
    pub fn categorical(self) -> bool {
        matches!(
            self,
            Stat::Chi2 | Stat::Chi2Gof | Stat::FisherExact | Stat::Psi | Stat::JensenShannon
        )
    }

    /// Whether it needs the raw (sorted) current values rather than a histogram.
    #[must_use]
    pub fn needs_values(self) -> bool {
        matches!(
            self,
            Stat::Ks | Stat::Wasserstein | Stat::WassersteinNorm | Stat::CramerVonMises | Stat::Anderson
        )
    }
}

/// How PSI/JS/KL/Hellinger bin numeric features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binning {
    /// docs/drift.md default: the reference's quantile edges, proportions floored at 1e-4.
    Quantile,
    /// Evidently's bins (Sturges on the pooled data, or one per value) and zero filling.
    Evidently,
}

impl Binning {
    /// Parses "quantile" or "evidently".
    ///
    /// # Errors
    /// `Error::DriftInput` for any other name.
    pub fn parse(name: &str) -> Result<Binning> {
        match name {
            "quantile" => Ok(Binning::Quantile),
            "evidently" => Ok(Binning::Evidently),
            other => Err(Error::DriftInput(format!(
                "unknown binning {other:?}; expected \"quantile\" or \"evidently\""
            ))),
        }
    }
}
