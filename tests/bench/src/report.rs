//! The one place every bench section prints its rows (issue 19, point 5).
//!
//! A row is one measured figure beside what it is judged against:
//! - `section`: the bench section (`workflow`, `vsphere`, …), as given to `cargo xtask bench`;
//! - `name`: what was measured, e.g. `chain 16000 create per op`;
//! - `ours`: our figure;
//! - `floor`: the cost of the work we cannot avoid, measured in the same run (e.g. a bare SQLite
//!   transaction, one raw HTTP POST, one bare VBoxManage invocation), or `-`;
//! - `peer`: the same work done by libvirt, measured in the same run when it is installed, or `-`;
//! - `target`: [`Target`]: a multiple of the floor, a multiple of the peer, or an absolute bound;
//! - `met`: `yes`, `NO`, or `n/a` when the target is relative to a floor or peer not measured.
//!
//! All of a row's figures share one [`Unit`]; times are given in seconds and printed in the
//! closest of µs / ms / s.
//!
//! Use:
//! ```text
//! report::header("Founding workflow (mock, durable store)");   // a `## ` title and the columns
//! report::Row::new("workflow", "chain 16000 create per op", Unit::Time, per_op)
//!     .floor(write_floor)
//!     .peer(libvirt_per_op)                // optional
//!     .target(Target::Floor(1.5))          // ours <= 1.5 x floor
//!     .emit();                             // printed now, and remembered for the summary
//! report::note("free text under the table");
//! ```
//! `main` ends every run with [`finish`]: it lists the missed targets and, under `--check`
//! (`cargo xtask bench --check [section]`), returns an error when any target was missed, so the
//! process exits non-zero. A target that cannot be evaluated (`n/a`: its floor or peer was not
//! measured, e.g. libvirt absent) is listed as unchecked and does not fail `--check`.
//! A row with `Target::None` is informational.

use std::sync::Mutex;

use anyhow::{Result, bail};

/// What a row's figures measure; every figure of a row is in this unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unit {
    /// Seconds (printed as µs, ms or s).
    Time,
    /// A count: round trips, invocations, rows.
    Count,
    /// KiB of memory.
    Kib,
    /// A dimensionless ratio (printed as `1.23x`).
    Ratio,
}

/// What a row's figure must satisfy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// Informational: nothing to meet.
    None,
    /// `ours <= k * floor`.
    Floor(f64),
    /// `ours <= k * peer` (e.g. 20x faster than libvirt is `Peer(0.05)`).
    Peer(f64),
    /// `ours <= bound`, in the row's unit.
    AtMost(f64),
}

/// One printed figure with its floor, peer and target.
#[derive(Clone, Debug)]
pub struct Row {
    /// The bench section.
    pub section: String,
    /// What was measured.
    pub name: String,
    /// The unit of `ours`, `floor`, `peer` and an `AtMost` bound.
    pub unit: Unit,
    /// Our figure.
    pub ours: f64,
    /// The unavoidable cost, measured in the same run.
    pub floor: Option<f64>,
    /// libvirt's figure, measured in the same run.
    pub peer: Option<f64>,
    /// What `ours` must satisfy.
    pub target: Target,
}

impl Row {
    /// A row with no floor, no peer and no target yet.
    pub fn new(section: &str, name: impl Into<String>, unit: Unit, ours: f64) -> Self {
        Row {
            section: section.to_owned(),
            name: name.into(),
            unit,
            ours,
            floor: None,
            peer: None,
            target: Target::None,
        }
    }

    /// Sets the floor.
    pub fn floor(mut self, floor: f64) -> Self {
        self.floor = Some(floor);
        self
    }

    /// Sets the floor when there is one.
    pub fn floor_opt(mut self, floor: Option<f64>) -> Self {
        self.floor = floor;
        self
    }

    /// Sets the peer's figure.
    pub fn peer(mut self, peer: f64) -> Self {
        self.peer = Some(peer);
        self
    }

    /// Sets the peer's figure when it was measured.
    pub fn peer_opt(mut self, peer: Option<f64>) -> Self {
        self.peer = peer;
        self
    }

    /// Sets the target.
    pub fn target(mut self, target: Target) -> Self {
        self.target = target;
        self
    }

    /// The bound `ours` is held to, when it can be computed.
    pub fn bound(&self) -> Option<f64> {
        match self.target {
            Target::None => None,
            Target::Floor(k) => self.floor.map(|f| k * f),
            Target::Peer(k) => self.peer.map(|p| k * p),
            Target::AtMost(b) => Some(b),
        }
    }

    /// `Some(true)` met, `Some(false)` missed, `None` nothing to check or not measurable.
    pub fn met(&self) -> Option<bool> {
        // A small tolerance so that a figure equal to its bound is not missed through rounding.
        self.bound().map(|b| self.ours <= b * (1.0 + 1e-9))
    }

    fn target_text(&self) -> String {
        match self.target {
            Target::None => "-".to_owned(),
            Target::Floor(k) => format!("<= {k}x floor"),
            Target::Peer(k) => format!("<= {k}x peer"),
            Target::AtMost(b) => format!("<= {}", fmt(self.unit, b)),
        }
    }

    fn met_text(&self) -> &'static str {
        match (self.target, self.met()) {
            (Target::None, _) => "",
            (_, Some(true)) => "yes",
            (_, Some(false)) => "NO",
            (_, None) => "n/a",
        }
    }

    /// The row as one table line (columns as [`header`] prints them).
    pub fn line(&self) -> String {
        let ratio = |other: Option<f64>| match other {
            Some(o) if o > 0.0 => format!("{:.2}x", self.ours / o),
            _ => "-".to_owned(),
        };
        let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| fmt(self.unit, v));
        format!(
            "{:<12} {:<52} {:>10} {:>10} {:>8} {:>10} {:>8}  {:<16} {}",
            self.section,
            self.name,
            fmt(self.unit, self.ours),
            opt(self.floor),
            ratio(self.floor),
            opt(self.peer),
            ratio(self.peer),
            self.target_text(),
            self.met_text()
        )
    }

    /// Prints the row and remembers it for [`finish`].
    pub fn emit(self) {
        println!("{}", self.line());
        if let Ok(mut rows) = ROWS.lock() {
            rows.push(self);
        }
    }
}

/// Every row emitted in this process, for the summary.
static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());

/// A figure in its unit, e.g. `38.2 µs`, `1.71 s`, `3`, `1.23x`.
pub fn fmt(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Time if v.abs() < 1e-3 => format!("{:.1} µs", v * 1e6),
        Unit::Time if v.abs() < 1.0 => format!("{:.2} ms", v * 1e3),
        Unit::Time => format!("{v:.3} s"),
        Unit::Count if v.fract() == 0.0 => format!("{v:.0}"),
        Unit::Count => format!("{v:.1}"),
        Unit::Kib => format!("{v:.0} KiB"),
        Unit::Ratio => format!("{v:.2}x"),
    }
}

/// The column titles, as [`Row::line`] lays them out.
pub fn columns() -> String {
    format!(
        "{:<12} {:<52} {:>10} {:>10} {:>8} {:>10} {:>8}  {:<16} {}",
        "section", "row", "ours", "floor", "/floor", "peer", "/peer", "target", "met"
    )
}

/// Starts a section's table: a `## ` title, then the column titles.
pub fn header(title: &str) {
    println!("## {title}");
    println!("{}", columns());
}

/// A free-text line under a table (how a floor was measured, why a target cannot hold, …).
pub fn note(text: &str) {
    println!("   {text}");
}

/// Splits `--check` off the bench's arguments: `(check, the other arguments)`.
pub fn take_check(args: Vec<String>) -> (bool, Vec<String>) {
    let check = args.iter().any(|a| a == "--check");
    (check, args.into_iter().filter(|a| a != "--check").collect())
}

/// Ends a run: prints the missed and unchecked targets; under `check`, fails when any was missed.
pub fn finish(check: bool) -> Result<()> {
    let rows = ROWS.lock().map(|r| r.clone()).unwrap_or_default();
    let targeted: Vec<&Row> = rows.iter().filter(|r| r.target != Target::None).collect();
    if targeted.is_empty() {
        return Ok(());
    }
    let missed: Vec<&Row> = targeted.iter().copied().filter(|r| r.met() == Some(false)).collect();
    let unchecked: Vec<&Row> = targeted.iter().copied().filter(|r| r.met().is_none()).collect();
    println!(
        "## Targets: {} met, {} missed, {} unchecked (floor or peer not measured)",
        targeted.len() - missed.len() - unchecked.len(),
        missed.len(),
        unchecked.len()
    );
    if !missed.is_empty() || !unchecked.is_empty() {
        println!("{}", columns());
        for row in missed.iter().chain(unchecked.iter()) {
            println!("{}", row.line());
        }
    }
    if check && !missed.is_empty() {
        bail!("{} bench target(s) missed", missed.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_met_against_its_floor_peer_or_bound() {
        let row = Row::new("s", "r", Unit::Time, 3.0).floor(2.0).target(Target::Floor(1.5));
        assert_eq!(row.met(), Some(true));
        let row = Row::new("s", "r", Unit::Time, 3.1).floor(2.0).target(Target::Floor(1.5));
        assert_eq!(row.met(), Some(false));
        let row = Row::new("s", "r", Unit::Time, 1.0).target(Target::Peer(0.25));
        assert_eq!(row.met(), None);
        let row = Row::new("s", "r", Unit::Time, 1.0).peer(4.0).target(Target::Peer(0.25));
        assert_eq!(row.met(), Some(true));
        let row = Row::new("s", "r", Unit::Count, 3.0).target(Target::AtMost(2.0));
        assert_eq!(row.met(), Some(false));
        assert_eq!(Row::new("s", "r", Unit::Count, 3.0).met(), None);
    }

    #[test]
    fn figures_print_in_their_unit() {
        assert_eq!(fmt(Unit::Time, 38.2e-6), "38.2 µs");
        assert_eq!(fmt(Unit::Time, 0.00072), "720.0 µs");
        assert_eq!(fmt(Unit::Time, 0.0049), "4.90 ms");
        assert_eq!(fmt(Unit::Time, 1.71), "1.710 s");
        assert_eq!(fmt(Unit::Count, 3.0), "3");
        assert_eq!(fmt(Unit::Count, 2.5), "2.5");
        assert_eq!(fmt(Unit::Ratio, 1.234), "1.23x");
        assert_eq!(fmt(Unit::Kib, 5120.0), "5120 KiB");
    }

    #[test]
    fn check_is_split_off_the_arguments() {
        let (check, rest) = take_check(vec!["--check".into(), "workflow".into(), "1000".into()]);
        assert!(check);
        assert_eq!(rest, ["workflow", "1000"]);
        let (check, rest) = take_check(vec!["vsphere".into()]);
        assert!(!check);
        assert_eq!(rest, ["vsphere"]);
    }
}
