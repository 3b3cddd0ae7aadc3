//! Grey images as PNG bytes in memory: the lossless baseline that compressed codes are compared
//! with (bits per image), and the byte mapping every image writer shares.

use gen_core::nn::ImageShape;
use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};

use crate::{DataError, Result};

/// Maps values to bytes: clamped to [0, 1], scaled to 0..=255 and rounded (NaN becomes 0).
pub fn to_bytes(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

/// Encodes one grey image as a PNG in memory, with the best compression and adaptive filtering,
/// to compare compressed sizes with PNG files. Values are mapped as in [`to_bytes`].
///
/// # Errors
/// If `values.len()` differs from `shape.numel()`, the image has no pixels or more than one
/// channel, or encoding fails.
pub fn png_bytes(values: &[f32], shape: ImageShape) -> Result<Vec<u8>> {
    let (w, h) = check_grey(shape)?;
    if values.len() != shape.numel() {
        return Err(DataError::Invalid(format!(
            "a {h}x{w} image needs {} values, got {}",
            shape.numel(),
            values.len()
        )));
    }
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::Adaptive)
        .write_image(&to_bytes(values), w, h, image::ExtendedColorType::L8)
        .map_err(|e| DataError::Invalid(format!("cannot encode PNG: {e}")))?;
    Ok(out)
}

/// The PNG sides of a grey image, `(width, height)`.
///
/// # Errors
/// More than one channel, no pixels, or a side that does not fit 32 bits.
pub(crate) fn check_grey(shape: ImageShape) -> Result<(u32, u32)> {
    if shape.channels != 1 {
        return Err(DataError::Invalid(format!(
            "only grey images can be written as PNG, got {} channels",
            shape.channels
        )));
    }
    let (Ok(h), Ok(w)) = (u32::try_from(shape.height), u32::try_from(shape.width)) else {
        return Err(DataError::Invalid(format!(
            "a {}x{} image does not fit a PNG",
            shape.height, shape.width
        )));
    };
    if h == 0 || w == 0 {
        return Err(DataError::Invalid(format!("image has no pixels ({h}x{w})")));
    }
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_bytes_decode_to_the_mapped_bytes() {
        let shape = ImageShape::grey(3, 4);
        let values: Vec<f32> = (0..12).map(|i| i as f32 / 11.0).collect();
        let png = png_bytes(&values, shape).unwrap();
        let back = image::load_from_memory(&png).unwrap().to_luma8();
        assert_eq!((back.width(), back.height()), (4, 3));
        assert_eq!(back.into_raw(), to_bytes(&values));
        assert_eq!(to_bytes(&[f32::NAN, -1.0, 2.0, 0.5]), vec![0, 0, 255, 128]);
    }

    #[test]
    fn png_bytes_reject_what_a_png_cannot_hold() {
        let e = png_bytes(
            &[0.0; 12],
            ImageShape {
                channels: 3,
                height: 2,
                width: 2,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("3 channels"), "{e}");
        let e = png_bytes(&[0.0; 5], ImageShape::grey(2, 2)).unwrap_err();
        assert!(e.to_string().contains("needs 4 values, got 5"), "{e}");
    }
}
