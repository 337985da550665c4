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
//! Sequences are stored as a [`Split`] of `1 × N` "images" of symbol bytes (labels unused,
//! all 0), so that the seeded batch order, validation splits and evaluation of image tasks
//! apply unchanged.
//!
//! ```
//! use dales_data::copy::CopySpec;
//!
//! let spec = CopySpec { delay: 5, length: 3, symbols: 8 };
//! let data = spec.generate(4, 1).unwrap();
//! let x = data.image(0);
//! assert_eq!(x.len(), 11);
//! assert_eq!(x[7], 9); // the marker at step L + delay − 1
//! let mut y = Vec::new();
//! spec.targets(x, &mut y);
//! assert_eq!(&y[8..], &[x[0] as usize, x[1] as usize, x[2] as usize]);
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{DataError, Split};

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
    pub fn generate(&self, n: usize, seed: u64) -> Result<Split, DataError> {
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
        Split::new(images, vec![0; n], 1, steps, 1)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_targets() {
        let spec = CopySpec::PAPER;
        let data = spec.generate(50, 3).unwrap();
        assert_eq!((data.len(), data.cols(), spec.steps()), (50, 220, 220));
        let mut y = Vec::new();
        for i in 0..data.len() {
            let x = data.image(i);
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
            data.image(i)[..10]
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
