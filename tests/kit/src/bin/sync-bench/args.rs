//! The benchmark's command line (`scripts/bench` passes its arguments on):
//! each option with its default and the values it refuses, and the knobs
//! the scenarios are built from.

use std::time::Duration;

use clap::Parser;

use crate::seed::Knobs;

/// The fleet-scale benchmark: for each fleet size, the product's sync run
/// against the per-record algorithm of the design note and the floor, all on
/// the same generated data (README, "Performance").
#[derive(Debug, Parser)]
#[command(name = "sync-bench", bin_name = "scripts/bench")]
pub struct Args {
    /// Fleet sizes, one scenario each (record counts, comma-separated).
    #[arg(
        long,
        value_name = "N,...",
        value_delimiter = ',',
        default_value = "1000,10000"
    )]
    pub records: Vec<usize>,

    /// Share of records whose job has finished: a status change (0 to 1).
    #[arg(
        long,
        value_name = "SHARE",
        default_value = "0.10",
        value_parser = share,
        allow_negative_numbers = true
    )]
    pub changing: f64,

    /// Share of records still waiting for their JobID: a Job, a running pod
    /// and its log each (0 to 1).
    #[arg(
        long,
        value_name = "SHARE",
        default_value = "0.05",
        value_parser = share,
        allow_negative_numbers = true
    )]
    pub pending: f64,

    /// Flink clusters the fleet is spread over (record i on c{i % N}, in
    /// FLINK_CLUSTERS); with 1, records name none and sync uses FLINK_REST_URL.
    #[arg(long, value_name = "N", default_value = "1", value_parser = at_least_one)]
    pub clusters: usize,

    /// A network round trip, in milliseconds (fractions allowed), added to
    /// every exchange with MongoDB, Flink and Kubernetes: half of it each
    /// way, by the fault proxies every variant goes through.
    #[arg(
        long = "rtt-ms",
        value_name = "MS",
        default_value = "0",
        value_parser = round_trip,
        allow_negative_numbers = true
    )]
    pub rtt: Duration,

    /// Largest fleet the per-record algorithm runs on (it is slow).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub baseline_max: usize,

    /// HEALTH_BUDGET for the product, and the floor's running-job looks
    /// [default: the product's].
    #[arg(long, value_name = "N")]
    pub health_budget: Option<usize>,

    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Run one sync in this process and print its figures as one JSON line:
    /// how the benchmark runs the product in a child process of its own.
    #[arg(long, hide = true)]
    pub child_sync: bool,
}

impl Args {
    /// The shape of every fleet, and the network the variants reach it over.
    pub fn knobs(&self) -> Knobs {
        Knobs {
            changing: self.changing,
            pending: self.pending,
            clusters: self.clusters,
            rtt: self.rtt,
        }
    }
}

/// A share of the fleet: a number from 0 to 1.
fn share(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("a share is from 0 to 1, not {v}"))
    }
}

/// A count of at least one.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}")),
    }
}

/// Milliseconds as a duration: finite, not negative, not beyond what a
/// duration holds.
fn round_trip(s: &str) -> Result<Duration, String> {
    let ms: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if !(ms.is_finite() && ms >= 0.0) {
        return Err(format!(
            "a round trip is a finite number of milliseconds, 0 or more, not {ms}"
        ));
    }
    Duration::try_from_secs_f64(ms / 1000.0).map_err(|e| format!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("sync-bench").chain(args.iter().copied()))
    }

    #[test]
    fn without_options_the_defaults_are_the_documented_ones() {
        let a = parse(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.records, vec![1000, 10_000]);
        assert_eq!(a.changing, 0.10);
        assert_eq!(a.pending, 0.05);
        assert_eq!(a.clusters, 1);
        assert_eq!(a.rtt, Duration::ZERO);
        assert_eq!(a.baseline_max, 10_000);
        assert_eq!(a.health_budget, None);
        assert!(!a.json && !a.child_sync);
    }

    #[test]
    fn every_option_is_read_under_its_name() {
        let a = parse(&[
            "--records",
            "10,20,30",
            "--changing",
            "0.5",
            "--pending",
            "0",
            "--clusters",
            "4",
            "--rtt-ms",
            "1.5",
            "--baseline-max",
            "0",
            "--health-budget",
            "7",
            "--json",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.records, vec![10, 20, 30]);
        assert_eq!((a.changing, a.pending, a.clusters), (0.5, 0.0, 4));
        assert_eq!(a.rtt, Duration::from_micros(1500));
        assert_eq!((a.baseline_max, a.health_budget), (0, Some(7)));
        assert!(a.json);
    }

    #[test]
    fn a_negative_or_infinite_round_trip_is_refused() {
        for bad in ["-1", "-0.5", "inf", "NaN", "1e300", "fast"] {
            assert!(parse(&["--rtt-ms", bad]).is_err(), "--rtt-ms {bad}");
        }
    }

    #[test]
    fn zero_clusters_shares_outside_0_to_1_and_malformed_sizes_are_refused() {
        for bad in [
            &["--clusters", "0"][..],
            &["--changing", "1.5"],
            &["--pending", "-0.1"],
            &["--records", "1000,x"],
            &["--records", ""],
            &["--health-budget", "-1"],
            &["--baseline"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
