//! `gp stats`: print the per-plugin metrics of a running `gp serve` as a table (or its JSON).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use gp_host::Error;

use super::shared::DEFAULT_LISTEN;

#[derive(clap::Args)]
pub struct Args {
    /// The address `gp serve` listens on
    #[arg(long, default_value = DEFAULT_LISTEN)]
    addr: SocketAddr,
    /// Print the JSON as served instead of a table
    #[arg(long)]
    json: bool,
}

pub fn exec(args: Args) -> Result<ExitCode, Error> {
    let Args { addr, json } = args;
    let url = format!("http://{addr}/stats");
    let unreachable = |reason: String| Error::Io {
        path: PathBuf::from(&url),
        source: std::io::Error::other(format!("{reason}; is `gp serve --listen {addr}` running?")),
    };
    let body = ureq::get(&url)
        .call()
        .map_err(|e| unreachable(e.to_string()))?
        .body_mut()
        .read_to_string()
        .map_err(|e| unreachable(e.to_string()))?;
    let stats: Vec<serde_json::Value> = serde_json::from_str(&body)
        .map_err(|e| unreachable(format!("the answer is not gp stats ({e})")))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stats).expect("JSON values serialise")
        );
    } else {
        print!("{}", stats_table(&stats));
    }
    Ok(ExitCode::SUCCESS)
}

/// The stats of `gp serve` as a table, one plugin per row.
fn stats_table(stats: &[serde_json::Value]) -> String {
    let headers = [
        "PLUGIN",
        "VERSION",
        "CALLS",
        "ERRORS",
        "PANICS",
        "IN FLIGHT",
        "P50",
        "P90",
        "P99",
        "LOADS",
        "UPGRADES",
        "LAST ERROR",
    ];
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let latency = |s: &serde_json::Value, q: &str| {
        let ns = s["latency"][q].as_u64().unwrap_or(0);
        if s["latency"]["count"].as_u64().unwrap_or(0) == 0 {
            "-".to_owned()
        } else {
            format_ns(ns)
        }
    };
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|s| {
            vec![
                text(&s["name"]),
                s["version"].as_str().unwrap_or("(unloaded)").to_owned(),
                text(&s["calls"]),
                text(&s["errors"]),
                text(&s["panics"]),
                text(&s["in_flight"]),
                latency(s, "p50_ns"),
                latency(s, "p90_ns"),
                latency(s, "p99_ns"),
                text(&s["loads"]),
                text(&s["upgrades"]),
                text(&s["last_error"]["message"]),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(headers.map(str::to_owned).to_vec()).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// 850ns, 12.3µs, 4.5ms, 1.2s.
fn format_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}ms", ns as f64 / 1e6),
        _ => format!("{:.1}s", ns as f64 / 1e9),
    }
}
