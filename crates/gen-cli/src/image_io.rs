//! Reading and writing images for `gen denoise`, `gen compress`, `gen decompress`, `gen upscale`
//! and `gen augment`.
//!
//! Inputs are an IDX file of bytes with dimensions `[n, height, width]` (gzip'd or not), a single
//! PNG, or a directory of PNG files; every image is read as grey with values in [0, 1].
//! Outputs are grey PNG files, in-memory PNG encodings (to compare compressed sizes), `.npy`
//! arrays that `numpy.load` reads, and labelled image sets as CSV or as an IDX pair.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use gen_core::nn::ImageShape;
use gen_core::train::AtomicFile;
use gen_data::idx::IdxData;

/// A batch of grey images of one size, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    /// The pixel values, row-major, `n` rows of `shape.numel()` values each, in [0, 1].
    pub values: Vec<f32>,
    /// The shape shared by every image.
    pub shape: ImageShape,
    /// Number of images.
    pub n: usize,
    /// A name per image, used as the file stem when writing (a file stem, or `img-00012`).
    pub names: Vec<String>,
}

impl Images {
    /// The values of image `i`.
    ///
    /// # Panics
    /// If `i >= self.n` or `values` is shorter than `n` images.
    pub fn image(&self, i: usize) -> &[f32] {
        let d = self.shape.numel();
        &self.values[i * d..(i + 1) * d]
    }

    /// Checks that `values` and `names` agree with `n` and `shape`.
    fn check(&self) -> anyhow::Result<()> {
        let d = self.shape.numel();
        ensure!(
            self.values.len() == self.n * d,
            "{} images of {}x{}x{} need {} values, got {}",
            self.n,
            self.shape.channels,
            self.shape.height,
            self.shape.width,
            self.n * d,
            self.values.len()
        );
        ensure!(
            self.names.len() == self.n,
            "{} images need {} names, got {}",
            self.n,
            self.n,
            self.names.len()
        );
        Ok(())
    }
}

const PNG_MAGIC: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads images from an IDX file of bytes with dimensions `[n, height, width]` (gzip'd or not), a
/// single PNG file, or a directory of PNG files taken in file-name order.
///
/// Colour PNGs are converted to luma. Values are scaled from 0..=255 to [0, 1]. IDX images are
/// named `img-00000`, `img-00001`, ...; PNG images by their file stem.
///
/// # Errors
/// Naming the path: if it cannot be read, is neither IDX nor PNG, is an IDX file of another
/// element type or rank, is a directory without PNG files, or holds PNGs of different sizes
/// (naming the first file that differs and both sizes).
pub fn read_images(path: &Path) -> anyhow::Result<Images> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        return read_png_dir(path);
    }
    let mut head = Vec::with_capacity(PNG_MAGIC.len());
    std::fs::File::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .take(PNG_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if head.starts_with(&PNG_MAGIC) {
        let (values, shape) = read_png(path)?;
        Ok(Images {
            values,
            shape,
            n: 1,
            names: vec![stem(path)],
        })
    } else if head.starts_with(&GZIP_MAGIC) || head.starts_with(&[0, 0]) {
        read_idx_images(path)
    } else {
        bail!(
            "{}: not an image: neither a PNG nor an IDX file (starts with {})",
            path.display(),
            head.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
        )
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".to_owned())
}

fn read_png(path: &Path) -> anyhow::Result<(Vec<f32>, ImageShape)> {
    let img = image::ImageReader::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?
        .decode()
        .with_context(|| format!("{}: not a readable image", path.display()))?
        .to_luma8();
    let shape = ImageShape::grey(img.height() as usize, img.width() as usize);
    ensure!(
        shape.numel() > 0,
        "{}: image has no pixels ({}x{})",
        path.display(),
        shape.height,
        shape.width
    );
    let values = img.as_raw().iter().map(|&b| f32::from(b) / 255.0).collect();
    Ok((values, shape))
}

fn read_png_dir(dir: &Path) -> anyhow::Result<Images> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        let is_png = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if is_png && path.is_file() {
            files.push(path);
        }
    }
    ensure!(!files.is_empty(), "{}: directory holds no PNG files", dir.display());
    files.sort();
    let mut values = Vec::new();
    let mut names = Vec::with_capacity(files.len());
    let mut shape: Option<(ImageShape, &Path)> = None;
    for file in &files {
        let (v, s) = read_png(file)?;
        match shape {
            None => shape = Some((s, file)),
            Some((first, first_file)) if first != s => bail!(
                "{}: image is {}x{} (height x width), but {} is {}x{}; all images must have one size",
                file.display(),
                s.height,
                s.width,
                first_file.display(),
                first.height,
                first.width
            ),
            Some(_) => {}
        }
        values.extend(v);
        names.push(stem(file));
    }
    let (shape, _) = shape.expect("at least one file was read");
    Ok(Images {
        values,
        shape,
        n: files.len(),
        names,
    })
}

fn read_idx_images(path: &Path) -> anyhow::Result<Images> {
    let idx = gen_data::idx::read_idx(path)?;
    let bytes = match idx.data {
        IdxData::U8(bytes) => bytes,
        IdxData::F32(_) => bail!(
            "{}: unsupported IDX element type: images must be unsigned bytes (type 0x08)",
            path.display()
        ),
    };
    let [n, height, width] = idx.dims[..] else {
        bail!(
            "{}: unsupported IDX rank {} (dimensions {:?}): images must have dimensions [n, height, width]",
            path.display(),
            idx.dims.len(),
            idx.dims
        );
    };
    ensure!(
        height > 0 && width > 0,
        "{}: IDX images have no pixels (dimensions {:?})",
        path.display(),
        idx.dims
    );
    let digits = n.saturating_sub(1).to_string().len().max(5);
    Ok(Images {
        values: bytes.iter().map(|&b| f32::from(b) / 255.0).collect(),
        shape: ImageShape::grey(height, width),
        n,
        names: (0..n).map(|i| format!("img-{i:0digits$}")).collect(),
    })
}

fn check_grey(shape: ImageShape) -> anyhow::Result<(u32, u32)> {
    ensure!(
        shape.channels == 1,
        "only grey images can be written as PNG, got {} channels",
        shape.channels
    );
    let h = u32::try_from(shape.height).context("image height does not fit a PNG")?;
    let w = u32::try_from(shape.width).context("image width does not fit a PNG")?;
    ensure!(h > 0 && w > 0, "image has no pixels ({h}x{w})");
    Ok((w, h))
}

/// Writes each image as a grey PNG `{dir}/{name}.png`, creating `dir`, and returns the paths in
/// image order. Values are clamped to [0, 1] and mapped to 0..=255 by rounding.
///
/// # Errors
/// If `images` is inconsistent (value count, name count), has more than one channel, a name is
/// empty, contains a path separator or repeats, or a file cannot be written (naming it).
pub fn write_pngs(dir: &Path, images: &Images) -> anyhow::Result<Vec<PathBuf>> {
    images.check()?;
    let (w, h) = check_grey(images.shape)?;
    let mut seen = HashSet::new();
    for name in &images.names {
        ensure!(
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\']),
            "image name {name:?} cannot be a file name"
        );
        ensure!(seen.insert(name.as_str()), "image name {name:?} occurs twice");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut paths = Vec::with_capacity(images.n);
    for (i, name) in images.names.iter().enumerate() {
        let path = dir.join(format!("{name}.png"));
        image::GrayImage::from_raw(w, h, gen_data::to_bytes(images.image(i)))
            .expect("buffer length matches the shape")
            .save_with_format(&path, image::ImageFormat::Png)
            .with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

/// Writes `values` as a 2-D `rows` x `cols` array of little-endian `f32` in C order to an `.npy`
/// file that `numpy.load` reads.
///
/// # Errors
/// If `values.len() != rows * cols` or the file cannot be written (naming it).
pub fn write_npy(path: &Path, values: &[f32], rows: usize, cols: usize) -> anyhow::Result<()> {
    let view = ndarray::ArrayView2::from_shape((rows, cols), values).map_err(|_| {
        anyhow::anyhow!(
            "a {rows}x{cols} array needs {} values, got {}",
            rows.saturating_mul(cols),
            values.len()
        )
    })?;
    ndarray_npy::write_npy(path, &view).with_context(|| format!("cannot write {}", path.display()))
}

/// Labelled images written as they come, chunk by chunk, so `gen augment` holds one chunk
/// whatever the number of images: `NAME.csv` (a `label,p0,p1,…` header, then one row per
/// image with pixels in [0, 1] to four decimals) or `NAME.idx` (the IDX pair
/// `NAME-images-idx3-ubyte` and `NAME-labels-idx1-ubyte`, as MNIST ships, pixels mapped as in
/// [`write_pngs`]). The files appear at [`LabelledWriter::finish`], whole, or not at all.
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
    pub fn create(path: &Path, n: usize, shape: ImageShape) -> anyhow::Result<Self> {
        let idx = match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => false,
            Some("idx") => true,
            _ => bail!("--output {} must end in .csv or .idx", path.display()),
        };
        let mut files = Vec::new();
        if idx {
            ensure!(shape.channels == 1, "IDX output holds grey images only");
            let count = u32::try_from(n)
                .map_err(|_| anyhow::anyhow!("IDX files hold at most {} images, asked for {n}", u32::MAX))?;
            let side = |s: usize| u32::try_from(s).context("an image side does not fit an IDX header");
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
    pub fn push(&mut self, images: &[f32], labels: &[i64]) -> anyhow::Result<()> {
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
                .map(|&l| u8::try_from(l).map_err(|_| anyhow::anyhow!("IDX labels must lie in 0..=255, got {l}")))
                .collect::<anyhow::Result<_>>()?;
            self.files[0].write(&gen_data::to_bytes(images))?;
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
    pub fn finish(self) -> anyhow::Result<Vec<PathBuf>> {
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

    fn images(n: usize, h: usize, w: usize) -> Images {
        let d = h * w;
        Images {
            values: (0..n * d).map(|i| ((i * 37) % 256) as f32 / 255.0).collect(),
            shape: ImageShape::grey(h, w),
            n,
            names: (0..n).map(|i| format!("img-{i:05}")).collect(),
        }
    }

    fn assert_close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol, "value {i}: {x} vs {y}");
        }
    }

    #[test]
    fn png_round_trip_through_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut imgs = images(3, 4, 5);
        // Values off the 1/255 grid, and out of range (clamped).
        imgs.values[0] = 0.123;
        imgs.values[1] = -0.5;
        imgs.values[2] = 1.7;
        let paths = write_pngs(&out, &imgs).unwrap();
        assert_eq!(paths.len(), 3);
        assert_eq!(paths[1], out.join("img-00001.png"));
        let back = read_images(&out).unwrap();
        assert_eq!(back.n, 3);
        assert_eq!(back.shape, ImageShape::grey(4, 5));
        assert_eq!(back.names, imgs.names);
        let clamped: Vec<f32> = imgs.values.iter().map(|v| v.clamp(0.0, 1.0)).collect();
        assert_close(&back.values, &clamped, 1.0 / 255.0);
        assert_close(&back.values[1..3], &[0.0, 1.0], 0.0);
    }

    #[test]
    fn single_png_is_read_as_one_image() {
        let dir = tempfile::tempdir().unwrap();
        let imgs = images(1, 3, 2);
        let paths = write_pngs(dir.path(), &imgs).unwrap();
        let back = read_images(&paths[0]).unwrap();
        assert_eq!((back.n, back.shape), (1, ImageShape::grey(3, 2)));
        assert_eq!(back.names, vec!["img-00000".to_owned()]);
        assert_close(&back.values, &imgs.values, 1e-6);
    }

    #[test]
    fn colour_png_is_read_as_luma() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        image::RgbImage::from_pixel(2, 2, image::Rgb([200, 200, 200]))
            .save(&path)
            .unwrap();
        let back = read_images(&path).unwrap();
        assert_eq!(back.shape, ImageShape::grey(2, 2));
        assert_close(&back.values, &[200.0 / 255.0; 4], 1.0 / 255.0);
    }

    #[test]
    fn directory_with_two_sizes_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        image::GrayImage::new(4, 4).save(dir.path().join("a.png")).unwrap();
        image::GrayImage::new(4, 4).save(dir.path().join("b.png")).unwrap();
        image::GrayImage::new(3, 5).save(dir.path().join("c.png")).unwrap();
        let err = format!("{:#}", read_images(dir.path()).unwrap_err());
        assert!(err.contains("c.png"), "{err}");
        assert!(err.contains("5x3") && err.contains("4x4"), "{err}");
    }

    #[test]
    fn empty_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let err = format!("{:#}", read_images(dir.path()).unwrap_err());
        assert!(err.contains("no PNG files"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }

    #[test]
    fn idx_round_trip_raw_and_gzipped() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..2 * 3 * 4).map(|i| (i * 11) as u8).collect();
        let encoded = gen_data::idx::encode_idx_u8(&[2, 3, 4], &bytes);
        let raw = dir.path().join("x.idx");
        std::fs::write(&raw, &encoded).unwrap();
        let gz = dir.path().join("x.idx.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, &encoded).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        for path in [&raw, &gz] {
            let back = read_images(path).unwrap();
            assert_eq!((back.n, back.shape), (2, ImageShape::grey(3, 4)));
            assert_eq!(back.names, vec!["img-00000".to_owned(), "img-00001".to_owned()]);
            let expected: Vec<f32> = bytes.iter().map(|&b| f32::from(b) / 255.0).collect();
            assert_close(&back.values, &expected, 1e-6);
        }
        // The values survive a trip through PNG files too.
        let out = dir.path().join("png");
        write_pngs(&out, &read_images(&raw).unwrap()).unwrap();
        let again = read_images(&out).unwrap();
        assert_close(&again.values, &read_images(&raw).unwrap().values, 1e-6);
    }

    #[test]
    fn idx_of_wrong_rank_or_type_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.idx");
        std::fs::write(&path, gen_data::idx::encode_idx_u8(&[6], &[0; 6])).unwrap();
        let err = format!("{:#}", read_images(&path).unwrap_err());
        assert!(err.contains("labels.idx") && err.contains("rank 1"), "{err}");
        // Type 0x0C (i32), one dimension of 1.
        let path = dir.path().join("ints.idx");
        std::fs::write(&path, [0, 0, 0x0C, 1, 0, 0, 0, 1, 0, 0, 0, 7]).unwrap();
        let err = format!("{:#}", read_images(&path).unwrap_err());
        assert!(err.contains("ints.idx") && err.contains("element type"), "{err}");
    }

    #[test]
    fn non_image_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "hello").unwrap();
        let err = format!("{:#}", read_images(&path).unwrap_err());
        assert!(err.contains("notes.txt") && err.contains("not an image"), "{err}");
        // A file named .png in a directory that is not a PNG.
        std::fs::write(dir.path().join("bad.png"), "hello").unwrap();
        let err = format!("{:#}", read_images(dir.path()).unwrap_err());
        assert!(err.contains("bad.png"), "{err}");
        let missing = dir.path().join("missing.png");
        let err = format!("{:#}", read_images(&missing).unwrap_err());
        assert!(err.contains("missing.png"), "{err}");
    }

    #[test]
    fn png_bytes_decode_back() {
        let imgs = images(1, 7, 9);
        let bytes = gen_data::png_bytes(&imgs.values, imgs.shape).unwrap();
        assert!(bytes.starts_with(&PNG_MAGIC));
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
            .unwrap()
            .to_luma8();
        assert_eq!((img.width(), img.height()), (9, 7));
        let back: Vec<f32> = img.as_raw().iter().map(|&b| f32::from(b) / 255.0).collect();
        assert_close(&back, &imgs.values, 1e-6);
        assert!(gen_data::png_bytes(&imgs.values[1..], imgs.shape).is_err());
    }

    #[test]
    fn write_pngs_rejects_bad_names_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut imgs = images(2, 2, 2);
        imgs.names[1] = "../x".into();
        assert!(write_pngs(dir.path(), &imgs).is_err());
        imgs.names[1] = imgs.names[0].clone();
        assert!(write_pngs(dir.path(), &imgs).is_err());
        let mut imgs = images(2, 2, 2);
        imgs.values.pop();
        assert!(write_pngs(dir.path(), &imgs).is_err());
    }

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
}
