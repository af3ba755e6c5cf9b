//! The engines: numpy (ndarray, CPU only) and pytorch (tch, CPU or CUDA, feature `torch`).
