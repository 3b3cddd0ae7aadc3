use std::io::Read;

use flate2::read::GzDecoder;
use gen_core::nn::ImageShape;

use crate::{Dataset, Result};

static DIGITS_CSV_GZ: &[u8] = include_bytes!("../data/digits.csv.gz");

/// The 8x8 handwritten digits set (1,797 images, 10 classes), embedded in the binary so that it
/// works offline. Pixels are scaled from 0..16 to [0, 1].
///
/// The file is the one in scikit-learn (BSD-3-Clause), from the UCI optical digits set.
///
/// # Errors
/// Never in practice: the embedded file is parsed like any other CSV and checked.
pub fn digits() -> Result<Dataset> {
    let mut text = String::new();
    GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .map_err(|e| crate::DataError::format("<embedded digits.csv.gz>", e.to_string()))?;
    let mut features = Vec::with_capacity(1797 * 64);
    let mut labels = Vec::with_capacity(1797);
    for (i, line) in text.lines().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let bad = |column: usize, reason: &str| crate::DataError::Csv {
            path: "<embedded digits.csv.gz>".into(),
            line: i as u64 + 1,
            column,
            reason: reason.into(),
        };
        if cells.len() != 65 {
            return Err(bad(0, "expected 65 cells"));
        }
        for (j, c) in cells[..64].iter().enumerate() {
            let v: f32 = c.trim().parse().map_err(|_| bad(j + 1, "not a number"))?;
            features.push(v / 16.0);
        }
        labels.push(
            cells[64]
                .trim()
                .parse()
                .map_err(|_| bad(65, "label is not an integer"))?,
        );
    }
    Dataset::new("digits", features, 64, Some(labels), Some(ImageShape::grey(8, 8)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_digits_are_complete() {
        let d = digits().unwrap();
        assert_eq!(d.len(), 1797);
        assert_eq!(d.d(), 64);
        assert!(d.features().iter().all(|&v| (0.0..=1.0).contains(&v)));
        let labels = d.labels().unwrap();
        for c in 0..10 {
            let n = labels.iter().filter(|&&l| l == c).count();
            assert!((170..=190).contains(&n), "class {c} has {n} images");
        }
    }
}
