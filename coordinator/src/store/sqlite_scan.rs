//! Reading many rows from SQLite straight through its C API, for the fleet reads of the
//! reports (a month of 1,000 boards is 31,000 `fleet_runs` rows).
//!
//! Through sqlx each row crossed from its connection's worker thread over a channel, and
//! each of its ~30 values was duplicated (`sqlite3_value_dup`) and then looked up by name
//! and decoded again: 270-400 ms for those 31,000 rows, where SQLite itself steps through
//! them in ~45 ms (`sqlite3` on the same file). Here the statement runs on the caller's
//! thread over the pooled connection's own handle (sqlx's `lock_handle`, which holds the
//! connection's worker while it is used) and each value is copied once into an
//! [`OwnedRow`].
//!
//! The only unsafe code of the store: each call is one of SQLite's documented C functions on
//! a handle that the lock keeps open and a statement this module prepares and finalizes.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::NonNull;
use std::sync::Arc;

use libsqlite3_sys as ffi;
use sqlx::sqlite::SqlitePool;

use super::columns::{Cell, OwnedRow};
use super::sql::Param;

/// `sql` with `params` (`$1`, `$2`, … in order) on a connection of `pool`: every row, each
/// value copied once. SQLite's error (with its message) is an error; nothing panics.
pub(crate) async fn scan(
    pool: &SqlitePool,
    sql: &str,
    params: &[Param],
) -> Result<Vec<OwnedRow>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle();
    // The steps are CPU and page-cache work (~50 ms for a month of 1,000 boards): a worker
    // of a multi-threaded runtime hands its other tasks on meanwhile.
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::block_in_place(|| read_all(db, sql, params))
    } else {
        read_all(db, sql, params)
    }
}

/// A prepared statement, finalized when dropped.
struct Statement(NonNull<ffi::sqlite3_stmt>);

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: the statement was prepared by `read_all` and is finalized once, here.
        unsafe {
            ffi::sqlite3_finalize(self.0.as_ptr());
        }
    }
}

/// SQLite's error for `rc` on `db`, with its message and what was being done.
fn sqlite_error(db: NonNull<ffi::sqlite3>, rc: c_int, doing: &str) -> sqlx::Error {
    // SAFETY: `db` is an open connection (the lock holds it); `sqlite3_errmsg` returns a
    // NUL-terminated string that lives until the next call on `db`, copied out at once.
    let message = unsafe {
        let m = ffi::sqlite3_errmsg(db.as_ptr());
        if m.is_null() {
            String::new()
        } else {
            CStr::from_ptr(m).to_string_lossy().into_owned()
        }
    };
    sqlx::Error::Protocol(format!("sqlite {doing}: {message} (code {rc})"))
}

/// Prepares, binds and steps `sql` on `db`.
fn read_all(
    db: NonNull<ffi::sqlite3>,
    sql: &str,
    params: &[Param],
) -> Result<Vec<OwnedRow>, sqlx::Error> {
    let text = CString::new(sql)
        .map_err(|e| sqlx::Error::Protocol(format!("a statement with a NUL byte: {e}")))?;
    let mut raw = std::ptr::null_mut();
    // SAFETY: `db` is open; `text` is NUL-terminated and outlives the call; `raw` receives
    // the statement (NULL for an empty one).
    let rc = unsafe {
        ffi::sqlite3_prepare_v2(
            db.as_ptr(),
            text.as_ptr(),
            -1,
            &raw mut raw,
            std::ptr::null_mut(),
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(sqlite_error(db, rc, "preparing a fleet read"));
    }
    let stmt = Statement(
        NonNull::new(raw).ok_or_else(|| sqlx::Error::Protocol("an empty statement".into()))?,
    );
    bind(db, &stmt, params)?;
    let names = Arc::new(column_names(&stmt));
    let width = names.len();
    let mut rows = Vec::new();
    loop {
        // SAFETY: a prepared, bound statement of `db`.
        let rc = unsafe { ffi::sqlite3_step(stmt.0.as_ptr()) };
        match rc {
            ffi::SQLITE_ROW => {
                let cells = (0..width)
                    .map(|i| cell(&stmt, i))
                    .collect::<Result<_, _>>()?;
                rows.push(OwnedRow {
                    names: Arc::clone(&names),
                    cells,
                });
            }
            ffi::SQLITE_DONE => return Ok(rows),
            rc => return Err(sqlite_error(db, rc, "reading fleet rows")),
        }
    }
}

/// Binds `params` to `$1`, `$2`, … (each must be in the statement).
fn bind(db: NonNull<ffi::sqlite3>, stmt: &Statement, params: &[Param]) -> Result<(), sqlx::Error> {
    for (i, p) in params.iter().enumerate() {
        let name = CString::new(format!("${}", i + 1)).unwrap_or_default();
        // SAFETY: a prepared statement; `name` is NUL-terminated.
        let index = unsafe { ffi::sqlite3_bind_parameter_index(stmt.0.as_ptr(), name.as_ptr()) };
        if index == 0 {
            return Err(sqlx::Error::Protocol(format!(
                "parameter ${} is not in the statement",
                i + 1
            )));
        }
        let rc = match p {
            Param::Text(t) => {
                let len = c_int::try_from(t.len()).map_err(|_| {
                    sqlx::Error::Protocol(format!("parameter ${}: too long", i + 1))
                })?;
                // SAFETY: `t` is valid UTF-8 of `len` bytes; SQLITE_TRANSIENT makes SQLite
                // copy it before the call returns.
                unsafe {
                    ffi::sqlite3_bind_text(
                        stmt.0.as_ptr(),
                        index,
                        t.as_ptr().cast::<c_char>(),
                        len,
                        ffi::SQLITE_TRANSIENT(),
                    )
                }
            }
            // SAFETY: a prepared statement and a parameter index it has.
            Param::Int(v) => unsafe { ffi::sqlite3_bind_int64(stmt.0.as_ptr(), index, *v) },
        };
        if rc != ffi::SQLITE_OK {
            return Err(sqlite_error(db, rc, "binding a fleet read"));
        }
    }
    Ok(())
}

/// The statement's column names (as selected, without the table alias) → index.
fn column_names(stmt: &Statement) -> HashMap<String, usize> {
    // SAFETY: a prepared statement.
    let n = unsafe { ffi::sqlite3_column_count(stmt.0.as_ptr()) };
    (0..n)
        .filter_map(|i| {
            // SAFETY: `i` is below the column count; the name is copied out at once.
            let name = unsafe {
                let p = ffi::sqlite3_column_name(stmt.0.as_ptr(), i);
                (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
            }?;
            Some((name, usize::try_from(i).ok()?))
        })
        .collect()
}

/// Column `i` of the statement's current row, copied.
fn cell(stmt: &Statement, i: usize) -> Result<Cell, sqlx::Error> {
    let s = stmt.0.as_ptr();
    let col = c_int::try_from(i).map_err(|_| sqlx::Error::ColumnIndexOutOfBounds {
        index: i,
        len: usize::MAX,
    })?;
    // SAFETY: the statement has a current row (`SQLITE_ROW`) and `col` is below its column
    // count. A text or blob pointer is valid for `sqlite3_column_bytes` bytes until the next
    // step; both are copied before it (`_text`/`_blob` first, then `_bytes`, as SQLite's
    // documentation orders them).
    unsafe {
        Ok(match ffi::sqlite3_column_type(s, col) {
            ffi::SQLITE_INTEGER => Cell::Int(ffi::sqlite3_column_int64(s, col)),
            ffi::SQLITE_FLOAT => Cell::Real(ffi::sqlite3_column_double(s, col)),
            ffi::SQLITE_TEXT => {
                let p = ffi::sqlite3_column_text(s, col);
                let len = usize::try_from(ffi::sqlite3_column_bytes(s, col)).unwrap_or(0);
                let bytes = if p.is_null() || len == 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(p, len)
                };
                // Text that is not UTF-8 (a damaged row) fails that row's decoding alone,
                // naming its column, as sqlx's did: the read goes on.
                match String::from_utf8(bytes.to_vec()) {
                    Ok(text) => Cell::Text(text),
                    Err(e) => Cell::NotUtf8(e.to_string()),
                }
            }
            ffi::SQLITE_BLOB => {
                let p = ffi::sqlite3_column_blob(s, col).cast::<u8>();
                let len = usize::try_from(ffi::sqlite3_column_bytes(s, col)).unwrap_or(0);
                Cell::Blob(if p.is_null() || len == 0 {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(p, len).to_vec()
                })
            }
            _ => Cell::Null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::columns::Columns;

    async fn pool() -> SqlitePool {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT, x DOUBLE PRECISION, b BYTEA, q BOOLEAN)",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO t VALUES ('a', 1, 1.5, x'0102', TRUE), ('b', NULL, NULL, NULL, FALSE), ('ü', -7, 2.0, x'', TRUE)")
            .execute(&pool)
            .await
            .unwrap();
        pool
    }

    // A multi-threaded runtime: the steps run under `block_in_place`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_kind_of_value_is_copied_and_parameters_bind_in_order() {
        let pool = pool().await;
        let rows = scan(
            &pool,
            "SELECT r.id, r.n, r.x, r.b, r.q FROM t r WHERE r.id <> $1 AND r.n >= $2 ORDER BY r.id",
            &[Param::Text("b".into()), Param::Int(-10)],
        )
        .await
        .unwrap();
        assert_eq!(rows.len(), 2);
        let mut a = rows[0].clone();
        assert_eq!(a.required_text("id").unwrap(), "a");
        assert_eq!(a.int("n").unwrap(), Some(1));
        assert_eq!(a.real("x").unwrap(), Some(1.5));
        assert_eq!(a.blob("b").unwrap(), Some(vec![1, 2]));
        assert!(a.flag("q").unwrap());
        let mut u = rows[1].clone();
        assert_eq!(u.required_text("id").unwrap(), "ü");
        assert_eq!(u.real("x").unwrap(), Some(2.0));
        assert_eq!(u.blob("b").unwrap(), Some(Vec::new()));

        let nulls = scan(
            &pool,
            "SELECT n, x, b FROM t WHERE id = $1",
            &[Param::Text("b".into())],
        )
        .await
        .unwrap();
        assert_eq!(nulls[0].cells, vec![Cell::Null, Cell::Null, Cell::Null]);
    }

    #[tokio::test]
    async fn a_text_that_is_not_utf8_fails_its_column_alone() {
        let pool = pool().await;
        sqlx::query("INSERT INTO t VALUES (CAST(x'ff' AS TEXT), 5, NULL, NULL, TRUE)")
            .execute(&pool)
            .await
            .unwrap();
        let rows = scan(&pool, "SELECT id, n FROM t ORDER BY n", &[])
            .await
            .unwrap();
        assert_eq!(rows.len(), 4, "the read goes on");
        let mut bad = rows
            .into_iter()
            .find(|r| r.cells[1] == Cell::Int(5))
            .unwrap();
        let e = bad.text("id").unwrap_err().to_string();
        assert!(e.contains("'id'") && e.contains("not UTF-8"), "{e}");
        assert_eq!(bad.int("n").unwrap(), Some(5));
    }

    #[tokio::test]
    async fn a_bad_statement_or_parameter_is_an_error_and_the_pool_still_works() {
        let pool = pool().await;
        let e = scan(&pool, "SELECT nope FROM t", &[])
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such column: nope"), "{e}");
        let e = scan(&pool, "SELECT id FROM t", &[Param::Int(1)])
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("parameter $1 is not in the statement"), "{e}");
        let e = scan(&pool, "SELECT id FROM t\0", &[])
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("NUL"), "{e}");
        // The connection went back to the pool usable (its statement finalized).
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 3);
    }
}
