//! `dales`: train, evaluate, compare and reproduce biologically constrained networks.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod interrupt;
mod peak;
mod progress;
mod training;

use cmd::{analyze, bench, compare, eval, reproduce, robustness, spectrum, sweep, train};

/// Train Dale's-principle networks (DANN, ColumnEI) and their baselines on MNIST-format data.
#[derive(Debug, Parser)]
#[command(name = "dales", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model (a preset or a TOML config) into a run directory.
    Train(train::TrainArgs),
    /// Evaluate a run's checkpoint on the test set.
    Eval(eval::EvalArgs),
    /// Compare runs: a table (terminal and markdown) and overlaid learning curves.
    Compare(compare::CompareArgs),
    /// Reproduce a paper's comparison with one command.
    Reproduce(reproduce::ReproduceArgs),
    /// Accuracy of sequence runs under an external drive of growing amplitude (and the sin
    /// input transform): a table, a CSV and a plot.
    Robustness(robustness::RobustnessArgs),
    /// Analyses of a trained run: traces, lyapunov, jacobian, response (sequence runs);
    /// spectrum (recurrent E/I runs).
    Analyze(analyze::AnalyzeArgs),
    /// Spectra of recurrent E/I initialisations sampled without training (eigenvalues,
    /// singular values, NSE).
    Spectrum(spectrum::SpectrumArgs),
    /// Sweeps over seeds and configuration keys: plan, run here, run as a SLURM job array,
    /// collect into one table.
    Sweep(sweep::SweepArgs),
    /// Time training steps and one epoch (compare with the PyTorch reference: bench/compare.sh).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    dales::alloc::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Reproduce(args) => reproduce::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Robustness(args) => robustness::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Spectrum(args) => spectrum::run(args),
        Command::Sweep(args) => sweep::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
