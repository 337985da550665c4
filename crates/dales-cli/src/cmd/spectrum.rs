//! `dales spectrum`: spectra of recurrent initialisations sampled without training (the
//! spectral paper's Fig. 3 protocol, spec B5).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use dales::analysis::spectra;
use dales::nn::recurrent_net::CellKind;

use dales::plot;

/// Sample the initial recurrent matrix of each model for several seeds and plot their spectra
/// together: eigenvalues in the complex plane, histograms of |λ| and of the singular values,
/// and the NSE (mean ± sd over seeds). Writes spectrum.csv, spectrum_summary.csv, spectrum.md
/// and spectrum.png/.svg.
#[derive(Debug, clap::Args)]
pub struct SpectrumArgs {
    /// Models, comma-separated: rnn (torch-style uniform W), dann (exact centring), colei
    /// (spectral radius --radius).
    #[arg(long, value_delimiter = ',', default_value = "rnn,dann,colei")]
    pub model: Vec<CellKind>,
    /// Recurrent units (DANN: E units).
    #[arg(long, default_value_t = 100)]
    pub hidden: usize,
    /// E:I ratio of DANN's inhibitory population and ColEI's split (9: 10 % I).
    #[arg(long, default_value_t = 9.0)]
    pub ratio: f64,
    /// ColEI's spectral radius [default: 1.5].
    #[arg(long)]
    pub radius: Option<f64>,
    /// Seeds sampled per model (0, 1, …, K − 1).
    #[arg(long, default_value_t = 20)]
    pub seeds: u64,
    /// Histogram bins.
    #[arg(long, default_value_t = 40)]
    pub bins: usize,
    /// Output directory [default: runs/spectrum].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: SpectrumArgs) -> Result<ExitCode> {
    if args.bins == 0 {
        bail!("--bins 0: a histogram needs at least one bin");
    }
    let found = spectra::sample_models(
        &args.model,
        args.hidden,
        args.ratio,
        args.radius,
        args.seeds,
    )?;
    let dir = args.out.unwrap_or_else(|| PathBuf::from("runs/spectrum"));
    for path in plot::write_spectra(&dir, &found, args.bins)? {
        eprintln!("wrote {}", path.display());
    }
    println!("{}", spectra::summary_table(&spectra::summarise(&found)));
    Ok(ExitCode::SUCCESS)
}
