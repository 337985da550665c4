//! The library's one error type.
//!
//! Messages put the context first (the configuration key, parameter name or file) and then say
//! what was found and what was expected, so that the CLI can print them as they are.

use std::path::PathBuf;

/// Everything that can go wrong in `dales` outside a broken internal invariant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is impossible (zero sizes, negative learning rate, ...).
    #[error("invalid configuration: `{key}` = {value}: {expected}")]
    Config {
        /// Path of the offending key, e.g. `model.hidden[1]` or `optim.lr`.
        key: String,
        /// The value found, as written.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A command-line option has a value the library cannot use.
    #[error("{flag} {value}: {expected}")]
    Option {
        /// The option, e.g. `--xi`.
        flag: String,
        /// The value found, as written.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A directory does not hold the run a command needs.
    #[error("{}: {reason}", dir.display())]
    Run {
        /// The directory.
        dir: PathBuf,
        /// What it is, or lacks.
        reason: String,
    },
    /// A configuration file could not be parsed (syntax, unknown key, wrong type).
    #[error("{}: {message}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the key path.
        message: String,
    },
    /// A dataset could not be read.
    #[error(transparent)]
    Data(#[from] dales_data::DataError),
    /// An analysis got input it cannot use.
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    /// Training produced a non-finite loss.
    #[error(
        "training diverged at epoch {epoch}, step {step}: the loss is {loss}; {}",
        kept_state(kept)
    )]
    Diverged {
        /// Epoch (1-based) of the bad step.
        epoch: usize,
        /// Global step (1-based) of the bad step.
        step: u64,
        /// The loss value.
        loss: f32,
        /// The last state saved in the run directory: its completed epochs and its updates
        /// (`None`: nothing was saved).
        kept: Option<(usize, u64)>,
    },
    /// Another process writes into a run directory.
    #[error(
        "{} is in use by process {}: wait for it to finish, stop it, or choose another directory",
        dir.display(),
        pid.map_or("(unknown)".to_string(), |p| p.to_string())
    )]
    InUse {
        /// The run directory.
        dir: PathBuf,
        /// The owner's process id, as its lock file says.
        pid: Option<u32>,
    },
    /// A model would not fit in memory.
    #[error(
        "{what} needs about {} (model, optimiser state and batch buffers), more than the {} \
         {limit_source}; make it smaller or raise --max-memory",
        bytes_text(*needed),
        bytes_text(*limit)
    )]
    Memory {
        /// What was to be allocated, e.g. "the `mlp` model at batch 32".
        what: String,
        /// The estimate, in bytes.
        needed: f64,
        /// The limit, in bytes.
        limit: f64,
        /// Where the limit comes from ("available on this machine", "of --max-memory").
        limit_source: String,
    },
    /// A numerical routine (an eigen- or singular-value decomposition) failed on its input.
    #[error("numerical error: {0}")]
    Numeric(String),
    /// A checkpoint does not match the model it is loaded into.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is missing, extra or mis-shaped.
        reason: String,
    },
    /// A file could not be read or written (the OS error is the [`std::error::Error::source`];
    /// print with `{:#}` through `anyhow`, or walk the chain, to see it).
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// What a diverged run kept, for its message.
fn kept_state(kept: &Option<(usize, u64)>) -> String {
    match kept {
        None => "nothing was saved (the run diverged before its first save): lower optim.lr \
                 and start again with --overwrite"
            .to_string(),
        Some((epochs, steps)) => format!(
            "the state saved after {epochs} epoch(s), {steps} update(s) is kept (lower optim.lr \
             in the run's config.toml to continue it with --resume)"
        ),
    }
}

/// A byte count with a binary unit: `1.5 GiB`.
pub fn bytes_text(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

impl Error {
    /// Shorthand for [`Error::Config`].
    pub fn config(
        key: impl Into<String>,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Error::Config {
            key: key.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// The same error with a configuration error's key placed under `at` (a layer's errors
    /// as `model layer 2: ni`); other errors unchanged.
    pub fn under(self, at: &str) -> Self {
        match self {
            Error::Config {
                key,
                value,
                expected,
            } => Error::Config {
                key: format!("{at}: {key}"),
                value,
                expected,
            },
            other => other,
        }
    }

    /// Shorthand for [`Error::Option`].
    pub fn option(
        flag: impl Into<String>,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Error::Option {
            flag: flag.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// Shorthand for [`Error::Run`].
    pub fn run(dir: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Run {
            dir: dir.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Checkpoint`].
    pub fn checkpoint(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Checkpoint {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The error and its causes joined by `: ` (as `anyhow` prints them with `{:#}`), for
    /// messages written to a file or handed to another language.
    pub fn message(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            let part = s.to_string();
            if !text.ends_with(&part) {
                text.push_str(": ");
                text.push_str(&part);
            }
            source = s.source();
        }
        text
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Bad input to an analysis. Messages name the argument first, then say what was found and what
/// was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AnalysisError {
    /// A slice has the wrong length.
    #[error("`{arg}` has length {found}, expected {expected}")]
    Length {
        /// The argument (or the callback output) at fault.
        arg: &'static str,
        /// Its length.
        found: usize,
        /// What would have been accepted.
        expected: String,
    },
    /// A scalar argument is out of range.
    #[error("`{arg}` = {value}: expected {expected}")]
    Value {
        /// The argument at fault.
        arg: &'static str,
        /// The value found, as written.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// An index range is empty or does not fit the signal it indexes.
    #[error("`{arg}` = {start}..{end} {problem}")]
    Window {
        /// The argument at fault.
        arg: &'static str,
        /// First index of the range.
        start: usize,
        /// One past the last index of the range.
        end: usize,
        /// What is wrong with it, e.g. "is empty" or "ends past the trace of length 100".
        problem: String,
    },
}
