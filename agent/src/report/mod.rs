//! Console output and `--load` summaries.
