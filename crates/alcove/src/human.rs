//! Figures as people read them: byte counts, rates, durations, percentages and small text
//! tables, for the CLI's progress lines, summaries and `alcove status`. Pure functions: no I/O.

use std::time::Duration;

/// A byte count in binary units with one decimal (`512 B`, `1.5 KiB`, `34.2 MiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Bytes per second over `elapsed` (`0 B/s` before any time has passed).
pub fn rate(n: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let per_second = if seconds > 0.0 { (n as f64 / seconds) as u64 } else { 0 };
    format!("{}/s", bytes(per_second))
}

/// A duration: tenths under 10 s (`3.2s`), whole seconds under a minute (`17s`), then `2m05s`
/// and `1h02m`.
pub fn duration(d: Duration) -> String {
    let seconds = d.as_secs();
    match seconds {
        0..=9 => format!("{:.1}s", d.as_secs_f64()),
        10..=59 => format!("{seconds}s"),
        60..=3599 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

/// Time left at the rate so far to get from `done` to `total`; unknown before anything is done.
pub fn eta(done: u64, total: u64, elapsed: Duration) -> Option<Duration> {
    if done == 0 {
        return None;
    }
    let left = total.saturating_sub(done) as f64;
    Some(Duration::from_secs_f64(elapsed.as_secs_f64() * left / done as f64))
}

/// `n thing` or `n things`.
pub fn count(n: u64, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// A ratio in [0, 1] as a percentage with one decimal.
pub fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// Rows as left-aligned columns two spaces apart, each line indented by `indent`; the first row
/// is the header. Trailing spaces are trimmed.
pub fn table(rows: &[Vec<String>], indent: &str) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|cell| cell.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = indent.to_owned();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(34 << 20 | 200 << 10), "34.2 MiB");
        assert_eq!(bytes(5 << 30), "5.0 GiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn rates() {
        assert_eq!(rate(10 << 20, Duration::from_secs(2)), "5.0 MiB/s");
        assert_eq!(rate(100, Duration::ZERO), "0 B/s");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_millis(3240)), "3.2s");
        assert_eq!(duration(Duration::from_secs(17)), "17s");
        assert_eq!(duration(Duration::from_secs(125)), "2m05s");
        assert_eq!(duration(Duration::from_secs(3720)), "1h02m");
    }

    #[test]
    fn etas() {
        assert_eq!(eta(0, 100, Duration::from_secs(5)), None);
        assert_eq!(eta(25, 100, Duration::from_secs(5)), Some(Duration::from_secs(15)));
        assert_eq!(eta(100, 100, Duration::from_secs(5)), Some(Duration::ZERO));
        assert_eq!(eta(120, 100, Duration::from_secs(5)), Some(Duration::ZERO), "an object grew meanwhile");
    }

    #[test]
    fn counts_and_percentages() {
        assert_eq!(count(1, "object", "objects"), "1 object");
        assert_eq!(count(0, "object", "objects"), "0 objects");
        assert_eq!(percent(0.9321), "93.2%");
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["tier".to_owned(), "used".to_owned(), "pages".to_owned()],
            vec!["memory".to_owned(), "1.0 MiB".to_owned(), "1".to_owned()],
        ];
        assert_eq!(table(&rows, "  "), "  tier    used     pages\n  memory  1.0 MiB  1\n");
    }
}
