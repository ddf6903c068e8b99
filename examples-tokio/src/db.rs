//! The database: one query per batch for all its keys. SQLite (embedded) or PostgreSQL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

/// The row a message is enriched with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub name: String,
    pub tier: String,
    pub country: String,
}

const TIERS: [&str; 3] = ["free", "pro", "enterprise"];
const COUNTRIES: [&str; 5] = ["DE", "FR", "US", "JP", "BR"];

/// The row the seed writes for `id`; tests compare against it.
pub fn seeded_customer(id: i64) -> Customer {
    Customer {
        name: format!("customer-{id}"),
        tier: TIERS[id.rem_euclid(3) as usize].to_string(),
        country: COUNTRIES[id.rem_euclid(5) as usize].to_string(),
    }
}

enum Backend {
    // rusqlite is blocking: queries run on tokio's blocking pool, one at a time.
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    Postgres(Box<Postgres>),
}

/// A PostgreSQL connection that is opened again after it broke (a server restart).
struct Postgres {
    config: tokio_postgres::Config,
    /// Limit for the whole handshake (TCP, startup, authentication).
    handshake: Duration,
    client: tokio::sync::Mutex<Option<Arc<tokio_postgres::Client>>>,
    label: String,
}

/// Default limit for one query, and for the PostgreSQL handshake (TCP, startup, authentication).
pub const TIMEOUT: Duration = Duration::from_secs(5);

impl Postgres {
    async fn connect(
        config: &tokio_postgres::Config,
        handshake: Duration,
        label: &str,
    ) -> Result<Arc<tokio_postgres::Client>> {
        // connect_timeout covers the TCP connect only: a server that accepts and never answers
        // would hang the handshake without this.
        let (client, connection) = tokio::time::timeout(handshake, config.connect(tokio_postgres::NoTls))
            .await
            .map_err(|_| anyhow!("PostgreSQL handshake timed out after {handshake:?}"))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .map_err(|e| {
                if e.to_string().contains("password missing") {
                    e.context("the server wants a password: put it in the URL or set PGPASSWORD")
                } else {
                    e
                }
            })
            .with_context(|| format!("cannot connect to PostgreSQL at {label}"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("PostgreSQL connection closed: {e}");
            }
        });
        Ok(Arc::new(client))
    }

    /// The open connection, or a new one if there is none or it broke.
    async fn client(&self) -> Result<Arc<tokio_postgres::Client>> {
        let mut slot = self.client.lock().await;
        match slot.as_ref() {
            Some(c) if !c.is_closed() => Ok(Arc::clone(c)),
            _ => {
                *slot = None;
                let c = Self::connect(&self.config, self.handshake, &self.label).await?;
                tracing::info!("connected to PostgreSQL at {}", self.label);
                *slot = Some(Arc::clone(&c));
                Ok(c)
            }
        }
    }

    async fn forget(&self) {
        *self.client.lock().await = None;
    }
}

/// A connection to the customers table, with a query counter and an optional injected latency.
pub struct Db {
    backend: Backend,
    latency: Duration,
    query_timeout: Duration,
    queries: AtomicU64,
    outage: AtomicU64,
    label: String,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("url", &self.label).finish_non_exhaustive()
    }
}

impl Db {
    /// Opens `url`: `sqlite::memory:`, `sqlite:PATH` (or `sqlite://PATH`), or
    /// `postgres://user@host:port/dbname` (also `postgresql://`).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_timeout(url, TIMEOUT).await
    }

    /// [`Db::connect`], with `timeout` for the PostgreSQL handshake and for each query.
    pub async fn connect_with_timeout(url: &str, timeout: Duration) -> Result<Self> {
        let label = redact(url);
        let backend = if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let conn = if path == ":memory:" || path.is_empty() {
                rusqlite::Connection::open_in_memory()
            } else {
                rusqlite::Connection::open(path)
            }
            .with_context(|| format!("cannot open SQLite database {label}"))?;
            Backend::Sqlite(Arc::new(Mutex::new(conn)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut config: tokio_postgres::Config =
                url.parse().with_context(|| format!("invalid PostgreSQL URL {label}"))?;
            config.connect_timeout(timeout);
            // As libpq does: a password not in the URL may come from PGPASSWORD.
            if config.get_password().is_none() {
                if let Ok(password) = std::env::var("PGPASSWORD") {
                    config.password(password);
                }
            }
            let client = Postgres::connect(&config, timeout, &label).await?;
            Backend::Postgres(Box::new(Postgres {
                config,
                handshake: timeout,
                client: tokio::sync::Mutex::new(Some(client)),
                label: label.clone(),
            }))
        } else {
            bail!("unsupported database URL {label}: expected sqlite::memory:, sqlite:PATH or postgres://...");
        };
        Ok(Self {
            backend,
            latency: Duration::ZERO,
            query_timeout: timeout,
            queries: AtomicU64::new(0),
            outage: AtomicU64::new(0),
            label,
        })
    }

    /// Fails a lookup that takes longer than `timeout` (the injected latency included).
    /// [`Db::connect_with_timeout`] sets it too.
    pub fn with_query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// Makes the next `queries` lookups fail as if the server were restarting: for the tests
    /// and for trying the service's retries.
    pub fn simulate_outage(&self, queries: u64) {
        self.outage.store(queries, Ordering::SeqCst);
    }

    /// Adds `latency` to every lookup: stands in for a network round trip (SQLite has none), or a
    /// slow query in tests.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// `sqlite` or `postgres`, and the URL without its password.
    pub fn describe(&self) -> String {
        match self.backend {
            Backend::Sqlite(_) => format!("SQLite {}", self.label),
            Backend::Postgres(_) => format!("PostgreSQL {}", self.label),
        }
    }

    /// Lookups done so far: one per batch.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Creates the customers table if needed and fills ids `1..=customers`.
    pub async fn seed(&self, customers: i64) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                let conn = Arc::clone(conn);
                tokio::task::spawn_blocking(move || seed_sqlite(&mut conn.lock().expect("sqlite lock"), customers))
                    .await?
                    .context("seeding SQLite")
            }
            Backend::Postgres(pg) => {
                let client = pg.client().await?;
                client
                    .batch_execute(
                        "CREATE TABLE IF NOT EXISTS customers (
                            id BIGINT PRIMARY KEY, name TEXT NOT NULL, tier TEXT NOT NULL, country TEXT NOT NULL)",
                    )
                    .await
                    .context("creating the customers table in PostgreSQL")?;
                // Same rows as `seeded_customer` (SQL arrays count from 1).
                client
                    .execute(
                        "INSERT INTO customers (id, name, tier, country)
                         SELECT g, 'customer-' || g,
                                (ARRAY['free','pro','enterprise'])[1 + g % 3],
                                (ARRAY['DE','FR','US','JP','BR'])[1 + g % 5]
                         FROM generate_series(1, $1::BIGINT) AS g
                         ON CONFLICT (id) DO NOTHING",
                        &[&customers],
                    )
                    .await
                    .context("seeding PostgreSQL")?;
                Ok(())
            }
        }
    }

    /// Looks up every id of a batch in ONE query. Unknown ids are absent from the map. Fails
    /// after the query timeout; a broken PostgreSQL connection is opened again on the next call.
    pub async fn lookup(&self, ids: &[i64]) -> Result<HashMap<i64, Customer>> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        if self
            .outage
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            bail!("database unavailable (simulated outage: connection refused)");
        }
        match tokio::time::timeout(self.query_timeout, self.lookup_inner(ids)).await {
            Ok(r) => r,
            Err(_) => {
                if let Backend::Postgres(pg) = &self.backend {
                    // The connection may be stuck: use a new one next time.
                    pg.forget().await;
                }
                Err(anyhow!(
                    "lookup timed out after {:?} on {}",
                    self.query_timeout,
                    self.label
                ))
            }
        }
    }

    async fn lookup_inner(&self, ids: &[i64]) -> Result<HashMap<i64, Customer>> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        match &self.backend {
            Backend::Sqlite(conn) => {
                let conn = Arc::clone(conn);
                tokio::task::spawn_blocking(move || lookup_sqlite(&conn.lock().expect("sqlite lock"), &ids))
                    .await?
                    .context("SQLite lookup")
            }
            Backend::Postgres(pg) => {
                let client = pg.client().await?;
                let rows = match client
                    .query(
                        "SELECT id, name, tier, country FROM customers WHERE id = ANY($1)",
                        &[&ids],
                    )
                    .await
                {
                    Ok(rows) => rows,
                    Err(e) => {
                        if client.is_closed() {
                            pg.forget().await;
                        }
                        return Err(anyhow::Error::from(e).context("PostgreSQL lookup"));
                    }
                };
                Ok(rows
                    .iter()
                    .map(|r| {
                        let c = Customer {
                            name: r.get(1),
                            tier: r.get(2),
                            country: r.get(3),
                        };
                        (r.get::<_, i64>(0), c)
                    })
                    .collect())
            }
        }
    }
}

fn seed_sqlite(conn: &mut rusqlite::Connection, customers: i64) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS customers (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, tier TEXT NOT NULL, country TEXT NOT NULL)",
    )?;
    let tx = conn.transaction()?;
    {
        let mut insert =
            tx.prepare("INSERT OR IGNORE INTO customers (id, name, tier, country) VALUES (?1, ?2, ?3, ?4)")?;
        for id in 1..=customers {
            let c = seeded_customer(id);
            insert.execute(rusqlite::params![id, c.name, c.tier, c.country])?;
        }
    }
    tx.commit()
}

fn lookup_sqlite(conn: &rusqlite::Connection, ids: &[i64]) -> rusqlite::Result<HashMap<i64, Customer>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    // One `IN (?, ?, ...)` list per batch; the statement cache keeps one plan per list length.
    let marks = vec!["?"; ids.len()].join(",");
    let sql = format!("SELECT id, name, tier, country FROM customers WHERE id IN ({marks})");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(ids), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            Customer {
                name: r.get(1)?,
                tier: r.get(2)?,
                country: r.get(3)?,
            },
        ))
    })?;
    rows.collect()
}

/// The URL with its password replaced, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(redact("postgres://u:secret@h:5/d"), "postgres://u:***@h:5/d");
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
    }
}
