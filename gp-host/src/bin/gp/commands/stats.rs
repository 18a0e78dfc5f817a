//! `gp stats`: print the per-plugin metrics of a running `gp serve` as a table (or its JSON).

use std::net::SocketAddr;
use std::process::ExitCode;

use crate::failure::Failure;
use gp_host::PluginSummary;

use super::shared::DEFAULT_ADMIN;

#[derive(clap::Args)]
pub struct Args {
    /// The admin address `gp serve` listens on (its --admin)
    #[arg(long, default_value = DEFAULT_ADMIN)]
    addr: SocketAddr,
    /// Print the JSON as served instead of a table
    #[arg(long)]
    json: bool,
}

pub fn exec(args: Args) -> Result<ExitCode, Failure> {
    let Args { addr, json } = args;
    let url = format!("http://{addr}/stats");
    let unreachable = |reason: String| {
        Failure::unusable(
            &url,
            format!("{reason}; is `gp serve --admin {addr}` running?"),
        )
    };
    let body = ureq::get(&url)
        .call()
        .map_err(|e| unreachable(e.to_string()))?
        .body_mut()
        .read_to_string()
        .map_err(|e| unreachable(e.to_string()))?;
    let stats: Vec<PluginSummary> = serde_json::from_str(&body)
        .map_err(|e| unreachable(format!("the answer is not gp stats ({e})")))?;
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&stats).expect("stats serialise")
        )?;
    } else {
        out!("{}", stats_table(&stats))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The stats of `gp serve` as a table, one plugin per row.
fn stats_table(stats: &[PluginSummary]) -> String {
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
    let latency = |s: &PluginSummary, ns: u64| {
        if s.latency.count == 0 {
            "-".to_owned()
        } else {
            format_ns(ns)
        }
    };
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.version.as_deref().unwrap_or("(unloaded)").to_owned(),
                s.calls.to_string(),
                s.errors.to_string(),
                s.panics.to_string(),
                s.in_flight.to_string(),
                latency(s, s.latency.p50_ns),
                latency(s, s.latency.p90_ns),
                latency(s, s.latency.p99_ns),
                s.loads.to_string(),
                s.upgrades.to_string(),
                s.last_error
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |e| e.message.clone()),
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
