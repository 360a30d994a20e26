//! Tables for people.

use crate::engine::UnitStatus;

/// Left-aligned columns separated by two spaces, the header in capitals.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

/// `deisctl list` and `status`: one line per unit.
pub fn units_table(units: &[UnitStatus]) -> String {
    if units.is_empty() {
        return "No units installed.\n".into();
    }
    let rows: Vec<Vec<String>> = units
        .iter()
        .map(|u| {
            vec![
                u.unit.clone(),
                u.state.clone(),
                u.host.clone(),
                if u.ports.is_empty() {
                    "-".into()
                } else {
                    u.ports.join(",")
                },
                u.detail.clone(),
            ]
        })
        .collect();
    table(&["UNIT", "STATE", "HOST", "PORTS", "DETAIL"], &rows)
}
