//! Sweeps: a base configuration, axes over any configuration key and seeds, expanded into
//! runs ([`file`], [`plan`]); a sweep directory with a manifest of its runs ([`manifest`]);
//! the SLURM job array that trains them on a cluster ([`slurm`]); one table of their results
//! ([`collect`]). The CLI trains the runs, locally or as array tasks.

pub mod collect;
mod dir;
pub mod file;
pub mod manifest;
pub mod plan;
pub mod slurm;

pub use collect::{Collection, PointResult, Profile, collect};
pub use dir::{SlurmScript, SweepDir};
pub use file::{Axis, Base, Metric, SweepFile};
pub use manifest::{Ended, Manifest, ManifestRun, Status, settle};
pub use plan::{Plan, PlannedRun};
