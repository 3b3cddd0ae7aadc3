use std::path::Path;

use crate::{DataError, Dataset, Result};

/// Reads a numeric CSV table with a header row. A column named `y` (the ODDS convention: 1 marks
/// an outlier) becomes the labels; every other column is a feature.
///
/// # Errors
/// [`DataError::Csv`] naming the line and column of a non-numeric or non-finite cell, a ragged
/// row, or a non-integer label; [`DataError::Io`] if the file cannot be read.
pub fn load_csv(path: &Path) -> Result<Dataset> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| csv_error(path, e))?;
    let header = reader.headers().map_err(|e| csv_error(path, e))?.clone();
    if header.is_empty() || header.iter().all(str::is_empty) {
        return Err(DataError::Csv {
            path: path.into(),
            line: 1,
            column: 0,
            reason: "empty header row".into(),
        });
    }
    let y_col = header.iter().position(|h| h == "y");
    let d = header.len() - usize::from(y_col.is_some());
    if d == 0 {
        return Err(DataError::Csv {
            path: path.into(),
            line: 1,
            column: 0,
            reason: "no feature columns".into(),
        });
    }
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, e))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() != header.len() {
            return Err(DataError::Csv {
                path: path.into(),
                line,
                column: 0,
                reason: format!("ragged row: {} cells, the header has {}", record.len(), header.len()),
            });
        }
        for (j, cell) in record.iter().enumerate() {
            let bad = |reason: String| DataError::Csv {
                path: path.into(),
                line,
                column: j + 1,
                reason,
            };
            if Some(j) == y_col {
                let v: f64 = cell
                    .parse()
                    .map_err(|_| bad(format!("label {cell:?} is not a number")))?;
                if v.fract() != 0.0 {
                    return Err(bad(format!("label {cell:?} is not an integer")));
                }
                labels.push(v as i64);
            } else {
                let v: f32 = cell
                    .parse()
                    .map_err(|_| bad(format!("{cell:?} in column {:?} is not a number", &header[j])))?;
                if !v.is_finite() {
                    return Err(bad(format!("{cell:?} in column {:?} is not finite", &header[j])));
                }
                features.push(v);
            }
        }
    }
    if features.is_empty() {
        return Err(DataError::Csv {
            path: path.into(),
            line: 2,
            column: 0,
            reason: "no data rows".into(),
        });
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "table".into());
    Dataset::new(name, features, d, y_col.map(|_| labels), None)
}

fn csv_error(path: &Path, e: csv::Error) -> DataError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    match e.into_kind() {
        csv::ErrorKind::Io(io) => DataError::io(path, io),
        other => DataError::Csv {
            path: path.into(),
            line,
            column: 0,
            reason: format!("{other:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn load_str(text: &str) -> Result<Dataset> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, text).unwrap();
        load_csv(&p)
    }

    #[test]
    fn reads_features_and_labels() {
        let d = load_str("a,b,y\n1,2,0\n3.5,-4,1\n").unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d.features(), &[1.0, 2.0, 3.5, -4.0]);
        assert_eq!(d.labels().unwrap(), &[0, 1]);
        let unlabelled = load_str("a,b\n1,2\n").unwrap();
        assert!(unlabelled.labels().is_none());
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = load_str("a,b,y\n1,2,0\n3,x,1\n").unwrap_err().to_string();
        assert!(e.contains("line 3, column 2") && e.contains("\"x\""), "{e}");
        let e = load_str("a,b,y\n1,2,0\n3,1\n").unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("ragged"), "{e}");
        let e = load_str("a,y\n1,0.5\n").unwrap_err().to_string();
        assert!(e.contains("line 2, column 2") && e.contains("integer"), "{e}");
        let e = load_str("a,b\n1,inf\n").unwrap_err().to_string();
        assert!(e.contains("not finite"), "{e}");
        assert!(load_str("").is_err());
        assert!(load_str("a,b\n").unwrap_err().to_string().contains("no data rows"));
        assert!(
            load_csv(Path::new("/nonexistent/t.csv"))
                .unwrap_err()
                .to_string()
                .contains("/nonexistent/t.csv")
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn arbitrary_text_never_panics(text in "[a-z0-9,.\\-\"\n ]{0,80}") {
            let _ = load_str(&text);
        }
    }
}
