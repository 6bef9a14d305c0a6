//! Funnels and retention cohorts as text: aligned tables for people, CSV for programs
//! (`spoor-segmenter funnel` / `retention`).

use std::fmt::Write;

use super::funnel::{Conversion, Reached};
use super::{Cohort, Funnel, Retention};

/// A funnel's table: one row per step (people, share of step 1, share of the step before),
/// then one table per group of its breakdown. CSV: `group,step,label,people` (group empty for
/// everyone).
pub fn funnel(funnel: &Funnel, conversion: &Conversion, csv: bool) -> String {
    let labels: Vec<String> = funnel.steps.iter().map(|s| s.label()).collect();
    let mut out = String::new();
    if csv {
        out += "group,step,label,people\n";
        let everyone = (String::new(), conversion.total.clone());
        for (group, reached) in std::iter::once(&everyone).chain(&conversion.groups) {
            for (i, (label, n)) in labels.iter().zip(reached).enumerate() {
                let _ = writeln!(
                    out,
                    "{},{},{},{n}",
                    csv_field(group),
                    i + 1,
                    csv_field(label)
                );
            }
        }
        return out;
    }
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) + 4;
    let _ = writeln!(
        out,
        "{:<width$} {:>12} {:>10} {:>14}",
        "step", "people", "of step 1", "from previous"
    );
    for (i, (label, &n)) in labels.iter().zip(&conversion.total).enumerate() {
        let previous = i
            .checked_sub(1)
            .and_then(|p| conversion.total.get(p))
            .map_or_else(String::new, |&b| share(n, b));
        let _ = writeln!(
            out,
            "{:<width$} {n:>12} {:>10} {previous:>14}",
            format!("{}. {label}", i + 1),
            share(n, conversion.total[0]),
        );
    }
    if let Some(by) = funnel.breakdown {
        let _ = writeln!(out, "\nby {}:", by.label().to_lowercase());
        let width = conversion
            .groups
            .iter()
            .map(|(g, _)| g.chars().count())
            .max()
            .unwrap_or(0)
            .max(6)
            + 2;
        let mut head = format!("{:<width$}", "group");
        for i in 1..=labels.len() {
            let _ = write!(head, " {:>10}", format!("step {i}"));
        }
        let _ = writeln!(out, "{head} {:>10}", "conversion");
        for (group, reached) in &conversion.groups {
            let name = if group.is_empty() { "(none)" } else { group };
            let _ = write!(out, "{name:<width$}");
            for n in reached {
                let _ = write!(out, " {n:>10}");
            }
            let _ = writeln!(out, " {:>10}", conversion_of(reached));
        }
    }
    out
}

fn conversion_of(reached: &Reached) -> String {
    match (reached.first(), reached.last()) {
        (Some(&first), Some(&last)) => share(last, first),
        _ => String::new(),
    }
}

/// Retention as a matrix: a row per cohort (oldest first), the share active in each period
/// after. CSV: `cohort,people,period,active`.
pub fn retention(retention: &Retention, cohorts: &[Cohort], csv: bool) -> String {
    let mut out = String::new();
    if csv {
        out += "cohort,people,period,active\n";
        for c in cohorts {
            for (n, active) in c.active.iter().enumerate() {
                let _ = writeln!(out, "{},{},{n},{active}", c.start, c.people);
            }
        }
        return out;
    }
    let _ = write!(out, "{:<12} {:>10}", "first seen", "people");
    for n in 0..cohorts.len() {
        let _ = write!(
            out,
            " {:>7}",
            format!("{}{n}", &retention.period.name()[..1])
        );
    }
    out.push('\n');
    for c in cohorts {
        let _ = write!(out, "{:<12} {:>10}", c.start.to_string(), c.people);
        for &active in &c.active {
            let _ = write!(out, " {:>7}", share(active, c.people));
        }
        out.push('\n');
    }
    out
}

/// `n` as a share of `of`, `12.5%` (`–` of nobody).
pub fn share(n: u64, of: u64) -> String {
    if of == 0 {
        "–".to_owned()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / of as f64)
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
