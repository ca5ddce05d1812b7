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
    /// The result as one pretty-printed JSON document.
    Json,
    /// The result as one YAML document.
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

    /// A line on stdout, [`clean`]ed.
    pub fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{}", clean(text));
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

    /// Prints rows under headers, columns aligned on the visible text; every cell [`clean`]ed.
    pub fn table(&mut self, headers: &[&str], rows: &[Vec<String>]) {
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|row| row.iter().map(|cell| clean(cell)).collect())
            .collect();
        let rows = &rows;
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

/// `text` safe to print on a terminal: what the server sends (names, reasons, Event notes
/// anyone allowed to create Events could have written) may carry escape sequences that would
/// hide a link, erase lines or retitle the window. Only colour and weight (SGR, `ESC [ ... m`,
/// as [`Io::paint`] writes) are kept; every other escape sequence and control character is
/// dropped, and line breaks and tabs become spaces.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                if chars.peek() == Some(&'[') {
                    // A control sequence: parameters, then one final byte.
                    chars.next();
                    let mut params = String::new();
                    let mut last = None;
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            last = Some(c);
                            break;
                        }
                        params.push(c);
                    }
                    let sgr =
                        last == Some('m') && params.chars().all(|c| c.is_ascii_digit() || c == ';');
                    if sgr {
                        out.push_str("\u{1b}[");
                        out.push_str(&params);
                        out.push('m');
                    }
                } else if chars.peek() == Some(&']') {
                    // An operating system command (a link, a title): up to BEL or ESC \.
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                } else {
                    // Any other escape: drop it and the character it introduces.
                    chars.next();
                }
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
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

    /// A history message anyone allowed to create Events could have written: a hidden link,
    /// erased lines, a new window title. Printed, it must be text, not terminal commands; our
    /// own colours stay.
    #[test]
    fn server_strings_cannot_drive_the_terminal() {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut io = Io {
            out: &mut out,
            err: &mut err,
            terminal: true,
            format: Format::Table,
        };
        let hostile = "restarted by \u{1b}]8;;https://evil.example\u{7}alice\u{1b}]8;;\u{7}\
                       \u{1b}[2K\u{1b}[1A\u{1b}]0;pwned\u{7}\r\u{9b}31m done";
        let painted = io.paint("complete", AnsiColor::Green);
        io.table(&["PHASE", "MESSAGE"], &[vec![painted, hostile.into()]]);
        io.line(hostile);
        let printed = String::from_utf8(out).unwrap();
        for bad in ["\u{1b}]", "\u{7}", "\u{1b}[2K", "\u{1b}[1A", "\r", "\u{9b}"] {
            assert!(!printed.contains(bad), "{bad:?} in {printed:?}");
        }
        assert!(printed.contains("alice"), "{printed:?}");
        assert!(
            printed.contains("\u{1b}[32m"),
            "our colour stays: {printed:?}"
        );
    }
}
