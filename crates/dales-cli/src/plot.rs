//! Learning-curve plots (PNG and SVG) with plotters.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Fonts tried for labels (Debian `fonts-dejavu-core`).
const FONT_FILES: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

fn ensure_font() -> Result<()> {
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
    .map_err(anyhow::Error::msg)
}

/// One line of a plot: label and (x, value) points.
pub struct Series {
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
    ensure_font()?;
    let width = 640 * panels.len() as u32;
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    {
        let root = BitMapBackend::new(&png, (width, 480)).into_drawing_area();
        draw(&root, panels).with_context(|| format!("drawing {}", png.display()))?;
        root.present()
            .with_context(|| format!("writing {}", png.display()))?;
    }
    {
        let root = SVGBackend::new(&svg, (width, 480)).into_drawing_area();
        draw(&root, panels).with_context(|| format!("drawing {}", svg.display()))?;
        root.present()
            .with_context(|| format!("writing {}", svg.display()))?;
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, panels: &[Panel]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let areas = root.split_evenly((1, panels.len()));
    for (area, panel) in areas.iter().zip(panels) {
        let points = panel.series.iter().flat_map(|s| s.points.iter());
        let (mut x1, mut y0, mut y1) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in points {
            x1 = x1.max(x);
            if y.is_finite() {
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
        if !y0.is_finite() {
            bail!("nothing to plot in `{}`", panel.title);
        }
        let pad = ((y1 - y0) * 0.05).max(1e-3);
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x1, (y0 - pad)..(y1 + pad))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc(&panel.x_label)
            .y_desc(&panel.y_label)
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (i, s) in panel.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(&s.label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                });
            // Markers, so that a one-epoch curve still shows.
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 2, color.filled())))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// Loss and error panels of one run's records.
pub fn run_curves(records: &[dales::run::EpochRecord], eval_name: &str, title: &str) -> Vec<Panel> {
    let pts = |f: fn(&dales::run::EpochRecord) -> f64| {
        records
            .iter()
            .map(|r| (r.epoch as f64, f(r)))
            .collect::<Vec<_>>()
    };
    vec![
        Panel {
            x_label: "epoch".into(),
            title: format!("{title}: loss"),
            y_label: "cross-entropy".into(),
            series: vec![
                Series {
                    label: "train".into(),
                    points: pts(|r| r.train_loss),
                },
                Series {
                    label: eval_name.into(),
                    points: pts(|r| r.test_loss),
                },
            ],
        },
        Panel {
            x_label: "epoch".into(),
            title: format!("{title}: error"),
            y_label: "error (%)".into(),
            series: vec![
                Series {
                    label: "train".into(),
                    points: pts(|r| r.train_error),
                },
                Series {
                    label: eval_name.into(),
                    points: pts(|r| r.test_error),
                },
            ],
        },
    ]
}

/// Mean accuracy against the drive amplitude, one curve per model, of a robustness sweep.
pub fn sweep(sweep: &dales::robustness::Sweep, results: &[dales::robustness::RunResult]) -> Panel {
    Panel {
        title: format!("accuracy under a {} drive", sweep.drive),
        x_label: "drive amplitude ξ".into(),
        y_label: "test accuracy (%)".into(),
        series: sweep
            .curves(results)
            .into_iter()
            .map(|(label, points)| Series { label, points })
            .collect(),
    }
}
