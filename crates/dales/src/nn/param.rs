//! What a layer tells the rest of dales about its parameters: their checkpoint names, their roles
//! (which choose the update rule, see [`crate::optim::group`]) and their values.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// The part a parameter plays in its layer. Update rules are chosen per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ParamRole {
    /// Unconstrained weight matrix `W` of a dense layer.
    Weight,
    /// Additive bias `b`.
    Bias,
    /// Post-normalisation gain of a layer-norm layer.
    LnGain,
    /// Post-normalisation bias of a layer-norm layer.
    LnBias,
    /// DANN excitatory weights `Wex` (E ← input), ≥ 0.
    Wex,
    /// DANN inhibitory weights `Wix` (I ← input), ≥ 0.
    Wix,
    /// DANN inhibitory-to-excitatory weights `Wei` (E ← I), ≥ 0.
    Wei,
    /// DANN shunt log-weights `alpha` (one per I unit), unconstrained.
    Alpha,
    /// DANN gain `g` (one per E unit), ≥ 0.
    Gain,
    /// ColumnEI magnitudes `w_pos`, ≥ 0; signs are fixed by the presynaptic unit.
    WPos,
    /// Learned gamma-activation shape `n` or `s` (spec C2), unconstrained; `n` is floored at
    /// [`crate::nn::gamma::N_MIN`] inside the activation.
    Shape,
    /// Input weights `U` of a standard recurrent cell (spec B1), unconstrained.
    Input,
    /// Recurrent weights `W` of a standard recurrent cell (spec B1), unconstrained (or
    /// sign-frozen, spec B3).
    Recurrent,
    /// ColEI recurrent magnitudes `W_pos` (spec B1), ≥ 0; the I→I block may be ablated.
    RecurrentWPos,
}

impl ParamRole {
    /// Every role, in a fixed order (used to print and validate rule tables).
    pub const ALL: [ParamRole; 14] = [
        ParamRole::Weight,
        ParamRole::Bias,
        ParamRole::LnGain,
        ParamRole::LnBias,
        ParamRole::Wex,
        ParamRole::Wix,
        ParamRole::Wei,
        ParamRole::Alpha,
        ParamRole::Gain,
        ParamRole::WPos,
        ParamRole::Shape,
        ParamRole::Input,
        ParamRole::Recurrent,
        ParamRole::RecurrentWPos,
    ];

    /// The snake_case name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            ParamRole::Weight => "weight",
            ParamRole::Bias => "bias",
            ParamRole::LnGain => "ln_gain",
            ParamRole::LnBias => "ln_bias",
            ParamRole::Wex => "wex",
            ParamRole::Wix => "wix",
            ParamRole::Wei => "wei",
            ParamRole::Alpha => "alpha",
            ParamRole::Gain => "gain",
            ParamRole::WPos => "w_pos",
            ParamRole::Shape => "shape",
            ParamRole::Input => "input",
            ParamRole::Recurrent => "recurrent",
            ParamRole::RecurrentWPos => "recurrent_w_pos",
        }
    }
}

/// A parameter value: burn tensors have their rank in the type, layers hold vectors and matrices.
#[derive(Debug, Clone)]
pub enum ParamValue {
    /// A 1-D tensor (biases, gains, `alpha`, `sign`).
    Vector(Tensor<1>),
    /// A 2-D tensor `(n_out, n_in)`.
    Matrix(Tensor<2>),
}

impl ParamValue {
    /// Shape as a list of dimensions.
    pub fn shape(&self) -> Vec<usize> {
        match self {
            ParamValue::Vector(t) => t.dims().to_vec(),
            ParamValue::Matrix(t) => t.dims().to_vec(),
        }
    }

    /// Number of entries.
    pub fn numel(&self) -> usize {
        self.shape().iter().product()
    }

    /// The values as one flat vector (row-major).
    pub fn flatten(&self) -> Tensor<1> {
        match self {
            ParamValue::Vector(t) => t.clone(),
            ParamValue::Matrix(t) => t.clone().flatten(0, 1),
        }
    }

    /// A value of this shape holding `flat` (row-major).
    pub fn with_flat(&self, flat: Tensor<1>) -> ParamValue {
        match self {
            ParamValue::Vector(_) => ParamValue::Vector(flat),
            ParamValue::Matrix(t) => ParamValue::Matrix(flat.reshape(t.dims())),
        }
    }

    /// The same value in another float dtype (f64 for finite-difference checks).
    pub fn cast(self, dtype: burn::tensor::DType) -> ParamValue {
        match self {
            ParamValue::Vector(t) => ParamValue::Vector(t.cast(dtype)),
            ParamValue::Matrix(t) => ParamValue::Matrix(t.cast(dtype)),
        }
    }

    /// Copy the values to the host as f64, row-major.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        self.flatten()
            .into_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .expect("float tensor data converts to f64")
    }

    /// Copy the values to the host as f32, row-major.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        self.flatten()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("float tensor data converts to f32")
    }

    /// A value of `shape` (1-D or 2-D) from row-major f32 values.
    pub fn from_f32(values: Vec<f32>, shape: &[usize], device: &Device) -> ParamValue {
        match *shape {
            [n] => ParamValue::Vector(Tensor::from_data(TensorData::new(values, [n]), device)),
            [r, c] => {
                ParamValue::Matrix(Tensor::from_data(TensorData::new(values, [r, c]), device))
            }
            _ => panic!("parameters are 1-D or 2-D, got shape {shape:?}"),
        }
    }

    /// The tensor, which must be 1-D.
    pub fn into_vector(self) -> Tensor<1> {
        match self {
            ParamValue::Vector(t) => t,
            ParamValue::Matrix(t) => panic!("expected a vector, got a matrix {:?}", t.dims()),
        }
    }

    /// The tensor, which must be 2-D.
    pub fn into_matrix(self) -> Tensor<2> {
        match self {
            ParamValue::Matrix(t) => t,
            ParamValue::Vector(t) => panic!("expected a matrix, got a vector {:?}", t.dims()),
        }
    }
}

/// One entry of a layer's parameter list.
#[derive(Debug, Clone)]
pub struct ParamEntry {
    /// Name inside the layer, as in the checkpoint (`wex`, `bias`, ...).
    pub name: &'static str,
    /// Role that selects the update rule; `None` for a fixed buffer (ColumnEI `sign`).
    pub role: Option<ParamRole>,
    /// Current value.
    pub value: ParamValue,
    /// The fan sizes of the path this parameter belongs to, when they are not the layer's (the
    /// recurrent weights of a cell: fan-in = the hidden size, not the input size).
    pub fan: Option<Fan>,
}

impl ParamEntry {
    pub(crate) fn matrix(name: &'static str, role: ParamRole, p: &Param<Tensor<2>>) -> Self {
        ParamEntry {
            name,
            role: Some(role),
            value: ParamValue::Matrix(p.val()),
            fan: None,
        }
    }

    pub(crate) fn vector(name: &'static str, role: ParamRole, p: &Param<Tensor<1>>) -> Self {
        ParamEntry {
            name,
            role: Some(role),
            value: ParamValue::Vector(p.val()),
            fan: None,
        }
    }

    /// A fixed buffer (not trained), such as a ColumnEI `sign`.
    pub(crate) fn buffer(name: &'static str, value: Tensor<1>) -> Self {
        ParamEntry {
            name,
            role: None,
            value: ParamValue::Vector(value),
            fan: None,
        }
    }

    /// The same entry with the fan sizes of its own path.
    pub(crate) fn with_fan(self, fan: Fan) -> Self {
        ParamEntry {
            fan: Some(fan),
            ..self
        }
    }
}

/// Sizes the DANN gradient corrections need (spec A3.2, B3), and the E block of a ColEI
/// recurrent matrix (its first `ne` units are excitatory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fan {
    /// Fan-in `d` (number of inputs).
    pub d: usize,
    /// Number of excitatory output units `ne`.
    pub ne: usize,
}

/// Replace a parameter's value, keeping its identity, as a trainable leaf.
///
/// `value` may come from arithmetic without autodiff (an optimiser step, a clamp, a checkpoint).
/// It is brought back to the parameter's autodiff context and marked `require_grad` here, in the
/// one place every update goes through. Forgetting this is burn's silent-freeze trap
/// (burn-notes: a clamped parameter silently drops out of the gradients).
pub(crate) fn set<const D: usize>(p: Param<Tensor<D>>, value: Tensor<D>) -> Param<Tensor<D>> {
    p.map(|old| {
        let value = value.without_autodiff();
        if old.is_autodiff() {
            value.autodiff().require_grad()
        } else {
            value
        }
    })
}

/// A copy of a parameter without autodiff (for evaluation).
pub(crate) fn detached<const D: usize>(p: &Param<Tensor<D>>) -> Param<Tensor<D>> {
    Param::from_tensor(p.val().without_autodiff())
}

/// A fresh trainable parameter.
pub(crate) fn param<const D: usize>(value: Tensor<D>) -> Param<Tensor<D>> {
    Param::from_tensor(value)
}

/// The parameters of one layer, as optimisers and checkpoints see them.
#[derive(Debug, Clone)]
pub struct ParamLayer {
    /// Checkpoint prefix (`hidden.0`, `output`).
    pub name: String,
    /// Fan sizes for gradient corrections.
    pub fan: Fan,
    /// Parameters and buffers, in the layer's order.
    pub entries: Vec<ParamEntry>,
}

/// A model made of parameter layers: what optimisers and checkpoints work on.
pub trait Parameterised: Sized {
    /// Every layer's parameters, in forward order.
    fn param_layers(&self) -> Vec<ParamLayer>;

    /// The same model holding `values` (one vector per layer, in the order of
    /// [`Parameterised::param_layers`]).
    fn with_layer_values(self, values: Vec<Vec<ParamValue>>) -> Self;

    /// Every parameter and buffer as (`layer.param` name, entry), in forward order.
    fn named_entries(&self) -> Vec<(String, ParamEntry)> {
        self.param_layers()
            .into_iter()
            .flat_map(|l| {
                let prefix = l.name;
                l.entries
                    .into_iter()
                    .map(move |e| (format!("{prefix}.{}", e.name), e))
            })
            .collect()
    }
}
