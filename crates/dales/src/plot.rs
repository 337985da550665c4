//! Learning-curve plots (PNG and SVG) with plotters.

use std::path::Path;
use std::sync::OnceLock;

use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Fonts tried for labels (Debian `fonts-dejavu-core`).
const FONT_FILES: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

fn ensure_font() -> std::result::Result<(), String> {
    static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        for path in FONT_FILES {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                return plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                    .map_err(|_| format!("{path}: not a usable font"));
            }
        }
        Err(format!(
            "no font for plot labels: none of {} exists (install Debian's fonts-dejavu-core)",
            FONT_FILES.join(", ")
        ))
    })
    .clone()
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A line through the points, with a small marker on each.
    Line,
    /// Small translucent dots only (a scatter of many points).
    Dots,
    /// A line in the colour of the series before it, without a legend entry (a guide drawn
    /// with its data, such as a circle around a scatter).
    Guide,
    /// A translucent area in the colour of the series before it, without a legend entry; its
    /// points are the outline (a band of ± one sd: the upper edge, then the lower reversed).
    Band,
}

/// One series of a plot: label and (x, value) points.
pub struct Series {
    /// How it is drawn.
    pub mark: Mark,
    /// Legend label.
    pub label: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
}

/// A panel: title, y label and its series.
pub struct Panel {
    /// Title.
    pub title: String,
    /// X-axis label.
    pub x_label: String,
    /// Y-axis label.
    pub y_label: String,
    /// Lines.
    pub series: Vec<Series>,
}

/// Draw `panels` side by side into `<stem>.png` and `<stem>.svg`.
pub fn save(panels: &[Panel], stem: &Path) -> Result<()> {
    let png = stem.with_extension("png");
    ensure_font().map_err(|e| Error::io(&png, std::io::Error::other(e)))?;
    let size = size(panels);
    // Each file is drawn under a temporary name and renamed: never a half-drawn plot.
    crate::io::replace_atomic(&png, |tmp| {
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        draw(&root, panels).map_err(std::io::Error::other)?;
        root.present().map_err(std::io::Error::other)
    })?;
    crate::io::replace_atomic(&stem.with_extension("svg"), |tmp| {
        let root = SVGBackend::new(tmp, size).into_drawing_area();
        draw(&root, panels).map_err(std::io::Error::other)?;
        root.present().map_err(std::io::Error::other)
    })?;
    Ok(())
}

/// `panels` side by side as the bytes of a PNG image (drawn in the system's temporary
/// directory, which is left as it was).
pub fn png_bytes(panels: &[Panel]) -> Result<Vec<u8>> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("dales-plot-{}-{n}.png", std::process::id()));
    let drawn = (|| {
        ensure_font()?;
        let root = BitMapBackend::new(&path, size(panels)).into_drawing_area();
        draw(&root, panels)?;
        root.present().map_err(|e| e.to_string())
    })();
    let bytes = drawn
        .map_err(std::io::Error::other)
        .and_then(|()| std::fs::read(&path));
    let _ = std::fs::remove_file(&path);
    bytes.map_err(|e| Error::io(&path, e))
}

/// The image size of `panels` side by side: 640 × 480 each.
fn size(panels: &[Panel]) -> (u32, u32) {
    (640 * panels.len() as u32, 480)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[Panel],
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((1, panels.len()));
    for (area, panel) in areas.iter().zip(panels) {
        let points = panel.series.iter().flat_map(|s| s.points.iter());
        // The x axis starts at 0 (and reaches 1 at least) unless a point lies left of 0; then
        // it spans the points.
        let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in points {
            if x.is_finite() {
                x0 = x0.min(x);
                x1 = x1.max(x);
            }
            if y.is_finite() {
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
        if !y0.is_finite() {
            return Err(format!("nothing to plot in `{}`", panel.title));
        }
        if x0 >= 0.0 {
            (x0, x1) = (0.0, x1.max(1.0));
        } else if x1 <= x0 {
            (x0, x1) = (x0 - 0.5, x0 + 0.5);
        }
        let pad = ((y1 - y0) * 0.05).max(1e-3);
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(&panel.x_label)
            .y_desc(&panel.y_label)
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        let mut colour = 0;
        for s in &panel.series {
            if !matches!(s.mark, Mark::Guide | Mark::Band) {
                colour += 1;
            }
            let color = Palette99::pick(colour.max(1) - 1).to_rgba();
            if s.mark == Mark::Band {
                chart
                    .draw_series([Polygon::new(s.points.clone(), color.mix(0.2).filled())])
                    .map_err(|e| e.to_string())?;
                continue;
            }
            if s.mark == Mark::Guide {
                chart
                    .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(1)))
                    .map_err(|e| e.to_string())?;
                continue;
            }
            if s.mark == Mark::Dots {
                // Many points (a spectrum) as fine dots, a few (one per run) visibly.
                let (size, dot) = if s.points.len() > 500 {
                    (1, color.mix(0.5).filled())
                } else {
                    (4, color.filled())
                };
                chart
                    .draw_series(s.points.iter().map(|&p| Circle::new(p, size, dot)))
                    .map_err(|e| e.to_string())?
                    .label(&s.label)
                    .legend(move |(x, y)| Circle::new((x + 9, y), 3, color.filled()));
                continue;
            }
            chart
                .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(&s.label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                });
            // Markers, so that a one-epoch curve still shows.
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 2, color.filled())))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Draw the curves of `trainer`'s completed epochs into `dir/curves.png` and `.svg` (nothing
/// before the first epoch ends).
pub fn save_trainer_curves<M: crate::learner::ModelSpec>(
    trainer: &crate::run::Trainer<M>,
    dir: &Path,
) -> Result<()> {
    if trainer.records().is_empty() {
        return Ok(());
    }
    let title = format!("{} seed {}", trainer.config().name(), trainer.config().seed);
    let panels = run_curves(
        trainer.records(),
        trainer.eval_name(),
        &title,
        trainer.is_regression(),
    );
    save(&panels, &dir.join("curves"))
}

/// The curves of the run in `run` (as [`run_curves`]), from its `metrics.csv` and
/// `summary.json`.
pub fn run_dir_curves(run: &crate::run::RunDir) -> Result<Vec<Panel>> {
    let records = run.records()?;
    let eval_name = run.summary()?.eval_set;
    let title = format!("{} seed {}", run.config.name(), run.config.seed());
    Ok(run_curves(
        &records,
        &eval_name,
        &title,
        run.is_regression(),
    ))
}

/// Loss and error panels of one run's records (`regression`: both are mean squared errors).
pub fn run_curves(
    records: &[crate::run::EpochRecord],
    eval_name: &str,
    title: &str,
    regression: bool,
) -> Vec<Panel> {
    let (loss_label, error_label) = if regression {
        ("mean squared error", "mean squared error")
    } else {
        ("cross-entropy", "error (%)")
    };
    let pts = |f: fn(&crate::run::EpochRecord) -> f64| {
        records
            .iter()
            .map(|r| (r.epoch as f64, f(r)))
            .collect::<Vec<_>>()
    };
    vec![
        Panel {
            x_label: "epoch".into(),
            title: format!("{title}: loss"),
            y_label: loss_label.into(),
            series: vec![
                Series {
                    mark: Mark::Line,
                    label: "train".into(),
                    points: pts(|r| r.train_loss),
                },
                Series {
                    mark: Mark::Line,
                    label: eval_name.into(),
                    points: pts(|r| r.test_loss),
                },
            ],
        },
        Panel {
            x_label: "epoch".into(),
            title: format!("{title}: error"),
            y_label: error_label.into(),
            series: vec![
                Series {
                    mark: Mark::Line,
                    label: "train".into(),
                    points: pts(|r| r.train_error),
                },
                Series {
                    mark: Mark::Line,
                    label: eval_name.into(),
                    points: pts(|r| r.test_error),
                },
            ],
        },
    ]
}

/// Mean accuracy against the drive amplitude, one curve per model, of a robustness sweep.
pub fn sweep(sweep: &crate::robustness::Sweep, results: &[crate::robustness::RunResult]) -> Panel {
    Panel {
        title: format!("accuracy under a {} drive", sweep.drive),
        x_label: "drive amplitude ξ".into(),
        y_label: "test accuracy (%)".into(),
        series: sweep
            .curves(results)
            .into_iter()
            .map(|(label, points)| Series {
                mark: Mark::Line,
                label,
                points,
            })
            .collect(),
    }
}

/// The panels of a set of recurrent spectra (spec B5, the spectral paper's Fig. 3): the
/// eigenvalues in the complex plane with a circle at each group's mean spectral radius, and the
/// histograms of
/// the eigenvalue moduli and of the singular values, one colour per group (label, and matrix
/// where a network has several).
pub fn spectra(
    spectra: &[crate::analysis::spectra::MatrixSpectrum],
    bins: usize,
) -> Result<Vec<Panel>> {
    use crate::analysis::spectra::{Histogram, summarise};
    let groups = summarise(spectra);
    let several = groups.iter().any(|g| g.matrix != groups[0].matrix);
    let name = |label: &str, matrix: &str| {
        if several {
            format!("{label} {matrix}")
        } else {
            label.to_string()
        }
    };
    let top = |f: fn(&crate::analysis::spectra::MatrixSpectrum) -> f64| {
        spectra.iter().map(f).fold(0.0, f64::max).max(1e-12)
    };
    // Singular values relative to their mean: the NSE is blind to scale, so this is the
    // dispersion it measures, comparable between models of different gains.
    let relative = |sv: &[f64]| {
        let mean = sv.iter().sum::<f64>() / sv.len().max(1) as f64;
        sv.iter().map(|v| v / mean).collect::<Vec<f64>>()
    };
    let (radius_max, sigma_max) = (
        top(|s| s.spectral_radius),
        spectra
            .iter()
            .flat_map(|s| relative(&s.singular_values))
            .fold(1e-12, f64::max),
    );
    let mut plane = Panel {
        title: "eigenvalues (circles: mean spectral radius)".into(),
        x_label: "Re λ".into(),
        y_label: "Im λ".into(),
        series: Vec::new(),
    };
    let mut moduli = Panel {
        title: "eigenvalue moduli".into(),
        x_label: "|λ|".into(),
        y_label: "density".into(),
        series: Vec::new(),
    };
    let mut singular = Panel {
        title: "singular values ÷ their mean (what the NSE measures)".into(),
        x_label: "σ / mean σ".into(),
        y_label: "density".into(),
        series: Vec::new(),
    };
    for g in &groups {
        let label = format!("{} (NSE {:.3})", name(&g.label, &g.matrix), g.nse.0);
        let group: Vec<_> = spectra
            .iter()
            .filter(|s| s.label == g.label && s.matrix == g.matrix)
            .collect();
        let eigen: Vec<(f64, f64)> = group
            .iter()
            .flat_map(|s| s.eigenvalues.iter().map(|e| (e.re, e.im)))
            .collect();
        let radius = g.spectral_radius.0;
        plane.series.push(Series {
            mark: Mark::Dots,
            label: label.clone(),
            points: eigen,
        });
        plane.series.push(Series {
            mark: Mark::Guide,
            label: format!("ρ = {radius:.3}"),
            points: (0..=120)
                .map(|k| {
                    let t = k as f64 * std::f64::consts::TAU / 120.0;
                    (radius * t.cos(), radius * t.sin())
                })
                .collect(),
        });
        let m: Vec<f64> = group
            .iter()
            .flat_map(|s| s.eigenvalues.iter().map(|e| e.modulus()))
            .collect();
        let sv: Vec<f64> = group
            .iter()
            .flat_map(|s| relative(&s.singular_values))
            .collect();
        moduli.series.push(Series {
            mark: Mark::Line,
            label: label.clone(),
            points: Histogram::new(&m, bins, 0.0, radius_max)?.outline(),
        });
        singular.series.push(Series {
            mark: Mark::Line,
            label,
            points: Histogram::new(&sv, bins, 0.0, sigma_max)?.outline(),
        });
    }
    Ok(vec![plane, moduli, singular])
}

/// Write the files of a set of spectra into `dir`: the library's CSVs and table
/// ([`crate::analysis::spectra::write`]) and `spectrum.png`/`.svg` ([`spectra`]); returns
/// every file written.
pub fn write_spectra(
    dir: &Path,
    found: &[crate::analysis::spectra::MatrixSpectrum],
    bins: usize,
) -> Result<Vec<std::path::PathBuf>> {
    let mut written = crate::analysis::spectra::write(dir, found)?;
    let stem = dir.join("spectrum");
    save(&spectra(found, bins)?, &stem)?;
    written.extend([stem.with_extension("png"), stem.with_extension("svg")]);
    Ok(written)
}
