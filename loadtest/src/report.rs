//! What a scenario found: a table for people, JSON (`--json`) for scripts, and the
//! progress bar shown on a terminal during long runs.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use crate::cli::Common;

pub struct Report {
    fields: Map<String, Value>,
    json: bool,
}

impl Report {
    pub fn new(scenario: &str, common: &Common) -> Report {
        let mut fields = Map::new();
        fields.insert("scenario".into(), json!(scenario));
        fields.insert("server".into(), json!(common.label));
        Report {
            fields,
            json: common.json,
        }
    }

    pub fn add(&mut self, key: &str, value: Value) {
        self.fields.insert(key.into(), value);
    }

    /// p50, p99 and max of a latency histogram (µs), in milliseconds.
    pub fn latency(&mut self, name: &str, h: &Histogram<u64>) {
        if h.is_empty() {
            return;
        }
        let ms = |us: u64| (us as f64 / 10.0).round() / 100.0;
        self.add(
            &format!("{name}_p50_ms"),
            json!(ms(h.value_at_quantile(0.5))),
        );
        self.add(
            &format!("{name}_p99_ms"),
            json!(ms(h.value_at_quantile(0.99))),
        );
        self.add(&format!("{name}_max_ms"), json!(ms(h.max())));
    }

    /// Writes the report to standard output (a closed pipe is not an error here).
    pub fn print(&self) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        if self.json {
            let _ = writeln!(out, "{}", Value::Object(self.fields.clone()));
            return;
        }
        let width = self.fields.keys().map(String::len).max().unwrap_or(0);
        for (key, value) in &self.fields {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(out, "{key:width$}  {text}");
        }
    }
}

/// A progress bar over `duration`, drawn only on a terminal.
pub fn progress(duration: Duration) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(duration.as_millis() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {percent}%")
            .expect("template"),
    );
    let ticker = bar.clone();
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        while !ticker.is_finished() && started.elapsed() < duration {
            ticker.set_position(started.elapsed().as_millis() as u64);
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    bar
}
