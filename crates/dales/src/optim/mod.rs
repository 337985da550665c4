//! Update rules as data: parameter groups with a gradient scale, a rule (gradient descent or
//! exponentiated gradient) and a projection, applied by one [`Optimizer`] in one stage order.

pub mod clip;
pub mod decay;
pub mod dngd;
pub mod group;
pub mod method;
pub mod plateau;
pub mod rule;
pub mod step;

pub use clip::{Clip, ClipScope};
pub use decay::StepDecay;
pub use group::{GradScale, GroupRule, Projection, RuleTable, UpdateRule};
pub use method::Method;
pub use plateau::{Plateau, PlateauState};
pub use step::Optimizer;

#[cfg(test)]
pub(crate) mod test_util {
    use burn::tensor::{Tensor, TensorData};

    /// A CPU vector.
    pub fn t(v: &[f32]) -> Tensor<1> {
        Tensor::from_data(
            TensorData::new(v.to_vec(), [v.len()]),
            &crate::device::cpu(),
        )
    }

    /// Host copy.
    pub fn host(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().unwrap()
    }
}
