//! `dales reproduce dale2023`: the experiments of the spectral paper (Li et al., NeurIPS 2023;
//! spec B4–B6) on row-sequential images, in four parts:
//!
//! - **rowseq**: standard RNN, recurrent DANN and ColEI, 1 × 100 and 3 × 100; learning curves
//!   and final test error.
//! - **nse**: ColEI at E:I ratios {1, 9, 99} and sizes {100, 300} (and 1000 with `full`); the
//!   NSE of the recurrent matrix at initialisation against the final test error, with the
//!   least-squares line (slope, r, p as `linregress`).
//! - **transplant**: the eight conditions of the singular-vector / singular-value transplant
//!   and the sign ablation (spec B6, Fig. 4), with the paired differences per seed and
//!   Welch's and Mann-Whitney's tests between the three effects.
//! - **adding**: the adding problem, test MSE.
//!
//! Every run is an ordinary run directory under `<out>/<part>/`, so an interrupted
//! reproduction resumes where it stopped.

use std::fmt::Write as _;
use std::path::Path;

use super::{Job, Options};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::nn::ParamRole;
use crate::nn::recurrent_net::{CellKind, RecurrentConfig};
use crate::nn::transplant::Transplant;
use crate::optim::Projection;
use crate::plot::{self, Mark, Panel, Series};
use crate::presets::colei_clip;
use crate::report::{markdown_table, mean_sd};
use crate::run::{AnyConfig, Overrides, RunDir};
use crate::stats::{LineFit, linregress, mann_whitney, stars, welch};

/// The four parts of the reproduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// RNN vs DANN vs ColEI, 1 and 3 layers.
    Rowseq,
    /// NSE at init vs final error across E:I ratios and sizes.
    Nse,
    /// The spectrum-transplant and sign ablation.
    Transplant,
    /// The adding problem.
    Adding,
}

impl Part {
    /// Every part, in report order.
    pub const ALL: [Part; 4] = [Part::Rowseq, Part::Nse, Part::Transplant, Part::Adding];

    /// Its name, also its directory under the output.
    pub fn name(self) -> &'static str {
        match self {
            Part::Rowseq => "rowseq",
            Part::Nse => "nse",
            Part::Transplant => "transplant",
            Part::Adding => "adding",
        }
    }
}

/// One trained setting of a part, before seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Its part.
    pub part: Part,
    /// Its name in the tables.
    pub name: String,
    /// Its directory name (without the seed).
    pub slug: String,
    /// The run settings (seed and data set per job).
    pub config: TrainConfig<RecurrentConfig>,
}

/// One run of the reproduction.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectralJob {
    /// Its part.
    pub part: Part,
    /// Its condition's name.
    pub condition: String,
    /// Its seed.
    pub seed: u64,
    /// Its configuration and run directory.
    pub job: Job,
}

/// Epochs of the row-sequential runs: 20 by default (the paper's 30 with `full`).
const EPOCHS: usize = 20;
const FULL_EPOCHS: usize = 30;
/// Seeds per condition: 3 by default (the paper's 5 with `full`).
const SEEDS: u64 = 3;
const FULL_SEEDS: u64 = 5;
/// The inhibitory-fraction sweep's learning rate (spec B4, `seq_mnist_inhib_test.py`).
const NSE_LR: f64 = 0.010772;

fn condition(
    part: Part,
    name: &str,
    slug: &str,
    config: TrainConfig<RecurrentConfig>,
) -> Condition {
    Condition {
        part,
        name: name.to_string(),
        slug: slug.to_string(),
        config,
    }
}

/// The settings of every part (`full`: the paper's sizes).
pub fn conditions(full: bool) -> Vec<Condition> {
    let mut out = Vec::new();
    for layers in [1, 3] {
        for cell in CellKind::ALL {
            let name = format!("{cell} {layers}×100");
            let slug = format!("{cell}-{layers}x100");
            out.push(condition(
                Part::Rowseq,
                &name,
                &slug,
                TrainConfig::rowseq(cell, layers),
            ));
        }
    }
    let sizes: &[usize] = if full { &[100, 300, 1000] } else { &[100, 300] };
    for &n in sizes {
        for ratio in [1.0, 9.0, 99.0] {
            let mut config = TrainConfig::rowseq(CellKind::Colei, 1);
            config.model.hidden = vec![n];
            config.model.ratio = ratio;
            config.optim.lr = NSE_LR;
            // Spec B4: ratios 1 and 9 clip at 10, ratio 99 at 5.
            config.optim.clip = colei_clip(if ratio > 50.0 { 5.0 } else { 10.0 });
            out.push(condition(
                Part::Nse,
                &format!("colei n={n} E:I={ratio}"),
                &format!("colei-n{n}-ratio{ratio}"),
                config,
            ));
        }
    }
    for (name, slug, config) in transplant_conditions() {
        out.push(condition(Part::Transplant, name, slug, config));
    }
    for cell in CellKind::ALL {
        out.push(condition(
            Part::Adding,
            &format!("{cell}"),
            cell.name(),
            TrainConfig::adding(cell),
        ));
    }
    out
}

/// The eight conditions of spec B6 (Fig. 4): 1 × 100, lr 0.01, every model clipped at 10 per
/// tensor; "sign frozen" = the initial signs of the recurrent `W` and of the dense readout's
/// weight kept by the sign-freezing projection (spec B3: `SGD_Clip_UpdatePolicy` freezes a
/// cell's `W`, not its `U`, and a dense layer's `W`); "sign not frozen" = ColEI's magnitudes
/// left unprojected.
fn transplant_conditions() -> Vec<(&'static str, &'static str, TrainConfig<RecurrentConfig>)> {
    let base = |cell| {
        let mut c = TrainConfig::rowseq(cell, 1);
        c.optim.clip = colei_clip(10.0);
        c
    };
    let transplanted = |t: Transplant| {
        let mut c = base(CellKind::Rnn);
        c.model.transplant = Some(t);
        c
    };
    let frozen = |mut c: TrainConfig<RecurrentConfig>| {
        for role in [ParamRole::Recurrent, ParamRole::Weight] {
            c.optim.groups.entry(role).or_default().projection = Some(Projection::SignFreeze);
        }
        c
    };
    let mut unclamped = base(CellKind::Colei);
    for role in [ParamRole::WPos, ParamRole::RecurrentWPos] {
        unclamped.optim.groups.entry(role).or_default().projection = Some(Projection::None);
    }
    vec![
        ("RNN", "rnn", base(CellKind::Rnn)),
        (
            "RNN, sign frozen",
            "rnn-frozen",
            frozen(base(CellKind::Rnn)),
        ),
        (
            "RNN vectors + ColEI spectrum",
            "rnn-vectors-colei-spectrum",
            transplanted(Transplant::ColeiSpectrum),
        ),
        (
            "RNN vectors + ColEI spectrum, sign frozen",
            "rnn-vectors-colei-spectrum-frozen",
            frozen(transplanted(Transplant::ColeiSpectrum)),
        ),
        (
            "ColEI vectors + RNN spectrum",
            "colei-vectors-rnn-spectrum",
            transplanted(Transplant::ColeiVectors),
        ),
        (
            "ColEI vectors + RNN spectrum, sign frozen",
            "colei-vectors-rnn-spectrum-frozen",
            frozen(transplanted(Transplant::ColeiVectors)),
        ),
        ("ColEI, sign not frozen", "colei-unclamped", unclamped),
        ("ColEI", "colei", base(CellKind::Colei)),
    ]
}

/// Every run: each condition for seeds 1..=K, in `out/<part>/<slug>-seed<k>`. `--epochs`
/// applies to every part; by default the row-sequential parts train for 20 epochs (30 with
/// `full`) and the adding problem for its preset's 100.
pub fn jobs(out: &Path, options: &Options) -> Result<Vec<SpectralJob>> {
    let seeds = options
        .seeds
        .unwrap_or(if options.full { FULL_SEEDS } else { SEEDS });
    if seeds == 0 {
        return Err(Error::option("--seeds", 0, "at least one seed is needed"));
    }
    if options.epochs == Some(0) {
        return Err(Error::option("--epochs", 0, "at least one epoch is needed"));
    }
    let default_epochs = if options.full { FULL_EPOCHS } else { EPOCHS };
    let mut jobs = Vec::new();
    for c in conditions(options.full) {
        let epochs = options.epochs.or(match c.part {
            Part::Adding => None,
            _ => Some(default_epochs),
        });
        for seed in 1..=seeds {
            let mut config = AnyConfig::Recurrent(c.config.clone());
            config.apply(&Overrides {
                data: if c.part == Part::Adding {
                    None
                } else {
                    options.data.clone()
                },
                epochs,
                seed: Some(seed),
                ..Overrides::default()
            })?;
            let dir = out
                .join(c.part.name())
                .join(format!("{}-seed{seed}", c.slug));
            jobs.push(SpectralJob {
                part: c.part,
                condition: c.name.clone(),
                seed,
                job: Job { config, dir },
            });
        }
    }
    Ok(jobs)
}

/// What the report reads of one finished run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunResult {
    /// Its part.
    pub part: Part,
    /// Its condition.
    pub condition: String,
    /// Its seed.
    pub seed: u64,
    /// Recurrent units of its first layer.
    pub hidden: usize,
    /// Its E:I ratio.
    pub ratio: f64,
    /// Test error (%) or, for the adding problem, test MSE after the last epoch.
    pub final_error: f64,
    /// The best epoch's.
    pub best_error: f64,
    /// NSE of the first recurrent matrix at initialisation and after training.
    pub nse_init: f64,
    /// See `nse_init`.
    pub nse_final: f64,
    /// Test error (or MSE) after each epoch.
    pub curve: Vec<f64>,
    /// Wall seconds.
    pub seconds: f64,
}

/// The finished runs among `jobs`, in job order.
pub fn results(jobs: &[SpectralJob]) -> Result<Vec<RunResult>> {
    let mut out = Vec::new();
    for j in jobs {
        if !RunDir::finished(&j.job.dir, j.job.config.epochs()) {
            continue;
        }
        let run = RunDir::open(&j.job.dir)?;
        let summary = run.summary()?;
        let records = run.records()?;
        let probe = "nse.cells.0";
        let AnyConfig::Recurrent(config) = &run.config else {
            return Err(Error::run(&j.job.dir, "is not a recurrent E/I run"));
        };
        out.push(RunResult {
            part: j.part,
            condition: j.condition.clone(),
            seed: j.seed,
            hidden: config.model.hidden[0],
            ratio: config.model.ratio,
            final_error: summary.final_test_error.unwrap_or(f64::NAN),
            best_error: summary.best_test_error.unwrap_or(f64::NAN),
            nse_init: run
                .initial()?
                .and_then(|r| r.probe(probe))
                .unwrap_or(f64::NAN),
            nse_final: records
                .last()
                .and_then(|r| r.probe(probe))
                .unwrap_or(f64::NAN),
            curve: records.iter().map(|r| r.test_error).collect(),
            seconds: summary.wall_seconds,
        });
    }
    if out.is_empty() {
        return Err(Error::config(
            "reproduction",
            "(no finished run)",
            "at least one finished run: train them first",
        ));
    }
    Ok(out)
}

/// Mean ± sd over seeds of one condition.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionSummary {
    /// Its part.
    pub part: Part,
    /// The condition.
    pub condition: String,
    /// Finished seeds.
    pub seeds: usize,
    /// Final error mean and sd.
    pub final_error: (f64, f64),
    /// Best epoch's error, mean.
    pub best_error: f64,
    /// NSE at init and after training, means.
    pub nse_init: f64,
    /// See `nse_init`.
    pub nse_final: f64,
    /// Mean error after each epoch (over the seeds that reached it).
    pub curve: Vec<f64>,
    /// Mean wall seconds per run.
    pub seconds: f64,
}

/// The conditions of `results` in order, with their means.
pub fn summarise(results: &[RunResult]) -> Vec<ConditionSummary> {
    let mut names: Vec<(Part, &str)> = Vec::new();
    for r in results {
        if !names.contains(&(r.part, r.condition.as_str())) {
            names.push((r.part, &r.condition));
        }
    }
    names
        .into_iter()
        .map(|(part, name)| {
            let group: Vec<&RunResult> = results
                .iter()
                .filter(|r| r.part == part && r.condition == name)
                .collect();
            let of =
                |f: fn(&RunResult) -> f64| mean_sd(&group.iter().map(|r| f(r)).collect::<Vec<_>>());
            let epochs = group.iter().map(|r| r.curve.len()).min().unwrap_or(0);
            ConditionSummary {
                part,
                condition: name.to_string(),
                seeds: group.len(),
                final_error: of(|r| r.final_error),
                best_error: of(|r| r.best_error).0,
                nse_init: of(|r| r.nse_init).0,
                nse_final: of(|r| r.nse_final).0,
                curve: (0..epochs)
                    .map(|e| group.iter().map(|r| r.curve[e]).sum::<f64>() / group.len() as f64)
                    .collect(),
                seconds: of(|r| r.seconds).0,
            }
        })
        .collect()
}

/// The least-squares line of final error against NSE at init over every run of the nse part
/// (`None` with fewer than 3 runs).
pub fn nse_regression(results: &[RunResult]) -> Option<LineFit> {
    let runs: Vec<&RunResult> = results
        .iter()
        .filter(|r| r.part == Part::Nse && r.nse_init.is_finite() && r.final_error.is_finite())
        .collect();
    let x: Vec<f64> = runs.iter().map(|r| r.nse_init).collect();
    let y: Vec<f64> = runs.iter().map(|r| r.final_error).collect();
    linregress(&x, &y)
}

/// One effect of the transplant ablation: the paired difference per seed between a variant
/// and its original.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    /// `spectrum`, `vectors` or `sign`.
    pub name: &'static str,
    /// The variant.
    pub variant: &'static str,
    /// Differences per seed (seeds finished in both), in percentage points.
    pub differences: Vec<f64>,
}

/// One pairwise test between two effects.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectTest {
    /// `spectrum vs vectors` and so on.
    pub pair: String,
    /// Welch's two-sided p.
    pub welch_p: Option<f64>,
    /// Mann-Whitney's two-sided p.
    pub mann_whitney_p: Option<f64>,
}

/// The RNN ablation (the increase in error over the original RNN from the ColEI spectrum, the
/// ColEI singular vectors and the sign constraint) and the ColEI ablation (the decrease from
/// the original ColEI by the RNN spectrum, the RNN vectors and lifting the sign constraint),
/// as spec B6 tabulates them.
pub fn ablations(results: &[RunResult]) -> Vec<(&'static str, Vec<Effect>, Vec<EffectTest>)> {
    let by_seed = |condition: &str| -> Vec<(u64, f64)> {
        results
            .iter()
            .filter(|r| r.part == Part::Transplant && r.condition == condition)
            .filter(|r| r.final_error.is_finite())
            .map(|r| (r.seed, r.final_error))
            .collect()
    };
    // `sign · (variant − original)` for each seed finished in both.
    let paired = |variant: &str, original: &str, sign: f64| -> Vec<f64> {
        let o = by_seed(original);
        by_seed(variant)
            .into_iter()
            .filter_map(|(s, v)| {
                o.iter()
                    .find(|(so, _)| *so == s)
                    .map(|(_, ov)| sign * (v - ov))
            })
            .collect()
    };
    let rnn = [
        ("spectrum", "RNN vectors + ColEI spectrum"),
        ("vectors", "ColEI vectors + RNN spectrum"),
        ("sign", "RNN, sign frozen"),
    ];
    // The original ColEI is sign-constrained: its spectrum and vectors effects compare it with
    // the sign-frozen transplants, so that each changes one thing.
    let colei = [
        ("spectrum", "ColEI vectors + RNN spectrum, sign frozen"),
        ("vectors", "RNN vectors + ColEI spectrum, sign frozen"),
        ("sign", "ColEI, sign not frozen"),
    ];
    let effects = |list: [(&'static str, &'static str); 3], original: &str, sign: f64| {
        list.iter()
            .map(|&(name, variant)| Effect {
                name,
                variant,
                differences: paired(variant, original, sign),
            })
            .collect::<Vec<_>>()
    };
    let tests = |e: &[Effect]| {
        [(0, 1), (1, 2), (0, 2)]
            .iter()
            .map(|&(a, b)| EffectTest {
                pair: format!("{} vs {}", e[a].name, e[b].name),
                welch_p: welch(&e[a].differences, &e[b].differences).map(|t| t.1),
                mann_whitney_p: mann_whitney(&e[a].differences, &e[b].differences).map(|t| t.1),
            })
            .collect::<Vec<_>>()
    };
    let rnn_effects = effects(rnn, "RNN", 1.0);
    let colei_effects = effects(colei, "ColEI", -1.0);
    vec![
        (
            "RNN ablation: increase in test error over the original RNN",
            tests(&rnn_effects),
            rnn_effects,
        ),
        (
            "ColEI ablation: decrease in test error from the original ColEI",
            tests(&colei_effects),
            colei_effects,
        ),
    ]
    .into_iter()
    .map(|(title, t, e)| (title, e, t))
    .collect()
}

fn pm((m, sd): (f64, f64), n: usize, digits: usize) -> String {
    if n > 1 {
        format!("{m:.digits$} ± {sd:.digits$}")
    } else {
        format!("{m:.digits$}")
    }
}

fn p_cell(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.4} {}", stars(p)))
        .unwrap_or_else(|| "—".into())
}

/// The report as markdown: one section per part with finished runs.
pub fn report_markdown(results: &[RunResult], data: &str) -> String {
    let summaries = summarise(results);
    let mut md = format!(
        "# dales reproduce dale2023\n\nThe spectral paper's experiments (Li et al., NeurIPS \
         2023) on row-sequential {data} (28 steps of 28 pixels) and the adding problem; mean ± \
         sd over seeds, test error after the last epoch.\n"
    );
    for part in Part::ALL {
        let rows: Vec<&ConditionSummary> = summaries.iter().filter(|s| s.part == part).collect();
        if rows.is_empty() {
            continue;
        }
        let adding = part == Part::Adding;
        let metric = if adding { "test MSE" } else { "test error %" };
        let digits = if adding { 4 } else { 2 };
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|s| {
                vec![
                    s.condition.clone(),
                    s.seeds.to_string(),
                    pm(s.final_error, s.seeds, digits),
                    format!("{:.digits$}", s.best_error),
                    format!("{:.4}", s.nse_init),
                    format!("{:.4}", s.nse_final),
                    format!("{:.0}", s.seconds),
                ]
            })
            .collect();
        let header = [
            "condition",
            "seeds",
            &format!("final {metric}"),
            &format!("best epoch {metric}"),
            "NSE at init",
            "NSE trained",
            "s/run",
        ];
        let title = match part {
            Part::Rowseq => "## RNN, DANN and ColEI (row-sequential)",
            Part::Nse => "## NSE at initialisation against final error (ColEI)",
            Part::Transplant => "## Spectrum transplant and sign ablation (1 × 100)",
            Part::Adding => "## Adding problem (1 × 10, length 20)",
        };
        let _ = write!(md, "\n{title}\n\n{}", markdown_table(&header, &table));
        if part == Part::Nse {
            match nse_regression(results) {
                Some(f) => {
                    let _ = write!(
                        md,
                        "\nLeast squares over {} runs: final error % = {:.2}·NSE + {:.2}; r = \
                         {:.3}, p = {:.2e} (two-sided, zero slope).\n",
                        f.n, f.slope, f.intercept, f.r, f.p
                    );
                }
                None => md.push_str("\nToo few finished runs for a regression line.\n"),
            }
        }
        if part == Part::Transplant {
            for (title, effects, tests) in ablations(results) {
                let effect_rows: Vec<Vec<String>> = effects
                    .iter()
                    .map(|e| {
                        vec![
                            e.name.to_string(),
                            e.variant.to_string(),
                            e.differences.len().to_string(),
                            pm(mean_sd(&e.differences), e.differences.len(), 2),
                        ]
                    })
                    .collect();
                let test_rows: Vec<Vec<String>> = tests
                    .iter()
                    .map(|t| vec![t.pair.clone(), p_cell(t.welch_p), p_cell(t.mann_whitney_p)])
                    .collect();
                let _ = write!(
                    md,
                    "\n### {title}\n\n{}\n{}",
                    markdown_table(
                        &["effect", "variant", "paired seeds", "difference (points)"],
                        &effect_rows
                    ),
                    markdown_table(&["effects", "Welch p", "Mann-Whitney p"], &test_rows)
                );
            }
            md.push_str("\nStars: * p ≤ 0.05, ** p ≤ 0.005, *** p ≤ 0.0005, ns otherwise.");
            let seeds = rows.iter().map(|s| s.seeds).min().unwrap_or(0);
            if (1..=8).contains(&seeds) {
                // The exact test's smallest two-sided p: both tails of C(2K, K) arrangements.
                let arrangements = (1..=seeds).fold(1.0, |c, i| c * (seeds + i) as f64 / i as f64);
                let _ = write!(
                    md,
                    " With {seeds} seeds per condition the smallest Mann-Whitney p is {:.3}.",
                    2.0 / arrangements
                );
            }
            md.push('\n');
        }
    }
    md
}

/// One row per finished run, for plotting elsewhere.
pub fn runs_csv(results: &[RunResult]) -> String {
    let mut csv = String::from(
        "part,condition,seed,hidden,ratio,final_error,best_error,nse_init,nse_final,seconds\n",
    );
    for r in results {
        let _ = writeln!(
            csv,
            "{},\"{}\",{},{},{},{},{},{},{},{}",
            r.part.name(),
            r.condition,
            r.seed,
            r.hidden,
            r.ratio,
            r.final_error,
            r.best_error,
            r.nse_init,
            r.nse_final,
            r.seconds
        );
    }
    csv
}

/// One row per condition (the tables of [`report_markdown`]): `part,condition,seeds,
/// final_mean,final_sd,best_mean,nse_init,nse_final,seconds_per_run`.
pub fn conditions_csv(results: &[RunResult]) -> String {
    let mut csv = String::from(
        "part,condition,seeds,final_mean,final_sd,best_mean,nse_init,nse_final,seconds_per_run\n",
    );
    for c in summarise(results) {
        let _ = writeln!(
            csv,
            "{},\"{}\",{},{},{},{},{},{},{}",
            c.part.name(),
            c.condition,
            c.seeds,
            c.final_error.0,
            c.final_error.1,
            c.best_error,
            c.nse_init,
            c.nse_final,
            c.seconds
        );
    }
    csv
}

/// Write `results.md`, `conditions.csv` and `runs.csv` into `out`; returns the finished runs.
pub fn write_report(out: &Path, jobs: &[SpectralJob], data: &str) -> Result<Vec<RunResult>> {
    let results = results(jobs)?;
    write_atomic(
        &out.join("results.md"),
        report_markdown(&results, data).as_bytes(),
    )?;
    write_atomic(&out.join("runs.csv"), runs_csv(&results).as_bytes())?;
    write_atomic(
        &out.join("conditions.csv"),
        conditions_csv(&results).as_bytes(),
    )?;
    Ok(results)
}

/// Draw the report's plots into `out`: `curves` (the mean test-error or MSE curves of the
/// row-sequential, transplant and adding parts) and `nse` (final error against NSE at
/// initialisation, with the fitted line), each where its part has finished runs; returns
/// the files written.
pub fn save_plots(out: &Path, results: &[RunResult]) -> Result<Vec<&'static str>> {
    let mut written = Vec::new();
    let summaries = summarise(results);
    let curves = |part: Part, title: &str, y: &str| Panel {
        x_label: "epoch".into(),
        title: title.to_string(),
        y_label: y.to_string(),
        series: summaries
            .iter()
            .filter(|s| s.part == part)
            .map(|s| Series {
                mark: Mark::Line,
                label: s.condition.clone(),
                points: s
                    .curve
                    .iter()
                    .enumerate()
                    .map(|(e, v)| ((e + 1) as f64, *v))
                    .collect(),
            })
            .collect(),
    };
    let mut panels = vec![
        curves(Part::Rowseq, "row-sequential: test error", "error (%)"),
        curves(
            Part::Transplant,
            "transplant ablation: test error",
            "error (%)",
        ),
        curves(Part::Adding, "adding problem: test MSE", "MSE"),
    ];
    panels.retain(|p| !p.series.is_empty());
    if !panels.is_empty() {
        plot::save(&panels, &out.join("curves"))?;
        written.extend(["curves.png", "curves.svg"]);
    }
    let nse: Vec<&RunResult> = results.iter().filter(|r| r.part == Part::Nse).collect();
    if nse.is_empty() {
        return Ok(written);
    }
    let mut series: Vec<Series> = Vec::new();
    for r in &nse {
        let label = format!("n = {}", r.hidden);
        let point = (r.nse_init, r.final_error);
        match series.iter_mut().find(|s| s.label == label) {
            Some(s) => s.points.push(point),
            None => series.push(Series {
                mark: Mark::Dots,
                label,
                points: vec![point],
            }),
        }
    }
    if let Some(fit) = nse_regression(results) {
        let (lo, hi) = nse
            .iter()
            .map(|r| r.nse_init)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                (a.min(x), b.max(x))
            });
        series.push(Series {
            mark: Mark::Line,
            label: format!("fit: r = {:.2}, p = {:.1e}", fit.r, fit.p),
            points: vec![
                (lo, fit.slope * lo + fit.intercept),
                (hi, fit.slope * hi + fit.intercept),
            ],
        });
    }
    let panel = Panel {
        x_label: "NSE at initialisation".into(),
        title: "ColEI: E:I ratio 1, 9, 99".into(),
        y_label: "final test error (%)".into(),
        series,
    };
    plot::save(&[panel], &out.join("nse"))?;
    written.extend(["nse.png", "nse.svg"]);
    Ok(written)
}
