//! The README's settings table against the binary: every flag `crier
//! --help` lists has a row, every row is a real flag, and the ↻ marks are
//! exactly the settings SIGHUP reloads (`crier::RELOADABLE`), so the
//! documentation cannot drift from the code.

use std::collections::BTreeSet;
use std::process::Command;

/// Setting names in the README table, with whether the row is marked ↻.
fn readme_rows() -> Vec<(String, bool)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme
        .split("## Settings")
        .nth(1)
        .expect("a Settings section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut rows = Vec::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let reload = cells[3] == "↻";
        for name in cells[1].split(',') {
            let name = name.trim().trim_matches('`');
            rows.push((name.to_string(), reload));
        }
    }
    rows
}

/// The server's `--flags` from `crier --help`.
fn help_flags() -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_crier"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    help.lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .map(|l| l.split([' ', '=', '[', '<']).next().unwrap().to_string())
        .filter(|f| !["config", "check-host", "help", "version"].contains(&f.as_str()))
        .collect()
}

#[test]
fn every_setting_has_a_row_and_every_row_is_a_setting() {
    let rows: BTreeSet<String> = readme_rows().into_iter().map(|(n, _)| n).collect();
    let flags = help_flags();
    assert!(flags.len() > 50, "{flags:?}");
    let missing: Vec<_> = flags.difference(&rows).collect();
    let unknown: Vec<_> = rows.difference(&flags).collect();
    assert!(
        missing.is_empty(),
        "settings without a README row: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "README rows that are no setting: {unknown:?}"
    );
}

#[test]
fn the_reload_marks_are_what_sighup_reloads() {
    let marked: BTreeSet<String> = readme_rows()
        .into_iter()
        .filter(|(_, reload)| *reload)
        .map(|(n, _)| n)
        .collect();
    let reloadable: BTreeSet<String> = crier::RELOADABLE
        .iter()
        .map(|n| n.replace('_', "-"))
        .collect();
    assert_eq!(marked, reloadable);
}
