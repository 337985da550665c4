//! The copy task, the long-memory benchmark the adaptation paper's grid study uses (spec C3:
//! delay 200, copy length 10, 8 symbols plus a blank and a marker).
//!
//! One sequence has `N = L + delay + L` steps. Its input is `L` random symbols (`1..=S`),
//! then `delay − 1` blanks (`0`), the marker (`S + 1`), and `L` more blanks. The target is
//! blank for the first `L + delay` steps and the `L` symbols, in order, for the last `L`: the
//! network must hold them across the delay and replay them after the marker. A network that
//! outputs blank until the marker and then guesses uniformly scores the cross-entropy
//! [`CopySpec::baseline_loss`] `= L ln S / N` per step (0.0945 for the paper's sizes).
//!
//! [`CopyTask`] holds `n` such sequences drawn from a seed; a batch has the one-hot inputs
//! (blank, `S` symbols, marker) and the target of every step, all of them scored.
//!
//! ```
//! use dales_data::copy::CopySpec;
//! use dales_data::task::Task;
//!
//! let spec = CopySpec { delay: 5, length: 3, symbols: 8 };
//! let task = spec.generate(4, 1).unwrap();
//! let x = task.sequence(0);
//! assert_eq!(x.len(), 11);
//! assert_eq!(x[7], 9); // the marker at step L + delay − 1
//! let batch = task.batch(&[0]);
//! assert_eq!(&batch.targets[8..], &[x[0] as usize, x[1] as usize, x[2] as usize]);
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::DataError;
use crate::task::{Batch, Task};

/// The sizes of a copy task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopySpec {
    /// Steps from the first symbol to the marker's successor (the paper: 200).
    pub delay: usize,
    /// Symbols to copy `L` (the paper: 10).
    pub length: usize,
    /// Alphabet size `S` (the paper: 8).
    pub symbols: usize,
}

impl CopySpec {
    /// The paper's sizes (spec C3).
    pub const PAPER: CopySpec = CopySpec {
        delay: 200,
        length: 10,
        symbols: 8,
    };

    /// The blank symbol.
    pub const BLANK: u8 = 0;

    /// Steps per sequence `N = 2L + delay`.
    pub fn steps(&self) -> usize {
        2 * self.length + self.delay
    }

    /// The marker symbol `S + 1`.
    pub fn marker(&self) -> u8 {
        (self.symbols + 1) as u8
    }

    /// Width of the one-hot input: blank, `S` symbols, marker.
    pub fn input_size(&self) -> usize {
        self.symbols + 2
    }

    /// Output classes: blank and the `S` symbols.
    pub fn classes(&self) -> usize {
        self.symbols + 1
    }

    /// The cross-entropy per step of the memoryless strategy (blank, then uniform guesses):
    /// `L ln S / N`.
    pub fn baseline_loss(&self) -> f64 {
        self.length as f64 * (self.symbols as f64).ln() / self.steps() as f64
    }

    /// Check the sizes.
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] naming the size when `length` or `delay` is 0 or
    /// `symbols` is not in `1..=253` (symbols are bytes, with room for the marker).
    pub fn validate(&self) -> Result<(), DataError> {
        let invalid = |reason: String| Err(DataError::InvalidArgument { reason });
        if self.length == 0 {
            return invalid("copy task: length must be at least 1".into());
        }
        if self.delay == 0 {
            return invalid("copy task: delay must be at least 1".into());
        }
        if !(1..=253).contains(&self.symbols) {
            return invalid(format!(
                "copy task: symbols {} must be in 1..=253",
                self.symbols
            ));
        }
        Ok(())
    }

    /// `n` sequences drawn from `seed`.
    ///
    /// # Errors
    /// As [`CopySpec::validate`], or when `n` is 0.
    pub fn generate(&self, n: usize, seed: u64) -> Result<CopyTask, DataError> {
        self.validate()?;
        if n == 0 {
            return Err(DataError::InvalidArgument {
                reason: "copy task: at least one sequence is needed".into(),
            });
        }
        let steps = self.steps();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut images = vec![Self::BLANK; n * steps];
        for seq in images.chunks_exact_mut(steps) {
            for x in &mut seq[..self.length] {
                *x = rng.random_range(1..=self.symbols as u8);
            }
            seq[self.length + self.delay - 1] = self.marker();
        }
        Ok(CopyTask {
            spec: *self,
            symbols: images,
            n,
        })
    }

    /// The target of every step of input sequence `input`, into `out` (cleared first).
    pub fn targets(&self, input: &[u8], out: &mut Vec<usize>) {
        out.clear();
        out.resize(self.length + self.delay, usize::from(Self::BLANK));
        out.extend(input[..self.length].iter().map(|&s| usize::from(s)));
    }

    /// Append the one-hot encoding of `input` (`N × input_size`, row-major) to `out`.
    pub fn one_hot(&self, input: &[u8], out: &mut Vec<f32>) {
        let width = self.input_size();
        let start = out.len();
        out.resize(start + input.len() * width, 0.0);
        for (t, &s) in input.iter().enumerate() {
            out[start + t * width + usize::from(s)] = 1.0;
        }
    }
}

/// `n` copy-task sequences ([`CopySpec::generate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyTask {
    spec: CopySpec,
    /// `(n, N)` symbols.
    symbols: Vec<u8>,
    n: usize,
}

impl CopyTask {
    /// The sizes.
    pub fn spec(&self) -> CopySpec {
        self.spec
    }

    /// The input symbols of sequence `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn sequence(&self, i: usize) -> &[u8] {
        let steps = self.spec.steps();
        &self.symbols[i * steps..(i + 1) * steps]
    }
}

impl Task for CopyTask {
    fn len(&self) -> usize {
        self.n
    }

    fn steps(&self) -> usize {
        self.spec.steps()
    }

    fn width(&self) -> usize {
        self.spec.input_size()
    }

    fn classes(&self) -> usize {
        self.spec.classes()
    }

    fn batch(&self, idx: &[usize]) -> Batch {
        let steps = self.steps();
        let mut inputs = Vec::with_capacity(idx.len() * steps * self.width());
        let (mut targets, mut one) = (Vec::with_capacity(idx.len() * steps), Vec::new());
        for &i in idx {
            self.spec.one_hot(self.sequence(i), &mut inputs);
            self.spec.targets(self.sequence(i), &mut one);
            targets.extend_from_slice(&one);
        }
        Batch {
            size: idx.len(),
            steps,
            width: self.width(),
            inputs,
            targets,
            mask: vec![true; idx.len() * steps],
            values: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_targets() {
        let spec = CopySpec::PAPER;
        let data = spec.generate(50, 3).unwrap();
        assert_eq!((data.len(), data.steps(), spec.steps()), (50, 220, 220));
        assert_eq!((data.width(), data.classes()), (10, 9));
        let mut y = Vec::new();
        for i in 0..data.len() {
            let x = data.sequence(i);
            assert!(x[..10].iter().all(|&s| (1..=8).contains(&s)));
            assert!(x[10..209].iter().all(|&s| s == 0));
            assert_eq!(x[209], 9);
            assert!(x[210..].iter().all(|&s| s == 0));
            spec.targets(x, &mut y);
            assert_eq!(y.len(), 220);
            assert!(y[..210].iter().all(|&s| s == 0));
            assert!(
                y[210..]
                    .iter()
                    .zip(&x[..10])
                    .all(|(&t, &s)| t == s as usize)
            );
        }
        // Reproducible from the seed, different across seeds.
        assert_eq!(spec.generate(50, 3).unwrap(), data);
        assert_ne!(spec.generate(50, 4).unwrap(), data);
        // Every symbol appears (500 draws of 8).
        let mut seen = [false; 9];
        (0..50).for_each(|i| {
            data.sequence(i)[..10]
                .iter()
                .for_each(|&s| seen[s as usize] = true)
        });
        assert!(seen[1..].iter().all(|&s| s));
    }

    #[test]
    fn baseline_is_the_papers() {
        // Spec C3: baseline 0.095 for delay 200, length 10, 8 symbols.
        let b = CopySpec::PAPER.baseline_loss();
        assert!((b - 10.0 * 8f64.ln() / 220.0).abs() < 1e-15);
        assert!((b - 0.095).abs() < 0.001);
    }

    #[test]
    fn batches_are_one_hot_with_every_step_scored() {
        let spec = CopySpec {
            delay: 2,
            length: 1,
            symbols: 3,
        };
        let task = spec.generate(3, 7).unwrap();
        let b = task.batch(&[2, 0]);
        assert_eq!((b.size, b.steps, b.width), (2, 4, 5));
        for (row, &i) in [2usize, 0].iter().enumerate() {
            let x = task.sequence(i);
            for (t, &symbol) in x.iter().enumerate() {
                let hot: Vec<usize> = (0..5).filter(|&k| b.input(row, t)[k] == 1.0).collect();
                assert_eq!(hot, [usize::from(symbol)], "one-hot of step {t}");
            }
            assert_eq!(
                &b.targets[row * 4..row * 4 + 4],
                &[0, 0, 0, usize::from(x[0])]
            );
        }
        assert!(b.mask.iter().all(|&m| m));
    }

    #[test]
    fn one_hot_rows() {
        let spec = CopySpec {
            delay: 2,
            length: 1,
            symbols: 3,
        };
        let mut out = vec![7.0];
        spec.one_hot(&[2, 4, 0, 0], &mut out);
        assert_eq!(out.len(), 1 + 4 * 5);
        let rows: Vec<&[f32]> = out[1..].chunks(5).collect();
        assert_eq!(rows[0], &[0.0, 0.0, 1.0, 0.0, 0.0]);
        assert_eq!(rows[1], &[0.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(rows[2], &[1.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn bad_sizes_are_errors() {
        for bad in [
            CopySpec {
                length: 0,
                ..CopySpec::PAPER
            },
            CopySpec {
                delay: 0,
                ..CopySpec::PAPER
            },
            CopySpec {
                symbols: 0,
                ..CopySpec::PAPER
            },
            CopySpec {
                symbols: 254,
                ..CopySpec::PAPER
            },
        ] {
            assert!(bad.generate(3, 0).is_err(), "{bad:?}");
        }
        assert!(CopySpec::PAPER.generate(0, 0).is_err());
    }
}
