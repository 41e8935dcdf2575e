//! CPU time of a server, read from `/proc/PID/stat` around a measured run.
//!
//! A reading is the CPU time (user + system) of a process tree: the process itself, every live
//! descendant, and what they have already collected from descendants that exited and were waited
//! for (`cutime` + `cstime`). The difference of two readings is then the CPU the whole tree used
//! in between, also across short-lived children (nginx's cache loader, a worker respawned by its
//! master). Threads are part of their process's figures.

use std::collections::HashMap;

/// Clock ticks per second of the times in `/proc/PID/stat` (USER_HZ). It is part of the kernel's
/// user-space ABI and 100 on the architectures this benchmark runs on (x86-64, arm64).
const USER_HZ: f64 = 100.0;

/// One process's line of `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    ppid: u32,
    /// utime + stime + cutime + cstime, in ticks.
    ticks: u64,
}

/// Parses a `/proc/PID/stat` line. The command name (field 2) is in parentheses and may hold
/// spaces or parentheses itself, so the fields are counted from its last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // f[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..=17.
    let ppid = f.get(1)?.parse().ok()?;
    let mut ticks = 0u64;
    for i in 11..=14 {
        ticks = ticks.checked_add(f.get(i)?.parse::<i64>().ok()?.max(0) as u64)?;
    }
    Some(Stat { ppid, ticks })
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// CPU seconds used so far by the trees rooted at `pids` (each pid counted once), or `None` if
/// one of them is not running.
pub fn tree_seconds(pids: &[u32]) -> Option<f64> {
    let mut children: HashMap<u32, Vec<(u32, u64)>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if let Some(st) = read_stat(pid) {
            children.entry(st.ppid).or_default().push((pid, st.ticks));
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    for &root in pids {
        let st = read_stat(root)?;
        let mut stack = vec![(root, st.ticks)];
        while let Some((pid, ticks)) = stack.pop() {
            if !seen.insert(pid) {
                continue;
            }
            total += ticks;
            if let Some(kids) = children.get(&pid) {
                stack.extend(kids.iter().copied());
            }
        }
    }
    Some(total as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse() {
        let line = "4242 (nginx: worker (x)) S 4200 4200 4200 0 -1 4194624 100 0 0 0 250 75 3 2 20 0 1 0 \
                    1000 1000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_stat(line), Some(Stat { ppid: 4200, ticks: 250 + 75 + 3 + 2 }));
        assert_eq!(parse_stat("12 (x) S"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_process_is_measured() {
        let me = std::process::id();
        let before = tree_seconds(&[me]).expect("own stat");
        // Burn some CPU: the reading may not go backwards.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = tree_seconds(&[me]).expect("own stat");
        assert!(after >= before, "{after} < {before}");
        assert!(tree_seconds(&[u32::MAX]).is_none());
    }
}
