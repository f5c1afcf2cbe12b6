//! Report formats: text (default), json, junit and tap.

use crate::{case::Outcome, runner::Report};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per case, then the summary and timings.
    Text,
    /// The whole report as one JSON document.
    Json,
    /// JUnit XML, one testcase per case.
    Junit,
    /// TAP version 13.
    Tap,
}

impl Format {
    /// Parses `text|json|junit|tap`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "text" => Self::Text,
            "json" => Self::Json,
            "junit" => Self::Junit,
            "tap" => Self::Tap,
            _ => return None,
        })
    }
}

/// One line for one case (text format).
pub fn text_line(id: &str, outcome: &Outcome, millis: u64) -> String {
    match outcome {
        Outcome::Pass { note: None } => format!("PASS {id} ({millis} ms)"),
        Outcome::Pass { note: Some(n) } => format!("PASS {id} ({millis} ms): {n}"),
        Outcome::Skip { reason } => format!("SKIP {id}: {reason}"),
        Outcome::Fail { message, expected, got } => {
            let mut s = format!("FAIL {id} ({millis} ms): {message}");
            if let Some(e) = expected {
                s.push_str(&format!("\n       expected: {e}"));
            }
            if let Some(g) = got {
                s.push_str(&format!("\n       got:      {g}"));
            }
            s
        }
    }
}

/// The summary and timing lines.
pub fn summary(r: &Report) -> String {
    let (p, f, s) = r.counts();
    let secs = |ms: u64| ms as f64 / 1000.0;
    format!(
        "{} {} at {}: {p} passed, {f} failed, {s} skipped\ntimings: static level {:.2} s, behavioural level {:.2} s, total {:.2} s",
        r.plugin_name,
        r.plugin_version,
        r.uri,
        secs(r.static_millis),
        secs(r.behaviour_millis),
        secs(r.total_millis)
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// Renders the whole report.
pub fn render(r: &Report, format: Format) -> String {
    match format {
        Format::Text => {
            let mut out: Vec<String> = r.cases.iter().map(|c| text_line(&c.id, &c.outcome, c.millis)).collect();
            out.push(summary(r));
            out.join("\n") + "\n"
        }
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_default() + "\n",
        Format::Tap => {
            let mut out = vec!["TAP version 13".to_owned(), format!("1..{}", r.cases.len())];
            for (i, c) in r.cases.iter().enumerate() {
                let n = i + 1;
                match &c.outcome {
                    Outcome::Pass { .. } => out.push(format!("ok {n} - {}", c.id)),
                    Outcome::Skip { reason } => out.push(format!("ok {n} - {} # SKIP {reason}", c.id)),
                    Outcome::Fail { message, expected, got } => {
                        out.push(format!("not ok {n} - {}", c.id));
                        out.push("  ---".to_owned());
                        out.push(format!("  message: {}", serde_json::to_string(message).unwrap_or_default()));
                        if let Some(e) = expected {
                            out.push(format!("  expected: {}", serde_json::to_string(e).unwrap_or_default()));
                        }
                        if let Some(g) = got {
                            out.push(format!("  got: {}", serde_json::to_string(g).unwrap_or_default()));
                        }
                        out.push("  ...".to_owned());
                    }
                }
            }
            out.push(format!("# {}", summary(r).replace('\n', "\n# ")));
            out.join("\n") + "\n"
        }
        Format::Junit => {
            let (_, f, s) = r.counts();
            let mut out = vec![
                r#"<?xml version="1.0" encoding="UTF-8"?>"#.to_owned(),
                format!(
                    r#"<testsuite name="virtplug-conformance {}" tests="{}" failures="{f}" skipped="{s}" time="{:.3}">"#,
                    xml_escape(&r.plugin_name),
                    r.cases.len(),
                    r.total_millis as f64 / 1000.0
                ),
            ];
            for c in &r.cases {
                let (class, name) = c.id.rsplit_once('.').unwrap_or(("", &c.id));
                let open = format!(
                    r#"  <testcase classname="{}" name="{}" time="{:.3}""#,
                    xml_escape(class),
                    xml_escape(name),
                    c.millis as f64 / 1000.0
                );
                match &c.outcome {
                    Outcome::Pass { .. } => out.push(format!("{open}/>")),
                    Outcome::Skip { reason } => {
                        out.push(format!("{open}><skipped message=\"{}\"/></testcase>", xml_escape(reason)))
                    }
                    Outcome::Fail { message, expected, got } => out.push(format!(
                        "{open}><failure message=\"{}\">expected: {}\ngot: {}</failure></testcase>",
                        xml_escape(message),
                        xml_escape(expected.as_deref().unwrap_or("")),
                        xml_escape(got.as_deref().unwrap_or(""))
                    )),
                }
            }
            out.push("</testsuite>".to_owned());
            out.join("\n") + "\n"
        }
    }
}
