//! Whether CUDA is usable, without depending on an engine being built.

/// Whether CUDA is usable through the pytorch engine (always false without feature `torch`).
pub fn cuda_usable() -> bool {
    #[cfg(feature = "torch")]
    {
        super::torch::cuda_available()
    }
    #[cfg(not(feature = "torch"))]
    {
        false
    }
}
