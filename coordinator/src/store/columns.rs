//! A row's columns by name, whichever way the backend read it: the one decoding of a fleet
//! row ([`super::fleet_row`]) reads PostgreSQL's rows through sqlx and SQLite's as
//! [`OwnedRow`]s copied straight from the statement ([`super::sqlite_scan`]).

use std::collections::HashMap;
use std::sync::Arc;

use super::sql::corrupt;

/// A row's columns, each taken once by name (a taken text or blob is moved out).
pub(crate) trait Columns {
    /// A text column (NULL is `None`).
    fn text(&mut self, col: &str) -> Result<Option<String>, sqlx::Error>;
    /// An integer column.
    fn int(&mut self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    /// A floating-point column (an integer is widened).
    fn real(&mut self, col: &str) -> Result<Option<f64>, sqlx::Error>;
    /// A binary column.
    fn blob(&mut self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error>;
    /// A boolean column (SQLite keeps 0 or 1).
    fn flag(&mut self, col: &str) -> Result<bool, sqlx::Error>;

    /// A text column that may not be NULL.
    fn required_text(&mut self, col: &str) -> Result<String, sqlx::Error> {
        self.text(col)?
            .ok_or_else(|| corrupt(col, "NULL where a text is required"))
    }

    /// An integer column that may not be NULL.
    fn required_int(&mut self, col: &str) -> Result<i64, sqlx::Error> {
        self.int(col)?
            .ok_or_else(|| corrupt(col, "NULL where an integer is required"))
    }
}

/// One value of an [`OwnedRow`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A double.
    Real(f64),
    /// A text.
    Text(String),
    /// A blob.
    Blob(Vec<u8>),
    /// A text that is not UTF-8 (why), which no column reads.
    NotUtf8(String),
}

/// A row copied out of a statement: its cells, and its statement's column names (shared by
/// every row of the statement).
#[derive(Debug, Clone)]
pub(crate) struct OwnedRow {
    /// Column name → index into `cells`.
    pub names: Arc<HashMap<String, usize>>,
    /// The values, in the statement's column order.
    pub cells: Vec<Cell>,
}

impl OwnedRow {
    /// The text of `col`, when it is one (not taken).
    pub fn peek_text(&self, col: &str) -> Option<&str> {
        match self.names.get(col).and_then(|i| self.cells.get(*i)) {
            Some(Cell::Text(t)) => Some(t),
            _ => None,
        }
    }

    /// The cell of `col`, taken (left NULL).
    fn take(&mut self, col: &str) -> Result<Cell, sqlx::Error> {
        let i = *self
            .names
            .get(col)
            .ok_or_else(|| sqlx::Error::ColumnNotFound(col.to_string()))?;
        self.cells
            .get_mut(i)
            .map(|c| std::mem::replace(c, Cell::Null))
            .ok_or_else(|| sqlx::Error::ColumnNotFound(col.to_string()))
    }
}

/// The type error of a cell that is not what a column holds.
fn mismatch(col: &str, want: &str, got: &Cell) -> sqlx::Error {
    let got = match got {
        Cell::Null => "NULL",
        Cell::Int(_) => "an integer",
        Cell::Real(_) => "a double",
        Cell::Text(_) => "a text",
        Cell::Blob(_) => "a blob",
        Cell::NotUtf8(e) => return corrupt(col, format!("a text that is not UTF-8 ({e})")),
    };
    corrupt(col, format!("{got} where {want} is kept"))
}

impl Columns for OwnedRow {
    fn text(&mut self, col: &str) -> Result<Option<String>, sqlx::Error> {
        match self.take(col)? {
            Cell::Null => Ok(None),
            Cell::Text(t) => Ok(Some(t)),
            other => Err(mismatch(col, "a text", &other)),
        }
    }

    fn int(&mut self, col: &str) -> Result<Option<i64>, sqlx::Error> {
        match self.take(col)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(v)),
            other => Err(mismatch(col, "an integer", &other)),
        }
    }

    fn real(&mut self, col: &str) -> Result<Option<f64>, sqlx::Error> {
        match self.take(col)? {
            Cell::Null => Ok(None),
            Cell::Real(v) => Ok(Some(v)),
            // A column of REAL affinity keeps an integral value as an integer when that loses
            // nothing: sqlx widens it too.
            #[allow(clippy::cast_precision_loss)]
            Cell::Int(v) => Ok(Some(v as f64)),
            other => Err(mismatch(col, "a double", &other)),
        }
    }

    fn blob(&mut self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
        match self.take(col)? {
            Cell::Null => Ok(None),
            Cell::Blob(b) => Ok(Some(b)),
            other => Err(mismatch(col, "a blob", &other)),
        }
    }

    fn flag(&mut self, col: &str) -> Result<bool, sqlx::Error> {
        match self.take(col)? {
            Cell::Int(v) => Ok(v != 0),
            other => Err(mismatch(col, "a boolean", &other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: Vec<(&str, Cell)>) -> OwnedRow {
        let names = cells
            .iter()
            .enumerate()
            .map(|(i, (n, _))| ((*n).to_string(), i))
            .collect();
        OwnedRow {
            names: Arc::new(names),
            cells: cells.into_iter().map(|(_, c)| c).collect(),
        }
    }

    #[test]
    fn each_column_reads_as_its_kind_and_a_wrong_kind_names_the_column() {
        let mut r = row(vec![
            ("id", Cell::Text("r-1".into())),
            ("n", Cell::Int(3)),
            ("x", Cell::Int(2)),
            ("b", Cell::Blob(vec![1, 2])),
            ("q", Cell::Int(1)),
            ("none", Cell::Null),
            ("bad", Cell::Blob(vec![0])),
        ]);
        assert_eq!(r.required_text("id").unwrap(), "r-1");
        assert_eq!(r.int("n").unwrap(), Some(3));
        assert_eq!(r.real("x").unwrap(), Some(2.0));
        assert_eq!(r.blob("b").unwrap(), Some(vec![1, 2]));
        assert!(r.flag("q").unwrap());
        assert_eq!(r.text("none").unwrap(), None);
        let e = r.text("bad").unwrap_err().to_string();
        assert!(
            e.contains("bad") && e.contains("a blob where a text is kept"),
            "{e}"
        );
        let e = r.int("missing").unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
        let e = r.required_text("none").unwrap_err().to_string();
        assert!(e.contains("none") && e.contains("NULL"), "{e}");
    }
}
