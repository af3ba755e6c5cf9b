//! Console output and `--load` summaries.

mod compare;
mod console;
mod format;
mod load;
mod quiet;
mod tables;
mod terminal;

pub use compare::compare_table;
pub use console::{Console, ExecutionDevice};
pub use format::{figure_line, size_label};
pub use load::{load_summary, LoadedResult};
pub use quiet::QuietConsole;
pub use tables::summary_tables;
pub use terminal::TerminalConsole;
