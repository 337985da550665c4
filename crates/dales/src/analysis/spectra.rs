//! Eigenvalue and singular-value spectra of recurrent networks (spec B5): of a trained run and
//! the initialisation it started from (`dales analyze spectrum RUN`), and of initialisations
//! sampled without training (`dales spectrum`, the protocol of the spectral paper's Fig. 3:
//! many draws of one init, their eigenvalues in the complex plane and the histograms of the
//! eigenvalue moduli and singular values).
//!
//! The recurrent matrix of a cell is its effective `W` (the standard cell's `W`, DANN's
//! `Wex − Wei·Wix`, ColEI's `W_pos·D_W`), as [`RecurrentNet::recurrent_matrices`] gives it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::device;
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::nn::recurrent_net::{CellKind, RecurrentConfig, RecurrentNet};
use crate::nn::spectrum::{Eigenvalue, eigenvalues, nse, singular_values};
use crate::report::{markdown_table, mean_sd};
use crate::run::RunDir;

/// The spectrum of one recurrent matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSpectrum {
    /// What the matrix belongs to: a model name, or `init` / `trained` for a run.
    pub label: String,
    /// The seed of its initialisation.
    pub seed: u64,
    /// The matrix's name in the network, `cells.k`.
    pub matrix: String,
    /// Its size `n` (the matrix is `n × n`).
    pub n: usize,
    /// Its eigenvalues.
    pub eigenvalues: Vec<Eigenvalue>,
    /// Its singular values, largest first.
    pub singular_values: Vec<f64>,
    /// The normalised SVD entropy of the singular values.
    pub nse: f64,
    /// The largest eigenvalue modulus.
    pub spectral_radius: f64,
    /// The circular law's radius `√(n·Var(w))` of a random matrix with these entries' variance:
    /// the disc the bulk of the eigenvalues fills when the entries are independent.
    pub circular_radius: f64,
}

impl MatrixSpectrum {
    /// The spectrum of the `n × n` row-major matrix `w`.
    pub fn of(label: &str, seed: u64, matrix: &str, w: &[f64], n: usize) -> Result<Self> {
        let eigenvalues = eigenvalues(w, n)?;
        let singular = singular_values(w, n, n);
        let mean = w.iter().sum::<f64>() / w.len() as f64;
        let var = w.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / w.len() as f64;
        Ok(MatrixSpectrum {
            label: label.to_string(),
            seed,
            matrix: matrix.to_string(),
            n,
            spectral_radius: eigenvalues
                .iter()
                .map(Eigenvalue::modulus)
                .fold(0.0, f64::max),
            nse: nse(&singular),
            eigenvalues,
            singular_values: singular,
            circular_radius: (n as f64 * var).sqrt(),
        })
    }
}

/// The spectra of every recurrent matrix of `net`, labelled `label`.
pub fn of_network(net: &RecurrentNet, label: &str, seed: u64) -> Result<Vec<MatrixSpectrum>> {
    net.recurrent_matrices()
        .iter()
        .map(|(name, n, w)| MatrixSpectrum::of(label, seed, name, w, *n))
        .collect()
}

/// The spectra of a recurrent run's network as initialised (labelled `init`, drawn again from
/// the run's seed) and as trained (`trained`, its checkpoint).
pub fn of_run(run: &RunDir) -> Result<Vec<MatrixSpectrum>> {
    let (config, trained) = run.recurrent()?;
    let init = config.model.init_seeded(config.seed, &device::cpu())?;
    let mut out = of_network(&init, "init", config.seed)?;
    out.extend(of_network(&trained, "trained", config.seed)?);
    Ok(out)
}

/// The spectra of `config`'s initialisation for each of `seeds`, labelled `label` (no
/// training; on the CPU).
pub fn sample_inits(
    config: &RecurrentConfig,
    label: &str,
    seeds: impl IntoIterator<Item = u64>,
) -> Result<Vec<MatrixSpectrum>> {
    config.validate()?;
    let cpu = device::cpu();
    let mut out = Vec::new();
    for seed in seeds {
        let net = config.init_seeded(seed, &cpu)?;
        out.extend(of_network(&net, label, seed)?);
    }
    Ok(out)
}

/// The spectra of the paper's initialisation of each of `cells` (spec B5, the spectral paper's
/// Fig. 3 protocol) at one layer of `hidden` units, seeds `0..seeds`: E:I ratio `ratio` for the
/// DANN and ColEI (the RNN has none) and, for ColEI, the spectral radius `radius` (absent: the
/// paper's). Options are named as `dales spectrum`'s.
pub fn sample_models(
    cells: &[CellKind],
    hidden: usize,
    ratio: f64,
    radius: Option<f64>,
    seeds: u64,
) -> Result<Vec<MatrixSpectrum>> {
    if seeds == 0 {
        return Err(Error::option("--seeds", 0, "at least one seed is needed"));
    }
    if radius.is_some() && !cells.contains(&CellKind::Colei) {
        return Err(Error::option(
            "--radius",
            radius.unwrap_or_default(),
            "only the colei model has a spectral-radius init",
        ));
    }
    let mut found = Vec::new();
    for &cell in cells {
        let paper = RecurrentConfig::paper(cell);
        let config = RecurrentConfig {
            hidden: vec![hidden],
            ratio: if cell == CellKind::Rnn {
                paper.ratio
            } else {
                ratio
            },
            radius: if cell == CellKind::Colei {
                radius.or(paper.radius)
            } else {
                paper.radius
            },
            ..paper
        };
        let sampled = sample_inits(&config, cell.name(), 0..seeds)
            .map_err(|e| e.under(&format!("--model {cell} --hidden {hidden} --ratio {ratio}")))?;
        found.extend(sampled);
    }
    Ok(found)
}

/// A histogram as densities (integrating to 1) over equal bins.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// The `bins + 1` bin edges.
    pub edges: Vec<f64>,
    /// The density of each bin.
    pub density: Vec<f64>,
}

impl Histogram {
    /// `bins` equal bins over `[lo, hi]` (values outside are left out; `hi` is in the last bin).
    pub fn new(values: &[f64], bins: usize, lo: f64, hi: f64) -> Result<Self> {
        if bins == 0 || !(lo.is_finite() && hi.is_finite() && hi > lo) {
            return Err(Error::Numeric(format!(
                "a histogram of {bins} bins over [{lo}, {hi}]: expected at least one bin over a \
                 finite, non-empty range"
            )));
        }
        let width = (hi - lo) / bins as f64;
        let mut counts = vec![0usize; bins];
        let mut total = 0usize;
        for &v in values {
            if v >= lo && v <= hi {
                counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
                total += 1;
            }
        }
        let scale = if total == 0 {
            0.0
        } else {
            1.0 / (total as f64 * width)
        };
        Ok(Histogram {
            edges: (0..=bins).map(|i| lo + i as f64 * width).collect(),
            density: counts.iter().map(|&c| c as f64 * scale).collect(),
        })
    }

    /// The outline of the bars, as points of a step line.
    pub fn outline(&self) -> Vec<(f64, f64)> {
        let mut points = vec![(self.edges[0], 0.0)];
        for (i, d) in self.density.iter().enumerate() {
            points.push((self.edges[i], *d));
            points.push((self.edges[i + 1], *d));
        }
        points.push((self.edges[self.edges.len() - 1], 0.0));
        points
    }
}

/// Mean and standard deviation over seeds of one group (label, matrix) of spectra.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSummary {
    /// The label.
    pub label: String,
    /// The matrix.
    pub matrix: String,
    /// Its size.
    pub n: usize,
    /// Seeds in the group.
    pub seeds: usize,
    /// NSE mean and sample standard deviation.
    pub nse: (f64, f64),
    /// Spectral radius mean and sample standard deviation.
    pub spectral_radius: (f64, f64),
    /// Largest singular value, mean and sample standard deviation.
    pub sigma_max: (f64, f64),
}

/// The groups of `spectra` (by label and matrix, in order of appearance) with their means.
pub fn summarise(spectra: &[MatrixSpectrum]) -> Vec<GroupSummary> {
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for s in spectra {
        if !keys.contains(&(s.label.as_str(), s.matrix.as_str())) {
            keys.push((&s.label, &s.matrix));
        }
    }
    keys.into_iter()
        .map(|(label, matrix)| {
            let group: Vec<&MatrixSpectrum> = spectra
                .iter()
                .filter(|s| s.label == label && s.matrix == matrix)
                .collect();
            let stat = |f: fn(&MatrixSpectrum) -> f64| {
                mean_sd(&group.iter().map(|s| f(s)).collect::<Vec<_>>())
            };
            GroupSummary {
                label: label.to_string(),
                matrix: matrix.to_string(),
                n: group[0].n,
                seeds: group.len(),
                nse: stat(|s| s.nse),
                spectral_radius: stat(|s| s.spectral_radius),
                sigma_max: stat(|s| s.singular_values.first().copied().unwrap_or(f64::NAN)),
            }
        })
        .collect()
}

/// Every eigenvalue and singular value as CSV: `label,seed,matrix,kind,index,re,im` with kind
/// `eigenvalue` (re, im) or `singular` (the value in `re`, `im` 0).
pub fn values_csv(spectra: &[MatrixSpectrum]) -> String {
    let mut csv = String::from("label,seed,matrix,kind,index,re,im\n");
    for s in spectra {
        for (i, e) in s.eigenvalues.iter().enumerate() {
            let _ = writeln!(
                csv,
                "{},{},{},eigenvalue,{i},{},{}",
                s.label, s.seed, s.matrix, e.re, e.im
            );
        }
        for (i, v) in s.singular_values.iter().enumerate() {
            let _ = writeln!(
                csv,
                "{},{},{},singular,{i},{v},0",
                s.label, s.seed, s.matrix
            );
        }
    }
    csv
}

/// One row per matrix: `label,seed,matrix,n,nse,spectral_radius,sigma_max,circular_radius`.
pub fn summary_csv(spectra: &[MatrixSpectrum]) -> String {
    let mut csv =
        String::from("label,seed,matrix,n,nse,spectral_radius,sigma_max,circular_radius\n");
    for s in spectra {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{}",
            s.label,
            s.seed,
            s.matrix,
            s.n,
            s.nse,
            s.spectral_radius,
            s.singular_values.first().copied().unwrap_or(f64::NAN),
            s.circular_radius
        );
    }
    csv
}

/// The table of [`summarise`]: one row per group, NSE, spectral radius and largest singular
/// value as mean ± sd over seeds (markdown).
pub fn summary_table(groups: &[GroupSummary]) -> String {
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            // One seed has no spread to show.
            let pm = |(m, sd): (f64, f64)| {
                if g.seeds > 1 {
                    format!("{m:.4} ± {sd:.4}")
                } else {
                    format!("{m:.4}")
                }
            };
            vec![
                g.label.clone(),
                g.matrix.clone(),
                g.n.to_string(),
                g.seeds.to_string(),
                pm(g.nse),
                pm(g.spectral_radius),
                pm(g.sigma_max),
            ]
        })
        .collect();
    markdown_table(
        &[
            "label",
            "matrix",
            "n",
            "seeds",
            "NSE",
            "spectral radius",
            "largest singular value",
        ],
        &rows,
    )
}

/// Write `spectrum.csv` ([`values_csv`]), `spectrum_summary.csv` ([`summary_csv`]) and
/// `spectrum.md` ([`summary_table`]) into `dir` (created if needed); returns the files.
pub fn write(dir: &Path, spectra: &[MatrixSpectrum]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let files = [
        ("spectrum.csv", values_csv(spectra)),
        ("spectrum_summary.csv", summary_csv(spectra)),
        ("spectrum.md", summary_table(&summarise(spectra))),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        write_atomic(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_integrates_to_one_and_counts_the_top_edge() {
        let h = Histogram::new(&[0.0, 0.5, 1.0, 1.0, 2.0], 4, 0.0, 1.0).unwrap();
        let area: f64 = h.density.iter().map(|d| d * 0.25).sum();
        assert!((area - 1.0).abs() < 1e-12);
        // 0 in the first bin, 0.5 in the third, both 1.0 in the last; 2.0 is outside.
        assert_eq!(h.density, vec![1.0, 0.0, 1.0, 2.0]);
        assert!(Histogram::new(&[1.0], 3, 1.0, 1.0).is_err());
    }

    #[test]
    fn a_rotation_has_its_spectrum_on_the_unit_circle() {
        // [[0, −1], [1, 0]]: eigenvalues ±i, singular values 1, 1 (NSE 1).
        let s = MatrixSpectrum::of("r", 0, "cells.0", &[0.0, -1.0, 1.0, 0.0], 2).unwrap();
        assert!((s.spectral_radius - 1.0).abs() < 1e-12);
        let mut ims: Vec<f64> = s.eigenvalues.iter().map(|e| e.im).collect();
        ims.sort_by(f64::total_cmp);
        assert!((ims[0] + 1.0).abs() < 1e-12 && (ims[1] - 1.0).abs() < 1e-12);
        assert!((s.nse - 1.0).abs() < 1e-12);
        // Entries 0, −1, 1, 0: mean 0, variance 1/2, √(2·1/2) = 1.
        assert!((s.circular_radius - 1.0).abs() < 1e-12);
    }
}
