//! Grey images from files, for the uses that take a user's images (`gen denoise`, `gen
//! compress`, `gen upscale`): an IDX file of bytes with dimensions `[n, height, width]` (gzip'd or
//! not), a single PNG, or a folder of PNG files, every image read as grey with values in [0, 1]
//! ([`read_images`]); and grey PNG files written back ([`write_pngs`]).

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use gen_core::nn::ImageShape;

use crate::idx::IdxData;
use crate::png::check_grey;
use crate::{DataError, Result};

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
    fn check(&self) -> Result<()> {
        let d = self.shape.numel();
        if self.values.len() != self.n * d {
            return Err(DataError::Invalid(format!(
                "{} images of {}x{}x{} need {} values, got {}",
                self.n,
                self.shape.channels,
                self.shape.height,
                self.shape.width,
                self.n * d,
                self.values.len()
            )));
        }
        if self.names.len() != self.n {
            return Err(DataError::Invalid(format!(
                "{} images need {} names, got {}",
                self.n,
                self.n,
                self.names.len()
            )));
        }
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
pub fn read_images(path: &Path) -> Result<Images> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    if meta.is_dir() {
        return read_png_dir(path);
    }
    let mut head = Vec::with_capacity(PNG_MAGIC.len());
    std::fs::File::open(path)
        .and_then(|f| f.take(PNG_MAGIC.len() as u64).read_to_end(&mut head))
        .map_err(|e| DataError::io(path, e))?;
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
        Err(DataError::format(
            path,
            format!(
                "not an image: neither a PNG nor an IDX file (starts with {})",
                head.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
            ),
        ))
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".to_owned())
}

fn read_png(path: &Path) -> Result<(Vec<f32>, ImageShape)> {
    let img = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| DataError::io(path, e))?
        .decode()
        .map_err(|e| DataError::format(path, format!("not a readable image: {e}")))?
        .to_luma8();
    let shape = ImageShape::grey(img.height() as usize, img.width() as usize);
    if shape.numel() == 0 {
        return Err(DataError::format(
            path,
            format!("image has no pixels ({}x{})", shape.height, shape.width),
        ));
    }
    let values = img.as_raw().iter().map(|&b| f32::from(b) / 255.0).collect();
    Ok((values, shape))
}

fn read_png_dir(dir: &Path) -> Result<Images> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let path = entry.path();
        let is_png = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if is_png && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(DataError::format(dir, "directory holds no PNG files"));
    }
    files.sort();
    let mut values = Vec::new();
    let mut names = Vec::with_capacity(files.len());
    let mut shape: Option<(ImageShape, &Path)> = None;
    for file in &files {
        let (v, s) = read_png(file)?;
        match shape {
            None => shape = Some((s, file)),
            Some((first, first_file)) if first != s => {
                return Err(DataError::format(
                    file,
                    format!(
                        "image is {}x{} (height x width), but {} is {}x{}; all images must have one size",
                        s.height,
                        s.width,
                        first_file.display(),
                        first.height,
                        first.width
                    ),
                ));
            }
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

fn read_idx_images(path: &Path) -> Result<Images> {
    let idx = crate::idx::read_idx(path)?;
    let bytes = match idx.data {
        IdxData::U8(bytes) => bytes,
        IdxData::F32(_) => {
            return Err(DataError::format(
                path,
                "unsupported IDX element type: images must be unsigned bytes (type 0x08)",
            ));
        }
    };
    let [n, height, width] = idx.dims[..] else {
        return Err(DataError::format(
            path,
            format!(
                "unsupported IDX rank {} (dimensions {:?}): images must have dimensions [n, height, width]",
                idx.dims.len(),
                idx.dims
            ),
        ));
    };
    if height == 0 || width == 0 {
        return Err(DataError::format(
            path,
            format!("IDX images have no pixels (dimensions {:?})", idx.dims),
        ));
    }
    let digits = n.saturating_sub(1).to_string().len().max(5);
    Ok(Images {
        values: bytes.iter().map(|&b| f32::from(b) / 255.0).collect(),
        shape: ImageShape::grey(height, width),
        n,
        names: (0..n).map(|i| format!("img-{i:0digits$}")).collect(),
    })
}

/// Writes each image as a grey PNG `{dir}/{name}.png`, creating `dir`, and returns the paths in
/// image order. Values are clamped to [0, 1] and mapped to 0..=255 by rounding.
///
/// # Errors
/// If `images` is inconsistent (value count, name count), has more than one channel, a name is
/// empty, contains a path separator or repeats, or a file cannot be written (naming it).
pub fn write_pngs(dir: &Path, images: &Images) -> Result<Vec<PathBuf>> {
    images.check()?;
    let (w, h) = check_grey(images.shape)?;
    let mut seen = HashSet::new();
    for name in &images.names {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
            return Err(DataError::Invalid(format!("image name {name:?} cannot be a file name")));
        }
        if !seen.insert(name.as_str()) {
            return Err(DataError::Invalid(format!("image name {name:?} occurs twice")));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| DataError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
    let mut paths = Vec::with_capacity(images.n);
    for (i, name) in images.names.iter().enumerate() {
        let path = dir.join(format!("{name}.png"));
        image::GrayImage::from_raw(w, h, crate::to_bytes(images.image(i)))
            .expect("buffer length matches the shape")
            .save_with_format(&path, image::ImageFormat::Png)
            .map_err(|e| DataError::Invalid(format!("cannot write {}: {e}", path.display())))?;
        paths.push(path);
    }
    Ok(paths)
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
        let encoded = crate::idx::encode_idx_u8(&[2, 3, 4], &bytes);
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
        std::fs::write(&path, crate::idx::encode_idx_u8(&[6], &[0; 6])).unwrap();
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
        let bytes = crate::png_bytes(&imgs.values, imgs.shape).unwrap();
        assert!(bytes.starts_with(&PNG_MAGIC));
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
            .unwrap()
            .to_luma8();
        assert_eq!((img.width(), img.height()), (9, 7));
        let back: Vec<f32> = img.as_raw().iter().map(|&b| f32::from(b) / 255.0).collect();
        assert_close(&back, &imgs.values, 1e-6);
        assert!(crate::png_bytes(&imgs.values[1..], imgs.shape).is_err());
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
}
