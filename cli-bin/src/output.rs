//! Tables for people, JSON and YAML for scripts, colour only on a terminal.

use std::io::Write;

use anstyle::{AnsiColor, Style};
use clap::ValueEnum;
use cluster_api::Timestamp;
use serde::Serialize;

/// A titled table: its title, its headers, its rows.
pub type Section<'h> = (&'h str, &'h [&'h str], Vec<Vec<String>>);

/// `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Where output goes.
pub struct Io<'a> {
    /// Standard output.
    pub out: &'a mut dyn Write,
    /// Standard error.
    pub err: &'a mut dyn Write,
    /// Colours and a progress bar (stdout is a terminal and NO_COLOR is unset).
    pub terminal: bool,
    /// The output format.
    pub format: Format,
}

impl Io<'_> {
    /// Writes `value` as JSON or YAML; false for table output (the caller prints a table).
    pub fn structured<T: Serialize>(&mut self, value: &T) -> bool {
        let text = match self.format {
            Format::Table => return false,
            Format::Json => serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
            Format::Yaml => serde_saphyr::to_string(value).unwrap_or_default(),
        };
        let _ = self.out.write_all(text.as_bytes());
        true
    }

    /// A line on stdout.
    pub fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    /// Text in a colour, when on a terminal.
    pub fn paint(&self, text: &str, color: AnsiColor) -> String {
        if self.terminal {
            let style = Style::new().fg_color(Some(color.into()));
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    /// A bold header, when on a terminal.
    pub fn bold(&self, text: &str) -> String {
        if self.terminal {
            let style = Style::new().bold();
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    /// Prints each titled table that has rows, a blank line before each.
    pub fn sections<'h>(&mut self, sections: impl IntoIterator<Item = Section<'h>>) {
        for (title, headers, rows) in sections {
            if !rows.is_empty() {
                self.line("");
                let title = self.bold(title);
                self.line(&title);
                self.table(headers, &rows);
            }
        }
    }

    /// Prints rows under headers, columns aligned on the visible text.
    pub fn table(&mut self, headers: &[&str], rows: &[Vec<String>]) {
        let visible = |s: &str| strip_ansi(s).chars().count();
        let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(visible(cell));
            }
        }
        let header: Vec<String> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| pad(h, widths[i], visible(h)))
            .collect();
        let header = header.join("  ").trim_end().to_string();
        let header = self.bold(&header);
        self.line(&header);
        for row in rows {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, c)| pad(c, widths[i], visible(c)))
                .collect();
            self.line(cells.join("  ").trim_end());
        }
    }
}

fn pad(s: &str, width: usize, visible: usize) -> String {
    format!("{s}{}", " ".repeat(width.saturating_sub(visible)))
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

/// "3m12s" since `t`, at `now`.
pub fn age(t: Timestamp, now: Timestamp) -> String {
    let secs = now.duration_since(t).as_secs().max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{}m", secs / 3600, (secs % 3600) / 60),
        _ => format!("{}d{}h", secs / 86400, (secs % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        let t: Timestamp = "2026-01-05T09:00:00Z".parse().unwrap();
        let at = |s: i64| t + jiff::SignedDuration::from_secs(s);
        assert_eq!(age(t, at(42)), "42s");
        assert_eq!(age(t, at(192)), "3m12s");
        assert_eq!(age(t, at(7260)), "2h1m");
        assert_eq!(age(t, at(90000)), "1d1h");
    }

    #[test]
    fn columns_align_on_what_is_visible() {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut io = Io {
            out: &mut out,
            err: &mut err,
            terminal: false,
            format: Format::Table,
        };
        io.table(
            &["NAME", "PHASE"],
            &[
                vec!["web".into(), "complete".into()],
                vec!["postgres".into(), "idle".into()],
            ],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME      PHASE\nweb       complete\npostgres  idle\n"
        );
        assert_eq!(strip_ansi("\u{1b}[32mok\u{1b}[0m"), "ok");
    }
}
