//! The benchmark's command line (`scripts/bench` passes its arguments on):
//! each option with its default and the values it refuses, and the knobs
//! the scenarios are built from.

use std::time::Duration;

use crate::seed::Knobs;

/// What the command line asks for.
pub struct Args {
    pub records: Vec<usize>,
    pub knobs: Knobs,
    pub baseline_max: usize,
    pub health_budget: Option<usize>,
    pub json: bool,
    pub child_sync: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: scripts/bench [--records 1000,10000] [--changing 0.10] [--pending 0.05] [--clusters 1] [--rtt-ms 0] [--baseline-max 10000] [--health-budget N] [--json]"
    );
    std::process::exit(2)
}

impl Args {
    /// The process's arguments, or the usage and exit status 2.
    pub fn parse() -> Args {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut a = Args {
            records: vec![1000, 10_000],
            knobs: Knobs {
                changing: 0.10,
                pending: 0.05,
                clusters: 1,
                rtt: Duration::ZERO,
            },
            baseline_max: 10_000,
            health_budget: None,
            json: false,
            child_sync: args.first().map(String::as_str) == Some("--child-sync"),
        };
        if a.child_sync {
            return a;
        }
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut val = || it.next().cloned().unwrap_or_else(|| usage());
            match arg.as_str() {
                "--records" => {
                    a.records = val()
                        .split(',')
                        .map(|s| s.parse().unwrap_or_else(|_| usage()))
                        .collect()
                }
                "--changing" => a.knobs.changing = val().parse().unwrap_or_else(|_| usage()),
                "--pending" => a.knobs.pending = val().parse().unwrap_or_else(|_| usage()),
                "--baseline-max" => a.baseline_max = val().parse().unwrap_or_else(|_| usage()),
                "--clusters" => a.knobs.clusters = val().parse().unwrap_or_else(|_| usage()),
                "--rtt-ms" => {
                    let ms = val().parse::<f64>().unwrap_or_else(|_| usage());
                    if !(ms.is_finite() && ms >= 0.0) {
                        usage()
                    }
                    a.knobs.rtt = Duration::from_secs_f64(ms / 1000.0)
                }
                "--health-budget" => {
                    a.health_budget = Some(val().parse().unwrap_or_else(|_| usage()))
                }
                "--json" => a.json = true,
                _ => usage(),
            }
        }
        if a.knobs.clusters == 0 {
            usage()
        }
        a
    }

    /// The shape of every fleet, and the network the variants reach it over.
    pub fn knobs(&self) -> Knobs {
        self.knobs
    }
}
