//! Host detection and `--preset auto`.
