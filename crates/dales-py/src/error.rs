//! Library errors as Python exceptions: configuration errors as `dales.DalesValueError` (a
//! `ValueError`), files and run directories as `dales.DalesOSError` (an `OSError`), the rest
//! (a diverged run, a model too large for memory) as `dales.DalesError`. The message is the
//! command-line tool's: the error and its causes, joined by `: `.

use dales::Error;
use pyo3::PyErr;

pyo3::import_exception!(dales._errors, DalesError);
pyo3::import_exception!(dales._errors, DalesValueError);
pyo3::import_exception!(dales._errors, DalesOSError);

/// `e` as the Python exception of its kind.
pub fn to_py(e: Error) -> PyErr {
    let message = e.message();
    match e {
        Error::Config { .. }
        | Error::ConfigFile { .. }
        | Error::Option { .. }
        | Error::Analysis(_) => DalesValueError::new_err(message),
        Error::Io { .. }
        | Error::Run { .. }
        | Error::InUse { .. }
        | Error::Checkpoint { .. }
        | Error::Data(_) => DalesOSError::new_err(message),
        _ => DalesError::new_err(message),
    }
}

/// A configuration error found here (a value that does not convert), named by `key`.
pub fn config(key: &str, value: impl std::fmt::Display, expected: &str) -> PyErr {
    to_py(Error::config(key, value, expected))
}

/// Map a library result's error.
pub trait IntoPy<T> {
    /// The result with a Python exception for its error.
    fn py(self) -> Result<T, PyErr>;
}

impl<T> IntoPy<T> for dales::Result<T> {
    fn py(self) -> Result<T, PyErr> {
        self.map_err(to_py)
    }
}
