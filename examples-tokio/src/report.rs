//! The closing table: one column per run, so prefetch on and off sit side by side.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::batching::FlushReason;
use crate::pipeline::{Mode, Outcome};

/// The table for `runs` (usually prefetch on, then off).
pub fn table(runs: &[Outcome]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row =
        |name: &str, f: &dyn Fn(&Outcome) -> String| rows.push((name.to_string(), runs.iter().map(f).collect()));
    row("prefetch", &|o| {
        match o.mode {
            Mode::Prefetch => "on",
            Mode::Sequential => "off",
        }
        .into()
    });
    row("items", &|o| o.items.to_string());
    row("wall time", &|o| ms(o.elapsed));
    row("items/s", &|o| {
        format!("{:.0}", o.items as f64 / o.elapsed.as_secs_f64().max(1e-9))
    });
    row("batches", &|o| o.total_batches().to_string());
    for reason in FlushReason::ALL {
        if runs.iter().any(|o| o.batches_for(reason) > 0) {
            row(&format!("  {reason:?}"), &|o| o.batches_for(reason).to_string());
        }
    }
    row("mean batch size", &|o| {
        format!("{:.1}", o.items as f64 / o.total_batches().max(1) as f64)
    });
    row("queries", &|o| o.queries.to_string());
    row("busy (query+write)", &|o| ms(o.busy));
    row("consumer waited", &|o| ms(o.consumer_waited));
    row("producer waited", &|o| o.producer_waited.map_or("-".into(), ms));
    row("oldest item at handover", &|o| o.max_age.map_or("-".into(), ms));
    if runs.iter().any(|o| o.db_retries > 0) {
        row("db retries", &|o| o.db_retries.to_string());
    }
    row("latency p50", &|o| ms(percentile(&o.latency, 50.0)));
    row("latency p99", &|o| ms(percentile(&o.latency, 99.0)));
    row("latency max", &|o| ms(percentile(&o.latency, 100.0)));

    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, cells) in rows {
        let _ = write!(out, "{name:<width$}");
        for c in cells {
            let _ = write!(out, "  {c:>12}");
        }
        out.push('\n');
    }
    out
}

/// The `p`th percentile of a latency histogram in microseconds (zero when empty).
pub fn percentile(h: &Histogram<u64>, p: f64) -> Duration {
    if h.is_empty() {
        return Duration::ZERO;
    }
    Duration::from_micros(h.value_at_percentile(p))
}

fn ms(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}
