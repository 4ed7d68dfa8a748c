//! Where services keep their state: one SQLite database per service.
//!
//! A service's actor owns its connection (`Db`), opened in its `started` hook, so a restart
//! by the supervisor opens it afresh. Each service has a database of its own (a file
//! `<data_dir>/<service>.db`, or a named in-memory database), so services never contend for a
//! lock and each could move to another node with its file.
//!
//! Files use write-ahead logging with `synchronous = NORMAL`: a committed transaction
//! survives a crash of the process (not necessarily a power cut).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, Params, Row};

/// Why a service's database could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or its schema created.
    #[error("cannot open database {name}: {source}")]
    Open {
        /// The file, or the in-memory database's name.
        name: String,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored value could not be read back (a JSON column).
    #[error("corrupt stored value: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// The service used its database before its actor started.
    #[error("database of {0} is not open")]
    NotOpen(&'static str),
}

/// Where the services of one process keep their databases. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    place: Place,
}

#[derive(Debug, Clone)]
enum Place {
    Dir(PathBuf),
    Memory(Arc<MemoryDbs>),
}

/// Named shared-cache in-memory databases, kept alive by one idle connection each so that a
/// restarted service finds its data again.
#[derive(Debug)]
struct MemoryDbs {
    namespace: String,
    keepers: Mutex<HashMap<String, Connection>>,
}

impl MemoryDbs {
    /// Opens the idle connection that keeps `service`'s database alive, once.
    fn keep_alive(&self, service: &str, name: &str) {
        let mut keepers = self.keepers.lock().unwrap_or_else(PoisonError::into_inner);
        if !keepers.contains_key(service) {
            if let Ok(keeper) = Connection::open(name) {
                keepers.insert(service.to_owned(), keeper);
            }
        }
    }
}

impl Storage {
    /// One file per service under `dir` (created if missing).
    pub fn dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            place: Place::Dir(dir.into()),
        }
    }

    /// In-memory databases private to this `Storage` (and its clones); gone when the last
    /// clone is dropped. For tests and trying things out.
    pub fn in_memory() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let namespace = format!(
            "shop-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            place: Place::Memory(Arc::new(MemoryDbs {
                namespace,
                keepers: Mutex::new(HashMap::new()),
            })),
        }
    }

    /// The data directory, if the databases are files.
    pub fn data_dir(&self) -> Option<&Path> {
        match &self.place {
            Place::Dir(dir) => Some(dir),
            Place::Memory(_) => None,
        }
    }

    /// Opens the database of `service` and runs its `schema` (idempotent DDL).
    fn open(&self, service: &str, schema: &str) -> Result<Connection, StorageError> {
        let (name, conn) = match &self.place {
            Place::Dir(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
                    path: dir.clone(),
                    source,
                })?;
                let path = dir.join(format!("{service}.db"));
                let name = path.display().to_string();
                let conn = Connection::open(&path);
                (name, conn)
            }
            Place::Memory(dbs) => {
                let name = format!("file:{}-{service}?mode=memory&cache=shared", dbs.namespace);
                dbs.keep_alive(service, &name);
                let conn = Connection::open(&name);
                (name, conn)
            }
        };
        let open = |source| StorageError::Open {
            name: name.clone(),
            source,
        };
        let conn = conn.map_err(open)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;",
        )
        .map_err(open)?;
        conn.execute_batch(schema).map_err(open)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }
}

/// One service's connection, owned by its actor and opened when the actor starts.
#[derive(Debug)]
pub(crate) struct Db {
    storage: Storage,
    service: &'static str,
    schema: &'static str,
    conn: Option<Connection>,
}

impl Db {
    /// A closed handle to the database of `service`, whose tables `schema` creates.
    pub(crate) fn new(storage: Storage, service: &'static str, schema: &'static str) -> Self {
        Self {
            storage,
            service,
            schema,
            conn: None,
        }
    }

    /// Opens the database and creates the schema; call from the actor's `started`.
    pub(crate) fn open(&mut self) -> Result<&mut Connection, StorageError> {
        let conn = self.storage.open(self.service, self.schema)?;
        Ok(self.conn.insert(conn))
    }

    /// The open connection.
    pub(crate) fn conn(&mut self) -> Result<&mut Connection, StorageError> {
        self.conn
            .as_mut()
            .ok_or(StorageError::NotOpen(self.service))
    }
}

/// `execute` and `query_row` through the connection's statement cache, so the statements a
/// service runs for every request are parsed once.
pub(crate) trait CachedSql {
    /// Runs `sql` with `params`; returns the rows changed.
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;

    /// Runs `sql` with `params` and maps its first row.
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>;
}

impl CachedSql for Connection {
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Seconds since the Unix epoch, for `created_at` columns.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS t (v INTEGER)";

    #[test]
    fn memory_database_outlives_its_connection() -> Result<(), StorageError> {
        let storage = Storage::in_memory();
        let mut first = Db::new(storage.clone(), "svc", SCHEMA);
        first.open()?.execute("INSERT INTO t VALUES (7)", [])?;
        drop(first);
        let mut again = Db::new(storage, "svc", SCHEMA);
        let v: i64 = again
            .open()?
            .query_row("SELECT v FROM t", [], |r| r.get(0))?;
        assert_eq!(v, 7);
        Ok(())
    }

    #[test]
    fn memory_storages_are_private() -> Result<(), StorageError> {
        let mut a = Db::new(Storage::in_memory(), "svc", SCHEMA);
        a.open()?.execute("INSERT INTO t VALUES (1)", [])?;
        let mut b = Db::new(Storage::in_memory(), "svc", SCHEMA);
        let n: i64 = b
            .open()?
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?;
        assert_eq!(n, 0);
        Ok(())
    }

    #[test]
    fn a_closed_db_says_so() {
        let mut db = Db::new(Storage::in_memory(), "svc", SCHEMA);
        assert!(matches!(db.conn(), Err(StorageError::NotOpen("svc"))));
    }
}
