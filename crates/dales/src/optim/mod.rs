//! Update rules as data: parameter groups with a gradient scale, a rule (gradient descent or
//! exponentiated gradient) and a projection, applied by one [`Optimizer`] in one stage order.

pub mod clip;
pub mod group;
pub mod method;
pub mod rule;
pub mod step;

pub use clip::{Clip, ClipScope};
pub use group::{GradScale, GroupRule, Projection, RuleTable, UpdateRule};
pub use method::Method;
pub use step::Optimizer;
