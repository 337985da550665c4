//! ColumnEI: Dale's principle by sign-constrained columns, after Song et al. 2016 (spec A1.4,
//! A2.3).
//!
//! W = w_pos ⊙ sign, with w_pos ≥ 0 trained and `sign` fixed per presynaptic unit: the last
//! ni inputs of a hidden or output layer are inhibitory. The first layer sees raw pixels and is
//! all excitatory, with its bias centring the mean drive (b = −d·σ·pixel_mean).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::dense::affine;
use super::init::{
    InitRng, columnei_first_bias, columnei_first_sigma, columnei_sigmas, columnei_split, filled,
};
use super::layer::{Layer, assert_same_shapes};
use super::param::{ParamEntry, ParamRole, ParamValue, param, set};
use crate::error::{Error, Result};

/// Configuration of a [`ColumnEiDense`] layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColumnEiConfig {
    /// Number of inputs `d`.
    pub n_in: usize,
    /// Number of outputs.
    pub n_out: usize,
    /// E:I ratio of the inputs (10 → 500 E + 50 I of 550); ignored in the first layer.
    pub ratio: usize,
    /// First layer: all inputs excitatory, bias centring with `pixel_mean`.
    pub first_layer: bool,
    /// Mean input pixel of the dataset (Fashion-MNIST 0.2860, MNIST 0.1307, KMNIST 0.1918).
    pub pixel_mean: f64,
}

impl ColumnEiConfig {
    /// Input split (ne, ni): (d, 0) in the first layer, [`columnei_split`] elsewhere.
    pub fn split(&self) -> (usize, usize) {
        if self.first_layer {
            (self.n_in, 0)
        } else {
            columnei_split(self.n_in, self.ratio)
        }
    }

    /// A [`ColumnEiDense`] layer initialised as in spec A2.3.
    pub fn init(&self, rng: &mut InitRng, device: &Device) -> Result<ColumnEiDense> {
        self.init_split(self.split(), rng, device)
    }

    /// As [`ColumnEiConfig::init`], with the inputs split explicitly into `ne` excitatory
    /// then `ni` inhibitory ones (after a ColumnEI convolution: its inhibitory channels'
    /// features); the first layer ignores the split (all excitatory).
    pub fn init_split(
        &self,
        (ne, ni): (usize, usize),
        rng: &mut InitRng,
        device: &Device,
    ) -> Result<ColumnEiDense> {
        if self.n_in == 0 {
            return Err(Error::config("n_in", 0, "at least 1 input"));
        }
        if self.n_out == 0 {
            return Err(Error::config("n_out", 0, "at least 1 output"));
        }
        if !self.first_layer && self.ratio == 0 {
            return Err(Error::config("ratio", 0, "an E:I ratio of at least 1"));
        }
        let (ne, ni) = if self.first_layer {
            (self.n_in, 0)
        } else {
            (ne, ni)
        };
        assert_eq!(ne + ni, self.n_in, "the split covers the inputs");
        if !self.first_layer && (ne == 0 || ni == 0) {
            return Err(Error::config(
                "n_in",
                self.n_in,
                format!(
                    "enough inputs for both an E and an I population at ratio {}",
                    self.ratio
                ),
            ));
        }
        let (n_out, d) = (self.n_out, self.n_in);
        let (w_pos, bias) = if self.first_layer {
            let w = rng.exponential(n_out * d, columnei_first_sigma(d));
            (w, columnei_first_bias(d, self.pixel_mean))
        } else {
            let (se, si) = columnei_sigmas(ne, ni);
            let we = rng.exponential(n_out * ne, se);
            let wi = rng.exponential(n_out * ni, si);
            let mut w = Vec::with_capacity(n_out * d);
            for (e_row, i_row) in we.chunks_exact(ne).zip(wi.chunks_exact(ni)) {
                w.extend_from_slice(e_row);
                w.extend_from_slice(i_row);
            }
            (w, 0.0)
        };
        let sign: Vec<f64> = (0..d).map(|j| if j < ne { 1.0 } else { -1.0 }).collect();
        Ok(ColumnEiDense {
            w_pos: param(super::init::matrix(&w_pos, n_out, d, device)),
            sign: super::init::matrix(&sign, 1, d, device).reshape([d]),
            bias: param(filled(n_out, bias, device)),
        })
    }
}

/// z = x (w_pos ⊙ sign)ᵀ + b.
#[derive(Module, Debug)]
pub struct ColumnEiDense {
    /// `w_pos (n_out, d)` ≥ 0.
    pub w_pos: Param<Tensor<2>>,
    /// Fixed `sign (d)` ∈ {+1, −1} of each input column (not trained).
    pub sign: Tensor<1>,
    /// `b (n_out)`.
    pub bias: Param<Tensor<1>>,
}

impl ColumnEiDense {
    /// The signed weight matrix W = w_pos ⊙ sign, `(n_out, d)`.
    pub fn weight(&self) -> Tensor<2> {
        self.w_pos.val() * self.sign.clone().unsqueeze()
    }
}

impl Layer for ColumnEiDense {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        affine(x, self.weight(), self.bias.val())
    }

    fn n_in(&self) -> usize {
        self.w_pos.dims()[1]
    }

    fn n_out(&self) -> usize {
        self.w_pos.dims()[0]
    }

    fn entries(&self) -> Vec<ParamEntry> {
        vec![
            ParamEntry::matrix("w_pos", ParamRole::WPos, &self.w_pos),
            ParamEntry::buffer("sign", self.sign.clone()),
            ParamEntry::vector("bias", ParamRole::Bias, &self.bias),
        ]
    }

    fn with_values(self, values: Vec<ParamValue>) -> Self {
        assert_same_shapes(&self.entries(), &values);
        let mut v = values.into_iter();
        ColumnEiDense {
            w_pos: set(self.w_pos, v.next().unwrap().into_matrix()),
            sign: v.next().unwrap().into_vector().detach(),
            bias: set(self.bias, v.next().unwrap().into_vector()),
        }
    }
}
