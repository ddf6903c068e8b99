//! Where enriched records go: a file of JSON lines (here), or a Kafka topic ([`crate::kafka`]).

use std::future::Future;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tokio::io::AsyncWriteExt;

use crate::db::Customer;
use crate::source::Message;

/// A message with its customer's row (`None`: the id is unknown to the database).
#[derive(Debug, Clone)]
pub struct Enriched {
    pub message: Message,
    pub customer: Option<Customer>,
}

impl Enriched {
    /// The record as one line of JSON (no newline).
    pub fn to_json(&self) -> String {
        let m = &self.message;
        let customer = self
            .customer
            .as_ref()
            .map(|c| serde_json::json!({ "name": c.name, "tier": c.tier, "country": c.country }));
        let mut v = serde_json::json!({
            "seq": m.seq,
            "customer_id": m.customer_id,
            "amount_cents": m.amount_cents,
            "customer": customer,
        });
        if let Some(o) = m.origin {
            v["partition"] = o.partition.into();
            v["offset"] = o.offset.into();
        }
        v.to_string()
    }
}

/// Writes a batch of records. When `write` returns `Ok`, the records are written (flushed to the
/// file, or acknowledged by the broker): only then may the source commit them.
pub trait Sink: Send {
    fn write(&mut self, records: &[Enriched]) -> impl Future<Output = Result<()>> + Send;
}

/// One JSON object per line, appended to a file; flushed after each batch.
#[derive(Debug)]
pub struct JsonLines {
    file: tokio::fs::File,
    path: PathBuf,
    buf: Vec<u8>,
}

impl JsonLines {
    /// Creates (or truncates) `path`.
    pub async fn create(path: &Path) -> Result<Self> {
        let file = tokio::fs::File::create(path)
            .await
            .with_context(|| format!("cannot create output file {}", path.display()))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            buf: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Sink for JsonLines {
    async fn write(&mut self, records: &[Enriched]) -> Result<()> {
        // One write call per batch: the file sees batches, like the database does.
        self.buf.clear();
        for r in records {
            self.buf.extend_from_slice(r.to_json().as_bytes());
            self.buf.push(b'\n');
        }
        self.file
            .write_all(&self.buf)
            .await
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.file.flush().await?;
        Ok(())
    }
}
