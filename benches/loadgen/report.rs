//! Output: per case and peer, a readable table (median and every run) and one JSON line
//! for scripts; with several peers, a side-by-side comparison with ratios.

use serde_json::{json, Map, Value};

use crate::peers::Peer;
use crate::scenarios::{Metrics, Scenario};

/// Every run of one case against one peer.
pub struct Summary {
    pub label: String,
    pub scenario: Scenario,
    pub peer: Peer,
    pub names: Vec<String>,
    pub runs: Vec<Metrics>,
    pub failures: Vec<String>,
}

impl Summary {
    fn values(&self, name: &str) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| r.iter().find(|(k, _)| k == name).map(|&(_, v)| v))
            .collect()
    }

    fn median(&self, name: &str) -> Option<f64> {
        let mut v = self.values(name);
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        Some(if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        })
    }
}

fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v.abs() >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn json_num(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

pub fn print_summary(s: &Summary, machine: &str) {
    println!(
        "\n== {} — peer {} ({} of {} runs ok) ==",
        s.label,
        s.peer.name(),
        s.runs.len(),
        s.runs.len() + s.failures.len()
    );
    // Cluster's names (line prefix + figure) run past the usual 36 columns.
    let w = s.names.iter().map(String::len).max().unwrap_or(0).max(36);
    let mut head = format!("{:<w$} {:>12}", "metric", "median");
    for i in 1..=s.runs.len() {
        head.push_str(&format!(" {:>12}", format!("run{i}")));
    }
    println!("{head}");
    for name in &s.names {
        let mut row = format!(
            "{:<w$} {:>12}",
            name,
            fmt_num(s.median(name).unwrap_or(f64::NAN))
        );
        for v in s.values(name) {
            row.push_str(&format!(" {:>12}", fmt_num(v)));
        }
        println!("{row}");
    }
    for f in &s.failures {
        println!("  failed run: {f}");
    }
    let medians: Map<String, Value> = s
        .names
        .iter()
        .map(|n| (n.clone(), json_num(s.median(n).unwrap_or(f64::NAN))))
        .collect();
    let runs: Vec<Value> = s
        .runs
        .iter()
        .map(|r| Value::Object(r.iter().map(|(k, v)| (k.clone(), json_num(*v))).collect()))
        .collect();
    let line = json!({
        "bench": "crier-loadgen", "scenario": s.scenario.name(), "case": s.label,
        "peer": s.peer.name(), "runs": runs.len(), "median": medians, "per_run": runs,
        "failures": s.failures, "machine": machine,
    });
    println!("{line}");
}

/// Side-by-side medians of crier, floor and nchan for one case, with ratios.
pub fn print_comparison(group: &[&Summary]) {
    let find = |p: Peer| group.iter().find(|s| s.peer == p);
    let Some(first) = group.iter().find(|s| !s.names.is_empty()) else {
        return;
    };
    println!("\n== comparison: {} ==", first.label);
    println!(
        "{:<36} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "metric (median)", "crier", "floor", "nchan", "crier/floor", "crier/nchan"
    );
    let mut rows = Map::new();
    for name in &first.names {
        let get = |p: Peer| find(p).and_then(|s| s.median(name)).unwrap_or(f64::NAN);
        let (c, f, n) = (get(Peer::Crier), get(Peer::Floor), get(Peer::Nchan));
        println!(
            "{:<36} {:>12} {:>12} {:>12} {:>12} {:>12}",
            name,
            fmt_num(c),
            fmt_num(f),
            fmt_num(n),
            fmt_num(c / f),
            fmt_num(c / n)
        );
        rows.insert(
            name.clone(),
            json!({"crier": json_num(c), "floor": json_num(f), "nchan": json_num(n),
                   "crier_over_floor": json_num(c / f), "crier_over_nchan": json_num(c / n)}),
        );
    }
    println!(
        "{}",
        json!({"bench": "crier-loadgen", "comparison": first.label, "metrics": rows})
    );
}
