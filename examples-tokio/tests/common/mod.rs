//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use examples_tokio::db::seeded_customer;
use examples_tokio::sink::{Enriched, Sink};

/// A fresh directory under the system temp dir, named for the test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enrich-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reads a JSON-lines output file and checks it: `messages` records, seq 0..messages each once,
/// each customer as seeded (or null for an id above `customers`).
pub fn check_output(path: &Path, messages: u64, customers: i64) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let seq = v["seq"].as_u64().unwrap();
        *seen.entry(seq).or_default() += 1;
        let id = v["customer_id"].as_i64().unwrap();
        if id <= customers {
            let c = seeded_customer(id);
            assert_eq!(v["customer"]["name"], c.name.as_str(), "{line}");
            assert_eq!(v["customer"]["tier"], c.tier.as_str(), "{line}");
            assert_eq!(v["customer"]["country"], c.country.as_str(), "{line}");
        } else {
            assert!(v["customer"].is_null(), "unknown id must have no customer: {line}");
        }
    }
    assert_eq!(seen.len() as u64, messages, "distinct messages in {}", path.display());
    assert!(seen.values().all(|n| *n == 1), "a message was written twice");
    assert!((0..messages).all(|s| seen.contains_key(&s)), "a message is missing");
}

/// A sink that keeps what it was given, and calls `on_write` first (to inspect the world).
#[derive(Clone, Default)]
pub struct Recording {
    pub batches: Arc<Mutex<Vec<Vec<Enriched>>>>,
}

impl Sink for Recording {
    async fn write(&mut self, records: &[Enriched]) -> Result<()> {
        self.batches.lock().unwrap().push(records.to_vec());
        Ok(())
    }
}
