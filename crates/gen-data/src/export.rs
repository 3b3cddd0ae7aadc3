//! Output formats other tools read: `.npy` arrays that `numpy.load` reads ([`write_npy`]), and
//! labelled image sets as CSV or as an IDX pair as MNIST ships them ([`LabelledWriter`]).
//! Reading images and writing PNG files is [`crate::images`]'.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gen_core::nn::ImageShape;
use gen_core::train::AtomicFile;

use crate::{DataError, Result};

/// Returns `Err(DataError::Invalid(..))` with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(DataError::Invalid(format!($($msg)+)));
        }
    };
}

/// Writes `values` as a 2-D `rows` x `cols` array of little-endian `f32` in C order to an `.npy`
/// file that `numpy.load` reads.
///
/// # Errors
/// If `values.len() != rows * cols` or the file cannot be written (naming it).
pub fn write_npy(path: &Path, values: &[f32], rows: usize, cols: usize) -> Result<()> {
    let view = ndarray::ArrayView2::from_shape((rows, cols), values).map_err(|_| {
        DataError::Invalid(format!(
            "a {rows}x{cols} array needs {} values, got {}",
            rows.saturating_mul(cols),
            values.len()
        ))
    })?;
    ndarray_npy::write_npy(path, &view).map_err(|e| {
        DataError::Write(gen_core::CoreError::Io {
            action: "cannot write",
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })
    })
}

/// Labelled images written as they come, chunk by chunk, so `gen augment` holds one chunk
/// whatever the number of images: `NAME.csv` (a `label,p0,p1,…` header, then one row per
/// image with pixels in [0, 1] to four decimals) or `NAME.idx` (the IDX pair
/// `NAME-images-idx3-ubyte` and `NAME-labels-idx1-ubyte`, as MNIST ships, pixels mapped as in
/// [`crate::images::write_pngs`]). The files appear at [`LabelledWriter::finish`], whole, or not at all.
pub struct LabelledWriter {
    files: Vec<AtomicFile>,
    idx: bool,
    shape: ImageShape,
    expected: usize,
    written: usize,
}

impl LabelledWriter {
    /// Starts writing `n` images of `shape` to `path`, by its extension.
    ///
    /// # Errors
    /// If the extension is neither `.csv` nor `.idx`, IDX is asked for colour images or for more
    /// images or larger sides than its 32-bit header holds, or a file cannot be created.
    pub fn create(path: &Path, n: usize, shape: ImageShape) -> Result<Self> {
        let idx = match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => false,
            Some("idx") => true,
            _ => {
                return Err(DataError::Invalid(format!(
                    "{} must end in .csv or .idx",
                    path.display()
                )));
            }
        };
        let mut files = Vec::new();
        if idx {
            ensure!(shape.channels == 1, "IDX output holds grey images only");
            let count = u32::try_from(n).map_err(|_| {
                DataError::Invalid(format!("IDX files hold at most {} images, asked for {n}", u32::MAX))
            })?;
            let side = |s: usize| {
                u32::try_from(s)
                    .map_err(|_| DataError::Invalid(format!("an image side of {s} does not fit an IDX header")))
            };
            let (h, w) = (side(shape.height)?, side(shape.width)?);
            let stem = path.with_extension("");
            let stem = stem.to_string_lossy();
            let mut images = AtomicFile::create(Path::new(&format!("{stem}-images-idx3-ubyte")))?;
            let mut labels = AtomicFile::create(Path::new(&format!("{stem}-labels-idx1-ubyte")))?;
            images.write(&[0, 0, 8, 3])?;
            for v in [count, h, w] {
                images.write(&v.to_be_bytes())?;
            }
            labels.write(&[0, 0, 8, 1])?;
            labels.write(&count.to_be_bytes())?;
            files.extend([images, labels]);
        } else {
            let mut csv = AtomicFile::create(path)?;
            let mut header = String::from("label");
            for i in 0..shape.numel() {
                header.push_str(&format!(",p{i}"));
            }
            header.push('\n');
            csv.write(header.as_bytes())?;
            files.push(csv);
        }
        Ok(Self {
            files,
            idx,
            shape,
            expected: n,
            written: 0,
        })
    }

    /// Appends `labels.len()` images, `images` holding their pixels one image after another.
    ///
    /// # Errors
    /// If the counts disagree with each other or would pass the `n` given to `create`, an IDX
    /// label lies outside 0..=255, or the write fails.
    pub fn push(&mut self, images: &[f32], labels: &[i64]) -> Result<()> {
        let d = self.shape.numel();
        ensure!(
            images.len() == labels.len() * d,
            "{} labels for {} values of {d}-pixel images",
            labels.len(),
            images.len()
        );
        ensure!(
            self.written + labels.len() <= self.expected,
            "{} images announced, {} written",
            self.expected,
            self.written + labels.len()
        );
        if self.idx {
            let bytes: Vec<u8> = labels
                .iter()
                .map(|&l| {
                    u8::try_from(l).map_err(|_| DataError::Invalid(format!("IDX labels must lie in 0..=255, got {l}")))
                })
                .collect::<Result<_>>()?;
            self.files[0].write(&crate::to_bytes(images))?;
            self.files[1].write(&bytes)?;
        } else {
            // Formatted into one buffer: no string per pixel.
            let mut text = String::new();
            for (img, l) in images.chunks_exact(d.max(1)).zip(labels) {
                let _ = write!(text, "{l}");
                for v in img {
                    let _ = write!(text, ",{v:.4}");
                }
                text.push('\n');
            }
            self.files[0].write(text.as_bytes())?;
        }
        self.written += labels.len();
        Ok(())
    }

    /// Moves the files into place and returns their paths.
    ///
    /// # Errors
    /// If fewer images were pushed than announced (nothing is then written), or a file cannot
    /// be completed.
    pub fn finish(self) -> Result<Vec<PathBuf>> {
        ensure!(
            self.written == self.expected,
            "{} images announced, {} written",
            self.expected,
            self.written
        );
        Ok(self
            .files
            .into_iter()
            .map(AtomicFile::commit)
            .collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bit patterns, to check exact round trips without comparing floats with `==`.
    fn bits(values: &[f32]) -> Vec<u32> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    /// Splits an `.npy` file into its header dict text and its payload, checking the magic,
    /// version 1.0 and the 64-byte alignment of the data.
    fn parse_npy(bytes: &[u8]) -> (String, &[u8]) {
        assert_eq!(&bytes[..6], b"\x93NUMPY");
        assert_eq!(&bytes[6..8], &[1, 0]);
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let start = 10 + header_len;
        assert_eq!(start % 64, 0, "data starts at {start}");
        let header = std::str::from_utf8(&bytes[10..start]).unwrap();
        assert!(header.ends_with('\n'));
        (header.trim_end().to_owned(), &bytes[start..])
    }

    #[test]
    fn write_npy_writes_a_2d_f32_array() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codes.npy");
        let values: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
        write_npy(&path, &values, 2, 3).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (header, payload) = parse_npy(&bytes);
        assert!(
            header.contains("'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)"),
            "{header}"
        );
        let back: Vec<f32> = payload
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(bits(&back), bits(&values));
        assert!(write_npy(&path, &values, 4, 2).is_err());
        let err = format!(
            "{:#}",
            write_npy(&dir.path().join("no/such/dir.npy"), &values, 2, 3).unwrap_err()
        );
        assert!(err.contains("dir.npy"), "{err}");
    }

    #[test]
    fn write_npy_of_zero_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.npy");
        write_npy(&path, &[], 0, 4).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (header, payload) = parse_npy(&bytes);
        assert!(header.contains("'shape': (0, 4)"), "{header}");
        assert!(payload.is_empty());
    }

    /// A Python interpreter that can import numpy: `python3`, or `~/torch-ref/bin/python`.
    fn python_with_numpy() -> Option<PathBuf> {
        let mut candidates = vec![PathBuf::from("python3"), PathBuf::from("python")];
        if let Some(home) = std::env::var_os("HOME") {
            candidates.push(Path::new(&home).join("torch-ref/bin/python"));
        }
        candidates.into_iter().find(|py| {
            std::process::Command::new(py)
                .args(["-c", "import numpy"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    }

    #[test]
    fn numpy_loads_write_npy_output() {
        let Some(python) = python_with_numpy() else {
            eprintln!("skipped numpy_loads_write_npy_output: no python3 with numpy found");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codes.npy");
        let values: Vec<f32> = (0..12).map(|i| i as f32 / 8.0 - 0.75).collect();
        write_npy(&path, &values, 3, 4).unwrap();
        let script = "import sys, numpy as np\n\
                      a = np.load(sys.argv[1])\n\
                      assert a.dtype == np.float32 and a.shape == (3, 4), (a.dtype, a.shape)\n\
                      assert a.flags['C_CONTIGUOUS']\n\
                      print(' '.join(repr(float(v)) for v in a.ravel()))\n";
        let out = std::process::Command::new(&python)
            .args(["-c", script])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} failed: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let back: Vec<f32> = String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(bits(&back), bits(&values));
    }

    /// Writes `images` (2x2) with `labels` to `path` in chunks of one image.
    fn write_labelled(path: &Path, images: &[f32], labels: &[i64]) -> Result<Vec<PathBuf>> {
        let mut out = LabelledWriter::create(path, labels.len(), ImageShape::grey(2, 2))?;
        for (img, l) in images.chunks(4).zip(labels) {
            out.push(img, std::slice::from_ref(l))?;
        }
        out.finish()
    }

    #[test]
    fn labelled_output_round_trips_through_idx_and_csv() {
        let dir = tempfile::tempdir().unwrap();
        let images = vec![0.0, 0.5, 1.0, 0.25, 1.0, 1.0, 0.0, 0.0];
        let written = write_labelled(&dir.path().join("syn.idx"), &images, &[3, 7]).unwrap();
        let read = crate::images::read_images(&written[0]).unwrap();
        assert_eq!((read.n, read.shape), (2, ImageShape::grey(2, 2)));
        assert!((read.values[1] - 128.0 / 255.0).abs() < 1e-6);
        let lbl = std::fs::read(&written[1]).unwrap();
        assert_eq!(lbl, vec![0, 0, 8, 1, 0, 0, 0, 2, 3, 7]);
        let csv = dir.path().join("syn.csv");
        write_labelled(&csv, &images, &[3, 7]).unwrap();
        let text = std::fs::read_to_string(&csv).unwrap();
        assert_eq!(
            text,
            "label,p0,p1,p2,p3\n3,0.0000,0.5000,1.0000,0.2500\n7,1.0000,1.0000,0.0000,0.0000\n"
        );
        let leftovers = || std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers(), 3, "the IDX pair and the CSV, no temporary file");
        assert!(write_labelled(&dir.path().join("x.bin"), &images, &[3, 7]).is_err());
        // A failed write leaves nothing behind, and keeps an earlier file whole.
        let e = write_labelled(&dir.path().join("syn.idx"), &images, &[3, 300]).unwrap_err();
        assert!(e.to_string().contains("0..=255"), "{e}");
        assert_eq!(crate::images::read_images(&written[0]).unwrap().n, 2);
        assert_eq!(std::fs::read(&written[1]).unwrap(), lbl);
        // So does one that stops short of the count it announced.
        let mut short = LabelledWriter::create(&csv, 3, ImageShape::grey(2, 2)).unwrap();
        short.push(&images, &[3, 7]).unwrap();
        assert!(
            short
                .finish()
                .unwrap_err()
                .to_string()
                .contains("3 images announced, 2 written")
        );
        assert_eq!(std::fs::read_to_string(&csv).unwrap(), text);
        assert_eq!(leftovers(), 3);
        // Counts that disagree, and too many images.
        let mut w = LabelledWriter::create(&csv, 1, ImageShape::grey(2, 2)).unwrap();
        assert!(w.push(&images, &[3]).is_err());
        assert!(w.push(&images, &[3, 7]).is_err());
        let e = LabelledWriter::create(&dir.path().join("big.idx"), 1 << 33, ImageShape::grey(2, 2))
            .err()
            .unwrap();
        assert!(e.to_string().contains("at most"), "{e}");
    }
}
