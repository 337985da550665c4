//! Devices dales runs on.
//!
//! The CPU backend is burn's NdArray backend: on this project's 2-core machines it measured
//! faster than Flex for the DANN MLP step (burn-notes: 5.0 vs 7.2 ms at batch 32). burn 0.22
//! marks NdArray deprecated in favour of Flex; the choice lives here only.
//! The GPU backend (cargo feature `gpu`) is burn's wgpu backend, built without fusion.

pub use burn::tensor::Device;

/// The CPU device, without autodiff.
#[allow(deprecated)]
pub fn cpu() -> Device {
    Device::ndarray()
}

/// The default GPU device (wgpu), without autodiff.
#[cfg(feature = "gpu")]
pub fn gpu() -> Device {
    Device::wgpu(burn::tensor::DeviceKind::default())
}

/// Which device a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    /// [`cpu`].
    Cpu,
    /// The wgpu device (needs the `gpu` feature).
    Gpu,
}

impl DeviceChoice {
    /// The device, or an error naming the missing feature.
    pub fn device(self) -> crate::Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(cpu()),
            #[cfg(feature = "gpu")]
            DeviceChoice::Gpu => Ok(gpu()),
            #[cfg(not(feature = "gpu"))]
            DeviceChoice::Gpu => Err(crate::Error::config(
                "device",
                "gpu",
                "cpu, or a dales built with `--features gpu`",
            )),
        }
    }
}
