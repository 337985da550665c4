//! Helpers for the tables dales writes: mean and spread over seeds, markdown tables.

/// Mean and sample standard deviation (0 for one value; NaN for none).
///
/// ```
/// let (m, sd) = dales::report::mean_sd(&[1.0, 2.0, 3.0]);
/// assert_eq!((m, sd), (2.0, 1.0));
/// ```
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (m, sd)
}

/// A markdown table (also readable in a terminal), columns padded to their widest cell.
///
/// ```
/// let t = dales::report::markdown_table(&["a", "bb"], &[vec!["1".into(), "2".into()]]);
/// assert_eq!(t, "| a | bb |\n| - | -- |\n| 1 | 2  |\n");
/// ```
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let cells: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut s = line(header.iter().map(|h| h.to_string()).collect());
    s += &line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        s += &line(r.clone());
    }
    s
}
